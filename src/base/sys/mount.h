#pragma once

#include <sys/mount.h>

#include <string>

#include "base/result.h"
#include "base/sys/linux_compat.h"
#include "base/unique_fd.h"

// Mount syscalls, old and new API. fd parameters remain owned by the caller.
namespace moat::sys {

// `source`/`fstype`/`data` may be empty (passed as NULL).
Result<void> mount(const std::string& source, const std::string& target,
                   const std::string& fstype, unsigned long flags, const std::string& data);
Result<void> umount2(const std::string& target, int flags);
Result<void> pivot_root(const std::string& new_root, const std::string& put_old);
Result<UniqueFd> open_tree(int dirfd, const std::string& path, unsigned flags);
Result<void> move_mount(int from_dirfd, const std::string& from_path, int to_dirfd,
                        const std::string& to_path, unsigned flags);
Result<void> mount_setattr(int dirfd, const std::string& path, unsigned flags,
                           const MountAttr& attr);

// A detached, read-only (and nosuid, nodev) bind mount of `path` relative to `dirfd` (with an
// empty `path`: of `dirfd` itself), attached nowhere: open_tree(OPEN_TREE_CLONE) then
// mount_setattr. It lives as long as the returned fd or a file opened or executed through it.
// Errors keep the failing call's errno (EPERM without CAP_SYS_ADMIN over the mount namespace,
// ENOSYS on kernels before 5.2 / 5.12).
Result<UniqueFd> ReadOnlyBindMount(int dirfd, const std::string& path);

}  // namespace moat::sys
