#pragma once

// A small classic-BPF interpreter over struct seccomp_data, so tests can check what a compiled
// seccomp program decides for a given syscall, architecture and arguments without installing
// it. It follows the kernel's rules for seccomp filters (kernel/seccomp.c seccomp_check_filter
// and net/core/filter.c): loads are 32-bit words at aligned offsets inside seccomp_data, jumps
// only go forward, and the program must end in a return.

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cstdint>
#include <vector>

#include "base/result.h"

namespace moat::seccomp {

// Runs `program` on `data` and returns the filter's 32-bit verdict (SECCOMP_RET_* action in
// the high bits, data such as the errno in SECCOMP_RET_DATA). Supports every classic-BPF
// instruction the kernel accepts in a seccomp filter: LD/LDX (W|ABS, IMM, MEM, LEN), ST/STX,
// ALU (K and X forms), JMP (JA, JEQ, JGT, JGE, JSET; K and X), RET (K, A), MISC (TAX, TXA).
// Errors with kInvalidArgument for a program the kernel would reject: empty, longer than
// BPF_MAXINSNS, an unknown opcode, a misaligned or out-of-range load, a jump past the end,
// division by a zero constant, or falling off the end. Pure; thread-safe.
Result<uint32_t> Evaluate(const std::vector<sock_filter>& program, const seccomp_data& data);

}  // namespace moat::seccomp
