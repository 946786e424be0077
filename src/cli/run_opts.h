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
  std::string network = "default";   // --network: default, bridge, host, none, container:X, NAME
  std::vector<std::string> publish;  // -p
  bool publish_all = false;          // -P
  std::vector<std::string> expose;
  std::vector<std::string> dns;
  std::vector<std::string> dns_search;
  std::vector<std::string> dns_options;
  std::vector<std::string> add_hosts;        // --add-host host:ip | host=ip
  std::vector<std::string> links;            // --link name[:alias]
  std::vector<std::string> network_aliases;  // --network-alias
  std::string ip, ip6;                       // --ip, --ip6 (the daemon validates them)
  std::vector<std::string> link_local_ips;   // --link-local-ip
  std::string mac_address;
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
// One -p value as docker's nat.ParsePortSpec reads it: "[ip:][hostPort:]containerPort[/proto]"
// with ranges ("8000-8001:80-81"), a bracketed IPv6 address ("[::1]:80:80"), or a host range
// for one container port ("8000-8010:80", sent as HostPort "8000-8010" for the daemon to pick
// from); also the long form "published=8080,target=80[,protocol=udp]". Adds to `exposed`
// ({"80/tcp":{}}) and `bindings` ({"80/tcp":[{"HostIp","HostPort"}]}). kInvalidArgument
// with docker's message otherwise.
Result<void> ParsePublish(std::string_view s, Json* exposed, Json* bindings);
// One --expose value, "port[/proto]" or "start-end[/proto]", into `exposed`.
Result<void> ParseExpose(std::string_view s, Json* exposed);
// One --add-host value, "host:ip" or "host=ip" (ip may be [v6] or host-gateway), as the
// "host:ip" the API takes. kInvalidArgument for a missing host or a bad address.
Result<std::string> ParseExtraHost(std::string_view s);

// The create body for `image` with `args` (command after the image) and flags. `console_size`
// ([h, w]) is set when a tty is requested and known. kInvalidArgument for bad flag values,
// with a message naming the flag.
// Networking follows the docker CLI: HostConfig.NetworkMode is --network ("default" when
// not given), and NetworkingConfig.EndpointsConfig[--network] carries --network-alias,
// --link (user-defined networks only; on the default bridge --link is only the legacy
// HostConfig.Links), --ip/--ip6/--link-local-ip (IPAMConfig) and --mac-address; with none of
// them EndpointsConfig is {}. --network-alias on a non-user-defined network is refused here,
// --ip there is left to the daemon to refuse.
Result<Json> BuildCreateBody(const RunFlags& flags, const std::string& image,
                             const std::vector<std::string>& args,
                             std::optional<std::pair<int, int>> console_size);

// The exit status `docker run` reports for a failed start: 127 for "executable file not
// found" / "no such file or directory", 126 for "permission denied" / "is a directory",
// 125 otherwise.
int StartErrorExitCode(std::string_view message);

}  // namespace moat::cli
