#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

// Syscall wrappers the image code needs that src/base/sys/ lacks yet (candidates to move
// there). Same conventions: one call each, EINTR retried, fds O_CLOEXEC, borrowed fds remain
// owned by the caller.
namespace moat::image::sys2 {

// read(2); returns the byte count (0 at EOF).
Result<size_t> read(int fd, void* buf, size_t len);
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
// pipe2(O_CLOEXEC): [0] read end, [1] write end.
Result<std::pair<UniqueFd, UniqueFd>> pipe();
// posix_spawn of `path` with `argv`; `fd_map` lists (parent fd, child fd) pairs dup2'ed in
// the child; every other fd is O_CLOEXEC in this codebase and so not inherited. Returns the pid.
Result<pid_t> Spawn(const std::string& path, const std::vector<std::string>& argv,
                    const std::vector<std::pair<int, int>>& fd_map);
// waitpid(2) for `pid`; returns the raw status.
Result<int> waitpid(pid_t pid);

}  // namespace moat::image::sys2
