#include "image/extract/confine.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <sched.h>
#include <sys/capability.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/sys/fdio.h"
#include "base/sys/fileops.h"
#include "base/sys/fs.h"
#include "base/sys/mount.h"
#include "base/sys/process.h"
#include "base/sys/socket.h"
#include "base/sys/spawn.h"

// Landlock constants newer than the installed <linux/landlock.h> (which stops at ABI 2).
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

namespace moat::image {
namespace {

constexpr rlim_t kMaxFiles = 256;
constexpr rlim_t kMaxAddressSpace = 8ull << 30;
constexpr char kOpaqueXattr[] = "trusted.overlay.opaque";

oci::SeccompSyscall Allow(std::vector<std::string> names) {
  oci::SeccompSyscall s;
  s.names = std::move(names);
  s.action = "SCMP_ACT_ALLOW";
  return s;
}

// Allowed only without PROT_EXEC in argument `index`: nothing is mapped executable after
// confinement, so a planted shared object cannot be loaded and an exploit cannot make its
// payload executable.
oci::SeccompSyscall AllowWithoutExec(std::string name, uint32_t index) {
  oci::SeccompSyscall s = Allow({std::move(name)});
  s.args = {{index, PROT_EXEC, 0, "SCMP_CMP_MASKED_EQ"}};
  return s;
}

// Memory, leaving, and what abort() and glibc's allocator use.
std::vector<oci::SeccompSyscall> CommonRules() {
  return {
      Allow({"brk", "munmap", "mremap", "madvise", "futex", "exit", "exit_group", "rt_sigreturn",
             "rt_sigprocmask", "rt_sigaction", "tgkill", "getpid", "gettid", "restart_syscall",
             "getrandom", "clock_gettime"}),
      AllowWithoutExec("mmap", 2),
      AllowWithoutExec("mprotect", 2),
  };
}

// Namespace flags, refused with CLONE_THREAD too: the extractor has no use for them (the kernel
// would refuse most for want of CAP_SYS_ADMIN, but after more of copy_process has run).
constexpr uint64_t kCloneNamespaces = CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
                                      CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;

// The layer reader thread (extractor.cc) and nothing else clone can make: a new process needs
// a new thread group, so clone is allowed only with CLONE_THREAD (which the kernel accepts only
// with CLONE_SIGHAND and CLONE_VM) and without namespace flags; fork, vfork and clone without
// CLONE_THREAD get the default EPERM. clone3 passes its flags in memory, where seccomp cannot
// look: ENOSYS makes glibc's pthread_create fall back to clone.
std::vector<oci::SeccompSyscall> ThreadRules() {
  oci::SeccompSyscall clone = Allow({"clone"});
  clone.args = {{0, CLONE_THREAD | kCloneNamespaces, CLONE_THREAD, "SCMP_CMP_MASKED_EQ"}};
  oci::SeccompSyscall clone3;
  clone3.names = {"clone3"};
  clone3.action = "SCMP_ACT_ERRNO";
  clone3.errno_ret = ENOSYS;
  return {
      clone,
      clone3,
      // A new thread registers its robust futex list and rseq area; pthread_join waits on a
      // futex, the stack is mapped without PROT_EXEC and madvised away (CommonRules).
      Allow({"set_robust_list", "rseq", "sched_yield"}),
      // Waking a reader blocked on an idle pipe (DecompressReader's cancel fd).
      Allow({"eventfd2", "poll", "ppoll"}),
#if defined(__SANITIZE_ADDRESS__)
      // AddressSanitizer's thread start: pthread_getattr_np (sched_getaffinity) and the
      // thread's signal stack.
      Allow({"sched_getaffinity", "sigaltstack"}),
#endif
  };
}

// Raw syscalls without glibc wrappers (glibc 2.36 has none for Landlock).
int LandlockCreateRuleset(const void* attr, size_t size, uint32_t flags) {
  return static_cast<int>(::syscall(__NR_landlock_create_ruleset, attr, size, flags));
}

// The ruleset attribute of ABI 6 (fs, net, scoped); older kernels get a prefix of it.
struct RulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};

uint64_t FsRightsOfAbi(int abi) {
  uint64_t r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1;  // ABI 1: bits 0..12
  if (abi >= 2) r |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3) r |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi >= 5) r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return r;
}

// Restricts the process to `allowed` rights beneath `dir_fd` (or nothing at all if dir_fd is
// -1). Needs no_new_privs. ABI 1 is treated as unavailable: it has no REFER right and denies
// every link or rename across directories, which layers need for hardlinks.
Result<int> ApplyLandlock(int dir_fd, uint64_t allowed) {
  int abi = LandlockAbi();
  if (abi < 2) return 0;
  RulesetAttr attr = {};
  attr.handled_access_fs = FsRightsOfAbi(abi);
  size_t size = sizeof(uint64_t);
  if (abi >= 4) {
    attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
    size = 2 * sizeof(uint64_t);
  }
  if (abi >= 6) {
    attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
    size = sizeof attr;
  }
  int rs = LandlockCreateRuleset(&attr, size, 0);
  if (rs < 0) return FailErrno("landlock_create_ruleset (abi %d)", abi);
  UniqueFd ruleset(rs);
  if (dir_fd >= 0) {
    struct landlock_path_beneath_attr rule = {};
    rule.allowed_access = allowed & attr.handled_access_fs;
    rule.parent_fd = dir_fd;
    if (::syscall(__NR_landlock_add_rule, ruleset.get(), LANDLOCK_RULE_PATH_BENEATH, &rule, 0) != 0)
      return FailErrno("landlock_add_rule on the target");
  }
  if (::syscall(__NR_landlock_restrict_self, ruleset.get(), 0) != 0)
    return FailErrno("landlock_restrict_self");
  return abi;
}

// Every fd except 0, 1, 2, `keep` and `keep2` closed.
Result<void> CloseFdsExcept(int keep, int keep2 = -1) {
  int keep_fds[] = {0, 1, 2, keep, keep2};
  std::sort(std::begin(keep_fds), std::end(keep_fds));
  unsigned next = 0;
  for (int k : keep_fds) {
    if (k < 0 || static_cast<unsigned>(k) < next) continue;
    if (static_cast<unsigned>(k) > next && ::close_range(next, k - 1, 0) != 0)
      return FailErrno("close_range %u..%d", next, k - 1);
    next = static_cast<unsigned>(k) + 1;
  }
  if (::close_range(next, ~0U, 0) != 0) return FailErrno("close_range %u..", next);
  return Ok();
}

// fd 2 onto /dev/null (before the chroot, which has no /dev/null), then every fd except 0, 1,
// 2, `keep` and `keep2` closed.
Result<void> CloseInheritedFds(int keep, int keep2) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd null, sys::open("/dev/null", O_RDWR));
  if (null.get() != 2) {
    if (::dup2(null.get(), 2) < 0) return FailErrno("dup2 /dev/null to fd 2");
  } else {
    (void)null.release();
  }
  null.reset();
  return CloseFdsExcept(keep, keep2);
}

Result<void> SetRlimits() {
  struct Limit {
    int resource;
    rlim_t value;
    const char* name;
  };
  Limit limits[] = {
    {RLIMIT_NOFILE, kMaxFiles, "RLIMIT_NOFILE"},
    {RLIMIT_NPROC, 0, "RLIMIT_NPROC"},
    {RLIMIT_CORE, 0, "RLIMIT_CORE"},
#if !defined(__SANITIZE_ADDRESS__)
    {RLIMIT_AS, kMaxAddressSpace, "RLIMIT_AS"},
#endif
  };
  for (const auto& l : limits) {
    struct rlimit rl = {l.value, l.value};
    if (::setrlimit(static_cast<__rlimit_resource>(l.resource), &rl) != 0)
      return FailErrno("setrlimit %s", l.name);
  }
  return Ok();
}

// Bounding set reduced to `caps` (while CAP_SETPCAP is still held), then permitted = effective
// = `caps`, inheritable and ambient empty.
Result<void> KeepOnlyCapabilities(const std::vector<int>& caps) {
  int last = CAP_LAST_CAP;
  if (auto t = sys::ReadFile("/proc/sys/kernel/cap_last_cap")) last = atoi(t->c_str());
  for (int cap = 0; cap <= last; ++cap) {
    if (std::find(caps.begin(), caps.end(), cap) != caps.end()) continue;
    MOAT_TRY(std::move(sys::prctl(PR_CAPBSET_DROP, static_cast<unsigned long>(cap)))
                 .Context("drop capability %d from the bounding set", cap));
  }
  MOAT_TRY(sys::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL));
  cap_t c = cap_init();
  if (!c) return FailErrno("cap_init");
  std::vector<cap_value_t> values(caps.begin(), caps.end());
  int rc = 0;
  if (!values.empty()) {
    rc = cap_set_flag(c, CAP_EFFECTIVE, static_cast<int>(values.size()), values.data(), CAP_SET);
    if (rc == 0)
      rc = cap_set_flag(c, CAP_PERMITTED, static_cast<int>(values.size()), values.data(), CAP_SET);
  }
  if (rc == 0) rc = cap_set_proc(c);
  int err = errno;
  cap_free(c);
  if (rc != 0) return Fail(Error::FromErrno(err, "capset"));
  return Ok();
}

// Dies with the parent (the signal follows the parent *thread*; the store waits in the thread
// that spawned), not dumpable, no_new_privs.
Result<void> NoPrivilegeGain(pid_t parent) {
  MOAT_TRY(sys::prctl(PR_SET_PDEATHSIG, SIGKILL));
  if (getppid() != parent) _exit(1);
  MOAT_TRY(sys::prctl(PR_SET_DUMPABLE, 0));
  MOAT_TRY(sys::prctl(PR_SET_NO_NEW_PRIVS, 1));
  return Ok();
}

// The broker's life: CAP_SYS_ADMIN alone, no file-system rights, then one request at a time:
// a message "o" with one fd; the reply is the errno as 4 bytes (0 on success).
[[noreturn]] void RunBroker(const ConfinePlan& plan, UniqueFd sock, pid_t parent) {
  auto fail = [](const Error&) { _exit(1); };
  // The layer and the reply pipe are not the broker's: /dev/null (fd 2 since
  // CloseInheritedFds) in their place, and the target closed.
  if (::dup2(2, 0) < 0 || ::dup2(2, 1) < 0) _exit(1);
  if (auto r = CloseFdsExcept(sock.get()); !r) fail(r.error());
  if (auto r = SetRlimits(); !r) fail(r.error());
  if (auto r = KeepOnlyCapabilities({CAP_SYS_ADMIN}); !r) fail(r.error());
  if (auto r = NoPrivilegeGain(parent); !r) fail(r.error());
  if (auto r = ApplyLandlock(-1, 0); !r) fail(r.error());
  if (auto r = seccomp::Install(plan.broker_program); !r) fail(r.error());
  for (;;) {
    auto m = sys::RecvWithFds(sock.get(), 16, 1);
    if (!m) _exit(1);
    if (m->data.empty() && m->fds.empty()) _exit(0);
    int err = 0;
    if (m->data != "o" || m->fds.size() != 1) {
      err = EINVAL;
    } else if (auto st = sys::fstat(m->fds[0].get()); !st) {
      err = st.error().sys_errno;
    } else if (!S_ISDIR(st->st_mode)) {
      err = ENOTDIR;
    } else if (::fsetxattr(m->fds[0].get(), kOpaqueXattr, "y", 1, 0) != 0) {
      err = errno;
    }
    if (::write(sock.get(), &err, sizeof err) != sizeof err) _exit(1);
  }
}

}  // namespace

int LandlockAbi() {
  int abi = LandlockCreateRuleset(nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : abi;
}

std::vector<int> ExtractorCapabilities(const ConfineOptions& options) {
  std::vector<int> caps = {CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_SETFCAP};
  if (options.ownership == KeepOwnership::kYes) {
    caps.push_back(CAP_CHOWN);
    caps.push_back(CAP_FSETID);
  }
  if (options.devices == DevicePolicy::kAllow) caps.push_back(CAP_MKNOD);
  std::sort(caps.begin(), caps.end());
  return caps;
}

oci::Seccomp ExtractorSeccompProfile(const ConfineOptions& options) {
  oci::Seccomp p;
  p.default_action = "SCMP_ACT_ERRNO";
  p.default_errno_ret = EPERM;
  p.syscalls = {
      // The layer on fd 0, the reply on fd 1, file contents (pwrite64), the broker's answers.
      Allow({"read", "write", "pread64", "pwrite64", "lseek", "close", "fcntl"}),
      // Entries, always relative to a directory fd resolved with openat2(RESOLVE_IN_ROOT).
      // fcntl: F_DUPFD_CLOEXEC for fdopendir; getdents64: removing a replaced tree.
      Allow({"openat", "openat2", "mkdirat", "mknodat", "symlinkat", "linkat", "unlinkat",
             "getdents64", "ftruncate"}),
      // Metadata. umask: the extractor reads its own creation mask (refused, umask(2) "returns"
      // -1 and every file would get a needless fchmod).
      Allow({"fstat", "newfstatat", "statx", "fchown", "fchownat", "fchmod", "fchmodat",
             "utimensat", "fsetxattr", "umask"}),
  };
  if (options.broker == NeedBroker::kYes) {
    // The broker channel (SendWithFds checks SO_TYPE) and reaping the broker.
    p.syscalls.push_back(Allow({"sendmsg", "getsockopt", "wait4"}));
  }
  for (auto& r : ThreadRules()) p.syscalls.push_back(std::move(r));
  for (auto& r : CommonRules()) p.syscalls.push_back(std::move(r));
  return p;
}

oci::Seccomp BrokerSeccompProfile() {
  oci::Seccomp p;
  p.default_action = "SCMP_ACT_ERRNO";
  p.default_errno_ret = EPERM;
  // Requests (RecvWithFds checks SO_TYPE), the check and the one xattr, replies.
  p.syscalls = {
      Allow({"recvmsg", "getsockopt", "fstat", "newfstatat", "fsetxattr", "write", "close"})};
  for (auto& r : CommonRules()) p.syscalls.push_back(std::move(r));
  return p;
}

Result<ConfinePlan> PlanConfinement(const ConfineOptions& options) {
  ConfinePlan plan;
  plan.options = options;
  plan.caps = ExtractorCapabilities(options);
  MOAT_ASSIGN_OR_RETURN(plan.extractor_program, seccomp::Compile(ExtractorSeccompProfile(options)));
  if (options.broker == NeedBroker::kYes) {
    MOAT_ASSIGN_OR_RETURN(plan.broker_program, seccomp::Compile(BrokerSeccompProfile()));
  }
  return plan;
}

OpaqueBroker::~OpaqueBroker() {
  if (pid_ > 0) {
    sock_.reset();  // EOF: the broker exits
    (void)sys::waitpid(pid_);
  }
}

Result<void> OpaqueBroker::MarkOpaque(int dir_fd, const std::string& xattr_namespace) {
  std::string name = xattr_namespace + ".overlay.opaque";
  if (!sock_.valid() || xattr_namespace != "trusted") return sys::fsetxattr(dir_fd, name, "y", 1);
  MOAT_TRY(sys::SendWithFds(sock_.get(), "o", {dir_fd}).Context("opaque broker"));
  int err = 0;
  MOAT_ASSIGN_OR_RETURN(size_t n, sys::read(sock_.get(), &err, sizeof err));
  if (n != sizeof err) return Fail(ErrorKind::kInternal, "opaque broker exited");
  if (err != 0) return Fail(Error::FromErrno(err, "fsetxattr " + name));
  return Ok();
}

Result<ConfineReport> EnterConfinement(const ConfinePlan& plan, int target_fd,
                                       std::unique_ptr<OpaqueBroker>* broker) {
  ConfineReport report;
  pid_t parent = getppid();
  MOAT_TRY(CloseInheritedFds(target_fd, plan.options.output_fd).Context("closing inherited fds"));
  bool root = geteuid() == 0;
  if (root) {
    // New namespaces first (needs CAP_SYS_ADMIN): a private mount namespace so that mounts
    // the daemon makes later cannot reach in, and a chroot into the target.
    MOAT_TRY(sys::unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS));
    MOAT_TRY(sys::mount("", "/", "", MS_REC | MS_PRIVATE, "").Context("private propagation"));
    MOAT_TRY(sys::fchdir(target_fd));
    if (::chroot(".") != 0) return FailErrno("chroot into the target");
    MOAT_TRY(sys::chdir("/"));
    report.namespaces = true;
    if (plan.options.broker == NeedBroker::kYes && broker) {
      MOAT_ASSIGN_OR_RETURN(auto pair, sys::socketpair(SOCK_SEQPACKET));
      pid_t self = getpid();
      pid_t pid = ::fork();
      if (pid < 0) return FailErrno("fork the opaque broker");
      if (pid == 0) {
        pair.first.reset();
        RunBroker(plan, std::move(pair.second), self);
      }
      pair.second.reset();
      *broker = std::make_unique<OpaqueBroker>(std::move(pair.first), pid);
    }
  }
  MOAT_TRY(SetRlimits());
  if (root) MOAT_TRY(KeepOnlyCapabilities(plan.caps));
  MOAT_TRY(NoPrivilegeGain(parent));
  uint64_t allowed =
      FsRightsOfAbi(LandlockAbi()) &
      ~(LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_IOCTL_DEV | LANDLOCK_ACCESS_FS_MAKE_SOCK);
  if (plan.options.devices == DevicePolicy::kRefuse) allowed &= ~LANDLOCK_ACCESS_FS_MAKE_BLOCK;
  MOAT_ASSIGN_OR_RETURN(report.landlock_abi, ApplyLandlock(target_fd, allowed));
  MOAT_TRY(seccomp::Install(plan.extractor_program).Context("seccomp"));
  return report;
}

}  // namespace moat::image
