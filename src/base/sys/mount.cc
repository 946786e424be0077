#include "base/sys/mount.h"

#include <sys/syscall.h>
#include <unistd.h>

namespace moat::sys {

namespace {
const char* OrNull(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }
}  // namespace

Result<void> mount(const std::string& source, const std::string& target,
                   const std::string& fstype, unsigned long flags, const std::string& data) {
  if (::mount(OrNull(source), target.c_str(), OrNull(fstype), flags, OrNull(data)) != 0)
    return FailErrno("mount %s on %s (type %s, flags %#lx)", source.c_str(), target.c_str(),
                     fstype.empty() ? "none" : fstype.c_str(), flags);
  return Ok();
}

Result<void> umount2(const std::string& target, int flags) {
  if (::umount2(target.c_str(), flags) != 0) return FailErrno("umount %s", target.c_str());
  return Ok();
}

Result<void> pivot_root(const std::string& new_root, const std::string& put_old) {
  if (syscall(SYS_pivot_root, new_root.c_str(), put_old.c_str()) != 0)
    return FailErrno("pivot_root %s", new_root.c_str());
  return Ok();
}

Result<UniqueFd> open_tree(int dirfd, const std::string& path, unsigned flags) {
  long fd = syscall(SYS_open_tree, dirfd, path.c_str(), flags | OPEN_TREE_CLOEXEC);
  if (fd < 0) return FailErrno("open_tree %s", path.c_str());
  return UniqueFd(static_cast<int>(fd));
}

Result<void> move_mount(int from_dirfd, const std::string& from_path, int to_dirfd,
                        const std::string& to_path, unsigned flags) {
  if (syscall(SYS_move_mount, from_dirfd, from_path.c_str(), to_dirfd, to_path.c_str(), flags) !=
      0)
    return FailErrno("move_mount to %s", to_path.c_str());
  return Ok();
}

Result<void> mount_setattr(int dirfd, const std::string& path, unsigned flags,
                           const MountAttr& attr) {
  MountAttr a = attr;
  if (syscall(SYS_mount_setattr, dirfd, path.c_str(), flags, &a, sizeof a) != 0)
    return FailErrno("mount_setattr %s", path.c_str());
  return Ok();
}

Result<UniqueFd> ReadOnlyBindMount(int dirfd, const std::string& path) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd tree,
                        open_tree(dirfd, path, OPEN_TREE_CLONE | (path.empty() ? AT_EMPTY_PATH : 0)));
  MountAttr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  MOAT_TRY(mount_setattr(tree.get(), "", AT_EMPTY_PATH, attr));
  return tree;
}

}  // namespace moat::sys
