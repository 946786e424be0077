#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

// Moat's image store: content-addressable blobs, shared extracted layers, image records and
// tags under one root directory (default /var/lib/moat/image):
//   blobs/sha256/<hex>                 manifests, configs; layer blobs only of layers without a
//                                      tar-split record (see below)
//   layers/<chainid-hex>/diff/         extracted layer (overlay lower dir)
//   layers/<chainid-hex>/meta.json     {"diff_id","chain_id","parent","size"}
//   layers/<chainid-hex>/tar-split     what rebuilds the layer's exact tar from diff/
//                                      (image/tar_split.h); then the layer's blob is not kept
//   images/<config-digest-hex>.json    image record
//   repositories.json                  {"busybox:latest": "sha256:<config digest>", ...}
//   tmp/                               temp files and dirs; emptied by Store::Open
//   unsynced                           blobs and layers not yet written back (see
//                                      StoreOptions::sync_delay_ms)
// Every file appears atomically (temp + rename), only after its sha256 (blobs) or diff id
// (layers) was verified, so a crash leaves at most entries under tmp/.
namespace moat::image {

// A parsed image name, normalised the way Docker shows it: "docker.io/library/" is dropped,
// other "docker.io/" prefixes too ("docker.io/myorg/app" -> "myorg/app"); other registries stay
// ("ghcr.io/x/y"). At least one of tag/digest is set: a name without either gets tag "latest".
struct Reference {
  std::string repo;    // "busybox", "myorg/app", "localhost:5000/x"
  std::string tag;     // "latest"; empty when only a digest was given
  std::string digest;  // "sha256:<64 hex>" or empty

  // "busybox:latest", "myorg/app@sha256:...", "repo:tag@sha256:..." (tag first if both).
  std::string String() const;
  // "repo:tag" (the key in repositories.json); empty if there is no tag.
  std::string TagString() const;
  bool operator==(const Reference&) const = default;
};

// Parses an image reference. Errors (kInvalidArgument) name the problem: "invalid reference
// format: repository name must be lowercase", bad tag characters/length, bad digest.
Result<Reference> ParseReference(std::string_view s);

// The parts of an OCI / docker image config ("config" object) that a container needs.
struct ImageConfigView {
  std::string user;
  std::vector<std::string> env;         // "K=V"
  std::vector<std::string> entrypoint;  // empty: none
  std::vector<std::string> cmd;
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::vector<std::string> exposed_ports;  // "80/tcp"
  std::vector<std::string> volumes;        // "/data"
  std::string stop_signal;
  std::optional<int64_t> stop_timeout;
  std::vector<std::string> shell;
  // The healthcheck object as raw JSON ("" if absent); the daemon parses it if it needs it.
  std::string healthcheck_json;
  bool operator==(const ImageConfigView&) const = default;
};

// One history entry of the image config (for /images/{name}/history).
struct HistoryEntry {
  int64_t created = 0;  // unix seconds
  std::string created_by;
  std::string comment;
  bool empty_layer = false;
};

// An image as the store knows it. A value: later store changes do not update it.
struct Image {
  std::string id;                        // "sha256:<config digest hex>"
  std::vector<std::string> tags;         // "busybox:latest", sorted
  std::vector<std::string> repo_digests; // "busybox@sha256:<manifest digest>" when known
  std::string manifest_digest;           // "sha256:..." of the stored manifest ("" if imported)
  std::vector<std::string> diff_ids;     // "sha256:...", BOTTOM first
  std::vector<std::string> chain_ids;    // "sha256:...", BOTTOM first
  std::vector<std::string> layer_dirs;   // absolute layers/<chainid>/diff, BOTTOM first
  ImageConfigView config;
  std::string architecture;  // "amd64"
  std::string os;            // "linux"
  std::string author;
  std::string comment;
  std::string docker_version;
  std::vector<HistoryEntry> history;
  int64_t created = 0;  // unix seconds from the config's "created" (0 if absent)
  int64_t size = 0;     // sum of the extracted layer sizes in bytes
  std::string config_json;  // the raw config blob, for callers that need more
};

struct StoreOptions {
  // Path of the moat-extract executable. Empty: "moat-extract" beside /proc/self/exe.
  std::string extractor_path;
  // Limits passed to the extractor for each layer.
  uint64_t max_entries = 1'000'000;
  uint64_t max_path_length = 4096;
  uint64_t max_layer_bytes = 64ull << 30;  // uncompressed tar size
  uint64_t max_compression_ratio = 1000;   // uncompressed / compressed
  // If true, the extractor does not chown (rootless / unit tests); otherwise it keeps uid/gid.
  bool no_chown = false;
  // Registries (Pull/Push/CheckAuth). Registries reached over plain HTTP: "host:port" or
  // "host" entries and CIDRs ("10.0.0.0/8") as daemon.json's "insecure-registries"; loopback
  // registries (localhost, 127.0.0.0/8, ::1) are always allowed plain HTTP, as Docker does.
  std::vector<std::string> insecure_registries;
  // Per-registry CAs and client certificates: <certs_dir>/<host[:port]>/ca.crt, client.cert,
  // client.key (Docker's /etc/docker/certs.d layout). The system CAs are always trusted.
  std::string certs_dir = "/etc/moat/certs.d";
  // Write-behind durability of the bulk data: compressed layer blobs and extracted layers are
  // renamed into place without an fsync each (writing them back synchronously would cost a pull
  // or load about as much time again on a disk); the store syncs its file system once,
  // `sync_delay_ms` after the last such commit, and when it is closed. Until then their names
  // are listed in root/unsynced with the boot id. A daemon crash loses nothing (the page cache
  // survives it); after a machine crash that came first, Open removes the listed blobs and
  // layers and every image that used them, so no image is ever half there. Metadata (image
  // records, tags, manifests, configs) is always written durably. < 0: sync only when closed.
  int sync_delay_ms = 3000;
  // The boot the store runs in; empty: /proc/sys/kernel/random/boot_id. Tests set it.
  std::string boot_id;
};

// Credentials for one registry, as the Engine API's X-Registry-Auth / POST /auth carry them.
// All empty: anonymous (the Bearer token flow still runs, without credentials).
struct RegistryAuth {
  std::string username;
  std::string password;
  std::string identity_token;  // OAuth2 refresh token, used instead of username/password
  std::string registry_token;  // a ready Bearer token, sent as is
  std::string server_address;  // "localhost:5000", "https://index.docker.io/v1/"; informative
};

// One line of Docker's JSON progress stream for pull/push:
//   {"status":"Downloading","progressDetail":{"current":1024,"total":4096},"id":"a3ed95caeb02"}
// `id` is the short (12 hex) layer digest, or empty for whole-image lines such as
// "Pulling from library/busybox", "Digest: sha256:...", "Status: Downloaded newer image for ...".
struct ProgressEvent {
  std::string id;
  std::string status;    // "Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum",
                         // "Download complete", "Extracting", "Pull complete", "Already exists",
                         // "Preparing", "Pushing", "Pushed", "Layer already exists", "Mounted from x"
  int64_t current = -1;  // bytes; -1: no progressDetail
  int64_t total = -1;
};
using ProgressFn = std::function<void(const ProgressEvent&)>;

struct PullOptions {
  RegistryAuth auth;
  // The platform to choose from a manifest list / OCI index; empty: the host's
  // (linux/amd64 here). `variant` matters for arm ("v7", "v8").
  std::string os;
  std::string architecture;
  std::string variant;
};

// What Store::Load added.
struct LoadResult {
  std::vector<std::string> tags;  // "busybox:latest"
  std::vector<std::string> ids;   // "sha256:..." of every image loaded, in archive order
};

// Options of `docker import`.
struct ImportOptions {
  std::string message;                  // history comment
  std::vector<std::string> changes;     // Dockerfile-style: "CMD [\"sh\"]", "ENV A=b", ...
  std::string architecture;             // empty: the host's
  std::string os = "linux";
  std::optional<int64_t> created;       // unix seconds; empty: now
};

// Options of `docker commit` (Store::CommitImage).
struct CommitOptions {
  // The new image's "config" object (Cmd, Env, Entrypoint, ...) as JSON text; it replaces the
  // parent's.
  std::string config_json = "{}";
  std::string author;
  std::string comment;                  // the image's and the history entry's comment
  std::string created_by;               // the history entry's created_by
  std::optional<int64_t> created;       // unix seconds; empty: now
};

struct GcResult {
  std::vector<std::string> blobs_removed;   // "sha256:..."
  std::vector<std::string> layers_removed;  // chain ids "sha256:..."
  uint64_t bytes_reclaimed = 0;
};

// Thread-safety: all methods may be called concurrently; the store serialises metadata
// changes internally with one mutex (extraction of layers runs outside readers' way: Resolve and
// List only take the mutex briefly). One Store per root per process; two processes must not open
// the same root.
class Store {
 public:
  // Creates the layout under `root` if missing and removes leftovers under root/tmp (a crash
  // mid-write). Recovers from a machine crash: blobs and layers listed in root/unsynced by an
  // earlier boot are removed, and so is every image whose layers or blobs are missing (logged).
  // Errors: kPermissionDenied / kInternal from the file system, kInvalidArgument if the
  // metadata is corrupt. The store runs a thread that syncs (see sync_delay_ms); destroying it
  // syncs what is left.
  static Result<std::unique_ptr<Store>> Open(const std::string& root, StoreOptions options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& root() const { return root_; }

  // Loads a `docker save` archive (manifest.json + repositories) or an OCI image layout tar
  // (oci-layout + index.json, incl. nested indexes) streamed from `fd` (remains owned by the
  // caller; read to EOF). Large entries are spooled to root/tmp, never held in memory. Layers
  // may be plain tar, gzip or zstd (detected by magic). Every blob's sha256 is verified (a
  // mismatch fails with kInvalidArgument naming the blob) and every layer's diff id against
  // the config's rootfs.diff_ids. `progress` receives human-readable lines ("Loaded image:
  // busybox:latest"); may be empty. Tags already present are moved to the new image.
  Result<LoadResult> Load(int fd, const std::function<void(const std::string&)>& progress);

  // `docker import`: one rootfs tarball (plain, gzip or zstd) read from `fd` (remains owned by
  // the caller) becomes a single-layer image, tagged `tag` if given.
  Result<Image> Import(int fd, const std::optional<Reference>& tag, const ImportOptions& options);

  // `docker commit`: a new image made of the layers of the image `parent_id` (an id as
  // Image::id) plus one layer: the plain (uncompressed) tar read from `layer_fd` (remains owned
  // by the caller; read to EOF), with OCI whiteouts. The layer goes through moat-extract like
  // every other layer and its diff id (the tar's sha256) is verified before the image becomes
  // visible. The config is the parent's with `options` applied and one history entry added;
  // tagged `tag` if given. Errors: kNotFound for the parent, kInvalidArgument for a bad tar or
  // config JSON.
  Result<Image> CommitImage(const std::string& parent_id, int layer_fd,
                            const CommitOptions& options, const std::optional<Reference>& tag);

  // `docker pull` from the registry named by `ref` (docker.io when the repo has no host part).
  // Resolves the tag (or digest) to a manifest, choosing `options`' platform from an index;
  // fetches the config and the layers not already in the store concurrently, each verified
  // against its digest and size while it streams, and extracts each through moat-extract as it
  // arrives. Interrupted transfers are retried and resumed with Range. The image becomes visible
  // (and `ref`'s tag moves to it) only when everything is verified; a failure leaves nothing but
  // complete, verified blobs. Errors: kNotFound "manifest unknown" / "pull access denied for x,
  // repository does not exist or may require 'docker login'", kPermissionDenied for bad
  // credentials, kInvalidArgument naming the blob whose digest, size or media type is wrong,
  // kUnavailable for a registry that cannot be reached.
  Result<Image> Pull(const Reference& ref, const PullOptions& options, const ProgressFn& progress);

  // `docker push` of the image tagged `ref` (must have a tag or digest that resolves locally)
  // to its registry: blobs the registry has are skipped (HEAD), blobs in another repository of
  // the same registry are cross-mounted, the rest uploaded in chunks; then the manifest (Docker
  // schema 2 if the image was loaded so, else OCI) is PUT. Returns the manifest digest. A layer
  // stored without its blob is rebuilt from its tree: sent as is when the manifest names it
  // uncompressed, else gzip'd afresh (ISA-L, deterministic), which gives it a new digest and so
  // the push a new manifest (pushed by tag only), as Docker does.
  Result<std::string> Push(const Reference& ref, const RegistryAuth& auth,
                           const ProgressFn& progress);

  // POST /auth: checks `auth` against the registry `auth.server_address` (empty: docker.io) by
  // running the token flow once. Returns an identity token if the registry gave one (else "").
  // kPermissionDenied for bad credentials.
  Result<std::string> CheckAuth(const RegistryAuth& auth);

  // Extracts the plain tar read from `tar_fd` into the directory `dir_fd` (both remain owned by
  // the caller) with moat-extract (`docker cp` into a container). kRoot: every file is owned by
  // root (Docker's default); kKeep: the tar's uid/gid (docker cp -a). The tar is
  // parsed only by moat-extract, confined to `dir_fd`. Existing entries are replaced (a
  // directory by a non-directory too); names starting ".wh." are taken as whiteouts as in a
  // layer. Errors: kInvalidArgument for a bad tar (the extractor's message).
  enum class CopyOwnership { kRoot, kKeep };
  Result<void> ExtractInto(int tar_fd, int dir_fd, CopyOwnership ownership);

  // Finds an image by "name[:tag]", "name@sha256:..." (matches manifest digest), a full id
  // "sha256:<hex>", a bare hex id or a unique hex prefix (>= 1 char, like docker). Errors:
  // kNotFound "No such image: busybox:latest"; kInvalidArgument for an ambiguous prefix.
  Result<Image> Resolve(std::string_view name_or_id) const;

  // All images, newest first.
  Result<std::vector<Image>> List() const;

  // Points `target` (must have a tag) at the image `source` resolves to. kNotFound if none.
  Result<void> Tag(std::string_view source, const Reference& target);

  // `docker rmi`. `name` a tag: untags it, and deletes the image if it was the last tag. `name`
  // an id/prefix: deletes the image with all its tags (kConflict if it has several tags and
  // !force: "conflict: unable to delete <short id> (must be forced) - image is referenced in
  // multiple repositories"). `in_use(id)` returns the id of a container using the image, if any;
  // then kConflict "conflict: unable to remove repository reference \"busybox:latest\" (must
  // force) - container <short> is using its referenced image <short>" unless force (with force
  // a used image is untagged but its record stays as long as a container uses it).
  // Returns Docker's list in order: {"Untagged","busybox:latest"}, {"Deleted","sha256:..."}.
  // Blobs and layers are left for CollectGarbage.
  Result<std::vector<std::pair<std::string, std::string>>> Remove(
      std::string_view name, bool force,
      const std::function<std::optional<std::string>(const std::string& id)>& in_use);

  // Writes a docker-archive tar (`docker save` format: manifest.json, repositories, <config>.json,
  // <layer>/layer.tar; plus oci-layout, index.json and blobs/sha256/ for OCI readers) of the
  // images `names` resolve to, to `fd` (remains owned by the caller). A layer whose blob was kept
  // is written as that blob; the others (most: see the layout above) as their uncompressed tar,
  // rebuilt from the tree and checked against the diff id as it streams, under an OCI manifest
  // made for the archive (as Docker's save does; the image id stays, the manifest digest is new).
  // A layer that cannot be rebuilt (its tree changed) fails the save, naming it.
  Result<void> Save(const std::vector<std::string>& names, int fd);

  // Removes blobs and layers that no image record references (layers shared between images
  // are kept while one image uses them).
  Result<GcResult> CollectGarbage();

  // Writes back every blob and layer committed so far (syncfs) and empties root/unsynced. The
  // store does this by itself (StoreOptions::sync_delay_ms); for callers that need it now.
  Result<void> Sync();

  // Docker Engine API JSON: an ImageSummary (GET /images/json item), ImageInspect
  // (GET /images/{name}/json) and the array of HistoryResponseItem (/images/{name}/history).
  std::string SummaryJson(const Image& image) const;
  std::string InspectJson(const Image& image) const;
  std::string HistoryJson(const Image& image) const;

  struct Impl;

 private:
  Store(std::string root, std::unique_ptr<Impl> impl);
  std::string root_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moat::image
