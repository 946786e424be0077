#include "seccomp/compiler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "base/sys/fs.h"
#include "base/sys/process.h"
#include "seccomp/bpf_eval.h"
#include "seccomp/test_support.h"

namespace moat::seccomp {
namespace {

using ::testing::HasSubstr;

TEST(CompilerTest, AllowsListedAndDeniesTheRest) {
  auto program = Compile(Profile("SCMP_ACT_ERRNO", {Rule({"read", "write"}, "SCMP_ACT_ALLOW")}));
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_FALSE(program->needs_listener);
  EXPECT_EQ(program->flags, 0u);
  EXPECT_EQ(Verdict(*program, "read"), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Verdict(*program, "write"), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Verdict(*program, "mount"), SECCOMP_RET_ERRNO | EPERM);
}

TEST(CompilerTest, DefaultErrnoRetAndRuleErrnoRet) {
  oci::Seccomp p = Profile("SCMP_ACT_ERRNO", {Rule({"getpid"}, "SCMP_ACT_ALLOW"),
                                              Rule({"clone3"}, "SCMP_ACT_ERRNO", 38)});
  p.default_errno_ret = 13;
  auto program = Compile(p);
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_EQ(Verdict(*program, "clone3"), SECCOMP_RET_ERRNO | 38);
  EXPECT_EQ(Verdict(*program, "mount"), SECCOMP_RET_ERRNO | 13);
  EXPECT_EQ(Verdict(*program, "getpid"), SECCOMP_RET_ALLOW);
}

TEST(CompilerTest, MapsEveryAction) {
  auto program =
      Compile(Profile("SCMP_ACT_ALLOW",
                      {Rule({"mount"}, "SCMP_ACT_KILL"), Rule({"umount2"}, "SCMP_ACT_KILL_THREAD"),
                       Rule({"reboot"}, "SCMP_ACT_KILL_PROCESS"), Rule({"swapon"}, "SCMP_ACT_TRAP"),
                       Rule({"swapoff"}, "SCMP_ACT_TRACE", 7), Rule({"acct"}, "SCMP_ACT_TRACE"),
                       Rule({"syslog"}, "SCMP_ACT_LOG"), Rule({"uname"}, "SCMP_ACT_ERRNO")}));
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_EQ(Verdict(*program, "mount"), SECCOMP_RET_KILL_THREAD);
  EXPECT_EQ(Verdict(*program, "umount2"), SECCOMP_RET_KILL_THREAD);
  EXPECT_EQ(Verdict(*program, "reboot"), SECCOMP_RET_KILL_PROCESS);
  EXPECT_EQ(Verdict(*program, "swapon"), SECCOMP_RET_TRAP);
  EXPECT_EQ(Verdict(*program, "swapoff"), SECCOMP_RET_TRACE | 7);
  EXPECT_EQ(Verdict(*program, "acct"), SECCOMP_RET_TRACE | EPERM);
  EXPECT_EQ(Verdict(*program, "syslog"), SECCOMP_RET_LOG);
  EXPECT_EQ(Verdict(*program, "uname"), SECCOMP_RET_ERRNO | EPERM);
  EXPECT_EQ(Verdict(*program, "read"), SECCOMP_RET_ALLOW);
}

TEST(CompilerTest, NotifySetsNeedsListener) {
  auto program = Compile(Profile("SCMP_ACT_ALLOW", {Rule({"mkdirat"}, "SCMP_ACT_NOTIFY")}));
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_TRUE(program->needs_listener);
  EXPECT_EQ(Verdict(*program, "mkdirat"), SECCOMP_RET_USER_NOTIF);
}

TEST(CompilerTest, MaskedEqUsesValueAsMaskAndValueTwoAsDatum) {
  // Clone without any namespace flag, as in the default profile.
  auto program =
      Compile(Profile("SCMP_ACT_ERRNO", {Rule({"clone"}, "SCMP_ACT_ALLOW", std::nullopt,
                                              {Arg(0, 0x7E020000, "SCMP_CMP_MASKED_EQ", 0)})}));
  ASSERT_TRUE(program) << program.error().message;
  const uint64_t fork_flags = CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD;
  const uint64_t thread_flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                                CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
                                CLONE_CHILD_CLEARTID;
  EXPECT_EQ(Verdict(*program, "clone", {fork_flags}), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Verdict(*program, "clone", {thread_flags}), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Verdict(*program, "clone", {fork_flags | CLONE_NEWUSER}), SECCOMP_RET_ERRNO | EPERM);
  EXPECT_EQ(Verdict(*program, "clone", {fork_flags | CLONE_NEWNS}), SECCOMP_RET_ERRNO | EPERM);
  EXPECT_EQ(Verdict(*program, "clone", {CLONE_NEWNET}), SECCOMP_RET_ERRNO | EPERM);
}

TEST(CompilerTest, SameIndexArgsAreAlternativesDifferentIndexesAllMustMatch) {
  auto program = Compile(Profile(
      "SCMP_ACT_ERRNO",
      {Rule({"kill"}, "SCMP_ACT_ALLOW", std::nullopt,
            {Arg(0, 1, "SCMP_CMP_EQ"), Arg(0, 2, "SCMP_CMP_EQ"), Arg(1, 15, "SCMP_CMP_EQ")})}));
  ASSERT_TRUE(program) << program.error().message;
  const uint32_t deny = SECCOMP_RET_ERRNO | EPERM;
  EXPECT_EQ(Verdict(*program, "kill", {1, 15}), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Verdict(*program, "kill", {2, 15}), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Verdict(*program, "kill", {3, 15}), deny);
  EXPECT_EQ(Verdict(*program, "kill", {1, 9}), deny);
}

TEST(CompilerTest, ComparisonOperators) {
  auto program = Compile(
      Profile("SCMP_ACT_ERRNO",
              {Rule({"dup"}, "SCMP_ACT_ALLOW", std::nullopt, {Arg(0, 10, "SCMP_CMP_LT")}),
               Rule({"dup2"}, "SCMP_ACT_ALLOW", std::nullopt, {Arg(0, 10, "SCMP_CMP_LE")}),
               Rule({"dup3"}, "SCMP_ACT_ALLOW", std::nullopt, {Arg(0, 10, "SCMP_CMP_GE")}),
               Rule({"close"}, "SCMP_ACT_ALLOW", std::nullopt, {Arg(0, 10, "SCMP_CMP_GT")}),
               Rule({"fsync"}, "SCMP_ACT_ALLOW", std::nullopt, {Arg(0, 10, "SCMP_CMP_NE")}),
               Rule({"socket"}, "SCMP_ACT_ALLOW", std::nullopt,
                    {Arg(0, 0xffffffff00000000ull, "SCMP_CMP_MASKED_EQ", 0x100000000ull)})}));
  ASSERT_TRUE(program) << program.error().message;
  const uint32_t allow = SECCOMP_RET_ALLOW;
  const uint32_t deny = SECCOMP_RET_ERRNO | EPERM;
  EXPECT_EQ(Verdict(*program, "dup", {9}), allow);
  EXPECT_EQ(Verdict(*program, "dup", {10}), deny);
  EXPECT_EQ(Verdict(*program, "dup2", {10}), allow);
  EXPECT_EQ(Verdict(*program, "dup2", {11}), deny);
  EXPECT_EQ(Verdict(*program, "dup3", {10}), allow);
  EXPECT_EQ(Verdict(*program, "dup3", {9}), deny);
  EXPECT_EQ(Verdict(*program, "close", {11}), allow);
  EXPECT_EQ(Verdict(*program, "close", {10}), deny);
  EXPECT_EQ(Verdict(*program, "fsync", {11}), allow);
  EXPECT_EQ(Verdict(*program, "fsync", {10}), deny);
  // 64-bit comparisons look at both halves of the argument.
  EXPECT_EQ(Verdict(*program, "close", {0x100000000ull}), allow);
  EXPECT_EQ(Verdict(*program, "socket", {0x100000005ull}), allow);
  EXPECT_EQ(Verdict(*program, "socket", {0x200000005ull}), deny);
}

TEST(CompilerTest, RuleWithTheDefaultActionIsDropped) {
  auto program = Compile(Profile(
      "SCMP_ACT_ERRNO", {Rule({"mount"}, "SCMP_ACT_ERRNO"), Rule({"read"}, "SCMP_ACT_ALLOW")}));
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_EQ(Verdict(*program, "mount"), SECCOMP_RET_ERRNO | EPERM);
  EXPECT_EQ(Verdict(*program, "read"), SECCOMP_RET_ALLOW);
}

TEST(CompilerTest, UnknownArchitectureGetsTheBadArchAction) {
  auto program = Compile(Profile("SCMP_ACT_ALLOW", {Rule({"mount"}, "SCMP_ACT_ERRNO")}));
  ASSERT_TRUE(program) << program.error().message;
  seccomp_data d{};
  d.arch = AUDIT_ARCH_PPC64LE;
  d.nr = 0;
  EXPECT_EQ(*Evaluate(program->instructions, d), SECCOMP_RET_KILL_THREAD);
}

TEST(CompilerTest, ExtraArchitecturesUseTheirOwnNumbers) {
  if (NativeArchitecture() != "SCMP_ARCH_X86_64") GTEST_SKIP() << "x86_64 host only";
  oci::Seccomp p = Profile("SCMP_ACT_ERRNO", {Rule({"uname", "socketcall"}, "SCMP_ACT_ALLOW")});
  p.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"};
  auto program = Compile(p);
  ASSERT_TRUE(program) << program.error().message;
  for (const char* arch : {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"}) {
    SCOPED_TRACE(arch);
    EXPECT_EQ(Verdict(*program, "uname", {}, arch), SECCOMP_RET_ALLOW);
    EXPECT_EQ(Verdict(*program, "mount", {}, arch), SECCOMP_RET_ERRNO | EPERM);
  }
  // socketcall exists on x86 only; naming it is not an error elsewhere.
  EXPECT_EQ(Verdict(*program, "socketcall", {}, "SCMP_ARCH_X86"), SECCOMP_RET_ALLOW);
  // Without x32 in the list, x32 numbers are a bad architecture.
  auto native_only = Compile(Profile("SCMP_ACT_ERRNO", {Rule({"uname"}, "SCMP_ACT_ALLOW")}));
  ASSERT_TRUE(native_only);
  EXPECT_EQ(Verdict(*native_only, "uname", {}, "SCMP_ARCH_X32"), SECCOMP_RET_KILL_THREAD);
  EXPECT_EQ(Verdict(*native_only, "uname", {}, "SCMP_ARCH_X86"), SECCOMP_RET_KILL_THREAD);
}

TEST(CompilerTest, SyscallsNewerThanLibseccompGetEnosysWhenDenying) {
  auto table = SyscallTable(NativeArchitecture());
  ASSERT_FALSE(table.empty());
  uint32_t highest = 0;
  for (const auto& [nr, name] : table) {
    if (nr < 512) highest = nr;
  }
  ASSERT_LT(highest, 511u);
  auto deny = Compile(Profile("SCMP_ACT_ERRNO", {Rule({"read"}, "SCMP_ACT_ALLOW")}));
  ASSERT_TRUE(deny);
  EXPECT_EQ(VerdictNr(*deny, highest), SECCOMP_RET_ERRNO | EPERM);
  EXPECT_EQ(VerdictNr(*deny, highest + 1), SECCOMP_RET_ERRNO | ENOSYS);
  EXPECT_EQ(VerdictNr(*deny, 511), SECCOMP_RET_ERRNO | ENOSYS);
  EXPECT_EQ(VerdictNr(*deny, 512), SECCOMP_RET_ERRNO | EPERM);
  EXPECT_EQ(Verdict(*deny, "read"), SECCOMP_RET_ALLOW);
  auto kill = Compile(Profile("SCMP_ACT_KILL_PROCESS", {Rule({"read"}, "SCMP_ACT_ALLOW")}));
  ASSERT_TRUE(kill);
  EXPECT_EQ(VerdictNr(*kill, highest + 1), SECCOMP_RET_ERRNO | ENOSYS);
  // An allow-by-default profile keeps allowing what it does not know.
  auto allow = Compile(Profile("SCMP_ACT_ALLOW", {Rule({"mount"}, "SCMP_ACT_ERRNO")}));
  ASSERT_TRUE(allow);
  EXPECT_EQ(VerdictNr(*allow, highest + 1), SECCOMP_RET_ALLOW);
}

TEST(CompilerTest, RecordsFlags) {
  oci::Seccomp p = Profile("SCMP_ACT_ALLOW", {Rule({"mount"}, "SCMP_ACT_NOTIFY")});
  p.flags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
             "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  auto program = Compile(p);
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_EQ(program->flags, (1u << 0) | (1u << 1) | (1u << 2) | (1u << 5));
}

struct BadProfileCase {
  const char* name;
  oci::Seccomp profile;
  const char* message;
};

std::vector<BadProfileCase> BadProfiles() {
  std::vector<BadProfileCase> cases;
  auto add = [&](const char* name, oci::Seccomp p, const char* message) {
    cases.push_back({name, std::move(p), message});
  };
  add("UnknownSyscall",
      Profile("SCMP_ACT_ERRNO",
              {Rule({"read"}, "SCMP_ACT_ALLOW"), Rule({"read"}, "SCMP_ACT_ALLOW"),
               Rule({"read"}, "SCMP_ACT_ALLOW"), Rule({"write", "foo"}, "SCMP_ACT_ALLOW")}),
      "linux.seccomp.syscalls[3].names[1]: unknown syscall \"foo\"");
  add("UnknownSyscallInRuleWithDefaultAction",
      Profile("SCMP_ACT_ERRNO", {Rule({"nosuchcall"}, "SCMP_ACT_ERRNO")}),
      "linux.seccomp.syscalls[0].names[0]: unknown syscall \"nosuchcall\"");
  add("UnknownDefaultAction", Profile("SCMP_ACT_DENY", {}),
      "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_DENY\"");
  add("UnknownRuleAction", Profile("SCMP_ACT_ERRNO", {Rule({"read"}, "ALLOW")}),
      "linux.seccomp.syscalls[0].action: unknown action \"ALLOW\"");
  add("NotifyDefault", Profile("SCMP_ACT_NOTIFY", {}),
      "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
  add("ErrnoRetWithAllow", Profile("SCMP_ACT_ERRNO", {Rule({"read"}, "SCMP_ACT_ALLOW", 5)}),
      "linux.seccomp.syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno");
  add("ErrnoOutOfRange", Profile("SCMP_ACT_ALLOW", {Rule({"read"}, "SCMP_ACT_ERRNO", 4096)}),
      "linux.seccomp.syscalls[0].errnoRet: 4096 is out of range 0..4095");
  add("EmptyNames", Profile("SCMP_ACT_ERRNO", {Rule({}, "SCMP_ACT_ALLOW")}),
      "linux.seccomp.syscalls[0].names: no syscall names");
  add("UnknownOp",
      Profile("SCMP_ACT_ERRNO",
              {Rule({"read"}, "SCMP_ACT_ALLOW", std::nullopt, {Arg(0, 1, "SCMP_CMP_XX")})}),
      "linux.seccomp.syscalls[0].args[0].op: unknown operator \"SCMP_CMP_XX\"");
  add("ArgIndexOutOfRange",
      Profile("SCMP_ACT_ERRNO",
              {Rule({"read"}, "SCMP_ACT_ALLOW", std::nullopt, {Arg(6, 1, "SCMP_CMP_EQ")})}),
      "linux.seccomp.syscalls[0].args[0].index: 6 is out of range 0..5");
  oci::Seccomp arch = Profile("SCMP_ACT_ERRNO", {});
  arch.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_Z80"};
  add("UnknownArch", arch,
      "linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_Z80\"");
  oci::Seccomp flag = Profile("SCMP_ACT_ERRNO", {});
  flag.flags = {"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_NOPE"};
  add("UnknownFlag", flag, "linux.seccomp.flags[1]: unknown flag \"SECCOMP_FILTER_FLAG_NOPE\"");
  oci::Seccomp killable = Profile("SCMP_ACT_ERRNO", {});
  killable.flags = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  add("WaitKillableWithoutNotify", killable,
      "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a rule with "
      "SCMP_ACT_NOTIFY");
  std::vector<oci::SeccompArg> many;
  for (uint32_t index = 0; index < 4; ++index) {
    for (uint64_t v = 0; v < 3; ++v) many.push_back(Arg(index, v, "SCMP_CMP_EQ"));
  }
  add("TooManyCombinations",
      Profile("SCMP_ACT_ERRNO", {Rule({"read"}, "SCMP_ACT_ALLOW", std::nullopt, many)}),
      "linux.seccomp.syscalls[0].args: more than 64 argument combinations");
  return cases;
}

class BadProfileTest : public ::testing::TestWithParam<BadProfileCase> {};

TEST_P(BadProfileTest, FailsNamingTheField) {
  auto program = Compile(GetParam().profile);
  ASSERT_FALSE(program);
  EXPECT_EQ(program.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_THAT(program.error().message, HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(Compiler, BadProfileTest, ::testing::ValuesIn(BadProfiles()),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(CompilerTest, ArchSpecificNamesDoNotFail) {
  auto program = Compile(Profile(
      "SCMP_ACT_ERRNO",
      {Rule({"socketcall", "set_tls", "cacheflush", "arch_prctl", "vm86"}, "SCMP_ACT_ALLOW")}));
  ASSERT_TRUE(program) << program.error().message;
}

TEST(CompilerTest, SyscallTableHelpers) {
  ASSERT_EQ(*AuditArch("SCMP_ARCH_X86_64"), AUDIT_ARCH_X86_64);
  ASSERT_EQ(*AuditArch("SCMP_ARCH_X32"), AUDIT_ARCH_X86_64);
  ASSERT_EQ(*AuditArch("SCMP_ARCH_X86"), AUDIT_ARCH_I386);
  ASSERT_EQ(*AuditArch("SCMP_ARCH_AARCH64"), AUDIT_ARCH_AARCH64);
  EXPECT_FALSE(AuditArch("x86_64"));
  EXPECT_EQ(SyscallNumber("SCMP_ARCH_X86_64", "read"), 0u);
  EXPECT_EQ(SyscallNumber("SCMP_ARCH_X86", "read"), 3u);
  EXPECT_EQ(SyscallNumber("SCMP_ARCH_X32", "read"), 0x40000000u);
  EXPECT_EQ(SyscallNumber("SCMP_ARCH_X86_64", "socketcall"), std::nullopt);
  EXPECT_EQ(SyscallNumber("SCMP_ARCH_X86_64", "foo"), std::nullopt);
  EXPECT_THAT(BackendVersion(), HasSubstr("libseccomp 2."));
}

// Runs `body` in a forked child and returns its exit code.
template <typename F>
int RunInChild(F body) {
  UniqueFd pidfd;
  sys::CloneArgs args{};
  args.flags = CLONE_PIDFD;
  args.exit_signal = SIGCHLD;
  auto pid = sys::clone3(args, &pidfd);
  if (!pid) {
    ADD_FAILURE() << pid.error().message;
    return -1;
  }
  if (*pid == 0) _exit(body());
  auto info = sys::waitid_pidfd(pidfd.get(), WEXITED);
  if (!info) {
    ADD_FAILURE() << info.error().message;
    return -1;
  }
  return sys::ExitCodeFromSiginfo(*info);
}

TEST(InstallTest, FilterDeniesWithConfiguredErrnoInChild) {
  auto program = Compile(Profile("SCMP_ACT_ALLOW", {Rule({"uname"}, "SCMP_ACT_ERRNO", 99)}));
  ASSERT_TRUE(program) << program.error().message;
  int code = RunInChild([&] {
    if (!sys::prctl(PR_SET_NO_NEW_PRIVS, 1)) return 10;
    auto fd = Install(*program);
    if (!fd) return 11;
    if (fd->valid()) return 12;
    struct utsname u;
    errno = 0;
    if (::uname(&u) != -1) return 13;
    if (errno != 99) return 14;
    if (::getpid() <= 0) return 15;
    return 0;
  });
  EXPECT_EQ(code, 0);
}

TEST(InstallTest, NotifyProgramReturnsListener) {
  oci::Seccomp p = Profile("SCMP_ACT_ALLOW", {Rule({"mknodat"}, "SCMP_ACT_NOTIFY")});
  p.flags = {"SECCOMP_FILTER_FLAG_TSYNC"};
  auto program = Compile(p);
  ASSERT_TRUE(program) << program.error().message;
  int code = RunInChild([&] {
    if (!sys::prctl(PR_SET_NO_NEW_PRIVS, 1)) return 10;
    auto fd = Install(*program);
    if (!fd) return 11;
    return fd->valid() ? 0 : 12;
  });
  EXPECT_EQ(code, 0);
}

TEST(InstallTest, WithoutNoNewPrivsOrCapabilityIsRefused) {
  auto program = Compile(Profile("SCMP_ACT_ALLOW", {Rule({"uname"}, "SCMP_ACT_ERRNO")}));
  ASSERT_TRUE(program);
  int code = RunInChild([&] {
    // Root loses every capability when it changes all its uids away from 0 (capabilities(7)).
    if (geteuid() == 0 && !sys::setresuid(65534, 65534, 65534)) return 2;
    auto fd = Install(*program);
    return !fd && fd.error().kind == ErrorKind::kPermissionDenied ? 0 : 1;
  });
  EXPECT_EQ(code, 0);
}

TEST(InstallTest, RejectsEmptyProgram) {
  auto fd = Install(Program{});
  ASSERT_FALSE(fd);
  EXPECT_EQ(fd.error().kind, ErrorKind::kInvalidArgument);
}

}  // namespace
}  // namespace moat::seccomp
