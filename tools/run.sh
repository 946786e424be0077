#!/usr/bin/env bash
# The main job: install, build, and run a container from the bundled busybox image.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh moat-runtime
bundle=$(mktemp -d /tmp/moat-bundle-XXXXXX)
trap 'rm -rf "$bundle"' EXIT
bash tools/make-bundle.sh "$bundle" sh -c 'echo "hello from a Moat container: $(hostname), uid $(id -u), pid $$"; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status'
./build/src/runtime/moat-runtime run --bundle "$bundle" "hello-$$"
