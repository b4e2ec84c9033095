#!/usr/bin/env bash
# Every listener kind (TCP over IPv4 and IPv6, UDP, unix) reaches the app at
# fds 3.. in the order the service file's { name, address } pairs give them,
# with LISTEN_FDNAMES to match, as `baton check` prints the layout; the same
# sockets in the next generation; the unix socket's file is removed when the
# supervisor exits.
. "$(dirname "$0")/lib.sh"

v6='{ "v6", "tcp://[::1]:0" },'
python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null || v6=""
cat > "$T/service.lua" <<LUA
return {
  name = "kinds-e2e",
  control = "$SOCK",
  listen = {
    { "web", "tcp://127.0.0.1:0" },
    $v6
    { "dns", "udp://127.0.0.1:0" },
    { "admin", "unix:$T/admin.sock", backlog = 8 },
  },
  command = { "python3", "$SOURCE_DIR/tests/apps/report_fds.py", "$T/report.json" },
}
LUA
layout=$("$BATON" check "$T/service.lua" | awk '$1 == "fd" && $2 ~ /^[0-9]+$/ { printf "%s=%s ", $2, $3 }')
want="3=web ${v6:+4=v6 }$([ -n "$v6" ] && echo 5 || echo 4)=dns $([ -n "$v6" ] && echo 6 || echo 5)=admin "
[ "$layout" = "$want" ] || fail "baton check printed the layout '$layout', want '$want'"
"$BATON" run "$T/service.lua" > "$T/sup.log" 2>&1 &
BPID=$!
wait_for 15 has_active || fail "no active generation"

check_report() {
    python3 - "$T/report.json" "$T/admin.sock" "$1" "$2" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
want_v6 = sys.argv[4] != ""
names = ["web"] + (["v6"] if want_v6 else []) + ["dns", "admin"]
assert r["names"] == names, r["names"]
assert r["listen_pid"] == str(r["pid"]), r
assert r["generation"] == sys.argv[3], r
kinds = [(f["family"], f["type"]) for f in r["fds"]]
want = [("inet", "stream")] + ([("inet6", "stream")] if want_v6 else []) + [("inet", "dgram"), ("unix", "stream")]
assert kinds == want, kinds
assert [f["fd"] for f in r["fds"]] == list(range(3, 3 + len(want)))
assert r["fds"][-1]["address"] == sys.argv[2], r["fds"][-1]
assert all(f["listening"] for f in r["fds"] if f["type"] == "stream")
print(json.dumps([f["address"] for f in r["fds"]]))
PY
}
first=$(check_report 1 "$v6") || fail "generation 1 saw the wrong listeners"
rm -f "$T/report.json"
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart"
wait_for 5 test -f "$T/report.json" || fail "generation 2 wrote no report"
second=$(check_report 2 "$v6") || fail "generation 2 saw the wrong listeners"
[ "$first" = "$second" ] || fail "generation 2 got other sockets: $first vs $second"
[ -S "$T/admin.sock" ] || fail "unix listener file missing"
stop_baton
[ -e "$T/admin.sock" ] && fail "unix listener file left behind"
echo "ok: listeners $first in order, same in generation 2${v6:+ (with IPv6)}"
