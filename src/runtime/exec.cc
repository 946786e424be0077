// `moat-runtime exec`: a new process inside a running container.

#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/defer.h"
#include "base/sys/fs.h"
#include "base/sys/process.h"
#include "base/sys/socket.h"
#include "cgroups/manager.h"
#include "oci/names.h"
#include "oci/validate.h"
#include "runtime/launcher.h"
#include "runtime/process.h"
#include "runtime/seccomp_listener.h"
#include "runtime/state_store.h"
#include "runtime/sync_protocol.h"

namespace moat::runtime {

namespace {

// Rootless, joining a pid namespace takes CAP_SYS_ADMIN over both the namespace's user
// namespace and the caller's own (setns(2)), which the runtime, outside the container's user
// namespace, lacks. So the first child joins every namespace at once (the user namespace
// first, kernel-ordered, then the pid namespace with the privileges it gave), and clones the
// process that runs the program: the first process of the pid namespace it joined for its
// children. CLONE_PARENT makes that one the runtime's child, so the runtime reaps it and its
// pid cannot be reused before; the first child reports the pid (kChildPid) and exits. Root
// joins the pid namespace in the parent and needs none of this.
// Returns only in the process that goes on to run the program (then with the container's
// ids: root of its user namespace); the first child reports and exits here.
void RootlessExecHop(int container_pidfd, int join_flags, int sync_fd) {
  auto fail = [&](const Error& e) {
    SendSyncError(sync_fd, e);
    _exit(1);
  };
  if (auto r = sys::prctl(PR_SET_DUMPABLE, 0); !r) fail(r.error());
  if (auto r = ExpectSync(sync_fd, SyncType::kGo); !r) fail(r.error());
  if (auto r = sys::setns(container_pidfd, join_flags); !r)
    fail(std::move(r).Context("join the container's namespaces").error());
  if (auto r = sys::setresgid(0, 0, 0); !r) fail(r.error());
  if (auto r = sys::setresuid(0, 0, 0); !r) fail(r.error());
  sys::CloneArgs ca{};
  ca.flags = CLONE_PARENT;  // exit_signal: the kernel takes ours (SIGCHLD) for CLONE_PARENT
  auto pid = sys::clone3(ca, nullptr);
  if (!pid) fail(pid.error());
  if (*pid == 0) return;
  if (!SendSync(sync_fd, SyncType::kChildPid, *pid)) _exit(1);
  _exit(0);
}

Result<std::string> SetupExecChild(ProcessPlan& plan, int container_pidfd, int join_flags,
                                   int sync_fd, int console_socket) {
  MOAT_TRY(sys::prctl(PR_SET_DUMPABLE, 0));
  MOAT_TRY(ExpectSync(sync_fd, SyncType::kGo));
  if (join_flags) MOAT_TRY(std::move(sys::setns(container_pidfd, join_flags)).Context("join the container's namespaces"));
  if (join_flags & CLONE_NEWUSER) {
    MOAT_TRY(sys::setresgid(0, 0, 0));
    MOAT_TRY(sys::setresuid(0, 0, 0));
  }
  if (console_socket >= 0) {
    MOAT_TRY(SetupTerminalInChild(plan, console_socket, ConsoleMount::kNo));
    close(console_socket);
  }
  MOAT_TRY(PrepareProcessInChild(plan));
  return ResolveExecutable(plan);
}

}  // namespace

Result<ExecStarted> StartExec(const Context& ctx, const ExecOptions& o) {
  MOAT_ASSIGN_OR_RETURN(Loaded c, LoadContainer(ctx, o.id));
  if (c.status != Status::kRunning && c.status != Status::kCreated)
    return Fail(ErrorKind::kConflict, "cannot exec in container %s: it is %s", o.id.c_str(),
                StatusName(c.status));
  StateStore store = ctx.store();
  MOAT_ASSIGN_OR_RETURN(oci::Spec spec, store.LoadConfig(o.id));
  MOAT_TRY(oci::ValidateProcess(o.process, "process"));
  std::optional<oci::Seccomp> sc = spec.linux ? spec.linux->seccomp : std::nullopt;
  MOAT_ASSIGN_OR_RETURN(ProcessPlan plan,
                        PlanProcess(o.process, sc, ctx.SeccompCacheDir(), DetectLsms(), "process"));
  plan.preserve_fds = o.preserve_fds;
  if (plan.terminal && o.console_socket.empty())
    return Fail(ErrorKind::kInvalidArgument, "process.terminal is true but no --console-socket was given");

  MOAT_ASSIGN_OR_RETURN(UniqueFd target, OpenInitPidfd(c.state));

  int join = 0;
  for (const char* type : oci::kNamespaceTypes) {
    bool shared = false;
    for (const auto& s : c.state.shared_namespaces) shared |= s == type;
    if (!shared) join |= *oci::NamespaceFlag(type);
  }
  // Rootless into a container with its own user and pid namespaces: see RootlessExecHop.
  const bool hop = (join & CLONE_NEWUSER) && (join & CLONE_NEWPID) && geteuid() != 0;
  if ((join & CLONE_NEWPID) && !hop) {
    // Only changes the pid namespace of our future children.
    MOAT_TRY(std::move(sys::setns(target.get(), CLONE_NEWPID)).Context("join pid namespace"));
  }
  std::unique_ptr<cgroups::Manager> cgroup;  // none: rootless without a cgroup (launcher.h)
  if (HasCgroup(c.state)) {
    MOAT_ASSIGN_OR_RETURN(cgroup, OpenCgroup(c.state));
  }

  MOAT_ASSIGN_OR_RETURN(auto pair, sys::socketpair(SOCK_SEQPACKET));
  UniqueFd console;
  if (plan.terminal) {
    MOAT_ASSIGN_OR_RETURN(console, std::move(sys::ConnectUnix(o.console_socket))
                                       .Context("--console-socket"));
  }
  sys::CloneArgs ca{};
  ca.flags = CLONE_PIDFD;
  ca.exit_signal = SIGCHLD;
  UniqueFd cgroup_fd;
  if (cgroup && cgroup->version() == cgroups::Version::kV2) {
    MOAT_ASSIGN_OR_RETURN(cgroup_fd, cgroup->OpenForClone());
    ca.flags |= CLONE_INTO_CGROUP;
    ca.cgroup = static_cast<uint64_t>(cgroup_fd.get());
  }
  UniqueFd pidfd;
  MOAT_ASSIGN_OR_RETURN(pid_t pid, sys::clone3(ca, &pidfd));
  if (pid == 0) {
    pair.first.reset();
    int sync = pair.second.get();
    int join_here = join & ~CLONE_NEWPID;
    if (hop) {
      RootlessExecHop(target.get(), join, sync);
      join_here = 0;  // joined by the hop, ids included
    }
    auto path = SetupExecChild(plan, target.get(), join_here, sync,
                               console.valid() ? console.get() : -1);
    if (!path) {
      SendSyncError(sync, path.error());
      _exit(1);
    }
    // SCMP_ACT_NOTIFY: the filter goes on (and the privileges go) before kReady, while we
    // still wait on the sync socket to forward the listener; the rest runs under the filter.
    const bool notify = NeedsSeccompListener(plan);
    if (notify) {
      target.reset();
      if (auto r = FinalizeProcessInChild(plan, sync); !r) {
        SendSyncError(sync, r.error());
        _exit(1);
      }
    }
    if (!SendSync(sync, SyncType::kReady)) _exit(1);
    close(sync);
    target.reset();
    if (!notify) {
      if (auto r = FinalizeProcessInChild(plan); !r) {
        dprintf(STDERR_FILENO, "moat-runtime: exec: %s\n", r.error().message.c_str());
        _exit(1);
      }
    }
    Error e = ExecInChild(*path, plan);
    dprintf(STDERR_FILENO, "moat-runtime: exec: %s\n", e.message.c_str());
    _exit(127);
  }
  pair.second.reset();
  console.reset();
  Defer kill_child([&] {
    (void)sys::pidfd_send_signal(pidfd.get(), SIGKILL);
    (void)sys::waitid_pidfd(pidfd.get(), WEXITED);
  });
  if (cgroup && cgroup->version() == cgroups::Version::kV1) MOAT_TRY(cgroup->AddProcess(pid));
  MOAT_TRY(SendSync(pair.first.get(), SyncType::kGo));
  if (hop) {
    // The hop's child inherited the cgroup (v2: CLONE_INTO_CGROUP; v1: joined above).
    auto m = RecvSync(pair.first.get());
    (void)sys::waitid_pidfd(pidfd.get(), WEXITED);  // the hop exits either way
    if (!m) return Fail(std::move(m).error());
    if (m->type == SyncType::kError) return Fail(std::move(m->error));
    if (m->type != SyncType::kChildPid || m->pid <= 0)
      return Fail(ErrorKind::kInternal, "sync: unexpected message %u from the exec process",
                  static_cast<unsigned>(m->type));
    // Our child (CLONE_PARENT), not reaped yet: the pid still names it.
    pid = m->pid;
    MOAT_ASSIGN_OR_RETURN(pidfd, sys::pidfd_open(pid));
    MOAT_TRY(SendSync(pair.first.get(), SyncType::kGo));
  }
  while (true) {
    MOAT_ASSIGN_OR_RETURN(SyncMessage m, RecvSync(pair.first.get()));
    if (m.type == SyncType::kError) return Fail(std::move(m.error));
    if (m.type == SyncType::kReady) break;
    if (m.type != SyncType::kSeccompFd)
      return Fail(ErrorKind::kInternal, "sync: unexpected message %u from the exec process",
                  static_cast<unsigned>(m.type));
    // The state is the container's (runc sends the same for an exec'd process); pid is the
    // new process's.
    MOAT_TRY(ForwardSeccompListener(pair.first.get(), m, sc ? &*sc : nullptr, pidfd.get(), pid,
                                    StatusDocument(c.state, c.status)));
  }
  if (!o.pid_file.empty())
    MOAT_TRY(std::move(sys::WriteFileAtomic(o.pid_file, std::to_string(pid), 0644,
                                            sys::Durability::kUntilReboot))
                 .Context("--pid-file"));
  kill_child.Cancel();
  return ExecStarted{pid, std::move(pidfd)};
}

Result<int> Exec(const Context& ctx, const ExecOptions& o) {
  MOAT_ASSIGN_OR_RETURN(ExecStarted started, StartExec(ctx, o));
  if (o.detach) return 0;
  return WaitForwardingSignals(started.pidfd.get());
}

}  // namespace moat::runtime
