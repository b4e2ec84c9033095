#!/usr/bin/python3
# A WebSocket echo server on python3-websockets (asyncio), set up the way
# docs/recipes.md recommends for baton:
# - it serves the listener baton passes as fd 3 (`socket.socket(fileno=3)`
#   handed to `websockets.serve(..., sock=sock)`) and says READY=1 on
#   $NOTIFY_SOCKET once it serves, as a systemd-aware app does;
# - at SIGTERM it stops accepting, lets handshakes under way finish, and
#   closes each connection with 1001 (going away) right after its next echo,
#   or once it has been quiet for QUIET seconds: a message the server has
#   read is always answered, and its client reconnects to the next
#   generation. Then it exits. (A message the client sends while the Close
#   is on its way cannot be answered, RFC 6455 section 5.5.1: a client sends
#   it again on its next connection. Closing right after an echo leaves the
#   client nothing in flight, as it sends at most one message at a time.)
#
# websockets' own shutdown (leaving `async with serve(...)`, or
# server.close()) does less well under a restart: it sends its Close at
# once, so a message the client sent just before is never echoed (a client
# must send it again on its next connection: ~270 in 15 restarts of 200
# connections), and it answers a handshake still under way with HTTP 503
# (33 in 15 restarts when the clients were still reconnecting). Closing an
# asyncio server also drops, unseen, a connection accepted but not yet set
# up (asyncio 3.11's Server._attach asserts): so here the listener is only
# taken out of the event loop (remove_reader) until the connections are gone.
import asyncio
import os
import signal
import socket

import websockets

QUIET = 2.0
drain = None  # a future, done at SIGTERM


def sd_notify(state):
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr[0] == "@":
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(addr)
        s.sendall(state.encode())


async def echo(ws):
    # `async for msg in ws: await ws.send(msg)`, and once draining: the
    # next message is still echoed, then the connection closes with 1001.
    # The handler closes it itself, so never while it holds a message.
    nxt = asyncio.ensure_future(ws.recv())
    try:
        while True:
            await asyncio.wait([nxt, drain], return_when=asyncio.FIRST_COMPLETED)
            if not nxt.done():  # draining: QUIET seconds for a last message
                await asyncio.wait([nxt], timeout=QUIET)
                if not nxt.done():
                    break
            await ws.send(nxt.result())
            if drain.done():
                break
            nxt = asyncio.ensure_future(ws.recv())
        await ws.close(1001, "going away")
    except websockets.ConnectionClosed:
        pass
    finally:
        nxt.cancel()  # safe: websockets keeps a message recv() did not return


async def main():
    global drain
    loop = asyncio.get_running_loop()
    drain = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, lambda: drain.done() or drain.set_result(None))
    sock = socket.socket(fileno=3)
    server = await websockets.serve(echo, sock=sock)
    sd_notify("READY=1")
    await drain

    # Stop accepting, but leave the server "serving": websockets answers a
    # handshake under way 503 once it is closed. The listener stays open in
    # baton and the next generation.
    loop.remove_reader(sock.fileno())
    while server.websockets:  # each handler closes its own connection
        await asyncio.sleep(0.05)
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
