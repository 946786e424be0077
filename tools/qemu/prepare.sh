#!/usr/bin/env bash
# prepare.sh: makes the second kernel ready to boot and prints where it is, as shell assignments
# (KVER=, KERNEL=, INITRD=, MODDIR=) for run.sh to eval. Idempotent, cached by kernel version in
# $MOAT_QEMU_CACHE (default /var/cache/moat-qemu as root, else ~/.cache/moat-qemu):
#   <kver>/boot, <kver>/lib   Debian's linux-image-<kver> package, unpacked, plus depmod's files
#   <kver>/boot/vmlinux-<kver>  the kernel uncompressed (qemu boots it through its PVH entry)
#   <kver>/initrd-<hash>.cpio.gz  busybox-static, /init (init.sh), stage2.sh, the 9p/overlay modules
# The kernel is the newest linux-image-6.1.0-NN-amd64 that apt-cache knows (the -amd64 flavour:
# -cloud-amd64 lacks 9p), fetched with `apt-get download`; MOAT_QEMU_KVER=6.1.0-NN-amd64 pins one.
# If the download fails (offline, or the mirror dropped that version) the newest cached one is used;
# older cached kernels are removed. Needs apt-get, dpkg-deb, xz-utils, busybox-static, flock; root
# only to run `apt-get update` when apt knows no kernel package.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${MOAT_QEMU_CACHE:-}" ]; then
  MOAT_QEMU_CACHE=/var/cache/moat-qemu
  [ "$(id -u)" = 0 ] || MOAT_QEMU_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/moat-qemu
fi
cache=$MOAT_QEMU_CACHE
busybox=${MOAT_QEMU_BUSYBOX:-/bin/busybox}

log() { echo "qemu/prepare: $*" >&2; }
die() { log "$*"; exit 1; }

[ -x "$busybox" ] || die "$busybox missing: run tools/install-deps.sh (busybox-static)"
"$busybox" --list | grep -qx switch_root || die "$busybox has no switch_root: need busybox-static"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock -w 900 9 || die "timed out waiting for $cache/.lock"

# Modules /init loads, in this order (each after its dependencies; checked below).
MODULES=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci
         netfs fscache 9pnet 9pnet_virtio 9p overlay)

# apt-cache takes seconds: its answer is kept until apt's lists change (apt-get update).
newest_in_apt() {
  local memo=$cache/.apt-newest lists=/var/lib/apt/lists
  if [ -s "$memo" ] && [ "$memo" -nt "$lists" ]; then cat "$memo"; return; fi
  apt-cache pkgnames linux-image-6.1.0- 2>/dev/null | grep -E '^linux-image-6\.1\.0-[0-9]+-amd64$' |
    sed 's/^linux-image-//' | sort -V | tail -n 1 >"$memo.tmp" || true
  mv "$memo.tmp" "$memo"
  cat "$memo"
}

newest_cached() {
  local d best=
  for d in "$cache"/6.1.0-*-amd64; do
    [ -f "$d/.complete" ] && best="$best${best:+$'\n'}$(basename "$d")"
  done
  [ -n "$best" ] && printf '%s\n' "$best" | sort -V | tail -n 1
  return 0
}

# Downloads and unpacks linux-image-$1 into $cache/$1; returns non-zero if it cannot.
fetch_kernel() {
  local kver=$1 dir=$cache/$1 tmp
  [ -f "$dir/.complete" ] && return 0
  tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
  chmod 755 "$tmp"  # apt's _apt sandbox user writes the download here
  log "downloading linux-image-$kver"
  if ! (cd "$tmp" && timeout 600 apt-get download -q -o APT::Sandbox::User=root \
          -o Acquire::http::Timeout=30 "linux-image-$kver" >&2); then
    rm -rf "$tmp"
    return 1
  fi
  log "unpacking $(basename "$tmp"/*.deb)"
  mkdir "$tmp/root"
  dpkg-deb -x "$tmp"/*.deb "$tmp/root"
  rm -f "$tmp"/*.deb
  rm -rf "$tmp/root/usr" "$tmp/root/etc"
  [ -f "$tmp/root/boot/vmlinuz-$kver" ] ||
    { rm -rf "$tmp"; die "no boot/vmlinuz-$kver in the package"; }
  # The kernel uncompressed: qemu boots an ELF vmlinux through its PVH entry point, which
  # saves the ~10 s that decompressing the xz-packed bzImage takes under software emulation.
  local off
  for off in $(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' "$tmp/root/boot/vmlinuz-$kver" | cut -d: -f1); do
    xz -dc --single-stream <(tail -c +$((off + 1)) "$tmp/root/boot/vmlinuz-$kver") \
      >"$tmp/root/boot/vmlinux-$kver" 2>/dev/null &&
      [ "$(head -c 4 "$tmp/root/boot/vmlinux-$kver" | od -An -c | tr -d ' ')" = '177ELF' ] && break
    rm -f "$tmp/root/boot/vmlinux-$kver"
  done
  [ -f "$tmp/root/boot/vmlinux-$kver" ] ||
    log "cannot uncompress vmlinuz-$kver: booting it as it is (slower)"
  # modules.dep etc. for autoloading inside the VM (the package leaves them to its postinst).
  "$busybox" depmod -b "$tmp/root" "$kver" || log "depmod failed: no module autoloading in the VM"
  rm -rf "$dir"
  mv "$tmp/root" "$dir"
  rmdir "$tmp"
  touch "$dir/.complete"
}

kver=${MOAT_QEMU_KVER:-}
if [ -z "$kver" ]; then
  kver=$(newest_in_apt)
  if [ -z "$kver" ] && [ "$(id -u)" = 0 ]; then
    log "apt-cache knows no linux-image-6.1.0-*-amd64: running apt-get update"
    timeout 300 apt-get update -qq >&2 || true
    kver=$(newest_in_apt)
  fi
  if [ -n "$kver" ] && ! fetch_kernel "$kver"; then
    log "cannot download linux-image-$kver; falling back to the newest cached kernel"
    kver=
  fi
  [ -n "$kver" ] || kver=$(newest_cached)
  [ -n "$kver" ] ||
    die "no kernel: apt-get download linux-image-6.1.0-NN-amd64 failed and none is cached"
else
  fetch_kernel "$kver" || die "cannot download linux-image-$kver"
fi

kdir=$cache/$kver
for d in "$cache"/6.1.0-*-amd64; do  # older kernels: ~400 MB each
  [ "$d" = "$kdir" ] || [ ! -d "$d" ] || { log "removing old $(basename "$d")"; rm -rf "$d"; }
done
moddir=$kdir/lib/modules/$kver

# The initramfs, keyed by everything that goes into it (a kernel's modules never change).
key=$( { echo "$kver ${MODULES[*]}"; cat "$here/init.sh" "$here/stage2.sh" "$busybox"; } |
  sha256sum | cut -c1-16)
initrd=$kdir/initrd-$key.cpio.gz
if [ ! -f "$initrd" ]; then
  log "building $(basename "$initrd")"
  stage=$(mktemp -d "$cache/.initrd.XXXXXX")
  trap 'rm -rf "$stage"' EXIT
  mkdir -p "$stage"/{bin,dev,proc,sys,host,rw,newroot,modules}
  # Each module's file, loaded after everything its depends= names.
  declare -A seen=()
  for m in "${MODULES[@]}"; do
    f=$(find "$moddir/kernel" -name "$m.ko" -print -quit)
    [ -n "$f" ] || die "module $m not in linux-image-$kver (need the -amd64 flavour)"
    deps=$(tr '\0' '\n' <"$f" | sed -n 's/^depends=//p' | head -n 1)
    for d in ${deps//,/ }; do
      [ -n "${seen[${d//-/_}]:-}" ] || die "module $m depends on $d, which is not loaded before it"
    done
    seen[$m]=1
    cp "$f" "$stage/modules/$m.ko"
    echo "$m" >>"$stage/modules/order"
  done
  cp "$busybox" "$stage/bin/busybox"
  cp "$here/init.sh" "$stage/init"
  cp "$here/stage2.sh" "$stage/stage2.sh"
  chmod 755 "$stage/init" "$stage/stage2.sh"
  echo "$kver" >"$stage/kver"
  (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
     "$busybox" cpio -o -H newc -R 0:0 2>/dev/null) | gzip -1 >"$initrd.tmp"
  mv "$initrd.tmp" "$initrd"
  for f in "$kdir"/initrd-*.cpio.gz; do [ "$f" = "$initrd" ] || rm -f "$f"; done
fi

kernel=$kdir/boot/vmlinux-$kver
[ -f "$kernel" ] || kernel=$kdir/boot/vmlinuz-$kver
printf 'KVER=%q\nKERNEL=%q\nINITRD=%q\nMODDIR=%q\n' "$kver" "$kernel" "$initrd" "$moddir"
