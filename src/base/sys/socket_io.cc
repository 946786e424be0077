#include "base/sys/socket_io.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace moat::sys {

Result<size_t> recv(int fd, void* buf, size_t len, int flags) {
  ssize_t n;
  do n = ::recv(fd, buf, len, flags);
  while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno("recv");
  return static_cast<size_t>(n);
}

Result<size_t> sendmsg(int fd, const struct msghdr& msg, int flags) {
  ssize_t n;
  do n = ::sendmsg(fd, &msg, flags | MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno("sendmsg");
  return static_cast<size_t>(n);
}

Result<void> SendAll(int fd, std::initializer_list<std::string_view> parts, int flags) {
  std::vector<iovec> iov;
  iov.reserve(parts.size());
  for (std::string_view p : parts)
    if (!p.empty()) iov.push_back({const_cast<char*>(p.data()), p.size()});
  size_t first = 0;
  while (first < iov.size()) {
    msghdr msg{};
    msg.msg_iov = iov.data() + first;
    msg.msg_iovlen = iov.size() - first;
    MOAT_ASSIGN_OR_RETURN(size_t n, sys::sendmsg(fd, msg, flags));
    // Skip what was sent: whole entries, then the front of a partly sent one.
    while (first < iov.size() && n >= iov[first].iov_len) n -= iov[first++].iov_len;
    if (first < iov.size()) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + n;
      iov[first].iov_len -= n;
    }
  }
  return Ok();
}

Result<void> shutdown(int fd, int how) {
  if (::shutdown(fd, how) != 0) return FailErrno("shutdown");
  return Ok();
}

Result<struct ucred> GetPeerCred(int fd) {
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return FailErrno("getsockopt SO_PEERCRED");
  return cred;
}

Result<UniqueFd> dup(int fd) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return FailErrno("fcntl F_DUPFD_CLOEXEC");
  return UniqueFd(copy);
}

Result<int> poll(struct pollfd* fds, nfds_t nfds, int timeout_ms) {
  // Retrying on EINTR restarts the full timeout; callers use -1 or short timeouts.
  int n;
  do n = ::poll(fds, nfds, timeout_ms);
  while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno("poll");
  return n;
}

Result<UniqueFd> eventfd(unsigned initval, int flags) {
  int fd = ::eventfd(initval, flags | EFD_CLOEXEC);
  if (fd < 0) return FailErrno("eventfd");
  return UniqueFd(fd);
}

Result<void> eventfd_write(int fd, uint64_t value) {
  ssize_t n;
  do n = ::write(fd, &value, sizeof value);
  while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno("write eventfd");
  return Ok();
}

}  // namespace moat::sys
