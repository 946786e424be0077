#!/usr/bin/env bash
# in-vm.sh: the second-kernel lane's tests, run as root inside the VM that tools/qemu/run.sh boots
# (Debian 12's kernel: pure cgroup v2 with every controller, AppArmor enforcing).
#   in-vm.sh --source=DIR --build=DIR --fixtures=DIR [--cgroups-test=BIN] [--integration-test=BIN]
# (tests/qemu/lane.sh makes the fixtures on the host and boots the VM.)
# 1. checks that this kernel is what the lane is for (else it proves nothing);
# 2. AppArmor: loads tests/qemu/moat-test-deny-write.apparmor and runs busybox containers through
#    moat-runtime (bundles from lane.sh) with and without process.apparmorProfile: with it, the
#    process's attr/current (read inside, and from outside through --pid-file) names the profile
#    and its write to /tmp is denied while /scratch stays writable; without it, the same /tmp
#    write succeeds;
# 3. the cgroups library's live tests (cgroups_privileged_test);
# 4. the runtime integration tests, filtered by $MOAT_QEMU_INTEGRATION_FILTER (default: all).
# A test binary not given is skipped (its target is not in this tree); one given but missing fails.
# Environment: MOAT_QEMU_RESULTS=DIR (gtest XML goes there), MOAT_QEMU_CGROUPS_TIMEOUT (300 s),
# MOAT_QEMU_INTEGRATION_TIMEOUT (700 s). Exit status: 0 if every part passed.
set -uo pipefail

src='' build='' fixtures='' cg_test='' it_test=''
for a in "$@"; do
  case $a in
    --source=*) src=${a#*=} ;;
    --build=*) build=${a#*=} ;;
    --fixtures=*) fixtures=${a#*=} ;;
    --cgroups-test=*) cg_test=${a#*=} ;;
    --integration-test=*) it_test=${a#*=} ;;
    '') ;;
    *) echo "in-vm: unknown argument $a" >&2; exit 2 ;;
  esac
done
if [ -z "$src" ] || [ -z "$build" ]; then
  echo "usage: in-vm.sh --source=DIR --build=DIR --fixtures=DIR ..." >&2
  exit 2
fi
results=${MOAT_QEMU_RESULTS:-}
start=$SECONDS
summary=()
failed=0
record() {  # record PASS|FAIL|SKIP NAME [DETAIL]
  summary+=("$(printf '%-4s %-28s %4ss  %s' "$1" "$2" "$((SECONDS - part_start))" "${3:-}")")
  [ "$1" != FAIL ] || failed=1
}
part() { part_start=$SECONDS; echo; echo "=== in-vm: $* (t=$((SECONDS - start))s)"; }

# 1. The kernel.
part "kernel"
controllers=$(cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null)
lsm=$(cat /sys/kernel/security/lsm 2>/dev/null)
aa=$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)
echo "cgroup2 controllers: $controllers"
echo "LSMs: $lsm"
echo "AppArmor enabled: $aa ($(aa-enabled 2>&1))"
missing=
for c in cpuset cpu io memory hugetlb pids; do
  [[ " $controllers " == *" $c "* ]] || missing+=" $c"
done
if ! grep -q '^cgroup2 /sys/fs/cgroup cgroup2 ' /proc/mounts || [ -n "$missing" ]; then
  record FAIL kernel "not pure cgroup v2 with every controller (missing:${missing:- none})"
elif [[ ",$lsm," != *,apparmor,* ]] || [ "$aa" != Y ]; then
  record FAIL kernel "AppArmor is not active"
else
  record PASS kernel "$(uname -r): cgroup v2 [$controllers], AppArmor"
fi

# 2. AppArmor through moat-runtime, with the bundles lane.sh made on the host.
part "AppArmor profile through moat-runtime"
runtime=$build/src/runtime/moat-runtime
profile=moat-test-deny-write
aa_check() {
  local out label pid rt=(timeout 60 "$runtime" --root /run/moat-qemu-aa)
  no() { echo "$*"; return 1; }
  [ -x "$runtime" ] || no "no $runtime"
  [ -f "$fixtures/confined/config.json" ] || no "no bundles in '$fixtures' (run through lane.sh)"
  timeout 60 apparmor_parser --replace --skip-cache "$src/tests/qemu/$profile.apparmor" || return 1
  grep -qxF "$profile (enforce)" /sys/kernel/security/apparmor/profiles ||
    no "$profile is not loaded in enforce mode"

  echo "--- without a profile"
  out=$("${rt[@]}" run --bundle "$fixtures/control" aa-control 2>&1) || { echo "$out"; return 1; }
  echo "$out"
  grep -qx 'label=unconfined' <<<"$out" || no "expected label=unconfined"
  grep -qx 'tmp=written' <<<"$out" || no "control: /tmp not writable, the check would prove nothing"

  echo "--- with process.apparmorProfile=$profile"
  out=$("${rt[@]}" run --bundle "$fixtures/confined" aa-confined 2>&1) || { echo "$out"; return 1; }
  echo "$out"
  grep -qx "label=$profile (enforce)" <<<"$out" || no "expected label=$profile (enforce)"
  grep -qx 'tmp=denied' <<<"$out" || no "expected the write to /tmp to be denied"
  grep -qx 'scratch=written' <<<"$out" || no "expected /scratch to stay writable"

  echo "--- from outside: /proc/<pid>/attr/current of a running confined container"
  "${rt[@]}" create --bundle "$fixtures/outside" --pid-file /run/moat-qemu-aa.pid aa-outside ||
    return 1
  "${rt[@]}" start aa-outside || { "${rt[@]}" delete --force aa-outside; return 1; }
  pid=$(cat /run/moat-qemu-aa.pid)
  label=$(cat "/proc/$pid/attr/current" 2>&1)
  echo "pid $pid: $label"
  "${rt[@]}" delete --force aa-outside || echo "delete --force aa-outside failed"
  [ "$label" = "$profile (enforce)" ] || no "expected $profile (enforce)"
}
if aa_check; then
  record PASS apparmor "$profile: /tmp write denied, label checked inside and out"
else
  record FAIL apparmor "see the output above"
fi

# 3-4. GoogleTest binaries from the build tree.
run_gtest() {  # run_gtest NAME BINARY TIMEOUT [GTEST ARGS...]
  local name=$1 bin=$2 limit=$3 rc out
  shift 3
  part "$name"
  if [ -z "$bin" ]; then record SKIP "$name" "no such target in this tree"; return; fi
  if [ ! -x "$bin" ]; then record FAIL "$name" "$bin is not built"; return; fi
  local args=("$@")
  [ -z "$results" ] || args+=("--gtest_output=xml:$results/$name.xml")
  out=$(mktemp /tmp/gtest.XXXXXX)
  (cd "$build" && timeout -k 10 "$limit" "$bin" "${args[@]}") 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  local counts
  counts=$(sed -nE 's/^\[ +(PASSED|SKIPPED|FAILED) +\] ([0-9]+) tests?.*/\2 \1/p' "$out" |
    paste -sd, -)
  rm -f "$out"
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then record FAIL "$name" "timed out after ${limit}s"
  elif [ "$rc" != 0 ]; then record FAIL "$name" "exit $rc: $counts"
  else record PASS "$name" "$counts"
  fi
}
run_gtest cgroups_privileged_test "$cg_test" "${MOAT_QEMU_CGROUPS_TIMEOUT:-300}"
# Id-mapped mounts are left to the main lane: here /var/tmp is a tmpfs, which Linux 6.1 cannot
# id-map (6.3 can); the main lane's ext4 on 6.18 runs them.
run_gtest runtime_integration_test "$it_test" "${MOAT_QEMU_INTEGRATION_TIMEOUT:-700}" \
  "--gtest_filter=${MOAT_QEMU_INTEGRATION_FILTER:-*:-IdmapTest.*}"

echo
echo "=== in-vm: summary (kernel $(uname -r), $((SECONDS - start))s)"
printf '%s\n' "${summary[@]}"
exit "$failed"
