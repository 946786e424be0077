#pragma once

// Stream-socket I/O and readiness syscalls for servers (moatd's API front): recv, send,
// shutdown, peer credentials, dup, poll and eventfd (accept4 and ListenUnix are in io.h).
// One call per wrapper; EINTR is retried; every fd returned is O_CLOEXEC. fd parameters
// remain owned by the caller.

#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"

namespace moat::sys {

// recv(2); 0 means the peer shut down its sending side.
Result<size_t> recv(int fd, void* buf, size_t len, int flags);
// sendmsg(2) with MSG_NOSIGNAL added (a vanished peer gives EPIPE, never SIGPIPE). Returns the
// number of bytes sent, which may be short.
Result<size_t> sendmsg(int fd, const struct msghdr& msg, int flags);
// Sends every byte of the concatenation of `parts` (gathered, one sendmsg per partial write).
Result<void> SendAll(int fd, std::initializer_list<std::string_view> parts, int flags = 0);
Result<void> shutdown(int fd, int how);
// getsockopt(SO_PEERCRED): the credentials of the peer at connect time.
Result<struct ucred> GetPeerCred(int fd);
// fcntl(F_DUPFD_CLOEXEC).
Result<UniqueFd> dup(int fd);
// poll(2); returns the number of ready entries (0 on timeout).
Result<int> poll(struct pollfd* fds, nfds_t nfds, int timeout_ms);
// eventfd(2) with EFD_CLOEXEC added to `flags`.
Result<UniqueFd> eventfd(unsigned initval, int flags);
// Adds `value` to the eventfd counter: one write(2), async-signal-safe.
Result<void> eventfd_write(int fd, uint64_t value);

}  // namespace moat::sys
