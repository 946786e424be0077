// The container's file system from outside: archive (docker cp), export, changes, commit.
//
// Every path a client names is resolved inside the container's root with
// openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) on a directory fd of the mounted rootfs;
// below that, the tar writer only takes single components relative to directory fds, with
// O_NOFOLLOW. So a symlink in the container (say /x -> /etc/shadow) resolves to the
// container's file, never the host's.
//
// Lifecycle (the rootfs must be mounted while it is read):
// - running (or paused) container: the rootfs is mounted; the operation takes the container's
//   op_mu only to open a directory fd of the rootfs. That fd keeps the overlay alive even if the
//   container exits meanwhile (OnExit detaches the mount with MNT_DETACH).
// - stopped container: the operation holds op_mu for its whole length (so the container cannot
//   be started, removed or committed meanwhile), mounts the rootfs with EnsureRootfs, and
//   unmounts it at the end. For streams (archive get, export) that is the stream thread:
//   std::mutex must be unlocked by the thread that locked it, so the thread takes op_mu itself
//   and reports the opening's result back through a promise. A reader that stops reading
//   keeps the container from starting until it closes the stream (EPIPE ends the thread).
// The overlay in the host's mount namespace holds no volume or bind mount of the container:
// those are not part of cp/export (a difference from Docker).

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "base/log.h"
#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/io.h"
#include "base/sys/linux_compat.h"
#include "daemon/core/container_fs_util.h"
#include "daemon/core/container_internal.h"

namespace moat::daemon::core {

namespace {

constexpr uint64_t kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

Error NotFoundIn(const std::string& path, const std::string& id) {
  return MakeError(ErrorKind::kNotFound, "Could not find the file %s in container %s", path.c_str(),
                   id.c_str());
}

// The object a container path names: a directory fd plus a name in it (name "" : the
// directory itself), and its stat JSON.
struct Resolved {
  UniqueFd dir;
  std::string name;
  std::string tar_name;
  Json stat;
};

Result<Resolved> ResolveInRoot(int root_fd, const std::string& raw, const std::string& id) {
  MOAT_ASSIGN_OR_RETURN(fs::ContainerPath p, fs::ParseContainerPath(raw));
  Resolved r;
  r.tar_name = p.tar_name;
  auto not_found = [&](Error e) {
    if (e.sys_errno == ENOENT || e.sys_errno == ENOTDIR) return NotFoundIn(raw, id);
    return e;
  };
  if (p.base.empty() || p.follow_last) {
    auto d = sys::openat2(root_fd, p.clean, O_RDONLY | O_DIRECTORY, 0, kInRoot);
    if (!d) return Fail(not_found(std::move(d).error()));
    r.dir = std::move(*d);
    MOAT_ASSIGN_OR_RETURN(struct stat st, sys::fstat(r.dir.get()));
    r.stat = fs::PathStatJson(p.base.empty() ? "/" : p.base, st, "");
    return r;
  }
  auto d = sys::openat2(root_fd, p.parent, O_RDONLY | O_DIRECTORY, 0, kInRoot);
  if (!d) return Fail(not_found(std::move(d).error()));
  r.dir = std::move(*d);
  r.name = p.base;
  auto st = sys::fstatat(r.dir.get(), r.name, AT_SYMLINK_NOFOLLOW);
  if (!st) return Fail(not_found(std::move(st).error()));
  std::string link;
  if (S_ISLNK(st->st_mode)) {
    MOAT_ASSIGN_OR_RETURN(std::string target, sys::readlinkat(r.dir.get(), r.name));
    link = fs::LinkTargetPath(p.clean, target);
  }
  r.stat = fs::PathStatJson(p.base, *st, link);
  return r;
}

}  // namespace

// Holds what an operation on the container's root needs: op_mu for a stopped container, the
// rootfs fd, and whether to unmount at the end. Constructed and destroyed on the same thread.
class Containers::RootHold {
 public:
  RootHold(Containers* self, std::shared_ptr<Container> c) : self_(self), c_(std::move(c)) {}
  ~RootHold() { Release(); }

  Result<void> Acquire() {
    op_ = std::unique_lock(c_->op_mu);
    {
      std::lock_guard lock(self_->mu_);
      if (c_->removed) return Fail(ErrorKind::kNotFound, "No such container: %s", c_->id.c_str());
    }
    MOAT_ASSIGN_OR_RETURN(std::string rootfs, self_->EnsureRootfs(c_, &mounted_here_));
    MOAT_ASSIGN_OR_RETURN(root_, sys::open(rootfs, O_RDONLY | O_DIRECTORY));
    if (!mounted_here_) op_.unlock();  // running: the fd keeps the mount alive
    return Ok();
  }

  void Release() {
    root_.reset();
    if (mounted_here_) {
      self_->UnmountRootfs(*c_);
      std::lock_guard lock(self_->mu_);
      c_->rootfs_mounted = false;
      mounted_here_ = false;
    }
    if (op_.owns_lock()) op_.unlock();
  }

  int root() const { return root_.get(); }

 private:
  Containers* self_;
  std::shared_ptr<Container> c_;
  std::unique_lock<std::mutex> op_;
  bool mounted_here_ = false;
  UniqueFd root_;
};

Result<Json> Containers::ArchiveStat(const std::string& ref, const std::string& path) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  RootHold hold(this, c);
  MOAT_TRY(hold.Acquire());
  MOAT_ASSIGN_OR_RETURN(Resolved r, ResolveInRoot(hold.root(), path, c->id));
  return r.stat;
}

Result<StreamResult> Containers::StreamTree(const std::shared_ptr<Container>& c,
                                            const std::string& path, Json* stat) {
  MOAT_ASSIGN_OR_RETURN(auto pipe, sys::pipe2(0));
  auto ready = std::make_shared<std::promise<Result<Json>>>();
  auto fut = ready->get_future();
  auto w = std::make_shared<UniqueFd>(std::move(pipe.second));
  bool whole = path.empty();
  std::thread([this, c, path, whole, ready, w] {
    signal(SIGPIPE, SIG_IGN);
    RootHold hold(this, c);
    if (auto a = hold.Acquire(); !a) {
      ready->set_value(Fail(std::move(a).error()));
      return;
    }
    Resolved r;
    if (!whole) {
      auto got = ResolveInRoot(hold.root(), path, c->id);
      if (!got) {
        ready->set_value(Fail(std::move(got).error()));
        return;
      }
      r = std::move(*got);
    }
    ready->set_value(whole ? Json::object() : r.stat);
    fs::TarStream tar(w->get(), fs::Whiteouts::kAsIs);
    Result<void> done;
    if (whole) {
      done = tar.AddDir(hold.root(), "");
    } else if (r.name.empty()) {
      done = tar.AddDir(r.dir.get(), r.tar_name);
    } else {
      done = tar.AddAt(r.dir.get(), r.name, r.tar_name);
    }
    if (done) done = tar.Finish();
    // The reader closing early (EPIPE) is the client's choice, not worth a warning.
    if (!done && done.error().sys_errno != EPIPE)
      MOAT_LOG(kWarning, "container %s: tar of %s: %s", c->id.c_str(),
               whole ? "the root file system" : path.c_str(), done.error().message.c_str());
    w->reset();
  }).detach();
  auto opened = fut.get();
  if (!opened) return Fail(std::move(opened).error());
  if (stat) *stat = std::move(*opened);
  StreamResult s;
  s.fd = std::move(pipe.first);
  return s;
}

Result<StreamResult> Containers::ArchiveGet(const std::string& ref, const std::string& path,
                                            Json* stat) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  if (path.empty()) return Fail(ErrorKind::kInvalidArgument, "path is required");
  return StreamTree(c, path, stat);
}

Result<StreamResult> Containers::Export(const std::string& ref) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  MOAT_ASSIGN_OR_RETURN(StreamResult s, StreamTree(c, "", nullptr));
  Emit(*c, "export");
  return s;
}

Result<void> Containers::ArchivePut(const std::string& ref, const std::string& path, int tar_fd,
                                    bool no_overwrite_dir_non_dir, bool copy_uid_gid) {
  // TODO(#3): no_overwrite_dir_non_dir needs support in moat-extract (which replaces a
  // directory by a non-directory and back like a layer does); the core never parses the tar.
  (void)no_overwrite_dir_non_dir;
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  {
    std::lock_guard lock(mu_);
    if (c->spec.read_only_rootfs)
      return Fail(ErrorKind::kPermissionDenied, "container rootfs is marked read-only");
  }
  MOAT_ASSIGN_OR_RETURN(fs::ContainerPath p, fs::ParseContainerPath(path));
  RootHold hold(this, c);
  MOAT_TRY(hold.Acquire());
  // The destination must be a directory, resolved inside the root; moat-extract gets its fd
  // and resolves every entry beneath it.
  auto dir = sys::openat2(hold.root(), p.clean, O_RDONLY | O_DIRECTORY, 0, kInRoot);
  if (!dir) {
    int err = dir.error().sys_errno;
    if (err == ENOENT) return Fail(NotFoundIn(path, c->id));
    if (err == ENOTDIR)
      return Fail(ErrorKind::kInvalidArgument, "extraction point is not a directory");
    return Fail(std::move(dir).error());
  }
  // Owned by the container's root as Docker does, or by the tar's uid/gid with copyUIDGID
  // (docker cp -a). Containers share the host's user ids (no user namespace by default), so the
  // tar's ids are written as they are.
  auto ownership = copy_uid_gid ? image::Store::CopyOwnership::kKeep : image::Store::CopyOwnership::kRoot;
  MOAT_TRY(store_->ExtractInto(tar_fd, dir->get(), ownership)
               .Context("copy into container %s", c->id.c_str()));
  return Ok();
}

Result<Json> Containers::Changes(const std::string& ref) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  std::string image_id;
  {
    std::lock_guard lock(mu_);
    image_id = c->image_id;
  }
  MOAT_ASSIGN_OR_RETURN(image::Image img, store_->Resolve(image_id));
  MOAT_ASSIGN_OR_RETURN(UniqueFd upper,
                        sys::open(DataDir(c->id) + "/upper", O_RDONLY | O_DIRECTORY));
  std::vector<UniqueFd> lowers;
  std::vector<int> lower_fds;
  for (auto it = img.layer_dirs.rbegin(); it != img.layer_dirs.rend(); ++it) {
    MOAT_ASSIGN_OR_RETURN(UniqueFd d, sys::open(*it, O_RDONLY | O_DIRECTORY));
    lower_fds.push_back(d.get());
    lowers.push_back(std::move(d));
  }
  MOAT_ASSIGN_OR_RETURN(auto changes, fs::ComputeChanges(upper.get(), lower_fds));
  Json out = Json::array();
  for (const auto& ch : changes) out.push_back({{"Path", ch.path}, {"Kind", ch.kind}});
  return out;
}

Result<Json> Containers::Commit(const std::string& ref, const Json& args) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  std::string repo, tag, comment, author;
  bool pause = true;
  std::vector<std::string> changes;
  MOAT_TRY(GetString(args, "repo", &repo, "repo"));
  MOAT_TRY(GetString(args, "tag", &tag, "tag"));
  MOAT_TRY(GetString(args, "comment", &comment, "comment"));
  MOAT_TRY(GetString(args, "author", &author, "author"));
  MOAT_TRY(GetBool(args, "pause", &pause, "pause"));
  MOAT_TRY(GetStringList(args, "changes", &changes, "changes"));
  std::optional<image::Reference> target;
  if (!repo.empty()) {
    MOAT_ASSIGN_OR_RETURN(target, image::ParseReference(tag.empty() ? repo : repo + ":" + tag));
    if (target->tag.empty())
      return Fail(ErrorKind::kInvalidArgument, "invalid reference format: commit needs a tag");
  } else if (!tag.empty()) {
    return Fail(ErrorKind::kInvalidArgument, "invalid reference format: tag without a repository");
  }
  privsep::ContainerSpec spec;
  std::string image_id, cmdline;
  {
    std::lock_guard lock(mu_);
    spec = c->spec;
    image_id = c->image_id;
    cmdline = StrJoin(c->args, " ");
  }
  MOAT_ASSIGN_OR_RETURN(image::Image img, store_->Resolve(image_id));
  Json image_config = nullptr;
  {
    MOAT_ASSIGN_OR_RETURN(Json raw, ParseJson(img.config_json));
    if (raw.is_object() && raw.contains("config")) image_config = raw["config"];
  }
  MOAT_ASSIGN_OR_RETURN(
      Json config,
      fs::CommitConfig(image_config, spec, args.value("config", Json::object()), changes));
  // Paused while its upper dir is read, as Docker does; unpaused whatever happens.
  bool paused_here = false;
  if (pause) {
    bool running;
    {
      std::lock_guard lock(mu_);
      running = c->status == "running";
    }
    if (running) {
      MOAT_TRY(Pause(c->id));
      paused_here = true;
    }
  }
  auto result = [&]() -> Result<image::Image> {
    // op_mu: the container is neither started nor removed while its upper dir is read.
    std::lock_guard op(c->op_mu);
    {
      std::lock_guard lock(mu_);
      if (c->removed) return Fail(ErrorKind::kNotFound, "No such container: %s", c->id.c_str());
    }
    MOAT_ASSIGN_OR_RETURN(UniqueFd upper,
                          sys::open(DataDir(c->id) + "/upper", O_RDONLY | O_DIRECTORY));
    MOAT_ASSIGN_OR_RETURN(auto pipe, sys::pipe2(0));
    Result<void> written;
    std::thread writer([&upper, &written, w = std::move(pipe.second)] {
      fs::TarStream tar(w.get(), fs::Whiteouts::kToOci);
      written = tar.AddDir(upper.get(), "");
      if (written) written = tar.Finish();
    });
    image::CommitOptions o;
    o.config_json = Dump(config);
    o.author = author;
    o.comment = comment;
    o.created_by = cmdline;
    auto committed = store_->CommitImage(img.id, pipe.first.get(), o, target);
    pipe.first.reset();  // a store that stopped early: the writer gets EPIPE
    writer.join();
    if (!committed) return committed;
    if (!written) {
      Error e = std::move(written).error();
      e.Prefix("tar of the container's changes");
      return Fail(std::move(e));
    }
    return committed;
  }();
  if (paused_here) {
    if (auto u = Unpause(c->id); !u)
      MOAT_LOG(kWarning, "container %s: unpause after commit: %s", c->id.c_str(),
               u.error().message.c_str());
  }
  if (!result) return Fail(std::move(result).error());
  Emit(*c, "commit",
       {{"comment", comment},
        {"imageID", result->id},
        {"imageRef", target ? target->String() : ""}});
  return Json{{"Id", result->id}};
}

}  // namespace moat::daemon::core
