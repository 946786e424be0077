#pragma once

// Confinement of moat-dns, applied at start before it reads a packet: its own mount namespace
// chrooted into an empty directory, no supplementary groups, uid and gid nobody (65534), no
// capabilities in any set (bounding and ambient cleared), no_new_privs, death with its parent,
// not dumpable, and a seccomp allowlist without open/openat/execve/socket/connect/bind: it only
// uses the sockets it is given.

#include <sys/types.h>

#include <string>

#include "base/result.h"
#include "oci/spec.h"
#include "seccomp/compiler.h"

namespace moat::net::dns {

inline constexpr uid_t kNobody = 65534;

struct SandboxPlan {
  std::string empty_root;  // an existing empty directory
  uid_t uid = kNobody;
  gid_t gid = kNobody;
  seccomp::Program program;
};

// moat-dns's seccomp profile (default EPERM), as a value for tests.
oci::Seccomp ResolverSeccompProfile();

// Compiles the profile (libseccomp allocates, so before entering). kInvalidArgument if
// `empty_root` is empty; errors of seccomp::Compile.
Result<SandboxPlan> PlanSandbox(const std::string& empty_root);

// Applies `plan` to the calling process, which must be single-threaded and root (moatd's core
// spawns moat-dns as root). After it returns the process cannot regain privileges. Errors name
// the step (kPermissionDenied when not root).
Result<void> EnterSandbox(const SandboxPlan& plan);

}  // namespace moat::net::dns
