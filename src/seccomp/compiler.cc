#include "seccomp/compiler.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#include <array>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/seccomp.h"

namespace moat::seccomp {
namespace {

// SECCOMP_FILTER_FLAG_* values (linux/seccomp.h). Defined here because Debian 12's kernel
// headers predate WAIT_KILLABLE_RECV (Linux 5.19).
constexpr unsigned int kFlagTsync = 1u << 0;
constexpr unsigned int kFlagLog = 1u << 1;
constexpr unsigned int kFlagSpecAllow = 1u << 2;
constexpr unsigned int kFlagWaitKillableRecv = 1u << 5;

struct FlagName {
  const char* name;
  unsigned int bit;
};
constexpr FlagName kFlags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", kFlagTsync},
    {"SECCOMP_FILTER_FLAG_LOG", kFlagLog},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", kFlagSpecAllow},
    {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", kFlagWaitKillableRecv},
};

// The OCI spellings libseccomp 2.5 can resolve (seccomp_arch_resolve_name takes the lowercased
// suffix).
constexpr const char* kArchNames[] = {
    "SCMP_ARCH_X86",     "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",         "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",      "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",   "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",        "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",  "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",
};
constexpr std::string_view kArchPrefix = "SCMP_ARCH_";

// Syscall numbers at or above this offset from an architecture's base are outside the common
// table (x32's compat calls 512..547, ARM's private calls at 0x0f0000): the ENOSYS range below
// never reaches them.
constexpr uint32_t kCommonTableEnd = 512;
constexpr uint32_t kX32SyscallBit = 0x40000000;

// Most argument combinations one rule may expand to; the product of the per-index alternatives
// grows fast and each combination is a separate libseccomp rule.
constexpr size_t kMaxArgCombinations = 64;

// Returns the libseccomp token for an OCI architecture name, or 0.
uint32_t ArchToken(std::string_view oci_arch) {
  if (!StartsWith(oci_arch, kArchPrefix)) return 0;
  std::string suffix(oci_arch.substr(kArchPrefix.size()));
  for (char& c : suffix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return seccomp_arch_resolve_name(suffix.c_str());
}

// The syscall-number base of an architecture as seccomp_data.nr carries it.
uint32_t ArchBase(uint32_t token) { return token == SCMP_ARCH_X32 ? kX32SyscallBit : 0; }

// The AUDIT_ARCH_* value the kernel reports for a libseccomp token: they are equal except for
// x32, which libseccomp marks with its own token.
uint32_t AuditFromToken(uint32_t token) {
  return token == SCMP_ARCH_X32 ? AUDIT_ARCH_X86_64 : token;
}

bool Known(uint32_t token, uint32_t nr) {
  char* name = seccomp_syscall_resolve_num_arch(token, static_cast<int>(nr));
  if (name == nullptr) return false;
  std::free(name);
  return true;
}

std::string StrError(int rc) {
  const char* desc = strerrordesc_np(-rc);
  return desc ? desc : StrFormat("error %d", rc);
}

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

enum class ActionKind { kKillThread, kKillProcess, kTrap, kErrno, kTrace, kAllow, kLog, kNotify };

struct Action {
  ActionKind kind;
  uint32_t value;  // the libseccomp action, data included
};

Result<Action> ParseAction(const std::string& name, const std::optional<uint32_t>& errno_ret,
                           const std::string& field, const std::string& errno_field) {
  struct Entry {
    const char* name;
    ActionKind kind;
  };
  static constexpr Entry kActions[] = {
      {"SCMP_ACT_KILL", ActionKind::kKillThread},
      {"SCMP_ACT_KILL_THREAD", ActionKind::kKillThread},
      {"SCMP_ACT_KILL_PROCESS", ActionKind::kKillProcess},
      {"SCMP_ACT_TRAP", ActionKind::kTrap},
      {"SCMP_ACT_ERRNO", ActionKind::kErrno},
      {"SCMP_ACT_TRACE", ActionKind::kTrace},
      {"SCMP_ACT_ALLOW", ActionKind::kAllow},
      {"SCMP_ACT_LOG", ActionKind::kLog},
      {"SCMP_ACT_NOTIFY", ActionKind::kNotify},
  };
  const Entry* found = nullptr;
  for (const Entry& e : kActions) {
    if (name == e.name) found = &e;
  }
  if (found == nullptr)
    return Fail(ErrorKind::kInvalidArgument, "%s: unknown action \"%s\"", field.c_str(),
                name.c_str());
  // ERRNO data is capped at MAX_ERRNO by the kernel (kernel/seccomp.c); a larger value would
  // silently turn into another errno. TRACE data is the 16-bit SECCOMP_RET_DATA.
  switch (found->kind) {
    case ActionKind::kErrno: {
      uint32_t err = errno_ret.value_or(EPERM);
      if (err > 4095)
        return Fail(ErrorKind::kInvalidArgument, "%s: %u is out of range 0..4095",
                    errno_field.c_str(), err);
      return Action{found->kind, SCMP_ACT_ERRNO(err)};
    }
    case ActionKind::kTrace: {
      uint32_t msg = errno_ret.value_or(EPERM);
      if (msg > SECCOMP_RET_DATA)
        return Fail(ErrorKind::kInvalidArgument, "%s: %u is out of range 0..65535",
                    errno_field.c_str(), msg);
      return Action{found->kind, SCMP_ACT_TRACE(msg)};
    }
    default:
      break;
  }
  if (errno_ret.has_value())
    return Fail(ErrorKind::kInvalidArgument,
                "%s: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno, not %s",
                errno_field.c_str(), name.c_str());
  switch (found->kind) {
    case ActionKind::kKillThread:
      return Action{found->kind, SCMP_ACT_KILL_THREAD};
    case ActionKind::kKillProcess:
      return Action{found->kind, SCMP_ACT_KILL_PROCESS};
    case ActionKind::kTrap:
      return Action{found->kind, SCMP_ACT_TRAP};
    case ActionKind::kAllow:
      return Action{found->kind, SCMP_ACT_ALLOW};
    case ActionKind::kLog:
      return Action{found->kind, SCMP_ACT_LOG};
    case ActionKind::kNotify:
      return Action{found->kind, SCMP_ACT_NOTIFY};
    default:
      break;
  }
  return Fail(ErrorKind::kInternal, "%s: unhandled action %s", field.c_str(), name.c_str());
}

Result<scmp_compare> ParseOp(const std::string& op, const std::string& field) {
  struct Entry {
    const char* name;
    scmp_compare op;
  };
  static constexpr Entry kOps[] = {
      {"SCMP_CMP_NE", SCMP_CMP_NE},
      {"SCMP_CMP_LT", SCMP_CMP_LT},
      {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ},
      {"SCMP_CMP_GE", SCMP_CMP_GE},
      {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
  };
  for (const Entry& e : kOps) {
    if (op == e.name) return e.op;
  }
  return Fail(ErrorKind::kInvalidArgument, "%s: unknown operator \"%s\"", field.c_str(),
              op.c_str());
}

// Expands a rule's args into the libseccomp rules that implement it: conditions on the same
// index are alternatives, conditions on different indexes must all hold, so the result is the
// cartesian product of the per-index alternatives. libseccomp itself rejects two conditions on
// one index in a single rule (EINVAL).
Result<std::vector<std::vector<scmp_arg_cmp>>> ExpandArgs(const std::vector<oci::SeccompArg>& args,
                                                          const std::string& field) {
  std::array<std::vector<scmp_arg_cmp>, 6> by_index;
  for (size_t k = 0; k < args.size(); ++k) {
    const oci::SeccompArg& arg = args[k];
    std::string arg_field = StrFormat("%s.args[%zu]", field.c_str(), k);
    if (arg.index >= by_index.size())
      return Fail(ErrorKind::kInvalidArgument, "%s.index: %u is out of range 0..5",
                  arg_field.c_str(), arg.index);
    MOAT_ASSIGN_OR_RETURN(scmp_compare op, ParseOp(arg.op, arg_field + ".op"));
    // For MASKED_EQ, OCI's "value" is the mask and "valueTwo" the datum, in libseccomp's order.
    by_index[arg.index].push_back(scmp_arg_cmp{arg.index, op, arg.value, arg.value_two});
  }
  std::vector<std::vector<scmp_arg_cmp>> combos(1);
  for (const auto& alternatives : by_index) {
    if (alternatives.empty()) continue;
    if (combos.size() * alternatives.size() > kMaxArgCombinations)
      return Fail(ErrorKind::kInvalidArgument,
                  "%s.args: more than %zu argument combinations; split the rule", field.c_str(),
                  kMaxArgCombinations);
    std::vector<std::vector<scmp_arg_cmp>> next;
    for (const auto& combo : combos) {
      for (const scmp_arg_cmp& cmp : alternatives) {
        next.push_back(combo);
        next.back().push_back(cmp);
      }
    }
    combos = std::move(next);
  }
  return combos;
}

Result<unsigned int> ParseFlags(const oci::Seccomp& profile, bool needs_listener) {
  unsigned int flags = 0;
  for (size_t i = 0; i < profile.flags.size(); ++i) {
    const std::string& name = profile.flags[i];
    const FlagName* found = nullptr;
    for (const FlagName& f : kFlags) {
      if (name == f.name) found = &f;
    }
    if (found == nullptr)
      return Fail(ErrorKind::kInvalidArgument, "linux.seccomp.flags[%zu]: unknown flag \"%s\"", i,
                  name.c_str());
    // The kernel rejects WAIT_KILLABLE_RECV without NEW_LISTENER (EINVAL at install time);
    // say so while the profile is still at hand.
    if (found->bit == kFlagWaitKillableRecv && !needs_listener)
      return Fail(ErrorKind::kInvalidArgument,
                  "linux.seccomp.flags[%zu]: %s needs a rule with SCMP_ACT_NOTIFY", i,
                  name.c_str());
    flags |= found->bit;
  }
  return flags;
}

// Builds the ENOSYS prelude: for each architecture in the filter, syscall numbers between the
// highest one libseccomp knows and the end of the common table return ENOSYS. Without it a
// syscall newer than libseccomp gets the default EPERM, and C libraries only fall back to older
// syscalls on ENOSYS (glibc's fchmodat2 and clone3 paths, for example). It only jumps forward
// to its own end, where libseccomp's self-contained program starts, so prepending it needs no
// relocation.
std::vector<sock_filter> EnosysPrelude(const std::vector<uint32_t>& tokens) {
  struct Range {
    uint32_t lo;
    uint32_t hi;  // exclusive
  };
  // x86_64 and x32 share one AUDIT_ARCH value, so ranges are grouped by it.
  std::vector<std::pair<uint32_t, std::vector<Range>>> groups;
  for (uint32_t token : tokens) {
    const uint32_t base = ArchBase(token);
    uint32_t first_unknown = base;
    for (uint32_t nr = base + kCommonTableEnd; nr > base; --nr) {
      if (Known(token, nr - 1)) {
        first_unknown = nr;
        break;
      }
    }
    if (first_unknown == base || first_unknown >= base + kCommonTableEnd) continue;
    const uint32_t audit = AuditFromToken(token);
    auto it = groups.begin();
    while (it != groups.end() && it->first != audit) ++it;
    if (it == groups.end()) it = groups.insert(groups.end(), {audit, {}});
    it->second.push_back(Range{first_unknown, base + kCommonTableEnd});
  }
  std::vector<sock_filter> out;
  for (const auto& [audit, ranges] : groups) {
    const auto skip_group = static_cast<uint8_t>(1 + 3 * ranges.size());
    out.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
    out.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, audit, 0, skip_group));
    out.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
    for (const Range& r : ranges) {
      out.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, r.lo, 0, 2));
      out.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, r.hi, 1, 0));
      out.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS));
    }
  }
  return out;
}

bool DeniesByDefault(const Action& action) {
  switch (action.kind) {
    case ActionKind::kKillThread:
    case ActionKind::kKillProcess:
    case ActionKind::kTrap:
      return true;
    case ActionKind::kErrno:
      return action.value != SCMP_ACT_ERRNO(ENOSYS);
    default:
      return false;
  }
}

// Reads back what seccomp_export_bpf wrote: libseccomp 2.5 can only export to an fd.
Result<std::vector<sock_filter>> ExportBpf(void* ctx) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd, sys::memfd_create("moat-seccomp-bpf", 0));
  int rc = seccomp_export_bpf(ctx, fd.get());
  if (rc < 0) return Fail(ErrorKind::kInternal, "seccomp_export_bpf: %s", StrError(rc).c_str());
  MOAT_ASSIGN_OR_RETURN(struct stat st, sys::fstat(fd.get()));
  const auto size = static_cast<size_t>(st.st_size);
  if (size == 0 || size % sizeof(sock_filter) != 0)
    return Fail(ErrorKind::kInternal, "seccomp_export_bpf: %zu bytes is not a program", size);
  std::vector<sock_filter> insns(size / sizeof(sock_filter));
  auto* bytes = reinterpret_cast<char*>(insns.data());
  size_t done = 0;
  while (done < size) {
    MOAT_ASSIGN_OR_RETURN(
        size_t n, sys::pread(fd.get(), bytes + done, size - done, static_cast<off_t>(done)));
    if (n == 0) return Fail(ErrorKind::kInternal, "seccomp_export_bpf: short read");
    done += n;
  }
  return insns;
}

}  // namespace

Result<Program> Compile(const oci::Seccomp& profile) {
  MOAT_ASSIGN_OR_RETURN(
      Action default_action,
      ParseAction(profile.default_action, profile.default_errno_ret, "linux.seccomp.defaultAction",
                  "linux.seccomp.defaultErrnoRet"));
  // A notifying default would stop the container's first syscall after install (execve) until
  // a supervisor answers, and the supervisor fd is only sent after that; runc refuses it too.
  if (default_action.kind == ActionKind::kNotify)
    return Fail(ErrorKind::kInvalidArgument,
                "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");

  Ctx ctx(seccomp_init(default_action.value));
  if (!ctx) return Fail(ErrorKind::kInternal, "seccomp_init failed");
  // The runtime sets no_new_privs itself, at the point of its own choosing.
  int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0)
    return Fail(ErrorKind::kInternal, "seccomp_attr_set CTL_NNP: %s", StrError(rc).c_str());

  std::vector<uint32_t> tokens = {seccomp_arch_native()};
  for (size_t i = 0; i < profile.architectures.size(); ++i) {
    const std::string& name = profile.architectures[i];
    uint32_t token = ArchToken(name);
    if (token == 0)
      return Fail(ErrorKind::kInvalidArgument,
                  "linux.seccomp.architectures[%zu]: unknown architecture \"%s\"", i, name.c_str());
    rc = seccomp_arch_add(ctx.get(), token);
    if (rc == -EEXIST) continue;
    // EDOM: libseccomp cannot mix endiannesses in one filter (ppc64 on an x86_64 host).
    if (rc < 0)
      return Fail(ErrorKind::kInvalidArgument,
                  "linux.seccomp.architectures[%zu]: cannot add \"%s\" to a filter for %s: %s", i,
                  name.c_str(), NativeArchitecture().c_str(), StrError(rc).c_str());
    tokens.push_back(token);
  }

  bool needs_listener = false;
  for (size_t i = 0; i < profile.syscalls.size(); ++i) {
    const oci::SeccompSyscall& rule = profile.syscalls[i];
    const std::string field = StrFormat("linux.seccomp.syscalls[%zu]", i);
    MOAT_ASSIGN_OR_RETURN(Action action, ParseAction(rule.action, rule.errno_ret, field + ".action",
                                                     field + ".errnoRet"));
    if (rule.names.empty())
      return Fail(ErrorKind::kInvalidArgument, "%s.names: no syscall names", field.c_str());
    MOAT_ASSIGN_OR_RETURN(auto combos, ExpandArgs(rule.args, field));
    // Resolve every name first so that an unknown name is reported even in a skipped rule.
    std::vector<int> numbers;
    for (size_t j = 0; j < rule.names.size(); ++j) {
      // For a syscall missing on the native architecture this gives libseccomp's negative
      // pseudo-number, which seccomp_rule_add maps per architecture and drops where the
      // syscall does not exist. __NR_SCMP_ERROR means no architecture has it.
      int nr = seccomp_syscall_resolve_name(rule.names[j].c_str());
      if (nr == __NR_SCMP_ERROR)
        return Fail(ErrorKind::kInvalidArgument, "%s.names[%zu]: unknown syscall \"%s\"",
                    field.c_str(), j, rule.names[j].c_str());
      numbers.push_back(nr);
    }
    // libseccomp refuses rules whose action is the default (EACCES); they change nothing.
    if (action.value == default_action.value) continue;
    if (action.kind == ActionKind::kNotify) needs_listener = true;
    for (size_t j = 0; j < numbers.size(); ++j) {
      for (const auto& combo : combos) {
        rc = seccomp_rule_add_array(ctx.get(), action.value, numbers[j],
                                    static_cast<unsigned int>(combo.size()),
                                    combo.empty() ? nullptr : combo.data());
        if (rc < 0)
          return Fail(ErrorKind::kInvalidArgument, "%s: adding rule for \"%s\": %s", field.c_str(),
                      rule.names[j].c_str(), StrError(rc).c_str());
      }
    }
  }

  Program program;
  MOAT_ASSIGN_OR_RETURN(program.flags, ParseFlags(profile, needs_listener));
  program.needs_listener = needs_listener;
  if (DeniesByDefault(default_action)) program.instructions = EnosysPrelude(tokens);
  MOAT_ASSIGN_OR_RETURN(std::vector<sock_filter> body, ExportBpf(ctx.get()));
  program.instructions.insert(program.instructions.end(), body.begin(), body.end());
  if (program.instructions.size() > BPF_MAXINSNS)
    return Fail(ErrorKind::kInvalidArgument,
                "linux.seccomp: the profile compiles to %zu instructions, more than the "
                "kernel's limit of %d",
                program.instructions.size(), BPF_MAXINSNS);
  return program;
}

std::string NativeArchitecture() {
  const uint32_t native = seccomp_arch_native();
  for (const char* name : kArchNames) {
    if (ArchToken(name) == native) return name;
  }
  return StrFormat("SCMP_ARCH_%#x", native);
}

std::string BackendVersion() {
  const scmp_version* v = seccomp_version();
  return StrFormat("libseccomp %u.%u.%u", v->major, v->minor, v->micro);
}

Result<uint32_t> AuditArch(std::string_view oci_arch) {
  uint32_t token = ArchToken(oci_arch);
  if (token == 0)
    return Fail(ErrorKind::kInvalidArgument, "unknown architecture \"%.*s\"",
                static_cast<int>(oci_arch.size()), oci_arch.data());
  return AuditFromToken(token);
}

std::optional<uint32_t> SyscallNumber(std::string_view oci_arch, std::string_view name) {
  uint32_t token = ArchToken(oci_arch);
  if (token == 0) return std::nullopt;
  int nr = seccomp_syscall_resolve_name_arch(token, std::string(name).c_str());
  if (nr >= 0) return static_cast<uint32_t>(nr);
  // libseccomp resolves x86's direct socket calls (socket = 359, ...) to the socketcall
  // multiplexer's pseudo-numbers, although the direct numbers exist since Linux 4.3.
  for (const auto& [number, entry] : SyscallTable(oci_arch)) {
    if (entry == name) return number;
  }
  return std::nullopt;
}

std::vector<std::pair<uint32_t, std::string>> SyscallTable(std::string_view oci_arch) {
  std::vector<std::pair<uint32_t, std::string>> table;
  uint32_t token = ArchToken(oci_arch);
  if (token == 0) return table;
  const uint32_t base = ArchBase(token);
  // The common table, then ARM's private calls at 0x0f0000 (cacheflush, set_tls, ...).
  const std::pair<uint32_t, uint32_t> ranges[] = {{base, base + 1024},
                                                  {base + 0x0f0000, base + 0x0f0100}};
  for (const auto& [lo, hi] : ranges) {
    for (uint32_t nr = lo; nr < hi; ++nr) {
      char* name = seccomp_syscall_resolve_num_arch(token, static_cast<int>(nr));
      if (name == nullptr) continue;
      table.emplace_back(nr, name);
      std::free(name);
    }
  }
  return table;
}

}  // namespace moat::seccomp
