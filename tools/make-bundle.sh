#!/usr/bin/env bash
# make-bundle.sh DIR [COMMAND...]: an OCI bundle in DIR whose rootfs is Debian's busybox-static
# (no network needed), with moat-runtime's default config.json running COMMAND (default: sh).
set -euo pipefail
dir=${1:?usage: make-bundle.sh DIR [COMMAND...]}
shift
here=$(cd "$(dirname "$0")/.." && pwd)
runtime=${MOAT_RUNTIME:-$here/build/src/runtime/moat-runtime}
[ -x /bin/busybox ] || { echo "make-bundle: /bin/busybox missing: run tools/install-deps.sh" >&2; exit 1; }
mkdir -p "$dir/rootfs"/{bin,dev,proc,sys,tmp,etc,root}
cp /bin/busybox "$dir/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$applet"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$dir/rootfs/etc/passwd"
echo "root:x:0:" > "$dir/rootfs/etc/group"
rm -f "$dir/config.json"
"$runtime" spec --bundle "$dir"
if [ $# -gt 0 ]; then
  args=$(for a in "$@"; do jq -n --arg a "$a" '$a'; done | jq -s .)
  jq --argjson args "$args" '.process.args = $args' "$dir/config.json" > "$dir/config.json.new"
  mv "$dir/config.json.new" "$dir/config.json"
fi
