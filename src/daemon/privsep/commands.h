#pragma once

// Typed commands that cross from the API front to the core, and the validation both sides run.
// The container spec travels in a normalised subset of Docker's own create body: the front
// decodes the client's body with DecodeContainerSpec (rejecting bad types and values), encodes
// the typed value with EncodeContainerSpec, and the core decodes and validates it again with
// the same functions. Fields Moat does not know are never forwarded.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "daemon/common/json.h"

namespace moat::daemon::privsep {

struct MountSpec {
  std::string type = "bind";  // bind | volume | tmpfs
  std::string source;         // host path (bind), volume name (volume), "" (tmpfs)
  std::string target;         // absolute path in the container
  bool read_only = false;
  std::string propagation;    // "", rprivate, private, rshared, shared, rslave, slave
  int64_t tmpfs_size = 0;     // bytes, 0 = default
  uint32_t tmpfs_mode = 0;    // 0 = default (1777)
  bool from_bind_string = false;  // came from HostConfig.Binds (-v)
};

struct Ulimit {
  std::string name;  // "nofile" ...
  int64_t soft = 0;
  int64_t hard = 0;
};

struct DeviceMapping {
  std::string path_on_host;
  std::string path_in_container;
  std::string permissions = "rwm";
};

struct ThrottleDevice {
  std::string path;
  uint64_t rate = 0;
};

// One entry of HostConfig.PortBindings: container port/proto published on the host.
struct PortBinding {
  uint16_t container_port = 0;
  std::string proto = "tcp";   // tcp | udp | sctp
  std::string host_ip;         // "" = every address (0.0.0.0 and ::)
  uint16_t host_port = 0;      // 0 = an ephemeral port chosen at start
  uint16_t host_port_end = 0;  // a range "8000-8010": the first free one; 0 = no range
  auto operator<=>(const PortBinding&) const = default;
};

// NetworkingConfig.EndpointsConfig[network]: how the container joins that network.
struct EndpointSpec {
  std::vector<std::string> aliases;
  std::string ipv4, ipv6;          // IPAMConfig.IPv4Address / IPv6Address ("" = allocate)
  std::vector<std::string> links;  // "name:alias"
  std::string mac;
  bool operator==(const EndpointSpec&) const = default;
};

struct ContainerSpec {
  std::string name;  // "" = generated
  // Config
  std::string image;
  std::string hostname, domainname, user, working_dir;
  std::vector<std::string> env;
  std::optional<std::vector<std::string>> cmd, entrypoint;
  bool tty = false, open_stdin = false, stdin_once = false;
  bool attach_stdin = false, attach_stdout = false, attach_stderr = false;
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  std::optional<int64_t> stop_timeout;
  std::vector<std::string> exposed_ports;  // "80/tcp"
  // HostConfig
  bool auto_remove = false;
  std::string restart_policy = "no";  // no | always | unless-stopped | on-failure
  int64_t restart_max_retries = 0;
  // default | bridge | none | host | container:<name|id> | <network name|id>
  std::string network_mode = "default";
  std::vector<std::string> cap_add, cap_drop;
  bool privileged = false;
  bool read_only_rootfs = false;
  bool init = false;
  bool no_new_privileges = true;
  std::optional<std::string> seccomp_profile;  // JSON text; "unconfined"
  std::optional<std::string> apparmor_profile;  // "unconfined" or a profile name
  std::vector<std::string> selinux_label;       // label=... options
  std::vector<MountSpec> mounts;
  int64_t memory = 0, memory_swap = 0, memory_reservation = 0;
  int64_t nano_cpus = 0, cpu_shares = 0, cpu_period = 0, cpu_quota = 0;
  std::string cpuset_cpus, cpuset_mems;
  std::optional<int64_t> pids_limit;
  int64_t blkio_weight = 0;
  std::vector<ThrottleDevice> read_bps, write_bps, read_iops, write_iops;
  std::vector<Ulimit> ulimits;
  std::map<std::string, std::string> sysctls;
  std::vector<DeviceMapping> devices;
  std::optional<int64_t> oom_score_adj;
  int64_t shm_size = 0;
  std::vector<std::string> group_add;
  std::vector<PortBinding> ports;   // HostConfig.PortBindings
  bool publish_all = false;         // -P: every exposed port on an ephemeral host port
  std::vector<std::string> dns, dns_search, dns_options;
  std::vector<std::string> extra_hosts;  // "host:ip" (--add-host)
  std::vector<std::string> links;        // HostConfig.Links "name:alias" (default bridge)
  std::string mac_address;
  std::map<std::string, EndpointSpec> endpoints;  // NetworkingConfig.EndpointsConfig
};

// The network a container's NetworkMode names: "bridge" for default/bridge, else the mode.
std::string PrimaryNetwork(const ContainerSpec& spec);
// Docker's PortBindings object <-> typed bindings; kInvalidArgument naming the bad entry.
Result<std::vector<PortBinding>> DecodePortBindings(const Json& pb);
Json EncodePortBindings(const std::vector<PortBinding>& ports);
// "80/tcp" -> (80, "tcp"); kInvalidArgument.
Result<std::pair<uint16_t, std::string>> ParsePortProto(const std::string& text);
// One EndpointsConfig entry (also the body of POST /networks/{id}/connect's EndpointConfig).
Result<EndpointSpec> DecodeEndpointSpec(const Json& e, const std::string& field);
Json EncodeEndpointSpec(const EndpointSpec& e);
// A network name as Docker allows (the same rule as container names, single characters too).
Result<void> ValidateNetworkName(const std::string& name);

// Docker's create body (Config fields at the top level, HostConfig, NetworkingConfig) ->
// ContainerSpec. `name` comes from the query (?name=). kInvalidArgument naming the field.
Result<ContainerSpec> DecodeContainerSpec(const Json& body, const std::string& name);
// The normalised body the core receives; DecodeContainerSpec(Encode(s), s.name) == s.
Json EncodeContainerSpec(const ContainerSpec& spec);
// Semantic checks (names, paths, limits, capabilities, sysctls); the core runs it again.
Result<void> ValidateContainerSpec(const ContainerSpec& spec);

// A container name as Docker allows: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (a leading "/" is dropped).
Result<std::string> NormaliseContainerName(const std::string& name);

struct ExecSpec {
  std::vector<std::string> cmd;
  std::vector<std::string> env;
  std::string user, working_dir;
  bool tty = false, attach_stdin = false, attach_stdout = true, attach_stderr = true;
  bool privileged = false;
};
Result<ExecSpec> DecodeExecSpec(const Json& body);
Json EncodeExecSpec(const ExecSpec& spec);
Result<void> ValidateExecSpec(const ExecSpec& spec);

// Registry credentials as the Engine API carries them: the body of POST /auth, or the
// X-Registry-Auth header (base64, standard or URL alphabet, of the same JSON). Field names as
// Docker's AuthConfig: username, password, auth ("user:pass" base64; split when username is
// empty), identitytoken, registrytoken, serveraddress (email is accepted and ignored).
struct RegistryAuthSpec {
  std::string username, password, identity_token, registry_token, server_address;
  bool operator==(const RegistryAuthSpec&) const = default;
};
// An empty or absent header is anonymous ({}). kInvalidArgument naming what was wrong; values
// are limited (4 KiB each) and must not hold control characters.
Result<RegistryAuthSpec> DecodeRegistryAuthHeader(std::string_view header);
Result<RegistryAuthSpec> DecodeRegistryAuth(const Json& body);
// The normalised JSON the core receives ({"username":..,"password":..,"identitytoken":..,
// "registrytoken":..,"serveraddress":..}); DecodeRegistryAuth(Encode(a)) == a.
Json EncodeRegistryAuth(const RegistryAuthSpec& auth);

// An image reference of `docker pull`'s query: fromImage ("busybox", "busybox:1.36",
// "localhost:5000/x@sha256:..") and tag ("latest", "sha256:<hex>" for a digest, or empty) ->
// one reference string ("busybox:latest", "x@sha256:.."). kInvalidArgument for a bad name.
Result<std::string> PullReference(const std::string& from_image, const std::string& tag);
// `docker pull --platform`: "os[/arch[/variant]]" -> {os, arch, variant}; empty -> all empty.
struct PlatformSpec {
  std::string os, architecture, variant;
};
Result<PlatformSpec> ParsePlatform(const std::string& text);

// Parses Docker's byte sizes for --memory etc. are client-side; the API carries numbers.
// Parses a signal given as a name ("SIGTERM", "TERM", "term") or number; kInvalidArgument.
Result<int> ParseSignal(const std::string& s);

}  // namespace moat::daemon::privsep
