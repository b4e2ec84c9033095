#!/usr/bin/env bash
# What an app prints is shown escaped whoever relays it (src/base/sanitize.h):
# an app printing ANSI escape sequences, U+009B (CSI as a C1 control) and a
# carriage return followed by a line that looks like the supervisor's own,
# under load:
#   - `baton logs` (text and --json) and the supervisor's stderr show
#     "\x1b[31m", "\u009b" and "\x0d", tagged with the generation, and no
#     raw control byte;
#   - the supervisor SIGKILLed, its keeper relays the same lines the same
#     way on its stderr; a new `baton run` takes the service back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/takeover_lib.sh"

export XDG_RUNTIME_DIR="$T/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
SVC="$T/service.lua"
cat > "$T/app.sh" <<SH
#!/bin/sh
while :; do
    printf 'evil \033[31mred\033[0m \302\233 2J end\n'
    printf 'forged\r2026-01-01T00:00:00.000Z baton[1] error: fake\n'
    sleep 0.2
done &
exec "$HELLO" --mode-file "$T/mode"
SH
chmod +x "$T/app.sh"
hello_service
sed -i "s|command = {[^}]*}|command = { \"$T/app.sh\" }|" "$SVC"
: > "$T/sup.log"
run_baton
wait_for 15 has_active || fail "supervisor did not bring up an active generation"
view
PORT=$VPORT gen=$VACT
start_load

want_evil='evil \x1b[31mred\x1b[0m \u009b 2J end'
want_forged='forged\x0d2026-01-01T00:00:00.000Z baton[1] error: fake'
# no_raw FILE WHAT: FILE holds no C0 control but tab and newline, no DEL
# and no C1 control (raw or as UTF-8).
no_raw() {
    python3 - "$1" <<'PY' || fail "$2: a raw control byte got through"
import sys
b = open(sys.argv[1], "rb").read()
bad = [c for c in b if (c < 0x20 and c not in (9, 10)) or c == 0x7f]
bad += [1 for i in range(len(b) - 1) if b[i] == 0xC2 and 0x80 <= b[i + 1] <= 0x9F]
sys.exit(1 if bad else 0)
PY
}
logged() { "$BATON" logs -s "$SOCK" > "$T/logs.txt" && grep -qF "$want_evil" "$T/logs.txt"; }
wait_for 10 logged || fail "baton logs does not show the escaped line: $(tail -2 "$T/logs.txt")"
grep -qF "$want_forged" "$T/logs.txt" || fail "baton logs does not show the forged line escaped: $(tail -2 "$T/logs.txt")"
no_raw "$T/logs.txt" "baton logs"
"$BATON" logs -s "$SOCK" --json > "$T/logs.json"
python3 - "$T/logs.json" "$gen" "$want_evil" <<'PY' || fail "baton logs --json: $(tail -2 "$T/logs.json")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
assert any(l["line"] == sys.argv[3] and l["generation"] == int(sys.argv[2]) for l in lines), lines[-2:]
PY
echo "ok: baton logs: $(grep -m1 -F "$want_evil" "$T/logs.txt")"
grep -qF "gen $gen out| $want_evil" "$T/sup.log" || fail "the supervisor's stderr does not show the escaped line"
grep -qF "gen $gen out| $want_forged" "$T/sup.log" || fail "the supervisor's stderr does not show the forged line escaped"
no_raw "$T/sup.log" "the supervisor's stderr"
echo "ok: the supervisor's stderr: $(grep -m1 -F "$want_forged" "$T/sup.log")"

kids=$(ps -o pid= --ppid "$BPID" | tr -d ' ' | tr '\n' ' ')
# shellcheck disable=SC2086 # one pid a word
track $kids
mark=$(stat -c %s "$T/sup.log")
kill -KILL "$BPID"
wait "$BPID" 2> /dev/null || true
relayed() { tail -c +"$((mark + 1))" "$T/sup.log" > "$T/keeper.txt" && grep -qF "gen $gen out| $want_evil" "$T/keeper.txt"; }
wait_for 10 relayed || fail "the keeper does not relay the escaped line: $(tail -3 "$T/keeper.txt")"
grep -qF "gen $gen out| $want_forged" "$T/keeper.txt" || fail "the keeper does not relay the forged line escaped"
no_raw "$T/keeper.txt" "the keeper's relay"
echo "ok: the keeper's relay: $(grep -m1 -F "$want_evil" "$T/keeper.txt")"
run_baton
wait_for 15 adopted_serving "$gen" || fail "generation $gen not taken back: $(view_text)"
stop_load
assert_no_load_errors 200
stop_baton
wait_for 5 tracked_left || fail "left behind after baton stop:$LEFT"
echo "ok: taken back and stopped: $LOAD"
