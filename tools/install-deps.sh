#!/usr/bin/env bash
# Installs every Debian package Moat builds, tests and benchmarks with. Idempotent: packages
# already present are not fetched again. Run as root on Debian 12.
set -euo pipefail

PACKAGES=(
  # build
  cmake ninja-build g++ pkg-config ccache
  libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev
  libseccomp-dev libcap-dev libssl-dev
  # SHA-256 in the static moat-runtime (seccomp cache keys): nettle, not all of libcrypto
  nettle-dev
  # moatd/moat: HTTP (Boost.Beast, header-only), image layers (libarchive, ISA-L gzip, zstd)
  libboost-dev libarchive-dev libisal-dev libzstd-dev
  # networking (src/net): rtnetlink through libmnl, nftables through libnftables (and nft for
  # debugging), DNS messages of the embedded resolver through ldns; iperf3 for bench/network.sh
  libmnl-dev libnftables-dev nftables libldns-dev iperf3
  # tests: the bundled image's contents, and tools the tests drive
  busybox-static iproute2 procps jq
  # rootless containers: newuidmap/newgidmap map /etc/subuid ranges into a user namespace
  uidmap
  # comparison runtimes for bench/ and cross-checks; GNU time measures their peak RSS
  runc crun time
  # the second-kernel lane (tools/qemu, tests/qemu): qemu, apparmor_parser, xz for the kernel
  # image; python3 edits bundles' config.json (tools/make-bundle.sh)
  qemu-system-x86 apparmor xz-utils python3
  # tests/containerd: a private containerd (with ctr and the runc v2 shim) drives moat-runtime
  containerd
  # tests/engine and bench/engine.sh: the real docker CLI (and dockerd to compare), docker-py,
  # docker-compose against moatd
  docker.io python3-docker docker-compose
  # docker run --init: tini-static is bind-mounted as the container's init
  tini
  # images from registries (issue #4): libcurl for the distribution client; tests start Debian's
  # docker-registry on 127.0.0.1 (htpasswd from apache2-utils for its basic auth) and cross-check
  # with skopeo; bench/image.sh compares with umoci
  libcurl4-openssl-dev docker-registry apache2-utils skopeo umoci
  # bench/image.sh: the igzip CLI for the floor it compares with
  isal
  # fuzzing (fuzz/): clang's libFuzzer with ASan and UBSan
  clang libclang-rt-14-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
