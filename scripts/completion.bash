# bash completion for baton (installed as share/bash-completion/completions/baton).
# What it offers comes from the binary being completed: `baton --commands`
# prints a line a command, its name then what it takes: a positional's
# placeholder (SERVICE_FILE), an option (--json), an option with an
# argument as OPT=PLACEHOLDER (-n=N, -f=SERVICE_FILE). No binary, no offer.
_baton() {
    local cur prev cmd bin line w positional=""
    local -a lines=() words=() offer=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    cmd=${COMP_WORDS[1]:-}
    bin=$(type -P -- "${COMP_WORDS[0]/#\~/$HOME}") || return 0
    mapfile -t lines < <("$bin" --commands 2> /dev/null)
    if [ "$COMP_CWORD" -eq 1 ]; then
        for line in "${lines[@]}"; do offer+=("${line%% *}"); done
        mapfile -t COMPREPLY < <(compgen -W "${offer[*]} --version --help" -- "$cur")
        return 0
    fi
    for line in "${lines[@]}"; do
        [ "${line%% *}" = "$cmd" ] && read -ra words <<< "${line#"$cmd"}"
    done
    for w in "${words[@]}"; do
        case $w in
            "$prev"=*) # the argument of the option before
                case ${w#*=} in
                    SERVICE_FILE) mapfile -t COMPREPLY < <(compgen -f -X '!*.lua' -- "$cur") ;;
                    CONTROL_SOCKET | PATH) mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
                esac
                return 0 ;;
            -*) offer+=("${w%%=*}") ;;
            *) positional=$w ;;
        esac
    done
    if [ "$positional" = SERVICE_FILE ] && [[ $cur != -* ]]; then
        mapfile -t COMPREPLY < <(compgen -f -X '!*.lua' -- "$cur")
    else
        mapfile -t COMPREPLY < <(compgen -W "${offer[*]}" -- "$cur")
    fi
}
complete -o filenames -F _baton baton
