#pragma once

// The runtime's record of a container: <root>/<id>/state.json (written atomically, not fsynced:
// like the container itself it does not outlive the machine), the frozen
// copy of config.json taken at create (later edits of the bundle must not affect the container),
// and the exec fifo that holds the container process between create and start.

#include <sys/stat.h>
#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "base/result.h"
#include "oci/spec.h"

namespace moat::runtime {

enum class Status { kCreating, kCreated, kRunning, kPaused, kStopped };
const char* StatusName(Status s);

struct ContainerState {
  std::string id;
  pid_t pid = 0;
  // Field 22 of /proc/<pid>/stat when the container was created: tells a reused pid apart.
  uint64_t pid_start_time = 0;
  std::string bundle;
  std::string rootfs;
  std::string created;  // RFC 3339, UTC
  std::string owner;    // user name of the creator ("" for root, like runc)
  std::string cgroup_path;  // absolute path inside the hierarchies (memory's on v1)
  // Per hierarchy ("" on v2): on v1 the runtime's own cgroups, and so relative paths, can
  // differ between controllers and between invocations; this is what reopens the cgroup.
  std::map<std::string, std::string> cgroup_paths;
  std::map<std::string, std::string> annotations;
  // Whether config.json has poststart/poststop hooks: start and delete then parse the frozen
  // config.json; without hooks they skip that parse (the start path stays lean).
  bool has_poststart_hooks = false;
  bool has_poststop_hooks = false;
  // Namespaces the container shares with the host (not created): exec must not setns into them.
  std::vector<std::string> shared_namespaces;
};

// Serialisation (state_json.cc, the runtime's only JSON-library user).
std::string StateToJson(const ContainerState& state);
Result<ContainerState> StateFromJson(std::string_view json);
// The document `moat-runtime state` prints: runc's fields plus annotations.
std::string StatusDocument(const ContainerState& state, Status status);
// `list --format json`: an array of StatusDocument objects.
std::string ListDocument(const std::vector<std::pair<ContainerState, Status>>& containers);

// A container id as runc accepts it: [A-Za-z0-9_+.-]+, not "." or "..", not starting with '.'
// (Moat keeps dot-names in the root for itself), at most 1024 bytes.
Result<void> ValidateId(const std::string& id);

// Whether a user `euid` may keep container state in the directory `st` describes: root may use
// any; anyone else only a directory of their own that no one else can write (the default for
// them, /tmp/moat-runtime-<uid> without XDG_RUNTIME_DIR, is a name another user could take
// first). kPermissionDenied naming `path` and what is wrong. Pure.
Result<void> CheckStateRootOwner(const std::string& path, const struct stat& st, uid_t euid);

class StateStore {
 public:
  explicit StateStore(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }
  std::string Dir(const std::string& id) const { return root_ + "/" + id; }
  std::string FifoPath(const std::string& id) const { return Dir(id) + "/exec.fifo"; }

  // Creates <root>/<id> (mode 0711); kAlreadyExists if a container by that id exists. Creates
  // the root (0700) if missing, and refuses one CheckStateRootOwner refuses.
  Result<void> CreateDir(const std::string& id);
  Result<void> Save(const ContainerState& state);
  // Stores the container's config.json as given (already parsed and validated by the caller).
  Result<void> SaveConfig(const std::string& id, std::string_view config_json);
  // kNotFound "container <id> does not exist".
  Result<ContainerState> Load(const std::string& id) const;
  Result<oci::Spec> LoadConfig(const std::string& id) const;
  Result<std::vector<std::string>> List() const;
  // Removes <root>/<id> and everything in it. Missing is success.
  Result<void> Remove(const std::string& id);

 private:
  // <root>/<id>/<name>; kNotFound "container <id> does not exist" when it is missing.
  Result<std::string> ReadContainerFile(const std::string& id, const char* name) const;
  std::string root_;
};

// The start time of `pid` from /proc/<pid>/stat, or kNotFound when it no longer exists.
// A zombie counts as gone (reports kNotFound).
Result<uint64_t> ProcessStartTime(pid_t pid);

// Derives the status from the recorded pid, the exec fifo and the cgroup's freezer.
// `frozen` is queried lazily: only when the process is alive and started.
template <typename FrozenFn>
Status DeriveStatus(const StateStore& store, const ContainerState& state, FrozenFn frozen);

}  // namespace moat::runtime

#include "runtime/state_store_inl.h"
