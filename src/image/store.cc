#include "image/store.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>
#include <shared_mutex>
#include <thread>

#include "base/defer.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/sys/fs.h"
#include "image/decompress.h"
#include "image/digest.h"
#include "image/records.h"
#include "image/store_impl.h"
#include "image/tar_split.h"
#include "base/sys/fdio.h"
#include "base/sys/fileops.h"
#include "base/sys/io.h"
#include "base/sys/socket.h"
#include "base/sys/socket_io.h"
#include "base/sys/spawn.h"

namespace moat::image {
namespace {

constexpr char kMtTar[] = "application/vnd.oci.image.layer.v1.tar";
constexpr char kMtGzip[] = "application/vnd.oci.image.layer.v1.tar+gzip";
constexpr char kMtZstd[] = "application/vnd.oci.image.layer.v1.tar+zstd";
constexpr char kMtConfig[] = "application/vnd.oci.image.config.v1+json";
constexpr char kMtManifest[] = "application/vnd.oci.image.manifest.v1+json";

std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> out;
  DIR* d = opendir(path.c_str());
  if (!d) return out;
  while (struct dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) out.push_back(e->d_name);
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

// Lexical join for names inside an archive (never used on the file system).
std::string ArchiveJoin(const std::string& dir, const std::string& rel) {
  std::vector<std::string> out;
  std::string full = StartsWith(rel, "/") ? rel : dir + "/" + rel;
  for (auto& c : StrSplit(full, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.push_back(c);
  }
  return StrJoin(out, "/");
}

std::string Dirname(const std::string& p) {
  size_t s = p.rfind('/');
  return s == std::string::npos ? "" : p.substr(0, s);
}

Result<Compression> DetectFile(const std::string& path) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(path, O_RDONLY));
  unsigned char b[4] = {0, 0, 0, 0};
  MOAT_ASSIGN_OR_RETURN(size_t n, sys::read(fd.get(), b, 4));
  if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b) return Compression::kGzip;
  if (n >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd)
    return Compression::kZstd;
  return Compression::kNone;
}

const char* MediaTypeFor(Compression c) {
  switch (c) {
    case Compression::kGzip: return kMtGzip;
    case Compression::kZstd: return kMtZstd;
    default: return kMtTar;
  }
}

Descriptor Desc(const std::string& media_type, const std::string& digest, int64_t size) {
  Descriptor d;
  d.media_type = media_type;
  d.digest = digest;
  d.size = size;
  return d;
}

// A regular file spooled from the load archive. If it looked like a layer, it was also
// extracted as it streamed (see SpoolArchive): `extracted` then says where and what.
struct Spooled {
  std::string path;  // under the temp dir
  std::string hex;
  uint64_t size = 0;
  // Taken (once) by the commit of the layer: mutable in an otherwise read-only archive index.
  mutable std::optional<ExtractedLayer> extracted;
};

}  // namespace

std::string HostArch() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#else
  struct utsname u;
  uname(&u);
  return u.machine;
#endif
}

Result<std::string> MakeTempDir(const std::string& tmp_root, const char* prefix) {
  std::string tmpl = tmp_root + "/" + prefix + "-XXXXXX";
  if (!mkdtemp(tmpl.data())) return FailErrno("mkdtemp %s", tmpl.c_str());
  return tmpl;
}

std::string ShortId(const std::string& id) {
  std::string h = StartsWith(id, "sha256:") ? id.substr(7) : id;
  return h.substr(0, 12);
}

Store::Store(std::string root, std::unique_ptr<Impl> impl)
    : root_(std::move(root)), impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(const std::string& root, StoreOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->root = root;
  impl->opts = options;
  impl->extractor = options.extractor_path;
  if (impl->extractor.empty()) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n < 0) return FailErrno("readlink /proc/self/exe");
    buf[n] = 0;
    impl->extractor = std::string(dirname(buf)) + "/moat-extract";
  }
  for (const char* d : {"", "/blobs/sha256", "/layers", "/images", "/tmp"})
    MOAT_TRY(sys::MkdirAll(root + d, 0700));
  // Leftovers of a crash mid-write: nothing under tmp/ was ever visible.
  for (const auto& name : ListDir(root + "/tmp")) MOAT_TRY(sys::RemoveAll(root + "/tmp/" + name));
  auto repos = sys::ReadFile(root + "/repositories.json");
  if (repos) {
    MOAT_ASSIGN_OR_RETURN(impl->repos, ParseRepositories(*repos));
  } else if (repos.error().sys_errno != ENOENT) {
    return Fail(std::move(repos).error());
  }
  impl->boot_id = options.boot_id;
  if (impl->boot_id.empty()) {
    MOAT_ASSIGN_OR_RETURN(impl->boot_id, sys::ReadFile("/proc/sys/kernel/random/boot_id"));
    impl->boot_id = std::string(TrimWhitespace(impl->boot_id));
  }
  MOAT_TRY(impl->RecoverUnsynced());
  for (const auto& name : ListDir(root + "/images")) {
    if (name.size() != 69 || name.substr(64) != ".json") continue;
    MOAT_ASSIGN_OR_RETURN(std::string text, sys::ReadFile(root + "/images/" + name));
    MOAT_ASSIGN_OR_RETURN(ImageRecord rec,
                          std::move(ParseImageRecord(text)).Context("images/%s", name.c_str()));
    MOAT_ASSIGN_OR_RETURN(std::string cfg, sys::ReadFile(impl->Blob(name.substr(0, 64))));
    impl->configs[rec.id] = cfg;
    impl->records[rec.id] = std::move(rec);
  }
  impl->DropIncompleteImages();
  impl->StartFlusher();
  return std::unique_ptr<Store>(new Store(root, std::move(impl)));
}

// ---------------------------------------------------------------------------------------------
// Write-behind durability

namespace {

constexpr std::string_view kUnsyncedHeader = "moat-unsynced 1";

int64_t MonotonicMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<void> Store::Impl::WriteUnsyncedLocked() {
  std::string text = std::string(kUnsyncedHeader) + "\nboot " + boot_id + "\n";
  for (const auto& e : unsynced) text += e + "\n";
  return sys::WriteFileAtomic(root + "/unsynced", text, 0600);
}

Result<void> Store::Impl::MarkUnsynced(const std::vector<std::string>& entries) {
  std::lock_guard lock(sync_mu);
  unsynced.insert(unsynced.end(), entries.begin(), entries.end());
  MOAT_TRY(WriteUnsyncedLocked());
  last_mark_ms = MonotonicMs();
  sync_cv.notify_all();
  return Ok();
}

Result<void> Store::Impl::SyncNow() {
  size_t n;
  {
    std::lock_guard lock(sync_mu);
    n = unsynced.size();
  }
  if (n == 0) return Ok();
  MOAT_ASSIGN_OR_RETURN(UniqueFd dir, sys::open(root, O_RDONLY | O_DIRECTORY));
  MOAT_TRY(sys::syncfs(dir.get()));
  std::lock_guard lock(sync_mu);
  unsynced.erase(unsynced.begin(), unsynced.begin() + static_cast<std::ptrdiff_t>(n));
  if (unsynced.empty()) {
    MOAT_TRY(sys::unlinkat(dir.get(), "unsynced", 0));
    return sys::fsync(dir.get());
  }
  return WriteUnsyncedLocked();
}

void Store::Impl::StartFlusher() {
  if (opts.sync_delay_ms < 0) return;
  flusher = std::thread([this] {
    std::unique_lock lock(sync_mu);
    for (;;) {
      sync_cv.wait(lock, [&] { return stop_flusher || !unsynced.empty(); });
      if (stop_flusher) return;
      int64_t due = last_mark_ms + opts.sync_delay_ms;
      int64_t now = MonotonicMs();
      if (now < due) {
        sync_cv.wait_for(lock, std::chrono::milliseconds(due - now));
        continue;  // a later mark moves the deadline; stop is checked above
      }
      lock.unlock();
      if (auto r = SyncNow(); !r)
        MOAT_LOG(kWarning, "image store: sync: %s", r.error().message.c_str());
      lock.lock();
    }
  });
}

void Store::Impl::StopFlusher() {
  {
    std::lock_guard lock(sync_mu);
    stop_flusher = true;
    sync_cv.notify_all();
  }
  if (flusher.joinable()) flusher.join();
  if (auto r = SyncNow(); !r)
    MOAT_LOG(kWarning, "image store: sync: %s", r.error().message.c_str());
}

Result<void> Store::Impl::RecoverUnsynced() {
  auto text = sys::ReadFile(root + "/unsynced");
  if (!text) {
    if (text.error().sys_errno == ENOENT) return Ok();
    return Fail(std::move(text).error());
  }
  std::vector<std::string> lines = StrSplit(*text, '\n');
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.size() < 2 || lines[0] != kUnsyncedHeader || !StartsWith(lines[1], "boot "))
    return Fail(ErrorKind::kInvalidArgument, "%s/unsynced: not a Moat unsynced list",
                root.c_str());
  std::vector<std::string> entries(lines.begin() + 2, lines.end());
  for (const auto& e : entries) {
    bool blob = StartsWith(e, "blob "), layer = StartsWith(e, "layer ");
    std::string hex = e.substr(e.find(' ') + 1);
    if ((!blob && !layer) || !DigestHex("sha256:" + hex))
      return Fail(ErrorKind::kInvalidArgument, "%s/unsynced: bad entry \"%s\"", root.c_str(),
                  e.c_str());
  }
  if (lines[1].substr(5) == boot_id) {
    // Same boot (the daemon crashed, the machine did not): the data is in the page cache or
    // already on disk. Keep the list; the flusher syncs it.
    std::lock_guard lock(sync_mu);
    unsynced = std::move(entries);
    last_mark_ms = MonotonicMs();
    return Ok();
  }
  // The machine went down before these were written back: they may be torn. Remove them; the
  // images that used them go in DropIncompleteImages.
  for (const auto& e : entries) {
    std::string hex = e.substr(e.find(' ') + 1);
    if (StartsWith(e, "blob ")) {
      if (auto r = sys::unlinkat(AT_FDCWD, Blob(hex), 0); !r && r.error().sys_errno != ENOENT)
        return Fail(std::move(r).error());
    } else if (access((root + "/layers/" + hex).c_str(), F_OK) == 0) {
      MOAT_TRY(RemoveLayer(hex).Context("remove torn layer"));
    }
    MOAT_LOG(kWarning, "image store: %s was not written back before the machine stopped: removed",
             e.c_str());
  }
  MOAT_ASSIGN_OR_RETURN(UniqueFd dir, sys::open(root, O_RDONLY | O_DIRECTORY));
  MOAT_TRY(sys::syncfs(dir.get()));
  MOAT_TRY(sys::unlinkat(dir.get(), "unsynced", 0));
  return sys::fsync(dir.get());
}

void Store::Impl::DropIncompleteImages() {
  std::vector<std::string> doomed;
  for (const auto& [id, rec] : records) {
    for (const auto& l : rec.layers) {
      // A layer needs its blob unless it has a tar-split record.
      if ((access(Blob(l.blob_digest.substr(7)).c_str(), F_OK) != 0 && !HasTarSplit(l.chain_id)) ||
          access((LayerDir(l.chain_id) + "/meta.json").c_str(), F_OK) != 0) {
        doomed.push_back(id);
        break;
      }
    }
  }
  if (doomed.empty()) return;
  for (const auto& id : doomed) {
    MOAT_LOG(kWarning, "image store: image %s lost a layer (machine crash before write-back): "
                       "removed; pull or load it again", id.c_str());
    (void)sys::unlinkat(AT_FDCWD, root + "/images/" + id.substr(7) + ".json", 0);
    records.erase(id);
    configs.erase(id);
    std::erase_if(repos, [&](const auto& kv) { return kv.second == id; });
  }
  if (auto r = WriteRepos(); !r)
    MOAT_LOG(kWarning, "image store: repositories.json: %s", r.error().message.c_str());
}

Result<void> Store::Sync() { return impl_->SyncNow(); }

Result<void> Store::Impl::RemoveLayer(const std::string& chain_hex) {
  // Renamed into tmp first, so that a crash mid-removal never leaves half a layer visible.
  std::string doomed = Tmp() + "/doomed-" + chain_hex;
  MOAT_TRY(sys::renameat(AT_FDCWD, root + "/layers/" + chain_hex, AT_FDCWD, doomed));
  return sys::RemoveAll(doomed);
}

Result<Image> Store::Impl::MakeImage(const std::string& id) const {
  auto it = records.find(id);
  if (it == records.end()) return Fail(ErrorKind::kNotFound, "No such image: %s", id.c_str());
  const ImageRecord& r = it->second;
  MOAT_ASSIGN_OR_RETURN(ParsedConfig pc, ParseConfig(configs.at(id)));
  Image im;
  im.id = id;
  for (const auto& [tag, tid] : repos)
    if (tid == id) im.tags.push_back(tag);
  im.manifest_digest = r.manifest_digest;
  im.repo_digests = r.repo_digests;
  for (const auto& l : r.layers) {
    im.diff_ids.push_back(l.diff_id);
    im.chain_ids.push_back(l.chain_id);
    im.layer_dirs.push_back(LayerDir(l.chain_id) + "/diff");
  }
  im.config = pc.view;
  im.architecture = pc.architecture;
  im.os = pc.os;
  im.author = pc.author;
  im.comment = pc.comment;
  im.docker_version = pc.docker_version;
  im.history = pc.history;
  im.created = pc.created;
  im.size = r.size;
  im.config_json = configs.at(id);
  return im;
}

Result<void> Store::Impl::StoreBlob(const std::string& src, const std::string& hex, bool move,
                                    bool hashed) {
  std::string dst = Blob(hex);
  if (access(dst.c_str(), F_OK) == 0) return Ok();
  std::string tmp = Tmp() + "/blob-" + hex;
  if (move) {
    MOAT_TRY(sys::renameat(AT_FDCWD, src, AT_FDCWD, tmp));
  } else {
    MOAT_TRY(sys::linkat(AT_FDCWD, src, AT_FDCWD, tmp, 0));
  }
  // Verified before it becomes visible: content addressing is checked on every write (by the
  // caller as it wrote the file, or here).
  if (!hashed) {
    MOAT_ASSIGN_OR_RETURN(auto got, Sha256File(tmp));
    if (got.first != hex) {
      (void)sys::unlinkat(AT_FDCWD, tmp, 0);
      return Fail(ErrorKind::kInvalidArgument,
                  "blob sha256:%s digest mismatch (content is sha256:%s)", hex.c_str(),
                  got.first.c_str());
    }
  }
  MOAT_TRY(MarkUnsynced({"blob " + hex}));
  return sys::renameat(AT_FDCWD, tmp, AT_FDCWD, dst);
}

Result<void> Store::Impl::StoreBlobData(const std::string& data, std::string* hex_out) {
  std::string hex = Sha256Hex(data);
  if (hex_out) *hex_out = hex;
  if (access(Blob(hex).c_str(), F_OK) == 0) return Ok();
  MOAT_TRY(sys::WriteFileAtomic(Blob(hex), data, 0600));
  return Ok();
}

Result<ExtractReply> Store::Impl::ExtractLayerDir(const std::string& blob_path,
                                                  const std::string& layer_dir) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd in, sys::open(blob_path, O_RDONLY));
  MOAT_ASSIGN_OR_RETURN(UniqueFd dir, sys::open(layer_dir + "/diff", O_RDONLY | O_DIRECTORY));
  return ExtractFds(in.get(), dir.get(), {}, layer_dir + "/" + kTarSplitFile);
}

Result<ExtractReply> Store::Impl::ExtractFds(int in_fd, int dir_fd,
                                             const std::vector<std::string>& extra_args,
                                             const std::string& tar_split_path) {
  UniqueFd split;
  if (!tar_split_path.empty()) {
    MOAT_ASSIGN_OR_RETURN(split, sys::open(tar_split_path, O_WRONLY | O_CREAT | O_EXCL, 0600));
  }
  MOAT_ASSIGN_OR_RETURN(auto pipe, sys::pipe2(0));
  std::vector<std::string> argv = {
      "moat-extract",
      StrFormat("--max-entries=%llu", static_cast<unsigned long long>(opts.max_entries)),
      StrFormat("--max-path-length=%llu", static_cast<unsigned long long>(opts.max_path_length)),
      StrFormat("--max-bytes=%llu", static_cast<unsigned long long>(opts.max_layer_bytes)),
      StrFormat("--max-ratio=%llu", static_cast<unsigned long long>(opts.max_compression_ratio))};
  if (opts.no_chown) {
    argv.push_back("--no-chown");
    argv.push_back("--xattr-namespace=user");
  }
  for (const auto& a : extra_args)
    if (std::find(argv.begin(), argv.end(), a) == argv.end()) argv.push_back(a);
  std::vector<std::pair<int, int>> fds = {{in_fd, 0}, {pipe.second.get(), 1}, {dir_fd, 3}};
  if (split.valid()) {
    argv.push_back("--tar-split");
    fds.push_back({split.get(), 4});
  }
  MOAT_ASSIGN_OR_RETURN(pid_t pid, sys::Spawn(extractor, argv, fds));
  pipe.second.reset();
  std::string reply;
  char buf[4096];
  for (;;) {
    auto n = sys::read(pipe.first.get(), buf, sizeof buf);
    if (!n || *n == 0 || reply.size() > 65536) break;
    reply.append(buf, *n);
  }
  MOAT_ASSIGN_OR_RETURN(int status, sys::waitpid(pid));
  if (reply.empty()) {
    if (WIFSIGNALED(status))
      return Fail(ErrorKind::kInternal, "moat-extract killed by signal %d", WTERMSIG(status));
    return Fail(ErrorKind::kInternal, "moat-extract exited with status %d and no reply",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  auto r = ParseExtractReply(reply);
  if (r && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    return Fail(ErrorKind::kInternal, "moat-extract failed with status %d", status);
  if (r && split.valid() && !r->tar_split) {
    MOAT_LOG(kInfo, "image store: layer %s has no tar-split record (%s): its blob is kept",
             r->diff_id.c_str(), r->tar_split_why.c_str());
    MOAT_TRY(sys::unlinkat(AT_FDCWD, tar_split_path, 0));
  }
  return r;
}

bool Store::Impl::HasTarSplit(const std::string& chain_id) const {
  return access((LayerDir(chain_id) + "/" + kTarSplitFile).c_str(), F_OK) == 0;
}

Result<void> Store::Impl::AdoptTarSplit(const std::string& staged_dir, const std::string& chain_id) {
  if (HasTarSplit(chain_id)) return Ok();
  return sys::renameat(AT_FDCWD, staged_dir + "/" + kTarSplitFile, AT_FDCWD,
                       LayerDir(chain_id) + "/" + kTarSplitFile);
}

Result<int64_t> Store::Impl::LayerTarSize(const std::string& chain_id) const {
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd,
                        sys::open(LayerDir(chain_id) + "/" + kTarSplitFile, O_RDONLY | O_CLOEXEC));
  MOAT_ASSIGN_OR_RETURN(TarSplitInfo info, ReadTarSplitInfo(fd.get()));
  return static_cast<int64_t>(info.tar_bytes);
}

Result<void> Store::Impl::LayerTar(const std::string& chain_id, const std::string& diff_id,
                                   const std::function<Result<void>(std::string_view)>& sink) const {
  std::string dir = LayerDir(chain_id);
  MOAT_ASSIGN_OR_RETURN(UniqueFd split, sys::open(dir + "/" + kTarSplitFile, O_RDONLY | O_CLOEXEC));
  MOAT_ASSIGN_OR_RETURN(UniqueFd tree, sys::open(dir + "/diff", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return AssembleTar(split.get(), tree.get(), diff_id, sink).Context("layer %s", diff_id.c_str());
}

Result<LayerRecord> Store::Impl::CommitLayer(const std::string& blob_src,
                                             const std::string& blob_hex,
                                             const std::string& diff_id,
                                             const std::string& parent_chain,
                                             const ExtractedLayer* pre) {
  LayerRecord lr;
  lr.blob_digest = "sha256:" + blob_hex;
  lr.diff_id = diff_id;
  lr.chain_id = parent_chain.empty() ? diff_id
                                     : "sha256:" + Sha256Hex(parent_chain + " " + diff_id);
  MOAT_ASSIGN_OR_RETURN(Compression c, DetectFile(blob_src));
  lr.media_type = MediaTypeFor(c);
  struct stat st;
  if (stat(blob_src.c_str(), &st) == 0) lr.blob_size = st.st_size;
  std::string final_dir = LayerDir(lr.chain_id);
  // The blob is kept only for a layer that cannot be rebuilt from its tree.
  auto keep_blob = [&]() -> Result<void> {
    if (HasTarSplit(lr.chain_id)) return Ok();
    return StoreBlob(blob_src, blob_hex, /*move=*/false, /*hashed=*/true);
  };
  auto meta = sys::ReadFile(final_dir + "/meta.json");
  if (meta) {  // shared with another image: stored once
    // A layer of an older store may lack the record this extraction made: it gets it.
    if (pre && pre->tar_split) MOAT_TRY(AdoptTarSplit(pre->dir, lr.chain_id));
    if (pre) (void)sys::RemoveAll(pre->dir);
    MOAT_ASSIGN_OR_RETURN(LayerMeta m, ParseLayerMeta(*meta));
    lr.size = m.size;
    MOAT_TRY(keep_blob());
    return lr;
  }
  std::string tmp;
  Result<ExtractReply> got = Fail(ErrorKind::kInternal, "not extracted");
  if (pre) {
    tmp = pre->dir;
    got = ExtractReply{pre->diff_id, pre->size, pre->tar_split, ""};
  } else {
    MOAT_ASSIGN_OR_RETURN(tmp, MakeTempDir(Tmp(), "layer"));
  }
  auto cleanup = [&] { (void)sys::RemoveAll(tmp); };
  if (!pre) {
    if (auto r = sys::mkdirat(AT_FDCWD, tmp + "/diff", 0755); !r) {
      cleanup();
      return Fail(std::move(r).error());
    }
    got = ExtractLayerDir(blob_src, tmp);
  }
  if (!got) {
    cleanup();
    Error e = std::move(got).error();
    e.Prefix("layer sha256:" + blob_hex);
    return Fail(std::move(e));
  }
  if (got->diff_id != diff_id) {
    cleanup();
    return Fail(ErrorKind::kInvalidArgument,
                "layer sha256:%s: diff id %s does not match the config's %s", blob_hex.c_str(),
                got->diff_id.c_str(), diff_id.c_str());
  }
  lr.size = got->size;
  LayerMeta m{diff_id, lr.chain_id, parent_chain, lr.size};
  if (auto r = sys::WriteFileAtomic(tmp + "/meta.json", LayerMetaJson(m), 0600); !r) {
    cleanup();
    return Fail(std::move(r).error());
  }
  if (auto r = MarkUnsynced({"layer " + lr.chain_id.substr(7)}); !r) {
    cleanup();
    return Fail(std::move(r).error());
  }
  if (auto r = sys::renameat(AT_FDCWD, tmp, AT_FDCWD, final_dir); !r) {
    cleanup();
    return Fail(std::move(r).error());
  }
  MOAT_TRY(keep_blob());
  return lr;
}

Result<void> Store::Impl::AddRepoDigest(const std::string& id, const std::string& repo_digest) {
  std::unique_lock lock(mu);
  auto it = records.find(id);
  if (it == records.end()) return Fail(ErrorKind::kNotFound, "No such image: %s", id.c_str());
  ImageRecord rec = it->second;
  std::string repo = repo_digest.substr(0, repo_digest.find('@'));
  std::erase_if(rec.repo_digests,
                [&](const std::string& x) { return x.substr(0, x.find('@')) == repo; });
  rec.repo_digests.push_back(repo_digest);
  std::sort(rec.repo_digests.begin(), rec.repo_digests.end());
  MOAT_TRY(sys::WriteFileAtomic(root + "/images/" + id.substr(7) + ".json", ImageRecordJson(rec),
                                0600));
  it->second = std::move(rec);
  return Ok();
}

Result<void> Store::Impl::WriteRepos() {
  return sys::WriteFileAtomic(root + "/repositories.json", RepositoriesJson(repos), 0600);
}

Result<std::string> Store::Impl::Commit(const std::string& config_json,
                                        const std::string& manifest_json,
                                        std::vector<LayerRecord> layers,
                                        const std::vector<std::string>& tags,
                                        const std::vector<std::string>& repo_digests) {
  std::string cfg_hex, man_hex;
  MOAT_TRY(StoreBlobData(config_json, &cfg_hex));
  MOAT_TRY(StoreBlobData(manifest_json, &man_hex));
  ImageRecord rec;
  rec.id = "sha256:" + cfg_hex;
  rec.manifest_digest = "sha256:" + man_hex;
  for (const auto& l : layers) rec.size += l.size;
  rec.layers = std::move(layers);
  rec.loaded = time(nullptr);
  {
    std::shared_lock lock(mu);
    if (auto it = records.find(rec.id); it != records.end())
      rec.repo_digests = it->second.repo_digests;
  }
  for (const auto& d : repo_digests) {
    // One digest per repository, as Docker keeps it: a newer pull replaces the older one.
    std::string repo = d.substr(0, d.find('@'));
    std::erase_if(rec.repo_digests,
                  [&](const std::string& x) { return x.substr(0, x.find('@')) == repo; });
    rec.repo_digests.push_back(d);
  }
  std::sort(rec.repo_digests.begin(), rec.repo_digests.end());
  MOAT_TRY(sys::WriteFileAtomic(root + "/images/" + cfg_hex + ".json", ImageRecordJson(rec),
                                0600));
  std::unique_lock lock(mu);
  configs[rec.id] = config_json;
  records[rec.id] = rec;
  for (const auto& t : tags) repos[t] = rec.id;
  if (!tags.empty()) MOAT_TRY(WriteRepos());
  return rec.id;
}

// ---------------------------------------------------------------------------------------------
// Load

namespace {

// The files of a load archive, spooled to a temp dir.
struct Archive {
  std::map<std::string, Spooled> files;
  std::map<std::string, std::string> links;  // name -> target name (symlinks and hardlinks)

  const Spooled* Find(std::string name) const {
    for (int hops = 0; hops < 16; ++hops) {
      auto f = files.find(name);
      if (f != files.end()) return &f->second;
      auto l = links.find(name);
      if (l == links.end()) return nullptr;
      name = l->second;
    }
    return nullptr;
  }
};

// Entries at least this big that start like a layer (gzip, zstd or tar magic) are extracted
// while they are spooled, so that loading overlaps reading the archive with inflating and
// writing files. It is only a head start: Load uses the result if the entry turns out to be a
// layer with the diff id the config names, and extracts it again otherwise (so a failed or
// wasted speculation changes nothing but time).
constexpr uint64_t kSpeculateMinBytes = 256 << 10;

bool LooksLikeLayer(const void* buf, size_t size, int64_t entry_size) {
  if (entry_size < static_cast<int64_t>(kSpeculateMinBytes)) return false;
  auto* b = static_cast<const unsigned char*>(buf);
  if (size >= 2 && b[0] == 0x1f && b[1] == 0x8b) return true;
  if (size >= 4 && b[0] == 0x28 && b[1] == 0xb5 && b[2] == 0x2f && b[3] == 0xfd) return true;
  return size >= 262 && memcmp(b + 257, "ustar", 5) == 0;
}

// One speculative extraction: moat-extract reading a socket that the spool loop feeds.
class Speculation {
 public:
  static std::unique_ptr<Speculation> Start(Store::Impl& im, const std::string& tmp) {
    // Any failure here only means no head start (the destructor removes the dir).
    auto sp = std::unique_ptr<Speculation>(new Speculation);
    auto dir = MakeTempDir(tmp, "spec");
    if (!dir) return nullptr;
    sp->dir_ = *dir;
    if (!sys::mkdirat(AT_FDCWD, sp->dir_ + "/diff", 0755)) return nullptr;
    auto dfd = sys::open(sp->dir_ + "/diff", O_RDONLY | O_DIRECTORY);
    auto pair = sys::socketpair(SOCK_STREAM);
    if (!dfd || !pair) return nullptr;
    sp->to_ = std::move(pair->first);
    sp->thread_ = std::thread([&im, raw = sp.get(), in = std::move(pair->second),
                               d = std::move(*dfd),
                               split = sp->dir_ + "/" + kTarSplitFile]() mutable {
      raw->result_ = im.ExtractFds(in.get(), d.get(), {}, split);
    });
    return sp;
  }
  ~Speculation() {
    Finish();
    if (!dir_.empty()) (void)sys::RemoveAll(dir_);
  }
  void Feed(const void* buf, size_t n) {
    if (to_.get() < 0) return;
    // The extractor stopped reading (not a layer after all): stop feeding it.
    if (!sys::SendAll(to_.get(), {{static_cast<const char*>(buf), n}})) to_.reset();
  }
  // Ends the stream and returns the extraction (its dir is then the caller's to remove).
  std::optional<ExtractedLayer> Finish() {
    to_.reset();
    if (thread_.joinable()) thread_.join();
    if (dir_.empty() || !result_) return std::nullopt;
    ExtractedLayer e{std::exchange(dir_, ""), result_->diff_id, result_->size,
                     result_->tar_split};
    return e;
  }

 private:
  Speculation() = default;
  std::string dir_;
  UniqueFd to_;
  std::thread thread_;
  Result<ExtractReply> result_ = Fail(ErrorKind::kInternal, "not run");
};

Result<Archive> SpoolArchive(Store::Impl& im, int fd, const std::string& dir) {
  Archive ar;
  struct archive* a = archive_read_new();
  MOAT_CHECK(a != nullptr);
  archive_read_support_format_tar(a);
  archive_read_support_filter_gzip(a);
  archive_read_support_filter_zstd(a);
  auto fail = [&](const char* what) {
    Error e = MakeError(ErrorKind::kInvalidArgument, "%s: %s", what,
                        archive_error_string(a) ? archive_error_string(a) : "?");
    archive_read_free(a);
    return Fail(std::move(e));
  };
  // 1 MiB reads: the archive comes through a pipe and is hundreds of MB.
  if (archive_read_open_fd(a, fd, 1 << 20) != ARCHIVE_OK) return fail("read image archive");
  int n = 0;
  for (;;) {
    struct archive_entry* e;
    int rc = archive_read_next_header(a, &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return fail("read image archive");
    std::string name = ArchiveJoin("", archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
    if (name.empty()) continue;
    if (const char* hl = archive_entry_hardlink(e)) {
      ar.links[name] = ArchiveJoin("", hl);
      continue;
    }
    if (archive_entry_filetype(e) == AE_IFLNK) {
      ar.links[name] = ArchiveJoin(Dirname(name), archive_entry_symlink(e));
      continue;
    }
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    Spooled sp;
    sp.path = StrFormat("%s/f%d", dir.c_str(), n++);
    auto out = sys::open(sp.path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (!out) {
      archive_read_free(a);
      return Fail(std::move(out).error());
    }
    Sha256 sha;
    const void* buf;
    size_t size;
    la_int64_t offset;
    std::unique_ptr<Speculation> spec;
    for (;;) {
      int r = archive_read_data_block(a, &buf, &size, &offset);
      if (r == ARCHIVE_EOF) break;
      if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return fail(name.c_str());
      if (sp.size == 0 && LooksLikeLayer(buf, size, archive_entry_size(e)))
        spec = Speculation::Start(im, dir);
      sha.Update(buf, size);
      if (spec) spec->Feed(buf, size);
      if (auto w = sys::WriteAll(out->get(), {static_cast<const char*>(buf), size}); !w) {
        archive_read_free(a);
        return Fail(std::move(w).error());
      }
      sp.size += size;
    }
    sp.hex = sha.HexDigest();
    if (spec) sp.extracted = spec->Finish();
    ar.files[name] = sp;
  }
  archive_read_free(a);
  // Blobs named by digest must hash to their name.
  for (const auto& [name, sp] : ar.files) {
    std::string hex;
    if (StartsWith(name, "blobs/sha256/")) hex = name.substr(13);
    if (!hex.empty() && hex != sp.hex)
      return Fail(ErrorKind::kInvalidArgument,
                  "blob sha256:%s digest mismatch (content is sha256:%s)", hex.c_str(),
                  sp.hex.c_str());
  }
  return ar;
}

struct PendingImage {
  std::string config_name;
  std::string manifest_name;  // "" for docker archives without OCI manifests
  std::vector<std::string> layer_names;
  std::vector<std::string> tags;
};

// Walks OCI indexes (nested ones too) down to image manifests.
Result<void> CollectOci(const Archive& ar, const Descriptor& d, int depth,
                        std::vector<PendingImage>* out) {
  if (depth > 8) return Fail(ErrorKind::kInvalidArgument, "image indexes nested too deeply");
  MOAT_ASSIGN_OR_RETURN(std::string hex, DigestHex(d.digest));
  const Spooled* sp = ar.Find("blobs/sha256/" + hex);
  if (!sp) return Fail(ErrorKind::kInvalidArgument, "blob %s missing from the archive",
                       d.digest.c_str());
  MOAT_ASSIGN_OR_RETURN(std::string text, sys::ReadFile(sp->path));
  MOAT_ASSIGN_OR_RETURN(bool is_index, IsIndex(text));
  std::vector<std::string> tags;
  std::string name = !d.image_name.empty() ? d.image_name : d.ref_name;
  if (!name.empty() && name.find_first_of(":/") != std::string::npos) {
    auto ref = ParseReference(name);
    if (ref && !ref->tag.empty()) tags.push_back(ref->TagString());
  }
  if (is_index) {
    MOAT_ASSIGN_OR_RETURN(auto children, ParseIndex(text));
    // One platform per index: the host's, else the first.
    const Descriptor* pick = nullptr;
    for (const auto& c : children)
      if ((c.os.empty() || c.os == "linux") && (c.architecture.empty() || c.architecture == HostArch())) {
        pick = &c;
        break;
      }
    if (!pick && !children.empty()) pick = &children[0];
    if (!pick) return Ok();
    size_t before = out->size();
    Descriptor child = *pick;
    MOAT_TRY(CollectOci(ar, child, depth + 1, out));
    for (size_t i = before; i < out->size(); ++i)
      for (auto& t : tags) (*out)[i].tags.push_back(t);
    return Ok();
  }
  MOAT_ASSIGN_OR_RETURN(OciManifest m, ParseOciManifest(text));
  PendingImage p;
  MOAT_ASSIGN_OR_RETURN(std::string chex, DigestHex(m.config.digest));
  p.config_name = "blobs/sha256/" + chex;
  p.manifest_name = "blobs/sha256/" + hex;
  for (const auto& l : m.layers) {
    MOAT_ASSIGN_OR_RETURN(std::string lhex, DigestHex(l.digest));
    p.layer_names.push_back("blobs/sha256/" + lhex);
  }
  p.tags = tags;
  out->push_back(std::move(p));
  return Ok();
}

}  // namespace

Result<LoadResult> Store::Load(int fd, const std::function<void(const std::string&)>& progress) {
  Impl& im = *impl_;
  MOAT_ASSIGN_OR_RETURN(std::string tmp, MakeTempDir(im.Tmp(), "load"));
  auto cleanup = Defer([&] { (void)sys::RemoveAll(tmp); });
  MOAT_ASSIGN_OR_RETURN(Archive ar, SpoolArchive(im, fd, tmp));
  std::vector<PendingImage> pending;
  // Docker 25+ archives carry both: manifest.json has the tags, index.json the original
  // manifests (kept so that a save/load round trip preserves manifest digests).
  std::vector<PendingImage> oci;
  if (const Spooled* idx = ar.Find("index.json"); idx && ar.Find("oci-layout")) {
    MOAT_ASSIGN_OR_RETURN(std::string text, sys::ReadFile(idx->path));
    MOAT_ASSIGN_OR_RETURN(auto descs, ParseIndex(text));
    for (const auto& d : descs) MOAT_TRY(CollectOci(ar, d, 0, &oci));
  }
  if (const Spooled* m = ar.Find("manifest.json")) {
    MOAT_ASSIGN_OR_RETURN(std::string text, sys::ReadFile(m->path));
    MOAT_ASSIGN_OR_RETURN(auto entries, ParseDockerManifest(text));
    for (auto& e : entries) {
      PendingImage p;
      p.config_name = ArchiveJoin("", e.config);
      for (const auto& o : oci) {
        const Spooled* a = ar.Find(o.config_name);
        const Spooled* b = ar.Find(p.config_name);
        if (a && b && a->hex == b->hex) p.manifest_name = o.manifest_name;
      }
      for (auto& l : e.layers) p.layer_names.push_back(ArchiveJoin("", l));
      for (auto& t : e.repo_tags) {
        MOAT_ASSIGN_OR_RETURN(Reference ref, ParseReference(t));
        if (ref.tag.empty())
          return Fail(ErrorKind::kInvalidArgument, "RepoTags entry %s has no tag", t.c_str());
        p.tags.push_back(ref.TagString());
      }
      pending.push_back(std::move(p));
    }
  } else if (ar.Find("index.json") && ar.Find("oci-layout")) {
    pending = std::move(oci);
  } else {
    return Fail(ErrorKind::kInvalidArgument,
                "not an image archive: neither manifest.json nor index.json found");
  }

  std::lock_guard wlock(im.write_mu);
  LoadResult result;
  for (const auto& p : pending) {
    const Spooled* cfg = ar.Find(p.config_name);
    if (!cfg) return Fail(ErrorKind::kInvalidArgument, "config %s missing from the archive",
                          p.config_name.c_str());
    // A config named "<hex>.json" (docker save) must match its name too.
    std::string base = p.config_name.substr(p.config_name.rfind('/') + 1);
    if (base.size() == 69 && base.substr(64) == ".json" && base.substr(0, 64) != cfg->hex)
      return Fail(ErrorKind::kInvalidArgument,
                  "blob sha256:%s digest mismatch (content is sha256:%s)",
                  base.substr(0, 64).c_str(), cfg->hex.c_str());
    MOAT_ASSIGN_OR_RETURN(std::string config_json, sys::ReadFile(cfg->path));
    MOAT_ASSIGN_OR_RETURN(ParsedConfig pc, ParseConfig(config_json));
    if (pc.diff_ids.size() != p.layer_names.size())
      return Fail(ErrorKind::kInvalidArgument,
                  "image sha256:%s has %zu layers but its config lists %zu diff ids",
                  cfg->hex.c_str(), p.layer_names.size(), pc.diff_ids.size());
    std::vector<LayerRecord> layers;
    std::string parent;
    OciManifest manifest;
    manifest.config = Desc(kMtConfig, "sha256:" + cfg->hex, static_cast<int64_t>(cfg->size));
    for (size_t i = 0; i < p.layer_names.size(); ++i) {
      const Spooled* l = ar.Find(p.layer_names[i]);
      if (!l) return Fail(ErrorKind::kInvalidArgument, "layer %s missing from the archive",
                          p.layer_names[i].c_str());
      if (progress) progress(StrFormat("Loading layer %.12s", l->hex.c_str()));
      // A speculation is used once (CommitLayer consumes its dir); a layer named twice is
      // shared by then.
      std::optional<ExtractedLayer> pre;
      if (l->extracted && l->extracted->diff_id == pc.diff_ids[i])
        pre = std::exchange(l->extracted, std::nullopt);
      MOAT_ASSIGN_OR_RETURN(LayerRecord lr, im.CommitLayer(l->path, l->hex, pc.diff_ids[i],
                                                           parent, pre ? &*pre : nullptr));
      parent = lr.chain_id;
      manifest.layers.push_back(Desc(lr.media_type, lr.blob_digest, lr.blob_size));
      layers.push_back(lr);
    }
    std::string manifest_json;
    if (!p.manifest_name.empty()) {
      MOAT_ASSIGN_OR_RETURN(manifest_json, sys::ReadFile(ar.Find(p.manifest_name)->path));
    } else {
      manifest_json = OciManifestJson(manifest);
    }
    MOAT_ASSIGN_OR_RETURN(std::string id, im.Commit(config_json, manifest_json, layers, p.tags));
    result.ids.push_back(id);
    for (const auto& t : p.tags) {
      result.tags.push_back(t);
      if (progress) progress("Loaded image: " + t);
    }
    if (p.tags.empty() && progress) progress("Loaded image ID: " + id);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Import

Result<Image> Store::Import(int fd, const std::optional<Reference>& tag,
                            const ImportOptions& options) {
  Impl& im = *impl_;
  if (tag && tag->tag.empty())
    return Fail(ErrorKind::kInvalidArgument, "import needs a tag, not a digest");
  MOAT_ASSIGN_OR_RETURN(std::string tmp, MakeTempDir(im.Tmp(), "import"));
  auto cleanup = Defer([&] { (void)sys::RemoveAll(tmp); });
  std::string spool = tmp + "/layer";
  Sha256 sha;
  {
    MOAT_ASSIGN_OR_RETURN(UniqueFd out, sys::open(spool, O_WRONLY | O_CREAT | O_EXCL, 0600));
    char buf[1 << 16];
    for (;;) {
      MOAT_ASSIGN_OR_RETURN(size_t n, sys::read(fd, buf, sizeof buf));
      if (n == 0) break;
      sha.Update(buf, n);
      MOAT_TRY(sys::WriteAll(out.get(), {buf, n}));
    }
  }
  std::string hex = sha.HexDigest();
  std::lock_guard wlock(im.write_mu);
  // The diff id is only known after extraction: extract into a staging dir, which CommitLayer
  // then moves into place.
  MOAT_ASSIGN_OR_RETURN(std::string staged, MakeTempDir(tmp, "layer"));
  MOAT_TRY(sys::mkdirat(AT_FDCWD, staged + "/diff", 0755));
  auto probe = im.ExtractLayerDir(spool, staged);
  if (!probe) {
    Error e = std::move(probe).error();
    e.Prefix("import");
    return Fail(std::move(e));
  }
  int64_t created = options.created ? *options.created : time(nullptr);
  MOAT_ASSIGN_OR_RETURN(std::string config_json,
                        ImportConfigJson(probe->diff_id, options, created,
                                         options.architecture.empty() ? HostArch()
                                                                      : options.architecture));
  ExtractedLayer pre{staged, probe->diff_id, probe->size, probe->tar_split};
  MOAT_ASSIGN_OR_RETURN(LayerRecord lr, im.CommitLayer(spool, hex, probe->diff_id, "", &pre));
  OciManifest manifest;
  manifest.config = Desc(kMtConfig, "sha256:" + Sha256Hex(config_json),
                         static_cast<int64_t>(config_json.size()));
  manifest.layers.push_back(Desc(lr.media_type, lr.blob_digest, lr.blob_size));
  std::vector<std::string> tags;
  if (tag) tags.push_back(tag->TagString());
  MOAT_ASSIGN_OR_RETURN(std::string id,
                        im.Commit(config_json, OciManifestJson(manifest), {lr}, tags));
  std::shared_lock lock(im.mu);
  return im.MakeImage(id);
}

// ---------------------------------------------------------------------------------------------
// Commit, and extraction into a container

Result<Image> Store::CommitImage(const std::string& parent_id, int layer_fd,
                                 const CommitOptions& options,
                                 const std::optional<Reference>& tag) {
  Impl& im = *impl_;
  if (tag && tag->tag.empty())
    return Fail(ErrorKind::kInvalidArgument, "commit needs a tag, not a digest");
  MOAT_ASSIGN_OR_RETURN(std::string tmp, MakeTempDir(im.Tmp(), "commit"));
  auto cleanup = Defer([&] { (void)sys::RemoveAll(tmp); });
  std::string spool = tmp + "/layer";
  Sha256 sha;
  {
    MOAT_ASSIGN_OR_RETURN(UniqueFd out, sys::open(spool, O_WRONLY | O_CREAT | O_EXCL, 0600));
    char buf[1 << 16];
    for (;;) {
      MOAT_ASSIGN_OR_RETURN(size_t n, sys::read(layer_fd, buf, sizeof buf));
      if (n == 0) break;
      sha.Update(buf, n);
      MOAT_TRY(sys::WriteAll(out.get(), {buf, n}));
    }
  }
  // A plain tar: its sha256 is both the blob digest and the diff id, which CommitLayer checks
  // against what moat-extract computes.
  std::string hex = sha.HexDigest();
  std::string diff_id = "sha256:" + hex;
  std::lock_guard wlock(im.write_mu);
  std::vector<LayerRecord> layers;
  std::string parent_config;
  {
    std::shared_lock lock(im.mu);
    auto it = im.records.find(parent_id);
    if (it == im.records.end())
      return Fail(ErrorKind::kNotFound, "No such image: %s", parent_id.c_str());
    layers = it->second.layers;
    parent_config = im.configs.at(parent_id);
  }
  int64_t created = options.created ? *options.created : time(nullptr);
  MOAT_ASSIGN_OR_RETURN(std::string config_json,
                        CommitConfigJson(parent_config, diff_id, options, created));
  std::string parent_chain = layers.empty() ? "" : layers.back().chain_id;
  MOAT_ASSIGN_OR_RETURN(LayerRecord lr, im.CommitLayer(spool, hex, diff_id, parent_chain));
  layers.push_back(lr);
  OciManifest manifest;
  manifest.config = Desc(kMtConfig, "sha256:" + Sha256Hex(config_json),
                         static_cast<int64_t>(config_json.size()));
  for (const auto& l : layers)
    manifest.layers.push_back(Desc(l.media_type, l.blob_digest, l.blob_size));
  std::vector<std::string> tags;
  if (tag) tags.push_back(tag->TagString());
  MOAT_ASSIGN_OR_RETURN(std::string id,
                        im.Commit(config_json, OciManifestJson(manifest), layers, tags));
  std::shared_lock lock(im.mu);
  return im.MakeImage(id);
}

Result<void> Store::ExtractInto(int tar_fd, int dir_fd, CopyOwnership ownership) {
  std::vector<std::string> extra;
  // The extractor runs as root: without chown the files are root's.
  if (ownership == CopyOwnership::kRoot) extra.push_back("--no-chown");
  MOAT_TRY(impl_->ExtractFds(tar_fd, dir_fd, extra));
  return Ok();
}

// ---------------------------------------------------------------------------------------------
// Queries

Result<std::string> Store::Impl::ResolveId(std::string_view name) const {
  std::string n(name);
  auto ref = ParseReference(name);
  if (ref) {
    if (!ref->digest.empty()) {
      for (const auto& [id, r] : records)
        if (r.manifest_digest == ref->digest || id == ref->digest) return id;
      // "repo@sha256:<digest>" as pulled (the digest of a manifest list / index, too).
      std::string rd = ref->repo + "@" + ref->digest;
      for (const auto& [id, r] : records)
        if (std::find(r.repo_digests.begin(), r.repo_digests.end(), rd) != r.repo_digests.end())
          return id;
    } else if (auto it = repos.find(ref->TagString()); it != repos.end()) {
      return it->second;
    }
  }
  std::string hex = StartsWith(n, "sha256:") ? n.substr(7) : n;
  bool is_hex = !hex.empty() && hex.size() <= 64 &&
                hex.find_first_not_of("0123456789abcdef") == std::string::npos;
  if (is_hex) {
    std::vector<std::string> matches;
    for (const auto& [id, r] : records)
      if (StartsWith(id.substr(7), hex)) matches.push_back(id);
    if (matches.size() == 1) return matches[0];
    if (matches.size() > 1)
      return Fail(ErrorKind::kInvalidArgument, "ambiguous image id prefix %s", n.c_str());
  }
  std::string shown = (ref && !is_hex) ? ref->String() : n;
  return Fail(ErrorKind::kNotFound, "No such image: %s", shown.c_str());
}

Result<Image> Store::Resolve(std::string_view name_or_id) const {
  std::shared_lock lock(impl_->mu);
  MOAT_ASSIGN_OR_RETURN(std::string id, impl_->ResolveId(name_or_id));
  return impl_->MakeImage(id);
}

Result<std::vector<Image>> Store::List() const {
  std::shared_lock lock(impl_->mu);
  std::vector<Image> out;
  for (const auto& [id, r] : impl_->records) {
    MOAT_ASSIGN_OR_RETURN(Image im, impl_->MakeImage(id));
    out.push_back(std::move(im));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Image& a, const Image& b) { return a.created > b.created; });
  return out;
}

Result<void> Store::Tag(std::string_view source, const Reference& target) {
  if (target.tag.empty())
    return Fail(ErrorKind::kInvalidArgument, "tag target %s has no tag", target.String().c_str());
  std::lock_guard wlock(impl_->write_mu);
  std::unique_lock lock(impl_->mu);
  MOAT_ASSIGN_OR_RETURN(std::string id, impl_->ResolveId(source));
  impl_->repos[target.TagString()] = id;
  return impl_->WriteRepos();
}

Result<std::vector<std::pair<std::string, std::string>>> Store::Remove(
    std::string_view name, bool force,
    const std::function<std::optional<std::string>(const std::string& id)>& in_use) {
  Impl& im = *impl_;
  std::lock_guard wlock(im.write_mu);
  std::string id, by_tag;
  std::vector<std::string> tags;
  {
    std::shared_lock lock(im.mu);
    MOAT_ASSIGN_OR_RETURN(id, im.ResolveId(name));
    auto ref = ParseReference(name);
    if (ref && ref->digest.empty() && im.repos.count(ref->TagString())) by_tag = ref->TagString();
    for (const auto& [t, tid] : im.repos)
      if (tid == id) tags.push_back(t);
  }
  std::optional<std::string> user = in_use ? in_use(id) : std::nullopt;
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<std::string> untag;
  bool remove_record = false;
  if (!by_tag.empty()) {
    untag.push_back(by_tag);
    remove_record = tags.size() == 1;
    if (remove_record && user && !force)
      return Fail(ErrorKind::kConflict,
                  "conflict: unable to remove repository reference \"%s\" (must force) - "
                  "container %s is using its referenced image %s",
                  by_tag.c_str(), ShortId(*user).c_str(), ShortId(id).c_str());
  } else {
    if (tags.size() > 1 && !force)
      return Fail(ErrorKind::kConflict,
                  "conflict: unable to delete %s (must be forced) - image is referenced in "
                  "multiple repositories",
                  ShortId(id).c_str());
    if (user && !force)
      return Fail(ErrorKind::kConflict,
                  "conflict: unable to delete %s (cannot be forced) - image is being used by "
                  "running container %s",
                  ShortId(id).c_str(), ShortId(*user).c_str());
    untag = tags;
    remove_record = true;
  }
  // A forced removal of an image a container uses only untags it (Docker keeps it dangling).
  if (user) remove_record = false;
  std::unique_lock lock(im.mu);
  for (const auto& t : untag) {
    im.repos.erase(t);
    out.emplace_back("Untagged", t);
  }
  if (!untag.empty()) MOAT_TRY(im.WriteRepos());
  if (remove_record) {
    MOAT_TRY(sys::unlinkat(AT_FDCWD, im.root + "/images/" + id.substr(7) + ".json", 0));
    im.records.erase(id);
    im.configs.erase(id);
    out.emplace_back("Deleted", id);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Save

namespace {

struct ArchiveWriter {
  struct archive* a;
  explicit ArchiveWriter(int fd) : a(archive_write_new()) {
    MOAT_CHECK(a != nullptr);
    archive_write_set_format_pax_restricted(a);
    archive_write_set_bytes_in_last_block(a, 1);
    opened = archive_write_open_fd(a, fd) == ARCHIVE_OK;
  }
  ~ArchiveWriter() { archive_write_free(a); }
  bool opened = false;

  Result<void> Fail2(const std::string& what) {
    return Fail(ErrorKind::kInternal, "write image archive %s: %s", what.c_str(),
                archive_error_string(a) ? archive_error_string(a) : "?");
  }
  Result<void> Header(const std::string& name, mode_t type, int64_t size) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, type);
    archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
    archive_entry_set_size(e, size);
    archive_entry_set_mtime(e, 0, 0);
    int rc = archive_write_header(a, e);
    archive_entry_free(e);
    if (rc != ARCHIVE_OK) return Fail2(name);
    return Ok();
  }
  Result<void> Dir(const std::string& name) { return Header(name, AE_IFDIR, 0); }
  Result<void> Data(const std::string& name, const std::string& data) {
    MOAT_TRY(Header(name, AE_IFREG, static_cast<int64_t>(data.size())));
    if (archive_write_data(a, data.data(), data.size()) < 0) return Fail2(name);
    return Ok();
  }
  Result<void> File(const std::string& name, const std::string& path) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) return FailErrno("stat %s", path.c_str());
    MOAT_TRY(Header(name, AE_IFREG, st.st_size));
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(path, O_RDONLY));
    char buf[1 << 16];
    for (;;) {
      MOAT_ASSIGN_OR_RETURN(size_t n, sys::read(fd.get(), buf, sizeof buf));
      if (n == 0) break;
      if (archive_write_data(a, buf, n) < 0) return Fail2(name);
    }
    return Ok();
  }
  Result<void> Close() {
    if (archive_write_close(a) != ARCHIVE_OK) return Fail2("close");
    return Ok();
  }
};

}  // namespace

Result<void> Store::Save(const std::vector<std::string>& names, int fd) {
  Impl& im = *impl_;
  std::vector<DockerManifestEntry> entries;
  std::map<std::string, std::map<std::string, std::string>> repositories;
  std::vector<Descriptor> index;
  std::set<std::string> blobs;  // hex of stored blobs
  // Layers without a blob, rebuilt from their tar-split record: diff id hex -> layer.
  struct Rebuilt {
    std::string chain_id, diff_id;
    int64_t size = 0;
  };
  std::map<std::string, Rebuilt> rebuilt;
  std::map<std::string, std::string> generated;  // hex -> manifest JSON written for the save
  // Held for the whole write: blobs and layers must not be collected while they are saved.
  std::lock_guard wlock(im.write_mu);
  {
    std::shared_lock lock(im.mu);
    std::map<std::string, size_t> entry_of;            // id -> entries index
    std::map<std::string, Descriptor> manifest_of;     // id -> the manifest saved for it
    for (const auto& n : names) {
      MOAT_ASSIGN_OR_RETURN(std::string id, im.ResolveId(n));
      const ImageRecord& r = im.records.at(id);
      std::string tag;
      auto ref = ParseReference(n);
      if (ref && ref->digest.empty() && im.repos.count(ref->TagString())) tag = ref->TagString();
      if (!entry_of.count(id)) {
        DockerManifestEntry e;
        e.config = "blobs/sha256/" + id.substr(7);
        blobs.insert(id.substr(7));
        // The stored manifest describes the blobs as loaded or pulled; a layer whose blob was
        // not kept is saved uncompressed (its digest is its diff id), under a manifest made for
        // this archive, as Docker's save does.
        OciManifest made;
        made.config = Desc(kMtConfig, id, static_cast<int64_t>(im.configs.at(id).size()));
        bool changed = false;
        for (const auto& l : r.layers) {
          std::string hex = l.blob_digest.substr(7);
          if (access(im.Blob(hex).c_str(), F_OK) == 0) {
            e.layers.push_back("blobs/sha256/" + hex);
            blobs.insert(hex);
            made.layers.push_back(Desc(l.media_type, l.blob_digest, l.blob_size));
            continue;
          }
          MOAT_ASSIGN_OR_RETURN(int64_t size, im.LayerTarSize(l.chain_id).Context(
                                                  "layer %s", l.diff_id.c_str()));
          std::string dhex = l.diff_id.substr(7);
          rebuilt[dhex] = Rebuilt{l.chain_id, l.diff_id, size};
          e.layers.push_back("blobs/sha256/" + dhex);
          made.layers.push_back(Desc(kMtTar, l.diff_id, size));
          changed = true;
        }
        Descriptor md;
        if (changed) {
          std::string json = OciManifestJson(made);
          std::string mhex = Sha256Hex(json);
          md = Desc(kMtManifest, "sha256:" + mhex, static_cast<int64_t>(json.size()));
          generated[mhex] = std::move(json);
        } else {
          std::string mhex = r.manifest_digest.substr(7);
          blobs.insert(mhex);
          struct stat st;
          int64_t msize = stat(im.Blob(mhex).c_str(), &st) == 0 ? st.st_size : 0;
          md = Desc(kMtManifest, r.manifest_digest, msize);
        }
        manifest_of[id] = md;
        entry_of[id] = entries.size();
        entries.push_back(e);
        if (tag.empty()) index.push_back(md);
      }
      if (!tag.empty()) {
        entries[entry_of[id]].repo_tags.push_back(tag);
        size_t colon = tag.rfind(':');
        repositories[tag.substr(0, colon)][tag.substr(colon + 1)] = id.substr(7);
        Descriptor d = manifest_of[id];
        d.image_name = ref->repo.find('/') == std::string::npos ? "docker.io/library/" + tag
                                                                : tag;
        d.ref_name = ref->tag;
        index.push_back(d);
      }
    }
  }
  ArchiveWriter w(fd);
  if (!w.opened) return w.Fail2("open");
  MOAT_TRY(w.Dir("blobs/"));
  MOAT_TRY(w.Dir("blobs/sha256/"));
  for (const auto& hex : blobs) MOAT_TRY(w.File("blobs/sha256/" + hex, im.Blob(hex)));
  for (const auto& [hex, json] : generated) MOAT_TRY(w.Data("blobs/sha256/" + hex, json));
  for (const auto& [hex, l] : rebuilt) {
    std::string name = "blobs/sha256/" + hex;
    MOAT_TRY(w.Header(name, AE_IFREG, l.size));
    MOAT_TRY(im.LayerTar(l.chain_id, l.diff_id, [&](std::string_view data) -> Result<void> {
      if (archive_write_data(w.a, data.data(), data.size()) < 0) return w.Fail2(name);
      return Ok();
    }));
  }
  MOAT_TRY(w.Data("index.json", OciIndexJson(index)));
  MOAT_TRY(w.Data("manifest.json", DockerManifestJson(entries)));
  MOAT_TRY(w.Data("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"));
  if (!repositories.empty()) MOAT_TRY(w.Data("repositories", DockerRepositoriesJson(repositories)));
  return w.Close();
}

// ---------------------------------------------------------------------------------------------
// GC and JSON

Result<GcResult> Store::CollectGarbage() {
  Impl& im = *impl_;
  std::lock_guard wlock(im.write_mu);
  std::set<std::string> blobs, chains;
  {
    std::shared_lock lock(im.mu);
    for (const auto& [id, r] : im.records) {
      blobs.insert(id.substr(7));
      blobs.insert(r.manifest_digest.substr(7));
      for (const auto& l : r.layers) {
        blobs.insert(l.blob_digest.substr(7));
        chains.insert(l.chain_id.substr(7));
      }
    }
  }
  GcResult res;
  for (const auto& hex : ListDir(im.root + "/blobs/sha256")) {
    if (blobs.count(hex)) continue;
    struct stat st;
    if (stat(im.Blob(hex).c_str(), &st) == 0) res.bytes_reclaimed += st.st_size;
    MOAT_TRY(sys::unlinkat(AT_FDCWD, im.Blob(hex), 0));
    res.blobs_removed.push_back("sha256:" + hex);
  }
  for (const auto& hex : ListDir(im.root + "/layers")) {
    if (chains.count(hex)) continue;
    if (auto meta = sys::ReadFile(im.root + "/layers/" + hex + "/meta.json"))
      if (auto m = ParseLayerMeta(*meta)) res.bytes_reclaimed += m->size;
    MOAT_TRY(im.RemoveLayer(hex));
    res.layers_removed.push_back("sha256:" + hex);
  }
  return res;
}

std::string Store::SummaryJson(const Image& image) const { return SummaryJsonOf(image); }
std::string Store::InspectJson(const Image& image) const { return InspectJsonOf(image); }
std::string Store::HistoryJson(const Image& image) const {
  std::vector<int64_t> sizes;
  {
    std::shared_lock lock(impl_->mu);
    auto it = impl_->records.find(image.id);
    if (it != impl_->records.end())
      for (const auto& l : it->second.layers) sizes.push_back(l.size);
  }
  return HistoryJsonOf(image, sizes);
}

}  // namespace moat::image
