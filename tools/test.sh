#!/usr/bin/env bash
# Installs, builds, and runs every test: unit tests and the privileged integration tests
# (root, real kernel), then every libFuzzer target briefly (fuzz/run.sh). Fails when either fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh
cd build
ctest --output-on-failure --timeout 300 -j2 "$@"
(cd .. && MOAT_FUZZ_SECONDS=15 MOAT_FUZZ_SEED=1 bash fuzz/run.sh)  # libFuzzer targets, ASan+UBSan (fuzz/README.md)
