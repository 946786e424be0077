#include "runtime/launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "base/defer.h"
#include "base/log.h"
#include "base/sys/fs.h"
#include "base/sys/process.h"
#include "base/sys/socket.h"
#include "cgroups/cgroupfs.h"
#include "cgroups/manager.h"
#include "oci/names.h"
#include "oci/spec_json.h"
#include "oci/validate.h"
#include "runtime/container_init.h"
#include "runtime/hooks.h"
#include "runtime/idmap.h"
#include "runtime/rootfs.h"
#include "runtime/runtime_json.h"
#include "runtime/seccomp_listener.h"
#include "runtime/sync_protocol.h"
#include "runtime/user_ns.h"

namespace moat::runtime {

namespace {

std::string NowRfc3339() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  return StrFormat("%s.%09ldZ", buf, ts.tv_nsec);
}

Result<std::string> AbsolutePath(const std::string& path) {
  char* r = realpath(path.empty() ? "." : path.c_str(), nullptr);
  if (!r) return FailErrno("resolve %s", path.empty() ? "." : path.c_str());
  std::string out(r);
  free(r);
  return out;
}

// A rootless runtime may be unable to create the container's cgroup (a hierarchy it cannot
// write: cgroup v1, or v2 without delegation). As runc does, it then goes without one when
// the config sets no limit; with limits that would silently not apply, it fails. The check
// happens only after Create() failed, so root pays nothing for it.
// Not root of the initial user namespace: another user, or root in a user namespace of its
// own (`unshare -r`), which is just as rootless. Reads /proc: for failure paths only.
bool IsRootless() {
  if (geteuid() != 0) return true;
  auto map = sys::ReadFile("/proc/self/uid_map");
  if (!map) return false;
  auto words = StrSplit(std::string(TrimWhitespace(*map)), ' ');
  std::erase(words, "");
  return words != std::vector<std::string>{"0", "0", "4294967295"};
}

bool MayRunWithoutCgroup(const Error& create_error) {
  return create_error.kind == ErrorKind::kPermissionDenied && IsRootless();
}

std::string HookState(const ContainerState& s, Status status) { return StatusDocument(s, status); }

Result<void> WritePidFile(const std::string& path, pid_t pid) {
  if (path.empty()) return Ok();
  return sys::WriteFileAtomic(path, std::to_string(pid), 0644, sys::Durability::kUntilReboot);
}

// Fills the namespace part of `plan` and returns the namespaces the container shares with us.
Result<std::vector<std::string>> PlanNamespaces(const oci::Linux& linux, InitPlan* plan,
                                                UniqueFd* pid_ns_join) {
  std::vector<std::string> shared = {"user", "mount", "pid", "network", "ipc",
                                     "uts",  "cgroup", "time"};
  bool join_user = false;
  for (const auto& ns : linux.namespaces) join_user |= ns.type == "user" && !ns.path.empty();
  for (size_t i = 0; i < linux.namespaces.size(); ++i) {
    const auto& ns = linux.namespaces[i];
    auto flag = oci::NamespaceFlag(ns.type);
    if (!flag)
      return Fail(ErrorKind::kInvalidArgument, "linux.namespaces[%zu].type: unknown namespace \"%s\"",
                  i, ns.type.c_str());
    std::erase(shared, ns.type);
    if (ns.type == "user" && ns.path.empty()) plan->new_user_ns = true;
    if (ns.type == "mount") plan->new_mount_ns = true;
    if (!ns.path.empty()) {
      MOAT_ASSIGN_OR_RETURN(UniqueFd fd, std::move(sys::open(ns.path, O_RDONLY))
                                             .Context("linux.namespaces[%zu].path", i));
      if (*flag == CLONE_NEWPID) *pid_ns_join = std::move(fd);
      else plan->joins.push_back({*flag, std::move(fd)});
    } else if (join_user && *flag != CLONE_NEWPID && *flag != CLONE_NEWTIME) {
      // New namespaces must belong to the joined user namespace: create them after the join.
      plan->unshare_flags |= *flag;
    } else {
      plan->clone_flags |= static_cast<uint64_t>(*flag);
    }
  }
  return shared;
}

Result<void> ApplyTimeOffsets(const oci::Linux& linux, InitPlan* plan) {
  if (!(plan->clone_flags & CLONE_NEWTIME) || linux.time_offsets.empty()) return Ok();
  // Offsets can only be set before a process enters the namespace: create it for our
  // children, set them, and let the child inherit it.
  MOAT_TRY(sys::unshare(CLONE_NEWTIME));
  std::string text;
  for (const auto& [clock, off] : linux.time_offsets)
    text += StrFormat("%s %lld %u\n", clock.c_str(), static_cast<long long>(off.secs), off.nanosecs);
  MOAT_TRY(std::move(sys::WriteFile("/proc/self/timens_offsets", text)).Context("linux.timeOffsets"));
  plan->clone_flags &= ~static_cast<uint64_t>(CLONE_NEWTIME);
  return Ok();
}

// With no device rules in the config, a container may still use only the devices it was
// given: deny everything, then allow the default devices, /dev/ptmx and /dev/pts/*, and the
// config's linux.devices.
std::vector<oci::DeviceCgroupRule> DefaultDeviceRules(const std::vector<oci::Device>& devices) {
  std::vector<oci::DeviceCgroupRule> rules;
  oci::DeviceCgroupRule deny;
  deny.allow = false;
  deny.access = "rwm";
  rules.push_back(deny);
  auto allow = [&](const std::string& type, std::optional<int64_t> major,
                   std::optional<int64_t> minor) {
    oci::DeviceCgroupRule r;
    r.allow = true;
    r.type = type;
    r.major = major;
    r.minor = minor;
    r.access = "rwm";
    rules.push_back(r);
  };
  for (const auto& d : devices) {
    if (d.type == "p") continue;
    allow(d.type == "u" ? "c" : d.type, d.major, d.minor);
  }
  allow("c", 5, 2);               // /dev/ptmx
  allow("c", 136, std::nullopt);  // /dev/pts/*
  return rules;
}

// The kernel refuses a ping_group_range naming gids the user namespace does not map; the
// default profile's "0 2147483647" means "every group", so narrow it to the mapped ones.
std::string ClampToMappedGids(const std::string& range, const std::vector<oci::IdMapping>& gids) {
  auto parts = StrSplit(std::string(TrimWhitespace(range)), ' ');
  if (parts.size() != 2 || gids.empty()) return range;
  auto lo = ParseInt64(parts[0]), hi = ParseInt64(parts[1]);
  if (!lo || !hi) return range;
  int64_t mapped_lo = INT64_MAX, mapped_hi = -1;
  for (const auto& m : gids) {
    mapped_lo = std::min<int64_t>(mapped_lo, m.container_id);
    mapped_hi = std::max<int64_t>(mapped_hi, int64_t{m.container_id} + m.size - 1);
  }
  return StrFormat("%lld %lld", static_cast<long long>(std::max(*lo, mapped_lo)),
                   static_cast<long long>(std::min(*hi, mapped_hi)));
}

// `kill --all` of a container without a cgroup (rootless): its processes are those of its pid
// namespace. The init's pidfd pins the namespace's identity while the others are signalled.
Result<void> SignalPidNamespace(const ContainerState& state, int signal) {
  if (std::find(state.shared_namespaces.begin(), state.shared_namespaces.end(), "pid") !=
      state.shared_namespaces.end())
    return Fail(ErrorKind::kUnsupported,
                "kill --all: container %s has neither a cgroup nor a pid namespace of its own",
                state.id.c_str());
  MOAT_ASSIGN_OR_RETURN(UniqueFd init, OpenInitPidfd(state));
  MOAT_ASSIGN_OR_RETURN(std::string ns,
                        sys::readlinkat(AT_FDCWD, StrFormat("/proc/%d/ns/pid", state.pid)));
  // The init first: killing it (SIGKILL) kills the whole namespace (pid_namespaces(7)).
  MOAT_TRY(sys::pidfd_send_signal(init.get(), signal));
  if (signal == SIGKILL) return Ok();
  MOAT_ASSIGN_OR_RETURN(UniqueFd proc, sys::open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  MOAT_ASSIGN_OR_RETURN(auto entries,
                        cgroups::ListEntries(proc.get(), cgroups::EntryType::kDirectories));
  for (const auto& name : entries) {
    auto pid = ParseInt64(name);
    if (!pid || *pid == state.pid) continue;
    // The pidfd first, then the check: a pid reused after the check is not signalled.
    auto fd = sys::pidfd_open(static_cast<pid_t>(*pid));
    if (!fd) continue;
    auto other = sys::readlinkat(proc.get(), name + "/ns/pid");
    if (other && *other == ns) (void)sys::pidfd_send_signal(fd->get(), signal);
  }
  return Ok();
}

}  // namespace

bool HasCgroup(const ContainerState& state) {
  return !state.cgroup_path.empty() || !state.cgroup_paths.empty();
}

Result<Created> Create(const Context& ctx, const CreateOptions& o) {
  StateStore store = ctx.store();
  MOAT_TRY(ValidateId(o.id));
  if (ctx.systemd_cgroup)
    return Fail(ErrorKind::kUnsupported,
                "--systemd-cgroup: systemd is not running on this host (no /run/systemd/system); "
                "drop the flag to manage cgroups through cgroupfs");
  MOAT_LOG(kDebug, "create %s: begin", o.id.c_str());
  MOAT_ASSIGN_OR_RETURN(std::string bundle, AbsolutePath(o.bundle));
  // The bytes are kept: the container's frozen copy of its config is exactly what was given.
  MOAT_ASSIGN_OR_RETURN(std::string config_text, sys::ReadFile(bundle + "/config.json"));
  MOAT_ASSIGN_OR_RETURN(oci::Spec spec, oci::ParseSpec(config_text));
  MOAT_LOG(kDebug, "create %s: parsed", o.id.c_str());
  MOAT_TRY(oci::ValidateSpec(spec));
  MOAT_TRY(oci::RequireProcess(spec));
  oci::Linux linux = spec.linux.value_or(oci::Linux{});
  // Parsed and validated, but not implemented: refuse rather than ignore them.
  if (!linux.net_devices.empty())
    return Fail(ErrorKind::kUnsupported, "linux.netDevices: not supported by moat-runtime");
  if (linux.intel_rdt)
    return Fail(ErrorKind::kUnsupported, "linux.intelRdt: not supported by moat-runtime");
  if (linux.memory_policy)
    return Fail(ErrorKind::kUnsupported, "linux.memoryPolicy: not supported by moat-runtime");
  if (spec.process->exec_cpu_affinity)
    return Fail(ErrorKind::kUnsupported, "process.execCPUAffinity: not supported by moat-runtime");

  InitPlan plan;
  std::string rootfs = spec.root->path;
  if (rootfs.empty() || rootfs[0] != '/') rootfs = bundle + "/" + rootfs;
  MOAT_ASSIGN_OR_RETURN(plan.rootfs, std::move(AbsolutePath(rootfs)).Context("root.path"));
  plan.readonly_rootfs = spec.root->readonly;
  UniqueFd pid_ns_join;
  MOAT_ASSIGN_OR_RETURN(auto shared, PlanNamespaces(linux, &plan, &pid_ns_join));
  if (!plan.new_mount_ns)
    return Fail(ErrorKind::kInvalidArgument,
                "linux.namespaces: a mount namespace is required (Moat does not run a container "
                "in the host's mount namespace)");
  MOAT_ASSIGN_OR_RETURN(plan.rootfs_propagation, PropagationFlags(linux.rootfs_propagation));
  ContainerIdMaps container_maps;  // what "idmap" without mappings of its own uses
  if (plan.new_user_ns) container_maps = {linux.uid_mappings, linux.gid_mappings};
  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    MOAT_ASSIGN_OR_RETURN(MountOp op, PlanMount(spec.mounts[i], bundle, StrFormat("mounts[%zu]", i),
                                                container_maps));
    plan.dev_is_mounted |= op.destination == "/dev";
    plan.mounts.push_back(std::move(op));
  }
  // Id-mapped binds are made here, on the host: the init, in its own user namespace, may not.
  MOAT_TRY(PrepareIdmappedMountsFromParent(plan.mounts));
  plan.devices = PlanDevices(linux.devices);
  plan.masked_paths = linux.masked_paths;
  plan.readonly_paths = linux.readonly_paths;
  plan.hostname = spec.hostname;
  plan.domainname = spec.domainname;
  for (const auto& [k, v] : linux.sysctl) {
    std::string value = v;
    if (k == "net.ipv4.ping_group_range" && plan.new_user_ns)
      value = ClampToMappedGids(v, linux.gid_mappings);
    std::string key = k;
    for (char& c : key)
      if (c == '.') c = '/';
    plan.sysctl.emplace_back(key, value);
  }
  oci::Hooks hooks = spec.hooks.value_or(oci::Hooks{});
  plan.has_runtime_hooks = !hooks.prestart.empty() || !hooks.create_runtime.empty();
  plan.create_container_hooks = hooks.create_container;
  plan.start_container_hooks = hooks.start_container;
  MOAT_LOG(kDebug, "create %s: mounts planned", o.id.c_str());
  MOAT_ASSIGN_OR_RETURN(plan.process, PlanProcess(*spec.process, linux.seccomp,
                                                  ctx.SeccompCacheDir(), DetectLsms(), "process"));
  plan.process.preserve_fds = o.preserve_fds;
  IdMapPlan id_maps;
  if (plan.new_user_ns) id_maps = PlanIdMaps(linux);
  // Unprivileged, setgroups(2) works only where newgidmap left it allowed, which it does when
  // the mapping uses a subgid range (user_ns.h).
  plan.process.set_groups =
      !plan.new_user_ns || !id_maps.unprivileged || id_maps.gid == IdMapWriter::kHelper;
  // Unprivileged, the maps are written through /proc/PID/{uid_map,gid_map,setgroups} by this
  // process or by newuidmap/newgidmap (which also refuse a target whose /proc/PID the caller
  // does not own), and a non-dumpable process's /proc/PID files are root's (proc(5)): the init
  // hides itself only once the maps are written.
  plan.hide_after_id_maps = plan.new_user_ns && id_maps.unprivileged;
  if (plan.process.terminal && o.console_socket.empty())
    return Fail(ErrorKind::kInvalidArgument,
                "process.terminal is true but no --console-socket was given");

  MOAT_LOG(kDebug, "create %s: planned", o.id.c_str());
  // From here on, every step is undone if a later one fails.
  MOAT_TRY(store.CreateDir(o.id));
  Defer remove_dir([&] { (void)store.Remove(o.id); });

  MOAT_ASSIGN_OR_RETURN(cgroups::Layout layout, cgroups::DetectLayout());
  MOAT_ASSIGN_OR_RETURN(auto cgroup, cgroups::MakeManager(layout, linux.cgroups_path, o.id));
  if (layout.version == cgroups::Version::kV1 && (plan.clone_flags & CLONE_NEWCGROUP)) {
    plan.clone_flags &= ~static_cast<uint64_t>(CLONE_NEWCGROUP);
    plan.late_cgroup_ns = true;
  }
  for (const auto& m : plan.mounts) {
    if (m.type == "cgroup" && !m.bind) {
      MOAT_ASSIGN_OR_RETURN(std::string mountinfo, sys::ReadFile("/proc/self/mountinfo"));
      plan.cgroup_mount = PlanCgroupMount(mountinfo);
      if (layout.version == cgroups::Version::kV2)
        plan.cgroup_mount.v2_host_dir = layout.unified_root + cgroup->Path();
      break;
    }
  }
  oci::Resources resources = linux.resources.value_or(oci::Resources{});
  if (auto created = cgroup->Create(); !created) {
    if (!MayRunWithoutCgroup(created.error())) return Fail(std::move(created).error());
    if (resources != oci::Resources{})
      return Fail(ErrorKind::kPermissionDenied,
                  "linux.resources: a rootless container's limits need a cgroup it can write: %s",
                  created.error().message.c_str());
    // Levels made before the refusal (cgroups/manager.h: Create).
    MOAT_TRY(cgroup->Destroy());
    MOAT_LOG(kDebug, "create %s: no cgroup (rootless, no limits): %s", o.id.c_str(),
             created.error().message.c_str());
    cgroup.reset();
    // The container's cgroup namespace is then rooted at the runtime's own cgroup.
    if (!plan.cgroup_mount.v2_host_dir.empty()) {
      auto self = layout.self.find("");
      plan.cgroup_mount.v2_host_dir =
          layout.unified_root + (self == layout.self.end() ? "/" : self->second);
    }
  }
  Defer remove_cgroup([&] {
    if (!cgroup) return;
    (void)cgroup->SignalAll(SIGKILL);
    (void)cgroup->Destroy();
  });
  if (cgroup) {
    if (resources.devices.empty()) resources.devices = DefaultDeviceRules(plan.devices);
    auto applied = cgroup->Apply(resources);
    if (!applied && applied.error().kind == ErrorKind::kPermissionDenied &&
        !resources.devices.empty() && IsRootless()) {
      // Rootless in a cgroup it may write (a delegated cgroup v2 subtree): the limits apply,
      // but a device filter takes privileges on the host (BPF_PROG_LOAD; v1's devices.deny),
      // so, as runc does, the container goes without one. Its user namespace already bounds
      // device access to what the user may open on the host. Device rules are applied last:
      // the retry writes the same limits again.
      MOAT_LOG(kDebug, "create %s: no device filter (rootless): %s", o.id.c_str(),
               applied.error().message.c_str());
      resources.devices.clear();
      applied = cgroup->Apply(resources);
    }
    MOAT_TRY(std::move(applied).Context("linux.resources"));
  }

  MOAT_LOG(kDebug, "create %s: cgroup %s ready", o.id.c_str(),
           cgroup ? cgroup->Path().c_str() : "(none)");
  MOAT_ASSIGN_OR_RETURN(UniqueFd state_dir, sys::open(store.Dir(o.id), O_PATH | O_DIRECTORY));
  MOAT_TRY(sys::mkfifoat(state_dir.get(), "exec.fifo", 0622));
  if (fchmodat(state_dir.get(), "exec.fifo", 0622, 0) != 0) return FailErrno("chmod exec.fifo");
  MOAT_ASSIGN_OR_RETURN(UniqueFd fifo, sys::openat(state_dir.get(), "exec.fifo", O_PATH));
  MOAT_ASSIGN_OR_RETURN(auto pair, sys::socketpair(SOCK_SEQPACKET));
  UniqueFd console;
  if (plan.process.terminal) {
    MOAT_ASSIGN_OR_RETURN(console, std::move(sys::ConnectUnix(o.console_socket))
                                       .Context("--console-socket"));
  }

  ContainerState state;
  state.id = o.id;
  state.bundle = bundle;
  state.rootfs = plan.rootfs;
  state.created = NowRfc3339();
  if (cgroup) {
    state.cgroup_path = cgroup->Path();
    state.cgroup_paths = cgroup->Paths();
  }
  state.annotations = spec.annotations;
  state.shared_namespaces = shared;
  state.has_poststart_hooks = !hooks.poststart.empty();
  state.has_poststop_hooks = !hooks.poststop.empty();
  if (geteuid() != 0) {
    if (passwd* pw = getpwuid(geteuid())) state.owner = pw->pw_name;
  }
  plan.state_json_for_hooks = HookState(state, Status::kCreating);

  MOAT_TRY(ApplyTimeOffsets(linux, &plan));
  if (pid_ns_join) MOAT_TRY(std::move(sys::setns(pid_ns_join.get(), CLONE_NEWPID)).Context("join pid namespace"));

  sys::CloneArgs ca{};
  ca.flags = plan.clone_flags | CLONE_PIDFD;
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
    plan.sync_fd = pair.second.get();
    plan.fifo_fd = fifo.get();
    plan.console_socket = console.valid() ? console.get() : -1;
    RunContainerInit(plan);
  }
  pair.second.reset();
  console.reset();
  Defer kill_child([&] {
    (void)sys::pidfd_send_signal(pidfd.get(), SIGKILL);
    (void)sys::waitid_pidfd(pidfd.get(), WEXITED);
  });
  int sync = pair.first.get();
  MOAT_LOG(kDebug, "create %s: cloned pid %d", o.id.c_str(), pid);
  if (cgroup && cgroup->version() == cgroups::Version::kV1) MOAT_TRY(cgroup->AddProcess(pid));
  if (plan.new_user_ns) MOAT_TRY(WriteIdMapsFromParent(pid, linux, id_maps));
  MOAT_TRY(SendSync(sync, SyncType::kGo));
  state.pid = pid;
  while (true) {
    MOAT_ASSIGN_OR_RETURN(SyncMessage m, RecvSync(sync));
    if (m.type == SyncType::kError) return Fail(std::move(m.error));
    if (m.type == SyncType::kReady) break;
    if (m.type == SyncType::kRunHooks) {
      std::string st = HookState(state, Status::kCreating);
      MOAT_TRY(RunHooks(hooks.prestart, "prestart", st));
      MOAT_TRY(RunHooks(hooks.create_runtime, "createRuntime", st));
      MOAT_TRY(SendSync(sync, SyncType::kHooksDone));
    }
    if (m.type == SyncType::kSeccompFd) {
      // SCMP_ACT_NOTIFY: the init has installed its filter (container_init.cc); the agent
      // gets the listener now, during `create`, as in runc.
      MOAT_TRY(ForwardSeccompListener(sync, m, linux.seccomp ? &*linux.seccomp : nullptr,
                                      pidfd.get(), pid, HookState(state, Status::kCreating)));
      MOAT_LOG(kDebug, "create %s: seccomp listener fd sent to %s", o.id.c_str(),
               linux.seccomp->listener_path.c_str());
    }
  }
  MOAT_LOG(kDebug, "create %s: container process ready", o.id.c_str());
  MOAT_ASSIGN_OR_RETURN(state.pid_start_time, ProcessStartTime(pid));
  MOAT_TRY(store.SaveConfig(o.id, config_text));
  MOAT_LOG(kDebug, "create %s: config saved", o.id.c_str());
  MOAT_TRY(store.Save(state));
  MOAT_TRY(std::move(WritePidFile(o.pid_file, pid)).Context("--pid-file"));
  kill_child.Cancel();
  remove_cgroup.Cancel();
  remove_dir.Cancel();
  MOAT_LOG(kDebug, "create %s: state saved", o.id.c_str());
  return Created{pid, std::move(pidfd)};
}

Result<std::unique_ptr<cgroups::Manager>> OpenCgroup(const ContainerState& state) {
  if (!HasCgroup(state))
    return Fail(ErrorKind::kUnsupported,
                "container %s has no cgroup (created rootless without a writable cgroup "
                "hierarchy)",
                state.id.c_str());
  MOAT_ASSIGN_OR_RETURN(cgroups::Layout layout, cgroups::DetectLayout());
  if (!state.cgroup_paths.empty()) return cgroups::OpenManager(layout, state.cgroup_paths);
  return cgroups::OpenManager(layout, state.cgroup_path);
}

Result<UniqueFd> OpenInitPidfd(const ContainerState& state) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd pidfd, sys::pidfd_open(state.pid));
  // The pidfd pins the process: checking the start time after opening it rules out a pid that
  // was reused by another process.
  auto start = ProcessStartTime(state.pid);
  if (!start || *start != state.pid_start_time)
    return Fail(ErrorKind::kConflict, "container %s is not running", state.id.c_str());
  return pidfd;
}

Result<Loaded> LoadContainer(const Context& ctx, const std::string& id) {
  StateStore store = ctx.store();
  MOAT_ASSIGN_OR_RETURN(ContainerState state, store.Load(id));
  Loaded l;
  l.status = DeriveStatus(store, state, [&] {
    auto cg = OpenCgroup(state);
    if (!cg) return false;
    auto fs = (*cg)->GetFreezerState();
    return fs && *fs != cgroups::FreezerState::kThawed;
  });
  l.state = std::move(state);
  return l;
}

Result<void> Start(const Context& ctx, const std::string& id) {
  MOAT_ASSIGN_OR_RETURN(Loaded c, LoadContainer(ctx, id));
  if (c.status != Status::kCreated)
    return Fail(ErrorKind::kConflict, "cannot start container %s: it is %s, not created",
                id.c_str(), StatusName(c.status));
  StateStore store = ctx.store();
  std::string fifo_path = store.FifoPath(id);
  MOAT_ASSIGN_OR_RETURN(UniqueFd fifo, sys::open(fifo_path, O_RDONLY));
  char buf[8];
  ssize_t n;
  do n = read(fifo.get(), buf, sizeof buf);
  while (n < 0 && errno == EINTR);
  (void)unlink(fifo_path.c_str());
  if (n <= 0)
    return Fail(ErrorKind::kConflict, "cannot start container %s: its process has exited",
                id.c_str());
  // EOF next: the container's end of the fifo is close-on-exec, so the program has been
  // executed (or the process died) when it comes. poststart hooks must not run before.
  do n = read(fifo.get(), buf, sizeof buf);
  while (n > 0 || (n < 0 && errno == EINTR));
  if (!c.state.has_poststart_hooks) return Ok();
  MOAT_ASSIGN_OR_RETURN(oci::Spec spec, store.LoadConfig(id));
  if (spec.hooks && !spec.hooks->poststart.empty()) {
    auto r = RunHooks(spec.hooks->poststart, "poststart", HookState(c.state, Status::kRunning));
    if (!r) {
      (void)Kill(ctx, id, SIGKILL, true);
      return r;
    }
  }
  return Ok();
}

Result<void> Kill(const Context& ctx, const std::string& id, int signal, bool all) {
  MOAT_ASSIGN_OR_RETURN(Loaded c, LoadContainer(ctx, id));
  if (all) {
    if (HasCgroup(c.state)) {
      MOAT_ASSIGN_OR_RETURN(auto cg, OpenCgroup(c.state));
      return cg->SignalAll(signal);
    }
    if (c.status == Status::kStopped) return Ok();
    return SignalPidNamespace(c.state, signal);
  }
  if (c.status == Status::kStopped)
    return Fail(ErrorKind::kConflict, "container %s is not running", id.c_str());
  MOAT_ASSIGN_OR_RETURN(UniqueFd pidfd, OpenInitPidfd(c.state));
  return sys::pidfd_send_signal(pidfd.get(), signal);
}

Result<void> Delete(const Context& ctx, const std::string& id, Force force) {
  StateStore store = ctx.store();
  auto loaded = LoadContainer(ctx, id);
  if (!loaded) {
    if (force == Force::kYes && loaded.error().kind == ErrorKind::kNotFound) return Ok();
    return Fail(std::move(loaded).error());
  }
  Loaded& c = *loaded;
  if ((c.status == Status::kRunning || c.status == Status::kPaused) && force == Force::kNo)
    return Fail(ErrorKind::kConflict,
                "cannot delete container %s that is %s: stop it first or use --force", id.c_str(),
                StatusName(c.status));
  auto cg = OpenCgroup(c.state);
  if (c.status != Status::kStopped) {
    if (cg) {
      MOAT_TRY((*cg)->SignalAll(SIGKILL));
      if (c.status == Status::kPaused) (void)(*cg)->Thaw();
    } else if (auto init = OpenInitPidfd(c.state)) {
      // No cgroup (rootless, launcher.h): the init; with it, its pid namespace.
      (void)sys::pidfd_send_signal(init->get(), SIGKILL);
    }
    // Wait (bounded) for the init to be gone so that the cgroup can be removed.
    for (int i = 0; i < 500; ++i) {
      auto start = ProcessStartTime(c.state.pid);
      if (!start || *start != c.state.pid_start_time) break;
      usleep(2000);
    }
  }
  if (cg) {
    // Without a pid namespace of its own, the container's other processes outlive its init.
    if (c.status == Status::kStopped) {
      auto left = (*cg)->Pids();
      if (left && !left->empty()) (void)(*cg)->SignalAll(SIGKILL);
    }
    MOAT_TRY((*cg)->Destroy());
  }
  auto spec = c.state.has_poststop_hooks ? store.LoadConfig(id) : Result<oci::Spec>(oci::Spec{});
  if (spec && spec->hooks && !spec->hooks->poststop.empty()) {
    auto r = RunHooks(spec->hooks->poststop, "poststop", HookState(c.state, Status::kStopped));
    if (!r) MOAT_LOG(kWarning, "%s", r.error().message.c_str());
  }
  return store.Remove(id);
}

Result<void> Pause(const Context& ctx, const std::string& id) {
  MOAT_ASSIGN_OR_RETURN(Loaded c, LoadContainer(ctx, id));
  if (c.status != Status::kRunning && c.status != Status::kCreated)
    return Fail(ErrorKind::kConflict, "container %s is %s, not running", id.c_str(),
                StatusName(c.status));
  MOAT_ASSIGN_OR_RETURN(auto cg, OpenCgroup(c.state));
  return cg->Freeze();
}

Result<void> Resume(const Context& ctx, const std::string& id) {
  MOAT_ASSIGN_OR_RETURN(Loaded c, LoadContainer(ctx, id));
  if (c.status != Status::kPaused)
    return Fail(ErrorKind::kConflict, "container %s is %s, not paused", id.c_str(),
                StatusName(c.status));
  MOAT_ASSIGN_OR_RETURN(auto cg, OpenCgroup(c.state));
  return cg->Thaw();
}

Result<std::vector<pid_t>> Processes(const Context& ctx, const std::string& id) {
  MOAT_ASSIGN_OR_RETURN(Loaded c, LoadContainer(ctx, id));
  MOAT_ASSIGN_OR_RETURN(auto cg, OpenCgroup(c.state));
  return cg->Pids();
}

Result<void> Update(const Context& ctx, const std::string& id, const oci::Resources& resources) {
  MOAT_ASSIGN_OR_RETURN(Loaded c, LoadContainer(ctx, id));
  if (c.status == Status::kStopped)
    return Fail(ErrorKind::kConflict, "container %s is stopped", id.c_str());
  MOAT_ASSIGN_OR_RETURN(auto cg, OpenCgroup(c.state));
  return cg->Apply(resources);
}

Result<std::string> StatsEvent(const Context& ctx, const std::string& id) {
  MOAT_ASSIGN_OR_RETURN(Loaded c, LoadContainer(ctx, id));
  MOAT_ASSIGN_OR_RETURN(auto cg, OpenCgroup(c.state));
  MOAT_ASSIGN_OR_RETURN(cgroups::Stats stats, cg->GetStats());
  return StatsEventDocument(id, stats);
}

Result<int> WaitForwardingSignals(int pidfd) {
  sigset_t all;
  sigfillset(&all);
  sigdelset(&all, SIGCHLD);
  sigset_t old;
  sigprocmask(SIG_BLOCK, &all, &old);
  int sfd = signalfd(-1, &all, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return FailErrno("signalfd");
  UniqueFd sig(sfd);
  while (true) {
    pollfd fds[2] = {{pidfd, POLLIN, 0}, {sig.get(), POLLIN, 0}};
    int rc = poll(fds, 2, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return FailErrno("poll");
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si{};
      while (read(sig.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si))
        (void)sys::pidfd_send_signal(pidfd, static_cast<int>(si.ssi_signo));
    }
    if (fds[0].revents & POLLIN) break;
  }
  MOAT_ASSIGN_OR_RETURN(siginfo_t info, sys::waitid_pidfd(pidfd, WEXITED));
  sigprocmask(SIG_SETMASK, &old, nullptr);
  return sys::ExitCodeFromSiginfo(info);
}

}  // namespace moat::runtime
