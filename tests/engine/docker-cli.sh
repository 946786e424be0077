#!/usr/bin/env bash
# moatd driven by the real docker CLI (Debian's docker.io) and docker-py (python3-docker):
#
#   docker-cli.sh /abs/build/dir
#
# Starts a private moatd (its own socket, data root and exec root in a fresh temp dir; its
# containers' cgroups under this script's own cgroup), loads the bundled busybox image, and goes
# through everyday work: version, info, images, load, save, tag, rmi, run --rm (output, exit
# codes 0/7/127), run -d + logs (-f), exec (with and without -t), ps with filters and --format,
# inspect, top, pause/unpause, rename, restart, stop, kill, wait, rm -f, volumes, bind mounts,
# limits seen in the container's cgroup files, events, bad requests (status and message; nothing
# half-created), the API front's confinement, kill -9 of moatd with a container running and a
# restart (the container is still there, its log kept growing), and docker-py. Then it stops
# moatd and checks that nothing is left: no process, mount or cgroup.
#
# Needs root, docker.io, python3-docker, curl, busybox-static (the bundled image). Prints
# PASS/FAIL per check and "N passed, M failed"; exits 0 when all passed, 1 otherwise, 77 when not
# root. MOAT_ENGINE_KEEP=1 keeps the temp dir.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib-checks.sh"

if [ $# -ne 1 ]; then
  echo "usage: $0 /abs/build/dir" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: the engine test needs root"
  exit 77
fi
# A child subreaper: each container's monitor daemonizes, and PID 1 here does not reap. In a
# network namespace of its own: moatd makes its bridge and nftables tables there, never on the
# host's network.
reexec_isolated "$0" "$@"

BUILD=$1
MOATD=$BUILD/src/daemon/moatd
IMAGE_TAR=$BUILD/images/busybox.tar
DOCKER=/usr/bin/docker
for f in "$MOATD" "$IMAGE_TAR" "$DOCKER"; do
  [ -e "$f" ] || { echo "FAIL: $f is missing (build, and bash tools/install-deps.sh)"; exit 1; }
done
for tool in curl python3 script timeout; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (bash tools/install-deps.sh)"; exit 1; }
done

T=$(mktemp -d /tmp/moat-engine-XXXXXX) || { echo "FAIL: mktemp"; exit 1; }
chmod 0711 "$T"
SOCK=$T/moat.sock
export DOCKER_HOST=unix://$SOCK
export DOCKER_CONFIG=$T/docker-config
MOATD_PID=
# moatd puts its containers' cgroups under "moat/" in its own cgroup of every hierarchy (which
# is this script's): the "moat" dirs, one per hierarchy, and which of them exist already.
MOAT_CG_DIRS=()
while IFS=: read -r _ ctl path; do
  case "$ctl" in
    "") dir=/sys/fs/cgroup$path ;;
    name=*) continue ;;
    *) dir=/sys/fs/cgroup/${ctl%%,*}$path ;;
  esac
  [ -d "$dir" ] && MOAT_CG_DIRS+=("${dir%/}/moat")
done </proc/self/cgroup
PREEXISTING_CG=()
for d in "${MOAT_CG_DIRS[@]}"; do [ -d "$d" ] && PREEXISTING_CG+=("$d"); done

start_moatd() {
  "$MOATD" -H "unix://$SOCK" --data-root "$T/data" --exec-root "$T/exec" --config-file "$T/daemon.json" \
    >>"$T/moatd.log" 2>&1 &
  MOATD_PID=$!
  local i
  for i in $(seq 100); do
    curl -sf --unix-socket "$SOCK" http://x/_ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 1
}

cleanup() {
  echo "== cleanup ($(elapsed) s)"
  if [ -n "$MOATD_PID" ] && kill -0 "$MOATD_PID" 2>/dev/null; then
    local ids
    ids=$(timeout 20 "$DOCKER" ps -aq 2>/dev/null)
    [ -n "$ids" ] && timeout 60 "$DOCKER" rm -f $ids >/dev/null 2>&1
    kill "$MOATD_PID" 2>/dev/null
    wait "$MOATD_PID" 2>/dev/null
  fi
  # Monitors of containers a failed step left behind: found by their dir under $T.
  local p
  stop_leftover_monitors "$T"
  local m
  for m in $(awk -v t="$T" '$5 ~ "^"t {print $5}' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null
  done
  local leftovers
  leftovers=$(awk -v t="$T" '$5 ~ "^"t' /proc/self/mountinfo)
  local procs
  procs=$(for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "$T" && echo "${p#/proc/}"
  done)
  local cgs=""
  local d
  for d in "${MOAT_CG_DIRS[@]}"; do
    [ -d "$d" ] || continue
    cgs+=$(find "$d" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)
    # Removed (when empty) only if this run made it.
    [[ " ${PREEXISTING_CG[*]} " == *" $d "* ]] || rmdir "$d" 2>/dev/null
  done
  if [ -z "$leftovers" ] && [ -z "$procs" ] && [ -z "$cgs" ]; then
    pass "cleanup: no moatd, monitor or container process, mount or cgroup left"
  else
    fail "cleanup: leftovers" "mounts: $leftovers" "processes: $procs" "cgroups: $cgs"
  fi
  if [ "${MOAT_ENGINE_KEEP:-}" = 1 ]; then
    echo "kept $T"
  else
    rm -rf "$T"
  fi
  summary
}
trap 'cleanup; [ $FAILED = 0 ]; exit $?' EXIT

echo '{"log-opts": {"max-size": "1m", "max-file": "2"}}' >"$T/daemon.json"
if ! start_moatd; then
  fail "moatd serves $SOCK" "$(tail -20 "$T/moatd.log")"
  exit 1
fi
pass "moatd $MOATD_PID serves $SOCK"

# --- system -----------------------------------------------------------------------------------
out=$("$DOCKER" version 2>&1)
DETAIL=$out check "docker version: server Moat Engine, API 1.47 (client 1.41)" \
  grep -q "Server: Moat Engine" <<<"$out"
out=$("$DOCKER" info 2>&1)
DETAIL=$out check "docker info: storage driver overlay2, server version 0.1.0" \
  bash -c 'grep -q "Storage Driver: overlay2" <<<"$1" && grep -q "Server Version: 0.1.0" <<<"$1"' _ "$out"

# --- images -----------------------------------------------------------------------------------
out=$("$DOCKER" load -i "$IMAGE_TAR" 2>&1)
DETAIL=$out check "docker load -i busybox.tar: Loaded image: busybox:latest" grep -q "Loaded image: busybox:latest" <<<"$out"
out=$("$DOCKER" images --format '{{.Repository}}:{{.Tag}} {{.ID}}' 2>&1)
DETAIL=$out check "docker images: busybox:latest" grep -q "^busybox:latest " <<<"$out"
"$DOCKER" tag busybox moat-test/bb:1 >/dev/null 2>&1
out=$("$DOCKER" images --format '{{.Repository}}:{{.Tag}}' 2>&1)
DETAIL=$out check "docker tag busybox moat-test/bb:1: listed" grep -q "^moat-test/bb:1$" <<<"$out"
out=$("$DOCKER" save -o "$T/saved.tar" moat-test/bb:1 2>&1 && tar -tf "$T/saved.tar" 2>&1)
DETAIL=$out check "docker save: a tar with manifest.json" grep -q "^manifest.json$" <<<"$out"
out=$("$DOCKER" rmi moat-test/bb:1 2>&1)
DETAIL=$out check "docker rmi moat-test/bb:1: untagged, busybox kept" \
  bash -c 'grep -q "Untagged: moat-test/bb:1" <<<"$1" && "$2" image inspect busybox >/dev/null' _ "$out" "$DOCKER"
out=$("$DOCKER" load -i "$T/saved.tar" 2>&1)
DETAIL=$out check "docker load of the saved archive: moat-test/bb:1 back" grep -q "Loaded image: moat-test/bb:1" <<<"$out"
"$DOCKER" rmi moat-test/bb:1 >/dev/null 2>&1

# --- run --rm ---------------------------------------------------------------------------------
out=$(timeout 30 "$DOCKER" run --rm busybox echo hello 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "docker run --rm busybox echo hello" test "$rc/$out" = "0/hello"
timeout 30 "$DOCKER" run --rm busybox sh -c 'echo to-err >&2; exit 7' >"$T/o" 2>"$T/e"
rc=$?
DETAIL="exit $rc: $(cat "$T/o" "$T/e")" check "docker run --rm: stderr apart, exit code 7" \
  test "$rc/$(cat "$T/e")/$(cat "$T/o")" = "7/to-err/"
out=$(timeout 30 "$DOCKER" run --rm busybox /nosuch 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "docker run of a missing executable: exit 127" test "$rc" = 127
out=$("$DOCKER" ps -aq 2>&1)
DETAIL=$out check "after run --rm: no container left" test -z "$out"
out=$(printf 'from stdin\n' | timeout 30 "$DOCKER" run --rm -i busybox cat 2>&1)
DETAIL=$out check "docker run -i: stdin reaches the container" test "$out" = "from stdin"
out=$(timeout 30 script -qec "$DOCKER run --rm -t busybox tty" /dev/null </dev/null 2>&1 | tr -d '\r')
DETAIL=$out check "docker run -t: a pty" grep -qx '/dev/pts/[0-9]*' <<<"$out"
out=$(timeout 30 "$DOCKER" run --rm -e FOO=bar -w /tmp -u 1000:1000 --hostname hh busybox \
  sh -c 'echo $FOO $(pwd) $(id -u):$(id -g) $(hostname)' 2>&1)
DETAIL=$out check "docker run -e -w -u --hostname" test "$out" = "bar /tmp 1000:1000 hh"
out=$(timeout 30 "$DOCKER" run --rm --entrypoint /bin/echo busybox via-entrypoint 2>&1)
DETAIL=$out check "docker run --entrypoint" test "$out" = "via-entrypoint"
out=$(timeout 30 "$DOCKER" run --rm --read-only busybox touch /x 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "docker run --read-only: the root is read-only" \
  bash -c '[ "$1" != 0 ] && grep -q "Read-only file system" <<<"$2"' _ "$rc" "$out"
out=$(timeout 30 "$DOCKER" run --rm busybox grep CapEff /proc/self/status 2>&1)
DETAIL=$out check "default capabilities: CapEff 00000000800405fb (11 caps)" grep -q "00000000800405fb" <<<"$out"
out=$(timeout 30 "$DOCKER" run --rm --cap-drop ALL --cap-add CHOWN busybox grep CapEff /proc/self/status 2>&1)
DETAIL=$out check "--cap-drop ALL --cap-add CHOWN: CapEff 1" grep -q "0000000000000001" <<<"$out"
out=$(timeout 30 "$DOCKER" run --rm busybox sh -c 'grep -E "^(NoNewPrivs|Seccomp):" /proc/self/status | tr -s "\t " " "' 2>&1)
DETAIL=$out check "seccomp filter and no_new_privs by default" test "$out" = $'NoNewPrivs: 1\nSeccomp: 2'

# --- limits -----------------------------------------------------------------------------------
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  mem_file=/sys/fs/cgroup/memory.max
  pids_file=/sys/fs/cgroup/pids.max
else
  mem_file=/sys/fs/cgroup/memory/memory.limit_in_bytes
  pids_file=/sys/fs/cgroup/pids/pids.max
fi
out=$(timeout 30 "$DOCKER" run --rm --memory 64m --pids-limit 50 busybox cat "$mem_file" "$pids_file" 2>&1)
DETAIL=$out check "--memory 64m --pids-limit 50: seen in the container's cgroup files" test "$out" = $'67108864\n50'

# --- a long-running container -----------------------------------------------------------------
id=$(timeout 30 "$DOCKER" run -d --name web --label tier=front busybox \
  sh -c 'trap "exit 0" TERM; i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done' 2>&1)
rc=$?
DETAIL="exit $rc: $id" check "docker run -d --name web: an id" bash -c '[ "$1" = 0 ] && [ ${#2} = 64 ]' _ "$rc" "$id"
out=$("$DOCKER" ps --filter name=web --filter label=tier=front --format '{{.Names}} {{.Status}}' 2>&1)
DETAIL=$out check "docker ps --filter name=web --filter label=... --format: web Up" grep -q "^web Up" <<<"$out"
sleep 0.5
out=$("$DOCKER" logs web 2>&1)
DETAIL=$out check "docker logs web: the first lines" grep -qx "line0" <<<"$out"
n1=$(timeout 2 "$DOCKER" logs -f --tail 1 web 2>/dev/null | wc -l)
DETAIL="$n1 lines" check "docker logs -f --tail 1: lines keep coming while it runs" test "$n1" -ge 5
out=$("$DOCKER" logs -t --tail 2 web 2>&1)
DETAIL=$out check "docker logs -t --tail 2: two timestamped lines" \
  bash -c '[ $(wc -l <<<"$1") = 2 ] && grep -qE "^20[0-9-]+T[0-9:.]+Z line" <<<"$1"' _ "$out"
out=$("$DOCKER" exec web echo hi 2>&1)
DETAIL=$out check "docker exec web echo hi" test "$out" = hi
"$DOCKER" exec web sh -c 'exit 3' >/dev/null 2>&1
rc=$?
DETAIL="exit $rc" check "docker exec: exit code 3" test "$rc" = 3
out=$("$DOCKER" exec web /nosuch 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "docker exec of a missing program: 127, the error in the stream" \
  bash -c '[ "$1" = 127 ] && grep -q "/nosuch" <<<"$2"' _ "$rc" "$out"
out=$(timeout 30 script -qec "$DOCKER exec -t web tty" /dev/null </dev/null 2>&1 | tr -d '\r')
DETAIL=$out check "docker exec -t: a pty" grep -qx '/dev/pts/[0-9]*' <<<"$out"
out=$("$DOCKER" inspect --format '{{.State.Running}} {{.Name}} {{.Config.Image}}' web 2>&1)
DETAIL=$out check "docker inspect --format" test "$out" = "true /web busybox"
out=$("$DOCKER" top web 2>&1)
DETAIL=$out check "docker top web: the shell" grep -q "sh -c" <<<"$out"
# Clients that leave a wait do not keep core threads: 20 waits on the running container, then
# the clients go away; the core's thread count comes back within seconds.
threads() { awk '/^Threads:/{print $2}' "/proc/$MOATD_PID/status"; }
t0=$(threads)
wait_pids=()
for i in $(seq 20); do
  curl -s --max-time 60 --unix-socket "$SOCK" -X POST 'http://x/v1.41/containers/web/wait' >/dev/null 2>&1 &
  wait_pids+=($!)
done
for i in $(seq 50); do [ "$(threads)" -ge $((t0 + 20)) ] && break; sleep 0.1; done
t1=$(threads)
kill "${wait_pids[@]}" 2>/dev/null
wait "${wait_pids[@]}" 2>/dev/null
for i in $(seq 100); do [ "$(threads)" -le $((t0 + 2)) ] && break; sleep 0.1; done
t2=$(threads)
DETAIL="core threads: $t0 before, $t1 with the 20 waits, $t2 after the clients left" \
  check "waits whose clients left end: the core's threads come back" \
  bash -c '[ "$2" -ge $(($1 + 20)) ] && [ "$3" -le $(($1 + 2)) ]' _ "$t0" "$t1" "$t2"
"$DOCKER" pause web >/dev/null 2>&1
s1=$("$DOCKER" inspect --format '{{.State.Status}}' web 2>&1)
"$DOCKER" unpause web >/dev/null 2>&1
s2=$("$DOCKER" inspect --format '{{.State.Status}}' web 2>&1)
DETAIL="$s1 $s2" check "docker pause / unpause" test "$s1 $s2" = "paused running"
"$DOCKER" rename web web2 >/dev/null 2>&1
out=$("$DOCKER" ps --format '{{.Names}}' 2>&1)
DETAIL=$out check "docker rename web web2" test "$out" = web2
before=$("$DOCKER" inspect --format '{{.State.StartedAt}}' web2 2>&1)
"$DOCKER" restart -t 2 web2 >/dev/null 2>&1
after=$("$DOCKER" inspect --format '{{.State.StartedAt}} {{.State.Running}}' web2 2>&1)
DETAIL="$before -> $after" check "docker restart: running again, started anew" \
  bash -c '[ "${2% *}" != "$1" ] && [ "${2#* }" = true ]' _ "$before" "$after"

# --- kill -9 of moatd, restart: the container lives on ----------------------------------------
lines_before=$("$DOCKER" logs web2 2>/dev/null | wc -l)
kill -KILL "$MOATD_PID"
wait "$MOATD_PID" 2>/dev/null
sleep 1
if start_moatd; then
  out=$("$DOCKER" ps --format '{{.Names}} {{.Status}}' 2>&1)
  lines_after=$("$DOCKER" logs web2 2>/dev/null | wc -l)
  DETAIL="$out; log lines $lines_before -> $lines_after" \
    check "kill -9 moatd, restart: web2 still Up, its log kept growing" \
    bash -c 'grep -q "^web2 Up" <<<"$1" && [ "$3" -gt "$(($2 + 5))" ]' _ "$out" "$lines_before" "$lines_after"
  out=$("$DOCKER" exec web2 echo still-here 2>&1)
  DETAIL=$out check "after the restart: exec works" test "$out" = still-here
else
  fail "moatd restarts after kill -9" "$(tail -20 "$T/moatd.log")"
fi

"$DOCKER" stop -t 5 web2 >/dev/null 2>&1
out=$("$DOCKER" ps -a --filter name=web2 --format '{{.Status}}' 2>&1)
DETAIL=$out check "docker stop: Exited (0) (the TERM trap)" grep -q "^Exited (0)" <<<"$out"
out=$("$DOCKER" wait web2 2>&1)
DETAIL=$out check "docker wait of a stopped container: 0" test "$out" = 0
"$DOCKER" rm web2 >/dev/null 2>&1
out=$("$DOCKER" ps -aq 2>&1)
DETAIL=$out check "docker rm web2: gone" test -z "$out"

id=$(timeout 30 "$DOCKER" run -d busybox sleep 100 2>&1)
"$DOCKER" kill "$id" >/dev/null 2>&1
out=$(timeout 30 "$DOCKER" wait "$id" 2>&1)
DETAIL=$out check "docker kill, docker wait: 137" test "$out" = 137
"$DOCKER" rm "$id" >/dev/null 2>&1
id=$(timeout 30 "$DOCKER" run -d busybox sleep 100 2>&1)
out=$("$DOCKER" rm "$id" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "docker rm of a running container: refused (409)" \
  bash -c '[ "$1" != 0 ] && grep -q "cannot remove a running container" <<<"$2"' _ "$rc" "$out"
out=$("$DOCKER" rm -f "$id" 2>&1)
DETAIL=$out check "docker rm -f of a running container" bash -c '[ -z "$("$1" ps -aq)" ]' _ "$DOCKER"

# --- stats / update ---------------------------------------------------------------------------
id=$(timeout 30 "$DOCKER" run -d --name st --memory 64m busybox sh -c 'while :; do :; done' 2>&1)
out=$(timeout 30 "$DOCKER" stats --no-stream --format '{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}' st 2>&1)
DETAIL=$out check "docker stats --no-stream: a busy container's CPU % (> 10), MEM USAGE / 64MiB, PIDs" \
  bash -c 'IFS="|" read -r n c m p <<<"$1"; c=${c%\%}; [ "$n" = st ] && [ "${c%.*}" -ge 10 ] &&
           [ "${c%.*}" -le 400 ] && [[ "$m" =~ ^[0-9.]+[KMG]?i?B\ /\ 64MiB$ ]] && [ "$p" -ge 1 ]' _ "$out"
curl -s --max-time 30 --unix-socket "$SOCK" 'http://x/v1.41/containers/st/stats?stream=0' >"$T/stats.json"
out=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
c, p, m = d["cpu_stats"], d["precpu_stats"], d["memory_stats"]
print(d["name"], m["limit"], c["online_cpus"] > 0,
      c["system_cpu_usage"] > p["system_cpu_usage"] > 0,
      c["cpu_usage"]["total_usage"] > p["cpu_usage"]["total_usage"] > 0,
      d["pids_stats"]["current"] >= 1, d["read"] > d["preread"] > "0001")' "$T/stats.json" 2>&1)
DETAIL="$out: $(head -c 600 "$T/stats.json")" check "GET stats?stream=0: name, limit, cpu_stats after precpu_stats (ns, online_cpus), pids" \
  test "$out" = "/st 67108864 True True True True True"
n=$(timeout 4 "$DOCKER" stats --format '{{.Name}} {{.MemUsage}}' st 2>/dev/null | grep -c "st .* / 64MiB")
DETAIL="$n lines in 4 s" check "docker stats (streaming): prints again and again" test "$n" -ge 2
# The CLI's stream ends in the front at its next write, after one more sample: wait for it, so
# that no other client samples st while this stream runs.
sleep 1.5
curl -s --max-time 4.5 --unix-socket "$SOCK" 'http://x/v1.41/containers/st/stats' >"$T/stream.json"
out=$(python3 -c '
import json, sys
f = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(len(f) >= 3 and all(b["read"] > a["read"] and b["preread"] == a["read"] and
                          b["precpu_stats"] == a["cpu_stats"] for a, b in zip(f, f[1:])))' "$T/stream.json" 2>&1)
DETAIL="$out: $(cut -c1-120 "$T/stream.json")" \
  check "GET stats (stream): a frame a second, each with the previous one as its precpu_stats" test "$out" = True
out=$(timeout 30 "$DOCKER" update --memory 96m --pids-limit 30 st 2>&1)
rc=$?
in=$("$DOCKER" exec st cat "$mem_file" "$pids_file" 2>&1)
rec=$("$DOCKER" inspect --format '{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}' st 2>&1)
DETAIL="exit $rc: $out; in the container: $in; inspect: $rec" \
  check "docker update --memory 96m --pids-limit 30: live in the container's cgroup files, recorded" \
  test "$rc|$in|$rec" = "0|100663296"$'\n'"30|100663296 30"
out=$(timeout 30 "$DOCKER" stats --no-stream --format '{{.MemUsage}}' st 2>&1)
DETAIL=$out check "docker stats after the update: limit 96MiB" grep -q " / 96MiB$" <<<"$out"
out=$(timeout 30 "$DOCKER" update --memory 512m st 2>&1)
rc=$?
in=$("$DOCKER" exec st cat "$mem_file" 2>&1)
DETAIL="exit $rc: $out; in the container: $in" \
  check "docker update above the memory+swap limit: refused as dockerd does, nothing changed" \
  bash -c '[ "$1" != 0 ] && grep -q "update the memoryswap at the same time" <<<"$2" && [ "$3" = 100663296 ]' _ "$rc" "$out" "$in"
out=$(timeout 30 "$DOCKER" update --blkio-weight 5 st 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "docker update --blkio-weight 5: refused (10..1000)" \
  bash -c '[ "$1" != 0 ] && grep -q "Range of blkio weight is from 10 to 1000" <<<"$2"' _ "$rc" "$out"
"$DOCKER" stop -t 1 st >/dev/null 2>&1
out=$(timeout 30 "$DOCKER" stats --no-stream --format '{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}' st 2>&1)
DETAIL=$out check "docker stats of a stopped container: zeros" test "$out" = "st|0.00%|0B / 0B"
out=$(timeout 30 "$DOCKER" update --memory 80m --restart on-failure:2 st 2>&1)
rc=$?
rec=$("$DOCKER" inspect --format '{{.HostConfig.Memory}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}' st 2>&1)
"$DOCKER" start st >/dev/null 2>&1
in=$("$DOCKER" exec st cat "$mem_file" 2>&1)
DETAIL="exit $rc: $out; inspect: $rec; after start: $in" \
  check "docker update of a stopped container: recorded (memory, restart policy), applied at the next start" \
  test "$rc|$rec|$in" = "0|83886080 on-failure:2|83886080"
"$DOCKER" rm -f st >/dev/null 2>&1

# kill -9 of moatd while `docker load` streams an archive in: no partial image, no temp files.
# The archive: one new 6 MiB layer (not shared with busybox), sent at 1 MiB/s.
python3 - "$T/partial.tar" <<'PY'
import hashlib, io, json, os, sys, tarfile
def add(tf, name, data):
    ti = tarfile.TarInfo(name); ti.size = len(data); ti.mode = 0o644
    tf.addfile(ti, io.BytesIO(data))
layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w") as lt:
    add(lt, "big", os.urandom(6 << 20))
layer = layer.getvalue()
diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/big"]},
                     "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
config_hex = hashlib.sha256(config).hexdigest()
with tarfile.open(sys.argv[1], "w") as tf:
    add(tf, config_hex + ".json", config)
    add(tf, "manifest.json", json.dumps([{"Config": config_hex + ".json", "RepoTags": ["moat-test/partial:1"],
                                          "Layers": ["l1/layer.tar"]}]).encode())
    add(tf, "l1/layer.tar", layer)
PY
images_before=$("$DOCKER" images -q --no-trunc | sort | tr '\n' ' ')
layers_before=$(ls "$T/data/image/layers" 2>&1 | tr '\n' ' ')
curl -s --max-time 30 --limit-rate 1M --unix-socket "$SOCK" -X POST -H 'Content-Type: application/x-tar' \
  --data-binary @"$T/partial.tar" 'http://x/v1.41/images/load?quiet=1' >"$T/load.out" 2>&1 &
curl_pid=$!
sleep 1.5
tmp_during=$(ls -A "$T/data/image/tmp" 2>&1 | wc -l)
kill -KILL "$MOATD_PID"
wait "$MOATD_PID" 2>/dev/null
wait "$curl_pid" 2>/dev/null
sleep 0.5
if start_moatd; then
  images_after=$("$DOCKER" images -q --no-trunc | sort | tr '\n' ' ')
  layers_after=$(ls "$T/data/image/layers" 2>&1 | tr '\n' ' ')
  tmp_after=$(ls -A "$T/data/image/tmp" 2>&1)
  DETAIL="load output: $(head -c 300 "$T/load.out"); temp entries during: $tmp_during; images $images_before -> $images_after; layers $layers_before -> $layers_after; tmp after: $tmp_after" \
    check "kill -9 of moatd mid docker load, restart: no partial image, no new layer, nothing under image/tmp" \
    bash -c '! grep -q "Loaded image" "$1" && [ "$2" -gt 0 ] && [ "$3" = "$4" ] && [ "$5" = "$6" ] && [ -z "$7" ]' \
    _ "$T/load.out" "$tmp_during" "$images_before" "$images_after" "$layers_before" "$layers_after" "$tmp_after"
  out=$("$DOCKER" load -i "$T/partial.tar" 2>&1)
  DETAIL=$out check "after the restart: the daemon serves, the same archive loads whole" \
    grep -q "Loaded image: moat-test/partial:1" <<<"$out"
  "$DOCKER" rmi moat-test/partial:1 >/dev/null 2>&1
else
  fail "moatd restarts after kill -9 during a load" "$(tail -20 "$T/moatd.log")"
fi

# --- volumes and bind mounts ------------------------------------------------------------------
"$DOCKER" volume create v1 >/dev/null 2>&1
out=$("$DOCKER" volume ls --format '{{.Name}}' 2>&1)
DETAIL=$out check "docker volume create / ls" grep -qx v1 <<<"$out"
timeout 30 "$DOCKER" run --rm -v v1:/data busybox sh -c 'echo kept > /data/f' >/dev/null 2>&1
out=$(timeout 30 "$DOCKER" run --rm -v v1:/data busybox cat /data/f 2>&1)
DETAIL=$out check "a named volume keeps data between containers" test "$out" = kept
"$DOCKER" volume rm v1 >/dev/null 2>&1
out=$("$DOCKER" volume ls -q 2>&1)
DETAIL=$out check "docker volume rm" test -z "$out"
mkdir -p "$T/host" && echo from-host >"$T/host/file"
out=$(timeout 30 "$DOCKER" run --rm -v "$T/host:/h" busybox sh -c 'cat /h/file; echo new > /h/made' 2>&1)
DETAIL=$out check "bind mount: read and write" bash -c '[ "$1" = from-host ] && [ "$(cat "$2")" = new ]' _ "$out" "$T/host/made"
out=$(timeout 30 "$DOCKER" run --rm -v "$T/host:/h:ro" busybox touch /h/nope 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "bind mount :ro: writes refused" bash -c '[ "$1" != 0 ] && [ ! -e "$2" ]' _ "$rc" "$T/host/nope"

# --- --init, restart policies ----------------------------------------------------------------
out=$(timeout 30 "$DOCKER" run --rm --init busybox sh -c 'cat /proc/1/comm; (sleep 0.1 &); sleep 0.5; ps -o stat | grep -c "^Z"' 2>&1)
DETAIL=$out check "--init: pid 1 is the init, an orphaned child is reaped (no zombie)" test "$out" = $'moat-init\n0'
id=$(timeout 30 "$DOCKER" run -d --init busybox sleep 100 2>&1)
t0=${EPOCHREALTIME//[!0-9]/}
"$DOCKER" stop -t 10 "$id" >/dev/null 2>&1
t1=${EPOCHREALTIME//[!0-9]/}
code=$("$DOCKER" inspect --format '{{.State.ExitCode}}' "$id" 2>&1)
DETAIL="exit $code after $(((t1 - t0) / 1000)) ms" check "--init forwards SIGTERM: docker stop ends sleep at once (143, not the 10 s KILL)" \
  bash -c '[ "$1" = 143 ] && [ "$2" -lt 5000000 ]' _ "$code" "$((t1 - t0))"
"$DOCKER" rm "$id" >/dev/null 2>&1
id=$(timeout 30 "$DOCKER" run -d --restart on-failure:2 busybox sh -c 'exit 3' 2>&1)
for _ in $(seq 60); do
  st=$("$DOCKER" inspect --format '{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}' "$id" 2>&1)
  [ "$st" = "2 exited 3" ] && break
  sleep 0.1
done
DETAIL=$st check "--restart on-failure:2: restarted twice, then exited 3" test "$st" = "2 exited 3"
"$DOCKER" rm -f "$id" >/dev/null 2>&1
id=$(timeout 30 "$DOCKER" run -d --restart always busybox sleep 100 2>&1)
"$DOCKER" stop -t 1 "$id" >/dev/null 2>&1
sleep 0.5
st=$("$DOCKER" inspect --format '{{.State.Status}} {{.RestartCount}}' "$id" 2>&1)
DETAIL=$st check "--restart always: docker stop keeps it stopped" test "$st" = "exited 0"
"$DOCKER" rm -f "$id" >/dev/null 2>&1

# --- bad requests -----------------------------------------------------------------------------
api() { curl -s --unix-socket "$SOCK" -o "$T/body" -w '%{http_code}' "$@"; }
count_before=$("$DOCKER" ps -aq | wc -l)
code=$(api -X POST -H 'Content-Type: application/json' -d '{"Image": "busybox",' http://x/v1.41/containers/create)
DETAIL="$code $(cat "$T/body")" check "malformed JSON: 400 invalid JSON" \
  bash -c '[ "$1" = 400 ] && grep -q "invalid JSON" "$2"' _ "$code" "$T/body"
code=$(api -X POST -H 'Content-Type: application/json' -d '{"Image": "busybox", "HostConfig": {"Memory": "lots"}}' http://x/v1.41/containers/create)
DETAIL="$code $(cat "$T/body")" check "wrong type: 400 naming HostConfig.Memory" \
  bash -c '[ "$1" = 400 ] && grep -q "HostConfig.Memory: expected integer" "$2"' _ "$code" "$T/body"
code=$(api -X POST -H 'Content-Type: application/json' -d '{"Image": "nosuch:1"}' http://x/v1.41/containers/create)
DETAIL="$code $(cat "$T/body")" check "unknown image: 404 No such image" \
  bash -c '[ "$1" = 404 ] && grep -q "No such image" "$2"' _ "$code" "$T/body"
code=$(api -X POST -H 'Content-Type: application/json' -d '{"Image": "busybox", "HostConfig": {"Binds": ["/etc:relative"]}}' http://x/v1.41/containers/create)
DETAIL="$code $(cat "$T/body")" check "invalid mount: 400" bash -c '[ "$1" = 400 ] && grep -q "must be absolute" "$2"' _ "$code" "$T/body"
head -c 6000000 /dev/zero | tr '\0' ' ' >"$T/big"
code=$(api -X POST -H 'Content-Type: application/json' --data-binary @"$T/big" http://x/v1.41/containers/create)
DETAIL="$code $(cat "$T/body")" check "oversized body: 413" test "$code" = 413
"$DOCKER" create --name taken busybox true >/dev/null 2>&1
code=$(api -X POST -H 'Content-Type: application/json' -d '{"Image": "busybox"}' 'http://x/v1.41/containers/create?name=taken')
DETAIL="$code $(cat "$T/body")" check "name conflict: 409" bash -c '[ "$1" = 409 ] && grep -q "already in use" "$2"' _ "$code" "$T/body"
"$DOCKER" rm taken >/dev/null 2>&1
code=$(api http://x/v1.41/containers/nosuch/json)
DETAIL="$code $(cat "$T/body")" check "unknown container: 404 No such container" \
  bash -c '[ "$1" = 404 ] && grep -q "No such container: nosuch" "$2"' _ "$code" "$T/body"
count_after=$("$DOCKER" ps -aq | wc -l)
DETAIL="$count_before -> $count_after" check "bad requests left nothing half-created" test "$count_before" = "$count_after"
leftover=$(ls -A "$T/data/containers" | grep -v '^\.' | wc -l)
DETAIL="$leftover dirs" check "no container directory left by the failed creates" test "$leftover" = "$count_after"

# --- events -----------------------------------------------------------------------------------
out=$("$DOCKER" events --since 0 --until "$(date +%s)" --filter type=container --format '{{.Action}}' 2>&1 | sort -u | tr '\n' ' ')
DETAIL=$out check "docker events --since --until: create, start, die, destroy" \
  bash -c 'for a in create start die destroy; do grep -qw $a <<<"$1" || exit 1; done' _ "$out"

# --- the API front's confinement --------------------------------------------------------------
front=$(pgrep -P "$MOATD_PID" | head -1)
st=$(grep -E '^(Uid|CapEff|CapPrm|NoNewPrivs|Seccomp):' "/proc/$front/status" 2>&1 | tr -s '\t ' ' ')
DETAIL=$st check "API front (pid $front): non-zero uid, CapEff 0, NoNewPrivs 1, Seccomp 2" \
  bash -c 'grep -q "^Uid: [1-9]" <<<"$1" && grep -q "^CapEff: 0000000000000000" <<<"$1" &&
           grep -q "^NoNewPrivs: 1" <<<"$1" && grep -q "^Seccomp: 2" <<<"$1"' _ "$st"
root=$(readlink "/proc/$front/root")
DETAIL=$root check "API front: its root is an empty directory" bash -c '[ -z "$(ls -A "$1")" ]' _ "$T/exec/front-root"
out=$("$MOATD" --front-selftest --data-root "$T/data2" --exec-root "$T/exec2" --config-file "$T/daemon.json" 2>&1)
DETAIL=$out check "a confined front cannot open a file under the data root nor execve (as root or not)" \
  bash -c 'grep -q "moatd.lock: \(Operation not permitted\|No such file\)" <<<"$1" &&
           grep -q "execve /bin/sh: Operation not permitted" <<<"$1"' _ "$out"

# --- idle memory ------------------------------------------------------------------------------
# Once no request came for a while, the core and the front give back the code and data their
# requests ran (sys::QuietReleaser): their resident set falls well below its peak (VmHWM).
"$DOCKER" info >/dev/null 2>&1
quiet_rss() {
  local p=$1 i rss hwm
  for i in $(seq 100); do
    rss=$(awk '/^VmRSS:/{print $2}' "/proc/$p/status"); hwm=$(awk '/^VmHWM:/{print $2}' "/proc/$p/status")
    [ $((rss * 3)) -lt $((hwm * 2)) ] && { echo "VmRSS $rss < 2/3 of VmHWM $hwm KiB"; return 0; }
    sleep 0.1
  done
  echo "VmRSS $rss, VmHWM $hwm KiB after 10 s"
  return 1
}
for who in "core $MOATD_PID" "API front $front"; do
  out=$(quiet_rss "${who##* }")
  rc=$?
  DETAIL=$out check "quiet ${who% *}: VmRSS under 2/3 of its peak" test "$rc" = 0
done

# --- cp, export, diff, commit ----------------------------------------------------------------
timeout 30 "$DOCKER" run -d --name fsrun busybox sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done' >/dev/null 2>&1
echo "from the host $$" >"$T/cp-in.txt"
mkdir -p "$T/cpdir/sub" && echo nested >"$T/cpdir/sub/f"
out=$(timeout 30 "$DOCKER" cp "$T/cp-in.txt" fsrun:/tmp/ 2>&1 && timeout 30 "$DOCKER" cp "$T/cpdir" fsrun:/tmp/ 2>&1 &&
      timeout 30 "$DOCKER" exec fsrun cat /tmp/cp-in.txt /tmp/cpdir/sub/f 2>&1)
DETAIL=$out check "docker cp of a file and a directory into a running container" \
  test "$out" = "from the host $$"$'\n'"nested"
# Ownership: root in the container without -a, the archive's (the host file's) ids with -a.
echo owned >"$T/cp-owned.txt" && chown 1234:5678 "$T/cp-owned.txt"
out=$(timeout 30 "$DOCKER" cp "$T/cp-owned.txt" fsrun:/tmp/plain.txt 2>&1 &&
      timeout 30 "$DOCKER" cp -a "$T/cp-owned.txt" fsrun:/tmp/kept.txt 2>&1 &&
      timeout 30 "$DOCKER" exec fsrun stat -c '%u:%g' /tmp/plain.txt /tmp/kept.txt 2>&1)
DETAIL=$out check "docker cp: owned by root; docker cp -a: the file's uid:gid (copyUIDGID)" \
  test "$out" = "0:0"$'\n'"1234:5678"
rm -rf "$T/cp-out" && mkdir "$T/cp-out"
out=$(timeout 30 "$DOCKER" cp fsrun:/tmp/cpdir "$T/cp-out/" 2>&1 && timeout 30 "$DOCKER" cp fsrun:/tmp/cp-in.txt "$T/cp-out/f.txt" 2>&1 &&
      cat "$T/cp-out/cpdir/sub/f" "$T/cp-out/f.txt" 2>&1)
DETAIL=$out check "docker cp of a directory and a file out of a running container" \
  test "$out" = "nested"$'\n'"from the host $$"
# Symlinks in the container resolve inside it: not to the host's file of the same path.
echo "host secret $$" >"$T/secret"
timeout 30 "$DOCKER" exec fsrun sh -c "ln -s $T/secret /tmp/evil; ln -s ../../../../../..$T /tmp/evildir" >/dev/null 2>&1
timeout 30 "$DOCKER" cp -L fsrun:/tmp/evil "$T/cp-out/evil" >/dev/null 2>&1
timeout 30 "$DOCKER" cp fsrun:/tmp/evildir/secret "$T/cp-out/evil2" >/dev/null 2>&1
timeout 30 "$DOCKER" cp fsrun:/tmp/evil "$T/cp-out/evil3" >/dev/null 2>&1
out=$(cat "$T/cp-out/evil" "$T/cp-out/evil2" 2>/dev/null; ls -l "$T/cp-out/evil3" 2>&1)
DETAIL=$out check "docker cp of symlinks to a host path (-L, as a parent, as is): no host file, the link itself" \
  bash -c '! grep -q "host secret" <<<"$1" && [ -L "$2" ]' _ "$out" "$T/cp-out/evil3"
out=$(timeout 30 "$DOCKER" cp fsrun:/nosuch "$T/cp-out/" 2>&1)
DETAIL=$out check "docker cp of a missing path: not found" grep -q "No such container:path: fsrun:/nosuch" <<<"$out"
out=$(timeout 30 "$DOCKER" create --name fsstop busybox cat /cp-in.txt 2>&1 >/dev/null &&
      timeout 30 "$DOCKER" cp "$T/cp-in.txt" fsstop:/ 2>&1 &&
      timeout 30 "$DOCKER" cp fsstop:/cp-in.txt - 2>&1 | tar -xO 2>&1 &&
      timeout 30 "$DOCKER" start -a fsstop 2>&1)
DETAIL=$out check "docker cp into and out of a stopped container; it starts and sees the file" \
  test "$out" = "from the host $$"$'\n'"from the host $$"
out=$(timeout 30 "$DOCKER" export fsrun 2>&1 | tar -t 2>&1)
DETAIL=$(head -5 <<<"$out") check "docker export | tar t: bin/busybox and tmp/cp-in.txt" \
  bash -c 'grep -qx "bin/busybox" <<<"$1" && grep -qx "tmp/cp-in.txt" <<<"$1"' _ "$out"
timeout 30 "$DOCKER" exec fsrun rm /bin/ls >/dev/null 2>&1
out=$(timeout 30 "$DOCKER" diff fsrun 2>&1)
DETAIL=$out check "docker diff: C /tmp, A /tmp/cp-in.txt, D /bin/ls" \
  bash -c 'grep -qx "C /tmp" <<<"$1" && grep -qx "A /tmp/cp-in.txt" <<<"$1" && grep -qx "D /bin/ls" <<<"$1"' _ "$out"
out=$(timeout 60 "$DOCKER" commit -c 'ENV FS=committed' -m "fs test" fsrun moat-test/fs:1 2>&1)
DETAIL=$out check "docker commit: an image id" grep -q "^sha256:[0-9a-f]\{64\}$" <<<"$out"
out=$(timeout 30 "$DOCKER" run --rm moat-test/fs:1 sh -c 'cat /tmp/cp-in.txt; echo $FS; test -e /bin/ls || echo no-ls' 2>&1)
DETAIL=$out check "docker run of the committed image: the file, the ENV change, the deletion" \
  test "$out" = "from the host $$"$'\n'"committed"$'\n'"no-ls"
out=$("$DOCKER" ps --filter name=fsrun --format '{{.Status}}' 2>&1)
DETAIL=$out check "after commit (paused for it): fsrun still Up, not paused" \
  bash -c 'grep -q "^Up" <<<"$1" && ! grep -q Paused <<<"$1"' _ "$out"
timeout 60 "$DOCKER" rm -f fsrun fsstop >/dev/null 2>&1
"$DOCKER" rmi moat-test/fs:1 >/dev/null 2>&1

# --- docker-py --------------------------------------------------------------------------------
out=$(timeout 120 /usr/bin/python3 - "$SOCK" <<'PY' 2>&1
import sys
import docker
c = docker.DockerClient(base_url="unix://" + sys.argv[1], version="auto")
assert c.version()["ApiVersion"] == "1.47", c.version()
assert any("busybox:latest" in i.tags for i in c.images.list()), c.images.list()
out = c.containers.run("busybox", "echo from-docker-py", remove=True)
assert out == b"from-docker-py\n", out
ct = c.containers.run("busybox", ["sh", "-c", "echo started; sleep 100"], detach=True, name="py1")
ct.reload()
assert ct.status == "running", ct.status
for _ in range(20):
    # docker-py reads the 101 through a buffered reader: output sent with the headers would be lost
    r = ct.exec_run(["sh", "-c", "echo in-exec; exit 4"])
    assert r.exit_code == 4 and r.output == b"in-exec\n", r
assert b"started" in ct.logs()
ct.stop(timeout=1)
assert ct.wait()["StatusCode"] == 137
ct.remove()
try:
    c.containers.get("py1")
    raise SystemExit("py1 still exists")
except docker.errors.NotFound:
    pass
try:
    c.containers.run("busybox", "/nosuch", remove=True)
    raise SystemExit("no error for a missing executable")
except docker.errors.APIError as e:
    assert "executable file not found" in str(e) or "no such file" in str(e), str(e)
print("docker-py ok")
PY
)
DETAIL=$out check "docker-py: version, images, run (remove), detach, exec_run, logs, stop, wait, remove, errors" \
  grep -q "docker-py ok" <<<"$out"
