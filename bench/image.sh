#!/usr/bin/env bash
# bench/image.sh [-n N] [--size-mb MB] [--build DIR] [--fs rootfs,tmpfs] [--only KINDS] [--keep]:
# image load and pull throughput (MB/s of uncompressed layer bytes): moatd, Debian's dockerd and
# umoci side by side in one run, against the floors `igzip -dc | tar -x` and `tar -x`, with the
# store on the root file system and on a tmpfs; see bench/image.py for what is measured and how.
# Needs root, docker.io, docker-registry, skopeo, umoci and isal (igzip).
# Without --build it builds Moat into build/ (tools/build.sh); with --build DIR it uses DIR as it is.
#
# The whole bench runs in a private network and mount namespace: the registry listens on
# 127.0.0.1 of that namespace only, and moatd and dockerd (which must reach it) run there too;
# the bench's tmpfs and the daemons' mounts are invisible outside and go with the namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib-daemons.sh
bench_require_root bench/image.sh
bench_build_unless_given "$@"
if ! command -v igzip >/dev/null; then
  echo "bench/image.sh: igzip is missing (apt-get install isal)" >&2
  exit 1
fi
# image.py makes itself a child subreaper: the daemons, containerd and the registry end up its
# children (PID 1 here does not reap).
exec unshare --net --mount --propagation private \
  env BENCH_NS_TMP=/tmp BENCH_NS_SHIELD="/run/docker /run/containerd" \
  bash -c '. bench/lib-daemons.sh && bench_ns_init && exec python3 bench/image.py "$@"' \
  bench-image "$@"
