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

_moat() {
  local cur prev words cword
  _init_completion 2>/dev/null || {
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  }
  local commands="attach commit container cp create diff events exec export image images import
    info inspect kill load logs pause port ps rename restart rm rmi run save start stats stop
    system tag top unpause update version volume wait"

  # The command is the first word that is not an option (or the value of -H).
  local i cmd="" sub=""
  for ((i = 1; i < cword; i++)); do
    case ${words[i]} in
      -H | --host) ((i++)) ;;
      -*) ;;
      *)
        if [[ -z $cmd ]]; then
          cmd=${words[i]}
        elif [[ -z $sub && $cmd =~ ^(volume|system|image|container)$ ]]; then
          sub=${words[i]}
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
      COMPREPLY=($(compgen -W "none host bridge default" -- "$cur"))
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
          --cpu-shares --cpuset-cpus --pids-limit --ulimit --sysctl --device --network
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
