# A tiny ASGI app for the uvicorn test. It is systemd-aware the way an app
# can be without any library: once uvicorn has started it (the lifespan's
# startup), it writes READY=1 to $NOTIFY_SOCKET. uvicorn runs the lifespan
# startup just before it serves the socket (--fd 3), and the notification is
# queued behind that step of its event loop; a connection that comes in the
# meantime waits in the listener's accept queue, which baton keeps open.
import asyncio
import os
import socket


def sd_notify(state):
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr[0] == "@":
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(addr)
        s.sendall(state.encode())


BODY = ("hello from uvicorn, pid %d\n" % os.getpid()).encode()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
                asyncio.get_running_loop().call_soon(sd_notify, "READY=1")
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", b"%d" % len(BODY))]})
    await send({"type": "http.response.body", "body": BODY})
