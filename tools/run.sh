#!/usr/bin/env bash
# The main job: install, build, start moatd (if it is not running yet), load the bundled
# busybox image, and run a container from it with the moat CLI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
bash tools/build.sh
# The API front runs as its own unprivileged user; the socket's group may use the daemon.
id moat-api >/dev/null 2>&1 ||
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin moat-api
getent group moat >/dev/null || groupadd --system moat
moat="./build/src/cli/moat"
if ! "$moat" version >/dev/null 2>&1; then
  mkdir -p /var/log
  nohup ./build/src/daemon/moatd >>/var/log/moatd.log 2>&1 </dev/null &
  for _ in $(seq 100); do
    "$moat" version >/dev/null 2>&1 && break
    sleep 0.05
  done
  echo "moatd started (pid $!, log /var/log/moatd.log, socket /run/moat/moat.sock)"
fi
"$moat" load -i build/images/busybox.tar
"$moat" run --rm busybox sh -c 'echo "hello from a Moat container: $(hostname), uid $(id -u), pid $$"; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status'
