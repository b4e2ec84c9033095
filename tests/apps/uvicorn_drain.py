#!/usr/bin/python3
# uvicorn's own command line (the same options: `uvicorn_drain.py --fd 3
# module:app ...`), with a shutdown that drains the way an HTTP/1.1 server
# should (RFC 9112 section 9.6).
#
# uvicorn 0.17 (Debian 12) notices SIGTERM at its next 0.1 s tick (it accepts
# until then), closes its listener, and at once closes every connection with
# no response in progress: an idle keep-alive one, and one whose request it
# has not read yet. A client whose next request is on the wire sees an EOF
# or a reset: each keep-alive connection of the load loses about one request
# a restart (tests/e2e/uvicorn.sh: eof=120 in 15 restarts of 8 keep-alive
# connections). No option of that version changes it (--timeout-keep-alive
# does not).
#
# Here, at SIGTERM uvicorn stops accepting at once (the listener is shared:
# the next generation accepts from it), but closes no connection itself:
# each one's next response says `Connection: close` (so the client closes it
# knowing its request was answered), an idle one closes at its ordinary
# --timeout-keep-alive, and uvicorn exits once none is left. A second signal
# is uvicorn's force quit, as stock.
import asyncio
import sys

import uvicorn.main
import uvicorn.server

CLOSE = (b"connection", b"close")
stock_shutdown = uvicorn.server.Server.shutdown
stock_handle_exit = uvicorn.server.Server.handle_exit


def say_close(headers):
    # In place: a protocol shares its list with its current request's cycle.
    if CLOSE not in headers:
        headers.append(CLOSE)


def handle_exit(self, sig, frame):
    # Run in the event loop (loop.add_signal_handler): stop accepting now.
    # Not server.close(): asyncio (3.11) then drops, unseen, a connection it
    # has accepted but not yet set up (Server._attach asserts; the error is
    # only reported in debug mode) and the client sees a reset.
    loop = asyncio.get_event_loop()
    for server in getattr(self, "servers", []):
        for sock in server.sockets:
            loop.remove_reader(sock.fileno())
    stock_handle_exit(self, sig, frame)


async def draining_shutdown(self, sockets=None):
    uvicorn.server.logger.info("Draining: %d connections", len(self.server_state.connections))
    say_close(self.server_state.default_headers)  # protocols made from now on
    while self.server_state.connections and not self.force_exit:
        for conn in list(self.server_state.connections):
            if hasattr(conn, "cycle"):  # HTTP (h11 or httptools)
                say_close(conn.default_headers)
            else:  # a WebSocket: uvicorn's own shutdown (close 1012)
                conn.shutdown()
        await asyncio.sleep(0.02)
    # No connection left: close the listener, wait for background tasks, run
    # the lifespan's shutdown, as stock.
    await stock_shutdown(self, sockets)


uvicorn.server.Server.handle_exit = handle_exit
uvicorn.server.Server.shutdown = draining_shutdown

if __name__ == "__main__":
    sys.exit(uvicorn.main.main())
