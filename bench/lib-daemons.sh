# Shell functions shared by the benchmarks that start private daemons (bench/network.sh; engine.sh
# could use the first two). Source it; it defines functions only and changes nothing by itself.

# bench_require_root NAME: exits unless run as root.
bench_require_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "$1 needs root" >&2
    exit 1
  fi
}

# bench_build_unless_given ARGS...: without --build in ARGS, installs the dependencies and builds
# moatd, moat, moat-runtime, moat-extract and the bundled busybox image into build/
# (tools/build.sh), as bench/engine.sh does; with --build DIR the caller uses DIR as it is.
# Run from the repository's top directory.
bench_build_unless_given() {
  local a
  for a in "$@"; do
    case $a in --build|--build=*) return 0 ;; esac
  done
  bash tools/install-deps.sh >/dev/null
  bash tools/build.sh moatd moat moat-runtime moat-extract bundled-image >/dev/null
}

# bench_ns_init: prepares a FRESH network and mount namespace for one daemon; run it right after
# `unshare --net --mount --propagation private`, before exec'ing the daemon. Nothing it does is
# visible outside those namespaces:
# - lo up; IPv4 forwarding on (net.ipv4.ip_forward is per network namespace);
# - BENCH_NS_ADDR (e.g. 192.0.2.1/32): an extra address on lo, the "host address" a client
#   in this namespace can use to reach published ports;
# - a sysfs of this network namespace on /sys (what `ip netns exec` does): the inherited one
#   shows the host's interfaces under /sys/class/net. The old /sys's submounts (cgroup
#   hierarchies, bpf, ...) are moved back on top of it, so both daemons still see cgroupfs;
# - BENCH_NS_SHIELD (space-separated dirs, e.g. "/run/docker /run/containerd"): a tmpfs over
#   each that exists, so the daemon neither finds the host's state there nor writes any.
# BENCH_NS_TMP is a directory it may use for a mount point (removed again).
bench_ns_init() {
  # Every step checks its status: `set -e` would be ignored here, since callers run
  # `bench_ns_init && exec daemon`.
  ip link set lo up || return 1
  echo 1 >/proc/sys/net/ipv4/ip_forward || return 1
  if [ -n "${BENCH_NS_ADDR:-}" ]; then
    ip addr add "$BENCH_NS_ADDR" dev lo || return 1
  fi
  local old="$BENCH_NS_TMP/oldsys.$$" m subs
  mkdir "$old" && mount --rbind /sys "$old" || return 1
  mount -t sysfs sysfs /sys || return 1
  # Top-level submounts of the old /sys, in mount order (their own submounts come with --rbind).
  subs=$(awk -v o="$old" '$5 ~ "^" o "/" {print substr($5, length(o) + 1)}' /proc/self/mountinfo |
    awk '{ for (i = 1; i <= n; i++) if (index($0, seen[i] "/") == 1) next; seen[++n] = $0; print }')
  for m in $subs; do
    mount --rbind "$old$m" "/sys$m" || return 1
  done
  umount -l "$old" && rmdir "$old" || return 1
  for m in ${BENCH_NS_SHIELD:-}; do
    if [ -d "$m" ]; then
      mount -t tmpfs -o mode=0700 moat-bench "$m" || return 1
    else
      echo "note: the daemon may create $m" >&2
    fi
  done
}
