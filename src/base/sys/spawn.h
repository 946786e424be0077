#pragma once

// Starting programs from multi-threaded processes (moatd's core): posix_spawn, so that no code
// of ours runs between fork and exec.

#include <sys/types.h>
#include <sys/wait.h>

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

// The path of `name` as execvp(3) finds it in the colon-separated `path_list` (an empty entry
// is the current directory): `name` itself if it contains a '/', else the first regular file
// executable by the caller. kNotFound "no executable NAME in PATH_LIST" when there is none.
Result<std::string> FindOnPath(const std::string& name, const std::string& path_list);

// What RunCollectingOutput saw: the raw wait status and the program's output (stderr, and
// stdout when asked), the first `limit` bytes of it.
struct CollectedRun {
  int status = 0;
  std::string output;
  bool Succeeded() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};
// Spawns `path` with `argv`, `stdin_fd` as its stdin (-1: /dev/null), its stderr (and its
// stdout if `with_stdout`, else /dev/null) into a pipe read to EOF, then waits for it. For
// short-lived helper programs whose complaint is their output. Errors: the spawn's or the
// wait's; a program that fails is a CollectedRun, not an error.
Result<CollectedRun> RunCollectingOutput(const std::string& path,
                                         const std::vector<std::string>& argv, int stdin_fd,
                                         bool with_stdout, size_t limit = 64 * 1024);

}  // namespace moat::sys
