#include "base/sys/io.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace moat::sys {

Result<std::pair<UniqueFd, UniqueFd>> pipe2(int extra_flags) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC | extra_flags) != 0) return FailErrno("pipe2");
  return std::make_pair(UniqueFd(p[0]), UniqueFd(p[1]));
}

Result<UniqueFd> epoll_create1() {
  int fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) return FailErrno("epoll_create1");
  return UniqueFd(fd);
}

Result<void> epoll_ctl(int epfd, int op, int fd, epoll_event* event) {
  if (::epoll_ctl(epfd, op, fd, event) != 0) return FailErrno("epoll_ctl op %d fd %d", op, fd);
  return Ok();
}

Result<int> epoll_wait(int epfd, epoll_event* events, int max_events, int timeout_ms) {
  int n = ::epoll_wait(epfd, events, max_events, timeout_ms);
  if (n < 0 && errno == EINTR) return 0;
  if (n < 0) return FailErrno("epoll_wait");
  return n;
}

Result<UniqueFd> accept4(int listener, int flags) {
  int fd;
  do fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | flags);
  while (fd < 0 && errno == EINTR);
  if (fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    return Fail(ErrorKind::kUnavailable, "accept: no pending connection");
  if (fd < 0) return FailErrno("accept4");
  return UniqueFd(fd);
}

Result<UniqueFd> ListenUnix(const std::string& path, int type, mode_t mode) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return Fail(ErrorKind::kInvalidArgument, "socket path too long: %s", path.c_str());
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return FailErrno("socket");
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return FailErrno("unlink %s", path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    return FailErrno("bind %s", path.c_str());
  // Nobody can connect before listen(2): setting the mode here leaves no window.
  if (::chmod(path.c_str(), mode) != 0) return FailErrno("chmod %s", path.c_str());
  if (::listen(fd.get(), 64) != 0) return FailErrno("listen %s", path.c_str());
  return fd;
}

Result<void> SetNonBlocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return FailErrno("fcntl F_GETFL");
  if (::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) return FailErrno("fcntl F_SETFL");
  return Ok();
}

}  // namespace moat::sys
