#!/usr/bin/env bash
# Installs, builds, and runs every test: unit tests and the privileged integration tests
# (root, real kernel). Exit status is ctest's.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh
cd build
ctest --output-on-failure --timeout 300 -j2 "$@"
