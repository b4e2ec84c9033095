# term_ignorer.py: an HTTP/1.1 server that ignores SIGTERM and keeps its
# listener (fd 3, LISTEN_FDS) until it is killed, for
# tests/e2e/graceful_ignorer.sh. It says READY=1, answers every request
# with 200 and "Connection: close", then closes: it holds a connection
# only while it serves one. One process. Only the standard library.
import os
import selectors
import signal
import socket

BODY = b"hello from pid %d, which ignores SIGTERM\n" % os.getpid()
ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
          b"Connection: close\r\n\r\n%s" % (len(BODY), BODY))

signal.signal(signal.SIGTERM, signal.SIG_IGN)
listener = socket.socket(fileno=3)
listener.setblocking(False)
sel = selectors.DefaultSelector()
sel.register(listener, selectors.EVENT_READ)
pending = {}

notify = os.environ.get("NOTIFY_SOCKET")
if notify:
    n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    n.sendto(b"READY=1", "\0" + notify[1:] if notify.startswith("@") else notify)
    n.close()

while True:
    for key, _ in sel.select(timeout=1):
        if key.fileobj is listener:
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                continue  # another generation took it
            conn.setblocking(True)
            pending[conn] = b""
            sel.register(conn, selectors.EVENT_READ)
            continue
        conn = key.fileobj
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        buf = pending.get(conn, b"") + data
        if data and b"\r\n\r\n" not in buf:
            pending[conn] = buf
            continue
        if data:
            try:
                conn.sendall(ANSWER)
            except OSError:
                pass
        sel.unregister(conn)
        pending.pop(conn, None)
        conn.close()
