#pragma once

#include <sys/epoll.h>

#include <string>
#include <utility>

#include "base/result.h"
#include "base/unique_fd.h"

// Event-loop and listening-socket syscalls. Every fd returned is close-on-exec; fd parameters
// remain owned by the caller.
namespace moat::sys {

// pipe2(2) with O_CLOEXEC | `extra_flags` (e.g. O_NONBLOCK on both ends): {read end, write end}.
Result<std::pair<UniqueFd, UniqueFd>> pipe2(int extra_flags);
Result<UniqueFd> epoll_create1();
Result<void> epoll_ctl(int epfd, int op, int fd, epoll_event* event);
// Waits up to `timeout_ms` (-1: forever); returns the number of events (0 on timeout or EINTR).
Result<int> epoll_wait(int epfd, epoll_event* events, int max_events, int timeout_ms);
// accept4(2) with SOCK_CLOEXEC | `flags`. kUnavailable (errno EAGAIN) when nobody is waiting.
Result<UniqueFd> accept4(int listener, int flags);
// A new AF_UNIX socket of `type` (SOCK_STREAM, SOCK_SEQPACKET) bound to `path` with the file
// mode `mode`, listening, non-blocking. An existing socket file at `path` is replaced.
// kInvalidArgument when the path does not fit in sun_path.
Result<UniqueFd> ListenUnix(const std::string& path, int type, mode_t mode);
// Sets O_NONBLOCK on `fd`.
Result<void> SetNonBlocking(int fd);

}  // namespace moat::sys
