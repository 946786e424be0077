#include "base/sys/socket.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/sys/socket_io.h"

namespace moat::sys {

Result<std::pair<UniqueFd, UniqueFd>> socketpair(int type) {
  int sv[2];
  if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) return FailErrno("socketpair");
  return std::make_pair(UniqueFd(sv[0]), UniqueFd(sv[1]));
}

Result<UniqueFd> ConnectUnix(const std::string& path) { return ConnectUnix(path, SOCK_STREAM); }

Result<UniqueFd> ConnectUnix(const std::string& path, int type) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path)
    return Fail(ErrorKind::kInvalidArgument, "socket path too long: %s", path.c_str());
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, type | SOCK_CLOEXEC, 0));
  if (!fd) return FailErrno("socket");
  int rc;
  do rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  while (rc < 0 && errno == EINTR);
  if (rc != 0) return FailErrno("connect %s", path.c_str());
  return fd;
}

Result<void> SendWithFds(int sock, std::string_view data, const std::vector<int>& fds) {
  msghdr msg{};
  iovec iov{const_cast<char*>(data.data()), data.size()};
  char dummy = 0;
  if (data.empty()) iov = {&dummy, 1};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  ssize_t n;
  do n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno("sendmsg");
  // A stream socket may take part of the data (the fds went with the first byte); a datagram
  // or seqpacket one takes all or nothing.
  if (!data.empty() && static_cast<size_t>(n) < data.size()) return SendAll(sock, {data.substr(n)});
  return Ok();
}

Result<Message> RecvWithFds(int sock, size_t max, size_t max_fds) {
  Message out;
  // A large bound on a message socket: learn the next message's size first, so that a 4 MiB
  // bound does not cost 4 MiB of touched memory per receive (MSG_TRUNC with MSG_PEEK returns
  // the real length on AF_UNIX datagram and seqpacket sockets; on stream sockets it would
  // discard data, hence the type check).
  if (max > 64 * 1024) {
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type != SOCK_STREAM) {
      ssize_t size;
      do size = ::recv(sock, nullptr, 0, MSG_PEEK | MSG_TRUNC);
      while (size < 0 && errno == EINTR);
      if (size < 0) return FailErrno("recv");
      max = std::min(max, std::max<size_t>(static_cast<size_t>(size), 1));
    }
  }
  out.data.resize(max);
  iovec iov{out.data.data(), max};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(sizeof(int) * (max_fds ? max_fds : 1)));
  if (max_fds) {
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
  }
  ssize_t n;
  do n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno("recvmsg");
  out.data.resize(static_cast<size_t>(n));
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
      out.fds.emplace_back(fd);
    }
  }
  return out;
}

}  // namespace moat::sys
