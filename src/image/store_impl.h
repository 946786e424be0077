#pragma once

#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
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
  Result<void> StoreBlob(const std::string& src, const std::string& hex, bool move);
  Result<void> StoreBlobData(const std::string& data, std::string* hex_out);
  Result<std::pair<std::string, int64_t>> Extract(const std::string& blob_path,
                                                  const std::string& target_dir);
  // moat-extract with `in_fd` on its fd 0 and `dir_fd` on its fd 3 (both remain owned by the
  // caller).
  Result<std::pair<std::string, int64_t>> ExtractFds(int in_fd, int dir_fd,
                                                     const std::vector<std::string>& extra_args);
  Result<LayerRecord> CommitLayer(const std::string& blob_hex, const std::string& diff_id,
                                  const std::string& parent_chain);
  Result<void> WriteRepos();  // mu held
  // Stores config and manifest blobs and the image record, moves `tags` to it and adds
  // `repo_digests` ("repo@sha256:..") to those the record already has. Returns the id.
  Result<std::string> Commit(const std::string& config_json, const std::string& manifest_json,
                             std::vector<LayerRecord> layers, const std::vector<std::string>& tags,
                             const std::vector<std::string>& repo_digests = {});
  // Adds "repo@sha256:.." to the record of `id` (Push). kNotFound if there is no such image.
  Result<void> AddRepoDigest(const std::string& id, const std::string& repo_digest);
  Result<std::string> ResolveId(std::string_view name) const;  // mu held (shared)
};

}  // namespace moat::image
