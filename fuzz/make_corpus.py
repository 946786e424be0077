#!/usr/bin/env python3
"""Regenerates fuzz/corpus/<target>/ from real data (run from anywhere; needs a main build in
build/ for the bundled busybox image and moat-runtime, or pass --build DIR).

Sources: the bundled busybox image (build/images/busybox.tar and busybox-oci.tar: config,
manifest, index, manifest.json, the layer's tar headers), the OCI image-spec examples in
/work/shared/reference/oci/image-spec, `moat-runtime spec` and profiles/*.json, the requests
the docker CLI sends (DOCKER-API-NOTES.md), DNS queries as resolvers send them. Seeds stay
small: every file is at most a few KiB except config.json/seccomp documents.
"""
import argparse, gzip, hashlib, io, json, os, re, shutil, struct, subprocess, sys, tarfile, tempfile

here = os.path.dirname(os.path.abspath(__file__))
top = os.path.dirname(here)
ap = argparse.ArgumentParser()
ap.add_argument("--build", default=os.path.join(top, "build"))
ap.add_argument("--reference", default="/work/shared/reference")
args = ap.parse_args()
corpus = os.path.join(here, "corpus")


def put(target, name, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


for t in os.listdir(corpus) if os.path.isdir(corpus) else []:
    shutil.rmtree(os.path.join(corpus, t))

# ---- the bundled busybox image -------------------------------------------------------------
def members(path):
    with tarfile.open(path) as t:
        return {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}

docker = members(os.path.join(args.build, "images", "busybox.tar"))
oci = members(os.path.join(args.build, "images", "busybox-oci.tar"))
layer = None
for name, data in list(docker.items()) + list(oci.items()):
    if len(data) > 100000:
        layer = data
        continue
    if name.endswith("manifest.json"):
        put("image_json", "docker-archive-manifest.json", data)
    elif name.endswith("index.json"):
        put("image_json", "oci-index.json", data)
    elif name.endswith("repositories"):
        put("image_json", "docker-archive-repositories.json", data)
    elif name.startswith("blobs/"):
        doc = json.loads(data)
        kind = "manifest" if "layers" in doc else "config" if "rootfs" in doc else "blob"
        put("image_json", "busybox-%s-%s.json" % (kind, name[-12:]), data)

# image-spec examples (```json blocks of config.md, manifest.md, image-index.md, descriptor.md)
spec_dir = os.path.join(args.reference, "oci", "image-spec")
for md in ("config.md", "manifest.md", "image-index.md", "descriptor.md", "image-layout.md"):
    p = os.path.join(spec_dir, md)
    if not os.path.exists(p):
        continue
    blocks = re.findall(r"```json[^\n]*\n(.*?)```", open(p).read(), re.S)
    for i, b in enumerate(blocks):
        try:
            json.loads(b)
        except ValueError:
            continue
        put("image_json", "spec-%s-%d.json" % (md[:-3], i), b)

# A Docker manifest list choosing platforms, as registries serve them for multi-arch images.
put("image_json", "docker-manifest-list.json", json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
    "manifests": [
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528,
         "digest": "sha256:" + hashlib.sha256(b"amd64").hexdigest(),
         "platform": {"architecture": "amd64", "os": "linux"}},
        {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 528,
         "digest": "sha256:" + hashlib.sha256(b"arm64").hexdigest(),
         "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}]}))

# ---- layers: real headers of the busybox layer, contents cut short --------------------------
def trim(tar):
    """Drops tarfile's padding to a 10 KiB record: the data, then the two end-of-archive blocks."""
    body = tar.rstrip(b"\0")
    return body + b"\0" * (-len(body) % 512) + b"\0" * 1024


def rebuild(src_members, fmt, limit=48, pax=None):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as t:
        for m, data in src_members:
            if pax:
                m.pax_headers = dict(pax)
            if m.isfile():
                data = data[:limit]
                m.size = len(data)
                t.addfile(m, io.BytesIO(data))
            else:
                t.addfile(m)
    return trim(out.getvalue())

with tarfile.open(fileobj=io.BytesIO(layer)) as t:
    real = [(m, t.extractfile(m).read() if m.isfile() else b"") for m in t.getmembers()]
real = real[:24]  # the directories, busybox itself and its first applet links
real_tar = rebuild(real, tarfile.GNU_FORMAT)
put("extract_layer", "busybox-head.tar", real_tar)
put("extract_layer", "busybox-head.tar.gz", gzip.compress(real_tar, 6, mtime=0))
zst = subprocess.run(["zstd", "-q", "-c", "-3"], input=real_tar, stdout=subprocess.PIPE, check=True)
put("extract_layer", "busybox-head.tar.zst", zst.stdout)
put("extract_layer", "busybox-head-pax.tar", rebuild(real[:8], tarfile.PAX_FORMAT, pax={
    "mtime": "1700000000.123456789", "SCHILY.xattr.user.origin": "busybox"}))

def craft(entries, fmt=tarfile.PAX_FORMAT):
    """entries: (name, kind, extra) with kind in file dir sym link chr fifo."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as t:
        for e in entries:
            name, kind = e[0], e[1]
            extra = e[2] if len(e) > 2 else {}
            m = tarfile.TarInfo(name)
            m.mtime = 1700000000
            m.mode = extra.get("mode", 0o755 if kind == "dir" else 0o644)
            m.pax_headers = extra.get("pax", {})
            data = extra.get("data", b"")
            if kind == "file":
                m.size = len(data)
            elif kind == "dir":
                m.type = tarfile.DIRTYPE
            elif kind == "sym":
                m.type, m.linkname = tarfile.SYMTYPE, extra["target"]
            elif kind == "link":
                m.type, m.linkname = tarfile.LNKTYPE, extra["target"]
            elif kind == "chr":
                m.type, m.devmajor, m.devminor = tarfile.CHRTYPE, 1, 3
            elif kind == "fifo":
                m.type = tarfile.FIFOTYPE
            t.addfile(m, io.BytesIO(data) if kind == "file" else None)
    return trim(out.getvalue())

put("extract_layer", "whiteouts.tar", craft([
    ("etc", "dir"), ("etc/passwd", "file", {"data": b"root:x:0:0::/root:/bin/sh\n"}),
    ("etc/.wh.group", "file"), ("var", "dir"), ("var/.wh..wh..opq", "file"),
    ("var/log", "dir", {"mode": 0o700})]))
put("extract_layer", "traversal.tar", craft([
    ("../escape", "file", {"data": b"x"}), ("/abs/file", "file", {"data": b"y"}),
    ("a/../../b", "file", {"data": b"z"}), ("./c/./d", "file", {"data": b"w"})]))
put("extract_layer", "symlink-write-through.tar", craft([
    ("up", "sym", {"target": "../.."}), ("up/sentinel", "file", {"data": b"pwned"}),
    ("abs", "sym", {"target": "/tmp"}), ("abs/x", "file", {"data": b"x"})]))
put("extract_layer", "hardlinks.tar", craft([
    ("f", "file", {"data": b"data"}), ("h", "link", {"target": "f"}),
    ("host", "link", {"target": "../sentinel"}), ("passwd", "link", {"target": "/etc/passwd"})]))
put("extract_layer", "special.tar", craft([
    ("dev", "dir"), ("dev/null", "chr"), ("run", "dir"), ("run/fifo", "fifo"),
    ("bin", "dir"), ("bin/su", "file", {"mode": 0o4755, "data": b"#!/bin/sh\n"}),
    ("locked", "dir", {"mode": 0}), ("locked/inner", "file", {"data": b"i"})]))
put("extract_layer", "longname-pax.tar", craft([
    ("d/" + "n" * 200 + "/" + "m" * 120, "file", {"data": b"long"}),
    ("x", "file", {"data": b"xa", "pax": {"SCHILY.xattr.user.moat": "1"}})]))
put("extract_layer", "longname-gnu.tar", craft([
    ("g/" + "L" * 180, "file", {"data": b"gnu"}), ("g/ln", "sym", {"target": "K" * 150})],
    tarfile.GNU_FORMAT))
put("extract_layer", "replace-dir-with-file.tar", craft([
    ("a", "dir"), ("a/b", "file", {"data": b"1"}), ("a", "file", {"data": b"2"}),
    ("a", "dir"), ("a/c", "sym", {"target": "b"})]))
put("extract_layer", "empty.tar", b"\0" * 1024)

# ---- references ----------------------------------------------------------------------------
refs = ["busybox", "busybox:latest", "docker.io/library/busybox:1.36",
        "index.docker.io/library/ubuntu", "myorg/app:1", "localhost:5000/myorg/app:v1.2.3-rc1",
        "127.0.0.1:5000/x/y/z:tag_1", "[::1]:5000/ns/img:t",
        "registry.example.com:443/a/b/c@sha256:" + hashlib.sha256(b"x").hexdigest(),
        "ubuntu:22.04@sha256:" + hashlib.sha256(b"y").hexdigest(),
        "library/library/busybox", "a__b-c.d/e---f:Tag.1", "localhost/x"]
for i, r in enumerate(refs):
    put("reference", "ref-%02d" % i, r)

# ---- HTTP requests as the docker CLI sends them ---------------------------------------------
H = "Host: api.moby.localhost\r\nUser-Agent: Docker-Client/28.2.2 (linux)\r\n"
create_body = json.dumps(json.loads(r'''{"Hostname":"","Domainname":"","User":"","AttachStdin":true,
"AttachStdout":true,"AttachStderr":true,"Tty":true,"OpenStdin":true,"StdinOnce":true,"Env":null,
"Cmd":["sh","-c","echo hi"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,
"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"",
"Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no",
"MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[40,120],
"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],
"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"",
"Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"",
"UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"",
"BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],
"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,
"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],
"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,
"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,
"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},
"NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Links":null,"Aliases":null,
"MacAddress":"","DriverOpts":null,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"",
"IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}'''),
    separators=(",", ":"))

def req(method, target, body=None, headers="", chunked=False):
    s = "%s %s HTTP/1.1\r\n%s%s" % (method, target, H, headers)
    if body is None:
        return s + "\r\n"
    if chunked:
        b = body.encode()
        parts = [b[:len(b) // 2], b[len(b) // 2:]]
        return (s + "Transfer-Encoding: chunked\r\n\r\n" +
                "".join("%x\r\n%s\r\n" % (len(p), p.decode("latin1")) for p in parts if p) +
                "0\r\n\r\n")
    return s + "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

http = {
    "ping-head": req("HEAD", "/_ping"),
    "ping-get-http10": "GET /_ping HTTP/1.0\r\n\r\n",
    "run-sequence": req("HEAD", "/_ping") + req("POST", "/v1.41/containers/create?name=web", create_body) +
                    req("POST", "/v1.41/containers/4f1e/wait?condition=removed"),
    "attach-upgrade": req("POST", "/v1.41/containers/4f1e/attach?stderr=1&stdin=1&stdout=1&stream=1",
                          headers="Connection: Upgrade\r\nUpgrade: tcp\r\n") + "echo hi\n",
    "exec-start": req("POST", "/v1.41/exec/9a0b/start", '{"Detach":false,"Tty":true}',
                      "Connection: Upgrade\r\nUpgrade: tcp\r\n"),
    "load-chunked": req("POST", "/v1.41/images/load?quiet=1", "ustar-bytes-of-an-image-archive",
                        "Content-Type: application/x-tar\r\n", chunked=True),
    "archive-put": req("PUT", "/v1.41/containers/4f1e/archive?path=%2Ftmp&noOverwriteDirNonDir=true",
                       "tar", "Content-Type: application/x-tar\r\n", chunked=True),
    "ps-filters": req("GET", "/v1.41/containers/json?all=1&filters=%7B%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D"),
    "rm-docker-py": req("DELETE", "/v1.44/containers/web?v=True&link=False&force=True"),
    "tag": req("POST", "/v1.41/images/myorg/app:1/tag?repo=docker.io%2Fmyorg%2Ftagged&tag=x"),
    "image-inspect": req("GET", "/v1.47/images/localhost:5000/a/b:c/json"),
    "pull": req("POST", "/v1.41/images/create?fromImage=busybox&tag=latest", "",
                "X-Registry-Auth: e30=\r\n"),
    "too-new": req("GET", "/v1.52/version"),
    "bad-escape": req("GET", "/v1.41/containers/%zz/json?x=%4"),
    "expect-continue": req("POST", "/v1.41/containers/create", create_body[:200],
                           "Expect: 100-continue\r\n"),
}
for k, v in http.items():
    put("http_request", k, v)

targets = ["/_ping", "/v1.41/containers/json?all=1&limit=5", "/v1.40.1/containers/x/json",
           "/v1.47/images/docker.io%2Flibrary%2Fbusybox/json",
           "/v1.41/containers/json?filters=%7B%22status%22%3A%5B%22exited%22%5D%7D",
           "/v1.44/containers/web?v=True&link=False&force=True", "/images/a/json/json",
           "/v1.99/version", "/v/containers/json", "/containers/%2e%2e/json?a+b=c+d&&e"]
for i, t in enumerate(targets):
    put("url", "target-%02d" % i, t)

# ---- container create and exec bodies -------------------------------------------------------
put("container_spec", "cli-run-rm-it.json", create_body)
base = json.loads(create_body)
def variant(name, **hc):
    b = json.loads(create_body)
    cfg = hc.pop("_config", {})
    b.update(cfg)
    b["HostConfig"].update(hc)
    put("container_spec", name, json.dumps(b, separators=(",", ":")))
variant("ports.json", PortBindings={"80/tcp": [{"HostIp": "", "HostPort": "8080"}],
                                    "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5300-5310"}]},
        _config={"ExposedPorts": {"80/tcp": {}, "53/udp": {}}})
variant("mounts.json", Binds=["/srv/data:/data:ro", "vol1:/cache"],
        Mounts=[{"Type": "tmpfs", "Target": "/run", "TmpfsOptions": {"SizeBytes": 65536, "Mode": 1023}},
                {"Type": "bind", "Source": "/tmp", "Target": "/mnt", "ReadOnly": True,
                 "BindOptions": {"Propagation": "rslave"}}], Tmpfs={"/scratch": "size=64m"})
variant("limits.json", Memory=67108864, MemorySwap=134217728, NanoCpus=1500000000, PidsLimit=100,
        CpusetCpus="0-1", BlkioWeight=300, Ulimits=[{"Name": "nofile", "Soft": 1024, "Hard": 4096}],
        BlkioDeviceReadBps=[{"Path": "/dev/vda", "Rate": 1048576}], ShmSize=67108864, OomScoreAdj=500)
variant("security.json", CapAdd=["NET_ADMIN", "CAP_SYS_PTRACE"], CapDrop=["ALL"],
        SecurityOpt=["no-new-privileges:true", "seccomp=unconfined", "apparmor=unconfined"],
        ReadonlyRootfs=True, Init=True, Sysctls={"net.ipv4.ip_forward": "1"},
        Devices=[{"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}],
        GroupAdd=["audio", "1000"], _config={"User": "1000:1000", "StopSignal": "SIGINT", "StopTimeout": 5})
variant("network.json", NetworkMode="mynet", Dns=["10.0.0.2"], DnsSearch=["example.com"],
        DnsOptions=["ndots:2"], ExtraHosts=["db:10.0.0.5", "host.docker.internal:host-gateway"],
        RestartPolicy={"Name": "on-failure", "MaximumRetryCount": 3},
        _config={"Hostname": "web", "MacAddress": "02:42:ac:11:00:02",
                 "NetworkingConfig": {"EndpointsConfig": {"mynet": {"IPAMConfig": {
                     "IPv4Address": "172.20.0.9"}, "Aliases": ["web", "www"], "Links": ["db:database"]}}}})
put("container_spec", "compose-minimal.json",
    '{"Image":"redis:7","Cmd":null,"Env":["A=b"],"Labels":{"com.docker.compose.project":"p"},'
    '"HostConfig":{"NetworkMode":"p_default","RestartPolicy":{"Name":"unless-stopped"}}}')
put("container_spec", "exec.json",
    '{"User":"","Privileged":false,"Tty":true,"AttachStdin":true,"AttachStderr":true,'
    '"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["cmd"]}')

# docker login's POST /auth bodies (also the X-Registry-Auth JSON).
put("container_spec", "auth-login.json",
    '{"username":"moat","password":"s3cret","serveraddress":"localhost:5000"}')
put("container_spec", "auth-token.json",
    '{"auth":"bW9hdDpzM2NyZXQ=","email":"","identitytoken":"eyJhbGciOi","serveraddress":"https://index.docker.io/v1/"}')

# ---- config.json ---------------------------------------------------------------------------
rt = os.path.join(args.build, "src", "runtime", "moat-runtime")
with tempfile.TemporaryDirectory() as d:
    subprocess.run([rt, "spec", "--bundle", d], check=True)
    spec = json.load(open(os.path.join(d, "config.json")))
    put("oci_spec", "moat-runtime-spec.json", json.dumps(spec, indent=2))
# The make-bundle.sh variant: process.args set by jq.
spec2 = json.loads(json.dumps(spec))
spec2["process"]["args"] = ["sh", "-c", "echo hello; sleep 1"]
put("oci_spec", "make-bundle-sh.json", json.dumps(spec2, indent=2))
spec3 = json.loads(json.dumps(spec))
lx = spec3.setdefault("linux", {})
lx["resources"] = {"memory": {"limit": 67108864, "swap": -1}, "cpu": {"shares": 512, "quota": 50000,
                   "period": 100000, "cpus": "0-1"}, "pids": {"limit": 64},
                   "devices": [{"allow": False, "access": "rwm"},
                               {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}],
                   "unified": {"memory.high": "50000000"},
                   "hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}
lx["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
lx["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
lx.setdefault("namespaces", []).append({"type": "user"})
lx["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "0"}
lx["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                 "architectures": ["SCMP_ARCH_X86_64"],
                 "syscalls": [{"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
                              {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                               "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}]}
spec3["hooks"] = {"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]}
put("oci_spec", "resources-userns-seccomp.json", json.dumps(spec3, indent=2))
for prof in ("default-spec.json",):
    p = os.path.join(top, "profiles", prof)
    if os.path.exists(p):
        put("oci_spec", "profile-" + prof, open(p, "rb").read())
rs = os.path.join(args.reference, "oci", "runtime-spec", "config.md")
if os.path.exists(rs):
    for i, b in enumerate(re.findall(r"```json[^\n]*\n(.*?)```", open(rs).read(), re.S)):
        try:
            doc = json.loads(b)
        except ValueError:
            continue
        if len(b) > 1500 or i % 3 == 0:  # the full example and a sample of the snippets
            put("oci_spec", "runtime-spec-config-%d.json" % i, b)
put("oci_spec", "process.json", json.dumps(spec["process"]))
put("oci_spec", "resources.json", json.dumps(lx["resources"]))

# ---- DNS queries ---------------------------------------------------------------------------
def name(n):
    return b"".join(bytes([len(l)]) + l.encode() for l in n.rstrip(".").split(".") if l) + b"\0"

def query(qid, qname, qtype, qclass=1, flags=0x0100, edns=None, extra=b""):
    q = struct.pack(">HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    q += name(qname) + struct.pack(">HH", qtype, qclass)
    if edns:
        q += b"\0" + struct.pack(">HHIH", 41, edns, 0, 0)
    return q + extra

put("dns_query", "a-web", query(0x1234, "web", 1))
put("dns_query", "aaaa-db-fqdn", query(0x2345, "DB.", 28))
put("dns_query", "any-edns", query(0x3456, "db.project_default", 255, edns=4096))
put("dns_query", "ptr", query(0x4567, "2.0.18.172.in-addr.arpa", 12))
put("dns_query", "ptr-v6", query(0x5678, ".".join(reversed("fd00000000000000000000000000000" + "3")) + ".ip6.arpa", 12))
put("dns_query", "forward-a", query(0x6789, "example.com", 1, edns=1232))
put("dns_query", "forward-txt", query(0x789a, "_acme.example.org", 16))
put("dns_query", "chaos", query(0x89ab, "version.bind", 16, qclass=3))
put("dns_query", "opcode-status", query(0x9abc, "web", 1, flags=0x1000))
put("dns_query", "two-questions", struct.pack(">HHHHHH", 1, 0x100, 2, 0, 0, 0) +
    name("web") + struct.pack(">HH", 1, 1) + b"\xc0\x0c" + struct.pack(">HH", 28, 1))
put("dns_query", "compression-loop", struct.pack(">HHHHHH", 2, 0x100, 1, 0, 0, 0) + b"\xc0\x0c\x00\x01\x00\x01")
print("corpus:", {t: len(os.listdir(os.path.join(corpus, t))) for t in sorted(os.listdir(corpus))})
