#pragma once

// Helpers for seccomp tests: build profiles in code and ask a compiled program for its verdict
// through the in-tree BPF evaluator. Test-only; failures are reported with gtest's ADD_FAILURE.

#include <gtest/gtest.h>
#include <linux/seccomp.h>

#include <array>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "oci/spec.h"
#include "seccomp/bpf_eval.h"
#include "seccomp/compiler.h"

namespace moat::seccomp {

inline oci::SeccompArg Arg(uint32_t index, uint64_t value, std::string op, uint64_t value_two = 0) {
  oci::SeccompArg a;
  a.index = index;
  a.value = value;
  a.value_two = value_two;
  a.op = std::move(op);
  return a;
}

inline oci::SeccompSyscall Rule(std::vector<std::string> names, std::string action,
                                std::optional<uint32_t> errno_ret = std::nullopt,
                                std::vector<oci::SeccompArg> args = {}) {
  oci::SeccompSyscall r;
  r.names = std::move(names);
  r.action = std::move(action);
  r.errno_ret = errno_ret;
  r.args = std::move(args);
  return r;
}

inline oci::Seccomp Profile(std::string default_action, std::vector<oci::SeccompSyscall> rules) {
  oci::Seccomp p;
  p.default_action = std::move(default_action);
  p.syscalls = std::move(rules);
  return p;
}

// The verdict of `program` for syscall number `nr` made with architecture `arch`.
inline uint32_t VerdictNr(const Program& program, uint32_t nr,
                          std::initializer_list<uint64_t> args = {}, std::string_view arch = "") {
  std::string arch_name = arch.empty() ? NativeArchitecture() : std::string(arch);
  auto audit = AuditArch(arch_name);
  if (!audit) {
    ADD_FAILURE() << audit.error().message;
    return ~0u;
  }
  seccomp_data d{};
  d.nr = static_cast<int>(nr);
  d.arch = *audit;
  size_t i = 0;
  for (uint64_t a : args) d.args[i++] = a;
  auto verdict = Evaluate(program.instructions, d);
  if (!verdict) {
    ADD_FAILURE() << verdict.error().message;
    return ~0u;
  }
  return *verdict;
}

// The verdict of `program` for the syscall called `name` on `arch` (native when empty).
inline uint32_t Verdict(const Program& program, std::string_view name,
                        std::initializer_list<uint64_t> args = {}, std::string_view arch = "") {
  std::string arch_name = arch.empty() ? NativeArchitecture() : std::string(arch);
  auto nr = SyscallNumber(arch_name, name);
  if (!nr) {
    ADD_FAILURE() << "no syscall " << name << " on " << arch_name;
    return ~0u;
  }
  return VerdictNr(program, *nr, args, arch_name);
}

}  // namespace moat::seccomp
