#!/usr/bin/env bash
# Builds a one-layer OCI image (an OCI image layout in a tar, as `ctr images import` and
# `docker load` accept) from the host's static busybox (Debian's busybox-static):
#
#   make-busybox-image.sh OUT.tar [IMAGE_NAME]      (IMAGE_NAME default: docker.io/moat/busybox:latest)
#
# The rootfs: /bin/busybox and a symlink per applet in /bin, /etc/passwd and /etc/group for
# root, and empty /dev /proc /sys /tmp /root. The config runs /bin/sh with a standard PATH.
# Everything is written with fixed owners and mtimes, so the same busybox gives the same digests.
# Needs bash, GNU tar, sha256sum, jq (python3 optional, for speed).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 OUT.tar [IMAGE_NAME]" >&2
  exit 2
fi
out=$1
name=${2:-docker.io/moat/busybox:latest}
busybox=${BUSYBOX:-/bin/busybox}
[ -x "$busybox" ] || { echo "$0: $busybox is missing (apt-get install busybox-static)" >&2; exit 1; }
for tool in jq sha256sum tar; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is missing" >&2; exit 1; }
done

case "$(dpkg --print-architecture 2>/dev/null || uname -m)" in
  amd64 | x86_64) arch=amd64 ;;
  arm64 | aarch64) arch=arm64 ;;
  armhf | armel | arm*) arch=arm ;;
  i386 | i686) arch=386 ;;
  ppc64el | ppc64le) arch=ppc64le ;;
  s390x) arch=s390x ;;
  riscv64) arch=riscv64 ;;
  *) echo "$0: unknown architecture" >&2; exit 1 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/moat-image-XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. The rootfs and its layer (an uncompressed tar: its digest is also its diff_id).
root=$work/rootfs
mkdir -p "$root"/{bin,dev,etc,proc,root,sys,tmp}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
# One symlink per applet: python3 makes the ~270 in one process where `ln` forks per link
# (seconds on a loaded machine); plain ln without it.
if command -v python3 >/dev/null; then
  "$busybox" --list | python3 -c 'import os, sys
for a in sys.stdin.read().split():
    if a != "busybox": os.symlink("busybox", os.path.join(sys.argv[1], a))' "$root/bin"
else
  "$busybox" --list | while read -r applet; do
    [ -n "$applet" ] && [ "$applet" != busybox ] && ln -s busybox "$root/bin/$applet"
  done
fi
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
chmod 0644 "$root/etc/passwd" "$root/etc/group"

blobs=$work/layout/blobs/sha256
mkdir -p "$blobs"
layer=$work/layer.tar
tar --create --file "$layer" --directory "$root" --sort=name --numeric-owner --owner=0 \
  --group=0 --mtime=@0 --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  .

# Moves a file into blobs/sha256 under its digest; prints "DIGEST SIZE".
add_blob() {
  local digest size
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$blobs/$digest"
  echo "sha256:$digest $size"
}

read -r layer_digest layer_size < <(add_blob "$layer")

# 2. The image config.
jq -cn --arg arch "$arch" --arg diff "$layer_digest" '{
  architecture: $arch,
  os: "linux",
  created: "1970-01-01T00:00:00Z",
  config: {
    Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    Cmd: ["/bin/sh"],
    WorkingDir: "/"
  },
  rootfs: {type: "layers", diff_ids: [$diff]},
  history: [{created: "1970-01-01T00:00:00Z", created_by: "tests/containerd/make-busybox-image.sh"}]
}' >"$work/config.json"
read -r config_digest config_size < <(add_blob "$work/config.json")

# 3. The manifest.
jq -cn --arg cd "$config_digest" --argjson cs "$config_size" \
  --arg ld "$layer_digest" --argjson ls "$layer_size" '{
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $ld, size: $ls}]
}' >"$work/manifest.json"
read -r manifest_digest manifest_size < <(add_blob "$work/manifest.json")

# 4. The layout: oci-layout and index.json. The ref name annotation is the tag (OCI); the
# io.containerd.image.name annotation is the full name containerd's importer uses.
tag=${name##*:}
[ "$tag" = "$name" ] || [[ "$tag" == */* ]] && tag=latest
jq -cn '{imageLayoutVersion: "1.0.0"}' >"$work/layout/oci-layout"
jq -cn --arg md "$manifest_digest" --argjson ms "$manifest_size" --arg name "$name" \
  --arg tag "$tag" --arg arch "$arch" '{
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [{
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: $md,
    size: $ms,
    platform: {architecture: $arch, os: "linux"},
    annotations: {
      "io.containerd.image.name": $name,
      "org.opencontainers.image.ref.name": $tag
    }
  }]
}' >"$work/layout/index.json"

tar --create --file "$out" --directory "$work/layout" --sort=name --numeric-owner --owner=0 \
  --group=0 --mtime=@0 --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  oci-layout index.json blobs
echo "$name $manifest_digest"
