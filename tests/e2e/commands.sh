#!/usr/bin/env bash
# One table of commands (src/base/commands.c), and every place that lists
# them reads it: each command `baton --commands` prints has its entry in
# docs/cli.md (with every option of its own), a line in `baton --help`, and
# bash completion offers it and its options. A command missing from the
# docs fails this test (checked on a copy of the docs without one).
. "$(dirname "$0")/lib.sh"
: "${SOURCE_DIR:?}"
DOC="$SOURCE_DIR/docs/cli.md"
COMPLETION="$SOURCE_DIR/scripts/completion.bash"

"$BATON" --commands > "$T/commands" || fail "baton --commands failed"
"$BATON" help --commands | cmp -s - "$T/commands" || fail "baton help --commands differs"
commands=$(cut -d' ' -f1 "$T/commands")
[ "$(echo "$commands" | wc -w)" -ge 10 ] || fail "too few commands: $commands"
"$BATON" --help | grep -q -- --commands && fail "--commands is for scripts, not in --help"

# docs_missing DOC: the commands (and options) DOC's COMMANDS section lacks.
docs_missing() {
    sed -n '/^## COMMANDS/,/^## /p' "$1" > "$T/section"
    while read -r name words; do
        # The entry: from "`name`" at a line's start to the next entry.
        awk -v n="\`$name\`" 'index($0, n) == 1 { on = 1; print; next }
                              /^`/ { on = 0 } on' "$T/section" > "$T/entry"
        if [ ! -s "$T/entry" ]; then
            echo "$name"
            continue
        fi
        for w in $words; do
            case ${w%%=*} in
                -s | -f | --file | --json | --help | [A-Z]*) ;; # common, or a positional
                *) grep -q -- "\`${w%%=*}\`" "$T/entry" || echo "$name ${w%%=*}" ;;
            esac
        done
    done < "$T/commands"
}

missing=$(docs_missing "$DOC")
[ -z "$missing" ] || fail "docs/cli.md has no entry for: $missing"

# The check has teeth: without the entry of stats, it names stats.
awk '/^`stats`/ { skip = 1; next } /^`/ { skip = 0 } !skip' "$DOC" > "$T/cli.md"
[ "$(docs_missing "$T/cli.md")" = stats ] ||
    fail "a docs/cli.md without stats went unnoticed: '$(docs_missing "$T/cli.md")'"

"$BATON" --help > "$T/help"
for c in $commands; do
    grep -Eq "^  $c( |$)" "$T/help" || fail "baton --help has no line for '$c'"
done

# complete WORD...: what bash completion offers for `baton WORD...`, the
# last word being completed.
complete_words() {
    bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _baton
             echo "${COMPREPLY[@]}"' _ "$COMPLETION" "$BATON" "$@"
}
offered=" $(complete_words "") "
for c in $commands; do
    [[ $offered == *" $c "* ]] || fail "completion does not offer '$c' (offers:$offered)"
done
while read -r name words; do
    offered=" $(complete_words "$name" -) "
    for w in $words; do
        case $w in
            -*) [[ $offered == *" ${w%%=*} "* ]] ||
                    fail "completion of 'baton $name -' lacks ${w%%=*} (offers:$offered)" ;;
        esac
    done
done < "$T/commands"
[ "$(complete_words logs -n "")" = "" ] || fail "completion offered something for a count"

echo "ok: $(echo "$commands" | wc -w) commands, each in docs/cli.md, baton --help and completion"
