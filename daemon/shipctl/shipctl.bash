# bash completion for shipctl: commands, options, and SKIs from the running shipd (`shipctl peers --json`,
# `shipctl discovered --json`), asked on the same bus as the command line being completed.
# Needs nothing but bash; works with or without the bash-completion package.

_shipctl_commands="status peers discovered trust untrust connect disconnect cancel send monitor qr auto-accept pending agent block unblock info help"
_shipctl_options="--json --system --session --bus-address --wait --help --version"

# SKIs shipd knows: `_shipctl_skis BUSARGS... -- peers|discovered...`
_shipctl_skis() {
    local -a bus=()
    while [[ $# -gt 0 && $1 != -- ]]; do bus+=("$1"); shift; done
    shift
    local what out
    for what in "$@"; do
        out=$(shipctl "${bus[@]}" "$what" --json 2>/dev/null) || continue
        grep -o '"ski":"[0-9a-f]\{40\}"' <<<"$out" | cut -d'"' -f4
    done | sort -u
}

_shipctl() {
    # bash splits words at ':' and '=' (COMP_WORDBREAKS); glue them back so `unix:path=/x` is one word.
    local -a words=()
    local cword=0 i w glue=0
    for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
        w=${COMP_WORDS[i]}
        if ((i > 0 && ${#words[@]} > 0)) && [[ $glue == 1 || $w == ":" || $w == "=" ]] && [[ -n $w || $glue == 1 ]]; then
            words[${#words[@]} - 1]+=$w
        else
            words+=("$w")
        fi
        [[ $w == *[:=] ]] && glue=1 || glue=0
        ((i == COMP_CWORD)) && cword=$((${#words[@]} - 1))
    done
    local cur=${words[cword]} prev=""
    ((cword > 0)) && prev=${words[cword - 1]}

    case $prev in
    --bus-address | --wait) return 0 ;; # a value the user knows
    esac

    # The command, its position among the arguments, and the bus options to ask shipd on.
    local -a bus=() args=()
    local command="" options_done=0
    for ((i = 1; i < cword; i++)); do
        w=${words[i]}
        if ((!options_done)) && [[ $w == -* && $w != - ]]; then
            case $w in
            --) options_done=1 ;;
            --system | --session) bus=("$w") ;;
            --bus-address) bus=("$w" "${words[i + 1]}"); ((i++)) ;;
            --bus-address=*) bus=("$w") ;;
            --wait) ((i++)) ;;
            esac
        elif [[ -z $command ]]; then
            command=$w
        else
            args+=("$w")
        fi
    done

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$_shipctl_options" -- "$cur"))
        return 0
    fi
    if [[ -z $command ]]; then
        COMPREPLY=($(compgen -W "$_shipctl_commands" -- "$cur"))
        return 0
    fi
    local n=${#args[@]} candidates=""
    case $command in
    trust) ((n == 0)) && candidates=$(_shipctl_skis "${bus[@]}" -- discovered peers) ;;
    untrust | disconnect | cancel | unblock | info) ((n == 0)) && candidates=$(_shipctl_skis "${bus[@]}" -- peers) ;;
    block) ((n == 0)) && candidates=$(_shipctl_skis "${bus[@]}" -- peers discovered) ;;
    connect) ((n == 0)) && candidates=$(_shipctl_skis "${bus[@]}" -- peers discovered) ;;
    send)
        if ((n == 0)); then candidates=$(_shipctl_skis "${bus[@]}" -- peers); fi
        if ((n == 1)); then candidates="-"; fi
        ;;
    status) ((n == 0)) && candidates="ski ship-id port version auto-accept wait-for-trust" ;;
    auto-accept) ((n == 0)) && candidates="on off" ;;
    help) ((n == 0)) && candidates=$_shipctl_commands ;;
    esac
    COMPREPLY=($(compgen -W "$candidates" -- "$cur"))
    return 0
}

complete -F _shipctl shipctl
