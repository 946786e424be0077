// The runtime library's JSON adapter: the only file here that includes nlohmann/json, and the
// only one that may see its exceptions.
#include <nlohmann/json.hpp>

#include "runtime/runtime_json.h"
#include "oci/names.h"
#include "runtime/state_store.h"

namespace moat::runtime {

using nlohmann::json;

namespace {
json StatusJson(const ContainerState& s, Status status) {
  json j = {{"ociVersion", "1.3.0"},
            {"id", s.id},
            {"pid", status == Status::kStopped ? 0 : s.pid},
            {"status", StatusName(status)},
            {"bundle", s.bundle},
            {"rootfs", s.rootfs},
            {"created", s.created},
            {"owner", s.owner}};
  if (!s.annotations.empty()) j["annotations"] = s.annotations;
  return j;
}
}  // namespace

std::string ContainerProcessStateDocument(pid_t pid, std::string_view metadata,
                                          std::string_view state_json) {
  json j = {{"ociVersion", "1.3.0"}, {"fds", {"seccompFd"}}, {"pid", pid}};
  if (!metadata.empty()) j["metadata"] = std::string(metadata);
  j["state"] = json::parse(state_json);  // ours (StatusDocument): well-formed
  return j.dump();
}

std::string StateToJson(const ContainerState& s) {
  json j = {{"id", s.id},
            {"pid", s.pid},
            {"pid_start_time", s.pid_start_time},
            {"bundle", s.bundle},
            {"rootfs", s.rootfs},
            {"created", s.created},
            {"owner", s.owner},
            {"cgroup_path", s.cgroup_path},
            {"cgroup_paths", s.cgroup_paths},
            {"has_poststart_hooks", s.has_poststart_hooks},
            {"has_poststop_hooks", s.has_poststop_hooks},
            {"annotations", s.annotations},
            {"shared_namespaces", s.shared_namespaces}};
  return j.dump();
}

Result<ContainerState> StateFromJson(std::string_view text) {
  try {
    json j = json::parse(text);
    ContainerState s;
    s.id = j.at("id").get<std::string>();
    s.pid = j.at("pid").get<pid_t>();
    s.pid_start_time = j.at("pid_start_time").get<uint64_t>();
    s.bundle = j.at("bundle").get<std::string>();
    s.rootfs = j.at("rootfs").get<std::string>();
    s.created = j.at("created").get<std::string>();
    s.owner = j.value("owner", "");
    s.cgroup_path = j.value("cgroup_path", "");
    s.cgroup_paths = j.value("cgroup_paths", std::map<std::string, std::string>{});
    s.has_poststart_hooks = j.value("has_poststart_hooks", true);
    s.has_poststop_hooks = j.value("has_poststop_hooks", true);
    s.annotations = j.value("annotations", std::map<std::string, std::string>{});
    s.shared_namespaces = j.value("shared_namespaces", std::vector<std::string>{});
    return s;
  } catch (const std::exception& e) {
    return Fail(ErrorKind::kInternal, "state.json is corrupt: %s", e.what());
  }
}

std::string StatusDocument(const ContainerState& state, Status status) {
  return StatusJson(state, status).dump(2);
}

std::string ListDocument(const std::vector<std::pair<ContainerState, Status>>& containers) {
  json arr = json::array();
  for (const auto& [s, st] : containers) arr.push_back(StatusJson(s, st));
  return arr.dump();
}

std::string PidsDocument(const std::vector<pid_t>& pids) { return json(pids).dump(); }

std::string StatsEventDocument(const std::string& id, const cgroups::Stats& s) {
  json io_bytes = json::array(), io_ops = json::array();
  for (const auto& [dev, values] : s.io) {
    auto colon = dev.find(':');
    uint64_t major = std::stoull(dev.substr(0, colon));
    uint64_t minor = colon == std::string::npos ? 0 : std::stoull(dev.substr(colon + 1));
    for (const auto& [op, v] : values) {
      bool bytes = op.find("bytes") != std::string::npos;
      (bytes ? io_bytes : io_ops)
          .push_back({{"major", major}, {"minor", minor}, {"op", op}, {"value", v}});
    }
  }
  json data = {
      {"cpu",
       {{"usage",
         {{"total", s.cpu_usage_ns},
          {"percpu", s.cpu_per_cpu_ns},
          {"kernel", s.cpu_system_ns},
          {"user", s.cpu_user_ns}}},
        {"throttling",
         {{"periods", s.cpu_nr_periods},
          {"throttledPeriods", s.cpu_nr_throttled},
          {"throttledTime", s.cpu_throttled_ns}}}}},
      {"memory",
       {{"usage",
         {{"limit", s.memory_limit},
          {"usage", s.memory_usage},
          {"max", s.memory_max_usage},
          {"failcnt", s.memory_failcnt}}},
        {"swap", {{"usage", s.swap_usage}}},
        {"oom_kill", s.oom_kills},
        {"raw", s.memory_stat}}},
      {"pids", {{"current", s.pids_current}, {"limit", s.pids_limit}}},
      {"blkio", {{"ioServiceBytesRecursive", io_bytes}, {"ioServicedRecursive", io_ops}}}};
  return json{{"type", "stats"}, {"id", id}, {"data", data}}.dump();
}

std::string FeaturesDocument(int last_cap) {
  json caps = json::array();
  for (int c = 0; c <= last_cap; ++c) caps.push_back(std::string(oci::CapabilityName(c)));
  json j = {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", "1.3.0"},
      {"hooks",
       {"prestart", "createRuntime", "createContainer", "startContainer", "poststart",
        "poststop"}},
      {"mountOptions",
       {"async",     "atime",   "bind",        "defaults",   "dev",          "diratime",
        "dirsync",   "exec",    "loud",        "mand",       "noatime",      "nodev",
        "nodiratime", "noexec", "nomand",      "norelatime", "nostrictatime", "nosuid",
        "nosymfollow", "private", "rbind",     "relatime",   "remount",      "ro",
        "rprivate",  "rshared", "rslave",      "runbindable", "rw",          "shared",
        "silent",    "slave",   "strictatime", "suid",       "symfollow",    "sync",
        "unbindable", "rro",    "rrw",         "rnosuid",    "rsuid",        "rnodev",
        "rdev",      "rnoexec", "rexec",       "rnoatime",   "rnosymfollow", "tmpcopyup",
        "idmap",     "ridmap"}},
      {"linux",
       {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}},
        {"capabilities", caps},
        {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false},
                    {"rdma", false}}},
        {"seccomp",
         {{"enabled", true},
          {"actions",
           {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
            "SCMP_ACT_TRAP"}},
          {"operators",
           {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"}},
          {"archs",
           {"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64",
            "SCMP_ARCH_ARM"}},
          {"supportedFlags",
           {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}}}},
        {"apparmor", {{"enabled", true}}},
        {"selinux", {{"enabled", true}}},
        {"intelRdt", {{"enabled", false}}},
        {"mountExtensions", {{"idmap", {{"enabled", true}}}}}}},
      {"annotations", {{"org.opencontainers.runc.checkpoint.enabled", "false"},
                       {"io.github.moat.runtime", "moat-runtime"}}}};
  return j.dump(4);
}

}  // namespace moat::runtime
