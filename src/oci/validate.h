#pragma once

// Semantic checks of a decoded config.json, run before any container state is created (and
// again on the privileged side, which must not trust the caller's checks).
//
// Every function returns the first problem found as ErrorKind::kInvalidArgument, with a message
// that names the field path in config.json terms, e.g.
//   process.capabilities.bounding[1]: unknown capability "CAP_FOO"
//   linux.sysctl: "net.ipv4.ip_forward" requires a new network namespace
// Strings quoted in messages are truncated and have non-printable bytes replaced.
// The functions are pure and thread-safe; they allocate, so they are not async-signal-safe.
//
// Out of scope here, checked where the knowledge lives: seccomp syscall names (the seccomp
// compiler), mount options and types (the runtime's mount planner), whether a namespace `path`
// really is a namespace of that type and not the host's own (the runtime, when it opens it).

#include <string_view>

#include "base/result.h"
#include "oci/spec.h"

namespace moat::oci {

// Checks a whole spec: ociVersion is 1.x; root and root.path are present; mounts, process (if
// present), hooks, annotations and every linux.* field are well-formed and consistent with each
// other. A namespace "exists" for the sysctl/hostname/timeOffsets rules when linux.namespaces
// lists its type, whether created (no path) or joined (path); timeOffsets and id mappings need a
// namespace the runtime creates. `process` may be absent (see RequireProcess).
Result<void> ValidateSpec(const Spec& spec);

// Fails with "process: required" when spec.process is absent; create and run need it.
Result<void> RequireProcess(const Spec& spec);

// Checks one process object (config.json's, or `exec --process`'s). Field paths in messages
// start with `prefix`, normally "process".
Result<void> ValidateProcess(const Process& process, std::string_view prefix);

// Checks a linux.resources object (config.json's, or `update --resources`'s): device rule
// types and access, memory values >= -1, swappiness <= 100, CPU/memory-node list syntax,
// hugepage sizes, and that every name used to build a cgroupfs file name (unified keys, page
// sizes, rdma devices, network interfaces) cannot escape the cgroup directory. Field paths start
// with `prefix`, normally "linux.resources".
Result<void> ValidateResources(const Resources& resources, std::string_view prefix);

// Checks a linux.seccomp object: actions, architectures, flags and argument operators are
// known libseccomp names, arg indexes are 0..5, errnoRet only with SCMP_ACT_ERRNO/TRACE,
// SCMP_ACT_NOTIFY needs listenerPath and is not a default action. Syscall names are not checked.
// Field paths start with `prefix`, normally "linux.seccomp".
Result<void> ValidateSeccomp(const Seccomp& seccomp, std::string_view prefix);

}  // namespace moat::oci
