#!/usr/bin/env python3
"""Keep-alive clients that rotate their connections: each of N threads opens
a connection to 127.0.0.1:PORT, sends request after request on it (one
every 20 ms) for ROTATE seconds, closes it and opens the next one, until
STOPFILE exists. A request fails when its connection cannot be opened, is
reset or closed before the full response, or gives no 200 within 5 s.
Prints one line: "ok=A failed=B connections=C"."""
import os
import socket
import sys
import threading
import time

port, n, rotate, stopfile = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
lock = threading.Lock()
tot = {"ok": 0, "failed": 0, "connections": 0}


def add(k):
    with lock:
        tot[k] += 1


def response(s, buf):
    """Reads one response (headers + Content-Length body); returns the rest."""
    while b"\r\n\r\n" not in buf:
        b = s.recv(4096)
        if not b:
            raise ConnectionError("eof before the response")
        buf += b
        if len(buf) > 65536:
            raise ValueError("response too long")
    head, rest = buf.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 200"):
        raise ValueError("not a 200")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(rest) < length:
        b = s.recv(4096)
        if not b:
            raise ConnectionError("eof in the body")
        rest += b
    return rest[length:], b"connection: close" in head.lower()


def client():
    while not os.path.exists(stopfile):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            add("failed")
            time.sleep(0.02)
            continue
        add("connections")
        ends, buf = time.monotonic() + rotate, b""
        try:
            while time.monotonic() < ends and not os.path.exists(stopfile):
                s.sendall(b"GET / HTTP/1.1\r\nHost: e2e\r\n\r\n")
                buf, closing = response(s, buf)
                add("ok")
                if closing:
                    break
                time.sleep(0.02)
        except (OSError, ValueError):
            add("failed")
        finally:
            s.close()


threads = [threading.Thread(target=client, daemon=True) for _ in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join(timeout=600)
print(f"ok={tot['ok']} failed={tot['failed']} connections={tot['connections']}")
