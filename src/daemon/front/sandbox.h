#pragma once

// Confinement of moatd's API front, applied in the forked front process before it parses a
// single byte: an empty root directory, a non-root uid and gid without supplementary groups,
// no capabilities in any set, no_new_privs, and a seccomp allowlist that permits sockets it was
// given, threads and memory, AF_UNIX socketpairs (TLS relays) and getrandom (TLS), and nothing
// that opens files, executes programs or makes new network connections. TLS certificates and
// keys must therefore be loaded before EnterSandbox.

#include <sys/types.h>

#include <string>

#include "base/result.h"
#include "seccomp/compiler.h"

namespace moat::daemon::front {

struct SandboxPlan {
  std::string empty_root;  // an empty directory, root-owned, 0555
  uid_t uid = 65534;
  gid_t gid = 65534;
  seccomp::Program program;
};

// Builds the plan in the parent (allocation and libseccomp happen here, before fork): resolves
// `user` (falling back to "nobody") and compiles the front's seccomp allowlist.
Result<SandboxPlan> PlanSandbox(const std::string& user, const std::string& empty_root);

// Applies the plan to the calling process, which must be single-threaded. After it returns the
// process cannot regain privileges. Errors: kPermissionDenied/kInternal naming the step.
Result<void> EnterSandbox(const SandboxPlan& plan);

}  // namespace moat::daemon::front
