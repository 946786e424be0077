#pragma once

// The container process's own attributes (args, env, user, capabilities, rlimits, seccomp,
// LSM label, terminal), planned in the parent and applied in the child just before execve.
// Shared by the container's init and by `exec`.

#include <sys/resource.h>

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "oci/spec.h"
#include "runtime/caps.h"
#include "seccomp/compiler.h"

namespace moat::runtime {

struct RlimitOp {
  int resource = 0;
  rlimit value{};
};

struct ProcessPlan {
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string cwd;
  uint32_t uid = 0, gid = 0;
  std::vector<gid_t> additional_gids;
  bool set_groups = true;  // false where setgroups(2) is denied (rootless user namespace)
  std::optional<uint32_t> umask;
  CapPlan caps;
  int last_cap = 40;
  std::vector<RlimitOp> rlimits;
  bool no_new_privileges = false;
  std::optional<seccomp::Program> seccomp;
  std::string apparmor_profile;
  std::string selinux_label;
  std::optional<int> oom_score_adj;
  std::optional<unsigned long> personality;
  std::optional<oci::Scheduler> scheduler;
  std::optional<oci::IoPriority> io_priority;
  bool terminal = false;
  std::optional<oci::ConsoleSize> console_size;
  int preserve_fds = 0;  // fds 3 .. 3+preserve_fds-1 stay open across exec
};

struct LsmSupport {
  bool apparmor = false;
  bool selinux = false;
};
LsmSupport DetectLsms();

// Checks and resolves everything that can fail before clone: names, the LSM the config asks
// for (a clear error where the host lacks it), and compiles seccomp (cached in `cache_dir`).
Result<ProcessPlan> PlanProcess(const oci::Process& process, const std::optional<oci::Seccomp>& sc,
                                const std::string& seccomp_cache_dir, const LsmSupport& lsms,
                                const std::string& field);

// Child: PATH lookup of args[0] with the container's env, in the current root.
Result<std::string> ResolveExecutable(const ProcessPlan& plan);

// Child, before the user switch: rlimits, oom_score_adj, personality, scheduler, I/O priority,
// LSM exec labels, cwd. Writes to /proc go only through a verified procfs.
Result<void> PrepareProcessInChild(const ProcessPlan& plan);

// Child: a pty from the container's devpts; the master goes to `console_socket` (remains
// owned by the caller), the slave becomes stdin/out/err and the controlling terminal, and is
// bind-mounted on /dev/console when `mount_console`.
enum class ConsoleMount { kNo, kYes };
Result<void> SetupTerminalInChild(const ProcessPlan& plan, int console_socket, ConsoleMount mount);

// Child, last steps: seccomp (before the capability drop when no_new_privs is off, as it then
// needs CAP_SYS_ADMIN), bounding set, groups/gid/uid, capabilities, no_new_privs, seccomp, umask,
// every fd >= 3 (but preserved ones) marked close-on-exec.
// When the profile uses SCMP_ACT_NOTIFY (NeedsSeccompListener), `sync_fd` (the child's end of
// the sync socket, remains owned by the caller) is required: right after installing the filter
// the child sends kSeccompFd with the listener's fd number and waits for kSeccompDone (the
// parent's side is ForwardSeccompListener in seccomp_listener.h), then closes its listener fd.
// The steps after the install run under the filter: a profile that notifies one of them makes
// it wait for the agent. Without a listener `sync_fd` is unused (-1 is fine).
Result<void> FinalizeProcessInChild(const ProcessPlan& plan, int sync_fd = -1);

// True when the process's seccomp profile needs a listener: the caller must then run
// FinalizeProcessInChild while the runtime still serves the sync socket.
inline bool NeedsSeccompListener(const ProcessPlan& plan) {
  return plan.seccomp && plan.seccomp->needs_listener;
}

// execve; returns only on failure.
Error ExecInChild(const std::string& path, const ProcessPlan& plan);

// Writes `data` to /proc/<rel> after checking that /proc is procfs.
Result<void> WriteProcFile(const std::string& rel, std::string_view data);

}  // namespace moat::runtime
