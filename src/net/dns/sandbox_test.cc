#include "net/dns/sandbox.h"

#include <gtest/gtest.h>
#include <linux/seccomp.h>
#include <sys/mman.h>

#include "seccomp/bpf_eval.h"
#include "seccomp/compiler.h"

namespace moat::net::dns {
namespace {

uint32_t Verdict(const seccomp::Program& p, const char* name, uint64_t arg2 = 0) {
  std::string arch = seccomp::NativeArchitecture();
  auto nr = seccomp::SyscallNumber(arch, name);
  EXPECT_TRUE(nr.has_value()) << name;
  seccomp_data d{};
  d.nr = static_cast<int>(nr.value_or(0));
  d.arch = *seccomp::AuditArch(arch);
  d.args[2] = arg2;
  auto v = seccomp::Evaluate(p.instructions, d);
  EXPECT_TRUE(v.has_value());
  return v.value_or(0) & SECCOMP_RET_ACTION_FULL;
}

TEST(DnsSandbox, AllowlistHasNoWayToOpenExecuteOrConnect) {
  auto p = seccomp::Compile(ResolverSeccompProfile());
  ASSERT_TRUE(p.has_value()) << p.error().message;
  for (const char* denied :
       {"open", "openat", "openat2", "execve", "execveat", "socket", "connect", "bind", "listen",
        "clone", "fork", "ptrace", "chroot", "setuid", "mount", "unshare", "ioctl", "kill"}) {
    if (!seccomp::SyscallNumber(seccomp::NativeArchitecture(), denied)) continue;
    EXPECT_EQ(Verdict(*p, denied), SECCOMP_RET_ERRNO) << denied;
  }
  for (const char* allowed : {"recvmsg", "sendto", "recvfrom", "accept4", "epoll_wait", "read",
                              "write", "close", "getrandom", "exit_group"}) {
    EXPECT_EQ(Verdict(*p, allowed), SECCOMP_RET_ALLOW) << allowed;
  }
  EXPECT_EQ(Verdict(*p, "mmap", PROT_READ | PROT_WRITE), SECCOMP_RET_ALLOW);
  EXPECT_EQ(Verdict(*p, "mmap", PROT_READ | PROT_EXEC), SECCOMP_RET_ERRNO);
  EXPECT_EQ(Verdict(*p, "mprotect", PROT_EXEC), SECCOMP_RET_ERRNO);
}

}  // namespace
}  // namespace moat::net::dns
