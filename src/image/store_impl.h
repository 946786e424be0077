#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
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

// A layer extracted ahead of its commit: dir/diff holds the tree.
struct ExtractedLayer {
  std::string dir;
  std::string diff_id;
  int64_t size = 0;
};

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
  Result<std::pair<std::string, int64_t>> Extract(const std::string& blob_path,
                                                  const std::string& target_dir);
  // moat-extract with `in_fd` on its fd 0 and `dir_fd` on its fd 3 (both remain owned by the
  // caller).
  Result<std::pair<std::string, int64_t>> ExtractFds(int in_fd, int dir_fd,
                                                     const std::vector<std::string>& extra_args);
  // Makes layers/<chain id> from the blob (extracted now), or from `pre` if given: a layer
  // already extracted from these bytes into pre->dir/diff, whose dir is consumed (moved, or
  // removed on failure). The diff id must equal `diff_id`.
  Result<LayerRecord> CommitLayer(const std::string& blob_hex, const std::string& diff_id,
                                  const std::string& parent_chain,
                                  const ExtractedLayer* pre = nullptr);
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
