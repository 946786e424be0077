#pragma once

// Internet-socket syscalls (AF_INET/AF_INET6 datagram and stream sockets): socket, bind,
// listen, setsockopt, getsockname, recvfrom, sendto. One call per wrapper; EINTR is retried
// where restartable; every fd returned is O_CLOEXEC. fd parameters remain owned by the caller.

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>

#include "base/result.h"
#include "base/unique_fd.h"

namespace moat::sys {

// socket(2) with SOCK_CLOEXEC added to `type`.
Result<UniqueFd> socket(int domain, int type, int protocol);
Result<void> bind(int fd, const sockaddr* addr, socklen_t len);
Result<void> listen(int fd, int backlog);
// setsockopt(2) of an int-valued option.
Result<void> setsockopt_int(int fd, int level, int name, int value);
// accept4(2) with SOCK_CLOEXEC | `flags`; `peer` receives the client's address. kUnavailable
// (errno EAGAIN) when nobody is waiting.
Result<UniqueFd> accept4(int listener, int flags, sockaddr_storage* peer);
// getsockname(2) into `addr`; returns the address length.
Result<socklen_t> getsockname(int fd, sockaddr_storage* addr);
// recvfrom(2); `from` receives the source (may be null). On a non-blocking socket with nothing
// queued: kUnavailable (errno EAGAIN).
Result<size_t> recvfrom(int fd, void* buf, size_t len, int flags, sockaddr_storage* from);
// sendto(2) with MSG_NOSIGNAL added; returns the bytes sent. kUnavailable (EAGAIN) when full.
Result<size_t> sendto(int fd, const void* buf, size_t len, int flags, const sockaddr* to,
                      socklen_t to_len);

}  // namespace moat::sys
