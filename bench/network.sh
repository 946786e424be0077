#!/usr/bin/env bash
# bench/network.sh [-n N] [--iperf-n M] [--iperf-time S] [--build DIR] [--keep]:
# container networking, moatd vs Debian's dockerd side by side, each daemon in network and mount
# namespaces of its own, both driven by the same docker CLI (/usr/bin/docker); see
# bench/network.py for what is measured and how. Needs root, docker.io and iperf3.
# Without --build it builds Moat into build/ (tools/build.sh); with --build DIR it uses DIR as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib-daemons.sh
bench_require_root bench/network.sh
bench_build_unless_given "$@"
# network.py makes itself a child subreaper: the daemons, their monitors and shims end up its
# children (PID 1 here does not reap).
exec python3 bench/network.py "$@"
