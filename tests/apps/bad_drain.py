# bad_drain.py: an HTTP/1.1 keep-alive server whose drain loses requests,
# for tests/e2e/drill.sh. It serves the socket at fd 3 (LISTEN_FDS), says
# READY=1, answers every GET with 200 (keeping the connection open unless
# the request said "Connection: close"), and on SIGTERM closes every
# connection at once, including those that just got a request, then exits:
# the drain `baton drill` names "keep-alive connection closed under a
# request". With NO_KEEPALIVE=1 in its environment it also closes every
# connection right after its answer without saying `Connection: close`: an
# app that fails keep-alive clients with no restart at all. Only the
# standard library.
import os
import selectors
import signal
import socket
import sys

BODY = b"hello from a bad drain, pid %d\n" % os.getpid()
KEEP = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (
    len(BODY), BODY)
CLOSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
         b"Connection: close\r\n\r\n%s" % (len(BODY), BODY))

listener = socket.socket(fileno=3)
listener.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(listener, selectors.EVENT_READ)
pending = {}  # connection -> bytes read, not yet a whole request
stopping = False
NO_KEEPALIVE = os.environ.get("NO_KEEPALIVE") == "1"


def on_term(*_):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)


def drop(conn):
    sel.unregister(conn)
    pending.pop(conn, None)
    conn.close()


def serve(conn):
    try:
        data = conn.recv(65536)
    except OSError:
        data = b""
    if not data:
        drop(conn)
        return
    buf = pending[conn] + data
    while b"\r\n\r\n" in buf:
        head, buf = buf.split(b"\r\n\r\n", 1)
        close = b"connection: close" in head.lower()
        try:
            conn.sendall(CLOSE if close else KEEP)
        except OSError:
            drop(conn)
            return
        if close or NO_KEEPALIVE:
            drop(conn)
            return
    pending[conn] = buf


notify = os.environ.get("NOTIFY_SOCKET")
if notify:
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.sendto(b"READY=1", "\0" + notify[1:] if notify.startswith("@") else notify)
    n.close()

while not stopping:
    for key, _ in sel.select(timeout=0.05):
        if key.fileobj is listener:
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                continue  # another generation took it
            conn.setblocking(True)  # read only when ready; small answers are sent whole
            sel.register(conn, selectors.EVENT_READ)
            pending[conn] = b""
        else:
            serve(key.fileobj)

# The bad drain: every connection closed now, whatever is on the wire.
for conn in list(pending):
    drop(conn)
sys.exit(0)
