#!/usr/bin/env bash
# Images from and to registries through moatd (issue #4), with real registries this script
# starts on 127.0.0.1 in a network namespace of its own (Debian's docker-registry):
#   - plain HTTP on 127.0.0.1:5000;
#   - TLS (a CA made here, moatd trusting it through registry-certs-dir) with htpasswd basic
#     auth on 127.0.0.1:5443.
# Driven by the real docker CLI and by moat, cross-checked with skopeo: push, pull back (same
# image id), run of a missing image (pulled on the fly), pull by digest, a multi-platform index
# (amd64 chosen by default, arm64 with --platform), login/logout (credentials file 0600, bad
# password refused), a tampered blob refused with nothing left behind while the daemon keeps
# serving, hostile docker-archive loads (traversal, symlinks, hardlinks out, a device node, a gzip
# bomb, a wrong diff id: a sentinel beside the data root unchanged, refusals named, the daemon
# serving), kill -9 of moatd in the middle of a pull (no partial image after the restart).
#
#   registry.sh /abs/build/dir
#
# Needs root, docker.io, docker-registry, apache2-utils, skopeo, openssl, curl, python3. Prints
# PASS/FAIL per check and "N passed, M failed"; exits 0 when all passed, 1 otherwise, 77 when not
# root. MOAT_ENGINE_KEEP=1 keeps the temp dir.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib-checks.sh"

if [ $# -ne 1 ]; then
  echo "usage: $0 /abs/build/dir" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: the registry test needs root"
  exit 77
fi
reexec_isolated "$0" "$@"

BUILD=$1
MOATD=$BUILD/src/daemon/moatd
MOAT=$BUILD/src/cli/moat
IMAGE_TAR=$BUILD/images/busybox.tar
DOCKER=/usr/bin/docker
for f in "$MOATD" "$MOAT" "$IMAGE_TAR" "$DOCKER"; do
  [ -e "$f" ] || { echo "FAIL: $f is missing (build, and bash tools/install-deps.sh)"; exit 1; }
done
for tool in docker-registry htpasswd skopeo openssl curl python3 timeout; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (bash tools/install-deps.sh)"; exit 1; }
done

T=$(mktemp -d /tmp/moat-registry-XXXXXX) || { echo "FAIL: mktemp"; exit 1; }
chmod 0711 "$T"
SOCK=$T/moat.sock
export DOCKER_HOST=unix://$SOCK
export DOCKER_CONFIG=$T/docker-config
export MOAT_HOST=unix://$SOCK
export MOAT_CONFIG=$T/moat-config
MOATD_PID=
REG_PIDS=()
PLAIN=127.0.0.1:5000
SECURE=127.0.0.1:5443

start_moatd() {
  "$MOATD" -H "unix://$SOCK" --data-root "$T/data" --exec-root "$T/exec" --config-file "$T/daemon.json" \
    >>"$T/moatd.log" 2>&1 &
  MOATD_PID=$!
  local i
  for i in $(seq 100); do
    curl -sf --unix-socket "$SOCK" http://x/_ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  return 1
}

# start_registry NAME ADDR [EXTRA-YAML]: a docker-registry with its storage under $T/NAME.
start_registry() {
  local name=$1 addr=$2 extra=${3:-}
  mkdir -p "$T/$name"
  cat >"$T/$name.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $T/$name/storage
  delete:
    enabled: true
http:
  addr: $addr
$extra
EOF
  docker-registry serve "$T/$name.yml" >>"$T/$name.log" 2>&1 &
  REG_PIDS+=($!)
  local i scheme=http curl_opts=()
  [[ $extra == *tls:* ]] && { scheme=https; curl_opts=(--cacert "$T/pki/ca.crt"); }
  for i in $(seq 100); do
    # 200 (open) or 401 (auth) from /v2/ means it serves.
    code=$(curl -s -o /dev/null -w '%{http_code}' "${curl_opts[@]}" "$scheme://$addr/v2/" 2>/dev/null)
    [ "$code" = 200 ] || [ "$code" = 401 ] && return 0
    sleep 0.05
  done
  return 1
}

cleanup() {
  echo "== cleanup ($(elapsed) s)"
  if [ -n "$MOATD_PID" ] && kill -0 "$MOATD_PID" 2>/dev/null; then
    local ids
    ids=$(timeout 20 "$DOCKER" ps -aq 2>/dev/null)
    [ -n "$ids" ] && timeout 60 "$DOCKER" rm -f $ids >/dev/null 2>&1
    kill "$MOATD_PID" 2>/dev/null
    wait "$MOATD_PID" 2>/dev/null
  fi
  local p
  for p in "${REG_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  stop_leftover_monitors "$T"
  local m
  for m in $(awk -v t="$T" '$5 ~ "^"t {print $5}' /proc/self/mountinfo | sort -r); do
    umount -l "$m" 2>/dev/null
  done
  local leftovers
  leftovers=$(awk -v t="$T" '$5 ~ "^"t' /proc/self/mountinfo)
  if [ -z "$leftovers" ]; then pass "cleanup: no mount left"; else fail "cleanup: mounts left" "$leftovers"; fi
  if [ "${MOAT_ENGINE_KEEP:-}" = 1 ]; then echo "kept $T"; else rm -rf "$T"; fi
  summary
}
trap 'cleanup; [ $FAILED = 0 ]; exit $?' EXIT

# --- registries ---------------------------------------------------------------------------------
mkdir -p "$T/pki" "$T/certs.d/$SECURE"
(
  cd "$T/pki" &&
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=moat-test-ca" \
      -keyout ca.key -out ca.crt &&
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr &&
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext &&
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile san.ext -out server.crt
) >"$T/pki.log" 2>&1 || { fail "test CA and server certificate" "$(cat "$T/pki.log")"; exit 1; }
cp "$T/pki/ca.crt" "$T/certs.d/$SECURE/ca.crt"
htpasswd -Bbn moatuser 's3cret pass' >"$T/htpasswd" 2>/dev/null

start_registry plain "$PLAIN" || { fail "plain registry on $PLAIN" "$(cat "$T/plain.log")"; exit 1; }
start_registry secure "$SECURE" "  tls:
    certificate: $T/pki/server.crt
    key: $T/pki/server.key
auth:
  htpasswd:
    realm: moat-test
    path: $T/htpasswd" || { fail "TLS registry on $SECURE" "$(cat "$T/secure.log")"; exit 1; }
pass "registries serve: $PLAIN (HTTP), $SECURE (TLS + htpasswd)"

cat >"$T/daemon.json" <<EOF
{"registry-certs-dir": "$T/certs.d"}
EOF
if ! start_moatd; then
  fail "moatd serves $SOCK" "$(tail -20 "$T/moatd.log")"
  exit 1
fi
pass "moatd $MOATD_PID serves $SOCK"
"$DOCKER" load -i "$IMAGE_TAR" >/dev/null 2>&1
BB_ID=$("$DOCKER" image inspect -f '{{.Id}}' busybox 2>/dev/null)
DETAIL="no busybox" check "bundled busybox loaded" test -n "$BB_ID"

# --- push and pull over plain HTTP (docker CLI) -------------------------------------------------
"$DOCKER" tag busybox "$PLAIN/moat/busybox:v1"
out=$(timeout 60 "$DOCKER" push "$PLAIN/moat/busybox:v1" 2>&1)
rc=$?
PUSH_DIGEST=$(grep -o 'digest: sha256:[0-9a-f]\{64\}' <<<"$out" | head -1 | cut -d' ' -f2)
DETAIL="exit $rc: $out" check "docker push $PLAIN/moat/busybox:v1: a digest reported" \
  test "$rc" = 0 -a -n "$PUSH_DIGEST"
out=$(skopeo inspect --tls-verify=false "docker://$PLAIN/moat/busybox:v1" 2>&1)
SKOPEO_DIGEST=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["Digest"])' <<<"$out" 2>/dev/null)
DETAIL="moat: $PUSH_DIGEST skopeo: $out" check "skopeo inspect: the registry's digest is the one moatd pushed" \
  test -n "$SKOPEO_DIGEST" -a "$SKOPEO_DIGEST" = "$PUSH_DIGEST"
out=$(timeout 60 "$DOCKER" push "$PLAIN/moat/busybox:v1" 2>&1)
DETAIL=$out check "docker push again: layers already exist" grep -q "Layer already exists" <<<"$out"
"$DOCKER" tag busybox "$PLAIN/other/busybox:v1"
out=$(timeout 60 "$DOCKER" push "$PLAIN/other/busybox:v1" 2>&1)
DETAIL=$out check "docker push to another repository: blobs mounted across repositories" \
  grep -q "Mounted from moat/busybox" <<<"$out"

"$DOCKER" rmi "$PLAIN/moat/busybox:v1" "$PLAIN/other/busybox:v1" busybox >/dev/null 2>&1
# Moat keeps unreferenced layers until a prune (docker rmi removes them at once).
"$DOCKER" image prune -f >/dev/null 2>&1
DETAIL="busybox still present" check "images removed before the pull" \
  bash -c '! "$1" image inspect busybox >/dev/null 2>&1' _ "$DOCKER"
out=$(timeout 60 "$DOCKER" pull "$PLAIN/moat/busybox:v1" 2>&1)
rc=$?
id=$("$DOCKER" image inspect -f '{{.Id}}' "$PLAIN/moat/busybox:v1" 2>&1)
DETAIL="exit $rc: $out; id $id" check "docker pull $PLAIN/moat/busybox:v1: the same image id as loaded" \
  test "$rc" = 0 -a "$id" = "$BB_ID"
DETAIL=$out check "docker pull: Docker's progress lines (Pull complete, Digest, Status)" \
  bash -c 'grep -q "Pull complete" <<<"$1" && grep -q "Digest: $2" <<<"$1" && grep -q "^Status: Downloaded newer image" <<<"$1"' _ "$out" "$PUSH_DIGEST"
out=$("$DOCKER" images --digests --format '{{.Repository}} {{.Digest}}' 2>&1)
DETAIL=$out check "docker images --digests: the repo digest recorded" grep -q "^$PLAIN/moat/busybox $PUSH_DIGEST$" <<<"$out"
out=$(timeout 60 "$DOCKER" pull "$PLAIN/moat/busybox:v1" 2>&1)
DETAIL=$out check "docker pull again: Image is up to date" grep -q "Image is up to date" <<<"$out"

"$DOCKER" rmi "$PLAIN/moat/busybox:v1" >/dev/null 2>&1
out=$(timeout 60 "$DOCKER" run --rm "$PLAIN/moat/busybox:v1" echo pulled-and-ran 2>&1)
DETAIL=$out check "docker run of a missing image: pulled on the fly, then run" \
  bash -c 'grep -q "Unable to find image" <<<"$1" && grep -q "^pulled-and-ran$" <<<"$1"' _ "$out"
"$DOCKER" rmi "$PLAIN/moat/busybox:v1" >/dev/null 2>&1
out=$(timeout 60 "$DOCKER" pull "$PLAIN/moat/busybox@$PUSH_DIGEST" 2>&1)
rc=$?
id=$("$DOCKER" image inspect -f '{{.Id}}' "$PLAIN/moat/busybox@$PUSH_DIGEST" 2>&1)
DETAIL="exit $rc: $out; id $id" check "docker pull by digest" test "$rc" = 0 -a "$id" = "$BB_ID"
out=$(timeout 60 "$DOCKER" pull "$PLAIN/moat/nosuch:v1" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "docker pull of a missing repository: an error naming it" \
  bash -c '[ "$1" != 0 ] && grep -q "moat/nosuch" <<<"$2"' _ "$rc" "$out"

# --- moat CLI pull/push ---------------------------------------------------------------------------
"$DOCKER" tag "$BB_ID" "$PLAIN/moat/cli:v2" >/dev/null 2>&1
out=$(timeout 60 "$MOAT" push "$PLAIN/moat/cli:v2" 2>&1)
DETAIL=$out check "moat push: digest printed" grep -q "v2: digest: $PUSH_DIGEST" <<<"$out"
"$DOCKER" rmi "$PLAIN/moat/cli:v2" >/dev/null 2>&1
out=$(timeout 60 "$MOAT" pull "$PLAIN/moat/cli:v2" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "moat pull: status lines and the image" \
  bash -c '[ "$1" = 0 ] && grep -q "Status: " <<<"$2" && "$3" image inspect "$4" >/dev/null' _ "$rc" "$out" "$DOCKER" "$PLAIN/moat/cli:v2"

# --- a multi-platform index -----------------------------------------------------------------------
# An index of the amd64 busybox and an arm64 variant (same layers, config saying arm64), put
# together through the registry API.
out=$(python3 - "$PLAIN" <<'EOF' 2>&1
import hashlib, json, sys, urllib.error, urllib.request
reg = "http://" + sys.argv[1]
S2 = "application/vnd.docker.distribution.manifest.v2+json"
def req(method, url, data=None, ctype=None, accept=None):
    r = urllib.request.Request(url, data=data, method=method)
    if ctype: r.add_header("Content-Type", ctype)
    if accept: r.add_header("Accept", accept)
    try:
        return urllib.request.urlopen(r)
    except urllib.error.HTTPError as e:
        sys.exit(f"{method} {url}: {e.code} {e.read()[:300]!r}")
def put_blob(repo, data):
    dg = "sha256:" + hashlib.sha256(data).hexdigest()
    loc = req("POST", f"{reg}/v2/{repo}/blobs/uploads/").headers["Location"]
    if loc.startswith("/"): loc = reg + loc
    req("PUT", loc + ("&" if "?" in loc else "?") + "digest=" + dg, data, "application/octet-stream")
    return dg
OCI = "application/vnd.oci.image.manifest.v1+json"
r = req("GET", f"{reg}/v2/moat/busybox/manifests/v1", accept=S2 + ", " + OCI)
man = r.read()
MT = r.headers["Content-Type"].split(";")[0]
m = json.loads(man)
cfg = json.loads(req("GET", f"{reg}/v2/moat/busybox/blobs/{m['config']['digest']}").read())
for d in [l["digest"] for l in m["layers"]] + [m["config"]["digest"]]:
    req("POST", f"{reg}/v2/moat/multi/blobs/uploads/?mount={d}&from=moat/busybox")
cfg["architecture"] = "arm64"; cfg["variant"] = "v8"
arm_cfg = json.dumps(cfg).encode()
arm_cfg_dg = put_blob("moat/multi", arm_cfg)
arm = dict(m); arm["config"] = dict(m["config"], digest=arm_cfg_dg, size=len(arm_cfg))
arm_bytes = json.dumps(arm).encode()
req("PUT", f"{reg}/v2/moat/multi/manifests/amd", man, MT)
req("PUT", f"{reg}/v2/moat/multi/manifests/arm", arm_bytes, MT)
IDX = ("application/vnd.oci.image.index.v1+json" if MT == OCI
       else "application/vnd.docker.distribution.manifest.list.v2+json")
idx = {"schemaVersion": 2, "mediaType": IDX,
       "manifests": [
         {"mediaType": MT, "size": len(arm_bytes), "digest": "sha256:" + hashlib.sha256(arm_bytes).hexdigest(),
          "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
         {"mediaType": MT, "size": len(man), "digest": "sha256:" + hashlib.sha256(man).hexdigest(),
          "platform": {"architecture": "amd64", "os": "linux"}}]}
req("PUT", f"{reg}/v2/moat/multi/manifests/latest", json.dumps(idx).encode(), idx["mediaType"])
print("index pushed")
EOF
)
DETAIL=$out check "a two-platform index put together in the registry" grep -q "index pushed" <<<"$out"
out=$(timeout 60 "$DOCKER" pull "$PLAIN/moat/multi" 2>&1)
arch=$("$DOCKER" image inspect -f '{{.Architecture}} {{.Id}}' "$PLAIN/moat/multi" 2>&1)
DETAIL="$out; $arch" check "docker pull of the index: amd64 chosen (the host's), same id as busybox" \
  test "$arch" = "amd64 $BB_ID"
out=$(timeout 60 "$MOAT" pull --platform linux/arm64/v8 "$PLAIN/moat/multi:latest" 2>&1)
arch=$("$DOCKER" image inspect -f '{{.Architecture}}' "$PLAIN/moat/multi" 2>&1)
DETAIL="$out; $arch" check "moat pull --platform linux/arm64/v8: the arm64 image" test "$arch" = arm64
out=$(timeout 60 "$MOAT" pull --platform linux/s390x "$PLAIN/moat/multi:latest" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "moat pull --platform linux/s390x: an error naming the platform" \
  bash -c '[ "$1" != 0 ] && grep -qi "s390x" <<<"$2"' _ "$rc" "$out"

# --- TLS registry with basic auth: login, push, pull, logout -------------------------------------
out=$(echo wrong | timeout 30 "$MOAT" login -u moatuser --password-stdin "$SECURE" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "moat login with a wrong password: refused" \
  bash -c '[ "$1" != 0 ] && ! [ -s "$2" ]' _ "$rc" "$MOAT_CONFIG/config.json"
out=$(echo 's3cret pass' | timeout 30 "$MOAT" login -u moatuser --password-stdin "$SECURE" 2>&1)
rc=$?
mode=$(stat -c %a "$MOAT_CONFIG/config.json" 2>&1)
DETAIL="exit $rc: $out; mode $mode" check "moat login $SECURE: Login Succeeded, credentials file 0600" \
  bash -c '[ "$1" = 0 ] && grep -q "Login Succeeded" <<<"$2" && [ "$3" = 600 ]' _ "$rc" "$out" "$mode"
out=$(echo 's3cret pass' | timeout 30 "$DOCKER" login -u moatuser --password-stdin "$SECURE" 2>&1)
DETAIL=$out check "docker login $SECURE through moatd" grep -q "Login Succeeded" <<<"$out"
"$DOCKER" tag "$BB_ID" "$SECURE/private/busybox:v1" >/dev/null 2>&1
out=$(timeout 60 "$MOAT" push "$SECURE/private/busybox:v1" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "moat push to the TLS registry with credentials" test "$rc" = 0
out=$(skopeo inspect --cert-dir "$T/certs.d/$SECURE" --creds 'moatuser:s3cret pass' "docker://$SECURE/private/busybox:v1" 2>&1)
DETAIL=$out check "skopeo sees it in the TLS registry" grep -q "$PUSH_DIGEST" <<<"$out"
"$DOCKER" rmi "$SECURE/private/busybox:v1" >/dev/null 2>&1
out=$(timeout 60 "$DOCKER" pull "$SECURE/private/busybox:v1" 2>&1)
rc=$?
id=$("$DOCKER" image inspect -f '{{.Id}}' "$SECURE/private/busybox:v1" 2>&1)
DETAIL="exit $rc: $out" check "docker pull from the TLS registry (docker CLI's stored credentials)" \
  test "$rc" = 0 -a "$id" = "$BB_ID"
"$MOAT" logout "$SECURE" >/dev/null 2>&1
"$DOCKER" rmi "$SECURE/private/busybox:v1" >/dev/null 2>&1
out=$(timeout 60 "$MOAT" pull "$SECURE/private/busybox:v1" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "moat logout, then moat pull: refused (authentication required)" \
  bash -c '[ "$1" != 0 ] && grep -qiE "unauthorized|authentication|denied" <<<"$2"' _ "$rc" "$out"
rm -rf "$T/certs.d/$SECURE"
out=$(echo 's3cret pass' | timeout 30 "$MOAT" login -u moatuser --password-stdin "$SECURE" 2>&1)
rc=$?
DETAIL="exit $rc: $out" check "without the test CA the TLS registry is not trusted" \
  bash -c '[ "$1" != 0 ] && grep -qiE "certificate|ssl|tls" <<<"$2"' _ "$rc" "$out"

# --- hostile registry content ---------------------------------------------------------------------
# A one-layer image of its own (its blobs shared with nothing else), pushed, then its layer blob
# altered in the registry's storage.
mkdir -p "$T/tamper-root" && echo "tamper $$" >"$T/tamper-root/file"
tar -C "$T/tamper-root" -cf "$T/tamper.tar" file
"$DOCKER" import "$T/tamper.tar" "$PLAIN/moat/tamper:v1" >/dev/null 2>&1
timeout 60 "$DOCKER" push "$PLAIN/moat/tamper:v1" >/dev/null 2>&1
"$DOCKER" rmi "$PLAIN/moat/tamper:v1" >/dev/null 2>&1
"$DOCKER" image prune -f >/dev/null 2>&1
layer=$(skopeo inspect --tls-verify=false --raw "docker://$PLAIN/moat/tamper:v1" 2>/dev/null |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["layers"][0]["digest"][7:])' 2>/dev/null)
blob=$T/plain/storage/docker/registry/v2/blobs/sha256/${layer:0:2}/$layer/data
if [ -n "$layer" ] && [ -f "$blob" ]; then
  python3 - "$blob" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0xff
open(p, "wb").write(bytes(b))
EOF
  out=$(timeout 60 "$DOCKER" pull "$PLAIN/moat/tamper:v1" 2>&1)
  rc=$?
  DETAIL="exit $rc: $out" check "a tampered layer blob: pull refused, the error names the blob" \
    bash -c '[ "$1" != 0 ] && grep -q "${2:0:12}" <<<"$3"' _ "$rc" "$layer" "$out"
  DETAIL="image present" check "after the tampered pull: no such image" \
    bash -c '! "$1" image inspect "$2" >/dev/null 2>&1' _ "$DOCKER" "$PLAIN/moat/tamper:v1"
  left=$(ls -A "$T/data/image/tmp" 2>&1)
  DETAIL=$left check "after the tampered pull: nothing left in the store's tmp/" test -z "$left"
  DETAIL="no version" check "the daemon keeps serving" "$DOCKER" version
else
  fail "the tamper image's layer blob in the registry storage" "layer '$layer' blob $blob"
fi

# --- hostile archives through docker load --------------------------------------------------------
# docker-archive tars made here, each with one hostile layer; a sentinel file beside the data
# root must stay as it is, and the daemon must keep serving.
echo "sentinel $$" >"$T/sentinel"
out=$(python3 - "$T" <<'EOF'
import gzip, hashlib, io, json, os, sys, tarfile
t = sys.argv[1]
def archive(name, members, compress=None, diff_id=None):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    layer = raw.getvalue()
    did = diff_id or "sha256:" + hashlib.sha256(layer).hexdigest()
    blob = compress(layer) if compress else layer
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                      "rootfs": {"type": "layers", "diff_ids": [did]}}).encode()
    cfg_name = hashlib.sha256(cfg).hexdigest() + ".json"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        def add(n, d):
            i = tarfile.TarInfo(n); i.size = len(d); tf.addfile(i, io.BytesIO(d))
        add(cfg_name, cfg)
        add("l/layer.tar", blob)
        add("manifest.json", json.dumps([{"Config": cfg_name, "RepoTags": [f"hostile/{name}:1"],
                                          "Layers": ["l/layer.tar"]}]).encode())
    open(f"{t}/hostile-{name}.tar", "wb").write(out.getvalue())
def f(name, data=b"x", **kw):
    i = tarfile.TarInfo(name); i.size = len(data)
    for k, v in kw.items(): setattr(i, k, v)
    return i, data
def special(name, typ, **kw):
    i = tarfile.TarInfo(name); i.type = typ
    for k, v in kw.items(): setattr(i, k, v)
    return i, None
up = "../" * 12 + t.lstrip("/") + "/sentinel"
archive("traversal", [f(up, b"overwritten"), f(t + "/sentinel", b"overwritten")])
archive("symlink", [special("link", tarfile.SYMTYPE, linkname=t), f("link/sentinel", b"overwritten")])
archive("hardlink", [special("hl", tarfile.LNKTYPE, linkname=t + "/sentinel"), f("hl", b"overwritten")])
archive("device", [special("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0)])
archive("bomb", [f("zeros", b"\0" * (64 << 20))], compress=lambda b: gzip.compress(b, 9))
archive("mismatch", [f("a")], diff_id="sha256:" + "0" * 64)
print("made")
EOF
)
DETAIL=$out check "hostile docker-archive tars made" grep -q made <<<"$out"
for name in traversal symlink hardlink; do
  out=$(timeout 60 "$DOCKER" load -i "$T/hostile-$name.tar" 2>&1)
  echo "      docker load hostile-$name: exit $?: $(tail -1 <<<"$out")"
done
DETAIL=$(cat "$T/sentinel") check "hostile loads (traversal, symlink, hardlink): the sentinel beside the data root is unchanged" \
  test "$(cat "$T/sentinel")" = "sentinel $$"
out=$(timeout 60 "$DOCKER" load -i "$T/hostile-device.tar" 2>&1)
DETAIL=$out check "docker load of a layer with a device node: refused, the entry named" \
  bash -c 'grep -q "dev/sda" <<<"$1" && ! "$2" image inspect hostile/device:1 >/dev/null 2>&1' _ "$out" "$DOCKER"
out=$(timeout 60 "$DOCKER" load -i "$T/hostile-bomb.tar" 2>&1)
DETAIL=$out check "docker load of a gzip bomb: refused by the compression-ratio limit" \
  bash -c 'grep -qi "ratio" <<<"$1" && ! "$2" image inspect hostile/bomb:1 >/dev/null 2>&1' _ "$out" "$DOCKER"
out=$(timeout 60 "$DOCKER" load -i "$T/hostile-mismatch.tar" 2>&1)
DETAIL=$out check "docker load with a wrong diff id: refused naming the layer" \
  bash -c 'grep -qi "diff" <<<"$1" && ! "$2" image inspect hostile/mismatch:1 >/dev/null 2>&1' _ "$out" "$DOCKER"
left=$(ls -A "$T/data/image/tmp" 2>&1)
DETAIL=$left check "hostile loads: nothing left in the store's tmp/" test -z "$left"
DETAIL="no version" check "hostile loads: the daemon keeps serving" "$DOCKER" version

# --- kill -9 of moatd in the middle of a pull ---------------------------------------------------
# 96 MiB of random bytes (incompressible: the pull takes a while), pushed, removed, then pulled
# with moatd killed as soon as the layer download has begun.
mkdir -p "$T/big-root" && head -c 100663296 /dev/urandom >"$T/big-root/random.bin"
tar -C "$T/big-root" -cf - random.bin | "$DOCKER" import - "$PLAIN/moat/big:v1" >/dev/null 2>&1
rm -rf "$T/big-root"
timeout 120 "$DOCKER" push "$PLAIN/moat/big:v1" >/dev/null 2>&1
"$DOCKER" rmi "$PLAIN/moat/big:v1" >/dev/null 2>&1
"$DOCKER" image prune -f >/dev/null 2>&1
timeout 120 "$DOCKER" pull "$PLAIN/moat/big:v1" >"$T/big-pull.log" 2>&1 &
pull_pid=$!
for i in $(seq 400); do
  [ -n "$(ls -A "$T/data/image/tmp" 2>/dev/null)" ] && break
  sleep 0.01
done
kill -KILL "$MOATD_PID"
wait "$MOATD_PID" 2>/dev/null
wait "$pull_pid" 2>/dev/null
MOATD_PID=
if start_moatd; then
  DETAIL="present" check "kill -9 during a pull, restart: no partial image" \
    bash -c '! "$1" image inspect "$2" >/dev/null 2>&1' _ "$DOCKER" "$PLAIN/moat/big:v1"
  left=$(ls -A "$T/data/image/tmp" 2>&1)
  DETAIL=$left check "kill -9 during a pull, restart: the store's tmp/ emptied" test -z "$left"
  out=$(timeout 120 "$DOCKER" pull "$PLAIN/moat/big:v1" 2>&1)
  rc=$?
  DETAIL="exit $rc: $out" check "the pull again after the restart succeeds" test "$rc" = 0
else
  fail "moatd restarts after kill -9" "$(tail -20 "$T/moatd.log")"
fi
