# bash completion for moat, the moatd client. Install as
# /usr/share/bash-completion/completions/moat.

_moat_containers() {
  local all=$1
  moat ps ${all:+-a} --format '{{.Names}}' 2>/dev/null
}

_moat_images() {
  moat images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -v '<none>'
}

_moat_volumes() {
  moat volume ls -q 2>/dev/null
}

_moat_networks() {
  moat network ls --format '{{.Name}}' 2>/dev/null
}

_moat() {
  local cur prev words cword
  _init_completion 2>/dev/null || {
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  }
  local commands="attach commit container cp create diff events exec export image images import
    info inspect kill load logs network pause port ps rename restart rm rmi run save start stats
    stop system tag top unpause update version volume wait"

  # The command is the first word that is not an option (or the value of -H).
  local i cmd="" sub="" subi=0
  for ((i = 1; i < cword; i++)); do
    case ${words[i]} in
      -H | --host) ((i++)) ;;
      -*) ;;
      *)
        if [[ -z $cmd ]]; then
          cmd=${words[i]}
        elif [[ -z $sub && $cmd =~ ^(volume|system|image|container|network)$ ]]; then
          sub=${words[i]}
          subi=$i
        fi
        ;;
    esac
  done

  if [[ -z $cmd ]]; then
    COMPREPLY=($(compgen -W "$commands -H --host -D --debug -v --version --help" -- "$cur"))
    return
  fi

  case $prev in
    -H | --host)
      COMPREPLY=($(compgen -W "unix:///run/moat/moat.sock" -- "$cur"))
      return ;;
    -i | --input | -o | --output | --env-file)
      COMPREPLY=($(compgen -f -- "$cur"))
      return ;;
    --network | --net)
      COMPREPLY=($(compgen -W "none host bridge default $(_moat_networks)" -- "$cur"))
      return ;;
    -d | --driver)
      if [[ $cmd == network ]]; then
        COMPREPLY=($(compgen -W "bridge host none macvlan ipvlan" -- "$cur"))
        return
      fi ;;
    --link)
      COMPREPLY=($(compgen -W "$(_moat_containers)" -- "$cur"))
      return ;;
    --restart)
      COMPREPLY=($(compgen -W "no always unless-stopped on-failure" -- "$cur"))
      return ;;
    --pull)
      COMPREPLY=($(compgen -W "always missing never" -- "$cur"))
      return ;;
    --type)
      COMPREPLY=($(compgen -W "container image volume network" -- "$cur"))
      return ;;
    -s | --signal | --stop-signal)
      COMPREPLY=($(compgen -W "SIGTERM SIGKILL SIGINT SIGHUP SIGQUIT SIGUSR1 SIGUSR2" -- "$cur"))
      return ;;
  esac

  case $cmd in
    volume)
      if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "create ls rm inspect prune" -- "$cur"))
      elif [[ $sub == rm || $sub == inspect ]]; then
        COMPREPLY=($(compgen -W "$(_moat_volumes)" -- "$cur"))
      fi ;;
    network)
      if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "create ls list inspect rm remove connect disconnect prune" -- "$cur"))
      elif [[ $cur == -* ]]; then
        case $sub in
          create) COMPREPLY=($(compgen -W "-d --driver --subnet --gateway --ip-range --aux-address
            --internal --attachable --ipv6 -o --opt --label --ipam-driver --ipam-opt --scope --help" -- "$cur")) ;;
          ls | list) COMPREPLY=($(compgen -W "-q --quiet -f --filter --format --no-trunc --help" -- "$cur")) ;;
          inspect) COMPREPLY=($(compgen -W "-f --format -v --verbose --help" -- "$cur")) ;;
          rm | remove) COMPREPLY=($(compgen -W "-f --force --help" -- "$cur")) ;;
          connect) COMPREPLY=($(compgen -W "--alias --ip --ip6 --link --link-local-ip --driver-opt --help" -- "$cur")) ;;
          disconnect) COMPREPLY=($(compgen -W "-f --force --help" -- "$cur")) ;;
          prune) COMPREPLY=($(compgen -W "-f --force --filter --help" -- "$cur")) ;;
        esac
      else
        case $sub in
          inspect | rm | remove) COMPREPLY=($(compgen -W "$(_moat_networks)" -- "$cur")) ;;
          connect | disconnect)
            # NETWORK first, then CONTAINER.
            local n=0 j
            for ((j = subi + 1; j < cword; j++)); do
              case ${words[j]} in
                --alias | --ip | --ip6 | --link | --link-local-ip | --driver-opt) ((j++)) ;;
                -*) ;;
                *) ((n++)) ;;
              esac
            done
            if ((n == 0)); then
              COMPREPLY=($(compgen -W "$(_moat_networks)" -- "$cur"))
            else
              COMPREPLY=($(compgen -W "$(_moat_containers all)" -- "$cur"))
            fi ;;
        esac
      fi ;;
    system)
      [[ -z $sub ]] && COMPREPLY=($(compgen -W "info df prune events" -- "$cur")) ;;
    image)
      [[ -z $sub ]] && COMPREPLY=($(compgen -W "ls rm load save import tag prune" -- "$cur")) ;;
    container)
      [[ -z $sub ]] && COMPREPLY=($(compgen -W "ls run create exec start attach wait logs rm stop restart kill pause unpause rename top stats inspect export diff cp port update commit prune" -- "$cur")) ;;
    run | create)
      if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "--rm -d --detach -e --env --env-file -w --workdir -u --user --entrypoint
          --name -h --hostname -i --interactive -t --tty --init --restart -v --volume --mount --tmpfs
          --read-only --cap-add --cap-drop --privileged --security-opt --memory --memory-swap --cpus
          --cpu-shares --cpuset-cpus --pids-limit --ulimit --sysctl --device --network --net
          --network-alias --ip --ip6 --link --link-local-ip --mac-address --dns --dns-search
          --dns-option --add-host --expose -P --publish-all
          --stop-signal --stop-timeout --label -p --publish --pull --help" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "$(_moat_images)" -- "$cur"))
      fi ;;
    rmi | save | tag | history)
      COMPREPLY=($(compgen -W "$(_moat_images)" -- "$cur")) ;;
    start | rm | inspect | diff | export | commit | rename | wait | port)
      COMPREPLY=($(compgen -W "$(_moat_containers all)" -- "$cur")) ;;
    stop | kill | restart | pause | unpause | exec | attach | logs | top | stats | update | cp)
      COMPREPLY=($(compgen -W "$(_moat_containers)" -- "$cur")) ;;
  esac
}

complete -F _moat moat
