# Shared by tests/engine/*.sh (sourced): PASS/FAIL bookkeeping and timing.
#   pass NAME / fail NAME [DETAIL...] / DETAIL=... check NAME COMMAND... / elapsed / summary
# STARTED is set when sourced; FAILURES lists the failed names.
PASSED=0
FAILED=0
FAILURES=()
DETAIL=
STARTED=${EPOCHREALTIME//[!0-9]/}

elapsed() {
  local d=$(((${EPOCHREALTIME//[!0-9]/} - STARTED) / 100000))
  echo "$((d / 10)).$((d % 10))"
}
pass() { PASSED=$((PASSED + 1)); echo "PASS [$(elapsed) s]: $1"; }
fail() {
  FAILED=$((FAILED + 1))
  FAILURES+=("$1")
  echo "FAIL [$(elapsed) s]: $1"
  shift
  local line
  for line in "$@"; do printf '      %s\n' "$line"; done
}
# check NAME CONDITION-COMMAND... : pass when the command succeeds ($DETAIL shown on failure).
check() {
  local name=$1
  shift
  if "$@"; then pass "$name"; else fail "$name" "${DETAIL:-}"; fi
  DETAIL=
}
summary() {
  echo "duration: $(elapsed) s"
  echo "$PASSED passed, $FAILED failed"
  local f
  for f in "${FAILURES[@]}"; do echo "failed: $f"; done
}

# Re-executes the calling script (with its arguments) as a child subreaper in a network namespace
# of its own, once: container monitors daemonize, and moatd's bridge, nftables tables and any
# TCP port stay off the host's network. Call first thing: reexec_isolated "$0" "$@".
reexec_isolated() {
  if [ "${MOAT_ENGINE_SUBREAPER:-}" != "$$" ]; then
    export MOAT_ENGINE_SUBREAPER=$$
    exec unshare --net -- python3 -c '
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(36, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER): " + os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[1], sys.argv[1:])' bash "$@"
  fi
  ip link set lo up
}

# Stops the container monitors a run under DIR left (their command lines name DIR/exec/c/):
# they were told to go (a removal, a daemon stop) and finish their clean-up (runtime delete,
# cgroup removal) on their own, so they get up to 10 s; what is still there then is killed.
stop_leftover_monitors() {
  local dir=$1 i p
  for i in $(seq 100); do
    [ -z "$(pgrep -f -- "--dir $dir/exec/c/" 2>/dev/null)" ] && return 0
    sleep 0.1
  done
  for p in $(pgrep -f -- "--dir $dir/exec/c/" 2>/dev/null); do
    grep -q -- "$dir/exec" "/proc/$p/cmdline" 2>/dev/null && kill -KILL "$p" 2>/dev/null
  done
  sleep 0.3
}
