#!/usr/bin/env python3
"""Side-by-side start-up benchmark of moat-runtime, crun and runc on the same bundle.

Measures, per runtime and per config (minimal, docker-like with seccomp):
  run     `RUNTIME run ID` of /bin/true: create, start, wait, delete
  create  `RUNTIME create ID` (container left waiting)
  start   `RUNTIME start ID` of that created container
  exec    `RUNTIME exec ID true` into a running container
  rss     peak RSS of the `run` invocation (ru_maxrss of the runtime process)
and prints medians and moat's ratio to each other runtime. Timings are wall clock of the
whole command, measured from this process, so the exec cost of each binary is included.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def timed(cmd):
    """Runs cmd; returns (seconds, peak RSS KiB of the child)."""
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_RDWR)
        os.dup2(fd, 0); os.dup2(fd, 1)
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {os.waitstatus_to_exitcode(status)}")
    return dt, ru.ru_maxrss


def make_bundle(dir, runtime_bin, variant):
    sh(["bash", os.path.join(REPO, "tools/make-bundle.sh"), dir, "true"],
       env=dict(os.environ, MOAT_RUNTIME=runtime_bin), stdout=subprocess.DEVNULL)
    path = os.path.join(dir, "config.json")
    c = json.load(open(path))
    c["ociVersion"] = "1.0.2"  # Debian 12's crun knows runtime-spec up to 1.0.x
    c["root"]["readonly"] = True
    c["process"]["rlimits"] = []
    if variant == "minimal":
        c["linux"].pop("seccomp", None)
        c["linux"].pop("sysctl", None)
        c["linux"].pop("resources", None)
        c["linux"]["maskedPaths"] = []
        c["linux"]["readonlyPaths"] = []
        c["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "network")]
        c["mounts"] = [m for m in c["mounts"] if m["destination"] in ("/proc", "/dev", "/dev/pts")]
    json.dump(c, open(path, "w"), indent=2)


def runtimes(moat_bin):
    rts = {"moat": [moat_bin]}
    if shutil.which("crun"):
        rts["crun"] = ["crun"]
    if shutil.which("runc"):
        rts["runc"] = ["runc"]
    return rts


def bench_one(name, base, root, bundle, n):
    cmd = base + ["--root", root]
    res = {"run": [], "create": [], "start": [], "exec": [], "rss": []}
    # warm up (page cache, moat's seccomp cache)
    for i in range(3):
        timed(cmd + ["run", "--bundle", bundle, f"w{i}"])
    for i in range(n):
        dt, rss = timed(cmd + ["run", "--bundle", bundle, f"r{i}"])
        res["run"].append(dt); res["rss"].append(rss)
    for i in range(n):
        dt, _ = timed(cmd + ["create", "--bundle", bundle, f"c{i}"])
        res["create"].append(dt)
        dt, _ = timed(cmd + ["start", f"c{i}"])
        res["start"].append(dt)
        time.sleep(0.01)
        subprocess.run(cmd + ["delete", "--force", f"c{i}"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    # exec: a long-running container
    sleeper = bundle + "-sleep"
    shutil.copytree(bundle, sleeper, symlinks=True)
    cfgp = os.path.join(sleeper, "config.json")
    c = json.load(open(cfgp)); c["process"]["args"] = ["sleep", "600"]; json.dump(c, open(cfgp, "w"))
    sh(cmd + ["run", "--detach", "--bundle", sleeper, "sleeper"], stdout=subprocess.DEVNULL)
    try:
        for i in range(n):
            dt, _ = timed(cmd + ["exec", "sleeper", "true"])
            res["exec"].append(dt)
    finally:
        subprocess.run(cmd + ["delete", "--force", "sleeper"], stdout=subprocess.DEVNULL)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--moat", default=os.path.join(REPO, "build/src/runtime/moat-runtime"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/runtime.py needs root")
    import ctypes
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: reap detached inits
    work = tempfile.mkdtemp(prefix="moat-bench-")
    # State roots on tmpfs, where runtimes keep them in production (/run/runc, /run/crun, ...).
    state = tempfile.mkdtemp(prefix="moat-bench-", dir="/run")
    table = {}
    try:
        for variant in ("minimal", "docker-like"):
            bundle = os.path.join(work, f"bundle-{variant}")
            make_bundle(bundle, args.moat, variant)
            for name, base in runtimes(args.moat).items():
                root = os.path.join(state, f"root-{name}-{variant}")
                r = bench_one(name, base, root, bundle, args.n)
                table[(variant, name)] = {k: statistics.median(v) for k, v in r.items()}
                shutil.rmtree(bundle + "-sleep", ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    print(f"# moat-runtime vs crun vs runc, medians of {args.n} (ms; rss KiB)")
    print(f"{'config':12} {'runtime':6} {'run':>8} {'create':>8} {'start':>8} {'exec':>8} {'rss':>8}")
    for (variant, name), m in table.items():
        print(f"{variant:12} {name:6} {m['run']*1e3:8.1f} {m['create']*1e3:8.1f} "
              f"{m['start']*1e3:8.1f} {m['exec']*1e3:8.1f} {m['rss']:8.0f}")
    print("# ratios moat/other (lower is better for moat)")
    for variant in ("minimal", "docker-like"):
        for other in ("crun", "runc"):
            if (variant, other) not in table:
                continue
            m, o = table[(variant, "moat")], table[(variant, other)]
            print(f"{variant:12} moat/{other:5} " + " ".join(
                f"{k}={m[k]/o[k]:.2f}" for k in ("run", "create", "start", "exec", "rss")))


if __name__ == "__main__":
    main()
