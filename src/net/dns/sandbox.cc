#include "net/dns/sandbox.h"

#include <linux/capability.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>

#include "base/sys/fs.h"
#include "base/sys/process.h"

namespace moat::net::dns {
namespace {

oci::SeccompSyscall Allow(std::vector<std::string> names) {
  oci::SeccompSyscall s;
  s.names = std::move(names);
  s.action = "SCMP_ACT_ALLOW";
  return s;
}

// Allowed only when argument `index` has no PROT_EXEC bit: moat-dns never maps code after
// start, so an exploit cannot make its payload executable.
oci::SeccompSyscall AllowWithoutExec(std::string name, uint32_t index) {
  oci::SeccompSyscall s = Allow({std::move(name)});
  s.args = {{index, PROT_EXEC, 0, "SCMP_CMP_MASKED_EQ"}};
  return s;
}

}  // namespace

oci::Seccomp ResolverSeccompProfile() {
  oci::Seccomp p;
  p.default_action = "SCMP_ACT_ERRNO";
  p.default_errno_ret = EPERM;
  p.syscalls = {
      // Queries and replies on the passed UDP/TCP sockets, the control channel (recvmsg with
      // SCM_RIGHTS; getsockopt(SO_TYPE) in RecvWithFds), the upstream socket (sendto), the
      // family of a passed socket (getsockname), O_NONBLOCK on passed fds (fcntl), logging to
      // stderr (write).
      Allow({"read", "write", "writev", "close", "fcntl", "recvfrom", "recvmsg", "sendto",
             "sendmsg", "accept4", "shutdown", "getsockopt", "getsockname"}),
      // The event loop and its clock.
      Allow({"epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait", "clock_gettime",
             "gettimeofday"}),
      // Query ids for forwarding.
      Allow({"getrandom"}),
      // Memory (malloc), and leaving (abort uses tgkill/getpid/gettid and signal masks).
      Allow({"brk", "munmap", "mremap", "madvise", "futex", "exit", "exit_group", "rt_sigreturn",
             "rt_sigprocmask", "rt_sigaction", "tgkill", "getpid", "gettid", "restart_syscall"}),
      AllowWithoutExec("mmap", 2),
      AllowWithoutExec("mprotect", 2),
  };
  return p;
}

Result<SandboxPlan> PlanSandbox(const std::string& empty_root) {
  if (empty_root.empty()) return Fail(ErrorKind::kInvalidArgument, "no empty root directory");
  SandboxPlan plan;
  plan.empty_root = empty_root;
  MOAT_ASSIGN_OR_RETURN(plan.program, seccomp::Compile(ResolverSeccompProfile()));
  return plan;
}

Result<void> EnterSandbox(const SandboxPlan& plan) {
  pid_t parent = getppid();
  // A mount namespace of its own, so that the chroot cannot be escaped through mounts the
  // core makes later, then the empty directory as root. Both need CAP_SYS_ADMIN/CHROOT, so
  // before the uid change.
  MOAT_TRY(sys::unshare(CLONE_NEWNS));
  if (::chroot(plan.empty_root.c_str()) != 0)
    return FailErrno("chroot %s", plan.empty_root.c_str());
  MOAT_TRY(sys::chdir("/"));
  // The bounding set while CAP_SETPCAP is still held; EINVAL for caps this kernel lacks.
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL)
      return FailErrno("PR_CAPBSET_DROP %d", cap);
  }
  MOAT_TRY(sys::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL));
  MOAT_TRY(sys::setgroups({}));
  MOAT_TRY(sys::setresgid(plan.gid, plan.gid, plan.gid));
  // Leaving uid 0 with keepcaps off clears the permitted and effective sets (capabilities(7)).
  MOAT_TRY(sys::setresuid(plan.uid, plan.uid, plan.uid));
  // Die with the core. Set after the uid change, which clears it (prctl(2)); a parent that
  // died before this point is caught by the check. The signal follows the *thread* that
  // spawned us (prctl(2)), so the core spawns from a long-lived thread.
  MOAT_TRY(sys::prctl(PR_SET_PDEATHSIG, SIGKILL));
  if (getppid() != parent) _exit(1);
  MOAT_TRY(sys::prctl(PR_SET_NO_NEW_PRIVS, 1));
  MOAT_TRY(sys::prctl(PR_SET_DUMPABLE, 0));
  MOAT_ASSIGN_OR_RETURN(UniqueFd listener, seccomp::Install(plan.program));
  (void)listener;  // the profile has no SCMP_ACT_NOTIFY
  return Ok();
}

}  // namespace moat::net::dns
