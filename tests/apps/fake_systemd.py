#!/usr/bin/env python3
"""Plays systemd's side for a test: socket activation, sd_notify, the fd store.

  fake_systemd.py OUT_DIR BATON SERVICE_FILE [--fdstore RESTARTS]

Without --fdstore: binds a listening TCP socket on a free loopback port
(written to OUT_DIR/port), makes a datagram NOTIFY_SOCKET with SO_PASSCRED,
then starts BATON run SERVICE_FILE with the socket at fd 3 and LISTEN_FDS=1,
LISTEN_PID (its own pid), LISTEN_FDNAMES=http, NOTIFY_SOCKET, as systemd
starts a Type=notify service of a socket unit.

With --fdstore: no socket unit. It keeps every fd baton sends with
FDSTORE=1 (under its FDNAME), as a unit with FileDescriptorStoreMax= does.
When baton dies of a signal it does what systemd does for Restart=on-failure
with KillMode=mixed: SIGKILL to what is left of the service (here: the
orphans it reaped as a child subreaper, standing in for the cgroup), then
starts baton again with the stored fds passed as LISTEN_FDS/LISTEN_FDNAMES,
at most RESTARTS times. Each start's pid goes to OUT_DIR/pids.

Every datagram it gets is written to OUT_DIR/notify, one a line (newlines
shown as '|'), with the sender's pid checked against baton's, and '+fd' for
an attached fd. Exits with baton's last exit code; bounded at 120 s."""
import ctypes
import os
import select
import signal
import socket
import struct
import sys
import time

out, baton, service = sys.argv[1], sys.argv[2], sys.argv[3]
fdstore = len(sys.argv) > 5 and sys.argv[4] == "--fdstore"
restarts = int(sys.argv[5]) if fdstore else 0

notify_path = os.path.join(out, "notify.sock")
notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
notify.bind(notify_path)
notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
stored = {}  # FDNAME -> fd, as systemd's fd store keeps them
passed = []  # (name, fd) for the next start

if fdstore:
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
else:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    open(os.path.join(out, "port"), "w").write(str(listener.getsockname()[1]))
    passed = [("http", listener.detach())]


def start():
    pid = os.fork()
    if pid == 0:
        env = dict(os.environ, NOTIFY_SOCKET=notify_path)
        if passed:
            # Onto fd 3, 4, ...: dup first (a passed fd may sit on 3 already).
            dups = [os.dup(fd) for _, fd in passed]
            for i, fd in enumerate(dups):
                os.dup2(fd, 3 + i)  # dup2 clears close-on-exec
            env.update(LISTEN_FDS=str(len(passed)), LISTEN_PID=str(os.getpid()),
                       LISTEN_FDNAMES=":".join(name for name, _ in passed))
        os.execve(baton, [baton, "run", service], env)
    with open(os.path.join(out, "pids"), "a") as f:
        f.write(f"{pid}\n")
    return pid


def kill_orphans(main):
    """SIGKILL to every process of ours but baton's, then reap them."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            # Orphans reparented to us and still running: find them in /proc.
            mine = [int(p) for p in os.listdir("/proc") if p.isdigit() and ppid(int(p)) == os.getpid()]
            if not mine:
                return
            for p in mine:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)


def ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


log = open(os.path.join(out, "notify"), "w", buffering=1)
deadline = time.monotonic() + 120
pid = start()
status = 0
while time.monotonic() < deadline:
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = st
        if fdstore and os.WIFSIGNALED(st) and restarts > 0:
            restarts -= 1
            kill_orphans(pid)
            passed = sorted(stored.items())
            pid = start()
            continue
        break
    r, _, _ = select.select([notify], [], [], 0.05)
    if not r:
        continue
    data, anc, _, _ = notify.recvmsg(4096, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(4 * 16))
    sender, fds = None, []
    for level, kind, blob in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            sender = struct.unpack("iII", blob)[0]
        elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds += list(struct.unpack(f"{len(blob) // 4}i", blob[: len(blob) // 4 * 4]))
    text = data.decode(errors="replace")
    keys = dict(line.split("=", 1) for line in text.split("\n") if "=" in line)
    if keys.get("FDSTORE") == "1" and fds:
        name = keys.get("FDNAME", "stored")
        if name in stored:
            os.close(stored[name])
        stored[name] = fds[0]
        fds = fds[1:]
    for fd in fds:
        os.close(fd)
    who = "baton" if sender == pid else f"pid {sender}"
    attached = "+fd" if keys.get("FDSTORE") == "1" else ""
    log.write(f"{who}: {text.strip().replace(chr(10), '|')}{attached}\n")
else:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    sys.exit(124)
sys.exit(os.waitstatus_to_exitcode(status))
