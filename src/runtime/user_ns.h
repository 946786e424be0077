#pragma once

// The id maps of a container's new user namespace, written from the host side (the runtime)
// while the init waits for kGo.
//
// Root writes /proc/PID/uid_map and gid_map itself. An unprivileged caller may write them
// itself only for one mapping of its own effective id (user_namespaces(7)); anything else goes
// through the setuid helpers newuidmap(1)/newgidmap(1) of the `uidmap` package, which check the
// mappings against /etc/subuid and /etc/subgid, as runc does in rootless mode.

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/result.h"
#include "oci/spec.h"

namespace moat::runtime {

enum class IdMapWriter {
  kDirect,  // the runtime writes the map file itself
  kHelper,  // newuidmap / newgidmap
};

// Who writes one map: kDirect when `euid` is 0, or when `maps` is exactly one mapping of size 1
// whose hostID is `own_id` (the caller's euid for uid maps, its egid for gid maps); kHelper
// otherwise. Pure.
IdMapWriter ChooseIdMapWriter(uid_t euid, uint32_t own_id, const std::vector<oci::IdMapping>& maps);

struct IdMapPlan {
  IdMapWriter uid = IdMapWriter::kDirect;
  IdMapWriter gid = IdMapWriter::kDirect;
  // True when the caller is not root: a direct gid_map write then needs setgroups "deny" first.
  bool unprivileged = false;
  bool UsesHelper() const { return uid == IdMapWriter::kHelper || gid == IdMapWriter::kHelper; }
};

// The plan for the calling process (its euid and egid) and `linux`'s mappings. Makes no
// syscall beyond geteuid/getegid.
IdMapPlan PlanIdMaps(const oci::Linux& linux);

// argv of `tool` ("newuidmap"/"newgidmap") for `pid`: tool, pid, then containerID hostID size
// of each mapping. Pure.
std::vector<std::string> IdMapHelperArgv(const std::string& tool, pid_t pid,
                                         const std::vector<oci::IdMapping>& maps);

// Writes the uid and gid maps of `pid`'s user namespace as `plan` says. `pid` must be a child
// of the caller sitting in a new user namespace whose maps are unwritten, and dumpable while
// a helper runs (the helpers refuse a target whose /proc/PID the caller does not own).
// Direct: "setgroups" "deny" first when plan.unprivileged (required before an unprivileged
// gid_map write). Helper: found on $PATH (default path when unset), run with the caller's
// environment and fds 1-2 captured; the helper decides "setgroups" itself.
// Errors, prefixed "linux.uidMappings: " or "linux.gidMappings: ": the kernel's refusal of a
// direct write; "newuidmap: not found on PATH ..." (kNotFound); "newuidmap: <its stderr>"
// when it exits non-zero (kPermissionDenied). Must be single-threaded (spawns a process).
Result<void> WriteIdMapsFromParent(pid_t pid, const oci::Linux& linux, const IdMapPlan& plan);

}  // namespace moat::runtime
