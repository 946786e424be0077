#include "seccomp/bpf_eval.h"

#include <gtest/gtest.h>
#include <linux/audit.h>

#include <cstddef>

namespace moat::seccomp {
namespace {

seccomp_data Data(int nr, uint32_t arch = AUDIT_ARCH_X86_64, uint64_t arg0 = 0) {
  seccomp_data d{};
  d.nr = nr;
  d.arch = arch;
  d.args[0] = arg0;
  return d;
}

constexpr uint32_t kNrOffset = offsetof(seccomp_data, nr);
constexpr uint32_t kArchOffset = offsetof(seccomp_data, arch);
constexpr uint32_t kArg0Lo = offsetof(seccomp_data, args[0]);

TEST(BpfEvalTest, ReturnsConstant) {
  std::vector<sock_filter> p = {BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)};
  EXPECT_EQ(*Evaluate(p, Data(0)), SECCOMP_RET_ALLOW);
}

TEST(BpfEvalTest, BranchesOnSyscallAndArch) {
  std::vector<sock_filter> p = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArchOffset),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kNrOffset),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 100, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 38),
      BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, 10, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | 1),
  };
  EXPECT_EQ(*Evaluate(p, Data(3)), SECCOMP_RET_ALLOW);
  EXPECT_EQ(*Evaluate(p, Data(10)), SECCOMP_RET_ALLOW);
  EXPECT_EQ(*Evaluate(p, Data(11)), SECCOMP_RET_ERRNO | 1);
  EXPECT_EQ(*Evaluate(p, Data(100)), SECCOMP_RET_ERRNO | 38);
  EXPECT_EQ(*Evaluate(p, Data(3, AUDIT_ARCH_I386)), SECCOMP_RET_KILL_PROCESS);
}

TEST(BpfEvalTest, AluJsetScratchAndIndexRegister) {
  std::vector<sock_filter> p = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, kArg0Lo),
      BPF_STMT(BPF_ST, 3),
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0xf0),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x80, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
      BPF_STMT(BPF_LDX | BPF_MEM, 3),
      BPF_STMT(BPF_MISC | BPF_TXA, 0),
      BPF_STMT(BPF_ALU | BPF_ADD | BPF_K, 1),
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      BPF_STMT(BPF_LD | BPF_IMM, 6),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_X, 0, 0, 1),
      BPF_STMT(BPF_RET | BPF_A, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_LOG),
  };
  EXPECT_EQ(*Evaluate(p, Data(0, AUDIT_ARCH_X86_64, 0x85)), SECCOMP_RET_TRAP);
  EXPECT_EQ(*Evaluate(p, Data(0, AUDIT_ARCH_X86_64, 5)), 6u);  // x = 5 + 1 == a
  EXPECT_EQ(*Evaluate(p, Data(0, AUDIT_ARCH_X86_64, 7)), SECCOMP_RET_LOG);
}

TEST(BpfEvalTest, RejectsWhatTheKernelRejects) {
  const seccomp_data d = Data(0);
  EXPECT_FALSE(Evaluate({}, d));
  EXPECT_FALSE(Evaluate({BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 2)}, d));   // misaligned
  EXPECT_FALSE(Evaluate({BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 64)}, d));  // past the struct
  EXPECT_FALSE(Evaluate({BPF_STMT(BPF_LD | BPF_H | BPF_ABS, 0)}, d));   // not a word load
  EXPECT_FALSE(Evaluate({BPF_STMT(BPF_LD | BPF_IMM, 1)}, d));           // falls off the end
  EXPECT_FALSE(Evaluate({BPF_JUMP(BPF_JMP | BPF_JA, 5, 0, 0), BPF_STMT(BPF_RET | BPF_K, 0)},
                        d));  // jumps past the end
  EXPECT_FALSE(Evaluate({BPF_STMT(BPF_ALU | BPF_DIV | BPF_K, 0), BPF_STMT(BPF_RET | BPF_K, 0)}, d));
  EXPECT_FALSE(Evaluate({BPF_STMT(BPF_ST, 16), BPF_STMT(BPF_RET | BPF_K, 0)}, d));
  std::vector<sock_filter> too_long(BPF_MAXINSNS + 1, BPF_STMT(BPF_RET | BPF_K, 0));
  EXPECT_FALSE(Evaluate(too_long, d));
  auto err = Evaluate({BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 2)}, d);
  EXPECT_EQ(err.error().kind, ErrorKind::kInvalidArgument);
}

}  // namespace
}  // namespace moat::seccomp
