#pragma once

// Plain fd reads and signal routing for event loops: read, sigprocmask, signalfd.
// (poll and shutdown live in socket_io.h, write loops in fs.h WriteAll.)

#include <signal.h>

#include <cstddef>

#include "base/result.h"
#include "base/unique_fd.h"

namespace moat::sys {

// One read(2), retried on EINTR. 0 means end of file. `fd` remains owned by the caller.
Result<size_t> read(int fd, void* buf, size_t len);
// sigprocmask(2); meant for single-threaded callers (pthread_sigmask semantics otherwise).
Result<void> sigprocmask(int how, const sigset_t& set, sigset_t* old);
// A new signalfd (SFD_CLOEXEC | SFD_NONBLOCK) for `mask`; block the signals first.
Result<UniqueFd> signalfd(const sigset_t& mask);

}  // namespace moat::sys
