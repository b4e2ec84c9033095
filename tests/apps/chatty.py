# An app that prints a lot: at start, as many lines of as many bytes as
# the file named by argv[1] says ("LINES BYTES", default "400 1024"), each
# "chatty GEN NNNN " then 'x' up to BYTES, on stdout; then READY=1, and it
# serves every socket in LISTEN_FDS (one "ok" response a connection) until
# SIGTERM. "crash LINES BYTES" prints them on stderr instead and exits 3:
# a generation whose rollback's reason quotes long stderr.
import os, selectors, signal, socket, sys

words = (open(sys.argv[1]).read().split() if os.path.exists(sys.argv[1]) else []) or ["400", "1024"]
crash = words[0] == "crash"
words = words[1:] if crash else words
lines, size = int(words[0]), int(words[1]) if len(words) > 1 else 1024
gen = os.environ.get("BATON_GENERATION", "0")
out = sys.stderr if crash else sys.stdout
for i in range(lines):
    head = "chatty %s %04d " % (gen, i)
    out.write(head + "x" * max(0, size - len(head)) + "\n")
out.flush()
if crash:
    sys.exit(3)
sel = selectors.DefaultSelector()
for fd in range(3, 3 + int(os.environ.get("LISTEN_FDS", "0"))):
    s = socket.socket(fileno=fd)
    if s.type == socket.SOCK_STREAM:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
n.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
while True:
    for key, _ in sel.select():
        try:
            c, _ = key.fileobj.accept()
        except OSError:
            continue
        try:
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
        except OSError:
            pass
        c.close()
