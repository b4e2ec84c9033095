#!/usr/bin/env bash
# `baton upgrade --binary` trusts a binary as sshd's StrictModes trusts a
# file: owned by the supervisor's user or root, not writable by group or
# others, and so is every folder above it (a folder writable by others
# only with the sticky bit, as /tmp). Under load, each refusal says why
# and changes nothing; then a good binary passes:
#   mode 0777; mode 0775; a folder of mode 0777; owned by uid 65534; in a
#   folder uid 65534 owns (the last two only as root: chown needs it).
. "$(dirname "$0")/lib.sh"
REAL_BATON=$(readlink -f "$BATON")
hello_service
start_baton
start_load
pid=$(status_field pid)

mkdir -m 755 "$T/bin" "$T/open" "$T/theirs"
chmod 777 "$T/open"
install -m 755 "$REAL_BATON" "$T/bin/good"
install -m 777 "$REAL_BATON" "$T/bin/mode777"
install -m 775 "$REAL_BATON" "$T/bin/mode775"
install -m 755 "$REAL_BATON" "$T/open/baton"
bins=("$T/bin/mode777" "$T/bin/mode775" "$T/open/baton")
whys=("is writable by others" "is writable by its group" "the folder $T/open is writable by others")
if [ "$(id -u)" = 0 ]; then
    install -m 755 -o 65534 "$REAL_BATON" "$T/bin/nobodys"
    install -m 755 "$REAL_BATON" "$T/theirs/baton"
    chown 65534 "$T/theirs"
    bins+=("$T/bin/nobodys" "$T/theirs/baton")
    whys+=("is owned by uid 65534" "the folder $T/theirs is owned by uid 65534")
else
    echo "skip: the cases owned by uid 65534 (chown needs root)"
fi
for i in "${!bins[@]}"; do
    bin=${bins[$i]} want=${whys[$i]}
    rc=0
    out=$(timeout 40 "$BATON" upgrade -s "$SOCK" --binary "$bin" 2>&1) || rc=$?
    [ $rc = 1 ] || fail "$bin: baton upgrade exited $rc: $out"
    case "$out" in *"upgrade refused: "*"$want"*) ;; *) fail "$bin: not refused for '$want': $out" ;; esac
    [ "$(status_field image.upgrades)" = 0 ] || fail "$bin: the image was replaced"
    echo "ok: $out"
done
out=$(timeout 60 "$BATON" upgrade -s "$SOCK" --binary "$T/bin/good" 2>&1) || fail "the good binary: $out"
echo "$out" | grep -q "upgraded" || fail "the good binary: $out"
[ "$(status_field pid)" = "$pid" ] || fail "the supervisor's pid changed"
[ "$(status_field image.upgrades)" = 1 ] || fail "image.upgrades is not 1"
stop_load
assert_no_load_errors 200
stop_baton
echo "ok: a good binary passes: $out; $LOAD"
