#!/usr/bin/env python3
"""Plays systemd's side for a test: socket activation and sd_notify.

  fake_systemd.py OUT_DIR BATON SERVICE_FILE

Binds a listening TCP socket on a free loopback port (written to
OUT_DIR/port), makes a datagram NOTIFY_SOCKET with SO_PASSCRED, then
starts BATON run SERVICE_FILE with the socket at fd 3 and LISTEN_FDS=1,
LISTEN_PID (its own pid), LISTEN_FDNAMES=http, NOTIFY_SOCKET, as systemd
starts a Type=notify service of a socket unit. Every datagram it gets is
written to OUT_DIR/notify, one a line (newlines shown as '|'), with the
sender's pid checked against baton's. Exits with baton's exit code;
bounded at 120 s."""
import os
import select
import socket
import struct
import sys
import time

out, baton, service = sys.argv[1], sys.argv[2], sys.argv[3]
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(128)
open(os.path.join(out, "port"), "w").write(str(listener.getsockname()[1]))
notify_path = os.path.join(out, "notify.sock")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)

pid = os.fork()
if pid == 0:
    os.dup2(listener.fileno(), 3)  # dup2 clears close-on-exec
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="http",
               NOTIFY_SOCKET=notify_path)
    os.execve(baton, [baton, "run", service], env)
listener.close()
log = open(os.path.join(out, "notify"), "w", buffering=1)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    r, _, _ = select.select([notify], [], [], 0.1)
    if not r:
        continue
    data, anc, _, _ = notify.recvmsg(4096, socket.CMSG_SPACE(12))
    sender = None
    for level, kind, blob in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            sender = struct.unpack("iII", blob)[0]
    who = "baton" if sender == pid else f"pid {sender}"
    log.write(f"{who}: {data.decode(errors='replace').strip().replace(chr(10), '|')}\n")
else:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    sys.exit(124)
sys.exit(os.waitstatus_to_exitcode(status))
