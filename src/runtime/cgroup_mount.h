#pragma once

// A "cgroup" mount in config.json (Docker and containerd put one at /sys/fs/cgroup): the
// container's own view of its cgroup, through its cgroup namespace.

#include <string>
#include <vector>

#include "base/result.h"
#include "runtime/mounts.h"

namespace moat::runtime {

struct CgroupHierarchy {
  std::string name;     // directory under the mount: "memory", "cpu,cpuacct", "unified"
  std::string fstype;   // "cgroup" or "cgroup2"
  std::string options;  // v1 super options: "memory", "cpu,cpuacct", "none,name=systemd"
};

struct CgroupMountPlan {
  bool unified = false;  // pure cgroup v2 host
  std::vector<CgroupHierarchy> hierarchies;  // v1/hybrid: every hierarchy the host mounts
  // v2: the container's cgroup directory on the host, bound instead when the kernel refuses a
  // cgroup2 mount (a user namespace that does not own the cgroup namespace).
  std::string v2_host_dir;
};

// Pure: reads the host's hierarchies from mountinfo text (/proc/self/mountinfo).
CgroupMountPlan PlanCgroupMount(const std::string& mountinfo);

// Child, in the container's cgroup namespace, before pivot_root. v2: cgroup2 at the target.
// v1: a tmpfs at the target, each hierarchy mounted in a directory named as on the host, and
// symlinks for co-mounted controllers ("cpu" -> "cpu,cpuacct"); read-only if `op` says ro.
Result<void> MountCgroupInChild(int root_fd, const MountOp& op, const CgroupMountPlan& plan);

}  // namespace moat::runtime
