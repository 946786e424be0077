#pragma once

// Internal to the core's container manager (containers*.cc).

#include <sys/types.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "daemon/core/containers.h"

namespace moat::daemon::core {

struct Containers::Container {
  std::mutex op_mu;  // serialises lifecycle operations (start, stop, remove ...) on this container
  // Everything below is guarded by Containers::mu_.
  std::string id, name;
  privsep::ContainerSpec spec;
  std::string image_id;
  std::vector<std::string> args;  // the process's argv as resolved at create
  int64_t created_nano = 0;
  std::string status = "created";  // created | running | paused | restarting | exited | dead
  int64_t exit_code = 0;
  bool oom_killed = false;
  std::string error;
  int64_t started_nano = 0, finished_nano = 0;
  int pid = 0;
  int restart_count = 0;
  bool manually_stopped = false;
  bool rootfs_mounted = false;
  // Not persisted:
  uint64_t exit_seq = 0;     // incremented at each exit
  bool removed = false;
  bool monitor_ready = false;  // a monitor exists and its attach socket listens
  int pending_attaches = 0;    // attach requests waiting for the monitor (attach before start)
  std::set<std::string> exec_ids;
};

struct Containers::ExecRecord {
  std::string id, container_id;
  privsep::ExecSpec spec;
  bool running = false, started = false;
  std::optional<int64_t> exit_code;
  int pid = 0;
};

// RFC 3339 with nanoseconds in UTC, as Docker writes times ("0001-01-01T00:00:00Z" for 0).
std::string FormatTime(int64_t nano);
// Parses what FormatTime writes (and the monitor's status.json); 0 on error.
int64_t ParseTime(const std::string& s);
// "Up 8 seconds", "Exited (0) 5 seconds ago" ... as docker ps shows them.
std::string HumanDuration(int64_t seconds);
// Runs a helper program (moat-runtime) with `input` on its stdin and stdout discarded, waits,
// and on failure returns its stderr (trimmed, without the "moat: " prefix) as a kInternal
// error. posix_spawn: safe in the multi-threaded core.
// `exec_path`, if given, is executed instead of argv[0] (argv[0] stays what the process shows).
Result<void> RunTool(const std::vector<std::string>& argv, const std::string& input = "",
                     const std::string& exec_path = "");
// 64 random hex characters.
std::string RandomId();
// The container's cgroup paths (hierarchy -> path inside it; "" for cgroup v2) as moat-runtime
// recorded them in its state.json (container_stats.cc). kNotFound if none is recorded.
Result<std::map<std::string, std::string>> CgroupPathsFromState(const std::string& state_path);
// "user[:group]" resolved with the passwd and group files under `root_fd` -> (uid, gid).
Result<std::pair<uint32_t, uint32_t>> ResolveUserInRoot(int root_fd, const std::string& user);
// A Docker-style random name ("brave_turing").
std::string RandomName();

}  // namespace moat::daemon::core
