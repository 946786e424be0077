#pragma once

// cgroupfs helpers shared by the v1 and v2 managers (internal to moat_cgroups). Paths are
// normalised cgroup paths ("/a/b", never "/" alone, no "." or ".." components) relative to a
// hierarchy's mount point. fd parameters remain owned by the caller. None of these keep state
// (thread-compatible); the tree may change underneath, which each caller tolerates.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "cgroups/resources.h"

namespace moat::cgroups {

using Clock = std::chrono::steady_clock;

// Splits a normalised path into its components ("/a/b" -> {"a", "b"}).
std::vector<std::string> PathComponents(const std::string& path);
// Joins a normalised base path (may be "/") and a relative path.
std::string JoinCgroupPath(const std::string& base, const std::string& rel);

// Opens `mount` + `path` as an O_DIRECTORY fd, one component at a time with O_NOFOLLOW.
// kNotFound when a component is missing.
Result<UniqueFd> OpenCgroupDir(const std::string& mount, const std::string& path);

// Writes `value` to `dirfd`/`file` in one write(2). The error names both:
// `memory.max: write "1k": Invalid argument` (and `<file>: open: ...` when it cannot be opened).
Result<void> WriteCgroupFile(int dirfd, const std::string& file, const std::string& value);

// Reads `dirfd`/`file`; nullopt when it does not exist (ENOENT).
Result<std::optional<std::string>> ReadOptionalFile(int dirfd, const std::string& file);

enum class EntryType { kFiles, kDirectories };
// The names of the regular files or of the subdirectories of `dirfd` (without "." and "..").
Result<std::vector<std::string>> ListEntries(int dirfd, EntryType type);

// The pids in cgroup.procs of `dirfd` and of all its descendant cgroups, appended to `out`.
Result<void> CollectPids(int dirfd, std::vector<pid_t>* out);

// Creates `path` under `mount` level by level (existing levels are reused). Calls
// `before_mkdir(parent_fd, parent_path, is_mount_root)` before each mkdir (v2 enables
// controllers there) and `after_level(fd, parent_fd)` after each level exists (v1 copies cpuset
// values). fds passed to the callbacks remain owned by CreateCgroupPath. On failure, removes
// the levels this call created, deepest first.
using BeforeMkdirFn =
    std::function<Result<void>(int parent_fd, const std::string& parent_path, bool is_mount_root)>;
using AfterLevelFn = std::function<Result<void>(int fd, int parent_fd)>;
Result<void> CreateCgroupPath(const std::string& mount, const std::string& path,
                              const BeforeMkdirFn& before_mkdir, const AfterLevelFn& after_level);

// Removes the cgroup `path` under `mount` and every cgroup below it, deepest first. rmdir's
// EBUSY (processes still exiting) is retried with short sleeps until `deadline`. A missing
// cgroup is success. Never removes anything above `path`.
Result<void> RemoveCgroupTree(const std::string& mount, const std::string& path,
                              Clock::time_point deadline);

// Sleeps a little longer on each call of a polling loop: 1 ms doubling up to 16 ms.
void PollSleep(int attempt);

// Reads the listed files of one directory into `out` (file -> contents with surrounding
// whitespace trimmed), skipping absent ones.
Result<void> ReadFilesInto(int dirfd, const std::vector<std::string>& files,
                           std::map<std::string, std::string>* out);

}  // namespace moat::cgroups
