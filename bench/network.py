#!/usr/bin/env python3
"""Container networking: moatd and Debian's dockerd side by side, driven by the same docker CLI.

Each daemon runs in a network and mount namespace of its own (`unshare --net --mount
--propagation private`, then bench/lib-daemons.sh's bench_ns_init: lo up, an extra "host"
address 192.0.2.1/32 on lo, ip_forward on, a sysfs of that namespace, tmpfs over /run/docker and
/run/containerd), so their bridges, veths and iptables/nftables rules never reach the host's.
dockerd runs WITH its default bridge and iptables (userland proxy off); moatd with its defaults.
The docker CLI reaches both over their unix sockets in one temp dir, which needs no namespace.

Measured (the daemons alternate; a metric a daemon cannot do yet is reported "n/a (error: ...)"):
  start      `docker run --rm busybox true` with `--network none` and on the default bridge,
             medians of N; "bridge adds" is the median of the paired differences (bridge run
             minus the none run next to it in time)
  c2c        iperf3 TCP throughput between two containers on one user-defined network
             (`docker network create`; server `iperf3 -s`, client `iperf3 -c <server name>`)
  published  iperf3 from a process in the daemon's network namespace (nsenter --net) to a
             server published with `-p 5201:5201`: to the namespace's address 192.0.2.1 and to
             127.0.0.1
busybox has no iperf3: the containers see the host's /usr, /usr/lib as /lib and /usr/lib64 as
/lib64, read-only, and run /usr/bin/iperf3 (Debian's, dynamically linked).
"""
import argparse, json, os, shutil, signal, subprocess, sys, tempfile, time, uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no bench/__pycache__ in the tree
import engine as eng  # noqa: E402  (Engine, timed, cleanup, ... shared with bench/engine.py)

DOCKER = eng.DOCKER
HOST_ADDR = "192.0.2.1"  # TEST-NET-1: on lo inside each daemon's namespace only
PORT = 5201
IPERF_MOUNTS = ["-v", "/usr:/usr:ro", "-v", "/usr/lib:/lib:ro", "-v", "/usr/lib64:/lib64:ro"]
IPERF = "/usr/bin/iperf3"


class Daemon(eng.Engine):
    """An eng.Engine whose process runs in namespaces of its own."""

    def netns(self):
        return f"/proc/{self.proc.pid}/ns/net"

    def ns_ids(self):
        """(net ns inode, mnt ns inode) of the daemon's namespaces."""
        return tuple(os.stat(f"/proc/{self.proc.pid}/ns/{k}").st_ino for k in ("net", "mnt"))


def ns_start(d, tmp, shield, argv):
    """Starts `argv` as daemon `d` in fresh network and mount namespaces (see bench_ns_init)."""
    env = dict(os.environ, BENCH_NS_ADDR=f"{HOST_ADDR}/32", BENCH_NS_SHIELD=shield,
               BENCH_NS_TMP=tmp)
    script = f'. "{HERE}/lib-daemons.sh" && bench_ns_init && exec "$@"'
    # unshare without --fork execs in place: the Popen pid is the daemon's, in its namespaces.
    full = ["unshare", "--net", "--mount", "--propagation", "private",
            "bash", "-c", script, "bench-ns", *argv]
    d.proc = subprocess.Popen(full, env=env, stdin=subprocess.DEVNULL,
                              stdout=open(d.log, "ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if d.proc.poll() is not None:
            raise eng.BenchError(f"{d.name} exited {d.proc.returncode}: {d.tail()}")
        if d.ping():
            return
        time.sleep(0.05)
    raise eng.BenchError(f"{d.name} does not answer on {d.sock}: {d.tail()}")


def short(err, limit=110):
    s = " ".join(str(err).split())
    return s if len(s) <= limit else s[:limit - 3] + "..."


class Results:
    def __init__(self):
        self.values = {"moatd": {}, "dockerd": {}}
        self.errors = {"moatd": {}, "dockerd": {}}

    def add(self, who, metric, v):
        self.values[who].setdefault(metric, []).append(v)

    def fail(self, who, metric, err):
        self.errors[who].setdefault(metric, str(err))
        print(f"  {who} {metric}: {short(err, 300)}", file=sys.stderr, flush=True)

    def ok(self, who, metric):
        return metric not in self.errors[who]


def bench_start(ds, n, res):
    """`docker run --rm busybox true`, --network none and default bridge, alternating."""
    runs = {"none": ["run", "--rm", "--network", "none", "busybox", "true"],
            "bridge": ["run", "--rm", "busybox", "true"]}
    subjects = [(d, k) for d in ds for k in ("none", "bridge")]
    for d, k in subjects:  # warm-up; a daemon that cannot do it is out of this metric
        try:
            for _ in range(2):
                eng.timed([DOCKER, *runs[k]], d.env)
            # A run that "succeeds" without the network asked for measures nothing.
            _, dev = eng.timed([DOCKER, *runs[k][:-1], "cat", "/proc/net/dev"], d.env)
            ifs = sorted(l.split(":")[0].strip() for l in dev.splitlines() if ":" in l)
            if (k == "bridge") != (ifs != ["lo"]):
                raise eng.BenchError(f"{d.name}: a `{k}` container has the interfaces "
                                     f"{', '.join(ifs) or 'none'}")
        except (eng.BenchError, subprocess.TimeoutExpired) as err:
            res.fail(d.name, f"run {k}", err)
    for i in range(n):
        k0 = i % len(subjects)
        for d, k in subjects[k0:] + subjects[:k0]:
            if not res.ok(d.name, f"run {k}"):
                continue
            try:
                dt, _ = eng.timed([DOCKER, *runs[k]], d.env)
                res.add(d.name, f"run {k}", dt * 1e3)
            except (eng.BenchError, subprocess.TimeoutExpired) as err:
                res.fail(d.name, f"run {k}", err)
    for d in ds:
        a, b = res.values[d.name].get("run none", []), res.values[d.name].get("run bridge", [])
        # Pairs taken in the same round, so load drift cancels out.
        res.values[d.name]["bridge adds"] = [y - x for x, y in zip(a, b)] if len(a) == len(b) else []
        for k in ("run bridge", "run none"):
            if not res.ok(d.name, k):
                res.fail(d.name, "bridge adds", res.errors[d.name][k])


def iperf_gbits(out, what):
    """Receiver-side throughput (Gbit/s) from `iperf3 -J` output."""
    try:
        j = json.loads(out)
    except ValueError:
        raise eng.BenchError(f"{what}: iperf3 printed no JSON: {short(out, 200)}")
    if "error" in j:
        raise eng.BenchError(f"{what}: iperf3: {j['error']}")
    return j["end"]["sum_received"]["bits_per_second"] / 1e9


def run_iperf(argv, env, secs, what):
    r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=secs + 60)
    if r.returncode != 0 and not r.stdout.strip().startswith("{"):
        raise eng.BenchError(f"{what}: exit {r.returncode}: {short(r.stderr, 300)}")
    return iperf_gbits(r.stdout, what)


def wait_listening(d, cid, what):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        logs = subprocess.run([DOCKER, "logs", cid], env=d.env, capture_output=True, text=True,
                              timeout=30)
        if "Server listening" in logs.stdout + logs.stderr:
            return
        state = d.docker("inspect", "-f", "{{.State.Status}}", cid).strip()
        if state not in ("running", "created"):
            raise eng.BenchError(f"{what}: the iperf3 server is {state}: "
                                 f"{short(logs.stdout + logs.stderr, 200)}")
        time.sleep(0.1)
    raise eng.BenchError(f"{what}: the iperf3 server does not listen after 20 s")


def bench_iperf(ds, runs, secs, res, tag):
    """Both throughput paths. Setup per daemon, then rounds alternating the daemons."""
    net = f"moat-bench-{tag}"
    srv_name = f"moat-bench-srv-{tag}"
    clients = {}   # (daemon name, metric) -> argv
    cleanup = {d.name: [] for d in ds}
    try:
        for d in ds:
            # Container to container on a user-defined network, the server found by name.
            m = "c2c"
            try:
                d.docker("network", "create", net)
                cleanup[d.name].append(["network", "rm", net])
                cid = d.docker("run", "-d", "--name", srv_name, "--network", net, *IPERF_MOUNTS,
                               "busybox", IPERF, "-s", "--forceflush").strip()
                cleanup[d.name].insert(0, ["rm", "-f", cid])
                wait_listening(d, cid, m)
                clients[(d.name, m)] = [DOCKER, "run", "--rm", "--network", net, *IPERF_MOUNTS,
                                        "busybox", IPERF, "-c", srv_name, "-t", str(secs), "-J"]
            except (eng.BenchError, subprocess.TimeoutExpired) as err:
                res.fail(d.name, m, err)
            # Through a published port, from the daemon's own network namespace.
            try:
                cid = d.docker("run", "-d", "-p", f"{PORT}:{PORT}", *IPERF_MOUNTS, "busybox",
                               IPERF, "-s", "-p", str(PORT), "--forceflush").strip()
                cleanup[d.name].insert(0, ["rm", "-f", cid])
                wait_listening(d, cid, "published")
                for m, addr in (("published host addr", HOST_ADDR), ("published 127.0.0.1", "127.0.0.1")):
                    clients[(d.name, m)] = ["nsenter", f"--net={d.netns()}", IPERF, "-c", addr,
                                            "-p", str(PORT), "-t", str(secs), "-J"]
            except (eng.BenchError, subprocess.TimeoutExpired) as err:
                for m in ("published host addr", "published 127.0.0.1"):
                    res.fail(d.name, m, err)
        metrics = ("c2c", "published host addr", "published 127.0.0.1")
        for m in metrics:  # one short warm-up each; a failure takes the daemon out of the metric
            for d in ds:
                if (d.name, m) in clients and res.ok(d.name, m):
                    argv = clients[(d.name, m)]
                    try:
                        run_iperf([*argv[:-3], "-t", "1", "-J"], d.env, 1, m)
                    except (eng.BenchError, subprocess.TimeoutExpired) as err:
                        res.fail(d.name, m, err)
        for i in range(runs):
            for m in metrics:
                for d in eng.alternate(i, ds):
                    if (d.name, m) not in clients or not res.ok(d.name, m):
                        continue
                    try:
                        res.add(d.name, m, run_iperf(clients[(d.name, m)], d.env, secs, m))
                    except (eng.BenchError, subprocess.TimeoutExpired) as err:
                        res.fail(d.name, m, err)
            print(f"  iperf round {i + 1}/{runs}", file=sys.stderr, flush=True)
    finally:
        for d in ds:
            for argv in cleanup[d.name]:
                try:
                    d.docker(*argv, timeout=60)
                except (eng.BenchError, subprocess.TimeoutExpired) as err:
                    print(f"cleanup: {d.name}: {short(err, 300)}", file=sys.stderr)


def host_state():
    """What the host's network looks like, to prove the bench left it alone."""
    def out(argv):
        r = subprocess.run(argv, capture_output=True, text=True)
        return r.stdout if r.returncode == 0 else f"<{' '.join(argv)}: exit {r.returncode}>"
    return {"links": out(["ip", "-o", "link", "show"]),
            "addrs": out(["ip", "-o", "addr", "show"]),
            "routes": out(["ip", "route", "show", "table", "all"]),
            "nft": out(["nft", "list", "ruleset"]),
            "iptables": out(["iptables-save"]),
            "ip_forward": open("/proc/sys/net/ipv4/ip_forward").read()}


def ns_leftovers(ns_ids):
    """Our descendants still in one of the daemons' network or mount namespaces. Only
    descendants: once a namespace is gone its inode number may be reused by someone else's."""
    table = eng.proc_table()
    me = os.getpid()

    def ours(pid):
        for _ in range(64):
            pid = table.get(pid, (0,))[0]
            if pid == me:
                return True
            if pid <= 1:
                return False
        return False

    left = []
    for p in table:
        try:
            ids = (os.stat(f"/proc/{p}/ns/net").st_ino, os.stat(f"/proc/{p}/ns/mnt").st_ino)
        except OSError:
            continue
        if any(i in ns_ids for i in ids) and ours(p):
            left.append(p)
    return left


def cell(res, who, metric, fmt, agg):
    if not res.ok(who, metric):
        return f"n/a (error: {short(res.errors[who][metric], 90)})"
    v = res.values[who].get(metric)
    return fmt.format(agg(v)) if v else "n/a"


def report(res, args, started, load, versions):
    med = eng.med
    ms = "{:.1f}"
    gb = "{:.2f}"
    rows = [  # metric label, key, fmt, target kind
        ("`run --rm busybox true`, `--network none` ms", "run none", ms, None),
        ("`run --rm busybox true`, default bridge ms", "run bridge", ms, None),
        ("bridge adds to a start (median paired difference) ms", "bridge adds", ms, "le5"),
        ("TCP container to container, user-defined network Gbit/s", "c2c", gb, "ge"),
        ("TCP published port, host address -> container Gbit/s", "published host addr", gb, "ge"),
        ("TCP published port, 127.0.0.1 -> container Gbit/s", "published 127.0.0.1", gb, "ge"),
    ]
    print(f"# networking: moatd vs dockerd {versions[0]}, docker CLI {versions[1]}; medians of "
          f"{args.n} starts and {args.iperf_n} iperf3 runs of {args.iperf_time} s; load average "
          f"{load[0]} at start, {load[1]} at end; {time.strftime('%Y-%m-%d %H:%M')}, "
          f"{time.monotonic() - started:.0f} s")
    print()
    print("| metric | moatd | dockerd | ratio | target | met? |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    for label, key, fmt, kind in rows:
        mc, dc = cell(res, "moatd", key, fmt, med), cell(res, "dockerd", key, fmt, med)
        mv = med(res.values["moatd"].get(key, [])) if res.ok("moatd", key) else None
        dv = med(res.values["dockerd"].get(key, [])) if res.ok("dockerd", key) else None
        ratio = f"{mv / dv:.2f}" if mv is not None and dv and mv == mv and dv == dv else ""
        if kind == "le5":
            target = "moatd ≤ 5 ms"
            met = "" if mv is None or mv != mv else ("yes" if mv <= 5 else "no")
            ratio = ""  # a difference of two small numbers: the ratio means nothing
        elif kind == "ge":
            target = "≥ dockerd"
            met = "" if not ratio else ("yes" if mv >= dv else "no")
        else:
            target, met = "", ""
        print(f"| {label} | {mc} | {dc} | {ratio} | {target} | {met} |")
    spread = []
    for who in ("moatd", "dockerd"):
        for _, key, fmt, _ in rows:
            v = res.values[who].get(key)
            if v and res.ok(who, key):
                spread.append(f"{who} {key}: min {fmt.format(min(v))} max {fmt.format(max(v))} "
                              f"(n={len(v)})")
    print()
    print("spread: " + "; ".join(spread))
    for who in ("moatd", "dockerd"):
        for key, err in res.errors[who].items():
            print(f"error: {who} {key}: {short(err, 400)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=20, help="runs per start metric (default 20)")
    ap.add_argument("--iperf-n", type=int, default=None,
                    help="iperf3 runs per throughput metric (default: N)")
    ap.add_argument("--iperf-time", type=int, default=5, help="seconds per iperf3 run (default 5)")
    ap.add_argument("--build", default=os.path.join(REPO, "build"), help="Moat's build dir")
    ap.add_argument("--keep", action="store_true", help="keep the daemons' logs (printed)")
    args = ap.parse_args()
    if args.iperf_n is None:
        args.iperf_n = args.n
    if os.geteuid() != 0:
        sys.exit("bench/network.py needs root")
    build = os.path.abspath(args.build)
    moatd = os.path.join(build, "src/daemon/moatd")
    image = os.path.join(build, "images/busybox.tar")
    for f in (moatd, image, DOCKER, IPERF, shutil.which("dockerd") or "dockerd",
              shutil.which("nsenter") or "nsenter", shutil.which("unshare") or "unshare"):
        if not os.path.exists(f):
            sys.exit(f"{f} is missing (build Moat; bash tools/install-deps.sh; apt-get install iperf3)")
    import ctypes
    if ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")

    def on_term(*_):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_term)
    started = time.monotonic()
    load0 = open("/proc/loadavg").read().split()[0]
    before = host_state()

    tmp = tempfile.mkdtemp(prefix="moat-bench-network-", dir="/tmp")
    os.chmod(tmp, 0o711)  # moatd's front runs as an unprivileged user
    none = os.path.join(tmp, "none.json")
    with open(none, "w") as f:
        f.write("{}\n")
    dconf = os.path.join(tmp, "dockerd.json")
    with open(dconf, "w") as f:
        f.write('{"deprecated-key-path": "%s/docker-key.json"}\n' % tmp)
    tag = uuid.uuid4().hex[:8]
    cg_name = f"moat-bench-docker-{tag}"
    docker_cg = [os.path.join(h, p.lstrip("/"), cg_name) for h, p in eng.own_cgroup_paths().items()]

    moat = Daemon("moatd", tmp, {"moatd", "moat-runtime"})
    dock = Daemon("dockerd", tmp, {"dockerd", "containerd", "containerd-shim-runc-v2"})
    res = Results()
    ns_ids = set()
    versions = ("?", "?")
    ok = False
    up = []
    try:
        try:
            ns_start(moat, tmp, "", [moatd, "-H", f"unix://{moat.sock}", "--data-root",
                                     f"{tmp}/moat-data", "--exec-root", f"{tmp}/moat-exec",
                                     "--config-file", none])
            ns_ids.update(moat.ns_ids())
            moat.docker("load", "-i", image)
            up.append(moat)
        except (eng.BenchError, subprocess.TimeoutExpired) as err:
            for m in ("run none", "run bridge", "bridge adds", "c2c", "published host addr",
                      "published 127.0.0.1"):
                res.fail("moatd", m, f"moatd: {err}")
        ns_start(dock, tmp, "/run/docker /run/containerd",
                 ["dockerd", "--data-root", f"{tmp}/docker-data", "--exec-root", f"{tmp}/docker-exec",
                  "--pidfile", f"{tmp}/docker.pid", "-H", f"unix://{dock.sock}",
                  "--userland-proxy=false", "--ip6tables=false",
                  "--config-file", dconf, "--containerd-namespace", "moat-bench",
                  "--containerd-plugins-namespace", "moat-bench-plugins",
                  "--exec-opt", "native.cgroupdriver=cgroupfs", "--cgroup-parent", cg_name,
                  "--storage-driver", "overlay2"])
        ns_ids.update(dock.ns_ids())
        dock.docker("load", "-i", image)
        up.append(dock)
        versions = (dock.docker("version", "-f", "{{.Server.Version}}").strip(),
                    dock.docker("version", "-f", "{{.Client.Version}}").strip())
        keep = {d.proc.pid for d in (moat, dock) if d.proc}
        print(f"== start latency ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        bench_start(up, args.n, res)
        eng.reap_orphans(keep)
        print(f"== throughput ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        bench_iperf(up, args.iperf_n, args.iperf_time, res, tag)
        eng.reap_orphans(keep)
        ok = True
    except (eng.BenchError, subprocess.TimeoutExpired, KeyboardInterrupt) as err:
        print(f"FAILED: {err or type(err).__name__}", file=sys.stderr)
        for d in (moat, dock):
            print(f"--- {d.name} log tail:\n{d.tail()}", file=sys.stderr)
    finally:
        if args.keep:
            keepdir = tempfile.mkdtemp(prefix="moat-bench-network-logs-")
            for d in (moat, dock):
                if os.path.exists(d.log):
                    shutil.copy(d.log, keepdir)
            print(f"logs kept in {keepdir}", file=sys.stderr)
        problems = eng.cleanup(tmp, [moat, dock], docker_cg,
                               {d.proc.pid for d in (moat, dock) if d.proc})
        # Whatever is still inside the daemons' namespaces (a container that outlived its
        # daemon): by pid, after a grace period. The namespaces go with their last process.
        deadline = time.monotonic() + 5
        while ns_ids and ns_leftovers(ns_ids) and time.monotonic() < deadline:
            eng.reap_orphans(set())
            time.sleep(0.2)
        for pid in ns_leftovers(ns_ids):
            problems.append(f"left over in a daemon's namespace: pid {pid}")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.3)
        eng.reap_orphans(set())
        after = host_state()
        for k in before:
            if before[k] != after[k]:
                problems.append(f"the host's {k} changed during the bench (another user, or a leak)")
        for p in problems:
            print(f"cleanup: {p}", file=sys.stderr)
    if not ok:
        sys.exit(1)
    report(res, args, started, (load0, open("/proc/loadavg").read().split()[0]), versions)


if __name__ == "__main__":
    main()
