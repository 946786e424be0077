#!/usr/bin/env bash
# bench/engine.sh [-n N] [--reps R] [--concurrent C] [--build DIR] [--keep]:
# moatd and Debian's dockerd side by side in one run, both driven by the same docker CLI
# (/usr/bin/docker); see bench/engine.py for what is measured and how. Needs root and docker.io.
# Without --build it builds moatd, moat, moat-runtime, moat-extract and the bundled busybox image
# into build/ (tools/build.sh); with --build DIR it uses DIR as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "bench/engine.sh needs root" >&2
  exit 1
fi
own_build=1
for a in "$@"; do
  case $a in --build|--build=*) own_build=0 ;; esac
done
if [ $own_build = 1 ]; then
  bash tools/install-deps.sh >/dev/null
  bash tools/build.sh moatd moat moat-runtime moat-extract bundled-image >/dev/null
fi
# engine.py makes itself a child subreaper: both daemons, their monitors and shims end up its
# children (PID 1 here does not reap).
exec python3 bench/engine.py "$@"
