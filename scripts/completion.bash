# bash completion for baton (installed as share/bash-completion/completions/baton).
_baton() {
    local cur prev cmd
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    cmd=${COMP_WORDS[1]:-}
    local commands="run check restart status stats stop rollback reload events logs drill version"
    if [ "$COMP_CWORD" -eq 1 ]; then
        mapfile -t COMPREPLY < <(compgen -W "$commands --version --help" -- "$cur")
        return
    fi
    case $prev in
        -s | --socket) mapfile -t COMPREPLY < <(compgen -f -- "$cur"); return ;;
        -f | --file)
            if [ "$cmd" != logs ] || [ "$prev" = --file ]; then
                mapfile -t COMPREPLY < <(compgen -f -X '!*.lua' -- "$cur")
                return
            fi ;;
        -n | --gen | --connections | --listener) return ;;
    esac
    case $cmd in
        run | check) mapfile -t COMPREPLY < <(compgen -f -X '!*.lua' -- "$cur") ;;
        events) mapfile -t COMPREPLY < <(compgen -W "-s -f -n --json --help" -- "$cur") ;;
        logs) mapfile -t COMPREPLY < <(compgen -W "-s --file -f -n --gen --json --help" -- "$cur") ;;
        drill) mapfile -t COMPREPLY < <(compgen -W "-s -f -n --listener --connections --json --help" -- "$cur") ;;
        restart) mapfile -t COMPREPLY < <(compgen -W "-s -f --json --progress --quiet --help" -- "$cur") ;;
        status | stats | stop | rollback | reload)
            mapfile -t COMPREPLY < <(compgen -W "-s -f --json --help" -- "$cur") ;;
    esac
}
complete -o filenames -F _baton baton
