#!/usr/bin/env bash
# `baton logs` of any size (issue 22, item 5): an app that prints 400
# lines of 1 KB at each start, so the ring holds far more than the 64 KiB
# a line of the control protocol may hold.
# - `baton logs`, `logs --json` and `logs -n 10` answer (exit 0) with every
#   line asked for, in order; the answer came in parts of at most 64 KiB
#   each, joined again (checked on the wire: a request with "parts": true
#   gets lines of at most 65,536 bytes, one without it the one long line).
# - `logs -f` started before a restart gets the new generation's 400 lines
#   (400 KB in one poll); once the ring holds a megabyte, a `logs -f`
#   started then gets the ring's lines first, then follows another restart.
. "$(dirname "$0")/lib.sh"
CHATTY="$(dirname "$0")/../apps/chatty.py"
echo "400 1024" > "$T/mode"
cat > "$T/service.lua" <<LUA
return {
  name = "e2e-logs",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "python3", "$CHATTY", "$T/mode" },
  ready_timeout = 10,
  drain_timeout = 5,
}
LUA
start_baton
# count_gen GEN FILE: lines of generation GEN's chatty output in FILE.
count_gen() { grep -c "chatty $1 [0-9]\{4\} x" "$2" || true; }
# has_all GEN FILE: FILE holds generation GEN's 400 lines.
has_all() { [ "$(count_gen "$1" "$2")" = 400 ]; }
# kept GEN: `baton logs --gen GEN` shows its 400 lines.
kept() { [ "$("$BATON" logs -s "$SOCK" --gen "$1" | grep -c 'chatty ')" = 400 ]; }
g1=$(active_generation)
wait_for 10 kept "$g1" ||
    fail "baton logs --gen $g1 did not show 400 lines: $("$BATON" logs -s "$SOCK" 2>&1 | tail -2)"
"$BATON" logs -s "$SOCK" > "$T/logs.txt" || fail "baton logs: $(tail -1 "$T/logs.txt")"
[ "$(count_gen "$g1" "$T/logs.txt")" = 400 ] || fail "baton logs: $(count_gen "$g1" "$T/logs.txt") of 400 lines"
"$BATON" logs -s "$SOCK" --json > "$T/logs.json" || fail "baton logs --json"
python3 - "$T/logs.json" "$g1" <<'PY' || fail "logs --json: $(head -c 300 "$T/logs.json")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
mine = [l for l in lines if l["line"].startswith("chatty %s " % sys.argv[2])]
assert len(mine) == 400, len(mine)
assert [int(l["line"].split()[2]) for l in mine] == list(range(400)), "out of order"
assert all(len(l["line"]) == 1024 and l["stream"] == "stdout" for l in mine)
print("logs --json: %d lines, %d bytes" % (len(lines), sum(len(l["line"]) for l in lines)))
PY
"$BATON" logs -s "$SOCK" -n 10 > "$T/n10.txt" || fail "baton logs -n 10"
[ "$(wc -l < "$T/n10.txt")" = 10 ] && grep -q "chatty $g1 0399 " "$T/n10.txt" ||
    fail "logs -n 10: $(cut -c 1-60 "$T/n10.txt")"
echo "ok: baton logs, logs --json and logs -n of 400 KB"

# The wire: parts of at most 64 KiB when asked for, one line otherwise.
python3 - "$SOCK" <<'PY' || fail "the control protocol's parts"
import json, socket, sys
def ask(req):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(json.dumps(req).encode() + b"\n")
    data = b""
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        data += b
    return data.split(b"\n")[:-1]
lines = ask({"cmd": "logs", "parts": True})
assert len(lines) > 1 and all(len(l) < 65536 for l in lines), [len(l) for l in lines]
parts = [json.loads(l) for l in lines[:-1]]
answer = json.loads(lines[-1])
assert answer["ok"] and all(p["part"]["in"] == ["lines"] for p in parts), answer
joined = [i for p in parts for i in p["part"]["items"]] + answer["lines"]
whole = ask({"cmd": "logs"})
assert len(whole) == 1 and len(whole[0]) > 65536, [len(l) for l in whole]
assert json.loads(whole[0])["lines"] == joined
small = ask({"cmd": "logs", "n": 3, "parts": True})
assert len(small) == 1 and len(json.loads(small[0])["lines"]) == 3
print("wire: %d parts of at most %d bytes, then the answer; %d bytes in one line without"
      % (len(parts), max(len(l) for l in lines), len(whole[0])))
PY
echo "ok: an answer in parts only when asked, each part at most 64 KiB"

# logs -f across a restart: 400 KB arrive between two of its polls.
"$BATON" logs -s "$SOCK" -f > "$T/follow.txt" 2> "$T/follow.err" &
FPID=$!
sleep 0.5
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart"
g2=$(active_generation)
wait_for 10 has_all "$g2" "$T/follow.txt" || {
    kill "$FPID" 2> /dev/null
    fail "logs -f: $(count_gen "$g2" "$T/follow.txt") of generation $g2's 400 lines: $(cat "$T/follow.err")"
}
kill "$FPID" 2> /dev/null || true
wait "$FPID" 2> /dev/null || true
echo "ok: logs -f followed 400 KB in one poll"

# A megabyte in the ring, then logs -f.
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart 2"
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart 3"
g4=$(active_generation)
wait_for 10 kept "$g4" || fail "generation $g4's lines"
"$BATON" logs -s "$SOCK" --json | wc -c > "$T/ring.bytes"
[ "$(cat "$T/ring.bytes")" -gt 1000000 ] || fail "the ring holds only $(cat "$T/ring.bytes") bytes of JSON"
"$BATON" logs -s "$SOCK" -f > "$T/follow2.txt" 2> "$T/follow2.err" &
FPID=$!
wait_for 10 has_all "$g4" "$T/follow2.txt" || {
    kill "$FPID" 2> /dev/null
    fail "logs -f after a megabyte: $(count_gen "$g4" "$T/follow2.txt") of 400: $(cat "$T/follow2.err")"
}
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart 4"
g5=$(active_generation)
wait_for 10 has_all "$g5" "$T/follow2.txt" || {
    kill "$FPID" 2> /dev/null
    fail "logs -f after a megabyte did not follow: $(count_gen "$g5" "$T/follow2.txt") of 400"
}
kill "$FPID" 2> /dev/null || true
wait "$FPID" 2> /dev/null || true
echo "ok: logs -f after $(cat "$T/ring.bytes") bytes of JSON in the ring, then followed"
stop_baton
