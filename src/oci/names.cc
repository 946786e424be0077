#include "oci/names.h"

#include <sched.h>
#include <sys/resource.h>

#include <csignal>
#include <cstddef>

#include "base/sys/linux_compat.h"

namespace moat::oci {
namespace {

// Indexed by capability number; see capabilities(7) and linux/capability.h.
constexpr std::string_view kCapabilityNames[] = {
    "CAP_CHOWN",               // 0
    "CAP_DAC_OVERRIDE",        // 1
    "CAP_DAC_READ_SEARCH",     // 2
    "CAP_FOWNER",              // 3
    "CAP_FSETID",              // 4
    "CAP_KILL",                // 5
    "CAP_SETGID",              // 6
    "CAP_SETUID",              // 7
    "CAP_SETPCAP",             // 8
    "CAP_LINUX_IMMUTABLE",     // 9
    "CAP_NET_BIND_SERVICE",    // 10
    "CAP_NET_BROADCAST",       // 11
    "CAP_NET_ADMIN",           // 12
    "CAP_NET_RAW",             // 13
    "CAP_IPC_LOCK",            // 14
    "CAP_IPC_OWNER",           // 15
    "CAP_SYS_MODULE",          // 16
    "CAP_SYS_RAWIO",           // 17
    "CAP_SYS_CHROOT",          // 18
    "CAP_SYS_PTRACE",          // 19
    "CAP_SYS_PACCT",           // 20
    "CAP_SYS_ADMIN",           // 21
    "CAP_SYS_BOOT",            // 22
    "CAP_SYS_NICE",            // 23
    "CAP_SYS_RESOURCE",        // 24
    "CAP_SYS_TIME",            // 25
    "CAP_SYS_TTY_CONFIG",      // 26
    "CAP_MKNOD",               // 27
    "CAP_LEASE",               // 28
    "CAP_AUDIT_WRITE",         // 29
    "CAP_AUDIT_CONTROL",       // 30
    "CAP_SETFCAP",             // 31
    "CAP_MAC_OVERRIDE",        // 32
    "CAP_MAC_ADMIN",           // 33
    "CAP_SYSLOG",              // 34
    "CAP_WAKE_ALARM",          // 35
    "CAP_BLOCK_SUSPEND",       // 36
    "CAP_AUDIT_READ",          // 37
    "CAP_PERFMON",             // 38
    "CAP_BPF",                 // 39
    "CAP_CHECKPOINT_RESTORE",  // 40
};
constexpr int kLastCapability = static_cast<int>(std::size(kCapabilityNames)) - 1;
static_assert(kLastCapability == 40);

struct NamedValue {
  std::string_view name;
  int value;
};

// Signal names without the "SIG" prefix. Values come from the C library headers so that the
// table is right on every architecture (SIGBUS, SIGUSR1 ... differ on mips, alpha, sparc).
constexpr NamedValue kSignals[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},
    {"FPE", SIGFPE},       {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM},
#ifdef SIGSTKFLT
    {"STKFLT", SIGSTKFLT},
#endif
    {"CHLD", SIGCHLD},     {"CLD", SIGCHLD},  {"CONT", SIGCONT},     {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH},   {"IO", SIGIO},     {"POLL", SIGIO},
#ifdef SIGPWR
    {"PWR", SIGPWR},
#endif
    {"SYS", SIGSYS},
};

constexpr NamedValue kRlimits[] = {
    {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
    {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME},
};
static_assert(std::size(kRlimits) == 16);

struct NamespaceInfo {
  std::string_view type;       // linux.namespaces[].type
  std::string_view proc_name;  // /proc/PID/ns/<proc_name>
  int flag;
};

constexpr NamespaceInfo kNamespaces[] = {
    {"pid", "pid", CLONE_NEWPID},          {"network", "net", CLONE_NEWNET},
    {"mount", "mnt", CLONE_NEWNS},         {"ipc", "ipc", CLONE_NEWIPC},
    {"uts", "uts", CLONE_NEWUTS},          {"user", "user", CLONE_NEWUSER},
    {"cgroup", "cgroup", CLONE_NEWCGROUP}, {"time", "time", CLONE_NEWTIME},
};

constexpr char AsciiUpper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }

constexpr bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiUpper(a[i]) != AsciiUpper(b[i])) return false;
  }
  return true;
}

// Removes `prefix` from the front of `s` if present, ignoring ASCII case.
constexpr std::string_view StripPrefixIgnoreCase(std::string_view s, std::string_view prefix) {
  if (s.size() >= prefix.size() && EqualsIgnoreCase(s.substr(0, prefix.size()), prefix)) {
    return s.substr(prefix.size());
  }
  return s;
}

// Parses a short run of decimal digits (no sign); nullopt if empty, not all digits, or > 999.
constexpr std::optional<int> SmallDecimal(std::string_view s) {
  if (s.empty() || s.size() > 3) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

constexpr int kMaxSignal = 64;

}  // namespace

int LastCapability() { return kLastCapability; }

std::optional<int> CapabilityFromName(std::string_view name) {
  std::string_view bare = StripPrefixIgnoreCase(name, "CAP_");
  if (bare.empty()) return std::nullopt;
  for (int i = 0; i <= kLastCapability; ++i) {
    if (EqualsIgnoreCase(bare, kCapabilityNames[i].substr(4))) return i;
  }
  return std::nullopt;
}

std::string_view CapabilityName(int cap) {
  if (cap < 0 || cap > kLastCapability) return {};
  return kCapabilityNames[cap];
}

std::optional<int> SignalFromName(std::string_view s) {
  if (s.empty()) return std::nullopt;
  if (s[0] >= '0' && s[0] <= '9') {
    std::optional<int> n = SmallDecimal(s);
    if (!n || *n < 1 || *n > kMaxSignal) return std::nullopt;
    return n;
  }
  std::string_view bare = StripPrefixIgnoreCase(s, "SIG");
  for (const NamedValue& sig : kSignals) {
    if (EqualsIgnoreCase(bare, sig.name)) return sig.value;
  }
  // Real-time signals: glibc reserves the first few kernel RT signals for itself, so SIGRTMIN
  // is a run-time value (34 on x86-64 glibc), not __SIGRTMIN.
  const int rtmin = SIGRTMIN;
  const int rtmax = SIGRTMAX < kMaxSignal ? SIGRTMAX : kMaxSignal;
  int base = 0;
  int sign = 0;
  std::string_view rest;
  if (StripPrefixIgnoreCase(bare, "RTMIN").size() != bare.size()) {
    base = rtmin;
    rest = bare.substr(5);
    sign = 1;
  } else if (StripPrefixIgnoreCase(bare, "RTMAX").size() != bare.size()) {
    base = rtmax;
    rest = bare.substr(5);
    sign = -1;
  } else {
    return std::nullopt;
  }
  int offset = 0;
  if (!rest.empty()) {
    // RTMIN counts up ("RTMIN+3"), RTMAX counts down ("RTMAX-2"), as in kill(1).
    if ((sign > 0 && rest[0] != '+') || (sign < 0 && rest[0] != '-')) return std::nullopt;
    std::optional<int> n = SmallDecimal(rest.substr(1));
    if (!n) return std::nullopt;
    offset = *n;
  }
  int sig = base + sign * offset;
  if (sig < rtmin || sig > rtmax) return std::nullopt;
  return sig;
}

std::optional<int> RlimitFromName(std::string_view name) {
  for (const NamedValue& r : kRlimits) {
    if (name == r.name) return r.value;
  }
  return std::nullopt;
}

std::optional<int> NamespaceFlag(std::string_view type) {
  for (const NamespaceInfo& ns : kNamespaces) {
    if (type == ns.type) return ns.flag;
  }
  return std::nullopt;
}

std::string_view NamespaceProcName(std::string_view type) {
  for (const NamespaceInfo& ns : kNamespaces) {
    if (type == ns.type) return ns.proc_name;
  }
  return {};
}

}  // namespace moat::oci
