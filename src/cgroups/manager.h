#pragma once

// A container's cgroup, on cgroup v1 (one hierarchy per controller, also the hybrid layout) or
// v2 (one unified hierarchy), detected at run time. One implementation per file (v1.cc, v2.cc),
// chosen by MakeManager. Nothing here touches a hierarchy's root or any cgroup it did not create.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "oci/spec.h"

namespace moat::cgroups {

enum class Version { kV1, kV2 };

// Where the hierarchies are and where the calling process sits in them.
struct Layout {
  Version version = Version::kV2;
  // v2: the unified mount point ("/sys/fs/cgroup"). v1: a hybrid host's cgroup2 mount, if any
  // (informational; the v1 manager does not use it).
  std::string unified_root;
  // v1: controller name ("memory", "cpu", "cpuacct", "pids", ...) -> mount point of its
  // hierarchy. Co-mounted controllers ("cpu,cpuacct") appear once per controller name.
  std::map<std::string, std::string> v1_mounts;
  // The calling process's own cgroup per hierarchy: "" -> v2 path; controller -> v1 path.
  // Relative cgroupsPath values are resolved under these, as runc does. Paths are relative to
  // the hierarchy's mount point ("/" = the mount point itself), which differs from
  // /proc/self/cgroup when a cgroup namespace or a bind mount shows a sub-tree. A missing
  // entry means "/".
  std::map<std::string, std::string> self;
  // v2: the controllers Create() enables (when the parent offers them, see cgroup.controllers)
  // in cgroup.subtree_control of each ancestor, from the mount root down. Injectable so that a
  // test on a shared host hierarchy can leave the host's subtree_control alone.
  std::vector<std::string> v2_controllers = {"cpu",  "cpuset",  "io",  "memory",
                                             "pids", "hugetlb", "misc"};
};

// Reads /proc/self/mountinfo and /proc/self/cgroup from `proc_root` (injectable for tests;
// normally "/proc"). Pure cgroup2 at the mount root means v2; any v1 controller mount means v1.
// On a hybrid host (v1 controllers plus a cgroup2 mount) the result is kV1, with unified_root
// and self[""] also filled in. Named v1 hierarchies (name=systemd) are ignored. Errors:
// kUnsupported when no cgroup hierarchy is mounted; read errors pass through.
Result<Layout> DetectLayout(const std::string& proc_root = "/proc");

enum class FreezerState { kThawed, kFreezing, kFrozen };

struct Stats {
  // memory
  uint64_t memory_usage = 0;
  uint64_t memory_max_usage = 0;  // v1 max_usage_in_bytes; v2 memory.peak if present
  uint64_t memory_limit = 0;      // 0: unlimited
  uint64_t memory_failcnt = 0;
  uint64_t oom_kills = 0;  // v1 memory.oom_control oom_kill; v2 memory.events oom_kill
  uint64_t swap_usage = 0;
  std::map<std::string, uint64_t> memory_stat;  // memory.stat key/values
  // cpu
  uint64_t cpu_usage_ns = 0;
  uint64_t cpu_user_ns = 0;
  uint64_t cpu_system_ns = 0;
  std::vector<uint64_t> cpu_per_cpu_ns;  // v1 cpuacct.usage_percpu
  uint64_t cpu_nr_periods = 0;
  uint64_t cpu_nr_throttled = 0;
  uint64_t cpu_throttled_ns = 0;
  // pids
  uint64_t pids_current = 0;
  uint64_t pids_limit = 0;  // 0: unlimited
  // blkio/io: per device "maj:min" -> {"read_bytes", "write_bytes", "reads", "writes"}
  std::map<std::string, std::map<std::string, uint64_t>> io;
};

// A container's cgroup. Not thread-safe. Destruction never removes the cgroup: Destroy() does.
class Manager {
 public:
  virtual ~Manager() = default;
  virtual Version version() const = 0;

  // Creates the cgroup (and missing parents; v1: cpuset.cpus/mems copied down from the
  // parent so tasks can join; v2: Layout::v2_controllers enabled in the ancestors'
  // subtree_control, a refusal at the mount root being ignored). An existing cgroup is reused.
  // On failure the levels created in that hierarchy are removed again (v1: hierarchies done
  // before the failing one keep theirs; Destroy() removes them). kPermissionDenied/kUnavailable
  // from the kernel pass through.
  virtual Result<void> Create() = 0;

  // Writes the limits. Used at create and by `update`; unset fields are left alone (so are
  // devices when linux.resources.devices is empty). The whole request is planned and checked
  // before the first write (resources.h): kInvalidArgument for a bad value, kUnsupported for a
  // limit whose controller or file this kernel lacks. Kernel refusals name the cgroup file and
  // the value (`memory.limit_in_bytes: write "1k": Invalid argument`). v2 device rules become
  // an eBPF program (devices_bpf.h): kPermissionDenied without CAP_SYS_ADMIN.
  virtual Result<void> Apply(const oci::Resources& resources) = 0;

  // Moves `pid` into the cgroup (every v1 hierarchy).
  virtual Result<void> AddProcess(pid_t pid) = 0;

  // v2 only: an O_DIRECTORY fd of the cgroup for clone3(CLONE_INTO_CGROUP). v1: kUnsupported.
  virtual Result<UniqueFd> OpenForClone() = 0;

  // Returns once the cgroup is frozen (polls freezer.state / cgroup.events, at most 5 s; on
  // timeout it thaws again and fails with kUnavailable). kUnsupported without a freezer (v1
  // freezer not mounted, v2 before Linux 5.2).
  virtual Result<void> Freeze() = 0;
  virtual Result<void> Thaw() = 0;
  // kThawed when there is no freezer at all.
  virtual Result<FreezerState> GetFreezerState() = 0;

  // Every pid in the cgroup and its descendants.
  virtual Result<std::vector<pid_t>> Pids() = 0;
  // Signals every process in the cgroup. v2 SIGKILL: cgroup.kill (Linux 5.14+). Otherwise the
  // cgroup is frozen first so forks cannot escape the loop, then thawed again, except that a
  // cgroup that was already frozen stays frozen (for SIGKILL on v1 it is thawed, or the tasks
  // would not die). A freeze that times out is logged and the signals are sent anyway.
  virtual Result<void> SignalAll(int sig) = 0;

  // Reads the statistics files (stats.h); absent files leave their fields at zero.
  virtual Result<Stats> GetStats() = 0;

  // Removes the cgroup directories (leaf first; retries EBUSY briefly while processes exit).
  // A cgroup that is already gone is success.
  virtual Result<void> Destroy() = 0;

  // The absolute cgroup path inside the hierarchy ("/moat/abc"), as stored in state.json.
  // v1: the path in the memory hierarchy (else pids, else the first); a relative cgroupsPath
  // can resolve to different paths per hierarchy (the caller may sit in different cgroups),
  // so v1 state must be recorded with Paths().
  virtual std::string Path() const = 0;

  // Every hierarchy's absolute cgroup path: controller -> path (v1, one entry per controller,
  // co-mounted ones repeated), or "" -> path (v2). Feed it back to OpenManager to reopen.
  virtual std::map<std::string, std::string> Paths() const = 0;
};

// Resolves `cgroups_path` from config.json: absolute -> under each hierarchy's root; relative ->
// under the caller's own cgroup (Layout::self); empty -> relative "moat/<container_id>".
// Rejects ".." components and systemd "slice:prefix:name" syntax (kInvalidArgument).
Result<std::unique_ptr<Manager>> MakeManager(const Layout& layout, const std::string& cgroups_path,
                                             const std::string& container_id);

// Reopens the cgroup of an existing container from the absolute Path() recorded earlier (the
// same path in every hierarchy). A path that is not absolute, is the root or has ".." yields a
// manager whose every operation fails with kInvalidArgument.
std::unique_ptr<Manager> OpenManager(const Layout& layout, const std::string& absolute_path);

// Reopens from Paths() recorded earlier. v1: hierarchies without an entry use the "memory"
// entry (else any entry). v2: the "" entry. Invalid paths as above.
std::unique_ptr<Manager> OpenManager(const Layout& layout,
                                     const std::map<std::string, std::string>& paths);

}  // namespace moat::cgroups
