#include "base/sys/fs.h"

#include <dirent.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "base/sys/linux_compat.h"

namespace moat::sys {

Result<UniqueFd> open(const std::string& path, int flags, mode_t mode) {
  int fd;
  do fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return FailErrno("open %s", path.c_str());
  return UniqueFd(fd);
}

Result<UniqueFd> openat(int dirfd, const std::string& path, int flags, mode_t mode) {
  int fd;
  do fd = ::openat(dirfd, path.c_str(), flags | O_CLOEXEC, mode);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return FailErrno("open %s", path.c_str());
  return UniqueFd(fd);
}

Result<UniqueFd> openat2(int dirfd, const std::string& path, uint64_t flags, uint64_t mode,
                         uint64_t resolve) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.mode = mode;
  how.resolve = resolve;
  long fd;
  do fd = syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
  while (fd < 0 && (errno == EINTR || errno == EAGAIN));
  if (fd < 0) return FailErrno("openat2 %s", path.c_str());
  return UniqueFd(static_cast<int>(fd));
}

Result<void> mkdirat(int dirfd, const std::string& path, mode_t mode) {
  if (::mkdirat(dirfd, path.c_str(), mode) != 0) return FailErrno("mkdir %s", path.c_str());
  return Ok();
}

Result<void> mknodat(int dirfd, const std::string& path, mode_t mode, dev_t dev) {
  if (::mknodat(dirfd, path.c_str(), mode, dev) != 0) return FailErrno("mknod %s", path.c_str());
  return Ok();
}

Result<void> symlinkat(const std::string& target, int dirfd, const std::string& linkpath) {
  if (::symlinkat(target.c_str(), dirfd, linkpath.c_str()) != 0)
    return FailErrno("symlink %s -> %s", linkpath.c_str(), target.c_str());
  return Ok();
}

Result<void> unlinkat(int dirfd, const std::string& path, int flags) {
  if (::unlinkat(dirfd, path.c_str(), flags) != 0) return FailErrno("unlink %s", path.c_str());
  return Ok();
}

Result<void> renameat(int olddirfd, const std::string& oldpath, int newdirfd,
                      const std::string& newpath) {
  if (::renameat(olddirfd, oldpath.c_str(), newdirfd, newpath.c_str()) != 0)
    return FailErrno("rename %s to %s", oldpath.c_str(), newpath.c_str());
  return Ok();
}

Result<void> fchownat(int dirfd, const std::string& path, uid_t uid, gid_t gid, int flags) {
  if (::fchownat(dirfd, path.c_str(), uid, gid, flags) != 0)
    return FailErrno("chown %s", path.c_str());
  return Ok();
}

Result<void> fchmod(int fd, mode_t mode) {
  if (::fchmod(fd, mode) != 0) return FailErrno("fchmod");
  return Ok();
}

Result<void> fchdir(int fd) {
  if (::fchdir(fd) != 0) return FailErrno("fchdir");
  return Ok();
}

Result<void> chdir(const std::string& path) {
  if (::chdir(path.c_str()) != 0) return FailErrno("chdir %s", path.c_str());
  return Ok();
}

Result<void> mkfifoat(int dirfd, const std::string& path, mode_t mode) {
  if (::mkfifoat(dirfd, path.c_str(), mode) != 0) return FailErrno("mkfifo %s", path.c_str());
  return Ok();
}

Result<struct stat> fstatat(int dirfd, const std::string& path, int flags) {
  struct stat st {};
  if (::fstatat(dirfd, path.c_str(), &st, flags) != 0) return FailErrno("stat %s", path.c_str());
  return st;
}

Result<struct stat> fstat(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return FailErrno("fstat");
  return st;
}

Result<std::string> readlinkat(int dirfd, const std::string& path) {
  char buf[4096];
  ssize_t n = ::readlinkat(dirfd, path.c_str(), buf, sizeof buf);
  if (n < 0) return FailErrno("readlink %s", path.c_str());
  return std::string(buf, static_cast<size_t>(n));
}

Result<void> fsync(int fd) {
  if (::fsync(fd) != 0) return FailErrno("fsync");
  return Ok();
}

namespace {
Result<std::string> ReadAll(int fd, const std::string& name) {
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FailErrno("read %s", name.c_str());
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}
}  // namespace

Result<std::string> ReadFile(const std::string& path) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd, open(path, O_RDONLY));
  return ReadAll(fd.get(), path);
}

Result<std::string> ReadFileAt(int dirfd, const std::string& path) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd, openat(dirfd, path, O_RDONLY));
  return ReadAll(fd.get(), path);
}

Result<void> WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FailErrno("write");
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Ok();
}

Result<void> WriteFileAt(int dirfd, const std::string& path, std::string_view data) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd, openat(dirfd, path, O_WRONLY));
  // One write(2): cgroupfs and procfs take the value from a single call.
  ssize_t n;
  do n = ::write(fd.get(), data.data(), data.size());
  while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno("write %s", path.c_str());
  if (static_cast<size_t>(n) != data.size())
    return Fail(ErrorKind::kInternal, "write %s: short write", path.c_str());
  return Ok();
}

Result<void> WriteFile(const std::string& path, std::string_view data) {
  return WriteFileAt(AT_FDCWD, path, data);
}

Result<void> WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode,
                             Durability durability) {
  const bool durable = durability == Durability::kDurable;
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string tmp = StrFormat("%s.tmp-%d", path.c_str(), getpid());
  {
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode));
    auto w = WriteAll(fd.get(), data);
    if (w && durable) w = fsync(fd.get());
    if (!w) {
      ::unlink(tmp.c_str());
      return std::move(w).Context("write %s", tmp.c_str());
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Fail(Error::FromErrno(err, "rename " + tmp + " to " + path));
  }
  if (!durable) return Ok();
  MOAT_ASSIGN_OR_RETURN(UniqueFd dfd, open(dir, O_RDONLY | O_DIRECTORY));
  return fsync(dfd.get());
}

Result<void> MkdirAll(const std::string& path, mode_t mode) {
  // Walk the prefixes "/a", "/a/b", ... of `path` by position.
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    std::string prefix = path.substr(0, pos);
    if (prefix.empty() || prefix.back() == '/') continue;
    if (::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST)
      return FailErrno("mkdir %s", prefix.c_str());
  }
  return Ok();
}

namespace {
Result<void> RemoveTreeAt(int dirfd, const std::string& name, dev_t dev) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd, openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  int dup_fd = ::dup(fd.get());
  if (dup_fd < 0) return FailErrno("dup");
  DIR* d = ::fdopendir(dup_fd);
  if (!d) {
    ::close(dup_fd);
    return FailErrno("opendir %s", name.c_str());
  }
  std::vector<std::pair<std::string, bool>> entries;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    entries.emplace_back(n, e->d_type == DT_DIR);
  }
  ::closedir(d);
  for (auto& [n, is_dir] : entries) {
    if (is_dir) {
      auto st = fstatat(fd.get(), n, AT_SYMLINK_NOFOLLOW);
      if (!st) return Fail(std::move(st).error());
      if (st->st_dev != dev)
        return Fail(ErrorKind::kConflict, "refusing to remove %s: a mount point", n.c_str());
      MOAT_TRY(RemoveTreeAt(fd.get(), n, dev));
    } else {
      MOAT_TRY(unlinkat(fd.get(), n, 0));
    }
  }
  return unlinkat(dirfd, name, AT_REMOVEDIR);
}
}  // namespace

Result<void> RemoveAll(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Ok();
    return FailErrno("stat %s", path.c_str());
  }
  if (!S_ISDIR(st.st_mode)) return unlinkat(AT_FDCWD, path, 0);
  return RemoveTreeAt(AT_FDCWD, path, st.st_dev);
}

}  // namespace moat::sys
