#pragma once

// `moat run` / `moat create` flags and their mapping to the Engine API create body, the
// same body the docker CLI sends (Config + HostConfig + NetworkingConfig in one object).
// Pure functions: no I/O except reading the process environment for `-e NAME`.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "cli/json.h"

namespace moat::cli {

struct RunFlags {
  // Process.
  std::vector<std::string> env;  // -e K=V or -e K (taken from the environment when set)
  std::vector<std::string> env_files;
  std::string workdir;           // -w
  std::string user;              // -u
  std::optional<std::string> entrypoint;
  std::string name;
  std::string hostname;
  bool interactive = false;      // -i
  bool tty = false;              // -t
  bool detach = false;           // -d
  bool rm = false;
  bool init = false;
  std::string restart;           // no | always | unless-stopped | on-failure[:N]
  std::vector<std::string> labels;
  std::string stop_signal;
  std::optional<int64_t> stop_timeout;
  std::vector<std::string> attach;  // -a stdin|stdout|stderr (create/run)
  std::string pull = "missing";  // missing | never | always
  std::string platform;
  // Storage.
  std::vector<std::string> volumes;  // -v
  std::vector<std::string> mounts;   // --mount
  std::vector<std::string> tmpfs;
  bool read_only = false;
  // Security.
  std::vector<std::string> cap_add;
  std::vector<std::string> cap_drop;
  bool privileged = false;
  std::vector<std::string> security_opt;
  std::vector<std::string> group_add;
  // Resources.
  std::string memory;
  std::string memory_swap;
  std::string memory_reservation;
  std::string cpus;
  int64_t cpu_shares = 0;
  std::string cpuset_cpus;
  std::string cpuset_mems;
  std::optional<int64_t> pids_limit;
  std::vector<std::string> ulimits;
  std::vector<std::string> sysctls;
  std::vector<std::string> devices;
  std::string shm_size;
  bool oom_kill_disable = false;
  // Network.
  std::string network = "default";
  std::vector<std::string> publish;  // -p
  std::vector<std::string> expose;
  std::vector<std::string> dns;
  std::vector<std::string> add_hosts;
  std::string ipc;
  std::string pid;
  std::string uts;
  std::string userns;
  std::string cgroupns;
  std::string log_driver;
  std::vector<std::string> log_opts;
};

// docker's RAMInBytes: "64m" -> 67108864; units b k m g t p (binary), an optional trailing
// "b"/"B", fractions allowed ("1.5g"). kInvalidArgument otherwise.
Result<int64_t> ParseMemoryBytes(std::string_view s);
// "1.5" -> 1500000000 nano-CPUs; at most 9 decimals. kInvalidArgument otherwise.
Result<int64_t> ParseNanoCpus(std::string_view s);
// "nofile=10:20" -> {"Name":"nofile","Soft":10,"Hard":20}; "nproc=5" -> soft = hard = 5.
Result<Json> ParseUlimit(std::string_view s);
// "on-failure:3" -> {"Name":"on-failure","MaximumRetryCount":3}; "" -> {"Name":"no"}.
Result<Json> ParseRestartPolicy(std::string_view s);
// "type=tmpfs,destination=/t,tmpfs-size=64m" -> a HostConfig.Mounts entry.
Result<Json> ParseMount(std::string_view s);
// "/dev/a[:/dev/b][:rwm]" -> {"PathOnHost","PathInContainer","CgroupPermissions"}.
Result<Json> ParseDevice(std::string_view s);
// "[ip:][hostPort:]containerPort[/proto]" (ranges "8000-8001:80-81" too) into
// `exposed` ({"80/tcp":{}}) and `bindings` ({"80/tcp":[{"HostIp","HostPort"}]}).
Result<void> ParsePublish(std::string_view s, Json* exposed, Json* bindings);

// The create body for `image` with `args` (command after the image) and flags. `console_size`
// ([h, w]) is set when a tty is requested and known. kInvalidArgument for bad flag values,
// with a message naming the flag.
Result<Json> BuildCreateBody(const RunFlags& flags, const std::string& image,
                             const std::vector<std::string>& args,
                             std::optional<std::pair<int, int>> console_size);

// The exit status `docker run` reports for a failed start: 127 for "executable file not
// found" / "no such file or directory", 126 for "permission denied" / "is a directory",
// 125 otherwise.
int StartErrorExitCode(std::string_view message);

}  // namespace moat::cli
