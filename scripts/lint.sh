#!/usr/bin/env bash
# Checks the habits the code keeps, each with the tool that keeps it:
#   format     clang-format --dry-run -Werror (.clang-format) on the C of
#              src/, include/, tests/unit/, bench/ and examples/
#   lua        luacheck (.luacheckrc: lua/, policies/, tests/lua/, bench/,
#              examples/)
#   cppcheck   cppcheck on src/: warnings, performance, portability
#   includes   scripts/check_includes.sh: no include cycle among src/ modules
# Installs what is missing first (scripts/deps.sh lint). Runs every check,
# then exits 1 if any failed, naming each failed check and how to mend it.
#   scripts/lint.sh                   every check
#   scripts/lint.sh format includes   only these
#   scripts/lint.sh -v ...            formatting: the diff, not just the files
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

verbose=0
checks=()
for a in "$@"; do
    case "$a" in
        -v | --verbose) verbose=1 ;;
        format | lua | cppcheck | includes) checks+=("$a") ;;
        -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [-v] [format|lua|cppcheck|includes ...]" >&2; exit 2 ;;
    esac
done
[ ${#checks[@]} -gt 0 ] || checks=(format lua cppcheck includes)

scripts/deps.sh lint || { echo "lint: could not install its tools (scripts/deps.sh lint)" >&2; exit 2; }

failed=() # one line per failed check: what to mend
fail_check() { failed+=("$*"); } # fail_check WORDS...: joined with spaces

# The C files clang-format keeps, outside build trees and benchmark output.
c_files() {
    find src include tests/unit tests/fuzz bench examples \
        \( -path 'bench/out' -o -name 'build*' \) -prune -o \
        -type f \( -name '*.c' -o -name '*.h' \) -print | LC_ALL=C sort
}

check_format() {
    local version f n bad=() lines=0
    version=$(clang-format --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
    echo "=== format: clang-format $version, .clang-format"
    [ "$version" = 14 ] || echo "note: .clang-format was tuned with clang-format 14" \
        "(Debian 12); version $version may lay code out differently"
    if ! clang-format --dump-config > /dev/null; then
        fail_check "format: clang-format cannot read .clang-format (the error above); mend it"
        return
    fi
    while IFS= read -r f; do
        clang-format --dry-run -Werror "$f" > /dev/null 2>&1 && continue
        n=$(clang-format "$f" | diff "$f" - | grep -c '^<')
        bad+=("$f")
        lines=$((lines + n))
        echo "  $f: $n line(s) to reformat"
        [ $verbose -eq 0 ] || clang-format "$f" |
            diff -u --label "$f" --label "$f (formatted)" "$f" - | sed 's/^/    /'
    done < <(c_files)
    if [ ${#bad[@]} -eq 0 ]; then
        echo "ok"
    else
        fail_check "format: ${#bad[@]} file(s), $lines line(s) differ from .clang-format;" \
            "see them with 'scripts/lint.sh -v format', mend with 'clang-format -i FILE...'" \
            "(the files listed above)"
    fi
}

check_lua() {
    echo "=== lua: $(luacheck --version | head -1), .luacheckrc"
    # .luacheckrc owns the list of files (include_files).
    if luacheck --no-color --codes -q . 2>&1; then
        echo "ok"
    else
        fail_check "lua: the luacheck warnings above; mend the code (an unused value: drop it" \
            "or name it _), or, where the code is right, add '-- luacheck: ignore CODE'" \
            "and the reason on that line"
    fi
}

check_cppcheck() {
    local jansson=()
    echo "=== cppcheck: $(cppcheck --version), src/"
    # jansson's iteration macros (json_array_foreach ...) from the real
    # header; every other system header stays out (missingIncludeSystem).
    [ ! -f /usr/include/jansson.h ] || jansson=(--include=/usr/include/jansson.h)
    if cppcheck --quiet --error-exitcode=1 --inline-suppr -j "$(nproc)" \
        --enable=warning,performance,portability --std=c11 -D_GNU_SOURCE \
        --library=posix,gnu,lua "${jansson[@]}" \
        -I src -I include -I src/libbaton --suppress=missingIncludeSystem \
        --template='{file}:{line}:{column}: {severity}: {message} [{id}]' src/ 2>&1; then
        echo "ok"
    else
        fail_check "cppcheck: the findings above; mend the code, or, for a false positive," \
            "put '// cppcheck-suppress ID' (and why) on the line before it"
    fi
}

check_includes() {
    echo "=== includes: scripts/check_includes.sh"
    if scripts/check_includes.sh 2>&1; then
        echo "ok"
    else
        fail_check "includes: the cycles above; make each dependency run one way (a header" \
            "of its own for what both sides need, or a forward declaration);" \
            "'scripts/check_includes.sh --graph' shows the graph"
    fi
}

for c in "${checks[@]}"; do
    "check_$c"
done

echo
if [ ${#failed[@]} -eq 0 ]; then
    echo "lint: ok (${checks[*]})"
    exit 0
fi
echo "lint: ${#failed[@]} of ${#checks[@]} check(s) failed:"
for f in "${failed[@]}"; do
    echo "  - $f"
done
exit 1
