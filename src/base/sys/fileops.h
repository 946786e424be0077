#pragma once

// File operations beyond fs.h (links, ownership, times, xattrs, positioned writes), first
// needed by the image extractor. One call each, EINTR retried; borrowed fds remain owned by the
// caller.

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

#include <string>

#include "base/result.h"

namespace moat::sys {

Result<void> linkat(int olddirfd, const std::string& oldpath, int newdirfd,
                    const std::string& newpath, int flags);
Result<void> fsetxattr(int fd, const std::string& name, const void* value, size_t size);
Result<void> utimensat(int dirfd, const std::string& path, const struct timespec times[2],
                       int flags);
Result<void> futimens(int fd, const struct timespec times[2]);
Result<void> fchown(int fd, uid_t uid, gid_t gid);
Result<void> pwrite(int fd, const void* buf, size_t len, off_t offset);  // all of it
Result<void> ftruncate(int fd, off_t len);
Result<void> fchmodat(int dirfd, const std::string& path, mode_t mode);
// syncfs(2): writes back everything dirty on the file system that holds `fd`.
Result<void> syncfs(int fd);
// fstatvfs(3) of `fd` (remains owned by the caller; O_PATH is enough). f_flag carries the
// mount's flags: ST_RDONLY for a read-only mount or file system.
Result<struct statvfs> fstatvfs(int fd);
}  // namespace moat::sys
