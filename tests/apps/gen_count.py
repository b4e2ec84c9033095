#!/usr/bin/env python3
"""Opens N new connections to 127.0.0.1:PORT, one request each
(Connection: close), and counts which generation answered: the example
hello server names it ("hello from generation G, pid P"). Prints one line:
"gen1=A gen2=B ... fails=F"; an answer other than 200 counts as genG_CODE
(gen3_500=N); fails are connections that got no answer. Each connection is bounded by a 5 s timeout."""
import collections
import socket
import sys


def one(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: e2e\r\nConnection: close\r\n\r\n")
        data = b""
        while len(data) < 65536:
            b = s.recv(4096)
            if not b:
                break
            data += b
    finally:
        s.close()
    if not data.startswith(b"HTTP/1.1 "):
        raise ValueError("not an HTTP response")
    gen = data.split(b"generation ", 1)[1].split(b",", 1)[0].decode()
    return gen if data.startswith(b"HTTP/1.1 200") else gen + "_" + data[9:12].decode()


def main():
    port, n = int(sys.argv[1]), int(sys.argv[2])
    counts, fails = collections.Counter(), 0
    for _ in range(n):
        try:
            counts[one(port)] += 1
        except (OSError, ValueError, IndexError):
            fails += 1
    print(" ".join(f"gen{g}={c}" for g, c in sorted(counts.items())) + f" fails={fails}")


main()
