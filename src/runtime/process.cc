#include "runtime/process.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/ioprio.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "base/sys/fs.h"
#include "base/sys/linux_compat.h"
#include "base/sys/mount.h"
#include "base/sys/process.h"
#include "base/sys/socket.h"
#include "base/sys/spawn.h"
#include "oci/names.h"
#include "runtime/mounts.h"
#include "runtime/sync_protocol.h"

namespace moat::runtime {

LsmSupport DetectLsms() {
  LsmSupport s;
  auto aa = sys::ReadFile("/sys/module/apparmor/parameters/enabled");
  s.apparmor = aa && !aa->empty() && (*aa)[0] == 'Y';
  s.selinux = access("/sys/fs/selinux/enforce", F_OK) == 0;
  return s;
}

Result<ProcessPlan> PlanProcess(const oci::Process& p, const std::optional<oci::Seccomp>& sc,
                                const std::string& seccomp_cache_dir, const LsmSupport& lsms,
                                const std::string& field) {
  ProcessPlan plan;
  plan.args = p.args;
  plan.env = p.env;
  plan.cwd = p.cwd.empty() ? "/" : p.cwd;
  plan.uid = p.user.uid;
  plan.gid = p.user.gid;
  plan.additional_gids.assign(p.user.additional_gids.begin(), p.user.additional_gids.end());
  plan.umask = p.user.umask;
  plan.last_cap = LastCapability();
  MOAT_ASSIGN_OR_RETURN(plan.caps,
                        PlanCapabilities(p.capabilities, field + ".capabilities", plan.last_cap));
  for (size_t i = 0; i < p.rlimits.size(); ++i) {
    auto res = oci::RlimitFromName(p.rlimits[i].type);
    if (!res)
      return Fail(ErrorKind::kInvalidArgument, "%s.rlimits[%zu].type: unknown rlimit \"%s\"",
                  field.c_str(), i, p.rlimits[i].type.c_str());
    plan.rlimits.push_back({*res, {p.rlimits[i].soft, p.rlimits[i].hard}});
  }
  plan.no_new_privileges = p.no_new_privileges;
  if (sc) {
    MOAT_ASSIGN_OR_RETURN(auto prog, seccomp::CompileCached(*sc, seccomp_cache_dir));
    plan.seccomp = std::move(prog);
  }
  if (!p.apparmor_profile.empty() && !lsms.apparmor)
    return Fail(ErrorKind::kUnsupported,
                "%s.apparmorProfile: AppArmor is not enabled on this host, cannot apply "
                "profile \"%s\"",
                field.c_str(), p.apparmor_profile.c_str());
  if (!p.selinux_label.empty() && !lsms.selinux)
    return Fail(ErrorKind::kUnsupported,
                "%s.selinuxLabel: SELinux is not enabled on this host, cannot apply label \"%s\"",
                field.c_str(), p.selinux_label.c_str());
  plan.apparmor_profile = p.apparmor_profile;
  plan.selinux_label = p.selinux_label;
  plan.oom_score_adj = p.oom_score_adj;
  plan.scheduler = p.scheduler;
  plan.io_priority = p.io_priority;
  plan.terminal = p.terminal;
  plan.console_size = p.console_size;
  if (plan.args.empty())
    return Fail(ErrorKind::kInvalidArgument, "%s.args: must not be empty", field.c_str());
  return plan;
}

namespace {

std::string EnvValue(const std::vector<std::string>& env, std::string_view key) {
  for (const auto& e : env)
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=')
      return e.substr(key.size() + 1);
  return {};
}

}  // namespace

Result<std::string> ResolveExecutable(const ProcessPlan& plan) {
  const std::string& name = plan.args[0];
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) != 0)
      return Fail(Error::FromErrno(errno, "exec: \"" + name + "\""));
    return name;
  }
  std::string path = EnvValue(plan.env, "PATH");
  if (path.empty()) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  if (auto found = sys::FindOnPath(name, path)) return found;
  return Fail(ErrorKind::kNotFound, "exec: \"%s\": executable file not found in $PATH",
              name.c_str());
}

Result<void> WriteProcFile(const std::string& rel, std::string_view data) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd proc, sys::open("/proc", O_PATH | O_DIRECTORY));
  struct statfs st {};
  if (fstatfs(proc.get(), &st) != 0) return FailErrno("statfs /proc");
  if (st.f_type != PROC_SUPER_MAGIC)
    return Fail(ErrorKind::kPermissionDenied, "/proc is not procfs: refusing to write %s",
                rel.c_str());
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd, sys::openat2(proc.get(), rel, O_WRONLY, 0,
                                                  RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS));
  if (fstatfs(fd.get(), &st) != 0 || st.f_type != PROC_SUPER_MAGIC)
    return Fail(ErrorKind::kPermissionDenied, "/proc/%s is not on procfs", rel.c_str());
  ssize_t n;
  do n = write(fd.get(), data.data(), data.size());
  while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno("write /proc/%s", rel.c_str());
  return Ok();
}

Result<void> PrepareProcessInChild(const ProcessPlan& plan) {
  for (const auto& r : plan.rlimits) {
    if (prlimit(0, static_cast<__rlimit_resource>(r.resource), &r.value, nullptr) != 0)
      return FailErrno("setrlimit resource %d", r.resource);
  }
  if (plan.oom_score_adj)
    MOAT_TRY(WriteProcFile("self/oom_score_adj", std::to_string(*plan.oom_score_adj)));
  if (plan.personality && personality(*plan.personality) < 0) return FailErrno("personality");
  if (plan.scheduler) {
    struct SchedAttr {
      uint32_t size, sched_policy;
      uint64_t sched_flags;
      int32_t sched_nice;
      uint32_t sched_priority;
      uint64_t sched_runtime, sched_deadline, sched_period;
    } attr{};
    attr.size = sizeof attr;
    const auto& s = *plan.scheduler;
    constexpr std::pair<const char*, uint32_t> kPolicies[] = {
        {"SCHED_OTHER", 0}, {"SCHED_FIFO", 1}, {"SCHED_RR", 2},     {"SCHED_BATCH", 3},
        {"SCHED_ISO", 4},   {"SCHED_IDLE", 5}, {"SCHED_DEADLINE", 6}};
    bool known = false;
    for (auto [name, value] : kPolicies)
      if (s.policy == name) attr.sched_policy = value, known = true;
    if (!known)
      return Fail(ErrorKind::kInvalidArgument, "process.scheduler.policy: unknown \"%s\"",
                  s.policy.c_str());
    attr.sched_nice = s.nice;
    attr.sched_priority = static_cast<uint32_t>(s.priority);
    attr.sched_runtime = s.runtime;
    attr.sched_deadline = s.deadline;
    attr.sched_period = s.period;
    if (syscall(SYS_sched_setattr, 0, &attr, 0) != 0) return FailErrno("sched_setattr");
  }
  if (plan.io_priority) {
    int cls = plan.io_priority->io_class == "IOPRIO_CLASS_RT"   ? IOPRIO_CLASS_RT
              : plan.io_priority->io_class == "IOPRIO_CLASS_BE" ? IOPRIO_CLASS_BE
                                                                : IOPRIO_CLASS_IDLE;
    int value = (cls << 13) | plan.io_priority->priority;
    if (syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, value) != 0)
      return FailErrno("ioprio_set");
  }
  if (!plan.apparmor_profile.empty()) {
    auto r = WriteProcFile("self/attr/apparmor/exec", "exec " + plan.apparmor_profile);
    if (!r) r = WriteProcFile("self/attr/exec", "exec " + plan.apparmor_profile);
    MOAT_TRY(std::move(r).Context("apparmor profile %s", plan.apparmor_profile.c_str()));
  }
  if (!plan.selinux_label.empty())
    MOAT_TRY(std::move(WriteProcFile("self/attr/exec", plan.selinux_label))
                 .Context("selinux label %s", plan.selinux_label.c_str()));
  MOAT_TRY(std::move(sys::chdir(plan.cwd)).Context("process.cwd"));
  return Ok();
}

Result<void> SetupTerminalInChild(const ProcessPlan& plan, int console_socket,
                                  ConsoleMount mount) {
  int master_fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master_fd < 0) return FailErrno("open /dev/ptmx");
  UniqueFd master(master_fd);
  if (unlockpt(master.get()) != 0) return FailErrno("unlockpt");
  char name[128];
  if (ptsname_r(master.get(), name, sizeof name) != 0) return FailErrno("ptsname");
  MOAT_ASSIGN_OR_RETURN(UniqueFd slave, sys::open(name, O_RDWR | O_NOCTTY));
  if (plan.console_size) {
    winsize ws{};
    ws.ws_row = static_cast<unsigned short>(plan.console_size->height);
    ws.ws_col = static_cast<unsigned short>(plan.console_size->width);
    if (ioctl(master.get(), TIOCSWINSZ, &ws) != 0) return FailErrno("TIOCSWINSZ");
  }
  if (mount == ConsoleMount::kYes) {
    MOAT_ASSIGN_OR_RETURN(UniqueFd root, sys::open("/", O_PATH | O_DIRECTORY));
    MOAT_ASSIGN_OR_RETURN(UniqueFd console, MkdirAllInRoot(root.get(), "/dev/console", false));
    MOAT_TRY(std::move(sys::mount(name, FdPath(console.get()), "", MS_BIND, ""))
                 .Context("/dev/console"));
  }
  MOAT_TRY(std::move(sys::SendWithFds(console_socket, "/dev/ptmx", {master.get()}))
               .Context("send the pty master to the console socket"));
  master.reset();
  if (setsid() < 0 && errno != EPERM) return FailErrno("setsid");
  if (ioctl(slave.get(), TIOCSCTTY, 0) != 0) return FailErrno("TIOCSCTTY");
  for (int fd = 0; fd < 3; ++fd)
    if (dup2(slave.get(), fd) < 0) return FailErrno("dup2 pty");
  return Ok();
}

namespace {

// Installs the filter; with a listener, hands it to the runtime at once (kSeccompFd, then
// kSeccompDone once the listener has its copy), before any other syscall that the profile
// might notify: until the agent holds the fd, such a syscall would wait with nobody to answer.
Result<void> InstallSeccompInChild(const seccomp::Program& program, int sync_fd) {
  if (program.needs_listener && sync_fd < 0)
    return Fail(ErrorKind::kInternal, "seccomp: SCMP_ACT_NOTIFY needs the runtime's sync socket");
  MOAT_ASSIGN_OR_RETURN(UniqueFd listener, std::move(seccomp::Install(program)).Context("seccomp"));
  if (!listener) return Ok();
  MOAT_TRY(SendSync(sync_fd, SyncType::kSeccompFd, listener.get()));
  MOAT_TRY(ExpectSync(sync_fd, SyncType::kSeccompDone));
  return Ok();
}

}  // namespace

Result<void> FinalizeProcessInChild(const ProcessPlan& plan, int sync_fd) {
  if (plan.seccomp && !plan.no_new_privileges)
    MOAT_TRY(InstallSeccompInChild(*plan.seccomp, sync_fd));
  MOAT_TRY(DropBoundingSetInChild(plan.caps, plan.last_cap));
  MOAT_TRY(sys::prctl(PR_SET_KEEPCAPS, 1));
  if (plan.set_groups) MOAT_TRY(sys::setgroups(plan.additional_gids));
  MOAT_TRY(std::move(sys::setresgid(plan.gid, plan.gid, plan.gid)).Context("process.user.gid"));
  MOAT_TRY(std::move(sys::setresuid(plan.uid, plan.uid, plan.uid)).Context("process.user.uid"));
  MOAT_TRY(sys::prctl(PR_SET_KEEPCAPS, 0));
  MOAT_TRY(ApplyCapabilitiesInChild(plan.caps));
  if (plan.no_new_privileges) MOAT_TRY(sys::prctl(PR_SET_NO_NEW_PRIVS, 1));
  if (plan.seccomp && plan.no_new_privileges)
    MOAT_TRY(InstallSeccompInChild(*plan.seccomp, sync_fd));
  umask(plan.umask ? *plan.umask : 022);
  // No host fd may reach the container's program (CVE-2024-21626 class).
  MOAT_TRY(sys::close_range_cloexec(3 + static_cast<unsigned>(plan.preserve_fds)));
  return Ok();
}

Error ExecInChild(const std::string& path, const ProcessPlan& plan) {
  std::vector<char*> argv, envp;
  for (const auto& a : plan.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : plan.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  execve(path.c_str(), argv.data(), envp.data());
  return Error::FromErrno(errno, "exec " + path);
}

}  // namespace moat::runtime
