#pragma once

// Starting programs from multi-threaded processes (moatd's core): posix_spawn, so that no code
// of ours runs between fork and exec.

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace moat::sys {

// posix_spawn of `path` with `argv`; `fd_map` lists (parent fd, child fd) pairs dup2'ed in the
// child; every other fd is O_CLOEXEC in this codebase and so not inherited. The child starts
// with an empty signal mask and default dispositions, whatever the calling thread blocks
// (moatd's threads block the signals its main thread waits for). Returns the pid.
Result<pid_t> Spawn(const std::string& path, const std::vector<std::string>& argv,
                    const std::vector<std::pair<int, int>>& fd_map);
// waitpid(2) for `pid`, EINTR retried; returns the raw status.
Result<int> waitpid(pid_t pid);

}  // namespace moat::sys
