// Container statistics (GET /containers/{id}/stats) and live resource updates
// (POST /containers/{id}/update).

#include "daemon/core/container_stats.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "daemon/core/container_internal.h"

namespace moat::daemon::core {

using privsep::ContainerSpec;

namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

bool IsRunningStatus(const std::string& s) { return s == "running" || s == "paused"; }

// dockerd's empty cpu_stats (Go zero value with omitempty fields left out).
Json ZeroCpuStats() {
  return {{"cpu_usage", {{"total_usage", 0}, {"usage_in_kernelmode", 0}, {"usage_in_usermode", 0}}},
          {"throttling_data", {{"periods", 0}, {"throttled_periods", 0}, {"throttled_time", 0}}}};
}

Json EmptyBlkio() {
  Json b = Json::object();
  for (const char* k : {"io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
                        "io_service_time_recursive", "io_wait_time_recursive",
                        "io_merged_recursive", "io_time_recursive", "sectors_recursive"}) {
    b[k] = nullptr;
  }
  return b;
}

// "maj:min" -> (major, minor); false when malformed.
bool ParseDevice(const std::string& dev, uint64_t* major, uint64_t* minor) {
  auto parts = StrSplit(dev, ':');
  if (parts.size() != 2) return false;
  auto ma = ParseUint64(parts[0]), mi = ParseUint64(parts[1]);
  if (!ma || !mi) return false;
  *major = *ma;
  *minor = *mi;
  return true;
}

Json BlkioJson(const StatsSample& s) {
  bool v1 = s.version == cgroups::Version::kV1;
  Json bytes = Json::array(), ops = Json::array();
  for (const auto& [dev, values] : s.cgroup.io) {
    uint64_t major = 0, minor = 0;
    if (!ParseDevice(dev, &major, &minor)) continue;
    auto get = [&](const char* key) -> uint64_t {
      auto it = values.find(key);
      return it == values.end() ? 0 : it->second;
    };
    auto entry = [&](const char* op_v1, const char* op_v2, uint64_t value) -> Json {
      return {{"major", major}, {"minor", minor}, {"op", v1 ? op_v1 : op_v2}, {"value", value}};
    };
    bytes.push_back(entry("Read", "read", get("read_bytes")));
    bytes.push_back(entry("Write", "write", get("write_bytes")));
    ops.push_back(entry("Read", "read", get("reads")));
    ops.push_back(entry("Write", "write", get("writes")));
    if (v1) {
      bytes.push_back(entry("Total", "total", get("read_bytes") + get("write_bytes")));
      ops.push_back(entry("Total", "total", get("reads") + get("writes")));
    }
  }
  Json b = EmptyBlkio();
  b["io_service_bytes_recursive"] = bytes;
  b["io_serviced_recursive"] = ops;
  return b;
}

// The memory resources as oci_config.cc writes them at create, from the spec.
Json MemoryResources(const ContainerSpec& s) {
  Json mem = Json::object();
  // Docker's update cannot lower a limit to "none", but a swap limit of -1 lifts it.
  mem["limit"] = s.memory > 0 ? s.memory : -1;
  if (s.memory_reservation > 0) mem["reservation"] = s.memory_reservation;
  if (s.memory_swap > 0) mem["swap"] = s.memory_swap;
  if (s.memory_swap == -1) mem["swap"] = -1;
  if (s.memory > 0 && s.memory_swap == 0) mem["swap"] = s.memory * 2;  // docker's default
  return mem;
}

// One reading of the container's cgroup and of the host's CPU time.
Result<StatsSample> TakeSample(const std::string& state_path) {
  MOAT_ASSIGN_OR_RETURN(auto paths, CgroupPathsFromState(state_path));
  MOAT_ASSIGN_OR_RETURN(cgroups::Layout layout, cgroups::DetectLayout());
  auto manager = cgroups::OpenManager(layout, paths);
  StatsSample s;
  s.version = manager->version();
  MOAT_ASSIGN_OR_RETURN(s.cgroup, manager->GetStats());
  s.read_nano = NowNano();
  MOAT_ASSIGN_OR_RETURN(std::string proc_stat, sys::ReadFile("/proc/stat"));
  MOAT_ASSIGN_OR_RETURN(s.system_cpu_ns, SystemCpuNsFromProcStat(proc_stat, sysconf(_SC_CLK_TCK)));
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  s.online_cpus = cpus > 0 ? static_cast<uint32_t>(cpus) : 0;
  return s;
}

}  // namespace

// The container's cgroup paths as moat-runtime recorded them in its state.json.
Result<std::map<std::string, std::string>> CgroupPathsFromState(const std::string& state_path) {
  MOAT_ASSIGN_OR_RETURN(std::string text, sys::ReadFile(state_path));
  MOAT_ASSIGN_OR_RETURN(Json state, ParseJson(text).Context("%s", state_path.c_str()));
  std::map<std::string, std::string> paths;
  if (state.is_object() && state.contains("cgroup_paths") && state["cgroup_paths"].is_object()) {
    for (const auto& [k, v] : state["cgroup_paths"].items()) {
      if (v.is_string()) paths[k] = v.get_ref<const std::string&>();
    }
  }
  if (paths.empty() && state.is_object() && state.contains("cgroup_path") &&
      state["cgroup_path"].is_string()) {
    paths[""] = state["cgroup_path"].get_ref<const std::string&>();
  }
  if (paths.empty())
    return Fail(ErrorKind::kNotFound, "%s: no cgroup recorded", state_path.c_str());
  return paths;
}


Result<uint64_t> SystemCpuNsFromProcStat(std::string_view proc_stat, long clock_ticks) {
  if (clock_ticks <= 0) return Fail(ErrorKind::kInvalidArgument, "clock ticks: %ld", clock_ticks);
  std::string_view line = proc_stat.substr(0, proc_stat.find('\n'));
  auto fields = StrSplit(line, ' ');
  if (fields.empty() || fields[0] != "cpu") {
    return Fail(ErrorKind::kInvalidArgument, "/proc/stat: no \"cpu\" line");
  }
  uint64_t ticks = 0;
  int seen = 0;
  for (size_t i = 1; i < fields.size() && seen < 8; ++i) {
    if (fields[i].empty()) continue;  // "cpu  123": two spaces
    auto v = ParseUint64(fields[i]);
    if (!v)
      return Fail(ErrorKind::kInvalidArgument, "/proc/stat: bad value \"%s\"", fields[i].c_str());
    ticks += *v;
    ++seen;
  }
  if (seen < 4) return Fail(ErrorKind::kInvalidArgument, "/proc/stat: short \"cpu\" line");
  // ticks * (1e9 / clock_ticks) without overflow for any realistic uptime (USER_HZ is 100).
  uint64_t hz = static_cast<uint64_t>(clock_ticks);
  return ticks / hz * kNanosPerSecond + ticks % hz * kNanosPerSecond / hz;
}

uint64_t MemTotalFromMeminfo(std::string_view meminfo) {
  for (const auto& line : StrSplit(meminfo, '\n')) {
    if (!StartsWith(line, "MemTotal:")) continue;
    std::string_view rest = TrimWhitespace(std::string_view(line).substr(9));
    size_t sp = rest.find(' ');
    auto kib = ParseUint64(rest.substr(0, sp));
    if (!kib) return 0;
    return *kib * 1024;
  }
  return 0;
}

Json CpuStatsJson(const StatsSample& s) {
  const cgroups::Stats& c = s.cgroup;
  Json usage = {{"total_usage", c.cpu_usage_ns},
                {"usage_in_kernelmode", c.cpu_system_ns},
                {"usage_in_usermode", c.cpu_user_ns}};
  if (!c.cpu_per_cpu_ns.empty()) usage["percpu_usage"] = c.cpu_per_cpu_ns;
  return {{"cpu_usage", usage},
          {"system_cpu_usage", s.system_cpu_ns},
          {"online_cpus", s.online_cpus},
          {"throttling_data",
           {{"periods", c.cpu_nr_periods},
            {"throttled_periods", c.cpu_nr_throttled},
            {"throttled_time", c.cpu_throttled_ns}}}};
}

Json StatsDocument(const std::string& id, const std::string& name, const StatsSample& s,
                   const Json& precpu, int64_t preread_nano, uint64_t mem_total) {
  const cgroups::Stats& c = s.cgroup;
  uint64_t limit = c.memory_limit;
  if (mem_total > 0 && (limit == 0 || limit > mem_total)) limit = mem_total;
  Json memory = {{"usage", c.memory_usage}, {"stats", c.memory_stat}, {"limit", limit}};
  if (s.version == cgroups::Version::kV1) {
    memory["max_usage"] = c.memory_max_usage;
    memory["failcnt"] = c.memory_failcnt;
  }
  Json pids = {{"current", c.pids_current}};
  if (c.pids_limit > 0) pids["limit"] = c.pids_limit;
  return {{"read", FormatTime(s.read_nano)},
          {"preread", FormatTime(preread_nano)},
          {"pids_stats", pids},
          {"blkio_stats", BlkioJson(s)},
          {"num_procs", 0},
          {"storage_stats", Json::object()},
          {"cpu_stats", CpuStatsJson(s)},
          {"precpu_stats", precpu.is_object() ? precpu : ZeroCpuStats()},
          {"memory_stats", memory},
          {"name", "/" + name},
          {"id", id},
          {"networks", Json::object()}};
}

Json EmptyStatsDocument(const std::string& id, const std::string& name) {
  return {{"read", FormatTime(0)},
          {"preread", FormatTime(0)},
          {"pids_stats", Json::object()},
          {"blkio_stats", EmptyBlkio()},
          {"num_procs", 0},
          {"storage_stats", Json::object()},
          {"cpu_stats", ZeroCpuStats()},
          {"precpu_stats", ZeroCpuStats()},
          {"memory_stats", Json::object()},
          {"name", "/" + name},
          {"id", id}};
}

Result<ContainerSpec> ApplyUpdate(const ContainerSpec& current, const Json& update) {
  if (!update.is_object())
    return Fail(ErrorKind::kInvalidArgument, "update: expected a JSON object");
  int64_t memory = 0, memory_swap = 0, memory_reservation = 0, nano_cpus = 0, cpu_shares = 0;
  int64_t cpu_period = 0, cpu_quota = 0, blkio_weight = 0;
  std::string cpuset_cpus, cpuset_mems;
  MOAT_TRY(GetInt(update, "Memory", &memory, "Memory"));
  MOAT_TRY(GetInt(update, "MemorySwap", &memory_swap, "MemorySwap"));
  MOAT_TRY(GetInt(update, "MemoryReservation", &memory_reservation, "MemoryReservation"));
  MOAT_TRY(GetInt(update, "NanoCpus", &nano_cpus, "NanoCpus"));
  MOAT_TRY(GetInt(update, "CpuShares", &cpu_shares, "CpuShares"));
  MOAT_TRY(GetInt(update, "CpuPeriod", &cpu_period, "CpuPeriod"));
  MOAT_TRY(GetInt(update, "CpuQuota", &cpu_quota, "CpuQuota"));
  MOAT_TRY(GetInt(update, "BlkioWeight", &blkio_weight, "BlkioWeight"));
  MOAT_TRY(GetString(update, "CpusetCpus", &cpuset_cpus, "CpusetCpus"));
  MOAT_TRY(GetString(update, "CpusetMems", &cpuset_mems, "CpusetMems"));

  ContainerSpec s = current;
  // NanoCpus is itself a period/quota pair: once one form is set the other cannot be added
  // (dockerd's messages).
  if (nano_cpus > 0 && s.cpu_period > 0) {
    return Fail(
        ErrorKind::kConflict,
        "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set");
  }
  if (nano_cpus > 0 && s.cpu_quota > 0) {
    return Fail(
        ErrorKind::kConflict,
        "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set");
  }
  if (cpu_period > 0 && s.nano_cpus > 0) {
    return Fail(
        ErrorKind::kConflict,
        "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set");
  }
  if (cpu_quota > 0 && s.nano_cpus > 0) {
    return Fail(
        ErrorKind::kConflict,
        "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set");
  }
  if (blkio_weight != 0) s.blkio_weight = blkio_weight;
  if (cpu_period != 0) s.cpu_period = cpu_period;
  if (cpu_quota != 0) s.cpu_quota = cpu_quota;
  if (cpu_shares != 0) s.cpu_shares = cpu_shares;
  if (nano_cpus != 0) s.nano_cpus = nano_cpus;
  if (!cpuset_cpus.empty()) s.cpuset_cpus = cpuset_cpus;
  if (!cpuset_mems.empty()) s.cpuset_mems = cpuset_mems;
  if (memory != 0) {
    // The memory+swap limit in force: explicit, or twice the memory limit (the default the
    // container got at create), or none.
    int64_t swap_in_force = s.memory_swap;
    if (swap_in_force == 0 && s.memory > 0) swap_in_force = s.memory * 2;
    if (memory_swap == 0 && swap_in_force > 0) {
      if (memory > swap_in_force) {
        return Fail(ErrorKind::kConflict,
                    "Memory limit should be smaller than already set memoryswap limit, update the "
                    "memoryswap at the same time");
      }
      // Keeps the derived limit what it was, as dockerd records it at create.
      s.memory_swap = swap_in_force;
    }
    s.memory = memory;
  }
  if (memory_swap != 0) s.memory_swap = memory_swap;
  if (memory_reservation != 0) s.memory_reservation = memory_reservation;
  if (update.contains("PidsLimit") && !update["PidsLimit"].is_null()) {
    int64_t pids = 0;
    MOAT_TRY(GetInt(update, "PidsLimit", &pids, "PidsLimit"));
    if (pids > 0) {
      s.pids_limit = pids;
    } else {
      s.pids_limit.reset();
    }
  }
  MOAT_ASSIGN_OR_RETURN(const Json* rp, GetObject(update, "RestartPolicy", "RestartPolicy"));
  if (rp) {
    std::string policy;
    int64_t max_retries = 0;
    MOAT_TRY(GetString(*rp, "Name", &policy, "RestartPolicy.Name"));
    MOAT_TRY(GetInt(*rp, "MaximumRetryCount", &max_retries, "RestartPolicy.MaximumRetryCount"));
    if (!policy.empty()) {
      if (s.auto_remove && policy != "no") {
        return Fail(
            ErrorKind::kInvalidArgument,
            "Restart policy cannot be updated because AutoRemove is enabled for the container");
      }
      s.restart_policy = policy;
      s.restart_max_retries = max_retries;
    }
  }
  MOAT_TRY(privsep::ValidateContainerSpec(s));
  return s;
}

Json UpdateResourcesJson(const ContainerSpec& before, const ContainerSpec& after) {
  Json res = Json::object();
  if (before.memory != after.memory || before.memory_swap != after.memory_swap ||
      before.memory_reservation != after.memory_reservation) {
    res["memory"] = MemoryResources(after);
  }
  Json cpu = Json::object();
  if (before.cpu_shares != after.cpu_shares) cpu["shares"] = after.cpu_shares;
  if (before.nano_cpus != after.nano_cpus && after.nano_cpus > 0) {
    cpu["period"] = 100000;
    cpu["quota"] = after.nano_cpus / 10000;
  }
  if (before.cpu_quota != after.cpu_quota)
    cpu["quota"] = after.cpu_quota > 0 ? after.cpu_quota : -1;
  if (before.cpu_period != after.cpu_period)
    cpu["period"] = after.cpu_period > 0 ? after.cpu_period : 100000;
  if (before.cpuset_cpus != after.cpuset_cpus) cpu["cpus"] = after.cpuset_cpus;
  if (before.cpuset_mems != after.cpuset_mems) cpu["mems"] = after.cpuset_mems;
  if (!cpu.empty()) res["cpu"] = cpu;
  if (before.pids_limit != after.pids_limit)
    res["pids"] = {{"limit", after.pids_limit.value_or(-1)}};
  if (before.blkio_weight != after.blkio_weight) res["blockIO"] = {{"weight", after.blkio_weight}};
  return res;
}

Result<Json> Containers::Stats(const std::string& ref) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  std::string id, name;
  int64_t started = 0;
  Json previous;
  auto running = [&] {
    std::lock_guard lock(mu_);
    return !c->removed && IsRunningStatus(c->status) && c->started_nano == started;
  };
  {
    std::lock_guard lock(mu_);
    id = c->id;
    name = c->name;
    started = c->started_nano;
    // Samples of removed containers go here rather than in Remove.
    for (auto it = last_stats_.begin(); it != last_stats_.end();) {
      it = by_id_.count(it->first) ? std::next(it) : last_stats_.erase(it);
    }
    if (c->removed || !IsRunningStatus(c->status)) return EmptyStatsDocument(id, name);
    // A sample of an earlier run counts from another cgroup's zero.
    if (auto it = last_stats_.find(id);
        it != last_stats_.end() && it->second.value("started", int64_t{0}) == started) {
      previous = it->second;
    }
  }
  std::string state_path = paths_.exec_root + "/runtime/" + id + "/state.json";
  auto sample = TakeSample(state_path);
  if (!sample) {
    if (!running()) return EmptyStatsDocument(id, name);
    return Fail(std::move(sample).Context("stats of container %s", id.c_str()).error());
  }
  if (previous.is_null()) {
    // No earlier sample to compute a CPU percentage against: take a second one a second
    // later, as dockerd does for a one-shot request.
    previous = {{"read", sample->read_nano}, {"cpu_stats", CpuStatsJson(*sample)}};
    std::this_thread::sleep_for(std::chrono::seconds(1));
    sample = TakeSample(state_path);
    if (!sample) {
      if (!running()) return EmptyStatsDocument(id, name);
      return Fail(std::move(sample).Context("stats of container %s", id.c_str()).error());
    }
  }
  uint64_t mem_total = MemTotalFromMeminfo(sys::ReadFile("/proc/meminfo").value_or(""));
  Json doc = StatsDocument(id, name, *sample, previous["cpu_stats"],
                           previous.value("read", int64_t{0}), mem_total);
  {
    std::lock_guard lock(mu_);
    if (!c->removed) {
      last_stats_[id] = {
          {"read", sample->read_nano}, {"cpu_stats", doc["cpu_stats"]}, {"started", started}};
    }
  }
  return doc;
}

Result<Json> Containers::Update(const std::string& ref, const Json& resources) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  // Serialised with start, stop and remove: the spec recorded and the cgroup agree.
  std::lock_guard op(c->op_mu);
  ContainerSpec before;
  std::string id;
  bool live = false;
  {
    std::lock_guard lock(mu_);
    if (c->removed) return Fail(ErrorKind::kNotFound, "No such container: %s", ref.c_str());
    before = c->spec;
    id = c->id;
    live = IsRunningStatus(c->status);
  }
  auto after = ApplyUpdate(before, resources);
  if (!after)
    return Fail(std::move(after).Context("Cannot update container %s", id.c_str()).error());
  Json oci = UpdateResourcesJson(before, *after);
  if (live && !oci.empty()) {
    auto applied = RunTool({paths_.runtime_binary, "--root", paths_.exec_root + "/runtime",
                                 "update", "--resources", "-", id},
                                Dump(oci));
    if (!applied) {
      std::lock_guard lock(mu_);
      // It stopped meanwhile: the new values take effect at the next start.
      if (IsRunningStatus(c->status)) {
        return Fail(std::move(applied).Context("Cannot update container %s", id.c_str()).error());
      }
    }
  }
  {
    std::lock_guard lock(mu_);
    if (c->removed) return Fail(ErrorKind::kNotFound, "No such container: %s", ref.c_str());
    c->spec = *after;
    MOAT_TRY(Persist(*c).Context("Cannot update container %s", id.c_str()));
  }
  return Json{{"Warnings", Json::array()}};
}

}  // namespace moat::daemon::core
