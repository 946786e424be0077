#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "base/result.h"
#include "image/records.h"
#include "image/registry/client.h"
#include "image/store.h"

// The store's internals, shared by store.cc, pull.cc and push.cc. Not a public interface.
namespace moat::image {

// "amd64", "arm64", else uname's machine.
std::string HostArch();
// mkdtemp of <tmp_root>/<prefix>-XXXXXX.
Result<std::string> MakeTempDir(const std::string& tmp_root, const char* prefix);
// The first 12 hex digits of "sha256:<hex>" or "<hex>".
std::string ShortId(const std::string& id);
// The registry client's options for `host` with the store's registry settings and `auth`
// (pull.cc; used by pull, push and CheckAuth).
registry::ClientOptions ClientOptionsFor(const std::string& host, const StoreOptions& so,
                                         const RegistryAuth& auth);

// A layer extracted ahead of its commit: dir/diff holds the tree, dir/tar-split its tar-split
// record (tar_split.h) if `tar_split`.
struct ExtractedLayer {
  std::string dir;
  std::string diff_id;
  int64_t size = 0;
  bool tar_split = false;
};

// A layer's tar-split record, beside its diff/ (layers/<chain>/tar-split). A layer that has one
// needs no blob: Save and Push rebuild its tar from the tree.
constexpr char kTarSplitFile[] = "tar-split";

struct Store::Impl {
  std::string root;
  StoreOptions opts;
  std::string extractor;
  // Serialises every change (load, import, tag, remove, gc) against each other.
  std::mutex write_mu;
  // Guards the in-memory maps; held briefly.
  mutable std::shared_mutex mu;
  std::map<std::string, std::string> repos;    // "busybox:latest" -> id
  std::map<std::string, ImageRecord> records;  // id -> record
  std::map<std::string, std::string> configs;  // id -> config JSON

  std::string Blob(const std::string& hex) const { return root + "/blobs/sha256/" + hex; }
  std::string LayerDir(const std::string& chain_id) const {
    return root + "/layers/" + chain_id.substr(7);
  }
  std::string Tmp() const { return root + "/tmp"; }

  Result<Image> MakeImage(const std::string& id) const;  // mu held (shared)
  // Moves (or links) `src` to blobs/sha256/<hex> unless it is there. `hashed`: the caller
  // computed the sha256 of exactly these bytes as it wrote them; else it is checked here.
  Result<void> StoreBlob(const std::string& src, const std::string& hex, bool move,
                         bool hashed = false);
  Result<void> StoreBlobData(const std::string& data, std::string* hex_out);
  // Extracts `blob_path` into layer_dir/diff, with its tar-split record in layer_dir/tar-split.
  Result<ExtractReply> ExtractLayerDir(const std::string& blob_path, const std::string& layer_dir);
  // moat-extract with `in_fd` on its fd 0 and `dir_fd` on its fd 3 (both remain owned by the
  // caller). With `tar_split_path`, moat-extract writes the layer's tar-split record there
  // (--tar-split, fd 4; the file must not exist); the file is removed again when the reply says
  // no record could be written.
  Result<ExtractReply> ExtractFds(int in_fd, int dir_fd, const std::vector<std::string>& extra_args,
                                  const std::string& tar_split_path = "");
  // Makes layers/<chain id> from the blob at `blob_src` (whose sha256 is `blob_hex`; extracted
  // now), or from `pre` if given: a layer already extracted from these bytes into pre->dir,
  // which is consumed (moved, or removed on failure). The diff id must equal `diff_id`. The
  // blob goes to blobs/ (linked from blob_src unless it is there) only when the layer has no
  // tar-split record: a layer with one is rebuilt from its tree.
  Result<LayerRecord> CommitLayer(const std::string& blob_src, const std::string& blob_hex,
                                  const std::string& diff_id, const std::string& parent_chain,
                                  const ExtractedLayer* pre = nullptr);
  // Whether layers/<chain>/tar-split exists.
  bool HasTarSplit(const std::string& chain_id) const;
  // Gives layers/<chain id> (in place already: another image's, or an older store's without a
  // record) the record `staged_dir`/tar-split made by this pull or load, if it has none.
  Result<void> AdoptTarSplit(const std::string& staged_dir, const std::string& chain_id);
  // The size of the tar of layer `chain_id`, from its tar-split record.
  Result<int64_t> LayerTarSize(const std::string& chain_id) const;
  // Streams the tar of layer `chain_id` to `sink`, rebuilt from its tar-split record and tree
  // and verified against `diff_id` (AssembleTar). Errors name the layer.
  Result<void> LayerTar(const std::string& chain_id, const std::string& diff_id,
                        const std::function<Result<void>(std::string_view)>& sink) const;
  Result<void> WriteRepos();  // mu held
  // Stores config and manifest blobs and the image record, moves `tags` to it and adds
  // `repo_digests` ("repo@sha256:..") to those the record already has. Returns the id.
  Result<std::string> Commit(const std::string& config_json, const std::string& manifest_json,
                             std::vector<LayerRecord> layers, const std::vector<std::string>& tags,
                             const std::vector<std::string>& repo_digests = {});
  // Adds "repo@sha256:.." to the record of `id` (Push). kNotFound if there is no such image.
  Result<void> AddRepoDigest(const std::string& id, const std::string& repo_digest);
  Result<std::string> ResolveId(std::string_view name) const;  // mu held (shared)

  // Write-behind durability (StoreOptions::sync_delay_ms). Entries are "blob <hex>" and
  // "layer <chain id hex>".
  // Lists `entries` in root/unsynced (written durably) before the caller renames them into
  // place; wakes the flusher.
  Result<void> MarkUnsynced(const std::vector<std::string>& entries);
  // syncfs, then drops the entries that were listed before it began.
  Result<void> SyncNow();
  Result<void> WriteUnsyncedLocked();  // sync_mu held: root/unsynced from `unsynced`
  // Removes layers/<chain_hex> (renamed into tmp/ first).
  Result<void> RemoveLayer(const std::string& chain_hex);
  void StartFlusher();
  void StopFlusher();  // joins; then SyncNow
  // Open: acts on an existing root/unsynced (another boot's: removes what it lists).
  Result<void> RecoverUnsynced();
  // Open: drops records whose layers or blobs are missing.
  void DropIncompleteImages();
  ~Impl() { StopFlusher(); }

  std::mutex sync_mu;
  std::condition_variable sync_cv;
  std::vector<std::string> unsynced;  // sync_mu; mirrors root/unsynced
  int64_t last_mark_ms = 0;           // sync_mu
  bool stop_flusher = false;          // sync_mu
  std::thread flusher;
  std::string boot_id;
};

}  // namespace moat::image
