#include "image/extract/extractor.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/linux_compat.h"
#include "image/decompress.h"
#include "image/digest.h"
#include "image/tar_split.h"
#include "base/sys/fdio.h"
#include "base/sys/fileops.h"
#include "base/sys/io.h"
#include "base/sys/socket_io.h"
#include "base/sys/spawn.h"

namespace moat::image {
namespace {

constexpr uint64_t kResolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
constexpr uint64_t kRatioGrace = 16ull << 20;  // ratios are checked past this many bytes
constexpr size_t kReadSize = 1 << 17;   // one inflate call: the limits are checked after each
constexpr size_t kChunkSize = 1 << 20;  // the unit handed to libarchive
// The parser holds one chunk while the producer fills up to kChunks - 1 ahead: memory stays
// bounded whatever the compression ratio.
constexpr size_t kChunks = 4;

// The uncompressed layer: inflates `fd`, hashes every byte (the diff id) and enforces the size
// and ratio limits.
class LayerStream {
 public:
  LayerStream(int fd, int cancel_fd, const ExtractLimits& limits, TarSplitRecorder* recorder)
      : reader_(fd, cancel_fd), limits_(limits), recorder_(recorder) {}

  // Fills `buf` with up to `len` bytes, fewer only at the end of the stream or on error.
  // `*filled` counts the bytes delivered even when an error is returned: they come before it in
  // the stream. The read that crosses a limit is not delivered.
  Result<void> Fill(char* buf, size_t len, size_t* filled) {
    *filled = 0;
    while (*filled < len) {
      char* p = buf + *filled;
      MOAT_ASSIGN_OR_RETURN(size_t n, reader_.Read(p, std::min(len - *filled, kReadSize)));
      if (n == 0) break;
      sha_.Update(p, n);
      if (recorder_) recorder_->Feed(p, n);
      total_ += n;
      if (total_ > limits_.max_bytes)
        return Fail(ErrorKind::kInvalidArgument,
                    "layer exceeds the size limit of %llu uncompressed bytes",
                    static_cast<unsigned long long>(limits_.max_bytes));
      uint64_t in = reader_.compressed_bytes();
      if (total_ > kRatioGrace && total_ / (in ? in : 1) > limits_.max_ratio)
        return Fail(ErrorKind::kInvalidArgument,
                    "layer exceeds the compression ratio limit of %llu",
                    static_cast<unsigned long long>(limits_.max_ratio));
      *filled += n;
    }
    return Ok();
  }

  uint64_t total() const { return total_; }
  std::string HexDigest() { return sha_.HexDigest(); }

 private:
  DecompressReader reader_;
  Sha256 sha_;
  uint64_t total_ = 0;
  const ExtractLimits& limits_;
  TarSplitRecorder* recorder_;
};

// Feeds libarchive the uncompressed stream. A producer thread reads, inflates and hashes the
// layer into a bounded ring of chunks while the calling thread parses the tar and writes the
// files (on two CPUs, inflating and writing overlap as in `igzip -dc | tar -x`). When the
// thread cannot be created (EAGAIN: RLIMIT_NPROC binds a non-root moat-extract) the calling
// thread reads the stream itself, chunk by chunk. Either way an error of the stream reaches
// the parser at the point of the stream where it occurred.
class Source {
 public:
  Source(int in_fd, int cancel_fd, const ExtractLimits& limits, TarSplitRecorder* recorder)
      : stream_(in_fd, cancel_fd, limits, recorder), cancel_fd_(cancel_fd) {
    for (auto& c : chunks_) c.data.resize(kChunkSize);
  }
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;
  ~Source() { Stop(); }

  // Starts the producer thread, or falls back to reading on the calling thread.
  Result<void> Start() {
    int rc = pthread_create(&thread_, nullptr, &Source::Run, this);
    if (rc == EAGAIN) return Ok();
    if (rc != 0) return Fail(Error::FromErrno(rc, "create the layer reader thread"));
    threaded_ = true;
    return Ok();
  }

  // libarchive's read callback: the next chunk (valid until the next call), 0 at the end, -1
  // on error (then error() says why).
  ssize_t ReadChunk(const void** out) {
    if (finished_) return Finish();
    Chunk* c = threaded_ ? NextChunk() : ReadInline();
    if (c->last) {
      finished_ = true;
      pending_ = std::move(c->error);
      c->error.reset();
      if (c->len == 0) return Finish();
    }
    *out = c->data.data();
    return static_cast<ssize_t>(c->len);
  }

  // Stops the producer (a read blocked on an idle pipe is woken through the cancel fd) and
  // joins it. Idempotent.
  void Stop() {
    if (!threaded_) return;
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    space_.notify_one();
    (void)sys::eventfd_write(cancel_fd_, 1);
    MOAT_CHECK(pthread_join(thread_, nullptr) == 0);
    threaded_ = false;
  }

  bool failed() const { return failed_; }
  const Error& error() const { return error_; }
  // Only after ReadChunk returned 0.
  uint64_t total() {
    Stop();
    return stream_.total();
  }
  std::string HexDigest() {
    Stop();
    return stream_.HexDigest();
  }

 private:
  struct Chunk {
    std::vector<char> data;
    size_t len = 0;
    bool last = false;  // the end of the stream, or `error`
    std::optional<Error> error;
  };

  static void* Run(void* self) {
    static_cast<Source*>(self)->Produce();
    return nullptr;
  }

  void Produce() {
    for (;;) {
      Chunk* c;
      {
        std::unique_lock lock(mu_);
        space_.wait(lock, [&] { return stop_ || filled_ < kChunks; });
        if (stop_) return;
        c = &chunks_[(head_ + filled_) % kChunks];
      }
      FillChunk(c);
      {
        std::lock_guard lock(mu_);
        ++filled_;
      }
      data_.notify_one();
      if (c->last) return;
    }
  }

  void FillChunk(Chunk* c) {
    auto r = stream_.Fill(c->data.data(), kChunkSize, &c->len);
    c->last = !r || c->len < kChunkSize;
    if (!r) c->error = std::move(r).error();
  }

  // Releases the chunk the parser held and waits for the next.
  Chunk* NextChunk() {
    std::unique_lock lock(mu_);
    if (holding_) {
      head_ = (head_ + 1) % kChunks;
      --filled_;
      space_.notify_one();
    }
    data_.wait(lock, [&] { return filled_ > 0; });
    holding_ = true;
    return &chunks_[head_];
  }

  Chunk* ReadInline() {
    FillChunk(&chunks_[0]);
    return &chunks_[0];
  }

  ssize_t Finish() {
    if (pending_) {
      error_ = std::move(*pending_);
      pending_.reset();
      failed_ = true;
    }
    return failed_ ? -1 : 0;
  }

  LayerStream stream_;
  int cancel_fd_;
  bool threaded_ = false;
  pthread_t thread_ = {};
  // The ring: chunks_[head_] is the oldest of `filled_` chunks, the one the parser holds if
  // `holding_`; the producer fills chunks_[(head_ + filled_) % kChunks] while filled_ < kChunks.
  std::array<Chunk, kChunks> chunks_;
  std::mutex mu_;
  std::condition_variable space_;  // filled_ < kChunks, or stop_
  std::condition_variable data_;   // filled_ > 0
  size_t head_ = 0;
  size_t filled_ = 0;
  bool stop_ = false;
  // Parser side only.
  bool holding_ = false;
  bool finished_ = false;
  std::optional<Error> pending_;
  bool failed_ = false;
  Error error_;
};

ssize_t ReadCallback(struct archive*, void* client, const void** out) {
  return static_cast<Source*>(client)->ReadChunk(out);
}

// Lexically normalises a tar name into components: leading "/" and "." are dropped and ".."
// never climbs above the root. The kernel resolution (RESOLVE_IN_ROOT) is the real guard;
// this only gives absolute and "../" names a predictable place inside the root.
std::vector<std::string> CleanPath(const std::string& name) {
  std::vector<std::string> out;
  for (auto& c : StrSplit(name, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string JoinPath(const std::vector<std::string>& c, size_t n) {
  std::string s = ".";
  for (size_t i = 0; i < n; ++i) s += "/" + c[i];
  return s;
}

// Opens (creating missing directories) the directory of the first `n` components.
Result<UniqueFd> OpenParent(int root_fd, const std::vector<std::string>& comps, size_t n) {
  auto fd = sys::openat2(root_fd, JoinPath(comps, n), O_PATH | O_DIRECTORY, 0, kResolve);
  if (fd || fd.error().sys_errno != ENOENT) return fd;
  UniqueFd cur;
  MOAT_ASSIGN_OR_RETURN(cur, sys::openat2(root_fd, ".", O_PATH | O_DIRECTORY, 0, kResolve));
  for (size_t i = 0; i < n; ++i) {
    auto next = sys::openat2(root_fd, JoinPath(comps, i + 1), O_PATH | O_DIRECTORY, 0, kResolve);
    if (!next && next.error().sys_errno == ENOENT) {
      // EEXIST here is a dangling symlink (its target resolved inside the root does not
      // exist): refuse instead of guessing where the layer meant to write.
      if (auto mk = sys::mkdirat(cur.get(), comps[i], 0755); !mk) {
        if (mk.error().sys_errno == EEXIST)
          return Fail(ErrorKind::kInvalidArgument, "parent %s of a tar entry is not a directory",
                      JoinPath(comps, i + 1).c_str());
        return Fail(std::move(mk).error());
      }
      next = sys::openat2(root_fd, JoinPath(comps, i + 1), O_PATH | O_DIRECTORY, 0, kResolve);
    }
    if (!next) return Fail(std::move(next).error());
    cur = std::move(*next);
  }
  return cur;
}

// rm -rf of dirfd/name without following symlinks. Adds the inode numbers of the regular files
// it unlinks to `*removed` if given.
Result<void> RemoveAt(int dirfd, const std::string& name, std::set<ino_t>* removed = nullptr) {
  auto st = sys::fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW);
  if (!st) return st.error().sys_errno == ENOENT ? Ok() : Fail(std::move(st).error());
  if (removed && S_ISREG(st->st_mode)) removed->insert(st->st_ino);
  if (S_ISDIR(st->st_mode)) {
    MOAT_ASSIGN_OR_RETURN(UniqueFd d,
                          sys::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    int dup_fd = fcntl(d.get(), F_DUPFD_CLOEXEC, 0);
    if (dup_fd < 0) return FailErrno("dup %s", name.c_str());
    DIR* dir = fdopendir(dup_fd);
    if (!dir) {
      ::close(dup_fd);
      return FailErrno("fdopendir %s", name.c_str());
    }
    std::vector<std::string> names;
    while (struct dirent* e = readdir(dir)) {
      if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names.push_back(e->d_name);
    }
    closedir(dir);
    for (auto& n : names) MOAT_TRY(RemoveAt(d.get(), n, removed));
    return sys::unlinkat(dirfd, name, AT_REMOVEDIR);
  }
  return sys::unlinkat(dirfd, name, 0);
}

struct timespec2 {
  struct timespec t[2];
};

timespec2 Times(struct archive_entry* e) {
  timespec2 ts;
  ts.t[0].tv_sec = archive_entry_atime_is_set(e) ? archive_entry_atime(e) : archive_entry_mtime(e);
  ts.t[0].tv_nsec = archive_entry_atime_is_set(e) ? archive_entry_atime_nsec(e) : 0;
  ts.t[1].tv_sec = archive_entry_mtime(e);
  ts.t[1].tv_nsec = archive_entry_mtime_nsec(e);
  return ts;
}

// Overlay obeys trusted.overlay.* (and user.overlay.* with userxattr): redirect, metacopy,
// opaque and whiteout markers from a tar could make overlay read other layers' files, so
// they are never taken from the image. trusted.*, security.* (SELinux labels, IMA) and
// system.* (ACLs) are host policy, not image content.
bool IsAllowedXattr(std::string_view name) {
  if (StartsWith(name, "user.")) return !StartsWith(name, "user.overlay.");
  return name == "security.capability";
}

Result<void> ApplyXattrs(int fd, struct archive_entry* e, ExtractResult* res) {
  archive_entry_xattr_reset(e);
  const char* name;
  const void* value;
  size_t size;
  while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (!IsAllowedXattr(name)) {
      ++res->xattrs_skipped;
      continue;
    }
    MOAT_TRY(sys::fsetxattr(fd, name, value, size).Context("xattr %s on entry", name));
  }
  return Ok();
}

class Extractor {
 public:
  Extractor(int root_fd, const ExtractOptions& o) : root_fd_(root_fd), opts_(o) {
    // The process's umask (restored at once; moat-extract runs with 0, tests may not).
    umask_ = umask(0);
    umask(umask_);
  }

  Result<void> Entry(struct archive* a, struct archive_entry* e, ExtractResult* res) {
    const char* raw = archive_entry_pathname(e);
    if (!raw) return Fail(ErrorKind::kInvalidArgument, "tar entry without a name");
    std::string name = raw;
    if (name.size() > opts_.limits.max_path_length)
      return Fail(ErrorKind::kInvalidArgument, "tar entry name longer than %llu bytes",
                  static_cast<unsigned long long>(opts_.limits.max_path_length));
    auto comps = CleanPath(name);
    if (comps.empty()) {
      // The root itself ("./"): take its metadata.
      if (archive_entry_filetype(e) != AE_IFDIR || archive_entry_hardlink(e))
        return Fail(ErrorKind::kInvalidArgument,
                    "tar entry %s names the layer root and is not a directory", name.c_str());
      dirs_.push_back({".", e_clone(e)});
      return Ok();
    }
    std::string base = comps.back();
    std::string parent_path = JoinPath(comps, comps.size() - 1);
    // Entries come grouped by directory: the last parent is kept open. Any removal may change
    // what a path names, so it forgets it (the fd, a directory resolved inside the root, stays
    // inside the root whatever happens to its path).
    if (parent_path != cached_parent_path_ || !cached_parent_) {
      cached_parent_.reset();
      MOAT_ASSIGN_OR_RETURN(cached_parent_, OpenParent(root_fd_, comps, comps.size() - 1));
      cached_parent_path_ = parent_path;
    }
    const UniqueFd& parent = cached_parent_;

    // OCI whiteouts -> overlay's representation.
    if (StartsWith(base, ".wh.")) {
      if (base == ".wh..wh..opq") {
        MOAT_ASSIGN_OR_RETURN(UniqueFd d, sys::openat2(root_fd_, parent_path,
                                                       O_RDONLY | O_DIRECTORY, 0, kResolve));
        OpaqueBroker direct;
        OpaqueBroker* broker = opts_.broker ? opts_.broker : &direct;
        return broker->MarkOpaque(d.get(), opts_.xattr_namespace)
            .Context("opaque dir %s", name.c_str());
      }
      std::string target = base.substr(4);
      if (target.empty() || target == "." || target == "..")
        return Fail(ErrorKind::kInvalidArgument, "invalid whiteout %s", name.c_str());
      UniqueFd dir = std::move(cached_parent_);
      removed_ = true;
      MOAT_TRY(RemoveAt(dir.get(), target, &removed_inodes_));
      return sys::mknodat(dir.get(), target, S_IFCHR | 0, makedev(0, 0))
          .Context("whiteout %s", name.c_str());
    }

    mode_t type = archive_entry_filetype(e);
    const char* hardlink = archive_entry_hardlink(e);
    auto existing = sys::fstatat(parent.get(), base, AT_SYMLINK_NOFOLLOW);
    if (existing) {
      bool keep = S_ISDIR(existing->st_mode) && type == AE_IFDIR && !hardlink;
      if (!keep) {
        removed_ = true;
        MOAT_TRY(RemoveAt(parent.get(), base, &removed_inodes_));
        cached_parent_path_.clear();  // forgotten after this entry
      }
    }
    uid_t uid = static_cast<uid_t>(archive_entry_uid(e));
    gid_t gid = static_cast<gid_t>(archive_entry_gid(e));
    bool chown = opts_.ownership == Ownership::kKeep;
    mode_t perm = archive_entry_perm(e) & 07777;
    timespec2 ts = Times(e);

    if (hardlink) {
      auto tcomps = CleanPath(hardlink);
      if (tcomps.empty())
        return Fail(ErrorKind::kInvalidArgument, "hardlink %s to the root", name.c_str());
      MOAT_ASSIGN_OR_RETURN(UniqueFd tparent, OpenParent(root_fd_, tcomps, tcomps.size() - 1));
      // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself, which is inside.
      return sys::linkat(tparent.get(), tcomps.back(), parent.get(), base, 0)
          .Context("hardlink %s", name.c_str());
    }
    switch (type) {
      case AE_IFDIR: {
        if (!existing) MOAT_TRY(sys::mkdirat(parent.get(), base, 0700));
        MOAT_ASSIGN_OR_RETURN(UniqueFd d, sys::openat(parent.get(), base,
                                                      O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
        if (chown) MOAT_TRY(sys::fchown(d.get(), uid, gid));
        MOAT_TRY(sys::fchmod(d.get(), perm));
        MOAT_TRY(ApplyXattrs(d.get(), e, res));
        // mtimes of directories are set at the end: creating children changes them.
        dirs_.push_back({JoinPath(comps, comps.size()), e_clone(e)});
        return Ok();
      }
      case AE_IFREG: {
        // Created with its final permissions (the store is 0700, nobody else can look in):
        // a chmod is needed only for setuid/setgid/sticky bits (fchown clears the first two)
        // or bits the umask would drop.
        bool need_chmod = (perm & 07000) != 0 || (perm & umask_) != 0;
        MOAT_ASSIGN_OR_RETURN(UniqueFd f, sys::openat(parent.get(), base,
                                                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW,
                                                      need_chmod ? 0600 : perm));
        const void* buf;
        size_t size;
        la_int64_t offset;
        la_int64_t end = 0;
        for (;;) {
          int rc = archive_read_data_block(a, &buf, &size, &offset);
          if (rc == ARCHIVE_EOF) break;
          if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
            return Fail(ErrorKind::kInvalidArgument, "read %s: %s", name.c_str(),
                        archive_error_string(a));
          MOAT_TRY(sys::pwrite(f.get(), buf, size, offset));
          end = std::max<la_int64_t>(end, offset + static_cast<la_int64_t>(size));
        }
        la_int64_t total = archive_entry_size(e);
        // Sparse files may end in a hole: the size comes from the header.
        if (end != total) MOAT_TRY(sys::ftruncate(f.get(), total));
        res->size += static_cast<uint64_t>(total);
        if (opts_.tar_split_fd >= 0 && total > 0) {
          MOAT_ASSIGN_OR_RETURN(struct stat st, sys::fstat(f.get()));
          std::string rel = comps[0];
          for (size_t i = 1; i < comps.size(); ++i) rel += "/" + comps[i];
          files_.push_back({std::move(rel), st.st_dev, st.st_ino, static_cast<uint64_t>(total)});
        }
        if (chown) MOAT_TRY(sys::fchown(f.get(), uid, gid));
        if (need_chmod) MOAT_TRY(sys::fchmod(f.get(), perm));  // after fchown, which clears setuid
        MOAT_TRY(ApplyXattrs(f.get(), e, res));
        return sys::futimens(f.get(), ts.t);
      }
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        if (!target) return Fail(ErrorKind::kInvalidArgument, "symlink %s without target",
                                 name.c_str());
        MOAT_TRY(sys::symlinkat(target, parent.get(), base));
        if (chown) MOAT_TRY(sys::fchownat(parent.get(), base, uid, gid, AT_SYMLINK_NOFOLLOW));
        return sys::utimensat(parent.get(), base, ts.t, AT_SYMLINK_NOFOLLOW);
      }
      case AE_IFCHR:
      case AE_IFBLK:
      case AE_IFIFO: {
        if (type != AE_IFIFO && opts_.devices == DevicePolicy::kRefuse)
          return Fail(ErrorKind::kInvalidArgument,
                      "device node %s (%s %u:%u) refused: image layers may not contain devices",
                      name.c_str(), type == AE_IFCHR ? "char" : "block",
                      static_cast<unsigned>(archive_entry_rdevmajor(e)),
                      static_cast<unsigned>(archive_entry_rdevminor(e)));
        dev_t dev = makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
        MOAT_TRY(sys::mknodat(parent.get(), base, type | 0600, type == AE_IFIFO ? 0 : dev)
                     .Context("device %s", name.c_str()));
        if (chown) MOAT_TRY(sys::fchownat(parent.get(), base, uid, gid, AT_SYMLINK_NOFOLLOW));
        MOAT_TRY(sys::fchmodat(parent.get(), base, perm));
        return sys::utimensat(parent.get(), base, ts.t, AT_SYMLINK_NOFOLLOW);
      }
      default:
        return Fail(ErrorKind::kInvalidArgument, "unsupported tar entry type %o for %s",
                    static_cast<unsigned>(type), name.c_str());
    }
  }

  // Directory mtimes, deepest first.
  Result<void> Finish() {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      auto d = sys::openat2(root_fd_, it->first, O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0,
                            kResolve);
      if (!d) continue;  // replaced by a later entry
      timespec2 ts = Times(it->second);
      MOAT_TRY(sys::futimens(d->get(), ts.t));
    }
    return Ok();
  }

  ~Extractor() {
    for (auto& d : dirs_) archive_entry_free(d.second);
  }

  // Ends the tar-split record: the files the recorder saw must be those created, in order,
  // and each must still be where it was made (a later entry of the layer may have replaced
  // it, or a directory or symlink on its path). Otherwise the record is not written, and says
  // why. A file whose inode lost a name to a removal is taken as gone (its inode number may
  // since belong to another file); any other keeps its inode allocated, so finding that inode
  // at its path proves it is still the file made.
  void FinishTarSplit(TarSplitRecorder* rec, ExtractResult* res) {
    auto no = [&](std::string why) { res->tar_split_why = std::move(why); };
    if (!rec->usable()) return no(rec->why_not());
    const auto& sizes = rec->file_sizes();
    if (sizes.size() != files_.size())
      return no(StrFormat("%zu files in the stream, %zu extracted", sizes.size(), files_.size()));
    std::vector<std::string> paths;
    paths.reserve(files_.size());
    for (size_t i = 0; i < files_.size(); ++i) {
      const FileMade& f = files_[i];
      if (sizes[i] != f.size) return no("file " + f.path + ": sizes differ");
      if (removed_inodes_.count(f.ino))
        return no("file " + f.path + " was replaced later in the layer");
      if (removed_) {
        auto fd = sys::openat2(root_fd_, f.path, O_PATH | O_NOFOLLOW, 0, kResolve);
        auto st = fd ? sys::fstat(fd->get()) : Result<struct stat>(Fail(std::move(fd).error()));
        if (!st || !S_ISREG(st->st_mode) || st->st_dev != f.dev || st->st_ino != f.ino)
          return no("file " + f.path + " was replaced later in the layer");
      }
      paths.push_back(f.path);
    }
    if (auto r = rec->Finish(paths); !r) return no(r.error().message);
    res->tar_split = true;
  }

 private:
  static struct archive_entry* e_clone(struct archive_entry* e) { return archive_entry_clone(e); }
  int root_fd_;
  const ExtractOptions& opts_;
  mode_t umask_ = 022;
  std::string cached_parent_path_;
  UniqueFd cached_parent_;
  std::vector<std::pair<std::string, struct archive_entry*>> dirs_;
  // For the tar-split record: regular files with content, in the order they were made, and
  // whether any entry removed something (then they are checked to be still in place).
  struct FileMade {
    std::string path;
    dev_t dev;
    ino_t ino;
    uint64_t size;
  };
  std::vector<FileMade> files_;
  bool removed_ = false;
  std::set<ino_t> removed_inodes_;
};

std::string JsonEscape(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
    } else if (c < 0x20) {
      o += StrFormat("\\u%04x", c);
    } else {
      o += static_cast<char>(c);
    }
  }
  return o;
}

}  // namespace

Result<ExtractResult> ExtractLayer(int in_fd, int root_fd, const ExtractOptions& options) {
  // Wakes the producer thread if the parser fails while it waits for input.
  MOAT_ASSIGN_OR_RETURN(UniqueFd cancel, sys::eventfd(0, 0));
  std::optional<TarSplitRecorder> recorder;
  if (options.tar_split_fd >= 0) recorder.emplace(options.tar_split_fd);
  Source src(in_fd, cancel.get(), options.limits, recorder ? &*recorder : nullptr);
  MOAT_TRY(src.Start());
  struct archive* a = archive_read_new();
  MOAT_CHECK(a != nullptr);
  archive_read_support_format_tar(a);
  archive_read_support_format_empty(a);
  ExtractResult res;
  Extractor ex(root_fd, options);
  auto fail_ar = [&](const char* what) -> Unexpected {
    Error err = src.failed() ? src.error()
                             : MakeError(ErrorKind::kInvalidArgument, "%s: %s", what,
                                         archive_error_string(a) ? archive_error_string(a) : "?");
    archive_read_free(a);
    return Fail(std::move(err));
  };
  if (archive_read_open(a, &src, nullptr, ReadCallback, nullptr) != ARCHIVE_OK)
    return fail_ar("open tar");
  for (;;) {
    struct archive_entry* e;
    int rc = archive_read_next_header(a, &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return fail_ar("read tar header");
    if (++res.entries > options.limits.max_entries) {
      archive_read_free(a);
      return Fail(ErrorKind::kInvalidArgument, "layer has more than %llu entries",
                  static_cast<unsigned long long>(options.limits.max_entries));
    }
    auto r = ex.Entry(a, e, &res);
    if (!r) {
      Error err = src.failed() ? src.error() : std::move(r).error();
      archive_read_free(a);
      return Fail(std::move(err));
    }
  }
  archive_read_free(a);
  // The diff id covers the whole uncompressed stream, including padding after the end-of-tar
  // blocks that libarchive did not consume.
  const void* chunk;
  for (;;) {
    ssize_t n = src.ReadChunk(&chunk);
    if (n < 0) return Fail(src.error());
    if (n == 0) break;
  }
  MOAT_TRY(ex.Finish());
  res.diff_id = "sha256:" + src.HexDigest();  // the reader thread has stopped
  res.tar_bytes = src.total();
  if (recorder) ex.FinishTarSplit(&*recorder, &res);
  return res;
}

std::string FormatExtractResult(const ExtractResult& r, const ConfineReport* confinement) {
  std::string out = StrFormat("{\"diff_id\":\"%s\",\"size\":%llu,\"entries\":%llu",
                              r.diff_id.c_str(), static_cast<unsigned long long>(r.size),
                              static_cast<unsigned long long>(r.entries));
  if (r.xattrs_skipped)
    out += StrFormat(",\"xattrs_skipped\":%llu",
                     static_cast<unsigned long long>(r.xattrs_skipped));
  if (r.tar_split) out += ",\"tar_split\":true";
  if (!r.tar_split && !r.tar_split_why.empty())
    out += ",\"tar_split\":false,\"tar_split_why\":\"" + JsonEscape(r.tar_split_why) + "\"";
  if (confinement) {
    std::string landlock = confinement->landlock_abi
                               ? StrFormat("abi %d", confinement->landlock_abi)
                               : std::string("unavailable");
    out += StrFormat(",\"confinement\":{\"namespaces\":%s,\"landlock\":\"%s\"}",
                     confinement->namespaces ? "true" : "false", landlock.c_str());
  }
  return out + "}\n";
}

std::string FormatExtractError(const std::string& message) {
  return "{\"error\":\"" + JsonEscape(message) + "\"}\n";
}

}  // namespace moat::image
