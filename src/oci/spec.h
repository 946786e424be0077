#pragma once

// config.json (OCI runtime-spec 1.0.0 .. 1.3.0, Linux parts) as plain value types.
// Decoded only by spec_json.cc; checked by validate.cc. Optional fields that the spec leaves
// unset are std::optional so that "absent" and "zero" stay distinct. Every type compares with ==
// (member-wise), which tests and the round trip through SpecToJson rely on.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace moat::oci {

struct Root {
  std::string path;
  bool readonly = false;
  friend bool operator==(const Root&, const Root&) = default;
};

struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
  friend bool operator==(const IdMapping&, const IdMapping&) = default;
};

struct Mount {
  std::string destination;
  std::string type;  // empty: bind when options say so
  std::string source;
  std::vector<std::string> options;
  std::vector<IdMapping> uid_mappings;
  std::vector<IdMapping> gid_mappings;
  friend bool operator==(const Mount&, const Mount&) = default;
};

struct User {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::optional<uint32_t> umask;
  std::vector<uint32_t> additional_gids;
  std::string username;  // Windows only; ignored
  friend bool operator==(const User&, const User&) = default;
};

struct Capabilities {
  std::vector<std::string> bounding;
  std::vector<std::string> effective;
  std::vector<std::string> inheritable;
  std::vector<std::string> permitted;
  std::vector<std::string> ambient;
  friend bool operator==(const Capabilities&, const Capabilities&) = default;
};

struct Rlimit {
  std::string type;  // "RLIMIT_NOFILE"
  uint64_t soft = 0;
  uint64_t hard = 0;
  friend bool operator==(const Rlimit&, const Rlimit&) = default;
};

struct ConsoleSize {
  uint32_t height = 0;
  uint32_t width = 0;
  friend bool operator==(const ConsoleSize&, const ConsoleSize&) = default;
};

struct Scheduler {
  std::string policy;  // SCHED_OTHER ...
  int32_t nice = 0;
  int32_t priority = 0;
  std::vector<std::string> flags;
  uint64_t runtime = 0;
  uint64_t deadline = 0;
  uint64_t period = 0;
  friend bool operator==(const Scheduler&, const Scheduler&) = default;
};

struct IoPriority {
  std::string io_class;  // IOPRIO_CLASS_RT | _BE | _IDLE
  int32_t priority = 0;
  friend bool operator==(const IoPriority&, const IoPriority&) = default;
};

// process.execCPUAffinity (runtime-spec 1.2): CPU lists such as "0-3,7"; empty means unset.
struct ExecCpuAffinity {
  std::string initial_cpus;  // "initial"
  std::string final_cpus;    // "final"
  friend bool operator==(const ExecCpuAffinity&, const ExecCpuAffinity&) = default;
};

struct Process {
  bool terminal = false;
  std::optional<ConsoleSize> console_size;
  std::string cwd;
  std::vector<std::string> env;
  std::vector<std::string> args;
  std::string command_line;  // Windows only
  User user;
  std::optional<Capabilities> capabilities;
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  std::string apparmor_profile;
  std::optional<int> oom_score_adj;
  std::string selinux_label;
  std::optional<Scheduler> scheduler;
  std::optional<IoPriority> io_priority;
  std::optional<ExecCpuAffinity> exec_cpu_affinity;  // the decoded execCPUAffinity object
  friend bool operator==(const Process&, const Process&) = default;
};

struct Hook {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int> timeout;  // seconds, > 0
  friend bool operator==(const Hook&, const Hook&) = default;
};

struct Hooks {
  std::vector<Hook> prestart;  // deprecated, still honoured
  std::vector<Hook> create_runtime;
  std::vector<Hook> create_container;
  std::vector<Hook> start_container;
  std::vector<Hook> poststart;
  std::vector<Hook> poststop;
  friend bool operator==(const Hooks&, const Hooks&) = default;
};

struct Namespace {
  std::string type;  // pid network mount ipc uts user cgroup time
  std::string path;  // empty: create a new one
  friend bool operator==(const Namespace&, const Namespace&) = default;
};

struct Device {
  std::string type;  // c b u p
  std::string path;
  int64_t major = 0;
  int64_t minor = 0;
  std::optional<uint32_t> file_mode;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  friend bool operator==(const Device&, const Device&) = default;
};

struct DeviceCgroupRule {
  bool allow = false;
  std::string type;              // a c b; empty means all
  std::optional<int64_t> major;  // absent: all
  std::optional<int64_t> minor;
  std::string access;  // rwm subset
  friend bool operator==(const DeviceCgroupRule&, const DeviceCgroupRule&) = default;
};

struct MemoryResources {
  std::optional<int64_t> limit;
  std::optional<int64_t> reservation;
  std::optional<int64_t> swap;  // memory+swap, as in the spec
  std::optional<int64_t> kernel;
  std::optional<int64_t> kernel_tcp;
  std::optional<uint64_t> swappiness;
  std::optional<bool> disable_oom_killer;
  std::optional<bool> use_hierarchy;
  std::optional<bool> check_before_update;
  friend bool operator==(const MemoryResources&, const MemoryResources&) = default;
};

struct CpuResources {
  std::optional<uint64_t> shares;
  std::optional<int64_t> quota;
  std::optional<uint64_t> burst;
  std::optional<uint64_t> period;
  std::optional<int64_t> realtime_runtime;
  std::optional<uint64_t> realtime_period;
  std::string cpus;
  std::string mems;
  std::optional<int64_t> idle;
  friend bool operator==(const CpuResources&, const CpuResources&) = default;
};

struct BlockIoDevice {
  int64_t major = 0;
  int64_t minor = 0;
  friend bool operator==(const BlockIoDevice&, const BlockIoDevice&) = default;
};

struct WeightDevice {
  int64_t major = 0;
  int64_t minor = 0;
  std::optional<uint16_t> weight;
  std::optional<uint16_t> leaf_weight;
  friend bool operator==(const WeightDevice&, const WeightDevice&) = default;
};

struct ThrottleDevice {
  int64_t major = 0;
  int64_t minor = 0;
  uint64_t rate = 0;
  friend bool operator==(const ThrottleDevice&, const ThrottleDevice&) = default;
};

struct BlockIoResources {
  std::optional<uint16_t> weight;
  std::optional<uint16_t> leaf_weight;
  std::vector<WeightDevice> weight_device;
  std::vector<ThrottleDevice> throttle_read_bps_device;
  std::vector<ThrottleDevice> throttle_write_bps_device;
  std::vector<ThrottleDevice> throttle_read_iops_device;
  std::vector<ThrottleDevice> throttle_write_iops_device;
  friend bool operator==(const BlockIoResources&, const BlockIoResources&) = default;
};

struct HugepageLimit {
  std::string page_size;  // "2MB"
  uint64_t limit = 0;
  friend bool operator==(const HugepageLimit&, const HugepageLimit&) = default;
};

struct NetworkPriority {
  std::string name;
  uint32_t priority = 0;
  friend bool operator==(const NetworkPriority&, const NetworkPriority&) = default;
};

// linux.resources.rdma["mlx5_1"] (runtime-spec 1.0.1).
struct RdmaLimit {
  std::optional<uint32_t> hca_handles;
  std::optional<uint32_t> hca_objects;
  friend bool operator==(const RdmaLimit&, const RdmaLimit&) = default;
};

struct Resources {
  std::vector<DeviceCgroupRule> devices;
  std::optional<MemoryResources> memory;
  std::optional<CpuResources> cpu;
  std::optional<int64_t> pids_limit;  // pids.limit; <= 0 means unlimited
  std::optional<BlockIoResources> block_io;
  std::vector<HugepageLimit> hugepage_limits;
  std::optional<uint32_t> network_class_id;
  std::vector<NetworkPriority> network_priorities;
  std::map<std::string, std::string> unified;
  std::map<std::string, RdmaLimit> rdma;  // keyed by device name
  friend bool operator==(const Resources&, const Resources&) = default;
};

struct SeccompArg {
  uint32_t index = 0;
  uint64_t value = 0;
  uint64_t value_two = 0;
  std::string op;  // SCMP_CMP_EQ ...
  friend bool operator==(const SeccompArg&, const SeccompArg&) = default;
};

struct SeccompSyscall {
  std::vector<std::string> names;
  std::string action;  // SCMP_ACT_ERRNO ...
  std::optional<uint32_t> errno_ret;
  std::vector<SeccompArg> args;
  friend bool operator==(const SeccompSyscall&, const SeccompSyscall&) = default;
};

struct Seccomp {
  std::string default_action;
  std::optional<uint32_t> default_errno_ret;
  std::vector<std::string> architectures;  // SCMP_ARCH_X86_64 ...
  std::vector<std::string> flags;          // SECCOMP_FILTER_FLAG_*
  std::string listener_path;
  std::string listener_metadata;
  std::vector<SeccompSyscall> syscalls;
  friend bool operator==(const Seccomp&, const Seccomp&) = default;
};

struct Personality {
  std::string domain;  // LINUX | LINUX32
  std::vector<std::string> flags;
  friend bool operator==(const Personality&, const Personality&) = default;
};

struct TimeOffset {
  int64_t secs = 0;
  uint32_t nanosecs = 0;
  friend bool operator==(const TimeOffset&, const TimeOffset&) = default;
};

// linux.netDevices["eth0"] (runtime-spec 1.3): host interface moved into the container.
struct NetDevice {
  std::string name;  // name inside the container; empty keeps the host name
  friend bool operator==(const NetDevice&, const NetDevice&) = default;
};

// linux.intelRdt (runtime-spec 1.0 .. 1.3; enableCMT/enableMBM of 1.1-1.2 are not decoded).
struct IntelRdt {
  std::string clos_id;
  std::string l3_cache_schema;
  std::string mem_bw_schema;
  std::vector<std::string> schemata;
  bool enable_monitoring = false;
  friend bool operator==(const IntelRdt&, const IntelRdt&) = default;
};

// linux.memoryPolicy (runtime-spec 1.3): set_mempolicy(2).
struct MemoryPolicy {
  std::string mode;   // MPOL_*
  std::string nodes;  // "0-3,7"
  std::vector<std::string> flags;
  friend bool operator==(const MemoryPolicy&, const MemoryPolicy&) = default;
};

struct Linux {
  std::vector<Namespace> namespaces;
  std::vector<IdMapping> uid_mappings;
  std::vector<IdMapping> gid_mappings;
  std::map<std::string, TimeOffset> time_offsets;  // "monotonic", "boottime"
  std::vector<Device> devices;
  std::string cgroups_path;
  std::optional<Resources> resources;
  std::string rootfs_propagation;
  std::optional<Seccomp> seccomp;
  std::map<std::string, std::string> sysctl;
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  std::string mount_label;
  std::optional<Personality> personality;
  std::map<std::string, NetDevice> net_devices;  // keyed by host interface name
  std::optional<IntelRdt> intel_rdt;
  std::optional<MemoryPolicy> memory_policy;
  friend bool operator==(const Linux&, const Linux&) = default;
};

struct Spec {
  std::string oci_version;
  std::optional<Root> root;
  std::vector<Mount> mounts;
  std::optional<Process> process;
  std::string hostname;
  std::string domainname;
  std::optional<Hooks> hooks;
  std::map<std::string, std::string> annotations;
  std::optional<Linux> linux;
  friend bool operator==(const Spec&, const Spec&) = default;
};

// The namespace kinds in the order the runtime joins and creates them.
inline constexpr const char* kNamespaceTypes[] = {"user", "mount", "pid",    "network",
                                                  "ipc",  "uts",   "cgroup", "time"};

}  // namespace moat::oci
