#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <set>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/process.h"
#include "seccomp/compiler.h"
#include "seccomp/test_support.h"

namespace moat::seccomp {
namespace {

using ::testing::HasSubstr;

constexpr uint32_t kEperm = SECCOMP_RET_ERRNO | EPERM;
constexpr uint32_t kEnosys = SECCOMP_RET_ERRNO | ENOSYS;
constexpr const char* kArches[] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
                                   "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"};

class DefaultProfileTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto profile = DefaultProfile();
    ASSERT_TRUE(profile) << profile.error().message;
    auto program = Compile(*profile);
    ASSERT_TRUE(program) << program.error().message;
    profile_ = new oci::Seccomp(std::move(*profile));
    program_ = new Program(std::move(*program));
  }
  static void TearDownTestSuite() {
    delete profile_;
    delete program_;
  }
  static const oci::Seccomp* profile_;
  static const Program* program_;
};
const oci::Seccomp* DefaultProfileTest::profile_ = nullptr;
const Program* DefaultProfileTest::program_ = nullptr;

TEST_F(DefaultProfileTest, ShapeAndSize) {
  EXPECT_EQ(profile_->default_action, "SCMP_ACT_ERRNO");
  EXPECT_EQ(profile_->default_errno_ret, 1u);
  EXPECT_THAT(profile_->architectures, ::testing::ElementsAreArray(kArches));
  EXPECT_FALSE(program_->needs_listener);
  EXPECT_EQ(program_->flags, 0u);
  EXPECT_LE(program_->instructions.size(), 4096u);
  std::set<std::string> allowed;
  for (const auto& rule : profile_->syscalls) {
    if (rule.action == "SCMP_ACT_ALLOW") allowed.insert(rule.names.begin(), rule.names.end());
  }
  std::printf("[ INFO     ] default profile: %zu syscall names allowed, %zu BPF instructions\n",
              allowed.size(), program_->instructions.size());
}

TEST_F(DefaultProfileTest, EverydaySyscallsAreAllowedOnEveryArch) {
  // What a dynamic glibc program, busybox sh and coreutils use on start and in normal work.
  const char* everyday[] = {"read",
                            "write",
                            "openat",
                            "close",
                            "newfstatat",
                            "statx",
                            "faccessat2",
                            "close_range",
                            "openat2",
                            "pidfd_open",
                            "epoll_pwait2",
                            "getrandom",
                            "membarrier",
                            "rseq",
                            "set_tid_address",
                            "set_robust_list",
                            "prlimit64",
                            "sched_getaffinity",
                            "mmap",
                            "mprotect",
                            "munmap",
                            "brk",
                            "execve",
                            "exit_group",
                            "wait4",
                            "rt_sigaction",
                            "rt_sigprocmask",
                            "futex",
                            "getdents64",
                            "fchmodat2",
                            "sendto",
                            "recvfrom",
                            "mknodat",
                            "chroot",
                            "uname"};
  for (const char* arch : kArches) {
    for (const char* name : everyday) {
      auto nr = SyscallNumber(arch, name);
      if (!nr) continue;  // e.g. newfstatat does not exist on x86 and arm
      SCOPED_TRACE(StrFormat("%s %s", arch, name));
      EXPECT_EQ(VerdictNr(*program_, *nr, {}, arch), SECCOMP_RET_ALLOW);
    }
  }
  EXPECT_EQ(Verdict(*program_, "arch_prctl"), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Verdict(*program_, "socketcall", {}, "SCMP_ARCH_X86"), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Verdict(*program_, "set_tls", {}, "SCMP_ARCH_ARM"), SECCOMP_RET_ALLOW);
}

TEST_F(DefaultProfileTest, DangerousSyscallsAreDenied) {
  const char* denied[] = {"mount",
                          "umount2",
                          "pivot_root",
                          "unshare",
                          "setns",
                          "kexec_load",
                          "kexec_file_load",
                          "init_module",
                          "finit_module",
                          "delete_module",
                          "bpf",
                          "perf_event_open",
                          "ptrace",
                          "process_vm_readv",
                          "process_vm_writev",
                          "keyctl",
                          "add_key",
                          "request_key",
                          "open_by_handle_at",
                          "name_to_handle_at",
                          "userfaultfd",
                          "swapon",
                          "swapoff",
                          "reboot",
                          "settimeofday",
                          "clock_settime",
                          "adjtimex",
                          "clock_adjtime",
                          "acct",
                          "quotactl",
                          "quotactl_fd",
                          "lookup_dcookie",
                          "syslog",
                          "iopl",
                          "ioperm",
                          "kcmp",
                          "pidfd_getfd",
                          "fanotify_init",
                          "move_mount",
                          "fsopen",
                          "fsmount",
                          "fsconfig",
                          "fspick",
                          "open_tree",
                          "mount_setattr",
                          "sethostname",
                          "setdomainname",
                          "modify_ldt",
                          "vhangup",
                          "mbind",
                          "set_mempolicy",
                          "move_pages",
                          "migrate_pages",
                          "process_madvise"};
  for (const char* arch : kArches) {
    for (const char* name : denied) {
      auto nr = SyscallNumber(arch, name);
      if (!nr) continue;
      SCOPED_TRACE(StrFormat("%s %s", arch, name));
      EXPECT_EQ(VerdictNr(*program_, *nr, {}, arch), kEperm);
    }
  }
  EXPECT_EQ(Verdict(*program_, "vm86", {}, "SCMP_ARCH_X86"), kEperm);
}

TEST_F(DefaultProfileTest, CloneOnlyWithoutNamespaceFlags) {
  const uint64_t fork_flags = CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD;
  const uint64_t thread_flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                                CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
                                CLONE_CHILD_CLEARTID;
  for (const char* arch : kArches) {
    SCOPED_TRACE(arch);
    EXPECT_EQ(Verdict(*program_, "clone", {fork_flags}, arch), SECCOMP_RET_ALLOW);
    EXPECT_EQ(Verdict(*program_, "clone", {thread_flags}, arch), SECCOMP_RET_ALLOW);
    for (uint64_t ns : {CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
                        CLONE_NEWNET, CLONE_NEWCGROUP}) {
      EXPECT_EQ(Verdict(*program_, "clone", {fork_flags | ns}, arch), kEperm) << ns;
    }
    // clone3 passes its flags in memory, out of seccomp's reach: ENOSYS makes glibc use clone.
    EXPECT_EQ(Verdict(*program_, "clone3", {}, arch), kEnosys);
  }
}

TEST_F(DefaultProfileTest, PersonalityOnlyDockersValues) {
  for (uint64_t allowed : {0x0ull, 0x8ull, 0x20000ull, 0x20008ull, 0xffffffffull}) {
    EXPECT_EQ(Verdict(*program_, "personality", {allowed}), SECCOMP_RET_ALLOW) << allowed;
  }
  EXPECT_EQ(Verdict(*program_, "personality", {ADDR_NO_RANDOMIZE}), kEperm);
  EXPECT_EQ(Verdict(*program_, "personality", {READ_IMPLIES_EXEC}), kEperm);
}

TEST_F(DefaultProfileTest, SocketExceptVsock) {
  for (const char* arch : {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"}) {
    SCOPED_TRACE(arch);
    EXPECT_EQ(Verdict(*program_, "socket", {AF_INET, SOCK_DGRAM, IPPROTO_ICMP}, arch),
              SECCOMP_RET_ALLOW);
    EXPECT_EQ(Verdict(*program_, "socket", {AF_UNIX, SOCK_STREAM}, arch), SECCOMP_RET_ALLOW);
    EXPECT_EQ(Verdict(*program_, "socket", {AF_NETLINK, SOCK_RAW}, arch), SECCOMP_RET_ALLOW);
    EXPECT_EQ(Verdict(*program_, "socket", {AF_VSOCK, SOCK_STREAM}, arch), kEperm);
  }
}

TEST_F(DefaultProfileTest, IoUringAndUnknownSyscallsLookAbsent) {
  for (const char* name : {"io_uring_setup", "io_uring_enter", "io_uring_register"}) {
    EXPECT_EQ(Verdict(*program_, name), kEnosys) << name;
  }
  // Numbers past libseccomp's table (statmount is 457 on every architecture since Linux 6.8).
  for (const char* arch : kArches) {
    const uint32_t base = std::string_view(arch) == "SCMP_ARCH_X32" ? 0x40000000 : 0;
    EXPECT_EQ(VerdictNr(*program_, base + 500, {}, arch), kEnosys) << arch;
  }
}

TEST_F(DefaultProfileTest, CompileVersusCachedLoad) {
  char tmpl[] = "/tmp/moat-seccomp-timing-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = std::string(tmpl) + "/cache";
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };

  auto t0 = Clock::now();
  auto compiled = Compile(*profile_);
  auto t1 = Clock::now();
  CacheOutcome outcome;
  auto stored = CompileCached(*profile_, dir, &outcome);
  ASSERT_TRUE(stored) << stored.error().message;
  ASSERT_EQ(outcome, CacheOutcome::kMiss);
  auto t2 = Clock::now();
  auto loaded = CompileCached(*profile_, dir, &outcome);
  auto t3 = Clock::now();
  ASSERT_TRUE(compiled && loaded);
  EXPECT_EQ(outcome, CacheOutcome::kHit);
  EXPECT_EQ(loaded->instructions.size(), compiled->instructions.size());
  std::printf(
      "[ INFO     ] default profile: Compile %.2f ms, CompileCached miss %.2f ms, hit %.3f ms\n",
      ms(t1 - t0), ms(t2 - t1), ms(t3 - t2));
  ASSERT_TRUE(sys::RemoveAll(tmpl));
}

// Decision tables: the verdict of the compiled default profile for every syscall libseccomp
// knows on an architecture. Reviewing a profile change means reviewing the diff of these files.
// Regenerate with MOAT_UPDATE_GOLDEN=1.
std::string VerdictName(uint32_t v) {
  const uint32_t data = v & SECCOMP_RET_DATA;
  switch (v & SECCOMP_RET_ACTION_FULL) {
    case SECCOMP_RET_ALLOW:
      return "allow";
    case SECCOMP_RET_ERRNO:
      return StrFormat("errno(%u)", data);
    case SECCOMP_RET_KILL_PROCESS:
      return "kill_process";
    case SECCOMP_RET_KILL_THREAD:
      return "kill_thread";
    case SECCOMP_RET_TRAP:
      return "trap";
    case SECCOMP_RET_TRACE:
      return StrFormat("trace(%u)", data);
    case SECCOMP_RET_LOG:
      return "log";
    case SECCOMP_RET_USER_NOTIF:
      return "notify";
  }
  return StrFormat("%#x", v);
}

std::string DecisionTable(const Program& program, const std::string& arch) {
  std::string out = StrFormat(
      "# Verdicts of profiles/seccomp-default.json compiled with %s, for %s.\n"
      "# \"a=0\": all arguments 0; \"a=~0\": all arguments all-ones; listed when they differ.\n"
      "# Regenerate: MOAT_UPDATE_GOLDEN=1 seccomp_test --gtest_filter='DefaultProfileGolden*'\n",
      BackendVersion().c_str(), arch.c_str());
  const auto table = SyscallTable(arch);
  const uint32_t base = arch == "SCMP_ARCH_X32" ? 0x40000000 : 0;
  std::set<uint32_t> known;
  for (const auto& [nr, name] : table) {
    known.insert(nr);
    const uint64_t ones = ~0ull;
    uint32_t zero = VerdictNr(program, nr, {0, 0, 0, 0, 0, 0}, arch);
    uint32_t all = VerdictNr(program, nr, {ones, ones, ones, ones, ones, ones}, arch);
    if (zero == all) {
      out += StrFormat("%u %s %s\n", nr - base, name.c_str(), VerdictName(zero).c_str());
    } else {
      out += StrFormat("%u %s a=0:%s a=~0:%s\n", nr - base, name.c_str(), VerdictName(zero).c_str(),
                       VerdictName(all).c_str());
    }
  }
  // Numbers libseccomp does not know, as runs of equal verdicts.
  uint32_t run_start = 0;
  std::string run_verdict;
  auto flush = [&](uint32_t end) {
    if (!run_verdict.empty())
      out += StrFormat("%u-%u unknown %s\n", run_start, end - 1, run_verdict.c_str());
    run_verdict.clear();
  };
  for (uint32_t rel = 0; rel < 1024; ++rel) {
    if (known.count(base + rel)) {
      flush(rel);
      continue;
    }
    std::string v = VerdictName(VerdictNr(program, base + rel, {}, arch));
    if (v != run_verdict) {
      flush(rel);
      run_start = rel;
      run_verdict = v;
    }
  }
  flush(1024);
  return out;
}

class DefaultProfileGoldenTest : public DefaultProfileTest,
                                 public ::testing::WithParamInterface<const char*> {};

TEST_P(DefaultProfileGoldenTest, MatchesDecisionTable) {
  const std::string arch = GetParam();
  std::string suffix = arch.substr(std::string("SCMP_ARCH_").size());
  for (char& c : suffix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string path =
      StrFormat("%s/tests/golden/seccomp/default-%s.txt", MOAT_SOURCE_DIR, suffix.c_str());
  const std::string actual = DecisionTable(*program_, arch);
  if (std::getenv("MOAT_UPDATE_GOLDEN")) {
    ASSERT_TRUE(sys::MkdirAll(StrFormat("%s/tests/golden/seccomp", MOAT_SOURCE_DIR), 0755));
    ASSERT_TRUE(sys::WriteFileAtomic(path, actual, 0644));
    return;
  }
  auto expected = sys::ReadFile(path);
  ASSERT_TRUE(expected) << expected.error().message << " (run with MOAT_UPDATE_GOLDEN=1)";
  if (*expected == actual) return;
  auto want = StrSplit(*expected, '\n');
  auto got = StrSplit(actual, '\n');
  for (size_t i = 0; i < std::max(want.size(), got.size()); ++i) {
    const std::string w = i < want.size() ? want[i] : "<end>";
    const std::string g = i < got.size() ? got[i] : "<end>";
    if (w != g) {
      FAIL() << path << " differs at line " << i + 1 << ":\n  golden: " << w << "\n  actual: " << g
             << "\n(regenerate with MOAT_UPDATE_GOLDEN=1 if intended)";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Arches, DefaultProfileGoldenTest, ::testing::ValuesIn(kArches));

// Runs real programs under the default profile: a static busybox, dynamic glibc coreutils
// (threads via sort --parallel, which meets the clone3 -> clone fallback) and python3.
TEST_F(DefaultProfileTest, RealProgramsRunUnderIt) {
  if (access("/usr/bin/busybox", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/busybox";
  const char* script =
      "set -e\n"
      "grep -q '^Seccomp:[[:space:]]*2' /proc/self/status\n"
      "d=$(mktemp -d)\n"
      "cd \"$d\"\n"
      "echo hello > f; chmod 600 f; ln -s f l; mkdir sub; mv f sub/g; cat sub/g | grep -q hello\n"
      "/usr/bin/busybox sh -c 'echo hi | tr a-z A-Z' | grep -q HI\n"
      "/usr/bin/busybox ls -la / > /dev/null\n"
      "/bin/ls -la / > /dev/null\n"
      "/usr/bin/stat / > /dev/null\n"
      "/usr/bin/seq 1 50000 | /usr/bin/sort -n -r --parallel=2 -S 1M | head -n 1 | grep -qx 50000\n"
      "/usr/bin/id > /dev/null; /bin/date > /dev/null; /usr/bin/env true\n"
      "if [ -x /usr/bin/python3 ]; then /usr/bin/python3 -c '\n"
      "import os, socket, subprocess, threading\n"
      "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
      "assert subprocess.run([\"/bin/true\"]).returncode == 0\n"
      "a, b = socket.socketpair(); a.send(b\"x\"); assert b.recv(1) == b\"x\"\n"
      "try:\n"
      "    socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP).close()\n"
      "except PermissionError as e:\n"
      "    assert e.errno != 1, e  # EACCES from ping_group_range is fine; EPERM is seccomp\n"
      "import ctypes\n"
      "libc = ctypes.CDLL(None, use_errno=True)\n"
      "assert libc.unshare(0x10000000) == -1 and ctypes.get_errno() == 1  # CLONE_NEWUSER\n"
      "'; fi\n"
      "cd /; rm -rf \"$d\"\n";
  UniqueFd pidfd;
  sys::CloneArgs args{};
  args.flags = CLONE_PIDFD;
  args.exit_signal = SIGCHLD;
  const Program& program = *program_;
  auto pid = sys::clone3(args, &pidfd);
  ASSERT_TRUE(pid) << pid.error().message;
  if (*pid == 0) {
    if (!sys::prctl(PR_SET_NO_NEW_PRIVS, 1)) _exit(120);
    if (!Install(program)) _exit(121);
    const char* argv[] = {"sh", "-c", script, nullptr};
    const char* envp[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", nullptr};
    execve("/usr/bin/busybox", const_cast<char**>(argv), const_cast<char**>(envp));
    _exit(122);
  }
  auto info = sys::waitid_pidfd(pidfd.get(), WEXITED);
  ASSERT_TRUE(info) << info.error().message;
  EXPECT_EQ(sys::ExitCodeFromSiginfo(*info), 0);
}

}  // namespace
}  // namespace moat::seccomp
