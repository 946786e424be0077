#include "oci/validate.h"

#include <algorithm>
#include <cstdarg>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "base/strings.h"
#include "oci/names.h"

namespace moat::oci {
namespace {

// ---------------------------------------------------------------------------------------------
// Tables of accepted names (runtime-spec config.md / config-linux.md, libseccomp 2.6).

constexpr std::string_view kRootfsPropagations[] = {"shared",  "slave",  "private",  "unbindable",
                                                    "rshared", "rslave", "rprivate", "runbindable"};

constexpr std::string_view kSchedPolicies[] = {"SCHED_OTHER",   "SCHED_FIFO", "SCHED_RR",
                                               "SCHED_BATCH",   "SCHED_ISO",  "SCHED_IDLE",
                                               "SCHED_DEADLINE"};

constexpr std::string_view kSchedFlags[] = {"SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM",
                                            "SCHED_FLAG_DL_OVERRUN",    "SCHED_FLAG_KEEP_POLICY",
                                            "SCHED_FLAG_KEEP_PARAMS",   "SCHED_FLAG_UTIL_CLAMP_MIN",
                                            "SCHED_FLAG_UTIL_CLAMP_MAX"};

constexpr std::string_view kIoPriorityClasses[] = {"IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE",
                                                   "IOPRIO_CLASS_IDLE"};

constexpr std::string_view kSeccompActions[] = {
    "SCMP_ACT_KILL",  "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",  "SCMP_ACT_ERRNO",        "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW", "SCMP_ACT_LOG",          "SCMP_ACT_NOTIFY"};

constexpr std::string_view kSeccompOps[] = {"SCMP_CMP_NE",       "SCMP_CMP_LT", "SCMP_CMP_LE",
                                            "SCMP_CMP_EQ",       "SCMP_CMP_GE", "SCMP_CMP_GT",
                                            "SCMP_CMP_MASKED_EQ"};

constexpr std::string_view kSeccompArchitectures[] = {
    "SCMP_ARCH_X86",     "SCMP_ARCH_X86_64",   "SCMP_ARCH_X32",         "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS",     "SCMP_ARCH_MIPS64",      "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",  "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",   "SCMP_ARCH_PPC64LE",  "SCMP_ARCH_S390",        "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",  "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64",     "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",    "SCMP_ARCH_SH",       "SCMP_ARCH_SHEB"};

constexpr std::string_view kSeccompFlags[] = {
    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};

constexpr std::string_view kMemoryPolicyModes[] = {
    "MPOL_DEFAULT",   "MPOL_BIND",           "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
    "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL"};

constexpr std::string_view kMemoryPolicyFlags[] = {"MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES",
                                                   "MPOL_F_STATIC_NODES"};

// Sysctls that the IPC namespace isolates (ipc_namespaces(7)); runc accepts the same set.
constexpr std::string_view kIpcSysctls[] = {
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
    "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"};

constexpr std::string_view kUtsSysctls[] = {"kernel.hostname", "kernel.domainname"};

constexpr std::string_view kTimeNamespaceClocks[] = {"monotonic", "boottime"};

template <size_t N>
bool OneOf(std::string_view s, const std::string_view (&table)[N]) {
  return std::find(std::begin(table), std::end(table), s) != std::end(table);
}

// ---------------------------------------------------------------------------------------------
// Messages and paths.

// The value as a quoted string for a message: bounded length, escapes for '"', '\' and bytes
// outside printable ASCII (the spec is untrusted input and messages reach logs and terminals).
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 128;
  std::string out = "\"";
  for (char c : s.substr(0, std::min(s.size(), kMax))) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      out += StrFormat("\\x%02x", u);
    }
  }
  if (s.size() > kMax) out += "...";
  out += '"';
  return out;
}

Unexpected Invalid(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

Unexpected Invalid(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string msg = VStrFormat(fmt, ap);
  va_end(ap);
  return Fail(Error{ErrorKind::kInvalidArgument, 0, std::move(msg)});
}

std::string Path(std::string_view prefix, std::string_view name) {
  std::string out(prefix);
  if (!out.empty()) out += '.';
  out += name;
  return out;
}

std::string At(std::string_view base, size_t i) {
  return std::string(base) + "[" + std::to_string(i) + "]";
}

bool IsAbsolute(std::string_view p) { return !p.empty() && p[0] == '/'; }

// NUL cannot cross a syscall boundary: "/proc\0x" would be checked as one path and used as
// another ("/proc").
Result<void> CheckNoNul(const std::string& path, std::string_view value) {
  if (value.find('\0') != std::string_view::npos) {
    return Invalid("%s: contains a NUL byte", path.c_str());
  }
  return Ok();
}

Result<void> CheckAbsolute(const std::string& path, std::string_view value) {
  MOAT_TRY(CheckNoNul(path, value));
  if (!IsAbsolute(value)) {
    return Invalid("%s: must be an absolute path, got %s", path.c_str(), Quote(value).c_str());
  }
  return Ok();
}

Result<void> CheckStrings(const std::string& path, const std::vector<std::string>& values) {
  for (size_t i = 0; i < values.size(); ++i) MOAT_TRY(CheckNoNul(At(path, i), values[i]));
  return Ok();
}

Result<void> CheckAbsolutePaths(const std::string& path, const std::vector<std::string>& values) {
  for (size_t i = 0; i < values.size(); ++i) MOAT_TRY(CheckAbsolute(At(path, i), values[i]));
  return Ok();
}

Result<void> CheckEnv(const std::string& path, const std::vector<std::string>& env) {
  for (size_t i = 0; i < env.size(); ++i) {
    const std::string p = At(path, i);
    MOAT_TRY(CheckNoNul(p, env[i]));
    size_t eq = env[i].find('=');
    if (eq == std::string::npos || eq == 0) {
      return Invalid("%s: expected NAME=VALUE, got %s", p.c_str(), Quote(env[i]).c_str());
    }
  }
  return Ok();
}

// A single file or directory name that is joined to a trusted directory (cgroupfs, resctrl):
// it must not be empty, ".", "..", or contain '/', NUL or a newline.
bool IsSafeFileName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  return name.find_first_of(std::string_view("/\n\0", 3)) == std::string_view::npos;
}

// Linux dev_valid_name(): shorter than IFNAMSIZ (16), not "." or "..", no '/', ':' or
// whitespace. These names end up in netlink requests and in net_prio.ifpriomap lines.
bool IsValidInterfaceName(std::string_view name) {
  if (name.empty() || name.size() >= 16 || name == "." || name == "..") return false;
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '/' || c == ':' || u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

// "0-3,7": the cpuset list syntax. Anything else would be written verbatim into cpuset files.
bool IsValidCpuList(std::string_view s) {
  if (s.empty()) return true;
  for (std::string_view item : StrSplit(s, ',')) {
    size_t dash = item.find('-');
    std::string_view lo = item.substr(0, dash);
    std::string_view hi = dash == std::string_view::npos ? lo : item.substr(dash + 1);
    auto a = ParseUint64(lo);
    auto b = ParseUint64(hi);
    if (!a || !b || *a > *b) return false;
  }
  return true;
}

bool HasNamespace(const Spec& spec, std::string_view type) {
  if (!spec.linux) return false;
  for (const Namespace& ns : spec.linux->namespaces) {
    if (ns.type == type) return true;
  }
  return false;
}

bool CreatesNamespace(const Spec& spec, std::string_view type) {
  if (!spec.linux) return false;
  for (const Namespace& ns : spec.linux->namespaces) {
    if (ns.type == type && ns.path.empty()) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Top-level fields.

Result<void> ValidateVersion(const std::string& version) {
  if (version.empty()) return Invalid("ociVersion: required");
  // SemVer "MAJOR.MINOR.PATCH[-pre][+build]"; older tools write "1.0" too, so PATCH is
  // optional. Only major version 1 is supported: 2.x may change the meaning of fields.
  std::string_view core = version;
  core = core.substr(0, core.find_first_of("-+"));
  std::vector<std::string> parts = StrSplit(core, '.');
  bool well_formed = parts.size() >= 2 && parts.size() <= 3;
  for (const std::string& p : parts) {
    if (!ParseUint64(p)) well_formed = false;
  }
  if (!well_formed || parts[0] != "1") {
    return Invalid("ociVersion: unsupported version %s", Quote(version).c_str());
  }
  return Ok();
}

Result<void> ValidateRoot(const Spec& spec) {
  if (!spec.root) return Invalid("root: required");
  if (spec.root->path.empty()) return Invalid("root.path: required");
  return CheckNoNul("root.path", spec.root->path);
}

Result<void> ValidateIdMappings(const std::string& path, const std::vector<IdMapping>& maps) {
  // The kernel accepts at most 340 lines in uid_map/gid_map (user_namespaces(7)).
  if (maps.size() > 340) return Invalid("%s: more than 340 mappings", path.c_str());
  for (size_t i = 0; i < maps.size(); ++i) {
    const IdMapping& m = maps[i];
    const std::string p = At(path, i);
    if (m.size == 0) return Invalid("%s.size: must be greater than zero", p.c_str());
    const uint64_t kIdSpace = uint64_t{1} << 32;
    if (uint64_t{m.container_id} + m.size > kIdSpace || uint64_t{m.host_id} + m.size > kIdSpace) {
      return Invalid("%s: id range overflows 32 bits", p.c_str());
    }
  }
  return Ok();
}

bool IsBindMount(const Mount& m) {
  if (m.type == "bind") return true;
  for (const auto& o : m.options)
    if (o == "bind" || o == "rbind") return true;
  return false;
}

// An id-mapped mount's maps become a user namespace's uid_map/gid_map, where the kernel refuses
// ranges that overlap on either side (user_namespaces(7)): say which entries instead of EINVAL.
Result<void> CheckMountMappingsDisjoint(const std::string& path,
                                        const std::vector<IdMapping>& maps) {
  for (size_t i = 0; i < maps.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      auto overlap = [](uint64_t a, uint64_t b, uint64_t size_a, uint64_t size_b) {
        return a < b + size_b && b < a + size_a;
      };
      const IdMapping& a = maps[i];
      const IdMapping& b = maps[j];
      const char* side = overlap(a.container_id, b.container_id, a.size, b.size) ? "containerID"
                         : overlap(a.host_id, b.host_id, a.size, b.size)         ? "hostID"
                                                                                 : nullptr;
      if (side) {
        return Invalid("%s: %s range overlaps that of %s", At(path, i).c_str(), side,
                       At(path, j).c_str());
      }
    }
  }
  return Ok();
}

Result<void> ValidateMounts(const std::vector<Mount>& mounts) {
  for (size_t i = 0; i < mounts.size(); ++i) {
    const Mount& m = mounts[i];
    const std::string p = At("mounts", i);
    MOAT_TRY(CheckAbsolute(p + ".destination", m.destination));
    MOAT_TRY(CheckNoNul(p + ".source", m.source));
    MOAT_TRY(CheckNoNul(p + ".type", m.type));
    MOAT_TRY(CheckStrings(p + ".options", m.options));
    // config.md: uidMappings "MUST be specified along with gidMappings" and vice versa.
    if (m.uid_mappings.empty() != m.gid_mappings.empty()) {
      return Invalid("%s: uidMappings and gidMappings must be given together", p.c_str());
    }
    MOAT_TRY(ValidateIdMappings(p + ".uidMappings", m.uid_mappings));
    MOAT_TRY(ValidateIdMappings(p + ".gidMappings", m.gid_mappings));
    if (!m.uid_mappings.empty() && !IsBindMount(m)) {
      return Invalid("%s.uidMappings: only bind mounts can be id-mapped (type %s)", p.c_str(),
                     Quote(m.type).c_str());
    }
    MOAT_TRY(CheckMountMappingsDisjoint(p + ".uidMappings", m.uid_mappings));
    MOAT_TRY(CheckMountMappingsDisjoint(p + ".gidMappings", m.gid_mappings));
  }
  return Ok();
}

Result<void> ValidateHookList(const std::string& path, const std::vector<Hook>& hooks) {
  for (size_t i = 0; i < hooks.size(); ++i) {
    const Hook& h = hooks[i];
    const std::string p = At(path, i);
    MOAT_TRY(CheckAbsolute(p + ".path", h.path));
    MOAT_TRY(CheckStrings(p + ".args", h.args));
    MOAT_TRY(CheckEnv(p + ".env", h.env));
    if (h.timeout && *h.timeout <= 0) {
      return Invalid("%s.timeout: must be greater than zero, got %d", p.c_str(), *h.timeout);
    }
  }
  return Ok();
}

Result<void> ValidateHooks(const Hooks& hooks) {
  MOAT_TRY(ValidateHookList("hooks.prestart", hooks.prestart));
  MOAT_TRY(ValidateHookList("hooks.createRuntime", hooks.create_runtime));
  MOAT_TRY(ValidateHookList("hooks.createContainer", hooks.create_container));
  MOAT_TRY(ValidateHookList("hooks.startContainer", hooks.start_container));
  MOAT_TRY(ValidateHookList("hooks.poststart", hooks.poststart));
  MOAT_TRY(ValidateHookList("hooks.poststop", hooks.poststop));
  return Ok();
}

Result<void> ValidateUts(const Spec& spec) {
  // Setting a hostname in the runtime's own UTS namespace would rename the host.
  MOAT_TRY(CheckNoNul("hostname", spec.hostname));
  MOAT_TRY(CheckNoNul("domainname", spec.domainname));
  if (!spec.hostname.empty() && !HasNamespace(spec, "uts")) {
    return Invalid("hostname: requires a new uts namespace");
  }
  if (!spec.domainname.empty() && !HasNamespace(spec, "uts")) {
    return Invalid("domainname: requires a new uts namespace");
  }
  return Ok();
}

// ---------------------------------------------------------------------------------------------
// process

Result<void> ValidateCapabilitySet(const std::string& path, const std::vector<std::string>& caps) {
  for (size_t i = 0; i < caps.size(); ++i) {
    if (!CapabilityFromName(caps[i])) {
      return Invalid("%s: unknown capability %s", At(path, i).c_str(), Quote(caps[i]).c_str());
    }
  }
  return Ok();
}

Result<void> ValidateRlimits(const std::string& path, const std::vector<Rlimit>& rlimits) {
  std::set<std::string> seen;
  for (size_t i = 0; i < rlimits.size(); ++i) {
    const Rlimit& r = rlimits[i];
    const std::string p = At(path, i);
    if (!RlimitFromName(r.type)) {
      return Invalid("%s.type: unknown rlimit %s", p.c_str(), Quote(r.type).c_str());
    }
    if (!seen.insert(r.type).second) {
      return Invalid("%s.type: duplicate rlimit %s", p.c_str(), Quote(r.type).c_str());
    }
    if (r.soft > r.hard) {
      return Invalid("%s: soft limit %llu exceeds hard limit %llu", p.c_str(),
                     static_cast<unsigned long long>(r.soft),
                     static_cast<unsigned long long>(r.hard));
    }
  }
  return Ok();
}

Result<void> ValidateScheduler(const std::string& path, const Scheduler& s) {
  if (!OneOf(s.policy, kSchedPolicies)) {
    return Invalid("%s.policy: unknown policy %s", path.c_str(), Quote(s.policy).c_str());
  }
  if (s.nice < -20 || s.nice > 19) {
    return Invalid("%s.nice: must be in [-20, 19], got %d", path.c_str(), s.nice);
  }
  for (size_t i = 0; i < s.flags.size(); ++i) {
    if (!OneOf(s.flags[i], kSchedFlags)) {
      return Invalid("%s: unknown flag %s", At(path + ".flags", i).c_str(),
                     Quote(s.flags[i]).c_str());
    }
  }
  return Ok();
}

}  // namespace

Result<void> ValidateProcess(const Process& process, std::string_view prefix) {
  const auto field = [prefix](std::string_view name) { return Path(prefix, name); };
  if (process.args.empty()) return Invalid("%s: must not be empty", field("args").c_str());
  MOAT_TRY(CheckStrings(field("args"), process.args));
  if (process.args[0].empty()) {
    return Invalid("%s: must not be empty", At(field("args"), 0).c_str());
  }
  MOAT_TRY(CheckAbsolute(field("cwd"), process.cwd));
  MOAT_TRY(CheckEnv(field("env"), process.env));
  if (process.user.umask && *process.user.umask > 0777) {
    return Invalid("%s: must be at most 0777, got 0%o", field("user.umask").c_str(),
                   *process.user.umask);
  }
  if (process.capabilities) {
    const Capabilities& c = *process.capabilities;
    MOAT_TRY(ValidateCapabilitySet(field("capabilities.bounding"), c.bounding));
    MOAT_TRY(ValidateCapabilitySet(field("capabilities.effective"), c.effective));
    MOAT_TRY(ValidateCapabilitySet(field("capabilities.inheritable"), c.inheritable));
    MOAT_TRY(ValidateCapabilitySet(field("capabilities.permitted"), c.permitted));
    MOAT_TRY(ValidateCapabilitySet(field("capabilities.ambient"), c.ambient));
  }
  MOAT_TRY(ValidateRlimits(field("rlimits"), process.rlimits));
  if (process.oom_score_adj && (*process.oom_score_adj < -1000 || *process.oom_score_adj > 1000)) {
    return Invalid("%s: must be in [-1000, 1000], got %d", field("oomScoreAdj").c_str(),
                   *process.oom_score_adj);
  }
  if (process.scheduler) MOAT_TRY(ValidateScheduler(field("scheduler"), *process.scheduler));
  if (process.io_priority) {
    const IoPriority& io = *process.io_priority;
    if (!OneOf(io.io_class, kIoPriorityClasses)) {
      return Invalid("%s: unknown class %s", field("ioPriority.class").c_str(),
                     Quote(io.io_class).c_str());
    }
    if (io.priority < 0 || io.priority > 7) {
      return Invalid("%s: must be in [0, 7], got %d", field("ioPriority.priority").c_str(),
                     io.priority);
    }
  }
  if (process.exec_cpu_affinity) {
    const ExecCpuAffinity& a = *process.exec_cpu_affinity;
    if (!IsValidCpuList(a.initial_cpus)) {
      return Invalid("%s: invalid CPU list %s", field("execCPUAffinity.initial").c_str(),
                     Quote(a.initial_cpus).c_str());
    }
    if (!IsValidCpuList(a.final_cpus)) {
      return Invalid("%s: invalid CPU list %s", field("execCPUAffinity.final").c_str(),
                     Quote(a.final_cpus).c_str());
    }
  }
  MOAT_TRY(CheckNoNul(field("apparmorProfile"), process.apparmor_profile));
  MOAT_TRY(CheckNoNul(field("selinuxLabel"), process.selinux_label));
  return Ok();
}

// ---------------------------------------------------------------------------------------------
// linux.resources

namespace {

bool IsValidPageSize(std::string_view s) {
  // "<size><unit-prefix>B", e.g. 64KB, 2MB, 1GB; it becomes part of hugetlb.<size>.* names.
  if (s.size() < 3 || s.back() != 'B') return false;
  char unit = s[s.size() - 2];
  if (unit != 'K' && unit != 'M' && unit != 'G' && unit != 'T' && unit != 'P') return false;
  std::string_view digits = s.substr(0, s.size() - 2);
  return ParseUint64(digits).has_value();
}

Result<void> CheckMemoryValue(const std::string& path, const std::optional<int64_t>& v) {
  if (v && *v < -1) {
    return Invalid("%s: must be -1 (unlimited) or a byte count, got %lld", path.c_str(),
                   static_cast<long long>(*v));
  }
  return Ok();
}

}  // namespace

Result<void> ValidateResources(const Resources& r, std::string_view prefix) {
  const auto field = [prefix](std::string_view name) { return Path(prefix, name); };
  for (size_t i = 0; i < r.devices.size(); ++i) {
    const DeviceCgroupRule& d = r.devices[i];
    const std::string p = At(field("devices"), i);
    if (!d.type.empty() && d.type != "a" && d.type != "c" && d.type != "b") {
      return Invalid("%s.type: unknown device type %s", p.c_str(), Quote(d.type).c_str());
    }
    if (d.access.find_first_not_of("rwm") != std::string::npos) {
      return Invalid("%s.access: invalid access %s, expected letters from \"rwm\"", p.c_str(),
                     Quote(d.access).c_str());
    }
  }
  if (r.memory) {
    const MemoryResources& m = *r.memory;
    MOAT_TRY(CheckMemoryValue(field("memory.limit"), m.limit));
    MOAT_TRY(CheckMemoryValue(field("memory.reservation"), m.reservation));
    MOAT_TRY(CheckMemoryValue(field("memory.swap"), m.swap));
    MOAT_TRY(CheckMemoryValue(field("memory.kernel"), m.kernel));
    MOAT_TRY(CheckMemoryValue(field("memory.kernelTCP"), m.kernel_tcp));
    if (m.swappiness && *m.swappiness > 100) {
      return Invalid("%s: must be at most 100, got %llu", field("memory.swappiness").c_str(),
                     static_cast<unsigned long long>(*m.swappiness));
    }
  }
  if (r.cpu) {
    if (!IsValidCpuList(r.cpu->cpus)) {
      return Invalid("%s: invalid CPU list %s", field("cpu.cpus").c_str(),
                     Quote(r.cpu->cpus).c_str());
    }
    if (!IsValidCpuList(r.cpu->mems)) {
      return Invalid("%s: invalid memory node list %s", field("cpu.mems").c_str(),
                     Quote(r.cpu->mems).c_str());
    }
  }
  if (r.block_io) {
    for (size_t i = 0; i < r.block_io->weight_device.size(); ++i) {
      const WeightDevice& w = r.block_io->weight_device[i];
      if (!w.weight && !w.leaf_weight) {
        return Invalid("%s: needs weight or leafWeight",
                       At(field("blockIO.weightDevice"), i).c_str());
      }
    }
  }
  for (size_t i = 0; i < r.hugepage_limits.size(); ++i) {
    const std::string& size = r.hugepage_limits[i].page_size;
    if (!IsValidPageSize(size)) {
      return Invalid("%s.pageSize: invalid page size %s", At(field("hugepageLimits"), i).c_str(),
                     Quote(size).c_str());
    }
  }
  for (size_t i = 0; i < r.network_priorities.size(); ++i) {
    const std::string& name = r.network_priorities[i].name;
    if (!IsValidInterfaceName(name)) {
      return Invalid("%s.name: invalid interface name %s",
                     At(field("network.priorities"), i).c_str(), Quote(name).c_str());
    }
  }
  for (const auto& [device, limit] : r.rdma) {
    const std::string p = field("rdma") + "[" + Quote(device) + "]";
    if (!IsSafeFileName(device) || device.find_first_of(" \t") != std::string::npos) {
      return Invalid("%s: invalid device name", p.c_str());
    }
    if (!limit.hca_handles && !limit.hca_objects) {
      return Invalid("%s: needs hcaHandles or hcaObjects", p.c_str());
    }
  }
  for (const auto& [key, value] : r.unified) {
    const std::string p = field("unified") + "[" + Quote(key) + "]";
    // Keys name files in the container's cgroup directory ("memory.max"): a '/' or ".." would
    // let the spec write any file under /sys/fs/cgroup.
    if (!IsSafeFileName(key) || key.find('.') == std::string::npos) {
      return Invalid("%s: invalid cgroup file name", p.c_str());
    }
    MOAT_TRY(CheckNoNul(p, value));
  }
  return Ok();
}

// ---------------------------------------------------------------------------------------------
// linux.seccomp

namespace {

bool ActionTakesErrno(std::string_view action) {
  return action == "SCMP_ACT_ERRNO" || action == "SCMP_ACT_TRACE";
}

}  // namespace

Result<void> ValidateSeccomp(const Seccomp& s, std::string_view prefix) {
  const auto field = [prefix](std::string_view name) { return Path(prefix, name); };
  if (s.default_action.empty()) return Invalid("%s: required", field("defaultAction").c_str());
  if (!OneOf(s.default_action, kSeccompActions)) {
    return Invalid("%s: unknown action %s", field("defaultAction").c_str(),
                   Quote(s.default_action).c_str());
  }
  // Every syscall without a rule would wait for an agent; runc rejects this too.
  if (s.default_action == "SCMP_ACT_NOTIFY") {
    return Invalid("%s: SCMP_ACT_NOTIFY cannot be the default action",
                   field("defaultAction").c_str());
  }
  if (s.default_errno_ret && !ActionTakesErrno(s.default_action)) {
    return Invalid("%s: not allowed with action %s", field("defaultErrnoRet").c_str(),
                   Quote(s.default_action).c_str());
  }
  for (size_t i = 0; i < s.architectures.size(); ++i) {
    if (!OneOf(s.architectures[i], kSeccompArchitectures)) {
      return Invalid("%s: unknown architecture %s", At(field("architectures"), i).c_str(),
                     Quote(s.architectures[i]).c_str());
    }
  }
  for (size_t i = 0; i < s.flags.size(); ++i) {
    if (!OneOf(s.flags[i], kSeccompFlags)) {
      return Invalid("%s: unknown flag %s", At(field("flags"), i).c_str(),
                     Quote(s.flags[i]).c_str());
    }
  }
  if (!s.listener_metadata.empty() && s.listener_path.empty()) {
    return Invalid("%s: requires listenerPath", field("listenerMetadata").c_str());
  }
  MOAT_TRY(CheckNoNul(field("listenerPath"), s.listener_path));
  bool uses_notify = false;
  for (size_t i = 0; i < s.syscalls.size(); ++i) {
    const SeccompSyscall& sc = s.syscalls[i];
    const std::string p = At(field("syscalls"), i);
    if (sc.names.empty()) return Invalid("%s.names: must not be empty", p.c_str());
    for (size_t n = 0; n < sc.names.size(); ++n) {
      if (sc.names[n].empty()) {
        return Invalid("%s: must not be empty", At(p + ".names", n).c_str());
      }
    }
    if (!OneOf(sc.action, kSeccompActions)) {
      return Invalid("%s.action: unknown action %s", p.c_str(), Quote(sc.action).c_str());
    }
    if (sc.action == "SCMP_ACT_NOTIFY") {
      uses_notify = true;
      // The container's process itself sends and receives on the runtime's sync socket after
      // its filter is on and before the agent holds the listener: a notified send or receive
      // would wait for an answer that nobody can give, and create or exec with it.
      for (size_t n = 0; n < sc.names.size(); ++n) {
        if (sc.names[n] == "sendto" || sc.names[n] == "recvfrom") {
          return Invalid("%s: SCMP_ACT_NOTIFY on %s would hang the runtime's handover of the "
                         "listener (it calls %s before the agent has the fd)",
                         At(p + ".names", n).c_str(), sc.names[n].c_str(), sc.names[n].c_str());
        }
      }
    }
    if (sc.errno_ret && !ActionTakesErrno(sc.action)) {
      return Invalid("%s.errnoRet: not allowed with action %s", p.c_str(),
                     Quote(sc.action).c_str());
    }
    for (size_t a = 0; a < sc.args.size(); ++a) {
      const SeccompArg& arg = sc.args[a];
      const std::string ap = At(p + ".args", a);
      // seccomp_data has six syscall arguments.
      if (arg.index > 5) {
        return Invalid("%s.index: must be in [0, 5], got %u", ap.c_str(), arg.index);
      }
      if (!OneOf(arg.op, kSeccompOps)) {
        return Invalid("%s.op: unknown operator %s", ap.c_str(), Quote(arg.op).c_str());
      }
    }
  }
  if (uses_notify && s.listener_path.empty()) {
    return Invalid("%s: required when SCMP_ACT_NOTIFY is used", field("listenerPath").c_str());
  }
  return Ok();
}

// ---------------------------------------------------------------------------------------------
// linux

namespace {

Result<void> ValidateNamespaces(const Spec& spec) {
  const Linux& l = *spec.linux;
  std::set<std::string> seen;
  for (size_t i = 0; i < l.namespaces.size(); ++i) {
    const Namespace& ns = l.namespaces[i];
    const std::string p = At("linux.namespaces", i);
    if (!NamespaceFlag(ns.type)) {
      return Invalid("%s.type: unknown namespace %s", p.c_str(), Quote(ns.type).c_str());
    }
    if (!seen.insert(ns.type).second) {
      return Invalid("%s.type: duplicate namespace %s", p.c_str(), Quote(ns.type).c_str());
    }
    if (!ns.path.empty()) MOAT_TRY(CheckAbsolute(p + ".path", ns.path));
  }

  // A new user namespace without mappings leaves every id unmapped (overflow uid 65534), which
  // is never what was meant; mappings without a user namespace would be silently ignored.
  // A joined user namespace already has its mappings.
  const bool has_user = HasNamespace(spec, "user");
  if (CreatesNamespace(spec, "user")) {
    if (l.uid_mappings.empty()) {
      return Invalid("linux.uidMappings: required with a new user namespace");
    }
    if (l.gid_mappings.empty()) {
      return Invalid("linux.gidMappings: required with a new user namespace");
    }
  }
  if (!has_user && !l.uid_mappings.empty()) {
    return Invalid("linux.uidMappings: requires a user namespace");
  }
  if (!has_user && !l.gid_mappings.empty()) {
    return Invalid("linux.gidMappings: requires a user namespace");
  }
  MOAT_TRY(ValidateIdMappings("linux.uidMappings", l.uid_mappings));
  MOAT_TRY(ValidateIdMappings("linux.gidMappings", l.gid_mappings));

  if (!l.time_offsets.empty()) {
    for (const auto& [clock, offset] : l.time_offsets) {
      if (!OneOf(clock, kTimeNamespaceClocks)) {
        return Invalid("linux.timeOffsets: unknown clock %s", Quote(clock).c_str());
      }
      if (offset.nanosecs >= 1000000000u) {
        return Invalid("linux.timeOffsets.%s.nanosecs: must be below 1000000000, got %u",
                       clock.c_str(), offset.nanosecs);
      }
    }
    // Offsets can only be written before the first process enters a time namespace.
    if (!CreatesNamespace(spec, "time")) {
      return Invalid("linux.timeOffsets: requires a new time namespace");
    }
  }
  return Ok();
}

Result<void> ValidateSysctl(const Spec& spec) {
  for (const auto& [key, value] : spec.linux->sysctl) {
    const std::string quoted = Quote(key);
    // sysctl(8) accepts "net.ipv4.ip_forward" and "net/ipv4/ip_forward"; the runtime turns
    // either into a path under /proc/sys, so no component may be empty, "." or "..".
    const char sep = key.find('/') != std::string::npos ? '/' : '.';
    bool well_formed =
        !key.empty() && key.find_first_of(std::string_view(" \t\n\0", 4)) == std::string::npos;
    for (const std::string& part : StrSplit(key, sep)) {
      if (part.empty() || part == "." || part == "..") well_formed = false;
    }
    if (!well_formed) return Invalid("linux.sysctl: invalid key %s", quoted.c_str());
    MOAT_TRY(CheckNoNul("linux.sysctl[" + quoted + "]", value));

    std::string dotted = key;
    if (sep == '/') std::replace(dotted.begin(), dotted.end(), '/', '.');
    const char* needs = nullptr;
    if (StartsWith(dotted, "net.")) {
      needs = "network";
    } else if (OneOf(dotted, kIpcSysctls) || StartsWith(dotted, "fs.mqueue.")) {
      needs = "ipc";
    } else if (OneOf(dotted, kUtsSysctls)) {
      needs = "uts";
    } else {
      // Not isolated by any namespace: writing it would change the host.
      return Invalid("linux.sysctl: %s is not namespaced and cannot be set for a container",
                     quoted.c_str());
    }
    if (!HasNamespace(spec, needs)) {
      return Invalid("linux.sysctl: %s requires a new %s namespace", quoted.c_str(), needs);
    }
  }
  return Ok();
}

Result<void> ValidateDevices(const std::vector<Device>& devices) {
  for (size_t i = 0; i < devices.size(); ++i) {
    const Device& d = devices[i];
    const std::string p = At("linux.devices", i);
    if (d.type != "c" && d.type != "b" && d.type != "u" && d.type != "p") {
      return Invalid("%s.type: unknown device type %s", p.c_str(), Quote(d.type).c_str());
    }
    MOAT_TRY(CheckAbsolute(p + ".path", d.path));
  }
  return Ok();
}

Result<void> ValidateCgroupsPath(const std::string& path) {
  MOAT_TRY(CheckNoNul("linux.cgroupsPath", path));
  // Both "/a/b" and systemd's "slice:prefix:name" forms; a ".." anywhere would leave the
  // cgroup subtree the runtime manages.
  for (const std::string& part : StrSplit(path, '/')) {
    for (const std::string& piece : StrSplit(part, ':')) {
      if (piece == "..") {
        return Invalid("linux.cgroupsPath: must not contain \"..\" components, got %s",
                       Quote(path).c_str());
      }
    }
  }
  return Ok();
}

Result<void> ValidateIntelRdt(const IntelRdt& rdt) {
  // closID names a directory under /sys/fs/resctrl; "/" means the default group.
  if (!rdt.clos_id.empty() && rdt.clos_id != "/" && !IsSafeFileName(rdt.clos_id)) {
    return Invalid("linux.intelRdt.closID: invalid name %s", Quote(rdt.clos_id).c_str());
  }
  if (rdt.l3_cache_schema.find('\n') != std::string::npos) {
    return Invalid("linux.intelRdt.l3CacheSchema: must not contain a newline");
  }
  if (!rdt.mem_bw_schema.empty() && (!StartsWith(rdt.mem_bw_schema, "MB:") ||
                                     rdt.mem_bw_schema.find('\n') != std::string::npos)) {
    return Invalid("linux.intelRdt.memBwSchema: must start with \"MB:\" and be one line, got %s",
                   Quote(rdt.mem_bw_schema).c_str());
  }
  for (size_t i = 0; i < rdt.schemata.size(); ++i) {
    if (rdt.schemata[i].find('\n') != std::string::npos) {
      return Invalid("%s: must not contain a newline", At("linux.intelRdt.schemata", i).c_str());
    }
  }
  MOAT_TRY(CheckNoNul("linux.intelRdt.l3CacheSchema", rdt.l3_cache_schema));
  MOAT_TRY(CheckNoNul("linux.intelRdt.memBwSchema", rdt.mem_bw_schema));
  return CheckStrings("linux.intelRdt.schemata", rdt.schemata);
}

Result<void> ValidateMemoryPolicy(const MemoryPolicy& mp) {
  if (!OneOf(mp.mode, kMemoryPolicyModes)) {
    return Invalid("linux.memoryPolicy.mode: unknown mode %s", Quote(mp.mode).c_str());
  }
  if (!IsValidCpuList(mp.nodes)) {
    return Invalid("linux.memoryPolicy.nodes: invalid node list %s", Quote(mp.nodes).c_str());
  }
  for (size_t i = 0; i < mp.flags.size(); ++i) {
    if (!OneOf(mp.flags[i], kMemoryPolicyFlags)) {
      return Invalid("%s: unknown flag %s", At("linux.memoryPolicy.flags", i).c_str(),
                     Quote(mp.flags[i]).c_str());
    }
  }
  return Ok();
}

Result<void> ValidateLinux(const Spec& spec) {
  const Linux& l = *spec.linux;
  MOAT_TRY(ValidateNamespaces(spec));
  MOAT_TRY(ValidateDevices(l.devices));
  if (!l.net_devices.empty() && !HasNamespace(spec, "network")) {
    return Invalid("linux.netDevices: requires a new network namespace");
  }
  for (const auto& [host_name, dev] : l.net_devices) {
    const std::string p = "linux.netDevices[" + Quote(host_name) + "]";
    if (!IsValidInterfaceName(host_name)) return Invalid("%s: invalid interface name", p.c_str());
    if (!dev.name.empty() && !IsValidInterfaceName(dev.name)) {
      // A trailing "%d" asks the kernel to pick a free number; it fits the same rules.
      return Invalid("%s.name: invalid interface name %s", p.c_str(), Quote(dev.name).c_str());
    }
  }
  MOAT_TRY(ValidateCgroupsPath(l.cgroups_path));
  if (l.resources) MOAT_TRY(ValidateResources(*l.resources, "linux.resources"));
  if (l.intel_rdt) MOAT_TRY(ValidateIntelRdt(*l.intel_rdt));
  if (l.memory_policy) MOAT_TRY(ValidateMemoryPolicy(*l.memory_policy));
  if (!l.rootfs_propagation.empty() && !OneOf(l.rootfs_propagation, kRootfsPropagations)) {
    return Invalid("linux.rootfsPropagation: unknown propagation %s",
                   Quote(l.rootfs_propagation).c_str());
  }
  if (l.seccomp) MOAT_TRY(ValidateSeccomp(*l.seccomp, "linux.seccomp"));
  MOAT_TRY(ValidateSysctl(spec));
  MOAT_TRY(CheckAbsolutePaths("linux.maskedPaths", l.masked_paths));
  MOAT_TRY(CheckAbsolutePaths("linux.readonlyPaths", l.readonly_paths));
  MOAT_TRY(CheckNoNul("linux.mountLabel", l.mount_label));
  if (l.personality) {
    const Personality& p = *l.personality;
    if (p.domain != "LINUX" && p.domain != "LINUX32") {
      return Invalid("linux.personality.domain: unknown domain %s", Quote(p.domain).c_str());
    }
    // config-linux.md: "Currently no flag values are supported."
    if (!p.flags.empty()) {
      return Invalid("linux.personality.flags[0]: unsupported flag %s", Quote(p.flags[0]).c_str());
    }
  }
  return Ok();
}

}  // namespace

Result<void> ValidateSpec(const Spec& spec) {
  MOAT_TRY(ValidateVersion(spec.oci_version));
  MOAT_TRY(ValidateRoot(spec));
  MOAT_TRY(ValidateMounts(spec.mounts));
  if (spec.process) MOAT_TRY(ValidateProcess(*spec.process, "process"));
  if (spec.hooks) MOAT_TRY(ValidateHooks(*spec.hooks));
  for (const auto& [key, value] : spec.annotations) {
    if (key.empty()) return Invalid("annotations: keys must not be empty");
  }
  // linux.* first: the cross-field rules below depend on a well-formed namespace list.
  if (spec.linux) MOAT_TRY(ValidateLinux(spec));
  MOAT_TRY(ValidateUts(spec));
  return Ok();
}

Result<void> RequireProcess(const Spec& spec) {
  if (!spec.process) return Invalid("process: required");
  return Ok();
}

}  // namespace moat::oci
