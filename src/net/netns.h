// Named network namespaces: a new net namespace kept alive by a bind mount on a file (like
// `ip netns add`, under Moat's exec root), so that it outlives the process that made it and the
// runtime joins it by path (linux.namespaces[].path in config.json).
#pragma once

#include <functional>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace moat::net {

// Creates an empty file at `path` (its directory must exist), a new network namespace, brings
// its loopback up, and bind-mounts the namespace on the file. Returns an O_RDONLY|O_CLOEXEC fd on
// the namespace. Safe to call from any thread of a multi-threaded process: the calling thread is
// back in its own namespace on return, on success and failure. `path` already existing is
// kAlreadyExists. On failure nothing is left behind (no mount, no file).
Result<UniqueFd> CreateNamedNetns(const std::string& path);

// Opens an existing named namespace (O_RDONLY|O_CLOEXEC); kNotFound if `path` is absent, and
// kInvalidArgument if it is not a network namespace (checked with NS_GET_NSTYPE or statfs nsfs).
Result<UniqueFd> OpenNamedNetns(const std::string& path);

// Detaches the bind mount (MNT_DETACH) and unlinks the file. Absent path: success. The namespace
// goes away once nothing else holds it (its veth ends are then deleted by the kernel).
Result<void> RemoveNamedNetns(const std::string& path);

// Runs `fn` with the calling thread switched into the network namespace `netns_fd`, then switches
// back (also when fn fails). Fails if the thread cannot return (then it is a bug: aborts).
Result<void> InNetns(int netns_fd, const std::function<Result<void>()>& fn);

}  // namespace moat::net
