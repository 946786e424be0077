#!/bin/busybox sh
# /init of the second-kernel initramfs (built by prepare.sh, booted by run.sh).
# Loads the virtio/9p/overlay modules, mounts the host's root read-only over 9p with a tmpfs
# overlay on top (writes stay in the VM), mounts proc, sys, cgroup2, securityfs and tmpfs where
# tests write, then switch_roots into it and runs /run/moat-qemu/stage2.sh (the host's bash),
# which runs the job and powers off. Kernel command line: moat.job=DIR moat.nonce=HEX.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys

job='' nonce=unknown
for arg in $(cat /proc/cmdline); do
  case $arg in
    moat.job=*) job=${arg#moat.job=} ;;
    moat.nonce=*) nonce=${arg#moat.nonce=} ;;
  esac
done

fail() {
  echo "moat-qemu-init: $*"
  echo "MOAT-QEMU-STATUS-$nonce=125"
  poweroff -f
  sleep 5
  echo o >/proc/sysrq-trigger
}

[ -n "$job" ] || fail "no moat.job= on the kernel command line"
while read -r m; do
  insmod "/modules/$m.ko" || fail "insmod $m failed"
done </modules/order
kver=$(cat /kver)

opts=trans=virtio,version=9p2000.L,msize=262144
mount -t 9p -o "$opts,ro,cache=loose" host /host || fail "cannot mount the host root over 9p"
mkdir -p /job
mount -t 9p -o "$opts,rw" job /job || fail "cannot mount the job directory over 9p"

mount -t tmpfs -o mode=755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot ||
  fail "cannot mount the overlay root"

n=/newroot
mount --move /dev $n/dev
mkdir -p $n/dev/pts $n/dev/shm $n/dev/mqueue
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts $n/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $n/dev/shm
mount -t mqueue mqueue $n/dev/mqueue
mount -t proc proc $n/proc
mount -t sysfs sysfs $n/sys
mount -t cgroup2 -o nsdelegate cgroup2 $n/sys/fs/cgroup || fail "cannot mount cgroup2"
mount -t securityfs securityfs $n/sys/kernel/security
mount -t bpf bpf $n/sys/fs/bpf 2>/dev/null
# tmpfs on /tmp and /var/tmp (tests nest overlay mounts there, which an overlay upper refuses);
# host directories there that the job names (run.sh lists them in keep) stay visible on top.
keep=0
mkdir -p /rw/keep
if [ -f /job/keep ]; then
  while read -r p; do
    if [ -d "$n$p" ]; then mkdir -p /rw/keep/$keep
    elif [ -e "$n$p" ]; then touch /rw/keep/$keep
    else continue
    fi
    mount --bind "$n$p" /rw/keep/$keep && echo "$p" >>/rw/keep/list && keep=$((keep + 1))
  done </job/keep
fi
for d in /tmp /var/tmp; do mount -t tmpfs -o mode=1777 tmpfs $n$d; done
i=0
while [ $i -lt $keep ]; do
  i=$((i + 1))
  p=$(sed -n "${i}p" /rw/keep/list)
  mkdir -p "$n${p%/*}"
  if [ -d /rw/keep/$((i - 1)) ]; then mkdir -p "$n$p"; else touch "$n$p"; fi
  mount --move /rw/keep/$((i - 1)) "$n$p"
done
mount -t tmpfs -o mode=755 tmpfs $n/run
mkdir -p $n/run/lock $n/run/moat-qemu

# The job directory (and any extra writable shares run.sh added) at their host paths.
mkdir -p "$n$job"
mount --move /job "$n$job"
if [ -f "$n$job/rw" ]; then
  while read -r tag path; do
    mkdir -p "$n$path"
    mount -t 9p -o "$opts,rw" "$tag" "$n$path" || fail "cannot mount $path over 9p"
  done <"$n$job/rw"
fi

# Modules on demand: the unpacked package's tree, and a modprobe for the kernel to call.
moddir=$(sed -n 's/^MODDIR=//p' "$n$job/params")
if [ -n "$moddir" ] && [ -d "$n$moddir" ]; then
  mkdir -p "$n/lib/modules/$kver"
  mount --bind "$n$moddir" "$n/lib/modules/$kver"
  printf '#!/bin/busybox sh\nexec /bin/busybox modprobe "$@"\n' >$n/run/moat-qemu/modprobe
  chmod 755 $n/run/moat-qemu/modprobe
  echo /run/moat-qemu/modprobe >/proc/sys/kernel/modprobe
fi

cp /stage2.sh $n/run/moat-qemu/stage2.sh
printf 'NONCE=%s\nJOB=%s\n' "$nonce" "$job" >$n/run/moat-qemu/params
umount /proc /sys 2>/dev/null
[ -x $n/bin/bash ] || fail "no /bin/bash in the host root"
exec switch_root $n /bin/bash /run/moat-qemu/stage2.sh
fail "switch_root failed"
