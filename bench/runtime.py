#!/usr/bin/env python3
"""Side-by-side start-up benchmark of moat-runtime, crun and runc on the same bundle.

Measures, per runtime and per config (minimal, docker-like with seccomp):
  run     `RUNTIME run ID` of /bin/true: create, start, wait, delete
  create  `RUNTIME create ID` (container left waiting)
  start   `RUNTIME start ID` of that created container
  exec    `RUNTIME exec ID true` into a running container
  rss     peak RSS of the `run` invocation's own process (GNU time's %M; 7 runs)
and prints medians and moat's ratio to each other runtime. Timings are wall clock of the
whole command, measured from this process, so the exec cost of each binary is included. The
runtimes take turns (each round runs each once, the order rotated), so the machine's slow and
fast periods fall on all of them alike.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def timed(cmd):
    """Runs cmd; returns seconds. The child is started with
    posix_spawn (vfork-like: nothing of this Python process is copied), so the time is the
    command's own: a fork() of the interpreter alone costs ~10 ms on this VM, which would be
    added to every runtime alike and flatten the ratios."""
    devnull = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1)]
    t0 = time.perf_counter()
    pid = os.posix_spawnp(cmd[0], cmd, os.environ, file_actions=devnull)
    _, status = os.waitpid(pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {os.waitstatus_to_exitcode(status)}")
    return dt


def peak_rss(cmd):
    """Peak RSS (KiB) of cmd's own process, through GNU time (%M, the child's ru_maxrss).
    Not this process's wait4: a child of Python, forked or spawned, carries the interpreter's
    high-water mark into its rusage (the kernel folds the old memory's peak in at execve), and
    that is ~12 MB here. GNU time's own child starts from GNU time's ~1 MB."""
    with tempfile.NamedTemporaryFile("r", prefix="moat-bench-rss-") as out:
        devnull = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1)]
        argv = ["/usr/bin/time", "-f", "%M", "-o", out.name] + cmd
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=devnull)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {os.waitstatus_to_exitcode(status)}")
        return int(out.read().split()[-1])


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


def bench_variant(rts, roots, bundle, n):
    """Every measure of every runtime in `rts` (name -> argv prefix), interleaved: each round
    runs each runtime once, the order rotated from round to round, so that a slow or fast
    period of the machine falls on all of them alike."""
    cmds = {name: base + ["--root", roots[name]] for name, base in rts.items()}
    names = list(rts)
    res = {name: {"run": [], "create": [], "start": [], "exec": [], "rss": []} for name in names}

    def rounds():
        for i in range(n):
            k = i % len(names)
            yield i, names[k:] + names[:k]

    # warm up (page cache, moat's seccomp cache)
    for i in range(3):
        for name in names:
            timed(cmds[name] + ["run", "--bundle", bundle, f"w{i}"])
    for i, order in rounds():
        for name in order:
            res[name]["run"].append(timed(cmds[name] + ["run", "--bundle", bundle, f"r{i}"]))
    for i, order in rounds():
        if i >= 7:
            break
        for name in order:
            res[name]["rss"].append(peak_rss(cmds[name] + ["run", "--bundle", bundle, f"m{i}"]))
    for i, order in rounds():
        for name in order:
            cmd = cmds[name]
            res[name]["create"].append(timed(cmd + ["create", "--bundle", bundle, f"c{i}"]))
            res[name]["start"].append(timed(cmd + ["start", f"c{i}"]))
            time.sleep(0.01)
            subprocess.run(cmd + ["delete", "--force", f"c{i}"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    # exec: a long-running container per runtime
    sleeper = bundle + "-sleep"
    shutil.copytree(bundle, sleeper, symlinks=True)
    cfgp = os.path.join(sleeper, "config.json")
    c = json.load(open(cfgp)); c["process"]["args"] = ["sleep", "600"]; json.dump(c, open(cfgp, "w"))
    try:
        for name in names:
            # One id per runtime: the ones that default the cgroup path to the id would share it.
            sh(cmds[name] + ["run", "--detach", "--bundle", sleeper, f"sleeper-{name}"],
               stdout=subprocess.DEVNULL)
        for i, order in rounds():
            for name in order:
                res[name]["exec"].append(timed(cmds[name] + ["exec", f"sleeper-{name}", "true"]))
    finally:
        for name in names:
            subprocess.run(cmds[name] + ["delete", "--force", f"sleeper-{name}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(sleeper, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--moat", default=os.path.join(REPO, "build/src/runtime/moat-runtime"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/runtime.py needs root")
    if not os.access("/usr/bin/time", os.X_OK):
        sys.exit("bench/runtime.py needs GNU time (/usr/bin/time): run tools/install-deps.sh")
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
            rts = runtimes(args.moat)
            roots = {name: os.path.join(state, f"root-{name}-{variant}") for name in rts}
            r = bench_variant(rts, roots, bundle, args.n)
            for name in rts:
                table[(variant, name)] = {k: statistics.median(v) for k, v in r[name].items()}
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
