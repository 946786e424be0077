#include "base/sys/fileops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

namespace moat::sys {

Result<void> linkat(int olddirfd, const std::string& oldpath, int newdirfd,
                    const std::string& newpath, int flags) {
  if (::linkat(olddirfd, oldpath.c_str(), newdirfd, newpath.c_str(), flags) != 0)
    return FailErrno("linkat %s to %s", oldpath.c_str(), newpath.c_str());
  return Ok();
}

Result<void> fsetxattr(int fd, const std::string& name, const void* value, size_t size) {
  if (::fsetxattr(fd, name.c_str(), value, size, 0) != 0)
    return FailErrno("fsetxattr %s", name.c_str());
  return Ok();
}

Result<void> utimensat(int dirfd, const std::string& path, const struct timespec times[2],
                       int flags) {
  if (::utimensat(dirfd, path.c_str(), times, flags) != 0)
    return FailErrno("utimensat %s", path.c_str());
  return Ok();
}

Result<void> futimens(int fd, const struct timespec times[2]) {
  if (::futimens(fd, times) != 0) return FailErrno("futimens fd %d", fd);
  return Ok();
}

Result<void> fchown(int fd, uid_t uid, gid_t gid) {
  if (::fchown(fd, uid, gid) != 0) return FailErrno("fchown fd %d to %u:%u", fd, uid, gid);
  return Ok();
}

Result<void> pwrite(int fd, const void* buf, size_t len, off_t offset) {
  const char* p = static_cast<const char*>(buf);
  while (len > 0) {
    ssize_t n = ::pwrite(fd, p, len, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FailErrno("pwrite fd %d", fd);
    p += n;
    len -= static_cast<size_t>(n);
    offset += n;
  }
  return Ok();
}

Result<void> ftruncate(int fd, off_t len) {
  if (::ftruncate(fd, len) != 0) return FailErrno("ftruncate fd %d", fd);
  return Ok();
}

Result<void> fchmodat(int dirfd, const std::string& path, mode_t mode) {
  if (::fchmodat(dirfd, path.c_str(), mode, 0) != 0) return FailErrno("fchmodat %s", path.c_str());
  return Ok();
}

Result<struct statvfs> fstatvfs(int fd) {
  struct statvfs st {};
  if (::fstatvfs(fd, &st) != 0) return FailErrno("fstatvfs");
  return st;
}

Result<void> syncfs(int fd) {
  if (::syncfs(fd) != 0) return FailErrno("syncfs");
  return Ok();
}

}  // namespace moat::sys
