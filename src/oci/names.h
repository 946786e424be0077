#pragma once

// Name <-> number tables for the strings config.json and the runc command line use:
// capabilities, signals, rlimits and namespace types. All tables are constexpr data; every
// function is pure, thread-safe and async-signal-safe (no allocation).

#include <optional>
#include <string_view>

namespace moat::oci {

// The highest capability number this build knows: CAP_CHECKPOINT_RESTORE (40, Linux 5.9).
int LastCapability();

// Maps a capability name to its number (0 .. LastCapability()). Accepts the spec form
// "CAP_SYS_ADMIN" and, leniently, "SYS_ADMIN"; the comparison ignores ASCII case.
// Returns nullopt for unknown names.
std::optional<int> CapabilityFromName(std::string_view name);

// The spec form of a capability number, "CAP_CHOWN" for 0; empty for numbers outside
// 0 .. LastCapability().
std::string_view CapabilityName(int cap);

// Maps a signal as runc's `kill` accepts it to its number: "SIGKILL", "KILL", "kill", "9",
// "SIGRTMIN", "RTMIN+3", "SIGRTMAX-2". Real-time names are resolved with the C library's
// SIGRTMIN/SIGRTMAX at run time. Only signals 1 .. 64 that exist on this system are accepted;
// returns nullopt otherwise (including for 0, which `kill` treats specially).
std::optional<int> SignalFromName(std::string_view s);

// Maps "RLIMIT_NOFILE" (exact spelling, as the spec and runc require) to RLIMIT_NOFILE; all 16
// Linux rlimits from RLIMIT_CPU to RLIMIT_RTTIME. Returns nullopt for anything else.
std::optional<int> RlimitFromName(std::string_view name);

// Maps a linux.namespaces[].type ("pid", "network", "mount", "ipc", "uts", "user", "cgroup",
// "time") to its CLONE_NEW* flag; nullopt for unknown types.
std::optional<int> NamespaceFlag(std::string_view type);

// The /proc/PID/ns/ file name for a namespace type: "network" -> "net", "mount" -> "mnt", the
// others unchanged. Empty for unknown types.
std::string_view NamespaceProcName(std::string_view type);

}  // namespace moat::oci
