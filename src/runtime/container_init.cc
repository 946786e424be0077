// The container's init, from clone3 to execve, as one checklist. The order is the security
// argument: namespaces before mounts, every mount before pivot_root, /proc verified before
// it is written, the privileged steps before the capability drop, seccomp last but one.
//
// A seccomp profile with SCMP_ACT_NOTIFY changes one thing: the listener fd must reach the
// profile's listenerPath during `create`, while the runtime is still there to send it. So
// FinalizeProcessInChild (seccomp, privilege drop, seccomp: its own order is unchanged, and it
// hands the fd over through the sync socket right after the install) runs before kReady instead
// of after the exec fifo, as runc does it. Consequences, shared with runc: the rest of the init
// runs under the filter and with the process's final credentials: sending kReady, opening and
// writing the exec fifo, and the startContainer hooks (which then run as process.user, with
// its capabilities and no_new_privs). A notified syscall among them waits for the agent's
// answer; `start` then waits with it. Without SCMP_ACT_NOTIFY the order is as below.

#include "runtime/container_init.h"

#include <sys/mount.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "base/sys/fs.h"
#include "base/sys/mount.h"
#include "base/sys/process.h"
#include "runtime/hooks.h"
#include "runtime/rootfs.h"
#include "runtime/sync_protocol.h"

namespace moat::runtime {

namespace {

// Until execve the process runs the runtime's code: keep /proc/<pid>/exe (the host binary)
// and its memory away from anything else in the container (CVE-2019-5736 class).
Result<void> HideRuntime() { return sys::prctl(PR_SET_DUMPABLE, 0); }

Result<void> JoinNamespaces(InitPlan& plan) {
  // A joined user namespace comes first: the others are then joined with its privileges.
  for (auto& j : plan.joins)
    if (j.flag == CLONE_NEWUSER) MOAT_TRY(sys::setns(j.fd.get(), j.flag));
  for (auto& j : plan.joins)
    if (j.flag != CLONE_NEWUSER) MOAT_TRY(sys::setns(j.fd.get(), j.flag));
  plan.joins.clear();
  if (plan.unshare_flags) MOAT_TRY(sys::unshare(plan.unshare_flags));
  if (plan.late_cgroup_ns) MOAT_TRY(sys::unshare(CLONE_NEWCGROUP));
  return Ok();
}

Result<void> SetupRootfs(InitPlan& plan) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd root, PrepareRootInChild(plan.rootfs, plan.rootfs_propagation));
  for (size_t i = 0; i < plan.mounts.size(); ++i) {
    const MountOp& op = plan.mounts[i];
    auto r = op.type == "cgroup" && !op.bind
                 ? MountCgroupInChild(root.get(), op, plan.cgroup_mount)
                 : ApplyMount(root.get(), op);
    MOAT_TRY(std::move(r).Context("mounts[%zu]", i));
  }
  MOAT_TRY(CreateDevicesInChild(root.get(), plan.devices,
                                plan.new_user_ns ? DeviceMode::kBindFromHost : DeviceMode::kMknod));
  MOAT_TRY(CreateDevSymlinksInChild(root.get()));
  if (plan.has_runtime_hooks) {
    MOAT_TRY(SendSync(plan.sync_fd, SyncType::kRunHooks));
    MOAT_TRY(ExpectSync(plan.sync_fd, SyncType::kHooksDone));
  }
  MOAT_TRY(RunHooks(plan.create_container_hooks, "createContainer", plan.state_json_for_hooks));
  MOAT_TRY(PivotRootInChild(root.get()));
  root.reset();
  // sysctls go through /proc/sys before it becomes read-only below.
  for (const auto& [key, value] : plan.sysctl)
    MOAT_TRY(std::move(WriteProcFile("sys/" + key, value)).Context("linux.sysctl"));
  {
    // The container's own /dev/null (created above): a bind source must be a mount of this
    // namespace, which the host's is no longer after the pivot.
    MOAT_ASSIGN_OR_RETURN(UniqueFd devnull, sys::open("/dev/null", O_PATH));
    MOAT_TRY(MaskPathsInChild(plan.masked_paths, devnull.get()));
  }
  MOAT_TRY(ReadonlyPathsInChild(plan.readonly_paths));
  if (plan.readonly_rootfs) MOAT_TRY(MakeRootReadonlyInChild());
  return Ok();
}

Result<std::string> Setup(InitPlan& plan) {
  // hide_after_id_maps (rootless, newuidmap/newgidmap: see InitPlan): until kGo no process of
  // the container exists to look at this one (its namespaces hold nothing else yet); only the
  // user's own host processes could, and they can already do anything this one can.
  if (!plan.hide_after_id_maps) MOAT_TRY(HideRuntime());
  MOAT_TRY(ExpectSync(plan.sync_fd, SyncType::kGo));
  if (plan.hide_after_id_maps) MOAT_TRY(HideRuntime());
  if (plan.new_user_ns) {
    // The parent has written the id maps: become the namespace's root.
    MOAT_TRY(sys::setresgid(0, 0, 0));
    MOAT_TRY(sys::setresuid(0, 0, 0));
  }
  MOAT_TRY(JoinNamespaces(plan));
  if (plan.new_mount_ns) MOAT_TRY(SetupRootfs(plan));
  else MOAT_TRY(sys::chdir(plan.rootfs));
  if (!plan.hostname.empty()) MOAT_TRY(sys::sethostname(plan.hostname));
  if (!plan.domainname.empty()) MOAT_TRY(sys::setdomainname(plan.domainname));
  if (plan.console_socket >= 0) {
    MOAT_TRY(SetupTerminalInChild(plan.process, plan.console_socket,
                                  plan.new_mount_ns ? ConsoleMount::kYes : ConsoleMount::kNo));
    close(plan.console_socket);
    plan.console_socket = -1;
  } else if (setsid() < 0) {
    return FailErrno("setsid");
  }
  MOAT_TRY(PrepareProcessInChild(plan.process));
  // Resolved now so that a missing program fails `create`, not the container after `start`.
  return ResolveExecutable(plan.process);
}

[[noreturn]] void Die(const Error& e) {
  dprintf(STDERR_FILENO, "moat-runtime: container init: %s\n", e.message.c_str());
  _exit(1);
}

}  // namespace

void RunContainerInit(InitPlan& plan) {
  auto path = Setup(plan);
  if (!path) {
    SendSyncError(plan.sync_fd, path.error());
    _exit(1);
  }
  const bool notify = NeedsSeccompListener(plan.process);
  if (notify) {
    if (auto r = FinalizeProcessInChild(plan.process, plan.sync_fd); !r) {
      SendSyncError(plan.sync_fd, r.error());
      _exit(1);
    }
  }
  if (auto r = SendSync(plan.sync_fd, SyncType::kReady); !r) _exit(1);
  close(plan.sync_fd);
  // Block until `start` opens the fifo for reading. Through /proc/self/fd: the fifo's
  // directory is outside the new root.
  int fifo = open(("/proc/self/fd/" + std::to_string(plan.fifo_fd)).c_str(), O_WRONLY | O_CLOEXEC);
  if (fifo < 0) Die(Error::FromErrno(errno, "open exec fifo"));
  close(plan.fifo_fd);
  // `start` waits for the byte, then for EOF on the fifo, and only then runs poststart hooks,
  // which the runtime-spec orders after the startContainer hooks and after the program is
  // executed: the hooks run before the write, and the fifo stays open, close-on-exec, so EOF
  // comes with execve (or with this process's death).
  if (auto r = RunHooks(plan.start_container_hooks, "startContainer", plan.state_json_for_hooks);
      !r)
    Die(r.error());
  if (write(fifo, "0", 1) != 1) Die(Error::FromErrno(errno, "write exec fifo"));
  if (!notify) {
    if (auto r = FinalizeProcessInChild(plan.process); !r) Die(r.error());
  }
  Die(ExecInChild(*path, plan.process));
}

}  // namespace moat::runtime
