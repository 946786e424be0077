#include "base/sys/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/strings.h"
#include "base/sys/fdio.h"
#include "base/sys/fs.h"
#include "base/sys/io.h"

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

Result<std::string> FindOnPath(const std::string& name, const std::string& path_list) {
  if (name.find('/') != std::string::npos) return name;
  for (const auto& dir : StrSplit(path_list, ':')) {
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    struct stat st {};
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return Fail(ErrorKind::kNotFound, "no executable %s in %s", name.c_str(), path_list.c_str());
}

Result<CollectedRun> RunCollectingOutput(const std::string& path,
                                         const std::vector<std::string>& argv, int stdin_fd,
                                         bool with_stdout, size_t limit) {
  MOAT_ASSIGN_OR_RETURN(auto out, pipe2(0));
  MOAT_ASSIGN_OR_RETURN(UniqueFd devnull, open("/dev/null", O_RDWR | O_CLOEXEC));
  MOAT_ASSIGN_OR_RETURN(pid_t pid,
                        Spawn(path, argv,
                              {{stdin_fd >= 0 ? stdin_fd : devnull.get(), STDIN_FILENO},
                               {with_stdout ? out.second.get() : devnull.get(), STDOUT_FILENO},
                               {out.second.get(), STDERR_FILENO}}));
  out.second.reset();
  CollectedRun run;
  char buf[4096];
  while (true) {
    auto n = read(out.first.get(), buf, sizeof buf);
    if (!n || *n == 0) break;
    if (run.output.size() < limit)
      run.output.append(buf, std::min(static_cast<size_t>(*n), limit - run.output.size()));
  }
  MOAT_ASSIGN_OR_RETURN(run.status, waitpid(pid));
  return run;
}

}  // namespace moat::sys
