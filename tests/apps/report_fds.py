# Writes what it inherited, the way an app following sd_listen_fds(3) sees
# it, to the file named by argv[1], then says READY=1 and waits for SIGTERM.
import json, os, signal, socket, sys

# Every fd open at start, before this script opens any, as "fd": "what"
# (the link's target, an inode number left out): what the supervisor let
# through. The listing's own fd is closed by the time it is read: skipped.
opened = {}
for name in os.listdir("/proc/self/fd"):
    try:
        target = os.readlink("/proc/self/fd/" + name)
    except OSError:
        continue
    opened[name] = target.split("[")[0].split(" (deleted)")[0]

report = {"pid": os.getpid(), "listen_pid": os.environ.get("LISTEN_PID"),
          "names": os.environ.get("LISTEN_FDNAMES", "").split(":"),
          "generation": os.environ.get("BATON_GENERATION"), "fds": [], "open": opened,
          "stats_fd": os.environ.get("BATON_STATS_FD")}
for fd in range(3, 3 + int(os.environ.get("LISTEN_FDS", "0"))):
    s = socket.socket(fileno=os.dup(fd))
    kind = {socket.SOCK_STREAM: "stream", socket.SOCK_DGRAM: "dgram"}[s.type]
    fam = {socket.AF_INET: "inet", socket.AF_INET6: "inet6", socket.AF_UNIX: "unix"}[s.family]
    listening = s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) if kind == "stream" else 0
    report["fds"].append({"fd": fd, "family": fam, "type": kind,
                          "address": str(s.getsockname()), "listening": bool(listening)})
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump(report, f)
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
n.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    signal.pause()
