#pragma once

// The pure halves of container stats and live updates (container_stats.cc): turning cgroup
// statistics into Docker's stats document, and a Docker update request into a new container
// spec plus the OCI linux.resources that `moat-runtime update` applies. No file system access:
// the callers read /proc and the cgroup files and pass the contents in.

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "cgroups/manager.h"
#include "daemon/common/json.h"
#include "daemon/privsep/commands.h"

namespace moat::daemon::core {

// One reading of a container's counters.
struct StatsSample {
  int64_t read_nano = 0;  // wall-clock time of the reading (ns since the epoch)
  cgroups::Version version = cgroups::Version::kV2;
  cgroups::Stats cgroup;
  uint64_t system_cpu_ns = 0;  // the host's total CPU time (all CPUs, all states), ns
  uint32_t online_cpus = 0;
};

// The host's total CPU time in ns from /proc/stat's first ("cpu ") line: the sum of user, nice,
// system, idle, iowait, irq, softirq and steal (as dockerd sums them), in USER_HZ ticks scaled
// by 1e9 / `clock_ticks`. kInvalidArgument when the line is missing or malformed, or
// clock_ticks <= 0.
Result<uint64_t> SystemCpuNsFromProcStat(std::string_view proc_stat, long clock_ticks);

// MemTotal from /proc/meminfo in bytes; 0 when absent or malformed.
uint64_t MemTotalFromMeminfo(std::string_view meminfo);

// Docker's cpu_stats object: cpu_usage {total_usage, percpu_usage (v1 only), usage_in_kernelmode,
// usage_in_usermode}, system_cpu_usage, online_cpus, throttling_data.
Json CpuStatsJson(const StatsSample& sample);

// Docker's stats document (ContainerStatsResponse) for a running container: `name` without the
// leading "/" (it is added), `precpu` the cpu_stats object of the previous sample (or null for
// none: zeros, as dockerd's first frame), `preread_nano` its time (0: none). The memory limit
// is the cgroup's, or `mem_total` when unlimited or above it (dockerd's machine memory clamp).
// blkio ops are "Read"/"Write" on v1 and "read"/"write" on v2, as dockerd reports them.
Json StatsDocument(const std::string& id, const std::string& name, const StatsSample& sample,
                   const Json& precpu, int64_t preread_nano, uint64_t mem_total);

// The document dockerd returns for a container that is not running: zero times and counters,
// with name and id.
Json EmptyStatsDocument(const std::string& id, const std::string& name);

// Applies Docker's UpdateConfig `update` (as the front forwards it: Memory, MemorySwap,
// MemoryReservation, NanoCpus, CpuShares, CpuPeriod, CpuQuota, CpusetCpus, CpusetMems,
// PidsLimit, BlkioWeight, RestartPolicy) to a copy of `current`, with dockerd's rules: a zero or
// empty value leaves the field alone; PidsLimit <= 0 lifts the limit; a memory limit above the
// current memory+swap limit needs MemorySwap too (a derived swap limit, twice the old memory,
// is written out so that it stays what it was); Nano CPUs cannot be combined with an existing
// CPU period/quota and vice versa; a restart policy cannot be set on an AutoRemove container.
// The result is checked with privsep::ValidateContainerSpec. kInvalidArgument / kConflict with
// dockerd's messages.
Result<privsep::ContainerSpec> ApplyUpdate(const privsep::ContainerSpec& current,
                                           const Json& update);

// The OCI linux.resources object that brings a running container from `before` to `after`:
// only the changed groups (memory, cpu, pids, blockIO), each written as the OCI config is at
// create (core/oci_config.cc: memory+swap defaults to twice the memory; NanoCpus as a quota
// over a 100 ms period). A lifted limit is written as -1 (unlimited) and a cleared CPU
// quota/period as the kernel defaults. An empty object when nothing changed.
Json UpdateResourcesJson(const privsep::ContainerSpec& before, const privsep::ContainerSpec& after);

}  // namespace moat::daemon::core
