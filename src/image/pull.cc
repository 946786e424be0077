// Store::Pull: registry manifest -> verified blobs -> layers extracted while they download.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "base/defer.h"
#include "base/strings.h"
#include "base/sys/fileops.h"
#include "base/sys/fs.h"
#include "base/sys/socket.h"
#include "base/sys/socket_io.h"
#include "image/digest.h"
#include "image/records.h"
#include "image/registry/client.h"
#include "image/registry/location.h"
#include "image/store.h"
#include "image/store_impl.h"

namespace moat::image {
namespace {

// Layers fetched at once (Docker's default max-concurrent-downloads is 3).
constexpr int kConcurrentDownloads = 3;
// Manifests and configs are held in memory: bounded.
constexpr int64_t kMaxConfigBytes = 16 << 20;
// Progress lines of one layer are sent at most every this many bytes.
constexpr int64_t kProgressStep = 512 << 10;

// Serialises progress events from the download threads.
class Progress {
 public:
  explicit Progress(const ProgressFn& fn) : fn_(fn) {}
  void Emit(const std::string& id, const std::string& status, int64_t current = -1,
            int64_t total = -1) {
    if (!fn_) return;
    std::lock_guard lock(mu_);
    fn_(ProgressEvent{id, status, current, total});
  }

 private:
  const ProgressFn& fn_;
  std::mutex mu_;
};

struct LayerJob {
  Descriptor desc;
  std::string diff_id;
  std::string chain_id;
  std::string parent_chain;
  bool present = false;      // layer and blob already in the store
  std::string staged_blob;   // under the pull's temp dir
  std::string staged_layer;  // dir with diff/, meta.json and maybe tar-split
  int64_t size = 0;          // extracted bytes
  bool tar_split = false;    // staged_layer has a tar-split record: the blob is not kept
  std::optional<Error> error;
};

bool Anonymous(const RegistryAuth& a) {
  return a.username.empty() && a.identity_token.empty() && a.registry_token.empty();
}

// Streams one layer blob into moat-extract, which unpacks it into job->staged_layer/diff
// (download, hash and extraction at once), then checks the diff id. The blob itself is not
// kept: the layer's tar-split record stands for it. A layer the record cannot describe (rare:
// sparse files, a layer replacing its own file) is downloaded a second time into
// job->staged_blob, so that its blob is kept.
Result<void> FetchLayer(Store::Impl& im, registry::Client& client, const std::string& repo,
                        const std::string& tmp, LayerJob* job, Progress* progress) {
  std::string hex = job->desc.digest.substr(7);
  std::string id = hex.substr(0, 12);
  job->staged_blob = tmp + "/blob-" + hex;
  MOAT_ASSIGN_OR_RETURN(job->staged_layer, MakeTempDir(tmp, "layer"));
  MOAT_TRY(sys::mkdirat(AT_FDCWD, job->staged_layer + "/diff", 0755));
  MOAT_ASSIGN_OR_RETURN(UniqueFd dir,
                        sys::open(job->staged_layer + "/diff", O_RDONLY | O_DIRECTORY));
  // A socket rather than a pipe: a send to an extractor that already quit gives EPIPE, never
  // SIGPIPE (MSG_NOSIGNAL), whatever the process's signal dispositions.
  MOAT_ASSIGN_OR_RETURN(auto sp, sys::socketpair(SOCK_STREAM));
  UniqueFd to_extractor = std::move(sp.first);
  UniqueFd extractor_in = std::move(sp.second);
  Result<ExtractReply> extracted = Fail(ErrorKind::kInternal, "moat-extract did not run");
  std::thread extractor(
      [&] { extracted = im.ExtractFds(extractor_in.get(), dir.get(), {},
                                      job->staged_layer + "/" + kTarSplitFile); });
  bool extractor_gone = false;
  int64_t next_report = 0;
  auto fetched = client.FetchBlob(
      repo, job->desc.digest, job->desc.size,
      [&](std::string_view data) -> Result<void> {
        if (!extractor_gone) {
          auto sent = sys::SendAll(to_extractor.get(), {data});
          // The extractor stopped reading (it refused the tar): keep downloading so that the
          // digest check runs, and report the extractor's own error below.
          if (!sent) extractor_gone = true;
        }
        return Ok();
      },
      [&](int64_t current) {
        if (current >= next_report || current == job->desc.size) {
          next_report = current + kProgressStep;
          progress->Emit(id, "Downloading", current, job->desc.size);
        }
      });
  to_extractor.reset();  // EOF for the extractor
  extractor.join();
  if (!fetched) {
    Error e = std::move(fetched).error();
    return Fail(std::move(e));
  }
  progress->Emit(id, "Verifying Checksum");
  progress->Emit(id, "Download complete");
  if (!extracted) {
    Error e = std::move(extracted).error();
    e.Prefix("layer " + job->desc.digest);
    return Fail(std::move(e));
  }
  if (extracted->diff_id != job->diff_id)
    return Fail(ErrorKind::kInvalidArgument, "layer %s: diff id %s does not match the config's %s",
                job->desc.digest.c_str(), extracted->diff_id.c_str(), job->diff_id.c_str());
  progress->Emit(id, "Extracting", job->desc.size, job->desc.size);
  job->size = extracted->size;
  job->tar_split = extracted->tar_split;
  if (!job->tar_split) {
    MOAT_ASSIGN_OR_RETURN(UniqueFd file,
                          sys::open(job->staged_blob, O_WRONLY | O_CREAT | O_EXCL, 0600));
    MOAT_TRY(client.FetchBlob(
        repo, job->desc.digest, job->desc.size,
        [&](std::string_view data) { return sys::WriteAll(file.get(), data); },
        [](int64_t) {}));
  }
  LayerMeta m{job->diff_id, job->chain_id, job->parent_chain, job->size};
  MOAT_TRY(sys::WriteFileAtomic(job->staged_layer + "/meta.json", LayerMetaJson(m), 0600));
  progress->Emit(id, "Pull complete");
  return Ok();
}

}  // namespace

registry::ClientOptions ClientOptionsFor(const std::string& host, const StoreOptions& so,
                                         const RegistryAuth& auth) {
  registry::ClientOptions co;
  co.host = host;
  co.credentials.username = auth.username;
  co.credentials.password = auth.password;
  co.credentials.identity_token = auth.identity_token;
  co.credentials.registry_token = auth.registry_token;
  co.insecure_registries = so.insecure_registries;
  co.certs_dir = so.certs_dir;
  return co;
}

Result<Image> Store::Pull(const Reference& ref, const PullOptions& options,
                          const ProgressFn& progress_fn) {
  Impl& im = *impl_;
  Progress progress(progress_fn);
  MOAT_ASSIGN_OR_RETURN(registry::Location loc, registry::ResolveRepository(ref.repo));
  registry::Client client(ClientOptionsFor(loc.host, im.opts, options.auth));
  std::string reference = ref.digest.empty() ? ref.tag : ref.digest;
  progress.Emit(reference, "Pulling from " + loc.repository);

  auto top = client.GetManifest(loc.repository, reference);
  if (!top) {
    Error e = std::move(top).error();
    bool denied = e.kind == ErrorKind::kPermissionDenied ||
                  e.message.find("name unknown") != std::string::npos;
    if (denied && (Anonymous(options.auth) || e.kind != ErrorKind::kPermissionDenied))
      return Fail(ErrorKind::kNotFound,
                  "pull access denied for %s, repository does not exist or may require 'docker "
                  "login': %s",
                  ref.repo.c_str(), e.message.c_str());
    if (e.kind == ErrorKind::kNotFound)
      return Fail(ErrorKind::kNotFound, "manifest for %s not found: %s", ref.String().c_str(),
                  e.message.c_str());
    return Fail(std::move(e));
  }
  registry::Manifest manifest = std::move(*top);
  std::string top_digest = manifest.digest;
  MOAT_ASSIGN_OR_RETURN(ManifestKind kind, ClassifyManifest(manifest.body, manifest.media_type));
  if (kind == ManifestKind::kIndex) {
    MOAT_ASSIGN_OR_RETURN(
        auto entries,
        std::move(ParseManifestIndex(manifest.body)).Context("manifest %s", top_digest.c_str()));
    std::string os = options.os.empty() ? "linux" : options.os;
    std::string arch = options.architecture.empty() ? HostArch() : options.architecture;
    MOAT_ASSIGN_OR_RETURN(Descriptor pick, ChoosePlatform(entries, os, arch, options.variant));
    MOAT_ASSIGN_OR_RETURN(manifest, client.GetManifest(loc.repository, pick.digest));
    if (static_cast<int64_t>(manifest.body.size()) != pick.size)
      return Fail(ErrorKind::kInvalidArgument, "manifest %s is %zu bytes, the index says %lld",
                  pick.digest.c_str(), manifest.body.size(), static_cast<long long>(pick.size));
  }
  MOAT_ASSIGN_OR_RETURN(ImageManifest im_manifest,
                        std::move(ParseImageManifest(manifest.body, manifest.media_type))
                            .Context("manifest %s", manifest.digest.c_str()));

  MOAT_ASSIGN_OR_RETURN(std::string config_json,
                        client.FetchBlobToString(loc.repository, im_manifest.config.digest,
                                                 im_manifest.config.size, kMaxConfigBytes));
  MOAT_ASSIGN_OR_RETURN(
      ParsedConfig pc,
      std::move(ParseConfig(config_json)).Context("config %s", im_manifest.config.digest.c_str()));
  if (pc.diff_ids.size() != im_manifest.layers.size())
    return Fail(ErrorKind::kInvalidArgument,
                "manifest %s has %zu layers but config %s lists %zu diff ids",
                manifest.digest.c_str(), im_manifest.layers.size(),
                im_manifest.config.digest.c_str(), pc.diff_ids.size());
  std::string id = im_manifest.config.digest;
  bool existed = false;
  {
    std::shared_lock lock(im.mu);
    existed = im.records.count(id) > 0;
  }

  std::vector<LayerJob> jobs(im_manifest.layers.size());
  std::string parent;
  for (size_t i = 0; i < jobs.size(); ++i) {
    LayerJob& j = jobs[i];
    j.desc = im_manifest.layers[i];
    j.diff_id = pc.diff_ids[i];
    MOAT_TRY(DigestHex(j.diff_id).Context("config %s diff id", id.c_str()));
    j.parent_chain = parent;
    j.chain_id = parent.empty() ? j.diff_id : "sha256:" + Sha256Hex(parent + " " + j.diff_id);
    parent = j.chain_id;
    std::string hex = j.desc.digest.substr(7);
    j.present = access((im.LayerDir(j.chain_id) + "/meta.json").c_str(), F_OK) == 0 &&
                (im.HasTarSplit(j.chain_id) || access(im.Blob(hex).c_str(), F_OK) == 0);
    progress.Emit(hex.substr(0, 12), j.present ? "Already exists" : "Pulling fs layer");
  }

  MOAT_ASSIGN_OR_RETURN(std::string tmp, MakeTempDir(im.Tmp(), "pull"));
  auto cleanup = Defer([&] { (void)sys::RemoveAll(tmp); });
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto worker = [&] {
    for (;;) {
      size_t i = next++;
      if (i >= jobs.size() || failed) return;
      if (jobs[i].present) continue;
      auto r = FetchLayer(im, client, loc.repository, tmp, &jobs[i], &progress);
      if (!r) {
        jobs[i].error = std::move(r).error();
        failed = true;  // the others stop picking new layers
      }
    }
  };
  std::vector<std::thread> threads;
  size_t missing = std::count_if(jobs.begin(), jobs.end(), [](auto& j) { return !j.present; });
  for (size_t t = 0; t < std::min<size_t>(kConcurrentDownloads, missing); ++t)
    threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  for (auto& j : jobs)
    if (j.error) return Fail(std::move(*j.error));

  // Everything is verified: make it visible. Blobs first, then layers, then the record (which
  // is what makes the image exist).
  std::lock_guard wlock(im.write_mu);
  // Written back by the store's flusher, not here (StoreOptions::sync_delay_ms): listed first.
  // The same layer may be in place already (another pull or load meanwhile, or an older store's
  // layer without a tar-split record): then it is used, given this pull's record if it has none.
  for (auto& j : jobs)
    if (!j.present && j.tar_split && access(im.LayerDir(j.chain_id).c_str(), F_OK) == 0)
      MOAT_TRY(im.AdoptTarSplit(j.staged_layer, j.chain_id));
  std::vector<std::string> unsynced;
  for (auto& j : jobs) {
    if (j.present) continue;
    unsynced.push_back("layer " + j.chain_id.substr(7));
    if (!j.tar_split) unsynced.push_back("blob " + j.desc.digest.substr(7));
  }
  if (!unsynced.empty()) MOAT_TRY(im.MarkUnsynced(unsynced));
  std::vector<LayerRecord> layers;
  for (auto& j : jobs) {
    std::string hex = j.desc.digest.substr(7);
    if (!j.present) {
      if (!j.tar_split && access(im.Blob(hex).c_str(), F_OK) != 0)
        MOAT_TRY(sys::renameat(AT_FDCWD, j.staged_blob, AT_FDCWD, im.Blob(hex)));
      if (access(im.LayerDir(j.chain_id).c_str(), F_OK) != 0)
        MOAT_TRY(sys::renameat(AT_FDCWD, j.staged_layer, AT_FDCWD, im.LayerDir(j.chain_id)));
    }
    MOAT_ASSIGN_OR_RETURN(std::string meta, sys::ReadFile(im.LayerDir(j.chain_id) + "/meta.json"));
    MOAT_ASSIGN_OR_RETURN(LayerMeta m, ParseLayerMeta(meta));
    LayerRecord lr;
    lr.blob_digest = j.desc.digest;
    lr.media_type = j.desc.media_type;
    lr.blob_size = j.desc.size;
    lr.diff_id = j.diff_id;
    lr.chain_id = j.chain_id;
    lr.size = m.size;
    layers.push_back(std::move(lr));
  }
  std::vector<std::string> tags;
  if (!ref.tag.empty()) tags.push_back(ref.TagString());
  MOAT_ASSIGN_OR_RETURN(std::string got_id, im.Commit(config_json, manifest.body, layers, tags,
                                                      {ref.repo + "@" + top_digest}));
  progress.Emit("", "Digest: " + top_digest);
  progress.Emit("", (existed && missing == 0 ? "Status: Image is up to date for "
                                             : "Status: Downloaded newer image for ") +
                        ref.String());
  std::shared_lock lock(im.mu);
  return im.MakeImage(got_id);
}

}  // namespace moat::image
