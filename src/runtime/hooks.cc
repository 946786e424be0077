#include "runtime/hooks.h"

#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include "base/sys/fs.h"
#include "base/sys/process.h"

namespace moat::runtime {

namespace {

std::vector<char*> CStrings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

Result<void> RunHook(const oci::Hook& hook, std::string_view state_json) {
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return FailErrno("pipe");
  UniqueFd read_end(pipefd[0]), write_end(pipefd[1]);
  std::vector<std::string> args = hook.args.empty() ? std::vector<std::string>{hook.path}
                                                    : hook.args;
  auto argv = CStrings(args);
  auto envp = CStrings(hook.env);
  sys::CloneArgs ca{};
  ca.flags = CLONE_PIDFD;
  ca.exit_signal = SIGCHLD;
  UniqueFd pidfd;
  MOAT_ASSIGN_OR_RETURN(pid_t pid, sys::clone3(ca, &pidfd));
  if (pid == 0) {
    dup2(read_end.get(), STDIN_FILENO);
    execve(hook.path.c_str(), argv.data(), envp.data());
    _exit(127);
  }
  read_end.reset();
  // A hook may ignore stdin; EPIPE is not its failure. SIGPIPE is ignored only around the
  // write: an ignored disposition survives execve, and these hooks also run in the container's
  // own process before it executes the user's program.
  struct sigaction ignore {}, previous {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &previous);
  (void)sys::WriteAll(write_end.get(), state_json);
  sigaction(SIGPIPE, &previous, nullptr);
  write_end.reset();
  int64_t deadline = hook.timeout ? NowMs() + int64_t{*hook.timeout} * 1000 : -1;
  while (true) {
    int wait_ms = deadline < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, deadline - NowMs()));
    pollfd p{pidfd.get(), POLLIN, 0};
    int rc = poll(&p, 1, wait_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return FailErrno("poll hook %s", hook.path.c_str());
    if (rc == 0) {
      (void)sys::pidfd_send_signal(pidfd.get(), SIGKILL);
      (void)sys::waitid_pidfd(pidfd.get(), WEXITED);
      return Fail(ErrorKind::kUnavailable, "timed out after %d s", *hook.timeout);
    }
    break;
  }
  MOAT_ASSIGN_OR_RETURN(siginfo_t info, sys::waitid_pidfd(pidfd.get(), WEXITED));
  if (info.si_code == CLD_EXITED && info.si_status == 127)
    return Fail(ErrorKind::kNotFound, "exited 127 (could not execute %s?)", hook.path.c_str());
  if (info.si_code != CLD_EXITED)
    return Fail(ErrorKind::kInternal, "killed by signal %d", info.si_status);
  if (info.si_status != 0)
    return Fail(ErrorKind::kInternal, "exited with status %d", info.si_status);
  return Ok();
}

}  // namespace

Result<void> RunHooks(const std::vector<oci::Hook>& hooks, const char* kind,
                      std::string_view state_json) {
  for (size_t i = 0; i < hooks.size(); ++i) {
    MOAT_TRY(std::move(RunHook(hooks[i], state_json))
                 .Context("%s hook #%zu (%s)", kind, i, hooks[i].path.c_str()));
  }
  return Ok();
}

}  // namespace moat::runtime
