#include "cgroups/resources.h"

#include <algorithm>
#include <cinttypes>
#include <limits>
#include <utility>

#include "base/strings.h"

namespace moat::cgroups {

namespace {

using Writes = std::vector<CgroupWrite>;

constexpr uint64_t kInfinite = std::numeric_limits<uint64_t>::max();

std::string Num(int64_t v) { return StrFormat("%" PRId64, v); }
std::string Num(uint64_t v) { return StrFormat("%" PRIu64, v); }

// A limit to compare with: -1 (and v1's near-INT64_MAX "unlimited") become kInfinite.
uint64_t AsBound(int64_t v) { return v < 0 ? kInfinite : static_cast<uint64_t>(v); }

// A current value read from a file: "max", "-1" and v1's near-2^63 "unlimited" are kInfinite;
// an absent or unparsable value is unknown (nullopt), and each caller picks its safe default.
std::optional<uint64_t> CurrentBound(const CgroupState& state, const std::string& file) {
  auto it = state.current.find(file);
  if (it == state.current.end()) return std::nullopt;
  if (it->second == "max" || it->second == "-1") return kInfinite;
  auto v = ParseUint64(it->second);
  if (!v) return std::nullopt;
  // v1 reports "unlimited" as PAGE_COUNTER_MAX pages in bytes (9223372036854771712 with 4 KiB
  // pages); anything in the top quarter of the range is unlimited for our purposes.
  if (*v >= (uint64_t{1} << 62)) return kInfinite;
  return *v;
}

class Planner {
 public:
  explicit Planner(const CgroupState& state) : state_(state) {}

  Result<void> Need(const char* controller, const char* what) const {
    if (state_.controllers.count(controller)) return Ok();
    return Fail(ErrorKind::kUnsupported,
                "%s requested but the %s cgroup controller is not available", what, controller);
  }
  bool Has(const std::string& file) const { return state_.files.count(file) > 0; }
  const CgroupState& state() const { return state_; }

  void Add(const char* controller, std::string file, std::string value) {
    writes_.push_back({controller, std::move(file), std::move(value)});
  }
  Writes Take() { return std::move(writes_); }

 private:
  const CgroupState& state_;
  Writes writes_;
};

Result<void> CheckLimit(const char* what, const std::optional<int64_t>& v) {
  if (v && *v < -1)
    return Fail(ErrorKind::kInvalidArgument, "%s: invalid value %" PRId64 " (use -1 for unlimited)",
                what, *v);
  return Ok();
}

Result<void> CheckBeforeUpdate(const Planner& p, const oci::MemoryResources& m,
                               const char* usage_file) {
  if (!m.check_before_update.value_or(false) || !m.limit || *m.limit < 0) return Ok();
  auto usage = CurrentBound(p.state(), usage_file);
  if (usage && *usage != kInfinite && static_cast<uint64_t>(*m.limit) < *usage)
    return Fail(ErrorKind::kInvalidArgument,
                "memory limit %" PRId64 " is below the current usage %" PRIu64
                " (checkBeforeUpdate)",
                *m.limit, *usage);
  return Ok();
}

// --- cgroup v1 --------------------------------------------------------------------------

Result<void> PlanMemoryV1(const oci::MemoryResources& m, Planner& p) {
  bool any =
      m.limit || m.reservation || m.swap || m.swappiness || m.disable_oom_killer || m.kernel_tcp;
  if (!any) return Ok();
  MOAT_TRY(p.Need("memory", "linux.resources.memory"));
  MOAT_TRY(CheckLimit("memory limit", m.limit));
  MOAT_TRY(CheckLimit("memory reservation", m.reservation));
  MOAT_TRY(CheckLimit("memory swap", m.swap));
  MOAT_TRY(CheckBeforeUpdate(p, m, "memory.usage_in_bytes"));

  const std::string kLimit = "memory.limit_in_bytes";
  const std::string kMemsw = "memory.memsw.limit_in_bytes";
  std::optional<int64_t> swap = m.swap;
  // "Memory unlimited, swap unset" means both unlimited (as runc): otherwise lifting the memory
  // limit would fail against an older, finite memory+swap limit.
  if (!swap && m.limit && *m.limit == -1 && p.Has(kMemsw)) swap = -1;

  if (swap && !p.Has(kMemsw)) {
    // Without swap accounting, memory+swap == memory is the only enforceable request.
    if (*swap != -1 && (!m.limit || *swap != *m.limit))
      return Fail(ErrorKind::kUnsupported,
                  "memory swap limit %" PRId64
                  " requested but the kernel has no swap accounting (no %s)",
                  *swap, kMemsw.c_str());
    swap.reset();
  }
  if (swap && m.limit && AsBound(*swap) < AsBound(*m.limit))
    return Fail(ErrorKind::kInvalidArgument,
                "memory+swap limit %" PRId64 " is below the memory limit %" PRId64, *swap,
                *m.limit);

  if (m.limit && swap) {
    // The kernel refuses memory.limit_in_bytes > memory.memsw.limit_in_bytes at every step.
    // Writing memsw first leaves (old limit, new memsw), valid iff new memsw >= old limit;
    // otherwise write the limit first, leaving (new limit, old memsw), valid because then
    // new limit <= new memsw < old limit <= old memsw. Without the current limit, decide from
    // the current memsw (limit first is valid iff new limit <= old memsw); without either,
    // assume both unlimited (a new cgroup).
    auto old_limit = CurrentBound(p.state(), kLimit);
    auto old_memsw = CurrentBound(p.state(), kMemsw);
    bool memsw_first = old_limit   ? AsBound(*swap) >= *old_limit
                       : old_memsw ? AsBound(*m.limit) > *old_memsw
                                   : AsBound(*swap) == kInfinite;
    if (memsw_first) {
      p.Add("memory", kMemsw, Num(*swap));
      p.Add("memory", kLimit, Num(*m.limit));
    } else {
      p.Add("memory", kLimit, Num(*m.limit));
      p.Add("memory", kMemsw, Num(*swap));
    }
  } else if (m.limit) {
    p.Add("memory", kLimit, Num(*m.limit));
  } else if (swap) {
    p.Add("memory", kMemsw, Num(*swap));
  }
  if (m.reservation) p.Add("memory", "memory.soft_limit_in_bytes", Num(*m.reservation));
  if (m.swappiness) {
    if (*m.swappiness > 100)
      return Fail(ErrorKind::kInvalidArgument,
                  "memory swappiness %" PRIu64 " is out of range (0..100)", *m.swappiness);
    p.Add("memory", "memory.swappiness", Num(*m.swappiness));
  }
  if (m.disable_oom_killer)
    p.Add("memory", "memory.oom_control", *m.disable_oom_killer ? "1" : "0");
  // linux.resources.memory.kernel is deprecated by the runtime-spec and Linux 5.16+ no longer
  // enforces memory.kmem.limit_in_bytes, so it is ignored (as runc and crun do). kernelTCP is
  // still a v1 knob. useHierarchy is always on since Linux 5.x (writing 0 fails): ignored.
  if (m.kernel_tcp) p.Add("memory", "memory.kmem.tcp.limit_in_bytes", Num(*m.kernel_tcp));
  return Ok();
}

// Orders two writes whose pair must satisfy a kernel check at every step. `first_a` says
// whether writing a first is the safer intermediate state.
void AddPair(Planner& p, const char* controller, CgroupWrite a, CgroupWrite b, bool first_a) {
  if (!first_a) std::swap(a, b);
  p.Add(controller, std::move(a.file), std::move(a.value));
  p.Add(controller, std::move(b.file), std::move(b.value));
}

Result<void> PlanCpuV1(const oci::CpuResources& c, Planner& p) {
  bool cpu_any = c.shares || c.quota || c.period || c.burst || c.realtime_runtime ||
                 c.realtime_period || c.idle;
  if (cpu_any) MOAT_TRY(p.Need("cpu", "linux.resources.cpu"));
  if (c.shares) p.Add("cpu", "cpu.shares", Num(*c.shares));
  if (c.quota || c.period) {
    std::string quota = c.quota ? Num(*c.quota > 0 ? *c.quota : int64_t{-1}) : "";
    std::string period = c.period ? Num(*c.period) : "";
    if (c.quota && c.period) {
      // Each file is checked on its own against the parent's and children's bandwidth
      // (quota/period). Pick the intermediate state with the smaller bandwidth:
      // quota first gives new_quota/old_period, period first gives old_quota/new_period.
      // Compare new_quota*new_period with old_quota*old_period (cross-multiplied).
      auto old_quota = CurrentBound(p.state(), "cpu.cfs_quota_us");
      auto old_period = CurrentBound(p.state(), "cpu.cfs_period_us");
      bool quota_first = false;
      if (old_quota && old_period) {
        uint64_t new_q = *c.quota > 0 ? static_cast<uint64_t>(*c.quota) : kInfinite;
        if (new_q == kInfinite) {
          quota_first = false;
        } else if (*old_quota == kInfinite) {
          quota_first = true;
        } else {
          unsigned __int128 lhs = static_cast<unsigned __int128>(new_q) * *c.period;
          unsigned __int128 rhs = static_cast<unsigned __int128>(*old_quota) * *old_period;
          quota_first = lhs <= rhs;
        }
      }
      AddPair(p, "cpu", {"cpu", "cpu.cfs_quota_us", quota}, {"cpu", "cpu.cfs_period_us", period},
              quota_first);
    } else if (c.quota) {
      p.Add("cpu", "cpu.cfs_quota_us", quota);
    } else {
      p.Add("cpu", "cpu.cfs_period_us", period);
    }
  }
  if (c.burst) p.Add("cpu", "cpu.cfs_burst_us", Num(*c.burst));
  if (c.realtime_runtime || c.realtime_period) {
    std::string runtime = c.realtime_runtime ? Num(*c.realtime_runtime) : "";
    std::string period = c.realtime_period ? Num(*c.realtime_period) : "";
    if (c.realtime_runtime && c.realtime_period) {
      // The kernel refuses rt_runtime > rt_period. Period first unless the current runtime
      // exceeds the new period.
      auto old_runtime = CurrentBound(p.state(), "cpu.rt_runtime_us");
      bool runtime_first =
          old_runtime && *old_runtime != kInfinite && *old_runtime > *c.realtime_period;
      AddPair(p, "cpu", {"cpu", "cpu.rt_runtime_us", runtime}, {"cpu", "cpu.rt_period_us", period},
              runtime_first);
    } else if (c.realtime_runtime) {
      p.Add("cpu", "cpu.rt_runtime_us", runtime);
    } else {
      p.Add("cpu", "cpu.rt_period_us", period);
    }
  }
  if (c.idle) p.Add("cpu", "cpu.idle", Num(*c.idle));
  if (!c.cpus.empty() || !c.mems.empty()) {
    MOAT_TRY(p.Need("cpuset", "linux.resources.cpu.cpus/mems"));
    if (!c.cpus.empty()) p.Add("cpuset", "cpuset.cpus", c.cpus);
    if (!c.mems.empty()) p.Add("cpuset", "cpuset.mems", c.mems);
  }
  return Ok();
}

std::string PidsMax(int64_t limit) { return limit <= 0 ? "max" : Num(limit); }

Result<std::string> DeviceNumbers(int64_t major, int64_t minor) {
  if (major < 0 || minor < 0)
    return Fail(ErrorKind::kInvalidArgument, "block device %" PRId64 ":%" PRId64 " is invalid",
                major, minor);
  return StrFormat("%" PRId64 ":%" PRId64, major, minor);
}

Result<void> PlanBlockIoV1(const oci::BlockIoResources& b, Planner& p) {
  bool any = b.weight || b.leaf_weight || !b.weight_device.empty() ||
             !b.throttle_read_bps_device.empty() || !b.throttle_write_bps_device.empty() ||
             !b.throttle_read_iops_device.empty() || !b.throttle_write_iops_device.empty();
  if (!any) return Ok();
  MOAT_TRY(p.Need("blkio", "linux.resources.blockIO"));
  // CFQ's blkio.weight is gone since Linux 5.0; BFQ exposes blkio.bfq.weight (same range).
  std::string weight_file = p.Has("blkio.weight") ? "blkio.weight" : "blkio.bfq.weight";
  std::string weight_device_file =
      p.Has("blkio.weight_device") ? "blkio.weight_device" : "blkio.bfq.weight_device";
  if (b.weight) {
    if (!p.Has(weight_file))
      return Fail(ErrorKind::kUnsupported,
                  "blkio weight requested but neither blkio.weight nor blkio.bfq.weight exists "
                  "(no CFQ or BFQ scheduler)");
    p.Add("blkio", weight_file, Num(uint64_t{*b.weight}));
  }
  if (b.leaf_weight) p.Add("blkio", "blkio.leaf_weight", Num(uint64_t{*b.leaf_weight}));
  for (const auto& d : b.weight_device) {
    MOAT_ASSIGN_OR_RETURN(std::string dev, DeviceNumbers(d.major, d.minor));
    if (d.weight) {
      if (!p.Has(weight_device_file))
        return Fail(ErrorKind::kUnsupported,
                    "blkio weight_device requested but neither blkio.weight_device nor "
                    "blkio.bfq.weight_device exists");
      p.Add("blkio", weight_device_file, dev + " " + Num(uint64_t{*d.weight}));
    }
    if (d.leaf_weight)
      p.Add("blkio", "blkio.leaf_weight_device", dev + " " + Num(uint64_t{*d.leaf_weight}));
  }
  const std::pair<const char*, const std::vector<oci::ThrottleDevice>*> throttles[] = {
      {"blkio.throttle.read_bps_device", &b.throttle_read_bps_device},
      {"blkio.throttle.write_bps_device", &b.throttle_write_bps_device},
      {"blkio.throttle.read_iops_device", &b.throttle_read_iops_device},
      {"blkio.throttle.write_iops_device", &b.throttle_write_iops_device},
  };
  // One write per line: the kernel parses a single "maj:min rate" per write(2).
  for (const auto& [file, list] : throttles) {
    for (const auto& t : *list) {
      MOAT_ASSIGN_OR_RETURN(std::string dev, DeviceNumbers(t.major, t.minor));
      p.Add("blkio", file, dev + " " + Num(t.rate));
    }
  }
  return Ok();
}

Result<void> CheckHugepage(const oci::HugepageLimit& h) {
  if (!IsValidHugepageSize(h.page_size))
    return Fail(ErrorKind::kInvalidArgument, "hugepage size \"%s\" is invalid (want e.g. 2MB)",
                h.page_size.c_str());
  return Ok();
}

Result<void> PlanNetworkV1(const oci::Resources& r, Planner& p) {
  if (r.network_class_id) {
    MOAT_TRY(p.Need("net_cls", "linux.resources.network.classID"));
    p.Add("net_cls", "net_cls.classid", Num(uint64_t{*r.network_class_id}));
  }
  if (!r.network_priorities.empty()) {
    MOAT_TRY(p.Need("net_prio", "linux.resources.network.priorities"));
    for (const auto& np : r.network_priorities) {
      bool bad = np.name.empty() || np.name.size() >= 16 ||
                 np.name.find_first_of(" \t\n/") != std::string::npos;
      if (bad)
        return Fail(ErrorKind::kInvalidArgument, "network interface name \"%s\" is invalid",
                    np.name.c_str());
      p.Add("net_prio", "net_prio.ifpriomap", np.name + " " + Num(uint64_t{np.priority}));
    }
  }
  return Ok();
}

Result<void> PlanDevicesV1(const std::vector<oci::DeviceCgroupRule>& rules, Planner& p) {
  if (rules.empty()) return Ok();
  MOAT_TRY(p.Need("devices", "linux.resources.devices"));
  // Writing "a" to devices.deny empties the exception list and makes the default deny; the
  // rules then rebuild it in order, as the kernel applies each write on top of the last.
  // TODO(#cgroups-v1-devices): on `update` of a running container this briefly denies every
  // device; diff against devices.list instead.
  std::vector<std::pair<bool, std::string>> lines;
  for (const auto& rule : rules) {
    MOAT_ASSIGN_OR_RETURN(auto rule_lines, DeviceRuleV1(rule));
    for (auto& l : rule_lines) lines.emplace_back(rule.allow, std::move(l));
  }
  p.Add("devices", "devices.deny", "a");
  for (auto& [allow, line] : lines)
    p.Add("devices", allow ? "devices.allow" : "devices.deny", std::move(line));
  return Ok();
}

// --- cgroup v2 --------------------------------------------------------------------------

Result<std::string> V2Max(const char* what, int64_t v) {
  MOAT_TRY(CheckLimit(what, v));
  return v == -1 ? std::string("max") : Num(v);
}

Result<void> PlanMemoryV2(const oci::MemoryResources& m, Planner& p) {
  bool any = m.limit || m.reservation || m.swap || m.swappiness || m.disable_oom_killer ||
             m.kernel_tcp || m.kernel;
  if (!any) return Ok();
  MOAT_TRY(p.Need("memory", "linux.resources.memory"));
  MOAT_TRY(CheckBeforeUpdate(p, m, "memory.current"));
  if (m.limit) {
    MOAT_ASSIGN_OR_RETURN(std::string v, V2Max("memory limit", *m.limit));
    p.Add("memory", "memory.max", v);
  }
  // v2 keeps swap separate from memory: memory.swap.max = (memory+swap) - memory.
  std::optional<std::string> swap_max;
  if (m.swap) {
    MOAT_TRY(CheckLimit("memory swap", m.swap));
    if (*m.swap == -1) {
      swap_max = "max";
    } else {
      if (!m.limit || *m.limit < 0)
        return Fail(ErrorKind::kInvalidArgument,
                    "memory swap limit %" PRId64 " requires a finite memory limit", *m.swap);
      if (*m.swap < *m.limit)
        return Fail(ErrorKind::kInvalidArgument,
                    "memory+swap limit %" PRId64 " is below the memory limit %" PRId64, *m.swap,
                    *m.limit);
      swap_max = Num(*m.swap - *m.limit);
    }
  } else if (m.limit && *m.limit == -1) {
    swap_max = "max";  // as on v1: memory unlimited with swap unset lifts both
  }
  if (swap_max) {
    if (p.Has("memory.swap.max")) {
      p.Add("memory", "memory.swap.max", *swap_max);
    } else if (*swap_max != "max" && *swap_max != "0") {
      return Fail(ErrorKind::kUnsupported,
                  "memory swap limit requested but the kernel has no swap accounting "
                  "(no memory.swap.max)");
    }
  }
  if (m.reservation) {
    MOAT_ASSIGN_OR_RETURN(std::string v, V2Max("memory reservation", *m.reservation));
    p.Add("memory", "memory.low", v);
  }
  // An OOM kill takes the whole container, not one random process of it (as crun); a unified
  // "memory.oom.group" entry, written later, overrides this.
  if (p.Has("memory.oom.group")) p.Add("memory", "memory.oom.group", "1");
  // swappiness, disableOOMKiller, kernel and kernelTCP have no v2 equivalent; runc and crun
  // ignore them too.
  return Ok();
}

Result<void> PlanCpuV2(const oci::CpuResources& c, Planner& p) {
  if ((c.realtime_runtime && *c.realtime_runtime != 0) ||
      (c.realtime_period && *c.realtime_period != 0))
    return Fail(ErrorKind::kUnsupported,
                "linux.resources.cpu.realtimeRuntime/realtimePeriod are not supported on cgroup "
                "v2");
  bool cpu_any = c.shares || c.quota || c.period || c.burst || c.idle;
  if (cpu_any) MOAT_TRY(p.Need("cpu", "linux.resources.cpu"));
  if (c.shares) p.Add("cpu", "cpu.weight", Num(SharesToWeight(*c.shares)));
  if (c.quota || c.period) {
    // cpu.max is "$QUOTA $PERIOD" in one write; "$QUOTA" alone keeps the period. With only a
    // period, keep the current quota.
    std::string quota;
    if (c.quota) {
      quota = *c.quota > 0 ? Num(*c.quota) : "max";
    } else {
      auto it = p.state().current.find("cpu.max");
      quota = it != p.state().current.end() && !it->second.empty() ? StrSplit(it->second, ' ')[0]
                                                                   : "max";
    }
    p.Add("cpu", "cpu.max", c.period ? quota + " " + Num(*c.period) : quota);
  }
  if (c.burst) p.Add("cpu", "cpu.max.burst", Num(*c.burst));
  if (c.idle) p.Add("cpu", "cpu.idle", Num(*c.idle));
  if (!c.cpus.empty() || !c.mems.empty()) {
    MOAT_TRY(p.Need("cpuset", "linux.resources.cpu.cpus/mems"));
    if (!c.cpus.empty()) p.Add("cpuset", "cpuset.cpus", c.cpus);
    if (!c.mems.empty()) p.Add("cpuset", "cpuset.mems", c.mems);
  }
  return Ok();
}

Result<void> PlanIoV2(const oci::BlockIoResources& b, Planner& p) {
  bool any = b.weight || !b.weight_device.empty() || !b.throttle_read_bps_device.empty() ||
             !b.throttle_write_bps_device.empty() || !b.throttle_read_iops_device.empty() ||
             !b.throttle_write_iops_device.empty();
  // leafWeight has no v2 equivalent (it was CFQ-only): ignored, as runc and crun do.
  if (!any) return Ok();
  MOAT_TRY(p.Need("io", "linux.resources.blockIO"));
  // io.weight (iocost, 1..10000) when present, else BFQ's io.bfq.weight, whose 1..1000 range
  // takes the blkio weight unconverted.
  bool iocost = p.Has("io.weight");
  if ((b.weight || !b.weight_device.empty()) && !iocost && !p.Has("io.bfq.weight"))
    return Fail(ErrorKind::kUnsupported,
                "blkio weight requested but neither io.weight nor io.bfq.weight exists");
  const char* weight_file = iocost ? "io.weight" : "io.bfq.weight";
  auto weight = [&](uint16_t w) { return iocost ? BlkioWeightToIoWeight(w) : uint64_t{w}; };
  if (b.weight) p.Add("io", weight_file, Num(weight(*b.weight)));
  for (const auto& d : b.weight_device) {
    MOAT_ASSIGN_OR_RETURN(std::string dev, DeviceNumbers(d.major, d.minor));
    if (d.weight) p.Add("io", weight_file, dev + " " + Num(weight(*d.weight)));
  }
  // io.max takes every limit of one device in one line; a rate of 0 means "no limit" in the
  // spec (as for v1's throttle files), which v2 spells "max".
  std::vector<std::pair<std::string, std::vector<std::string>>> devices;
  auto add = [&](const std::vector<oci::ThrottleDevice>& list, const char* key) -> Result<void> {
    for (const auto& t : list) {
      MOAT_ASSIGN_OR_RETURN(std::string dev, DeviceNumbers(t.major, t.minor));
      auto it = std::find_if(devices.begin(), devices.end(),
                             [&](const auto& e) { return e.first == dev; });
      if (it == devices.end()) it = devices.insert(devices.end(), {dev, {}});
      it->second.push_back(StrFormat("%s=%s", key, t.rate ? Num(t.rate).c_str() : "max"));
    }
    return Ok();
  };
  MOAT_TRY(add(b.throttle_read_bps_device, "rbps"));
  MOAT_TRY(add(b.throttle_write_bps_device, "wbps"));
  MOAT_TRY(add(b.throttle_read_iops_device, "riops"));
  MOAT_TRY(add(b.throttle_write_iops_device, "wiops"));
  for (const auto& [dev, keys] : devices) p.Add("io", "io.max", dev + " " + StrJoin(keys, " "));
  return Ok();
}

bool IsV2Controller(const std::string& name) {
  static constexpr const char* kControllers[] = {"cpu",     "cpuset", "io",   "memory",
                                                 "hugetlb", "pids",   "rdma", "misc"};
  for (const char* c : kControllers)
    if (name == c) return true;
  return false;
}

}  // namespace

uint64_t SharesToWeight(uint64_t shares) {
  // Maps v1's 2..262144 linearly onto v2's 1..10000.
  uint64_t s = std::clamp<uint64_t>(shares, 2, 262144);
  return std::clamp<uint64_t>(1 + ((s - 2) * 9999) / 262142, 1, 10000);
}

uint64_t BlkioWeightToIoWeight(uint64_t weight) {
  // Maps v1's 10..1000 linearly onto v2's 1..10000.
  uint64_t w = std::clamp<uint64_t>(weight, 10, 1000);
  return std::clamp<uint64_t>(1 + ((w - 10) * 9999) / 990, 1, 10000);
}

bool IsValidHugepageSize(const std::string& size) {
  // <digits><K|M|G>B, as the kernel names hugetlb.<size>.* files.
  if (size.size() < 3 || size.size() > 16) return false;
  size_t n = size.size();
  if (size[n - 1] != 'B' || (size[n - 2] != 'K' && size[n - 2] != 'M' && size[n - 2] != 'G'))
    return false;
  for (size_t i = 0; i + 2 < n; ++i)
    if (size[i] < '0' || size[i] > '9') return false;
  return true;
}

Result<void> ValidateUnifiedKey(const std::string& key) {
  bool bad = key.empty() || key == "." || key == ".." ||
             key.find_first_of(std::string("/\n\0", 3)) != std::string::npos;
  if (bad)
    return Fail(ErrorKind::kInvalidArgument,
                "linux.resources.unified key \"%s\" is not a cgroup file name", key.c_str());
  return Ok();
}

Result<DeviceRule> NormalizeDeviceRule(const oci::DeviceCgroupRule& rule) {
  DeviceRule out;
  out.allow = rule.allow;
  if (rule.type.empty() || rule.type == "a") {
    out.type = 'a';
  } else if (rule.type == "c" || rule.type == "b") {
    out.type = rule.type[0];
  } else {
    return Fail(ErrorKind::kInvalidArgument, "device rule type \"%s\" is invalid (want a, c or b)",
                rule.type.c_str());
  }
  auto number = [](const char* what, const std::optional<int64_t>& v) -> Result<int64_t> {
    if (!v || *v == -1) return int64_t{-1};
    if (*v < 0 || *v > 0x7fffffff)
      return Fail(ErrorKind::kInvalidArgument, "device rule %s %" PRId64 " is out of range", what,
                  *v);
    return *v;
  };
  MOAT_ASSIGN_OR_RETURN(out.major, number("major", rule.major));
  MOAT_ASSIGN_OR_RETURN(out.minor, number("minor", rule.minor));
  if (rule.access.empty()) {
    out.access = DeviceRule::kAll;
  } else {
    out.access = 0;
    for (char ch : rule.access) {
      switch (ch) {
        case 'r':
          out.access |= DeviceRule::kRead;
          break;
        case 'w':
          out.access |= DeviceRule::kWrite;
          break;
        case 'm':
          out.access |= DeviceRule::kMknod;
          break;
        default:
          return Fail(ErrorKind::kInvalidArgument,
                      "device rule access \"%s\" is invalid (want a subset of rwm)",
                      rule.access.c_str());
      }
    }
  }
  return out;
}

Result<std::vector<std::string>> DeviceRuleV1(const oci::DeviceCgroupRule& rule) {
  MOAT_ASSIGN_OR_RETURN(DeviceRule r, NormalizeDeviceRule(rule));
  if (r.type == 'a' && r.major == -1 && r.minor == -1 && r.access == DeviceRule::kAll)
    return std::vector<std::string>{"a"};
  std::string numbers = StrFormat("%s:%s", r.major == -1 ? "*" : Num(r.major).c_str(),
                                  r.minor == -1 ? "*" : Num(r.minor).c_str());
  std::string access;
  if (r.access & DeviceRule::kRead) access += 'r';
  if (r.access & DeviceRule::kWrite) access += 'w';
  if (r.access & DeviceRule::kMknod) access += 'm';
  std::vector<std::string> out;
  // The kernel reads any line starting with "a" as "all devices, all access", so a type-a rule
  // that is narrower is spelled once per device type.
  for (char t : r.type == 'a' ? std::string("cb") : std::string(1, r.type))
    out.push_back(StrFormat("%c %s %s", t, numbers.c_str(), access.c_str()));
  return out;
}

std::vector<CgroupFile> FilesReadForPlanV1() {
  return {{"memory", "memory.limit_in_bytes"}, {"memory", "memory.memsw.limit_in_bytes"},
          {"memory", "memory.usage_in_bytes"}, {"cpu", "cpu.cfs_quota_us"},
          {"cpu", "cpu.cfs_period_us"},        {"cpu", "cpu.rt_runtime_us"}};
}

std::vector<CgroupFile> FilesReadForPlanV2() {
  return {{"cpu", "cpu.max"}, {"memory", "memory.current"}};
}

Result<std::vector<CgroupWrite>> PlanV1(const oci::Resources& r, const CgroupState& state) {
  if (!r.unified.empty())
    return Fail(ErrorKind::kInvalidArgument, "linux.resources.unified requires cgroup v2");
  Planner p(state);
  if (r.memory) MOAT_TRY(PlanMemoryV1(*r.memory, p));
  if (r.cpu) MOAT_TRY(PlanCpuV1(*r.cpu, p));
  if (r.pids_limit) {
    MOAT_TRY(p.Need("pids", "linux.resources.pids"));
    p.Add("pids", "pids.max", PidsMax(*r.pids_limit));
  }
  if (r.block_io) MOAT_TRY(PlanBlockIoV1(*r.block_io, p));
  if (!r.hugepage_limits.empty()) {
    MOAT_TRY(p.Need("hugetlb", "linux.resources.hugepageLimits"));
    for (const auto& h : r.hugepage_limits) {
      MOAT_TRY(CheckHugepage(h));
      p.Add("hugetlb", "hugetlb." + h.page_size + ".limit_in_bytes", Num(h.limit));
    }
  }
  MOAT_TRY(PlanNetworkV1(r, p));
  MOAT_TRY(PlanDevicesV1(r.devices, p));
  return p.Take();
}

Result<std::vector<CgroupWrite>> PlanV2(const oci::Resources& r, const CgroupState& state) {
  Planner p(state);
  if (r.memory) MOAT_TRY(PlanMemoryV2(*r.memory, p));
  if (r.cpu) MOAT_TRY(PlanCpuV2(*r.cpu, p));
  if (r.pids_limit) {
    MOAT_TRY(p.Need("pids", "linux.resources.pids"));
    p.Add("pids", "pids.max", PidsMax(*r.pids_limit));
  }
  if (r.block_io) MOAT_TRY(PlanIoV2(*r.block_io, p));
  if (!r.hugepage_limits.empty()) {
    MOAT_TRY(p.Need("hugetlb", "linux.resources.hugepageLimits"));
    for (const auto& h : r.hugepage_limits) {
      MOAT_TRY(CheckHugepage(h));
      p.Add("hugetlb", "hugetlb." + h.page_size + ".max", Num(h.limit));
    }
  }
  if (r.network_class_id || !r.network_priorities.empty())
    return Fail(ErrorKind::kUnsupported,
                "linux.resources.network (net_cls/net_prio) is not supported on cgroup v2");
  for (const auto& [key, value] : r.unified) {
    MOAT_TRY(ValidateUnifiedKey(key));
    // "memory.high" belongs to the memory controller: say so when it is not enabled, rather
    // than failing later with ENOENT. Core files ("cgroup.*", "irq.pressure") have none.
    std::string controller = key.substr(0, key.find('.'));
    if (!IsV2Controller(controller)) controller.clear();
    if (!controller.empty() && !state.controllers.count(controller))
      return Fail(ErrorKind::kUnsupported,
                  "linux.resources.unified key \"%s\": the %s controller is not enabled for the "
                  "cgroup",
                  key.c_str(), controller.c_str());
    p.Add(controller.c_str(), key, value);
  }
  return p.Take();
}

}  // namespace moat::cgroups
