// Store::Push and Store::CheckAuth.
#include <fcntl.h>
#include <sys/stat.h>

#include <unistd.h>

#include <algorithm>
#include <set>

#include "base/defer.h"
#include "base/strings.h"
#include "base/sys/fileops.h"
#include "base/sys/fs.h"
#include "image/decompress.h"
#include "image/digest.h"
#include "image/records.h"
#include "image/registry/client.h"
#include "image/registry/location.h"
#include "image/store.h"
#include "image/store_impl.h"

namespace moat::image {
namespace {

constexpr int64_t kUploadChunkBytes = 8 << 20;

// Writes the tar of layer `l` (kept without its blob), rebuilt from its tree, to `path`:
// gzip'd afresh if `compress` (deterministic: the same bytes every push), else as is. Returns
// its descriptor: `d` with the digest and size of what was written (and a gzip media type of
// the manifest's family when compressed).
Result<Descriptor> RebuildLayerBlob(const Store::Impl& im, const LayerRecord& l,
                                    const Descriptor& d, const std::string& manifest_media_type,
                                    bool compress, const std::string& path) {
  if (!im.HasTarSplit(l.chain_id))
    return Fail(ErrorKind::kNotFound, "layer %s: neither its blob nor a tar-split record",
                d.digest.c_str());
  MOAT_ASSIGN_OR_RETURN(UniqueFd out, sys::open(path, O_WRONLY | O_CREAT | O_EXCL, 0600));
  Sha256 sha;
  Descriptor up = d;
  up.size = 0;
  auto to_file = [&](std::string_view data) -> Result<void> {
    sha.Update(data);
    up.size += static_cast<int64_t>(data.size());
    return sys::WriteAll(out.get(), data);
  };
  if (compress) {
    GzipWriter gz(to_file);
    MOAT_TRY(im.LayerTar(l.chain_id, l.diff_id, [&](std::string_view data) {
      return gz.Write(data);
    }));
    MOAT_TRY(gz.Finish());
    up.media_type = GzipLayerMediaType(manifest_media_type);
  } else {
    MOAT_TRY(im.LayerTar(l.chain_id, l.diff_id, to_file));
  }
  up.digest = "sha256:" + sha.HexDigest();
  return up;
}

}  // namespace

Result<std::string> Store::Push(const Reference& ref, const RegistryAuth& auth,
                                const ProgressFn& progress) {
  Impl& im = *impl_;
  auto emit = [&](const std::string& id, const std::string& status, int64_t cur = -1,
                  int64_t total = -1) {
    if (progress) progress(ProgressEvent{id, status, cur, total});
  };
  MOAT_ASSIGN_OR_RETURN(registry::Location loc, registry::ResolveRepository(ref.repo));
  std::string id;
  ImageRecord rec;
  // Repositories of the same registry that hold each blob (for cross-repository mounts):
  // where images were pulled from or pushed to, as their repo digests say.
  std::map<std::string, std::set<std::string>> sources;  // blob digest -> repositories
  {
    std::shared_lock lock(im.mu);
    MOAT_ASSIGN_OR_RETURN(id, im.ResolveId(ref.String()));
    rec = im.records.at(id);
    for (const auto& [rid, r] : im.records) {
      for (const auto& rd : r.repo_digests) {
        auto other = registry::ResolveRepository(rd.substr(0, rd.find('@')));
        if (!other || other->host != loc.host || other->repository == loc.repository) continue;
        sources[rid].insert(other->repository);
        for (const auto& l : r.layers) sources[l.blob_digest].insert(other->repository);
      }
    }
  }
  if (rec.manifest_digest.empty())
    return Fail(ErrorKind::kInvalidArgument, "image %s has no manifest to push",
                ShortId(id).c_str());
  MOAT_ASSIGN_OR_RETURN(std::string mhex, DigestHex(rec.manifest_digest));
  MOAT_ASSIGN_OR_RETURN(std::string manifest_json, sys::ReadFile(im.Blob(mhex)));
  // The stored manifest is pushed byte for byte (its digest stays the one Load or Pull saw);
  // it must still describe this image.
  MOAT_ASSIGN_OR_RETURN(ImageManifest m, std::move(ParseImageManifest(manifest_json, ""))
                                             .Context("manifest %s", rec.manifest_digest.c_str()));
  if (m.config.digest != id)
    return Fail(ErrorKind::kInvalidArgument, "manifest %s names config %s, not the image's %s",
                rec.manifest_digest.c_str(), m.config.digest.c_str(), id.c_str());

  if (m.layers.size() != rec.layers.size())
    return Fail(ErrorKind::kInvalidArgument, "manifest %s has %zu layers, the image %zu",
                rec.manifest_digest.c_str(), m.layers.size(), rec.layers.size());

  registry::Client client(ClientOptionsFor(loc.host, im.opts, auth));
  emit("", "The push refers to repository [" + loc.host + "/" + loc.repository + "]");
  MOAT_ASSIGN_OR_RETURN(std::string tmp, MakeTempDir(im.Tmp(), "push"));
  auto cleanup = Defer([&] { (void)sys::RemoveAll(tmp); });
  std::vector<Descriptor> pushed_layers = m.layers;
  bool changed = false;
  // The layers, then the config (index m.layers.size()).
  for (size_t i = 0; i <= m.layers.size(); ++i) {
    bool is_config = i == m.layers.size();
    const Descriptor& d = is_config ? m.config : m.layers[i];
    MOAT_ASSIGN_OR_RETURN(std::string hex, DigestHex(d.digest));
    std::string sid = hex.substr(0, 12);
    if (!is_config) emit(sid, "Preparing");
    MOAT_ASSIGN_OR_RETURN(bool exists, client.BlobExists(loc.repository, d.digest));
    if (exists) {
      if (!is_config) emit(sid, "Layer already exists");
      continue;
    }
    bool mounted = false;
    for (const auto& from : sources[d.digest]) {
      MOAT_ASSIGN_OR_RETURN(mounted, client.MountBlob(loc.repository, d.digest, from));
      if (mounted) {
        if (!is_config) emit(sid, "Mounted from " + from);
        break;
      }
    }
    if (mounted) continue;
    std::string path = im.Blob(hex);
    // A rebuilt layer's file lasts until it is uploaded: one layer's worth of tmp/ at a time.
    auto drop = Defer([&] {
      if (path != im.Blob(hex)) (void)sys::unlinkat(AT_FDCWD, path, 0);
    });
    Descriptor up = d;
    if (!is_config && access(path.c_str(), F_OK) != 0) {
      // No blob kept: sent as the manifest has it when that is uncompressed, else gzip'd afresh
      // (a new digest, so a new manifest).
      bool compress = d.digest != rec.layers[i].diff_id;
      path = tmp + "/layer-" + std::to_string(i);
      emit(sid, compress ? "Compressing" : "Preparing");
      MOAT_ASSIGN_OR_RETURN(up, RebuildLayerBlob(im, rec.layers[i], d, m.media_type, compress,
                                                 path));
      if (up.digest != d.digest) {
        changed = true;
        pushed_layers[i] = up;
        sid = up.digest.substr(7, 12);
        MOAT_ASSIGN_OR_RETURN(bool there, client.BlobExists(loc.repository, up.digest));
        if (there) {
          emit(sid, "Layer already exists");
          continue;
        }
      }
    }
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(path, O_RDONLY));
    MOAT_ASSIGN_OR_RETURN(struct stat st, sys::fstat(fd.get()));
    if (st.st_size != up.size)
      return Fail(ErrorKind::kInvalidArgument, "blob %s is %lld bytes, the manifest says %lld",
                  up.digest.c_str(), static_cast<long long>(st.st_size),
                  static_cast<long long>(up.size));
    MOAT_TRY(client.UploadBlob(loc.repository, up.digest, fd.get(), st.st_size, kUploadChunkBytes,
                               [&](int64_t cur) {
                                 if (!is_config) emit(sid, "Pushing", cur, st.st_size);
                               }));
    if (!is_config) emit(sid, "Pushed");
  }
  if (changed) {
    MOAT_ASSIGN_OR_RETURN(manifest_json, ReplaceManifestLayers(manifest_json, pushed_layers));
  }
  // A manifest made for this push has no tag-independent digest to push by.
  std::string reference = ref.tag.empty() && !changed ? rec.manifest_digest : ref.tag;
  if (reference.empty())
    return Fail(ErrorKind::kInvalidArgument,
                "image %s: its layers were recompressed, so it can only be pushed by tag",
                ShortId(id).c_str());
  MOAT_ASSIGN_OR_RETURN(std::string digest,
                        client.PutManifest(loc.repository, reference, m.media_type, manifest_json));
  emit("", StrFormat("%s: digest: %s size: %zu", reference.c_str(), digest.c_str(),
                     manifest_json.size()));
  std::lock_guard wlock(im.write_mu);
  MOAT_TRY(im.AddRepoDigest(id, ref.repo + "@" + digest));
  return digest;
}

Result<std::string> Store::CheckAuth(const RegistryAuth& auth) {
  std::string host = registry::HostFromServerAddress(auth.server_address);
  registry::Client client(ClientOptionsFor(host, impl_->opts, auth));
  return client.Login();
}

}  // namespace moat::image
