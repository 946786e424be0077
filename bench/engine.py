#!/usr/bin/env python3
"""moatd and Debian's dockerd side by side, in one run, driven by the same docker CLI.

Both daemons are private: their own sockets, data and exec roots under one temp dir, children of
this process (a child subreaper). dockerd runs with no bridge, no iptables, the cgroupfs driver,
its own containerd, its containers' cgroups under this process's cgroup, and in a private mount
namespace with tmpfs over /run/docker and /run/containerd (so it neither finds the host's
containerd nor creates anything there). Every container on both runs with `--network none`.

Measured (medians of N; the daemons alternate, A B B A ..., so drift hits both):
  run          `docker run --rm busybox true` (wall time of the CLI); `moat run --rm` vs moatd;
               `docker ps -q`, the floor under every figure taken through the docker CLI
  create/start `docker create`, `docker start`, their sum, and the time from the create until
               the container's program runs (it writes to a FIFO bind-mounted from the host)
  exec         `docker exec C true` into a running container; `moat exec` vs moatd
  50 starts    50 `docker run -d busybox sleep 600` in parallel until all returned (fewer reps)
  memory       RSS and PSS of the engine's own processes, idle (after start and image load) and
               with the 50 running: per container = (with 50 - idle) / 50. moatd: core + front
               + monitors; dockerd: dockerd + containerd + shims. Containers' processes excluded.
"""
import argparse, os, shutil, signal, statistics, subprocess, sys, tempfile, threading, time
import select, uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DOCKER = "/usr/bin/docker"
TIMEOUT = 180


class BenchError(Exception):
    pass


def ms(s):
    return s * 1e3


def proc_table():
    """pid -> (ppid, argv, state) for every process."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        out[int(d)] = (int(rest[1]), argv, rest[0])
    return out


def mem_of(pid):
    """(RSS KiB, PSS KiB) of one process; (0, 0) if it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


class Engine:
    """One daemon and the way the docker CLI reaches it."""

    def __init__(self, name, tmp, own_names):
        self.name = name
        self.tmp = tmp
        self.sock = os.path.join(tmp, f"{name}.sock")
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}",
                        DOCKER_CONFIG=os.path.join(tmp, "docker-config"))
        self.env.pop("MOAT_HOST", None)
        self.own_names = own_names  # basenames of argv[0] of the engine's own processes
        self.proc = None
        self.log = os.path.join(tmp, f"{name}.log")

    def start(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=open(self.log, "ab"),
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited {self.proc.returncode}: {self.tail()}")
            if self.ping():
                return
            time.sleep(0.05)
        raise BenchError(f"{self.name} does not answer on {self.sock}: {self.tail()}")

    def ping(self):
        import socket
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(self.sock)
                s.sendall(b"GET /_ping HTTP/1.0\r\nHost: x\r\n\r\n")
                status = s.recv(64).split(b"\r\n", 1)[0]
                return status.startswith(b"HTTP/1.") and b" 200 " in status + b" "
        except OSError:
            return False

    def tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-15:])
        except OSError:
            return ""

    def docker(self, *args, timeout=TIMEOUT):
        """Runs the docker CLI against this engine; returns stdout; raises on failure."""
        r = subprocess.run([DOCKER, *args], env=self.env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise BenchError(f"{self.name}: docker {' '.join(args)}: exit {r.returncode}: "
                             f"{r.stderr.strip()}")
        return r.stdout

    def own_pids(self):
        """The engine's own processes: those started for this bench dir with one of its names."""
        pids = []
        for pid, (_, argv, state) in proc_table().items():
            if state == "Z" or not argv:
                continue
            if os.path.basename(argv[0]) in self.own_names and any(self.tmp in a for a in argv):
                pids.append(pid)
        return pids

    def memory(self):
        """(RSS KiB, PSS KiB, process count) summed over the engine's own processes."""
        pids = self.own_pids()
        rss = pss = 0
        for p in pids:
            r, s = mem_of(p)
            rss += r
            pss += s
        return rss, pss, len(pids)


def timed(argv, env):
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=TIMEOUT)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise BenchError(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.strip()}")
    return dt, r.stdout.strip()


def reap_orphans(keep):
    """Reaps zombies this subreaper inherited (monitors, shims), never the daemons' Popen pids."""
    me = os.getpid()
    for pid, (ppid, _, state) in proc_table().items():
        if ppid == me and state == "Z" and pid not in keep:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def alternate(i, engines):
    return engines if i % 2 == 0 else list(reversed(engines))


def bench_run(moat, dock, moat_cli, n, res):
    subjects = [
        ("run", moat, [DOCKER, "run", "--rm", "--network", "none", "busybox", "true"]),
        ("run", dock, [DOCKER, "run", "--rm", "--network", "none", "busybox", "true"]),
        ("run-moat-cli", moat, [moat_cli, "run", "--rm", "--network", "none", "busybox", "true"]),
        # The floor under every CLI figure: the CLI's start, its version ping and one request.
        ("ps", moat, [DOCKER, "ps", "-q"]),
        ("ps", dock, [DOCKER, "ps", "-q"]),
    ]
    for _ in range(2):  # warm-up: page cache, seccomp caches, the CLI's version negotiation
        for _, e, argv in subjects:
            timed(argv, e.env)
    for i in range(n):
        k = i % len(subjects)
        rot = subjects[k:] + subjects[:k]
        for metric, e, argv in rot:
            dt, _ = timed(argv, e.env)
            res[e.name].setdefault(metric, []).append(dt)


class FifoWatch:
    """Notes when something is written to a FIFO (polled from a thread, opened O_RDWR)."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.t = None
        self.th = None

    def arm(self):
        self.t = None
        self.th = threading.Thread(target=self._wait, daemon=True)
        self.th.start()

    def _wait(self):
        r, _, _ = select.select([self.fd], [], [], 60)
        if r:
            self.t = time.perf_counter()
            try:
                while os.read(self.fd, 4096):
                    pass
            except BlockingIOError:
                pass

    def wait(self):
        self.th.join(70)
        return self.t


def bench_create_start(moat, dock, n, tmp, res):
    fdir = os.path.join(tmp, "fifo")
    os.mkdir(fdir)
    os.chmod(fdir, 0o777)
    fifo = os.path.join(fdir, "ready")
    os.mkfifo(fifo, 0o666)
    watch = FifoWatch(fifo)
    create = ["create", "--network", "none", "-v", f"{fdir}:/b", "busybox",
              "sh", "-c", "echo x >/b/ready"]

    def one(e, record):
        watch.arm()
        t0 = time.perf_counter()
        t_create, cid = timed([DOCKER, *create], e.env)
        t_start, _ = timed([DOCKER, "start", cid], e.env)
        t_run = watch.wait()
        if t_run is None:
            raise BenchError(f"{e.name}: the container {cid} never wrote to the FIFO")
        e.docker("rm", "-f", cid)
        if record:
            r = res[e.name]
            r.setdefault("create", []).append(t_create)
            r.setdefault("start", []).append(t_start)
            r.setdefault("create+start", []).append(t_create + t_start)
            r.setdefault("until running", []).append(t_run - t0)

    for e in (moat, dock):
        one(e, False)
    for i in range(n):
        for e in alternate(i, [moat, dock]):
            one(e, True)


def bench_exec(moat, dock, moat_cli, n, res):
    cids = {}
    for e in (moat, dock):
        cids[e.name] = e.docker("run", "-d", "--network", "none", "busybox", "sleep", "600").strip()
    try:
        for e in (moat, dock):
            for _ in range(2):
                timed([DOCKER, "exec", cids[e.name], "true"], e.env)
        for i in range(n):
            for e in alternate(i, [moat, dock]):
                dt, _ = timed([DOCKER, "exec", cids[e.name], "true"], e.env)
                res[e.name].setdefault("exec", []).append(dt)
            # Through each engine's own CLI, as the run figures: moat exec against moatd.
            dt, _ = timed([moat_cli, "exec", cids[moat.name], "true"], moat.env)
            res[moat.name].setdefault("exec-moat-cli", []).append(dt)
    finally:
        for e in (moat, dock):
            e.docker("rm", "-f", cids[e.name])


def start_many(e, count):
    """count parallel `docker run -d ... sleep 600`: (wall seconds, ids)."""
    argv = [DOCKER, "run", "-d", "--network", "none", "busybox", "sleep", "600"]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(argv, env=e.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(count)]
    outs = [p.communicate(timeout=TIMEOUT) for p in procs]
    dt = time.perf_counter() - t0
    ids = [o.strip() for o, _ in outs if o.strip()]
    bad = [(p.returncode, err.strip()) for p, (_, err) in zip(procs, outs) if p.returncode != 0]
    return dt, ids, bad


def bench_concurrent(moat, dock, reps, count, idle, keep, res, info):
    for i in range(reps):
        for e in alternate(i, [moat, dock]):
            before = e.memory()
            dt, ids, bad = start_many(e, count)
            try:
                if bad:
                    raise BenchError(f"{e.name}: {len(bad)} of {count} starts failed, e.g. {bad[0]}")
                running = e.docker("ps", "-q").split()
                if len(running) != count:
                    raise BenchError(f"{e.name}: {len(running)} containers running, not {count}")
                time.sleep(1.0)  # let the starts' transient processes exit
                rss, pss, nprocs = e.memory()
            finally:
                t0 = time.perf_counter()
                if ids:
                    e.docker("rm", "-f", *ids)
                t_rm = time.perf_counter() - t0
            reap_orphans(keep)
            r = res[e.name]
            r.setdefault(f"{count} starts", []).append(dt)
            r.setdefault(f"{count} removes", []).append(t_rm)
            r.setdefault("rss per container", []).append((rss - idle[e.name][0]) / count)
            r.setdefault("pss per container", []).append((pss - idle[e.name][1]) / count)
            info[e.name].setdefault("with50", []).append((rss, pss, nprocs))
            info[e.name].setdefault("before50", []).append(before)


def own_cgroup_paths():
    """hierarchy mount dir -> this process's cgroup path in it (v1 controllers and v2)."""
    out = {}
    mounts = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            fstype, opts = parts[sep + 1], parts[sep + 3].split(",")
            if fstype == "cgroup2":
                mounts[""] = parts[4]
            elif fstype == "cgroup":
                for o in opts:
                    if o not in ("rw", "ro", "nosuid", "nodev", "noexec", "relatime", "clone_children"):
                        mounts.setdefault(o, parts[4])
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in (ctrls.split(",") if ctrls else [""]):
                if c in mounts:
                    out[mounts[c]] = path
    return out


def cleanup(tmp, engines, docker_cg, keep_pids):
    problems = []
    for e in engines:
        if e.proc is None or e.proc.poll() is not None:
            continue
        try:
            ids = e.docker("ps", "-aq", timeout=60).split()
            if ids:
                e.docker("rm", "-f", *ids, timeout=120)
        except (BenchError, subprocess.TimeoutExpired) as err:
            problems.append(f"removing {e.name}'s containers: {err}")
    for e in engines:
        if e.proc is None:
            continue
        if e.proc.poll() is None:
            e.proc.terminate()
            try:
                e.proc.wait(30)
            except subprocess.TimeoutExpired:
                problems.append(f"{e.name} ignored SIGTERM for 30 s: killed")
                e.proc.kill()
                e.proc.wait()
    # What is left: engine processes (monitors, shims, containerd) by pid, then the processes of
    # containers in our docker cgroup parent.
    # Monitors and shims of just-removed containers may still be on their way out: 5 s grace.
    deadline = time.monotonic() + 5
    while True:
        reap_orphans(keep_pids)
        left = [pid for pid, (_, argv, state) in proc_table().items()
                if state != "Z" and pid != os.getpid() and any(tmp in a for a in argv)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for cg in docker_cg:
        for root, _, files in os.walk(cg):
            if "cgroup.procs" in files:
                with open(os.path.join(root, "cgroup.procs")) as f:
                    left += [int(p) for p in f.read().split()]
    for pid in set(left):
        problems.append(f"left over: pid {pid} {' '.join(proc_table().get(pid, (0, ['?'], ''))[1])[:120]}")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.5)
    reap_orphans(keep_pids)
    with open("/proc/self/mountinfo") as f:
        mounts = [l.split()[4] for l in f if l.split()[4].startswith(tmp + "/")]
    for m in sorted(mounts, reverse=True):
        problems.append(f"left over: mount {m}")
        subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
    for cg in docker_cg:
        for root, dirs, _ in os.walk(cg, topdown=False):
            try:
                os.rmdir(root)
            except FileNotFoundError:
                pass
            except OSError as err:
                problems.append(f"cgroup {root}: {err}")
    shutil.rmtree(tmp, ignore_errors=True)
    if os.path.exists(tmp):
        problems.append(f"{tmp} could not be removed")
    return problems


def med(v):
    return statistics.median(v) if v else float("nan")


def report(res, info, idle, args, started, load):
    m, d = res["moatd"], res["dockerd"]
    c = args.concurrent
    rows = [
        ("docker run --rm busybox true (ms)", ms(med(m["run"])), ms(med(d["run"])), 0.1, None),
        ("moat run --rm vs docker run (ms)", ms(med(m["run-moat-cli"])), ms(med(d["run"])), 0.1, None),
        ("docker ps -q: the CLI's floor (ms)", ms(med(m["ps"])), ms(med(d["ps"])), None, None),
        ("docker create (ms)", ms(med(m["create"])), ms(med(d["create"])), None, None),
        ("docker start (ms)", ms(med(m["start"])), ms(med(d["start"])), None, None),
        ("create + start (ms)", ms(med(m["create+start"])), ms(med(d["create+start"])), None, None),
        ("create until running (ms)", ms(med(m["until running"])), ms(med(d["until running"])), None, None),
        ("docker exec C true (ms)", ms(med(m["exec"])), ms(med(d["exec"])), 0.2, None),
        ("moat exec vs docker exec (ms)", ms(med(m["exec-moat-cli"])), ms(med(d["exec"])), 0.2, None),
        (f"{c} parallel run -d (ms)", ms(med(m[f"{c} starts"])), ms(med(d[f"{c} starts"])), None, None),
        (f"rm -f of {c} (ms)", ms(med(m[f"{c} removes"])), ms(med(d[f"{c} removes"])), None, None),
        ("idle engine RSS (MiB)", idle["moatd"][0] / 1024, idle["dockerd"][0] / 1024, None, 15),
        ("idle engine PSS (MiB)", idle["moatd"][1] / 1024, idle["dockerd"][1] / 1024, None, None),
        ("RSS per running container (MiB)", med(m["rss per container"]) / 1024,
         med(d["rss per container"]) / 1024, None, 1.5),
        ("PSS per running container (MiB)", med(m["pss per container"]) / 1024,
         med(d["pss per container"]) / 1024, None, 1.5),
    ]
    print(f"# moatd vs dockerd {args.dockerd_version}, docker CLI {args.cli_version}; medians of "
          f"{args.n} ({args.reps} for the {c} parallel starts); load average at start {load[0]}, "
          f"at end {load[1]}; {time.strftime('%Y-%m-%d %H:%M')}, {time.monotonic() - started:.0f} s")
    print(f"{'metric':36} {'moatd':>9} {'dockerd':>9} {'ratio':>6}  {'target':14} met?")
    for name, mv, dv, ratio_target, abs_target in rows:
        ratio = mv / dv if dv else float("nan")
        if ratio_target is not None:
            target, met = f"ratio <= {ratio_target}", ratio <= ratio_target
        elif abs_target is not None:
            target, met = f"moatd < {abs_target}", mv < abs_target
        else:
            target, met = "-", None
        mark = "" if met is None else ("yes" if met else "NO")
        print(f"{name:36} {mv:9.2f} {dv:9.2f} {ratio:6.2f}  {target:14} {mark}")
    print("# memory details (KiB; the engine's own processes)")
    for name in ("moatd", "dockerd"):
        rss, pss, npr = idle[name]
        w = info[name]["with50"]
        b = info[name]["before50"]
        print(f"{name:8} idle: {npr} processes, RSS {rss}, PSS {pss}; with {c} running "
              f"(median of {len(w)}): {med([x[2] for x in w]):.0f} processes, RSS "
              f"{med([x[0] for x in w]):.0f}, PSS {med([x[1] for x in w]):.0f}; just before the "
              f"{c}: RSS {med([x[0] for x in b]):.0f}, PSS {med([x[1] for x in b]):.0f}; "
              f"after the bench: RSS {info[name]['after'][0]}, PSS {info[name]['after'][1]}")
        print(f"{'':8} per container against the 'just before' baseline: RSS "
              f"{(med([x[0] for x in w]) - med([x[0] for x in b])) / c:.0f}, PSS "
              f"{(med([x[1] for x in w]) - med([x[1] for x in b])) / c:.0f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=30, help="runs per latency metric (default 30)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of the parallel starts")
    ap.add_argument("--concurrent", type=int, default=50, help="containers started in parallel")
    ap.add_argument("--build", default=os.path.join(REPO, "build"), help="Moat's build dir")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir's logs (printed)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/engine.py needs root")
    build = os.path.abspath(args.build)
    moatd = os.path.join(build, "src/daemon/moatd")
    moat_cli = os.path.join(build, "src/cli/moat")
    image = os.path.join(build, "images/busybox.tar")
    for f in (moatd, moat_cli, image, DOCKER, shutil.which("dockerd") or "dockerd"):
        if not os.path.exists(f):
            sys.exit(f"{f} is missing (build Moat; bash tools/install-deps.sh)")
    import ctypes
    if ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
    def on_term(*_):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    started = time.monotonic()
    load0 = open("/proc/loadavg").read().split()[0]

    tmp = tempfile.mkdtemp(prefix="moat-bench-engine-", dir="/tmp")
    os.chmod(tmp, 0o711)  # moatd's front runs as an unprivileged user
    none = os.path.join(tmp, "none.json")
    with open(none, "w") as f:
        f.write("{}\n")
    # dockerd 20.10 would create /etc/docker/key.json: keep its trust key in tmp.
    dconf = os.path.join(tmp, "dockerd.json")
    with open(dconf, "w") as f:
        f.write('{"deprecated-key-path": "%s/docker-key.json"}\n' % tmp)
    cg_name = f"moat-bench-docker-{uuid.uuid4().hex[:8]}"
    docker_cg = [os.path.join(h, p.lstrip("/"), cg_name) for h, p in own_cgroup_paths().items()]

    moat = Engine("moatd", tmp, {"moatd", "moat-runtime", "moat-dns"})
    dock = Engine("dockerd", tmp, {"dockerd", "containerd", "containerd-shim-runc-v2"})
    res = {"moatd": {}, "dockerd": {}}
    info = {"moatd": {}, "dockerd": {}}
    idle = {}
    ok = False
    try:
        # moatd in a network namespace of its own: its bridge and nftables tables stay there
        # (the containers run with --network none; dockerd has --bridge none and no iptables).
        moat.start(["unshare", "--net", "--", moatd, "-H", f"unix://{moat.sock}", "--data-root", f"{tmp}/moat-data",
                    "--exec-root", f"{tmp}/moat-exec", "--config-file", none])
        # A private mount namespace with tmpfs over /run/docker and /run/containerd: dockerd
        # must start its own containerd (it would use /run/containerd/containerd.sock if that
        # existed) and leaves nothing in the host's /run. The tmp dir is not a mount: the
        # socket and the state are the same files in both namespaces.
        shield = ('for d in /run/docker /run/containerd; do '
                  'if [ -d "$d" ]; then mount -t tmpfs -o mode=0700 moat-bench "$d" || exit 1; '
                  'else echo "note: dockerd will create $d" >&2; fi; done; exec "$@"')
        dock.start(["unshare", "--mount", "--propagation", "private", "sh", "-c", shield, "sh",
                    "dockerd", "--data-root", f"{tmp}/docker-data", "--exec-root", f"{tmp}/docker-exec",
                    "--pidfile", f"{tmp}/docker.pid", "-H", f"unix://{dock.sock}",
                    "--bridge", "none", "--iptables=false", "--ip6tables=false",
                    "--ip-forward=false", "--ip-masq=false", "--userland-proxy=false",
                    "--config-file", dconf, "--containerd-namespace", "moat-bench",
                    "--containerd-plugins-namespace", "moat-bench-plugins",
                    "--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", cg_name,
                    "--storage-driver", "overlay2"])
        keep = {moat.proc.pid, dock.proc.pid}
        args.dockerd_version = dock.docker("version", "-f", "{{.Server.Version}}").strip()
        args.cli_version = dock.docker("version", "-f", "{{.Client.Version}}").strip()
        for e in (moat, dock):
            e.docker("load", "-i", image)
        time.sleep(1.0)
        for e in (moat, dock):
            idle[e.name] = e.memory()
        print(f"idle: moatd {idle['moatd']}, dockerd {idle['dockerd']} (RSS KiB, PSS KiB, "
              f"processes)", file=sys.stderr, flush=True)
        for step, fn in (("run", lambda: bench_run(moat, dock, moat_cli, args.n, res)),
                         ("create/start", lambda: bench_create_start(moat, dock, args.n, tmp, res)),
                         ("exec", lambda: bench_exec(moat, dock, moat_cli, args.n, res)),
                         (f"{args.concurrent} parallel starts",
                          lambda: bench_concurrent(moat, dock, args.reps, args.concurrent, idle,
                                                   keep, res, info))):
            print(f"== {step} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
            fn()
            reap_orphans(keep)
        for e in (moat, dock):
            info[e.name]["after"] = e.memory()
        ok = True
    except (BenchError, subprocess.TimeoutExpired, KeyboardInterrupt) as err:
        print(f"FAILED: {err or type(err).__name__}", file=sys.stderr)
        for e in (moat, dock):
            print(f"--- {e.name} log tail:\n{e.tail()}", file=sys.stderr)
    finally:
        if args.keep:
            keepdir = tempfile.mkdtemp(prefix="moat-bench-engine-logs-")
            for e in (moat, dock):
                if os.path.exists(e.log):
                    shutil.copy(e.log, keepdir)
            print(f"logs kept in {keepdir}", file=sys.stderr)
        problems = cleanup(tmp, [moat, dock], docker_cg,
                           {e.proc.pid for e in (moat, dock) if e.proc})
        for p in problems:
            print(f"cleanup: {p}", file=sys.stderr)
    if not ok:
        sys.exit(1)
    report(res, info, idle, args, started, (load0, open("/proc/loadavg").read().split()[0]))


if __name__ == "__main__":
    main()
