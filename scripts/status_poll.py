#!/usr/bin/env python3
"""Asks a baton control socket for status every 2 ms, as one client that
starts no process per call (which would measure exec, not the supervisor),
until the file STOP exists or 120 s have passed.

  status_poll.py SOCK STOP [--ready FILE]   prints "SLOWEST_MS ANSWERS" at the
                                            end; 99999 for an answer that is
                                            not ok or none within 5 s;
                                            touches FILE after the first answer
  status_poll.py SOCK STOP --samples        prints "MONOTONIC_S MS" per answer

Used by tests/e2e/lib.sh (start_poller) and bench/verify_answer.sh."""
import os
import socket
import sys
import time


def ask(path):
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(5)
    try:
        c.connect(path)
        c.sendall(b'{"cmd":"status"}\n')
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        return b'"ok":true' in data
    except OSError:
        return False
    finally:
        c.close()


def main():
    path, stop = sys.argv[1], sys.argv[2]
    samples = "--samples" in sys.argv
    ready = sys.argv[sys.argv.index("--ready") + 1] if "--ready" in sys.argv else None
    worst, n = 0.0, 0
    deadline = time.monotonic() + 120
    while not os.path.exists(stop) and time.monotonic() < deadline:
        t = time.monotonic()
        ok = ask(path)
        ms = (time.monotonic() - t) * 1000
        if samples:
            print(f"{t:.6f} {ms:.3f}", flush=True)
        elif not ok:
            print("99999", n)
            return
        worst = max(worst, ms)
        n += 1
        if n == 1 and ready:
            open(ready, "w").close()
        time.sleep(0.002)
    if not samples:
        print(int(worst + 0.999), n)


main()
