#include "base/sys/process.h"

#include <grp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "base/strings.h"
#include "base/sys/fs.h"

namespace moat::sys {

Result<pid_t> clone3(CloneArgs args, UniqueFd* pidfd) {
  int fd = -1;
  if (args.flags & CLONE_PIDFD) args.pidfd = reinterpret_cast<uint64_t>(&fd);
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) return FailErrno("clone3");
  if (pid > 0 && pidfd && fd >= 0) pidfd->reset(fd);
  return static_cast<pid_t>(pid);
}

Result<UniqueFd> pidfd_open(pid_t pid) {
  long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return FailErrno("pidfd_open %d", pid);
  return UniqueFd(static_cast<int>(fd));
}

Result<void> pidfd_send_signal(int pidfd, int sig) {
  if (syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0) != 0)
    return FailErrno("pidfd_send_signal %d", sig);
  return Ok();
}

Result<UniqueFd> pidfd_getfd(int pidfd, int targetfd) {
  long fd = syscall(SYS_pidfd_getfd, pidfd, targetfd, 0);
  if (fd < 0) return FailErrno("pidfd_getfd %d", targetfd);
  return UniqueFd(static_cast<int>(fd));
}

Result<siginfo_t> waitid_pidfd(int pidfd, int options) {
  siginfo_t info{};
  int rc;
  do rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, options);
  while (rc < 0 && errno == EINTR);
  if (rc < 0) return FailErrno("waitid");
  return info;
}

Result<void> setns(int fd, int nstype) {
  if (::setns(fd, nstype) != 0) return FailErrno("setns %#x", nstype);
  return Ok();
}

Result<void> unshare(int flags) {
  if (::unshare(flags) != 0) return FailErrno("unshare %#x", flags);
  return Ok();
}

Result<void> sethostname(const std::string& name) {
  if (::sethostname(name.data(), name.size()) != 0) return FailErrno("sethostname %s", name.c_str());
  return Ok();
}

Result<void> setdomainname(const std::string& name) {
  if (::setdomainname(name.data(), name.size()) != 0)
    return FailErrno("setdomainname %s", name.c_str());
  return Ok();
}

Result<void> prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4,
                   unsigned long a5) {
  if (::prctl(option, a2, a3, a4, a5) != 0) return FailErrno("prctl %d", option);
  return Ok();
}

// glibc's setresuid/setgroups broadcast to all threads with signals; the raw syscalls act on
// the calling thread only, which is what a single-threaded child wants and is signal-safe.
Result<void> setresuid(uid_t r, uid_t e, uid_t s) {
  if (syscall(SYS_setresuid, r, e, s) != 0) return FailErrno("setresuid %u", e);
  return Ok();
}

Result<void> setresgid(gid_t r, gid_t e, gid_t s) {
  if (syscall(SYS_setresgid, r, e, s) != 0) return FailErrno("setresgid %u", e);
  return Ok();
}

Result<void> setgroups(const std::vector<gid_t>& groups) {
  if (syscall(SYS_setgroups, groups.size(), groups.data()) != 0) return FailErrno("setgroups");
  return Ok();
}

Result<void> close_range_cloexec(unsigned first) {
  if (syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
    return FailErrno("close_range");
  return Ok();
}

Result<int> kill(pid_t pid, int sig) {
  if (::kill(pid, sig) != 0) return FailErrno("kill %d", pid);
  return 0;
}

Result<void> execveat(int dirfd, const std::string& path, char* const argv[], char* const envp[],
                      int flags) {
  ::execveat(dirfd, path.c_str(), argv, envp, flags);
  return FailErrno("execveat %s", path.empty() ? "<fd>" : path.c_str());
}

Result<std::vector<std::string>> ProcStatFields(pid_t pid) {
  std::string path = pid == 0 ? std::string("/proc/self/stat") : StrFormat("/proc/%d/stat", pid);
  MOAT_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  size_t open = text.find('('), close = text.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open ||
      close + 2 > text.size())
    return Fail(ErrorKind::kInternal, "%s: unexpected format", path.c_str());
  std::vector<std::string> out = {std::string(TrimWhitespace(text.substr(0, open))),
                                  text.substr(open + 1, close - open - 1)};
  for (auto& f : StrSplit(TrimWhitespace(std::string_view(text).substr(close + 2)), ' '))
    out.push_back(std::move(f));
  return out;
}

int ExitCodeFromSiginfo(const siginfo_t& info) {
  if (info.si_code == CLD_EXITED) return info.si_status;
  return 128 + info.si_status;
}

}  // namespace moat::sys
