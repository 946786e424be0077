#include "daemon/front/sandbox.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/sys/fs.h"
#include "base/sys/process.h"

namespace moat::daemon::front {
namespace {

oci::SeccompSyscall Allow(std::vector<std::string> names) {
  oci::SeccompSyscall s;
  s.names = std::move(names);
  s.action = "SCMP_ACT_ALLOW";
  return s;
}

oci::Seccomp FrontProfile() {
  oci::Seccomp p;
  p.default_action = "SCMP_ACT_ERRNO";
  p.default_errno_ret = EPERM;
  // Each group: why the front needs it.
  p.syscalls = {
      // I/O on the sockets, pipes and fds it holds.
      Allow({"read", "write", "readv", "writev", "pread64", "pwrite64", "close", "dup", "dup3",
             "fcntl", "lseek", "fstat", "newfstatat", "pipe2"}),
      // Client connections on the listening socket it was given; the core channel.
      Allow({"accept", "accept4", "recvfrom", "recvmsg", "sendto", "sendmsg", "shutdown",
             "getsockopt", "setsockopt", "getsockname", "getpeername"}),
      // Waiting: poll/epoll (Asio's reactor uses epoll, eventfd and timerfd).
      Allow({"poll", "ppoll", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
             "eventfd2", "timerfd_create", "timerfd_settime", "timerfd_gettime", "nanosleep",
             "clock_nanosleep", "clock_gettime", "gettimeofday", "sched_yield"}),
      // Memory and threads (the C library's malloc and pthreads). getrandom also seeds
      // OpenSSL's DRBG for TLS (keys, nonces); it never falls back to /dev/urandom here.
      Allow({"mmap", "munmap", "mprotect", "mremap", "brk", "madvise", "futex",
             "set_robust_list", "get_robust_list", "rseq", "exit", "exit_group", "gettid",
             "getpid", "tgkill", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
             "sigaltstack", "restart_syscall", "sched_getaffinity", "getrandom", "uname",
             "prlimit64", "getuid", "geteuid", "getgid", "getegid"}),
  };
  // clone only for threads: CLONE_THREAD set (a new process could not exec anyway, but the
  // front has no reason to make one).
  oci::SeccompSyscall clone = Allow({"clone"});
  clone.args = {{0, CLONE_THREAD, CLONE_THREAD, "SCMP_CMP_MASKED_EQ"}};
  p.syscalls.push_back(clone);
  // clone3's flags live in memory that seccomp cannot see: ENOSYS makes glibc use clone.
  oci::SeccompSyscall clone3;
  clone3.names = {"clone3"};
  clone3.action = "SCMP_ACT_ERRNO";
  clone3.errno_ret = ENOSYS;
  p.syscalls.push_back(clone3);
  // socketpair only for AF_UNIX: the TLS relay of each TCP client (http_server.cc). Such a
  // pair reaches nothing outside the process.
  oci::SeccompSyscall socketpair = Allow({"socketpair"});
  socketpair.args = {{0, AF_UNIX, 0, "SCMP_CMP_EQ"}};
  p.syscalls.push_back(socketpair);
  // ioctl only to query readable bytes and set non-blocking mode.
  oci::SeccompSyscall ioctl = Allow({"ioctl"});
  ioctl.args = {{1, FIONBIO, 0, "SCMP_CMP_EQ"}, {1, FIONREAD, 0, "SCMP_CMP_EQ"}};
  p.syscalls.push_back(ioctl);
  return p;
}

}  // namespace

Result<SandboxPlan> PlanSandbox(const std::string& user, const std::string& empty_root) {
  SandboxPlan plan;
  plan.empty_root = empty_root;
  const passwd* pw = getpwnam(user.c_str());
  if (!pw) pw = getpwnam("nobody");
  if (pw) {
    plan.uid = pw->pw_uid;
    plan.gid = pw->pw_gid;
  }
  if (plan.uid == 0 || plan.gid == 0) {
    return Fail(ErrorKind::kInvalidArgument, "the API front's user %s must not be root", user.c_str());
  }
  MOAT_TRY(sys::MkdirAll(empty_root, 0555));
  if (::chmod(empty_root.c_str(), 0555) != 0) return FailErrno("chmod %s", empty_root.c_str());
  MOAT_ASSIGN_OR_RETURN(plan.program, seccomp::Compile(FrontProfile()));
  return plan;
}

Result<void> EnterSandbox(const SandboxPlan& plan) {
  pid_t core = getppid();
  // Its own mount namespace, so that the chroot below cannot be undone through shared mounts,
  // and the empty directory as root.
  MOAT_TRY(sys::unshare(CLONE_NEWNS));
  if (::chroot(plan.empty_root.c_str()) != 0) return FailErrno("chroot %s", plan.empty_root.c_str());
  MOAT_TRY(sys::chdir("/"));
  // Bounding set first, while CAP_SETPCAP is still held.
  for (int cap = 0; cap <= CAP_LAST_CAP; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return FailErrno("PR_CAPBSET_DROP %d", cap);
  }
  (void)::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  MOAT_TRY(sys::setgroups({}));
  MOAT_TRY(sys::setresgid(plan.gid, plan.gid, plan.gid));
  // Leaving uid 0 with keepcaps off clears the permitted and effective sets (capabilities(7)).
  MOAT_TRY(sys::setresuid(plan.uid, plan.uid, plan.uid));
  // Die with the core: a front without its core has nothing to serve. Set after the uid change,
  // which clears it (prctl(2)); a core that died before this point is caught by the check.
  MOAT_TRY(sys::prctl(PR_SET_PDEATHSIG, SIGKILL));
  if (getppid() != core) _exit(1);
  MOAT_TRY(sys::prctl(PR_SET_NO_NEW_PRIVS, 1));
  MOAT_TRY(sys::prctl(PR_SET_DUMPABLE, 0));
  MOAT_ASSIGN_OR_RETURN(UniqueFd listener, seccomp::Install(plan.program));
  (void)listener;
  return {};
}

}  // namespace moat::daemon::front
