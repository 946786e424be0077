#pragma once

// Mount planning (pure: oci::Mount -> MountOp) and applying (in the container's mount
// namespace, before pivot_root). Every target is resolved inside the rootfs with
// openat2(RESOLVE_IN_ROOT), so a symlink in the image cannot send a mount outside it
// (CVE-2021-30465 class); the mount itself goes onto the resolved fd, never onto a path string.

#include <memory>
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

  // Id-mapped bind (mounts[].uidMappings/gidMappings, options "idmap"/"ridmap"): the source's
  // ids are seen through these maps, written as a user namespace's uid_map/gid_map (an id
  // `containerID + k` on disk shows as `hostID + k`, runc's reading); idmap_recursive
  // ("ridmap") maps every submount of an rbind too, else only the top mount is.
  bool idmap = false;
  bool idmap_recursive = false;
  std::vector<oci::IdMapping> uid_mappings;
  std::vector<oci::IdMapping> gid_mappings;
  // Set by PrepareIdmappedMountsFromParent: the detached clone of the source with the mapping
  // (and attr_set/attr_clr) applied, close-on-exec. Shared by copies of the op; the container's
  // init inherits it through clone3 and ApplyMount attaches it.
  std::shared_ptr<UniqueFd> idmapped_tree;
};

// The container's own user namespace mappings (linux.uidMappings/gidMappings when it gets a new
// user namespace), which "idmap"/"ridmap" use for a mount that gives no mappings of its own.
// Empty: the container has none, and such a mount is refused.
struct ContainerIdMaps {
  std::vector<oci::IdMapping> uids;
  std::vector<oci::IdMapping> gids;
};

// Parses a mount's type and options. Unknown "x=y" or flag-like options become fs data, as
// runc does. `field` prefixes errors ("mounts[3]"). Makes no mount and no namespace (a bind's
// source is stat'ed): id-mapped binds are only planned here (see
// PrepareIdmappedMountsFromParent). kInvalidArgument for an id mapping on a non-bind mount, or
// "idmap"/"ridmap" with no mappings when `container` has none either.
Result<MountOp> PlanMount(const oci::Mount& mount, const std::string& bundle,
                          const std::string& field, const ContainerIdMaps& container = {});

// Host half of id-mapped binds, in the runtime before clone3: for each op with `idmap`, a
// detached clone of the source (open_tree(OPEN_TREE_CLONE [| AT_RECURSIVE])), made a slave so
// nothing the container mounts in it propagates back to the host, given the op's mount
// attributes and the id mapping of a user namespace made for it (MakeMappingUserNamespace; the
// namespace and the child that made it are gone when this returns). Stored in
// op.idmapped_tree. Must be single-threaded. Errors name the mount ("mounts[3]..."); on error
// the trees already made are dropped with the ops (closing the last fd dissolves a tree).
Result<void> PrepareIdmappedMountsFromParent(std::vector<MountOp>& ops);

// Converts rootfsPropagation ("rslave", ...) to mount flags; "" -> MS_REC|MS_SLAVE.
Result<unsigned long> PropagationFlags(const std::string& name);

// Opens `path` (absolute, container view) inside `root_fd` (remains owned by the caller),
// creating missing directories (mode 0755) and, if `leaf_is_dir` is false, an empty file as the
// last component. Returns an O_PATH fd of the target. Nothing is resolved outside the root.
Result<UniqueFd> MkdirAllInRoot(int root_fd, const std::string& path, bool leaf_is_dir);

// Applies one planned mount under `root_fd`. If mounting sysfs (mqueue) fails with EPERM (no new
// network (ipc) namespace in a user namespace), the host's /sys (/dev/mqueue) is bound instead.
// An id-mapped bind attaches op.idmapped_tree (and closes this process's copy of it);
// kInternal if PrepareIdmappedMountsFromParent did not make it.
Result<void> ApplyMount(int root_fd, const MountOp& op);

// "/proc/self/fd/N" for fd N: the way to hand an fd to mount(2) as a path.
std::string FdPath(int fd);

}  // namespace moat::runtime
