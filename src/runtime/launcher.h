#pragma once

// The runtime's operations on containers: what the runc-compatible subcommands call.

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "cgroups/manager.h"
#include "oci/spec.h"
#include "runtime/state_store.h"

namespace moat::runtime {

struct Context {
  std::string root;  // --root
  bool systemd_cgroup = false;
  StateStore store() const { return StateStore(root); }
  std::string SeccompCacheDir() const { return root + "/.seccomp-cache"; }
};

struct CreateOptions {
  std::string id;
  std::string bundle;  // "" = current directory
  std::string pid_file;
  std::string console_socket;
  int preserve_fds = 0;
};

struct Created {
  pid_t pid = 0;
  UniqueFd pidfd;  // valid while the caller is the parent (run)
};

// Creates the container and leaves its process waiting for Start. On failure nothing is left:
// no state directory, no cgroup, no process.
Result<Created> Create(const Context& ctx, const CreateOptions& options);
// Lets a created container execute its program, then runs poststart hooks.
Result<void> Start(const Context& ctx, const std::string& id);

struct Loaded {
  ContainerState state;
  Status status = Status::kStopped;
};
Result<Loaded> LoadContainer(const Context& ctx, const std::string& id);
// A pidfd of the container's init; kConflict if it has exited or its pid was reused.
Result<UniqueFd> OpenInitPidfd(const ContainerState& state);
// False for a container created without a cgroup: rootless, with no limits in its config and
// no cgroup hierarchy the runtime may write (as runc does). Such a container has no pause,
// resume, ps, update or events --stats; `kill --all` signals its pid namespace instead.
bool HasCgroup(const ContainerState& state);
// Reopens the container's cgroup from the paths recorded in its state. kUnsupported when it
// has none (HasCgroup).
Result<std::unique_ptr<cgroups::Manager>> OpenCgroup(const ContainerState& state);

Result<void> Kill(const Context& ctx, const std::string& id, int signal, bool all);
// Removes a stopped (or created) container; `force` kills a running one first. Runs poststop
// hooks; removes the cgroup and state directory.
enum class Force { kNo, kYes };
Result<void> Delete(const Context& ctx, const std::string& id, Force force);
Result<void> Pause(const Context& ctx, const std::string& id);
Result<void> Resume(const Context& ctx, const std::string& id);
Result<std::vector<pid_t>> Processes(const Context& ctx, const std::string& id);
Result<void> Update(const Context& ctx, const std::string& id, const oci::Resources& resources);
// `events --stats` document for one container.
Result<std::string> StatsEvent(const Context& ctx, const std::string& id);

struct ExecOptions {
  std::string id;
  oci::Process process;
  std::string pid_file;
  std::string console_socket;
  bool detach = false;
  int preserve_fds = 0;
};
// Runs a process inside a running container: every namespace of the container joined, its
// cgroup, its seccomp profile. Returns the exit code (detach: 0 once started).
Result<int> Exec(const Context& ctx, const ExecOptions& options);

struct ExecStarted {
  pid_t pid = 0;
  UniqueFd pidfd;  // the caller is the process's parent and must reap it
};
// Exec without waiting (options.detach is ignored): returns once the process is about to
// execute its program. The process inherits the caller's fds 0-2. Leaves the caller's
// pid_for_children namespace set to the container's when the container has its own.
Result<ExecStarted> StartExec(const Context& ctx, const ExecOptions& options);

// Waits for the container's init (the caller is its parent) while forwarding signals to it;
// returns the exit code in the shell convention.
Result<int> WaitForwardingSignals(int pidfd);

}  // namespace moat::runtime
