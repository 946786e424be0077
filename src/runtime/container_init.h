#pragma once

// The container's first process between clone3 and execve. Everything it needs was prepared
// by the parent (launcher.cc) into an InitPlan; RunContainerInit applies it in THE order below.

#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "oci/spec.h"
#include "runtime/cgroup_mount.h"
#include "runtime/mounts.h"
#include "runtime/process.h"

namespace moat::runtime {

struct NamespaceJoin {
  int flag = 0;  // CLONE_NEW*
  UniqueFd fd;   // opened by the parent from linux.namespaces[].path
};

struct InitPlan {
  // Namespaces: created by clone3 (clone_flags), joined by fd, then created with unshare
  // after a joined user namespace (unshare_flags).
  uint64_t clone_flags = 0;
  std::vector<NamespaceJoin> joins;
  int unshare_flags = 0;
  // cgroup v1: the container joins its cgroups after clone, so its cgroup namespace is made
  // after kGo (made at clone time it would be rooted at the runtime's cgroup).
  bool late_cgroup_ns = false;
  bool new_user_ns = false;
  // The id maps are written by an unprivileged runtime or by newuidmap/newgidmap (user_ns.h),
  // which need the init's /proc files, so the init stays dumpable until kGo; otherwise it
  // makes itself non-dumpable first thing.
  bool hide_after_id_maps = false;
  bool new_mount_ns = false;

  std::string rootfs;  // absolute host path
  bool readonly_rootfs = false;
  unsigned long rootfs_propagation = 0;
  std::vector<MountOp> mounts;
  CgroupMountPlan cgroup_mount;  // for mounts of type "cgroup"
  bool dev_is_mounted = false;  // config mounts something on /dev
  std::vector<oci::Device> devices;
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  std::string hostname, domainname;
  std::vector<std::pair<std::string, std::string>> sysctl;  // key as a /proc/sys path
  bool has_runtime_hooks = false;  // prestart/createRuntime: ask the parent to run them
  std::vector<oci::Hook> create_container_hooks;
  std::vector<oci::Hook> start_container_hooks;
  std::string state_json_for_hooks;

  ProcessPlan process;

  // fds, all inherited through clone3; the child closes what it does not need.
  int sync_fd = -1;         // child end of the sync socketpair
  int fifo_fd = -1;         // O_PATH fd of <state>/exec.fifo
  int console_socket = -1;  // -1: no terminal
};

// Never returns: execs the user's program, or reports the failure on `plan.sync_fd` (before
// start) or stderr (after) and _exits 1. When the seccomp profile uses SCMP_ACT_NOTIFY, the
// filter is installed and the privileges dropped before kReady, and the parent must answer
// kSeccompFd (ForwardSeccompListener) while it waits for kReady; see container_init.cc.
[[noreturn]] void RunContainerInit(InitPlan& plan);

}  // namespace moat::runtime
