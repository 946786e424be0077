#!/usr/bin/env bash
# cgroup-v1-view.sh CMD...: runs CMD in a private mount namespace whose /sys/fs/cgroup shows the
# host's v1 hierarchies but not the cgroup2 "unified" one. Debian 12's crun refuses hybrid
# hosts ("cgroups in hybrid mode not supported"); in this view every runtime sees plain v1.
# Nothing changes on the host: the mounts live and die with the private namespace.
set -euo pipefail
if [ "${MOAT_IN_V1_VIEW:-}" != 1 ]; then
  MOAT_IN_V1_VIEW=1 exec unshare --mount --propagation private -- "$0" "$@"
fi
stage=$(mktemp -d /tmp/moat-bench-cg-XXXXXX)
mount --rbind /sys/fs/cgroup "$stage"
mount -t tmpfs -o mode=755 moat-bench-cgroup /sys/fs/cgroup
for c in "$stage"/*; do
  name=$(basename "$c")
  [ "$name" = unified ] && continue
  if [ -L "$c" ]; then ln -s "$(readlink "$c")" "/sys/fs/cgroup/$name"; continue; fi
  mkdir "/sys/fs/cgroup/$name"
  mount --rbind "$c" "/sys/fs/cgroup/$name"
done
umount -l "$stage"
rmdir "$stage"
exec "$@"
