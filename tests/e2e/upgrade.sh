#!/usr/bin/env bash
# `baton upgrade` under keep-alive and new-connection load: the supervisor
# re-executes its image in place and carries its listeners, generations and
# drains.
#   1. 20 upgrades, two restarts among them whose old generations drain
#      through several upgrades: every upgrade exits 0, the pid never
#      changes, image.upgrades ends at 20, the counters never go down (and
#      http.requests ends equal to what the clients received), and a
#      restart afterwards takes over. The drains are made to last, not
#      hoped to: a client holds a request begun and not finished on the old
#      generation (hello_server drains until each request is answered).
#      The first drain, its deadline far off, goes on through 5 upgrades
#      and ends when the test finishes the request: the generation that
#      drained through them answers it and exits by itself. The second
#      drain's request is never finished: the generation is killed at its
#      3 s deadline + at most 1 s, the deadline carried across the upgrades
#      made back to back while it drains.
#   2. A binary that exits at once and one killed by SIGSEGV at start:
#      each upgrade exits 1 saying so, the old image serves on.
#   3. A binary that passes the check but cannot take over after the exec:
#      the old image takes back over (same pid), the upgrade exits 1 saying
#      so, and a restart afterwards takes over. The same for one that
#      crashes (SIGSEGV) halfway through its takeover, some carried fds
#      already taken: the way back is armed against the crash. The same
#      keeper throughout, and no fd left behind by any of them.
#   4. A SIGTERM sent during the exec: the new image stops gracefully.
# Not one failed request throughout.
. "$(dirname "$0")/lib.sh"
UPGRADES=${UPGRADES:-20}
DRAIN=3          # s, the drain deadline of every generation but the first
HELD=60          # s, the first generation's: the test ends that drain
HELD_UPGRADES=5  # upgrades while the first generation drains
IMAGE=$BATON_IMAGE

cat > "$T/service.lua" <<LUA
return {
  name = "upgrade-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO", "--mode-file", "$T/mode" },
  ready_timeout = 5,
  drain_timeout = $DRAIN,
  policy = "policy.lua",
}
LUA
# The default policy, but generation 1's drain has a deadline far off: the
# test holds it open as long as its upgrades take, then ends it. (The
# generation's id, not a count in the policy: an upgrade starts the policy
# afresh.)
cat > "$T/policy.lua" <<LUA
local steps = require("baton.steps")
local policy = { name = "upgrade-e2e" }
function policy.restart(svc, old)
  local new, why = steps.ready_new(svc)
  if not new then return nil, why end
  svc:promote(new)
  local deadline = svc.config.drain_timeout
  if old and old.id == 1 then deadline = $HELD end
  steps.drain(svc, old, { signal = "TERM", deadline = deadline })
  return new
end
return steps.standard(policy)
LUA

# hold.py PORT READY RELEASE: one connection; a request answered (its
# greeting printed: the generation that holds the connection), then a
# request begun and not finished, and READY touched. Once RELEASE exists
# it finishes the request, prints "released: STATUS close=yes|no" and reads
# until the server closes; if the server closes first, "closed". Then
# "answers N". At most 120 s.
cat > "$T/hold.py" <<'PY'
import os, select, socket, sys, time
port, ready, release = sys.argv[1:]
answers = 0
def response(s):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise EOFError(f"closed in the headers: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    n = int(next(l.split(":")[1] for l in lines if l.lower().startswith("content-length:")))
    while len(body) < n:
        chunk = s.recv(4096)
        if not chunk:
            raise EOFError("closed in the body")
        body += chunk
    return lines, body[:n].decode()
s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
try:
    s.sendall(b"GET / HTTP/1.1\r\nHost: held\r\n\r\n")
    _, body = response(s)
    answers += 1
    print(body.strip(), flush=True)
    s.sendall(b"GET /held HTTP/1.1\r\n")
    open(ready, "w").close()
    deadline = time.monotonic() + 120
    while not os.path.exists(release) and time.monotonic() < deadline:
        if select.select([s], [], [], 0.02)[0]:
            try:
                print("closed" if not s.recv(4096) else "answered unasked", flush=True)
            except ConnectionResetError:
                print("closed (reset)", flush=True)
            break
    else:
        s.sendall(b"Host: held\r\n\r\n")
        lines, _ = response(s)
        answers += 1
        print("released:", lines[0].split(" ")[1], "close=" + ("yes" if "Connection: close" in lines else "no"), flush=True)
        while s.recv(4096):
            pass
except (OSError, EOFError) as e:
    print("error:", e, flush=True)
finally:
    print("answers", answers, flush=True)
PY

# "PID UPGRADES ACTIVE_ID ACTIVE_PID BINARY" from baton status.
sup_view() {
    "$BATON" status -s "$SOCK" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
g = d["generations"]
act = [x for x in g if x["state"] == "active"] or [{"id": "-", "pid": "-"}]
print(d["pid"], d["image"]["upgrades"], act[0]["id"], act[0]["pid"], d["image"]["binary"])'
}
view() { read -r VPID VUPG VACT VACTPID VBIN <<< "$(sup_view)"; }

# The state of generation ID (nothing once status no longer lists it).
gen_state() { status_field "generations[id=$1].state" || true; }

# "HTTP_REQUESTS RESTARTS" from baton stats.
counters() {
    "$BATON" stats -s "$SOCK" --json | python3 -c '
import json, sys
m = {x["name"]: x for x in json.load(sys.stdin)["metrics"]}
print(int(m["http.requests"]["value"]), int(m.get("baton.restarts", {}).get("value", 0)))'
}

# after_upgrades I: checks the answers of upgrades 1..I ($T/answers, one
# per line), then status and stats (one python3 for it all: its start-up
# alone takes 0.1 s and more under load). Prints "HTTP_REQUESTS RESTARTS".
after_upgrades() {
    python3 - "$1" "$T/answers" "$BATON" "$SOCK" "$BPID" "$IMAGE" <<'PY'
import json, subprocess, sys
i, answers, baton, sock, pid, image = sys.argv[1:]
def ask(cmd):
    out = subprocess.run([baton, cmd, "-s", sock, "--json"], check=True, capture_output=True)
    return json.loads(out.stdout)
rs = [json.loads(line) for line in open(answers)]
assert len(rs) == int(i), f"{len(rs)} answers after {i} upgrades"
for r in rs:
    assert r["ok"] is True and r["pid"] == int(pid) and r["binary"] == image, f"an answer: {r}"
    assert r["version"] and 0 < r["duration"] < 5, f"an answer: {r}"
st = ask("status")
assert st["pid"] == int(pid), f"status says pid {st['pid']}, the supervisor was {pid}"
assert st["image"]["upgrades"] == int(i), f"image.upgrades is {st['image']['upgrades']}"
m = {x["name"]: x for x in ask("stats")["metrics"]}
print(int(m["http.requests"]["value"]), int(m.get("baton.restarts", {}).get("value", 0)))
PY
}

# watch_gone PID T0_NS FILE: in the background, writes to FILE how many ms
# after T0_NS the process PID was gone (polled every 20 ms, at most ~10 s).
WATCHERS=""
watch_gone() {
    (
        for _ in $(seq 1 500); do
            kill -0 "$1" 2> /dev/null || break
            sleep 0.02
        done
        echo $((($(date +%s%N) - $2) / 1000000)) > "$3"
    ) &
    WATCHERS+=" $!"
}

serves() { curl -sf -m 2 "http://127.0.0.1:$PORT/" > /dev/null; }

start_baton
view
[ "$VPID" = "$BPID" ] || fail "status says pid $VPID, the supervisor is $BPID"
[ "$VUPG" = 0 ] || fail "image.upgrades is $VUPG before any upgrade"
[ "$VBIN" = "$IMAGE" ] || fail "image.binary is $VBIN, want $IMAGE"
# What the supervisor and its keeper hold with one generation running:
# after the upgrades, with one again, they hold as many (an fd that
# leaked on each upgrade, a pipe the keeper got again, would show).
nfds() { find "/proc/$1/fd" -mindepth 1 2> /dev/null | wc -l; }
# The count once it holds still (a status client's fd closes a moment
# after its answer): two reads 50 ms apart that agree.
settled_nfds() {
    local a b i
    for i in $(seq 1 40); do
        a=$(nfds "$1")
        sleep 0.05
        b=$(nfds "$1")
        [ "$a" != "$b" ] || { echo "$a"; return 0; }
    done
    fail "the fd count of pid $1 never held still"
}
KEEPER=$(keeper_of)
[ -n "$KEEPER" ] || fail "status names no keeper"
SUP_FDS=$(settled_nfds "$BPID") KEEPER_FDS=$(settled_nfds "$KEEPER")
# same_fds: one generation runs, and the supervisor and the keeper hold
# as many fds as at the start.
same_fds() {
    [ "$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | grep -o '"pid":[0-9]*,"state":"[a-z]*"' |
        grep -vc exited)" = 1 ] && [ "$(nfds "$BPID")" = "$SUP_FDS" ] &&
        [ "$(nfds "$KEEPER")" = "$KEEPER_FDS" ]
}
fds_text() { echo "the supervisor holds $(nfds "$BPID") fds ($SUP_FDS at the start), the keeper $(nfds "$KEEPER") ($KEEPER_FDS): $(ls -l "/proc/$BPID/fd")"; }

# 1. Upgrades under load, the answers, status and stats checked after each
#    one outside a drain and after each run of upgrades in one.
start_load
read -r last_req _ <<< "$(counters)"
: > "$T/answers"
i=0 nrestarts=0 during=0
# upgrade_next [ID]: the next upgrade, its answer kept; DURING=1 when
# generation ID drained before it and still did after it.
upgrade_next() {
    local before="" after="" out
    i=$((i + 1))
    [ -z "${1:-}" ] || before=$(gen_state "$1")
    out=$("$BATON" upgrade -s "$SOCK" --json) || fail "upgrade $i exited non-zero: $out"
    [ -z "${1:-}" ] || after=$(gen_state "$1")
    echo "$out" | tr -d '\n' >> "$T/answers"
    echo >> "$T/answers"
    DURING=0
    if [ "$before" = draining ] && [ "$after" = draining ]; then DURING=1; fi
    STATES="$before -> $after"
}
check_upgrades() {
    local res req restarts
    res=$(after_upgrades "$i") || fail "after upgrade $i: see above"
    read -r req restarts <<< "$res"
    kill -0 "$BPID" || fail "upgrade $i: the supervisor $BPID is gone"
    [ "$req" -ge "$last_req" ] || fail "upgrade $i: http.requests went down, $last_req -> $req"
    [ "$restarts" = "$nrestarts" ] || fail "upgrade $i: baton.restarts is $restarts, want $nrestarts"
    last_req=$req
}
# hold NAME: a held request (hold.py) on the serving generation, which
# answered its first request.
hold() {
    view
    python3 "$T/hold.py" "$PORT" "$T/$1.ready" "$T/$1.release" > "$T/$1.out" 2>&1 &
    HOLDER=$!
    wait_for 10 test -e "$T/$1.ready" || fail "$1: no held request: $(cat "$T/$1.out")"
    grep -q "^hello from generation $VACT," "$T/$1.out" ||
        fail "$1: generation $VACT serves, another answered: $(cat "$T/$1.out")"
}
# restart_drains: a restart; DRAINING and DRAINING_PID name the generation
# it drains, T_RESTARTED (ns) when the restart was answered.
restart_drains() {
    local out
    view
    out=$("$BATON" restart -s "$SOCK") || fail "restart before upgrade $((i + 1)): $out"
    T_RESTARTED=$(date +%s%N)
    echo "$out" | grep -q "took over" || fail "restart before upgrade $((i + 1)): $out"
    nrestarts=$((nrestarts + 1))
    DRAINING=$VACT DRAINING_PID=$VACTPID
}
gone() { ! kill -0 "$1" 2> /dev/null; }

# 1a. Generation 1 drains, held, through HELD_UPGRADES upgrades in a row.
hold held1
restart_drains
[ "$DRAINING" = 1 ] || fail "the first restart drains generation $DRAINING, not 1"
for _ in $(seq 1 "$HELD_UPGRADES"); do
    upgrade_next "$DRAINING"
    [ "$DURING" = 1 ] || fail "upgrade $i: generation $DRAINING, held, did not drain all through it ($STATES)"
    during=$((during + 1))
done
check_upgrades
[ "$(gen_state "$DRAINING")" = draining ] || fail "generation $DRAINING no longer drains: $(gen_state "$DRAINING")"
# The request finished: the generation that drained through the upgrades
# answers it, closes, and exits by itself.
touch "$T/held1.release"
wait "$HOLDER" || true
grep -q "^released: 200 close=yes" "$T/held1.out" || fail "the held request: $(cat "$T/held1.out")"
wait_for 10 gone "$DRAINING_PID" ||
    fail "generation $DRAINING (pid $DRAINING_PID) still runs 10 s after its last request was answered"
echo "ok: generation $DRAINING drained through upgrades 1-$i, answered its last request and exited"

# Upgrades with nothing draining, up to half of them.
while [ "$i" -lt $((UPGRADES / 2)) ]; do
    upgrade_next
    check_upgrades
    sleep 0.1
done

# 1b. The next drain's request is never finished: its deadline ends it,
#     upgrades made back to back while it drains (at most 10).
hold held2
restart_drains
[ "$DRAINING" = 2 ] || fail "the second restart drains generation $DRAINING, not 2"
watch_gone "$DRAINING_PID" "$T_RESTARTED" "$T/gone.2"
in_b=0
for _ in $(seq 1 10); do
    [ "$i" -lt "$UPGRADES" ] || break
    upgrade_next "$DRAINING"
    in_b=$((in_b + DURING))
    case $STATES in *"-> draining") ;; *) break ;; esac
done
check_upgrades
[ "$in_b" -ge 1 ] || fail "no upgrade happened all while generation $DRAINING drained for ${DRAIN} s"
during=$((during + in_b))
# The generation was killed at its deadline: its held request was never answered.
wait "$HOLDER" || true
grep -q "^closed" "$T/held2.out" || fail "the request held on generation $DRAINING: $(cat "$T/held2.out")"
while [ "$i" -lt "$UPGRADES" ]; do
    upgrade_next
    check_upgrades
    sleep 0.1
done
[ "$last_req" -gt 0 ] || fail "http.requests never counted"

# The held generation ended at its deadline, whatever the upgrades.
# shellcheck disable=SC2086 # one pid a word
wait $WATCHERS
ms=$(cat "$T/gone.2")
[ "$ms" -le $(((DRAIN + 1) * 1000)) ] ||
    fail "draining generation 2 still ran ${ms} ms after its restart was answered (deadline ${DRAIN} s)"
echo "ok: draining generation 2 gone ${ms} ms after its restart was answered, $in_b upgrades made while it drained"
"$BATON" events -s "$SOCK" --json | python3 -c '
import json, sys
ev = json.load(sys.stdin)
up = [e for e in ev if e["kind"] == "upgrade"]
assert len(up) == int(sys.argv[1]) and all(e["ok"] for e in up), up
d = {e["generation"]: e for e in ev if e["kind"] == "drain"}
assert sorted(d) == [1, 2], d
assert d[1]["reason"].startswith("ended by its exit"), d[1]
assert d[2]["reason"].startswith("killed at its deadline"), d[2]
assert d[2]["duration"] <= float(sys.argv[2]) + 1, d[2]' "$UPGRADES" "$DRAIN" ||
    fail "events after the upgrades: $("$BATON" events -s "$SOCK" --json)"
held_answers=0
for h in held1 held2; do
    held_answers=$((held_answers + $(sed -n 's/^answers //p' "$T/$h.out")))
done

stop_load
assert_no_load_errors 1000
sleep 0.3 # the last responses' write callbacks
read -r req restarts <<< "$(counters)"
[ "$req" = $(($(load_field ok) + held_answers)) ] ||
    fail "http.requests=$req but the clients received $(load_field ok) + $held_answers"
view
[ "$VUPG" = "$UPGRADES" ] || fail "image.upgrades is $VUPG, want $UPGRADES"
[ "$VPID" = "$BPID" ] || fail "status says pid $VPID, the supervisor was $BPID"
# One generation runs, as at the start (the drained ones are gone):
wait_for 5 same_fds || fail "after $UPGRADES upgrades $(fds_text)"
serving=$VACT
out=$("$BATON" restart -s "$SOCK") || fail "restart after the upgrades: $out"
echo "$out" | grep -q "took over" || fail "restart after the upgrades: $out"
[ "$(active_generation)" = $((serving + 1)) ] || fail "generation $((serving + 1)) should serve"
# One keeper throughout: the upgrades carried it, none started another.
keepers=0
for c in $(ps -o pid= --ppid "$BPID"); do
    [ "$(cat "/proc/$c/comm" 2> /dev/null)" = baton-keeper ] && keepers=$((keepers + 1))
done
[ "$keepers" -eq 1 ] || fail "$keepers keepers under the supervisor after $UPGRADES upgrades, not 1"
[ "$(keeper_of)" = "$KEEPER" ] || fail "the keeper is $(keeper_of), was $KEEPER"
echo "ok: $UPGRADES upgrades, $during of them while a generation drained, pid $BPID throughout, $LOAD"

# 2. and 3. Binaries that cannot take over, under load.
printf '#!/bin/sh\nexit 0\n' > "$T/exits"
printf '#!/bin/sh\nulimit -c 0\nkill -SEGV $$\n' > "$T/crashes"
cat > "$T/no-takeover" <<SH
#!/bin/sh
# Passes the check, then cannot load its service file.
if [ "\$1" = upgrade-check ]; then exec "$IMAGE" "\$@"; fi
exec "$IMAGE" run "$T/missing.lua"
SH
# Passes the check, then crashes (SIGSEGV) halfway through its takeover.
# shellcheck disable=SC2046 # pkg-config's flags, one a word
cc -shared -fPIC -O1 -Wall -Werror $(pkg-config --cflags libuv) -o "$T/crash_takeover.so" \
    "$SOURCE_DIR/tests/apps/crash_takeover.c" -ldl || fail "cannot build the crash library"
# At its 1st uv_pipe_open (the control socket) and at its 4th (the
# output pipes: the keeper, the process table and the ring taken).
for at in 1 4; do
    cat > "$T/crashes-taking-over-$at" <<SH
#!/bin/sh
if [ "\$1" = upgrade-check ]; then exec "$IMAGE" "\$@"; fi
# An ASan build wants its runtime first among the libraries: not this time.
CRASH_AT=$at ASAN_OPTIONS="\${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
    LD_PRELOAD="$T/crash_takeover.so" exec "$IMAGE" "\$@"
SH
done
chmod +x "$T/exits" "$T/crashes" "$T/no-takeover" "$T"/crashes-taking-over-*

start_load
view
serving=$VACT
# upgrade_fails BINARY PATTERN: exits 1, PATTERN on stderr; nothing changed.
upgrade_fails() {
    local rc=0
    "$BATON" upgrade -s "$SOCK" --binary "$1" > "$T/out" 2> "$T/err" || rc=$?
    [ $rc -eq 1 ] || fail "upgrade to $1 exited $rc, want 1: $(cat "$T/out" "$T/err")"
    grep -qF "$2" "$T/err" || fail "upgrade to $1: want '$2' on stderr: $(cat "$T/err")"
    view
    [ "$VPID" = "$BPID" ] || fail "after upgrade to $1: status says pid $VPID, the supervisor was $BPID"
    [ "$VUPG" = "$UPGRADES" ] || fail "after upgrade to $1: image.upgrades is $VUPG"
    [ "$VBIN" = "$IMAGE" ] || fail "after upgrade to $1: image.binary is $VBIN"
    [ "$VACT" = "$serving" ] || fail "after upgrade to $1: generation $serving no longer active"
    serves || fail "after upgrade to $1: nothing answers on port $PORT"
    echo "ok: $(cat "$T/err")"
}
upgrade_fails "$T/exits" "upgrade refused: $T/exits exited with code 0"
upgrade_fails "$T/crashes" "upgrade refused: $T/crashes was killed by signal 11"
upgrade_fails "$T/no-takeover" "upgrade failed, the old image took back over: $T/missing.lua"
for at in 1 4; do
    upgrade_fails "$T/crashes-taking-over-$at" \
        "upgrade failed, the old image took back over: it crashed (signal 11) while it took over"
done
pgrep -f "upgrade-check $T/service.lua" && fail "upgrade checks left behind"
"$BATON" events -s "$SOCK" --json | python3 -c '
import json, sys
up = [e for e in json.load(sys.stdin) if e["kind"] == "upgrade"]
assert [e["ok"] for e in up[-5:]] == [False] * 5, up[-5:]' ||
    fail "the failed upgrades are not in the events"
out=$("$BATON" restart -s "$SOCK") || fail "restart after the failed upgrades: $out"
echo "$out" | grep -q "took over" || fail "restart after the failed upgrades: $out"
[ "$(active_generation)" = $((serving + 1)) ] || fail "generation $((serving + 1)) should serve"
# Nothing left behind by the ways back either: the same keeper, and as many
# fds once the old generation is gone.
[ "$(keeper_of)" = "$KEEPER" ] || fail "the keeper is $(keeper_of) after the failed upgrades, was $KEEPER"
wait_for 5 same_fds || fail "after the failed upgrades $(fds_text)"
sleep 0.5
stop_load
assert_no_load_errors 100
echo "ok: refused and failed upgrades, the old image served on, $LOAD"

# 4. A SIGTERM sent while the image is being replaced (here: while a
#    wrapper sleeps before it execs the image; the blocked signal stays
#    pending across both execs) waits for the image that takes over,
#    which then stops gracefully: exit 0, no app left. The wrapper is
#    python3, which leaves the signal mask as it found it (dash clears it).
cat > "$T/slow-start" <<PY
#!/usr/bin/env python3
import os, sys, time
if sys.argv[1:2] != ["upgrade-check"]:
    time.sleep(0.5)
os.execv("$IMAGE", ["$IMAGE"] + sys.argv[1:])
PY
chmod +x "$T/slow-start"
"$BATON" upgrade -s "$SOCK" --binary "$T/slow-start" > "$T/slow.out" 2>&1 &
UP=$!
slow_running() { [ "$(cat "/proc/$BPID/comm" 2> /dev/null)" = python3 ]; }
wait_for 10 slow_running || fail "the upgrade to slow-start never reached its sleep: $(cat "$T/slow.out")"
kill -TERM "$BPID"
rc=0
timeout 20 tail --pid="$BPID" -f /dev/null || fail "the supervisor did not end after SIGTERM"
wait "$BPID" || rc=$?
BPID=""
[ $rc -eq 0 ] || fail "the supervisor exited $rc after a SIGTERM during the upgrade: $(tail -5 "$T/sup.log")"
wait "$UP" || fail "the upgrade to slow-start failed: $(cat "$T/slow.out")"
grep -q "stopping gracefully" "$T/sup.log" || fail "no graceful stop in the log: $(tail -5 "$T/sup.log")"
pgrep -f "$HELLO --mode-file $T/mode" && fail "app processes left behind"
echo "ok: a SIGTERM during an upgrade's exec waited for the new image, which stopped gracefully"
