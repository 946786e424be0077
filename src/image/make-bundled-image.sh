#!/usr/bin/env bash
# Builds the bundled busybox image from the host's static busybox (Debian's busybox-static):
#
#   make-bundled-image.sh DOCKER_ARCHIVE.tar [OCI_LAYOUT.tar]
#
# DOCKER_ARCHIVE.tar is a `docker save` archive (manifest.json, repositories, config and layer
# blobs; it also carries oci-layout and index.json, as Docker 25+ writes) tagged busybox:latest.
# OCI_LAYOUT.tar, if given, is the same image as a plain OCI image layout (no manifest.json).
# The image config runs ["sh"] with the standard PATH. Owners and mtimes are fixed, so the same
# busybox binary always gives the same image id. Needs bash, GNU tar, sha256sum, jq.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 DOCKER_ARCHIVE.tar [OCI_LAYOUT.tar]" >&2
  exit 2
fi
out=$1
oci_out=${2:-}
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

work=$(mktemp -d "${TMPDIR:-/tmp}/moat-bundled-XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. The rootfs: /bin/busybox, one symlink per applet, root's passwd/group, empty mount points.
root=$work/rootfs
mkdir -p "$root"/{bin,dev,etc,proc,root,sys,tmp}
chmod 0755 "$root" "$root"/{bin,dev,etc,proc,sys}
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
"$busybox" --list | sort | while read -r applet; do
  [ -n "$applet" ] && [ "$applet" != busybox ] && ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
chmod 0644 "$root/etc/passwd" "$root/etc/group"

layout=$work/layout
blobs=$layout/blobs/sha256
mkdir -p "$blobs"
tar_opts=(--sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 --format=posix
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime)
# An uncompressed layer: its digest is also its diff id.
tar --create --file "$work/layer.tar" --directory "$root" "${tar_opts[@]}" .

add_blob() {  # moves a file into blobs/sha256; prints "DIGEST SIZE"
  local digest size
  digest=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  mv "$1" "$blobs/$digest"
  echo "sha256:$digest $size"
}
read -r layer_digest layer_size < <(add_blob "$work/layer.tar")

# 2. The image config.
jq -cn --arg arch "$arch" --arg diff "$layer_digest" '{
  architecture: $arch,
  os: "linux",
  created: "1970-01-01T00:00:00Z",
  config: {
    Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    Cmd: ["sh"]
  },
  rootfs: {type: "layers", diff_ids: [$diff]},
  history: [{created: "1970-01-01T00:00:00Z", created_by: "src/image/make-bundled-image.sh",
             comment: "busybox-static"}]
}' >"$work/config.json"
read -r config_digest config_size < <(add_blob "$work/config.json")

# 3. The OCI manifest and index.
jq -cn --arg cd "$config_digest" --argjson cs "$config_size" \
  --arg ld "$layer_digest" --argjson ls "$layer_size" '{
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.manifest.v1+json",
  config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
  layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $ld, size: $ls}]
}' >"$work/manifest.json"
read -r manifest_digest manifest_size < <(add_blob "$work/manifest.json")
jq -cn '{imageLayoutVersion: "1.0.0"}' >"$layout/oci-layout"
jq -cn --arg md "$manifest_digest" --argjson ms "$manifest_size" --arg arch "$arch" '{
  schemaVersion: 2,
  mediaType: "application/vnd.oci.image.index.v1+json",
  manifests: [{
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: $md, size: $ms,
    platform: {architecture: $arch, os: "linux"},
    annotations: {"io.containerd.image.name": "docker.io/library/busybox:latest",
                  "org.opencontainers.image.ref.name": "latest"}
  }]
}' >"$layout/index.json"

if [ -n "$oci_out" ]; then
  tar --create --file "$oci_out.tmp" --directory "$layout" "${tar_opts[@]}" oci-layout index.json blobs
  mv "$oci_out.tmp" "$oci_out"
fi

# 4. The docker-archive files.
jq -cn --arg c "blobs/sha256/${config_digest#sha256:}" --arg l "blobs/sha256/${layer_digest#sha256:}" \
  '[{Config: $c, RepoTags: ["busybox:latest"], Layers: [$l]}]' >"$layout/manifest.json"
jq -cn --arg id "${config_digest#sha256:}" '{busybox: {latest: $id}}' >"$layout/repositories"
tar --create --file "$out.tmp" --directory "$layout" "${tar_opts[@]}" \
  blobs index.json manifest.json oci-layout repositories
mv "$out.tmp" "$out"
echo "busybox:latest $config_digest"
