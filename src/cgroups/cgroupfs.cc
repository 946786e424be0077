#include "cgroups/cgroupfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>
#include <utility>

#include "base/strings.h"
#include "base/sys/fs.h"

namespace moat::cgroups {

namespace {

constexpr int kDirFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;

std::string ParentPath(const std::vector<std::string>& parts, size_t n) {
  if (n == 0) return "/";
  std::vector<std::string> head(parts.begin(), parts.begin() + static_cast<ptrdiff_t>(n));
  return "/" + StrJoin(head, "/");
}

}  // namespace

std::vector<std::string> PathComponents(const std::string& path) {
  std::vector<std::string> out;
  for (auto& p : StrSplit(path, '/'))
    if (!p.empty()) out.push_back(std::move(p));
  return out;
}

std::string JoinCgroupPath(const std::string& base, const std::string& rel) {
  std::vector<std::string> parts = PathComponents(base);
  for (auto& p : PathComponents(rel)) parts.push_back(std::move(p));
  return "/" + StrJoin(parts, "/");
}

Result<UniqueFd> OpenCgroupDir(const std::string& mount, const std::string& path) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(mount, O_RDONLY | O_DIRECTORY));
  for (const auto& part : PathComponents(path)) {
    auto next = sys::openat(fd.get(), part, kDirFlags);
    if (!next)
      return Fail(std::move(next).Context("open cgroup %s%s", mount.c_str(), path.c_str()).error());
    fd = std::move(*next);
  }
  return fd;
}

Result<void> WriteCgroupFile(int dirfd, const std::string& file, const std::string& value) {
  auto r = sys::WriteFileAt(dirfd, file, value);
  if (r) return Ok();
  Error e = std::move(r).error();
  if (e.sys_errno == 0) return Fail(std::move(e));
  // WriteFileAt says "write <file>: <errno text>" or "open <file>: ..."; say which value failed,
  // which is what a user needs to fix the spec.
  bool open_failed = StartsWith(e.message, "open ");
  Error out = Error::FromErrno(
      e.sys_errno, open_failed ? StrFormat("%s: open for write \"%s\"", file.c_str(), value.c_str())
                               : StrFormat("%s: write \"%s\"", file.c_str(), value.c_str()));
  return Fail(std::move(out));
}

Result<std::optional<std::string>> ReadOptionalFile(int dirfd, const std::string& file) {
  auto r = sys::ReadFileAt(dirfd, file);
  if (r) return std::optional<std::string>(std::move(*r));
  if (r.error().sys_errno == ENOENT) return std::optional<std::string>();
  return Fail(std::move(r).error());
}

Result<std::vector<std::string>> ListEntries(int dirfd, EntryType type) {
  // readdir needs its own fd: fdopendir takes ownership of the one it is given.
  MOAT_ASSIGN_OR_RETURN(UniqueFd own, sys::openat(dirfd, ".", O_RDONLY | O_DIRECTORY));
  DIR* d = ::fdopendir(own.get());
  if (!d) return FailErrno("opendir");
  (void)own.release();  // now owned by `d`
  std::vector<std::string> out;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    unsigned char t = e->d_type;
    if (t == DT_UNKNOWN) {
      auto st = sys::fstatat(::dirfd(d), name, AT_SYMLINK_NOFOLLOW);
      if (!st) continue;
      t = S_ISDIR(st->st_mode) ? DT_DIR : (S_ISREG(st->st_mode) ? DT_REG : DT_UNKNOWN);
    }
    if ((type == EntryType::kDirectories && t == DT_DIR) ||
        (type == EntryType::kFiles && t == DT_REG))
      out.push_back(std::move(name));
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return Fail(Error::FromErrno(err, "readdir"));
  std::sort(out.begin(), out.end());
  return out;
}

Result<void> CollectPids(int dirfd, std::vector<pid_t>* out) {
  MOAT_ASSIGN_OR_RETURN(auto procs, ReadOptionalFile(dirfd, "cgroup.procs"));
  if (procs) {
    for (const auto& line : StrSplit(*procs, '\n')) {
      auto v = ParseInt64(TrimWhitespace(line));
      if (v && *v > 0) out->push_back(static_cast<pid_t>(*v));
    }
  }
  MOAT_ASSIGN_OR_RETURN(auto children, ListEntries(dirfd, EntryType::kDirectories));
  for (const auto& child : children) {
    auto fd = sys::openat(dirfd, child, kDirFlags);
    if (!fd && fd.error().sys_errno == ENOENT) continue;  // removed meanwhile
    if (!fd) return Fail(std::move(fd).error());
    MOAT_TRY(std::move(CollectPids(fd->get(), out)).Context("%s", child.c_str()));
  }
  return Ok();
}

namespace {

// One attempt of CreateCgroupPath.
Result<void> CreateCgroupPathOnce(const std::string& mount, const std::vector<std::string>& parts,
                                  const BeforeMkdirFn& before_mkdir,
                                  const AfterLevelFn& after_level) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(mount, O_RDONLY | O_DIRECTORY));
  // Levels created here, so that a failure leaves the tree as it was.
  std::vector<std::string> created;
  auto rollback = [&] {
    for (auto it = created.rbegin(); it != created.rend(); ++it)
      (void)sys::unlinkat(AT_FDCWD, mount + *it, AT_REMOVEDIR);
  };
  for (size_t i = 0; i < parts.size(); ++i) {
    std::string parent_path = ParentPath(parts, i);
    std::string level_path = ParentPath(parts, i + 1);
    Result<void> step = before_mkdir(fd.get(), parent_path, i == 0);
    if (step) {
      auto made = sys::mkdirat(fd.get(), parts[i], 0755);
      if (made) {
        created.push_back(level_path);
      } else if (made.error().sys_errno != EEXIST) {
        step = std::move(made).Context("create cgroup %s%s", mount.c_str(), level_path.c_str());
      }
    }
    Result<UniqueFd> next = step ? sys::openat(fd.get(), parts[i], kDirFlags)
                                 : Result<UniqueFd>(Fail(std::move(step).error()));
    if (next) step = after_level(next->get(), fd.get());
    if (!next || !step) {
      Error e = next ? std::move(step).error() : std::move(next).error();
      rollback();
      return Fail(std::move(e));
    }
    fd = std::move(*next);
  }
  return Ok();
}

}  // namespace

Result<void> CreateCgroupPath(const std::string& mount, const std::string& path,
                              const BeforeMkdirFn& before_mkdir, const AfterLevelFn& after_level) {
  std::vector<std::string> parts = PathComponents(path);
  // A shared parent that was empty may be removed by someone else between our mkdir (EEXIST)
  // and the next level's (ENOENT), or its open: make the path again from the top.
  for (int attempt = 0;; ++attempt) {
    auto r = CreateCgroupPathOnce(mount, parts, before_mkdir, after_level);
    if (r || r.error().sys_errno != ENOENT || attempt == 3) return r;
  }
}

Result<void> RemoveCgroupTree(const std::string& mount, const std::string& path,
                              Clock::time_point deadline) {
  std::vector<std::string> parts = PathComponents(path);
  if (parts.empty())
    return Fail(ErrorKind::kInvalidArgument, "refusing to remove the root of %s", mount.c_str());
  // The common case in one syscall: a container's cgroup without children whose processes are
  // gone. cgroupfs has no symlinks, so the path names just that cgroup (".." is not taken
  // here). Anything else (EBUSY: children, or tasks still exiting) takes the walk below.
  if (std::none_of(parts.begin(), parts.end(),
                   [](const std::string& p) { return p == ".." || p == "."; })) {
    auto removed = sys::unlinkat(AT_FDCWD, mount + ParentPath(parts, parts.size()), AT_REMOVEDIR);
    if (removed || removed.error().sys_errno == ENOENT) return Ok();
  }
  std::string leaf = parts.back();
  parts.pop_back();
  auto parent = OpenCgroupDir(mount, ParentPath(parts, parts.size()));
  if (!parent && parent.error().sys_errno == ENOENT) return Ok();
  if (!parent) return Fail(std::move(parent).error());

  // Depth-first: a cgroup can only be removed once it has no children.
  std::function<Result<void>(int, const std::string&, const std::string&)> remove =
      [&](int parent_fd, const std::string& name, const std::string& shown) -> Result<void> {
    auto fd = sys::openat(parent_fd, name, kDirFlags);
    if (!fd && fd.error().sys_errno == ENOENT) return Ok();
    if (!fd) return Fail(std::move(fd).error());
    MOAT_ASSIGN_OR_RETURN(auto children, ListEntries(fd->get(), EntryType::kDirectories));
    for (const auto& child : children) MOAT_TRY(remove(fd->get(), child, shown + "/" + child));
    fd->reset();
    for (int attempt = 0;; ++attempt) {
      auto removed = sys::unlinkat(parent_fd, name, AT_REMOVEDIR);
      if (removed) return Ok();
      int err = removed.error().sys_errno;
      if (err == ENOENT) return Ok();
      // EBUSY: tasks still in it (a killed process leaves its cgroup only once it is reaped or
      // fully exited), or a v2 cgroup that is still being released.
      if (err != EBUSY || Clock::now() >= deadline)
        return Fail(Error::FromErrno(err, "remove cgroup " + shown));
      PollSleep(attempt);
    }
  };
  return remove(parent->get(), leaf, mount + path);
}

void PollSleep(int attempt) {
  int ms = 1 << std::min(attempt, 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

Result<void> ReadFilesInto(int dirfd, const std::vector<std::string>& files,
                           std::map<std::string, std::string>* out) {
  for (const auto& f : files) {
    MOAT_ASSIGN_OR_RETURN(auto content, ReadOptionalFile(dirfd, f));
    if (content) (*out)[f] = std::string(TrimWhitespace(*content));
  }
  return Ok();
}

}  // namespace moat::cgroups
