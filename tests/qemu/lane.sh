#!/usr/bin/env bash
# lane.sh --source=DIR --build=DIR [in-vm.sh arguments...]: the second-kernel lane as ctest runs
# it. Builds the AppArmor check's bundles on the host first (in the VM, every exec and file lookup
# crosses 9p under software emulation, so fork-heavy scripts such as make-bundle.sh take minutes),
# then boots the VM with tools/qemu/run.sh and runs in-vm.sh there. Exit status: in-vm.sh's.
set -euo pipefail

src='' build=''
for a in "$@"; do
  case $a in
    --source=*) src=${a#*=} ;;
    --build=*) build=${a#*=} ;;
  esac
done
if [ -z "$src" ] || [ -z "$build" ]; then
  echo "usage: lane.sh --source=DIR --build=DIR [in-vm.sh arguments...]" >&2
  exit 2
fi
runtime=$build/src/runtime/moat-runtime
fixtures=$build/qemu-fixtures

# Bundles sharing one busybox rootfs (root.path is absolute): control (no profile), confined
# (process.apparmorProfile) and outside (confined, sleeps so that its pid can be looked at).
rm -rf "$fixtures"
mkdir -p "$fixtures"
if [ -x "$runtime" ]; then
  MOAT_RUNTIME=$runtime bash "$src/tools/make-bundle.sh" "$fixtures/base" >/dev/null
  mkdir -p "$fixtures/base/rootfs/scratch"
  python3 - "$fixtures" <<'PY'
import json, os, sys
fx = sys.argv[1]
base = json.load(open(os.path.join(fx, "base", "config.json")))
probe = ('read -r l </proc/self/attr/current; echo "label=$l"\n'
         'if echo x >/tmp/probe; then echo tmp=written; else echo tmp=denied; fi\n'
         'if echo x >/scratch/probe; then echo scratch=written; else echo scratch=denied; fi\n')
variants = {
    "control": (None, ["sh", "-c", probe]),
    "confined": ("moat-test-deny-write", ["sh", "-c", probe]),
    "outside": ("moat-test-deny-write", ["sleep", "60"]),
}
for name, (profile, args) in variants.items():
    c = json.loads(json.dumps(base))
    c["root"]["path"] = os.path.join(fx, "base", "rootfs")
    c["process"]["args"] = args
    c["process"]["terminal"] = False
    c["process"].pop("apparmorProfile", None)
    if profile:
        c["process"]["apparmorProfile"] = profile
    c["mounts"] = [m for m in c["mounts"] if m["destination"] not in ("/tmp", "/scratch")]
    for d in ("/tmp", "/scratch"):  # the root is read-only: these are where a write can go
        c["mounts"].append({"destination": d, "type": "tmpfs", "source": "tmpfs",
                            "options": ["nosuid", "nodev", "mode=1777"]})
    os.makedirs(os.path.join(fx, name))
    json.dump(c, open(os.path.join(fx, name, "config.json"), "w"), indent=2)
PY
fi

exec bash "$src/tools/qemu/run.sh" bash "$src/tests/qemu/in-vm.sh" --fixtures="$fixtures" "$@"
