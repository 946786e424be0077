#pragma once

// The core's container manager: records under the data root, one monitor per started container
// (moat-runtime in monitor mode, which outlives moatd), overlay root filesystems, waits, logs,
// attach and exec. Thread-safe: every public method may be called from any request thread.
//
// Layout:
//   <data_root>/containers/<id>/container.json   the record (atomic writes)
//   <data_root>/containers/<id>/<id>-json.log    json-file log (written by the monitor)
//   <data_root>/containers/<id>/{upper,work}     the overlay's writable layer
//   <data_root>/containers/<id>/{hosts,hostname,resolv.conf}
//   <exec_root>/containers/<id>/                 the monitor's dir (ctl.sock, attach.sock,
//                                                status.json) and bundle/{config.json,rootfs}
//   <exec_root>/runtime/                         moat-runtime's --root

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/common/json.h"
#include "daemon/core/events.h"
#include "daemon/core/networks.h"
#include "daemon/privsep/commands.h"
#include "image/store.h"

namespace moat::daemon::core {

struct Paths {
  std::string data_root = "/var/lib/moat";
  std::string exec_root = "/run/moat";
  std::string runtime_binary;  // moat-runtime
  // What monitors are executed through: "/proc/self/fd/N" of a read-only detached mount of
  // runtime_binary held by the core (runtime/exe_seal.h: then the monitor need not re-execute
  // itself to be protected), or empty: runtime_binary itself.
  std::string runtime_exec;
  std::string cgroup_parent = "moat";  // relative: under moatd's own cgroup
  int64_t log_max_size = 0;
  int log_max_files = 1;
};

struct LogOptions {
  bool follow = false, stdout_ = true, stderr_ = true, timestamps = false;
  int64_t since_nano = 0, until_nano = 0;
  int64_t tail = -1;  // -1 = all
};

struct AttachOptions {
  bool stdin_ = false, stdout_ = true, stderr_ = true;
  bool stream = true, logs = false;
};

struct StreamResult {
  UniqueFd fd;
  bool tty = false;
};

class Containers {
 public:
  Containers(Paths paths, image::Store* store, Events* events, Json default_spec,
             std::string default_seccomp, Networks* networks = nullptr);
  ~Containers();

  // Loads the records and reconciles them with reality: monitors still alive are re-adopted;
  // containers whose monitor is gone get the exit code it recorded (or 255).
  Result<void> Restore();

  Result<Json> Create(const privsep::ContainerSpec& spec);  // {"Id":..,"Warnings":[]}
  // false: it was already running (304).
  Result<bool> Start(const std::string& ref);
  // false: it was not running (304). timeout < 0: the container's own (default 10 s).
  Result<bool> Stop(const std::string& ref, int timeout);
  Result<void> Restart(const std::string& ref, int timeout);
  Result<void> Kill(const std::string& ref, int signal);
  Result<void> Remove(const std::string& ref, bool force);
  Result<void> Pause(const std::string& ref);
  Result<void> Unpause(const std::string& ref);
  Result<void> Rename(const std::string& ref, const std::string& new_name);
  Result<Json> Inspect(const std::string& ref);
  Result<Json> List(bool all, int64_t limit, const Json& filters);
  // Blocks until `condition` (not-running | next-exit | removed) holds; {"StatusCode":N,
  // "Error":null}. `client_fd` (remains owned by the caller; -1: none) is the API client's
  // socket: once it hangs up, the wait ends with kUnavailable within about a second, so that
  // clients that leave do not each keep a core thread until the container exits (dockerd
  // cancels the same way: end of file on the connection).
  Result<Json> Wait(const std::string& ref, const std::string& condition, int client_fd = -1);
  Result<StreamResult> Logs(const std::string& ref, const LogOptions& options);
  Result<StreamResult> Attach(const std::string& ref, const AttachOptions& options);
  Result<void> Resize(const std::string& ref, int height, int width);
  Result<Json> Top(const std::string& ref, const std::string& ps_args);
  Result<Json> Prune();

  Result<Json> ExecCreate(const std::string& ref, const privsep::ExecSpec& spec);
  Result<StreamResult> ExecStart(const std::string& exec_id, bool detach);
  Result<Json> ExecInspect(const std::string& exec_id);
  Result<void> ExecResize(const std::string& exec_id, int height, int width);

  // --- container_stats.cc (stats, update) ---
  // One Docker stats document (GET /containers/{id}/stats?stream=0): read, preread, cpu_stats,
  // precpu_stats (the previous sample this daemon took of the container, so that clients can
  // compute a CPU percentage), memory_stats {usage, limit, stats}, pids_stats, blkio_stats,
  // num_procs, name, id. A stopped container gives zeros as dockerd does.
  Result<Json> Stats(const std::string& ref);
  // POST /containers/{id}/update: resources (Docker's Resources object, decoded by the front)
  // applied live through `moat-runtime update` and recorded in the container's spec; also the
  // restart policy. Returns {"Warnings":[]}.
  Result<Json> Update(const std::string& ref, const Json& resources);

  // --- container_fs.cc (the container's file system: cp, export, diff, commit) ---
  // HEAD/GET /containers/{id}/archive?path=P: the stat of P ({"name","size","mode","mtime",
  // "linkTarget"}, mode in Go's os.FileMode bits) and, for Get, a tar stream of P (fd).
  // P is resolved inside the container's root with openat2(RESOLVE_IN_ROOT): symlinks in the
  // container cannot reach the host. Works for stopped containers too (the rootfs is mounted
  // for the operation). kNotFound "Could not find the file P in container ID".
  Result<Json> ArchiveStat(const std::string& ref, const std::string& path);
  Result<StreamResult> ArchiveGet(const std::string& ref, const std::string& path, Json* stat);
  // PUT /containers/{id}/archive?path=DIR: extracts the tar read from `tar_fd` (remains owned by
  // the caller) into DIR inside the container, through moat-extract (confined: paths resolved
  // in the destination). DIR must exist and be a directory. Entries are owned by root, or by
  // the tar's uid/gid when `copy_uid_gid` (docker cp -a).
  Result<void> ArchivePut(const std::string& ref, const std::string& path, int tar_fd,
                          bool no_overwrite_dir_non_dir, bool copy_uid_gid = false);
  // GET /containers/{id}/export: a tar of the whole root file system (fd).
  Result<StreamResult> Export(const std::string& ref);
  // GET /containers/{id}/changes: [{"Path":"/x","Kind":0|1|2}] (modified, added, deleted), from
  // the overlay's upper directory.
  Result<Json> Changes(const std::string& ref);
  // POST /commit?container=ID&repo=&tag=&comment=&author=&pause=: a new image whose top layer is
  // the container's changes, config from the container's (changes applied). {"Id":"sha256:.."}
  Result<Json> Commit(const std::string& ref, const Json& args);

  // docker network connect/disconnect: recorded in the container's spec (EndpointsConfig) and,
  // while it runs, applied to its namespace at once.
  Result<void> Connect(const std::string& ref, const std::string& network, const privsep::EndpointSpec& ep);
  Result<void> Disconnect(const std::string& ref, const std::string& network, bool force);
  // Named volumes mounted by any container (running or not), with one user's id each.
  std::map<std::string, std::string> VolumesInUse();
  // The id of a container using image `image_id`, if any.
  std::optional<std::string> ImageUser(const std::string& image_id);
  struct Counts {
    int total = 0, running = 0, paused = 0, stopped = 0;
  };
  Counts Count();

  struct Container;
  struct ExecRecord;

 private:
  Result<std::shared_ptr<Container>> Find(const std::string& ref);
  // Mounts the container's rootfs if it is not mounted (a stopped container); `*mounted_here`
  // tells the caller to unmount it with UnmountRootfs when done. The path of the rootfs.
  Result<std::string> EnsureRootfs(const std::shared_ptr<Container>& c, bool* mounted_here);
  Result<void> Persist(const Container& c);
  Result<bool> StartLocked(const std::shared_ptr<Container>& c);
  Result<void> CheckNetworks(const privsep::ContainerSpec& spec);
  Result<void> PrepareRootfs(Container& c, const image::Image& img);
  void UnmountRootfs(const Container& c);
  void StartWaiter(const std::shared_ptr<Container>& c);
  void OnExit(const std::shared_ptr<Container>& c, int64_t code, bool oom, const std::string& error);
  void AfterExit(const std::shared_ptr<Container>& c);
  Result<void> StopLocked(const std::shared_ptr<Container>& c, int timeout, bool manual);
  Result<void> RemoveLocked(const std::shared_ptr<Container>& c, bool force);
  // container_fs.cc: the container's root held for one operation; a tar of `path` in it ("":
  // the whole root) streamed by a thread into the returned pipe.
  class RootHold;
  Result<StreamResult> StreamTree(const std::shared_ptr<Container>& c, const std::string& path,
                                  Json* stat);
  Result<Json> CtlCall(const Container& c, const Json& request, std::vector<UniqueFd>* fds = nullptr);
  void Emit(const Container& c, const std::string& action,
            std::map<std::string, std::string> extra = {});
  Json InspectJsonLocked(const Container& c);
  Json NetworkSettingsLocked(const Container& c);
  Json SummaryJsonLocked(const Container& c);
  std::string ExecDir(const std::string& id) const;
  std::string DataDir(const std::string& id) const;

  Paths paths_;
  image::Store* store_;
  Events* events_;
  Networks* networks_;
  Json default_spec_;
  std::string default_seccomp_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Container>> by_id_;
  std::map<std::string, std::string> id_by_name_;
  std::map<std::string, std::shared_ptr<ExecRecord>> execs_;
  std::map<std::string, Json> last_stats_;  // the previous stats sample per container (guarded by mu_)
};

}  // namespace moat::daemon::core
