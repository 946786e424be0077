#include "runtime/cgroup_mount.h"

#include <sys/mount.h>

#include <sstream>

#include "base/sys/fs.h"
#include "base/sys/linux_compat.h"
#include "base/sys/mount.h"

namespace moat::runtime {

CgroupMountPlan PlanCgroupMount(const std::string& mountinfo) {
  CgroupMountPlan plan;
  std::istringstream in(mountinfo);
  std::string line;
  bool any_v1 = false;
  while (std::getline(in, line)) {
    // "<id> <parent> <maj:min> <root> <mountpoint> <opts> [optional...] - <fstype> <src> <super>"
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    auto pre = StrSplit(line.substr(0, dash), ' ');
    auto post = StrSplit(line.substr(dash + 3), ' ');
    if (pre.size() < 5 || post.size() < 3) continue;
    const std::string& mountpoint = pre[4];
    const std::string& fstype = post[0];
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    if (pre[3] != "/") continue;  // a bind of a subtree, not the hierarchy itself
    // Only the host's own hierarchies, once each (binds elsewhere repeat them).
    size_t slash = mountpoint.rfind('/');
    std::string parent = mountpoint.substr(0, slash);
    std::string name = mountpoint.substr(slash + 1);
    if (mountpoint != "/sys/fs/cgroup" && parent != "/sys/fs/cgroup") continue;
    bool seen = false;
    for (const auto& h : plan.hierarchies) seen |= h.name == name;
    if (seen) continue;
    if (fstype == "cgroup2") {
      if (mountpoint == "/sys/fs/cgroup") plan.unified = true;
      plan.hierarchies.push_back({name, fstype, ""});
      continue;
    }
    any_v1 = true;
    std::vector<std::string> opts;
    for (const auto& o : StrSplit(post[2], ','))
      if (o != "rw" && o != "ro") opts.push_back(o);
    plan.hierarchies.push_back({name, fstype, StrJoin(opts, ",")});
  }
  if (any_v1) plan.unified = false;
  if (plan.unified) plan.hierarchies.clear();
  return plan;
}

Result<void> MountCgroupInChild(int root_fd, const MountOp& op, const CgroupMountPlan& plan) {
  constexpr uint64_t kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  // Mounted read-write, then made read-only with mount_setattr: cgroup superblocks are shared
  // with the host's mounts, and asking for a different ro flag at mount time is EBUSY.
  unsigned long flags = op.flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RELATIME);
  bool readonly = op.flags & MS_RDONLY;
  MOAT_ASSIGN_OR_RETURN(UniqueFd target, MkdirAllInRoot(root_fd, op.destination, true));
  if (plan.unified) {
    auto r = sys::mount("cgroup2", FdPath(target.get()), "cgroup2", flags, "");
    if (!r && !plan.v2_host_dir.empty() &&
        (r.error().sys_errno == EPERM || r.error().sys_errno == EBUSY)) {
      MountOp bind = op;
      bind.bind = true;
      bind.recursive = true;
      bind.source = plan.v2_host_dir;
      bind.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC |
                      (readonly ? MOUNT_ATTR_RDONLY : 0);
      return ApplyMount(root_fd, bind);
    }
    MOAT_TRY(std::move(r).Context("cgroup mount %s", op.destination.c_str()));
  } else {
    MOAT_TRY(std::move(sys::mount("tmpfs", FdPath(target.get()), "tmpfs", flags, "mode=755"))
                 .Context("cgroup mount %s", op.destination.c_str()));
    MOAT_ASSIGN_OR_RETURN(UniqueFd dir, sys::openat2(root_fd, op.destination,
                                                     O_PATH | O_DIRECTORY, 0, kInRoot));
    for (const auto& h : plan.hierarchies) {
      MOAT_TRY(sys::mkdirat(dir.get(), h.name, 0755));
      MOAT_ASSIGN_OR_RETURN(UniqueFd sub,
                            sys::openat(dir.get(), h.name, O_PATH | O_DIRECTORY | O_NOFOLLOW));
      MOAT_TRY(std::move(sys::mount("cgroup", FdPath(sub.get()), h.fstype, flags, h.options))
                   .Context("cgroup hierarchy %s", h.name.c_str()));
      if (h.fstype == "cgroup" && h.name.find(',') != std::string::npos) {
        for (const auto& c : StrSplit(h.name, ',')) (void)sys::symlinkat(h.name, dir.get(), c);
      }
    }
  }
  if (readonly) {
    MOAT_ASSIGN_OR_RETURN(UniqueFd mounted, sys::openat2(root_fd, op.destination,
                                                         O_PATH | O_DIRECTORY, 0, kInRoot));
    sys::MountAttr attr{};
    attr.attr_set = MOUNT_ATTR_RDONLY;
    MOAT_TRY(std::move(sys::mount_setattr(mounted.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, attr))
                 .Context("cgroup mount %s read-only", op.destination.c_str()));
  }
  return Ok();
}

}  // namespace moat::runtime
