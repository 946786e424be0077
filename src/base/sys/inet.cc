#include "base/sys/inet.h"

#include <sys/socket.h>

#include <cerrno>

namespace moat::sys {

Result<UniqueFd> socket(int domain, int type, int protocol) {
  int fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
  if (fd < 0) return FailErrno("socket(%d, %d, %d)", domain, type, protocol);
  return UniqueFd(fd);
}

Result<void> bind(int fd, const sockaddr* addr, socklen_t len) {
  if (::bind(fd, addr, len) != 0) return FailErrno("bind");
  return Ok();
}

Result<void> listen(int fd, int backlog) {
  if (::listen(fd, backlog) != 0) return FailErrno("listen");
  return Ok();
}

Result<void> setsockopt_int(int fd, int level, int name, int value) {
  if (::setsockopt(fd, level, name, &value, sizeof value) != 0)
    return FailErrno("setsockopt(%d, %d)", level, name);
  return Ok();
}

Result<UniqueFd> accept4(int listener, int flags, sockaddr_storage* peer) {
  socklen_t len = sizeof *peer;
  int fd;
  do fd = ::accept4(listener, reinterpret_cast<sockaddr*>(peer), &len, flags | SOCK_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return FailErrno("accept4");
  return UniqueFd(fd);
}

Result<socklen_t> getsockname(int fd, sockaddr_storage* addr) {
  socklen_t len = sizeof *addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(addr), &len) != 0)
    return FailErrno("getsockname");
  return len;
}

Result<size_t> recvfrom(int fd, void* buf, size_t len, int flags, sockaddr_storage* from) {
  socklen_t from_len = from ? sizeof *from : 0;
  ssize_t n;
  do
    n = ::recvfrom(fd, buf, len, flags, reinterpret_cast<sockaddr*>(from),
                   from ? &from_len : nullptr);
  while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno("recvfrom");
  return static_cast<size_t>(n);
}

Result<size_t> sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* to,
                      socklen_t to_len) {
  ssize_t n;
  do n = ::sendto(fd, buf, len, flags | MSG_NOSIGNAL, to, to_len);
  while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno("sendto");
  return static_cast<size_t>(n);
}

}  // namespace moat::sys
