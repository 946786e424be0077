#include "base/sys/spawn.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include "base/strings.h"

extern char** environ;

namespace moat::sys {

Result<pid_t> Spawn(const std::string& path, const std::vector<std::string>& argv,
                    const std::vector<std::pair<int, int>>& fd_map) {
  posix_spawn_file_actions_t fa;
  if (posix_spawn_file_actions_init(&fa) != 0) return FailErrno("posix_spawn_file_actions_init");
  for (const auto& [from, to] : fd_map) {
    // dup2 to the same number would keep O_CLOEXEC: glibc's adddup2 clears it in that case.
    posix_spawn_file_actions_adddup2(&fa, from, to);
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, path.c_str(), &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Fail(Error::FromErrno(rc, StrFormat("posix_spawn %s", path.c_str())));
  return pid;
}

Result<int> waitpid(pid_t pid) {
  int status = 0;
  pid_t r;
  do r = ::waitpid(pid, &status, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return FailErrno("waitpid %d", pid);
  return status;
}

}  // namespace moat::sys
