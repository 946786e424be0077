#!/bin/bash
# PID 1 of the second kernel after switch_root (run with the host's bash, which also reaps
# orphans): prints what the kernel offers, runs the job between sentinel lines that run.sh
# looks for, and powers off. The job is $JOB/cmd with the caller's environment from $JOB/env.
. /run/moat-qemu/params
exec </dev/null
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

poweroff() {
  sync
  /bin/busybox poweroff -f
  sleep 5
  echo o >/proc/sysrq-trigger
  sleep 60
}

read_or() { cat "$1" 2>/dev/null || echo "(no $1)"; }
echo "moat-qemu: kernel $(uname -r), $(nproc) CPUs, up $(cut -d' ' -f1 /proc/uptime) s"
echo "moat-qemu: cgroup.controllers: $(read_or /sys/fs/cgroup/cgroup.controllers)"
echo "moat-qemu: lsm: $(read_or /sys/kernel/security/lsm)"
echo "moat-qemu: apparmor enabled: $(read_or /sys/module/apparmor/parameters/enabled)"

echo "MOAT-QEMU-BEGIN-$NONCE"
/bin/bash "$JOB/cmd"
rc=$?
echo "MOAT-QEMU-END-$NONCE"
echo "$rc" >"$JOB/status"
echo "MOAT-QEMU-STATUS-$NONCE=$rc"
poweroff
