#!/usr/bin/env bash
# The man pages, generated from docs/ at build time, say what the binary
# does: they render without a roff warning; baton(1) has a section for
# every command `baton --commands` lists, every exit code, every option of
# restart, events and logs; baton-service(5) has every key the service file
# loader knows (from the loader's own error for an unknown key).
. "$(dirname "$0")/lib.sh"
MAN="$(dirname "$BATON")/man"
for page in baton.1 baton-service.5; do
    [ -s "$MAN/$page" ] || fail "no man page $MAN/$page (is go-md2man installed? scripts/deps.sh)"
    MANWIDTH=80 man --warnings -l "$MAN/$page" > "$T/$page.txt" 2> "$T/$page.err" ||
        fail "man cannot render $page: $(cat "$T/$page.err")"
    [ ! -s "$T/$page.err" ] || fail "roff warnings in $page: $(cat "$T/$page.err")"
done

commands=$("$BATON" --commands | cut -d" " -f1) # the table: src/base/commands.c
[ "$(echo "$commands" | wc -w)" -ge 10 ] || fail "too few commands in baton --commands: $commands"
sed -n '/^COMMANDS/,/^FINDING THE SUPERVISOR/p' "$T/baton.1.txt" > "$T/commands.txt"
for c in $commands; do
    grep -Eq "^       $c( |,|$)" "$T/commands.txt" || fail "baton(1) has no entry for '$c'"
done
for code in 0 1 2 3; do
    sed -n '/^EXIT STATUS/,/^OUTPUT/p' "$T/baton.1.txt" | grep -Eq "^       $code( |$)" ||
        fail "baton(1) does not document exit code $code"
done
for opt in --progress --quiet --json -n --gen --file; do
    grep -q -- "$opt" "$T/baton.1.txt" || fail "baton(1) does not mention $opt"
done

printf 'return { name = "x", command = { "true" }, zzz_unknown = 1 }\n' > "$T/bad.lua"
"$BATON" check "$T/bad.lua" > "$T/check.out" 2>&1 && fail "baton check took an unknown key"
keys=$(sed -n 's/.*unknown key (known: \(.*\))/\1/p' "$T/check.out" | tr -d ',')
[ "$(echo "$keys" | wc -w)" -ge 10 ] || fail "no key list in: $(cat "$T/check.out")"
for k in $keys; do
    grep -Eq "^       $k( |$)" "$T/baton-service.5.txt" || fail "baton-service(5) has no entry for '$k'"
done
echo "ok: baton(1) covers $(echo "$commands" | wc -w) commands; baton-service(5) $(echo "$keys" | wc -w) keys; no roff warning"
