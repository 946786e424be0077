#include "base/sys/fdio.h"

#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>

namespace moat::sys {

Result<size_t> read(int fd, void* buf, size_t len) {
  ssize_t n;
  do n = ::read(fd, buf, len);
  while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno("read fd %d", fd);
  return static_cast<size_t>(n);
}

Result<void> sigprocmask(int how, const sigset_t& set, sigset_t* old) {
  if (::sigprocmask(how, &set, old) != 0) return FailErrno("sigprocmask");
  return Ok();
}

Result<UniqueFd> signalfd(const sigset_t& mask) {
  UniqueFd fd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!fd) return FailErrno("signalfd");
  return fd;
}

}  // namespace moat::sys
