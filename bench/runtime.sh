#!/usr/bin/env bash
# bench/runtime.sh [-n N]: moat-runtime, crun and runc side by side on the same bundles.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh >/dev/null
bash tools/build.sh moat-runtime >/dev/null
# crun (Debian 12) refuses hybrid cgroups: all three run in the same v1-only view.
exec bench/cgroup-v1-view.sh python3 bench/runtime.py "$@"
