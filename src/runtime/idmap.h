#pragma once

// Id-mapped mounts (mount_setattr(2) MOUNT_ATTR_IDMAP, Linux 5.12): a user namespace made only
// to carry an id mapping, and a detached bind tree that shows its source's ids through it.
//
// Host half: these run in the runtime before clone3, in the host's user namespace. Id-mapping
// a mount needs CAP_SYS_ADMIN over the user namespace of the source's filesystem (the initial
// one for ext4, xfs, btrfs, tmpfs), which the container's init, born in its own user namespace,
// does not have; the tree made here is inherited by the init, which only attaches it.

#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "oci/spec.h"

namespace moat::runtime {

// "containerID hostID size\n" per mapping: the text /proc/PID/uid_map and gid_map take.
std::string IdMapFileText(const std::vector<oci::IdMapping>& maps);

// A user namespace whose uid_map and gid_map are exactly `uids` and `gids`, written as given
// (containerID: the id inside, hostID: the id outside), with setgroups denied. Made by a
// short-lived child cloned with CLONE_NEWUSER that only waits; it is killed and reaped before
// this returns, success or not, and the namespace lives on through the returned fd (read-only,
// close-on-exec, owned by the caller).
// Preconditions: single-threaded (clone3); both lists non-empty.
// Errors: EPERM (kPermissionDenied) when the caller may not write such maps (not root in the
// initial user namespace, or a rootless runtime mapping other ids than its own); EINVAL
// (kInvalidArgument) for maps the kernel refuses (overlapping ranges, more than 340 lines).
// The message names the map file.
Result<UniqueFd> MakeMappingUserNamespace(const std::vector<oci::IdMapping>& uids,
                                          const std::vector<oci::IdMapping>& gids);

enum class IdmapRecursion { kTopOnly, kWholeTree };

// Applies the id mapping of `userns_fd` (see MakeMappingUserNamespace) to the detached tree
// `tree_fd` (from open_tree(OPEN_TREE_CLONE), never attached yet): its top mount only, or with
// kWholeTree every submount too. Both fds remain owned by the caller; the mapping stays with
// the mounts after `userns_fd` is closed.
// Errors: EINVAL when a mount's filesystem cannot be id-mapped (proc, sysfs, nfs...) or the tree
// is attached; EPERM without CAP_SYS_ADMIN over the filesystem's user namespace.
Result<void> IdmapTree(int tree_fd, int userns_fd, IdmapRecursion recursion);

}  // namespace moat::runtime
