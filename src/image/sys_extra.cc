#include "image/sys_extra.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

extern char** environ;

namespace moat::image::sys2 {

Result<size_t> read(int fd, void* buf, size_t len) {
  ssize_t n;
  do n = ::read(fd, buf, len);
  while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno("read fd %d", fd);
  return static_cast<size_t>(n);
}

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

Result<std::pair<UniqueFd, UniqueFd>> pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return FailErrno("pipe2");
  return std::make_pair(UniqueFd(fds[0]), UniqueFd(fds[1]));
}

Result<pid_t> Spawn(const std::string& path, const std::vector<std::string>& argv,
                    const std::vector<std::pair<int, int>>& fd_map) {
  posix_spawn_file_actions_t fa;
  if (posix_spawn_file_actions_init(&fa) != 0) return FailErrno("posix_spawn_file_actions_init");
  for (const auto& [from, to] : fd_map) {
    // dup2 to the same number would keep O_CLOEXEC: glibc's adddup2 clears it in that case.
    posix_spawn_file_actions_adddup2(&fa, from, to);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return Fail(Error::FromErrno(rc, StrFormat("posix_spawn %s", path.c_str())));
  return pid;
}

Result<int> waitpid(pid_t pid) {
  int status = 0;
  pid_t r;
  do r = ::waitpid(pid, &status, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return FailErrno("waitpid %d", pid);
  return status;
}

}  // namespace moat::image::sys2
