#pragma once

// Mount planning (pure: oci::Mount -> MountOp) and applying (in the container's mount
// namespace, before pivot_root). Every target is resolved inside the rootfs with
// openat2(RESOLVE_IN_ROOT), so a symlink in the image cannot send a mount outside it
// (CVE-2021-30465 class); the mount itself goes onto the resolved fd, never onto a path string.

#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "oci/spec.h"

namespace moat::runtime {

struct MountOp {
  std::string source;       // host path for binds (absolute), else the fs source
  std::string destination;  // absolute path inside the container
  std::string type;         // "bind" for binds
  std::string data;         // options the kernel reads as fs data ("mode=755,size=65536k")
  unsigned long flags = 0;  // MS_* for mount(2) (fs mounts)
  unsigned long propagation = 0;  // MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE, maybe MS_REC
  bool bind = false;
  bool recursive = false;  // rbind
  // For binds: mount_setattr attributes (set and cleared), applied to the clone before it is
  // attached; attr_recursive applies them to every submount (the "r*" options: rro, rnosuid).
  uint64_t attr_set = 0;
  uint64_t attr_clr = 0;
  bool attr_recursive = false;
  bool source_is_dir = true;  // decides whether a missing target is a directory or a file
};

// Parses a mount's type and options. Unknown "x=y" or flag-like options become fs data, as
// runc does. `field` prefixes errors ("mounts[3]").
Result<MountOp> PlanMount(const oci::Mount& mount, const std::string& bundle,
                          const std::string& field);

// Converts rootfsPropagation ("rslave", ...) to mount flags; "" -> MS_REC|MS_SLAVE.
Result<unsigned long> PropagationFlags(const std::string& name);

// Opens `path` (absolute, container view) inside `root_fd` (remains owned by the caller),
// creating missing directories (mode 0755) and, if `leaf_is_dir` is false, an empty file as the
// last component. Returns an O_PATH fd of the target. Nothing is resolved outside the root.
Result<UniqueFd> MkdirAllInRoot(int root_fd, const std::string& path, bool leaf_is_dir);

// Applies one planned mount under `root_fd`. `host_sysfs_fallback`: mounting sysfs failed with
// EPERM (no new network namespace in a user namespace): bind the host's /sys read-only instead.
Result<void> ApplyMount(int root_fd, const MountOp& op);

// "/proc/self/fd/N" for fd N: the way to hand an fd to mount(2) as a path.
std::string FdPath(int fd);

}  // namespace moat::runtime
