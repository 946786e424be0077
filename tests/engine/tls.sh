#!/usr/bin/env bash
# moatd's Engine API over TCP with TLS and client certificates, driven by the real docker CLI
# and by moat:
#
#   tls.sh /abs/build/dir
#
# Makes a CA, a server certificate (SAN IP:127.0.0.1) and client certificates with the openssl
# CLI in a temp dir; starts a private moatd (own data and exec roots) in a network namespace of
# its own (its TCP port is on a private loopback, never on the host's network) listening on a
# unix socket and on tcp://127.0.0.1:PORT at once; then: docker version, load (a chunked
# request body), run --rm, run -i (stdin and its EOF through TLS), run -d + logs -f, exec with
# and without -t (hijacked connections over TLS), events --until; the moat CLI the same basics;
# refused: no client certificate, a client certificate from another CA, a server-only
# certificate used as a client one, plain HTTP, TLS 1.1; moatd refuses to start with tcp://
# without --tlsverify or without the files; the API front is still confined (CapEff 0,
# NoNewPrivs 1, Seccomp 2) and reports the client certificate's CN.
#
# Needs root, docker.io, openssl, curl, script, busybox-static (the bundled image). Prints
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
  echo "SKIP: the TLS engine test needs root"
  exit 77
fi
# A child subreaper (the containers' monitors daemonize) in a network namespace of its own.
reexec_isolated "$0" "$@"

BUILD=$1
MOATD=$BUILD/src/daemon/moatd
MOAT=$BUILD/src/cli/moat
IMAGE_TAR=$BUILD/images/busybox.tar
DOCKER_BIN=/usr/bin/docker
PORT=23761
for f in "$MOATD" "$MOAT" "$IMAGE_TAR" "$DOCKER_BIN"; do
  [ -e "$f" ] || { echo "FAIL: $f is missing (build, and bash tools/install-deps.sh)"; exit 1; }
done
for tool in curl openssl python3 script timeout; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (bash tools/install-deps.sh)"; exit 1; }
done

T=$(mktemp -d /tmp/moat-tls-XXXXXX) || { echo "FAIL: mktemp"; exit 1; }
chmod 0711 "$T"
SOCK=$T/moat.sock
C=$T/certs
# Neither the user's ~/.docker nor their docker settings: defaults must not leak into the test.
export HOME=$T/home
export DOCKER_CONFIG=$T/docker-config
unset DOCKER_HOST DOCKER_TLS_VERIFY DOCKER_CERT_PATH MOAT_HOST MOAT_TLSCACERT MOAT_TLSCERT MOAT_TLSKEY
mkdir -p "$HOME" "$C"
MOATD_PID=
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

TLSARGS=(--tlsverify --tlscacert "$C/ca.pem" --tlscert "$C/client-cert.pem" --tlskey "$C/client-key.pem")
HOSTARG=(-H "tcp://127.0.0.1:$PORT")
DOCKER=("$DOCKER_BIN" "${TLSARGS[@]}" "${HOSTARG[@]}")
MOATC=("$MOAT" "${HOSTARG[@]}" --tlscacert "$C/ca.pem" --tlscert "$C/client-cert.pem" --tlskey "$C/client-key.pem")
CURL_TLS=(curl -sS --max-time 10 --cacert "$C/ca.pem")
URL=https://127.0.0.1:$PORT

cleanup() {
  echo "== cleanup ($(elapsed) s)"
  if [ -n "$MOATD_PID" ] && kill -0 "$MOATD_PID" 2>/dev/null; then
    local ids
    ids=$(DOCKER_HOST=unix://$SOCK timeout 20 "$DOCKER_BIN" ps -aq 2>/dev/null)
    [ -n "$ids" ] && DOCKER_HOST=unix://$SOCK timeout 60 "$DOCKER_BIN" rm -f $ids >/dev/null 2>&1
    kill "$MOATD_PID" 2>/dev/null
    wait "$MOATD_PID" 2>/dev/null
  fi
  local p
  stop_leftover_monitors "$T"
  local m
  for m in $(awk -v t="$T" '$5 ~ "^"t {print $5}' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null
  done
  local leftovers procs cgs="" d
  leftovers=$(awk -v t="$T" '$5 ~ "^"t' /proc/self/mountinfo)
  procs=$(for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "$T/" && echo "${p#/proc/}"
  done)
  for d in "${MOAT_CG_DIRS[@]}"; do
    [ -d "$d" ] || continue
    cgs+=$(find "$d" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)
    [[ " ${PREEXISTING_CG[*]} " == *" $d "* ]] || rmdir "$d" 2>/dev/null
  done
  if [ -z "$leftovers" ] && [ -z "$procs" ] && [ -z "$cgs" ]; then
    pass "cleanup: no moatd, monitor or container process, mount or cgroup left"
  else
    fail "cleanup: leftovers" "mounts: $leftovers" "processes: $procs" "cgroups: $cgs"
  fi
  if [ "${MOAT_ENGINE_KEEP:-}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
  summary
}
trap 'cleanup; [ $FAILED = 0 ]; exit $?' EXIT

# --- certificates ------------------------------------------------------------------------------
mkcerts() {
  set -e
  cd "$C"
  # The CA, and a second CA nobody trusts.
  for ca in ca other-ca; do
    openssl req -x509 -new -nodes -newkey rsa:2048 -keyout "$ca-key.pem" -out "$ca.pem" -days 2 \
      -subj "/CN=moat test $ca" -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign,cRLSign
  done
  # Server: SAN IP:127.0.0.1, serverAuth only.
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout server-key.pem \
    -out server.csr -subj "/CN=moatd-test"
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' >server.ext
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 \
    -extfile server.ext -out server-cert.pem
  # Clients: one from the CA, one from the other CA.
  printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n' >client.ext
  for who in client:ca rogue:other-ca; do
    local name=${who%%:*} signer=${who#*:}
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$name-key.pem" \
      -out "$name.csr" -subj "/CN=moat-tls-$name"
    openssl x509 -req -in "$name.csr" -CA "$signer.pem" -CAkey "$signer-key.pem" -CAcreateserial \
      -days 2 -extfile client.ext -out "$name-cert.pem"
  done
  chmod 600 ./*-key.pem
}
if ! out=$( (mkcerts) 2>&1); then
  fail "openssl: CA, server and client certificates" "$out"
  exit 1
fi
pass "openssl: CA, server (SAN IP:127.0.0.1) and client certificates, and a rogue CA"

# --- refusals at start -------------------------------------------------------------------------
COMMON=(--data-root "$T/data" --exec-root "$T/exec" --config-file "$T/daemon.json")
echo '{}' >"$T/daemon.json"
out=$(timeout 20 "$MOATD" -H "unix://$SOCK" -H "tcp://127.0.0.1:$PORT" "${COMMON[@]}" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "moatd -H tcp:// without --tlsverify: refused, saying why" \
  bash -c '[ "$1" != 0 ] && grep -q "needs --tlsverify" <<<"$2" && grep -q "client certificates" <<<"$2"' _ "$rc" "$out"
out=$(timeout 20 "$MOATD" -H "tcp://127.0.0.1:$PORT" --tls --tlscacert "$C/ca.pem" --tlscert "$C/server-cert.pem" \
  --tlskey "$C/server-key.pem" "${COMMON[@]}" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "moatd --tls without --tlsverify: refused" \
  bash -c '[ "$1" != 0 ] && grep -q "no client verification" <<<"$2"' _ "$rc" "$out"
out=$(timeout 20 "$MOATD" -H "tcp://127.0.0.1:$PORT" --tlsverify --tlscacert "$C/ca.pem" "${COMMON[@]}" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "moatd --tlsverify without --tlscert/--tlskey: refused" \
  bash -c '[ "$1" != 0 ] && grep -q "needs --tlscert" <<<"$2"' _ "$rc" "$out"
out=$(timeout 20 "$MOATD" -H "tcp://127.0.0.1:$PORT" --tlsverify --tlscacert "$C/ca.pem" --tlscert "$C/server-cert.pem" \
  --tlskey "$C/client-key.pem" "${COMMON[@]}" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "moatd with a key that does not match the certificate: refused" \
  bash -c '[ "$1" != 0 ] && grep -q "does not match" <<<"$2"' _ "$rc" "$out"
DETAIL=$(ls -A "$T") check "the refused starts left no data or exec root" bash -c '[ ! -e "$1/data" ] && [ ! -e "$1/exec" ]' _ "$T"

# --- start: unix and TLS at once, from daemon.json for the TLS part ---------------------------
cat >"$T/daemon.json" <<EOF
{"hosts": ["unix://$SOCK", "tcp://127.0.0.1:$PORT"], "tlsverify": true,
 "tlscacert": "$C/ca.pem", "tlscert": "$C/server-cert.pem", "tlskey": "$C/server-key.pem"}
EOF
"$MOATD" --log-level debug "${COMMON[@]}" >>"$T/moatd.log" 2>&1 &
MOATD_PID=$!
up=
for _ in $(seq 200); do
  if "${CURL_TLS[@]}" --cert "$C/client-cert.pem" --key "$C/client-key.pem" "$URL/_ping" 2>/dev/null | grep -qx OK; then
    up=1
    break
  fi
  kill -0 "$MOATD_PID" 2>/dev/null || break
  sleep 0.05
done
if [ -z "$up" ]; then
  fail "moatd serves TLS on 127.0.0.1:$PORT" "$(tail -20 "$T/moatd.log")"
  exit 1
fi
pass "moatd $MOATD_PID serves /_ping over TLS with a client certificate (hosts and tls* from daemon.json)"
out=$(curl -sS --max-time 10 --unix-socket "$SOCK" http://x/_ping 2>&1)
DETAIL=$out check "and the unix socket at the same time" test "$out" = OK

# --- refused clients ---------------------------------------------------------------------------
out=$("${CURL_TLS[@]}" "$URL/_ping" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "curl without a client certificate: the handshake fails" \
  bash -c '[ "$1" != 0 ] && ! grep -qx OK <<<"$2"' _ "$rc" "$out"
out=$("${CURL_TLS[@]}" --cert "$C/rogue-cert.pem" --key "$C/rogue-key.pem" "$URL/_ping" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "curl with a client certificate from another CA: refused" \
  bash -c '[ "$1" != 0 ] && ! grep -qx OK <<<"$2"' _ "$rc" "$out"
out=$("${CURL_TLS[@]}" --cert "$C/server-cert.pem" --key "$C/server-key.pem" "$URL/_ping" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "curl with the server's certificate (serverAuth only) as a client one: refused" \
  bash -c '[ "$1" != 0 ] && ! grep -qx OK <<<"$2"' _ "$rc" "$out"
out=$(curl -sS --max-time 10 "http://127.0.0.1:$PORT/_ping" 2>&1)
DETAIL=$out check "plain HTTP to the TLS port: no API answer (\"Client sent an HTTP request to an HTTPS server\")" \
  bash -c '! grep -qx OK <<<"$1" && grep -q "HTTPS server" <<<"$1"' _ "$out"
out=$("${CURL_TLS[@]}" --tlsv1.1 --tls-max 1.1 --cert "$C/client-cert.pem" --key "$C/client-key.pem" "$URL/_ping" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "TLS 1.1: refused (TLS 1.2+ only)" bash -c '[ "$1" != 0 ]' _ "$rc"
out=$(timeout 20 "$DOCKER_BIN" -H "tcp://127.0.0.1:$PORT" --tlsverify --tlscacert "$C/ca.pem" version 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "docker --tlsverify without a client certificate: no server answer" \
  bash -c '[ "$1" != 0 ] && ! grep -q "Moat Engine" <<<"$2"' _ "$rc" "$out"
DETAIL=$(grep "TLS client refused" "$T/moatd.log") check "moatd logs why: no certificate, unknown CA, plain HTTP" \
  bash -c 'grep -q "presented no certificate" "$1" && grep -q "certificate" "$1" && grep -q "plain HTTP" "$1"' _ "$T/moatd.log"

# --- the docker CLI over TLS -------------------------------------------------------------------
out=$(timeout 30 "${DOCKER[@]}" version 2>&1)
DETAIL=$out check "docker --tlsverify version: Server: Moat Engine" grep -q "Server: Moat Engine" <<<"$out"
DETAIL=$(grep 'TLS client' "$T/moatd.log" | tail -1) check "the front names the client by its certificate's CN" \
  grep -qE 'TLS client 127\.0\.0\.1:[0-9]+ "moat-tls-client"' "$T/moatd.log"
out=$(timeout 60 "${DOCKER[@]}" load -i "$IMAGE_TAR" 2>&1)
DETAIL=$out check "docker load -i busybox.tar over TLS (a streamed request body)" grep -q "Loaded image: busybox:latest" <<<"$out"
out=$(timeout 30 "${DOCKER[@]}" run --rm busybox echo hello 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "docker run --rm busybox echo hello" test "$rc/$out" = "0/hello"
timeout 30 "${DOCKER[@]}" run --rm busybox sh -c 'echo to-err >&2; exit 7' >"$T/o" 2>"$T/e"
rc=$?
DETAIL="exit $rc: $(cat "$T/o" "$T/e")" check "docker run --rm: stderr apart, exit code 7" \
  test "$rc/$(cat "$T/e")/$(cat "$T/o")" = "7/to-err/"
out=$(printf 'line one\nline two\n' | timeout 30 "${DOCKER[@]}" run --rm -i busybox sh -c 'cat; echo after-eof' 2>&1)
DETAIL=$out check "docker run -i: stdin and its EOF cross TLS, output follows the EOF" \
  test "$out" = $'line one\nline two\nafter-eof'
id=$(timeout 30 "${DOCKER[@]}" run -d --name web busybox sh -c 'for i in 1 2 3; do echo tick$i; sleep 0.3; done; sleep 600' 2>&1)
DETAIL=$id check "docker run -d" grep -qE '^[0-9a-f]{64}$' <<<"$id"
out=$(timeout 5 "${DOCKER[@]}" logs -f web 2>&1)
DETAIL=$out check "docker logs -f: streamed until interrupted (3 lines)" test "$out" = $'tick1\ntick2\ntick3'
out=$(timeout 30 "${DOCKER[@]}" exec web sh -c 'echo out; echo err >&2' 2>/dev/null)
DETAIL=$out check "docker exec without -t: stdout" test "$out" = out
out=$(timeout 30 "${DOCKER[@]}" exec web sh -c 'echo out; echo err >&2' 2>&1 >/dev/null)
DETAIL=$out check "docker exec without -t: stderr apart" test "$out" = err
out=$(printf 'abc\n' | timeout 30 "${DOCKER[@]}" exec -i web sh -c 'cat; echo done' 2>&1)
DETAIL=$out check "docker exec -i: stdin through the hijacked TLS connection, then its EOF" test "$out" = $'abc\ndone'
timeout 30 "${DOCKER[@]}" exec web sh -c 'exit 3' >/dev/null 2>&1
rc=$?
DETAIL="exit $rc" check "docker exec: exit code 3" test "$rc" = 3
# script(1), its stdin at EOF, echoes a "^@" somewhere in the output (over the unix socket too).
out=$(timeout 30 script -qec "$DOCKER_BIN ${TLSARGS[*]} ${HOSTARG[*]} exec -it web tty" /dev/null </dev/null 2>&1 | tr -d '\r' | sed 's/\^@//g')
DETAIL=$out check "docker exec -it (in a pty): a pty in the container" grep -qx '/dev/pts/[0-9]*' <<<"$out"
out=$(timeout 30 script -qec "$DOCKER_BIN ${TLSARGS[*]} ${HOSTARG[*]} run --rm -it busybox sh -c 'tty; echo in-tty'" /dev/null </dev/null 2>&1 | tr -d '\r' | sed 's/\^@//g')
DETAIL=$out check "docker run --rm -it (attach over TLS)" bash -c 'grep -qx "/dev/pts/[0-9]*" <<<"$1" && grep -qx in-tty <<<"$1"' _ "$out"
out=$(timeout 30 "${DOCKER[@]}" ps --filter name=web --format '{{.Names}} {{.Status}}' 2>&1)
DETAIL=$out check "docker ps --filter --format" grep -q "^web Up" <<<"$out"
out=$(timeout 30 "${DOCKER[@]}" events --since 0 --until "$(date +%s)" --filter type=container --format '{{.Action}} {{.Actor.Attributes.name}}' 2>&1)
DETAIL=$out check "docker events --since 0 --until now: the start of web" grep -qx "start web" <<<"$out"
out=$(timeout 60 "${DOCKER[@]}" rm -f web 2>&1)
DETAIL=$out check "docker rm -f web" test "$out" = web

# --- the moat CLI over TLS ---------------------------------------------------------------------
out=$(timeout 30 "${MOATC[@]}" version 2>&1)
DETAIL=$out check "moat -H tcp:// --tlscacert --tlscert --tlskey version" grep -q "Moat" <<<"$out"
out=$(timeout 30 "${MOATC[@]}" run --rm busybox echo hello-moat 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "moat run --rm busybox echo" test "$rc/$out" = "0/hello-moat"
out=$(printf 'via-moat\n' | timeout 30 "${MOATC[@]}" run --rm -i busybox cat 2>&1)
DETAIL=$out check "moat run -i: stdin and EOF over TLS" test "$out" = via-moat
id=$(timeout 30 "${MOATC[@]}" run -d --name mweb busybox sh -c 'echo m1; sleep 0.3; echo m2; sleep 600' 2>&1)
DETAIL=$id check "moat run -d" grep -qE '^[0-9a-f]{64}$' <<<"$id"
out=$(timeout 5 "${MOATC[@]}" logs -f mweb 2>&1)
DETAIL=$out check "moat logs -f" test "$out" = $'m1\nm2'
out=$(timeout 30 "${MOATC[@]}" exec mweb sh -c 'echo e-out' 2>&1)
DETAIL=$out check "moat exec" test "$out" = e-out
out=$(timeout 30 "${MOATC[@]}" ps --format '{{.Names}}' 2>&1)
DETAIL=$out check "moat ps" grep -qx mweb <<<"$out"
out=$(timeout 30 "${MOATC[@]}" rm -f mweb 2>&1)
DETAIL=$out check "moat rm -f" grep -q mweb <<<"$out"
out=$(DOCKER_CERT_PATH=$C MOAT_HOST=tcp://127.0.0.1:$PORT timeout 30 "$MOAT" version 2>&1)
DETAIL=$out check "moat with MOAT_HOST=tcp:// and DOCKER_CERT_PATH (no ca.pem/cert.pem/key.pem there): a clear error" \
  grep -q "client certificate" <<<"$out"
mkdir -p "$T/certpath"
cp "$C/ca.pem" "$T/certpath/ca.pem"
cp "$C/client-cert.pem" "$T/certpath/cert.pem"
cp "$C/client-key.pem" "$T/certpath/key.pem"
out=$(DOCKER_CERT_PATH=$T/certpath DOCKER_TLS_VERIFY=1 MOAT_HOST=tcp://127.0.0.1:$PORT timeout 30 "$MOAT" version 2>&1)
DETAIL=$out check "moat with MOAT_HOST=tcp:// and DOCKER_CERT_PATH" grep -q "Moat" <<<"$out"
out=$(timeout 30 "$MOAT" -H "tcp://127.0.0.1:$PORT" --tlscacert "$C/other-ca.pem" --tlscert "$C/client-cert.pem" \
  --tlskey "$C/client-key.pem" version 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "moat refuses a daemon whose certificate another CA signed" \
  bash -c '[ "$1" != 0 ] && grep -qi "certificate" <<<"$2"' _ "$rc" "$out"
out=$(timeout 30 "$MOAT" -H "tcp://localhost:$PORT" --tlscacert "$C/ca.pem" --tlscert "$C/client-cert.pem" \
  --tlskey "$C/client-key.pem" version 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "moat refuses a daemon certificate that does not name the host (localhost vs IP:127.0.0.1)" \
  bash -c '[ "$1" != 0 ] && grep -qi "certificate" <<<"$2"' _ "$rc" "$out"

# --- the front, with TLS on --------------------------------------------------------------------
front=
for p in $(pgrep -P "$MOATD_PID"); do
  if [ "$(awk '/^Uid:/ {print $2}' "/proc/$p/status" 2>/dev/null)" != 0 ]; then front=$p; break; fi
done
st=$(grep -E '^(Uid|CapEff|CapPrm|NoNewPrivs|Seccomp):' "/proc/$front/status" 2>&1 | tr -s '\t ' ' ')
DETAIL=$st check "API front (pid $front) with TLS: non-zero uid, CapEff 0, NoNewPrivs 1, Seccomp 2" \
  bash -c 'grep -q "^Uid: [1-9]" <<<"$1" && grep -q "^CapEff: 0000000000000000" <<<"$1" &&
           grep -q "^NoNewPrivs: 1" <<<"$1" && grep -q "^Seccomp: 2" <<<"$1"' _ "$st"
# A non-dumpable process's /proc files belong to root: its own uid cannot ptrace it or read its
# memory (and the TLS key in it).
DETAIL=$(stat -c '%U %n' "/proc/$front/mem" 2>&1) check "API front: not dumpable (/proc/PID/mem owned by root, not by its uid)" \
  test "$(stat -c %u "/proc/$front/mem" 2>&1)" = 0
DETAIL=$(grep -cE 'TLS relay|api front' "$T/moatd.log") check "no TLS relay or front error in moatd's log" \
  bash -c '! grep -qE "TLS relay|api front:" "$1"' _ "$T/moatd.log"
