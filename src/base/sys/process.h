#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <string>
#include <vector>

#include "base/result.h"
#include "base/sys/linux_compat.h"
#include "base/unique_fd.h"

// Process, namespace and credential syscalls.
namespace moat::sys {

// clone3(2) without a new stack: returns 0 in the child, the pid in the parent. With
// CLONE_PIDFD in args.flags, *pidfd receives the child's pidfd. The caller must be
// single-threaded. async-signal-safe in the child.
Result<pid_t> clone3(CloneArgs args, UniqueFd* pidfd);
Result<UniqueFd> pidfd_open(pid_t pid);
Result<void> pidfd_send_signal(int pidfd, int sig);
// pidfd_getfd(2): a duplicate (close-on-exec, as the kernel always makes it) of fd `targetfd`
// of the process behind `pidfd`, which remains owned by the caller. Needs ptrace access
// (PTRACE_MODE_ATTACH_REALCREDS) to that process.
Result<UniqueFd> pidfd_getfd(int pidfd, int targetfd);
// Waits for the process behind `pidfd`; returns the siginfo.
Result<siginfo_t> waitid_pidfd(int pidfd, int options);
Result<void> setns(int fd, int nstype);
Result<void> unshare(int flags);
Result<void> sethostname(const std::string& name);
Result<void> setdomainname(const std::string& name);
Result<void> prctl(int option, unsigned long a2, unsigned long a3 = 0, unsigned long a4 = 0,
                   unsigned long a5 = 0);
// Raw credential changes (thread-level syscalls, so they apply to the single thread).
Result<void> setresuid(uid_t r, uid_t e, uid_t s);
Result<void> setresgid(gid_t r, gid_t e, gid_t s);
Result<void> setgroups(const std::vector<gid_t>& groups);
// Marks every fd >= `first` close-on-exec.
Result<void> close_range_cloexec(unsigned first);
Result<int> kill(pid_t pid, int sig);
// execveat(2): replaces the process image; returns only on failure. `dirfd` remains owned by
// the caller (with AT_EMPTY_PATH and an empty `path` it is the program itself; its
// close-on-exec flag does not matter for an ELF binary). `argv` and `envp` are
// NULL-terminated.
Result<void> execveat(int dirfd, const std::string& path, char* const argv[], char* const envp[],
                      int flags);

// The fields of /proc/<pid>/stat (`pid` 0: /proc/self/stat) as text: out[n - 1] is proc(5)'s
// field n (out[0] the pid, out[1] the command name without its parentheses: it may hold spaces
// and parentheses itself, so the rest is split after its last ')'). Errors: ReadFile's
// (kNotFound once the process is gone and reaped); kInternal for an unexpected format.
Result<std::vector<std::string>> ProcStatFields(pid_t pid);

// Exit code in the shell convention: the exit status, or 128 + signal.
int ExitCodeFromSiginfo(const siginfo_t& info);

}  // namespace moat::sys
