// A plain Node.js HTTP server, the way users write one, set up the way
// docs/recipes.md recommends for baton:
// - it serves the listener baton passes as fd 3 (`listen({ fd: 3 })`), and
//   sends no READY=1: baton's probe of its health listener is its
//   readiness. That listener (named "health" in LISTEN_FDNAMES) is one the
//   generation has for itself (per_generation = true in the service file),
//   so the probe reaches it and not the generation that shares fd 3;
// - on SIGTERM it stops accepting but does not cut its idle keep-alive
//   connections (a request may be on the wire: RFC 9112 section 9.6).
//   Each one's next response says `Connection: close` instead, and baton's
//   graceful policy ends the drain once the kernel shows no connection left.
'use strict';
const http = require('http');

const gen = Number(process.env.BATON_GENERATION || 0);
// systemd's protocol: fd 3 + i is the listener named names[i].
const names = (process.env.LISTEN_FDNAMES || '').split(':');
const fdOf = (name) => (names.indexOf(name) >= 0 ? 3 + names.indexOf(name) : -1);
let draining = false;

const server = http.createServer((req, res) => {
  if (draining) res.setHeader('Connection', 'close');
  res.end(`hello from generation ${gen}\n`);
});
server.keepAliveTimeout = 30000;
server.listen({ fd: fdOf('http') >= 0 ? fdOf('http') : 3 });

const health = fdOf('health') >= 0 ? http.createServer((req, res) => res.end('ok\n')) : null;
if (health) health.listen({ fd: fdOf('health') });

// NAIVE: the drain most Node servers have, for comparison (`baton drill`
// in docs/recipes.md): server.close(), which also closes idle keep-alive
// connections at once, and no Connection: close.
if (process.env.NAIVE) {
  process.on('SIGTERM', () => {
    server.close();
    if (health) health.close();
  });
} else process.on('SIGTERM', () => {
  draining = true;
  // net.Server's close only: http.Server's would also close the idle
  // keep-alive connections at once (Node 19 and later).
  require('net').Server.prototype.close.call(server);
  if (health) health.close();
  // LINGER: an app that keeps running after its last connection (a
  // shutdown timer, a pool): only baton's count ends its drain early.
  if (process.env.LINGER) setInterval(() => {}, 1000);
  console.error(`generation ${gen}: draining`);
});
