#pragma once

// Parsing of cgroup statistics files into Stats. Pure: the manager reads the files listed by
// StatsFilesV1/V2 (skipping absent ones) and passes their contents here. Unit-tested on
// sample files.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cgroups/manager.h"
#include "cgroups/resources.h"

namespace moat::cgroups {

// File name -> contents, for the files that exist.
using FileContents = std::map<std::string, std::string>;

// The statistics files GetStats reads (all optional).
std::vector<CgroupFile> StatsFilesV1();
std::vector<CgroupFile> StatsFilesV2();

// Fills Stats from the v1 files (memory.*, cpuacct.*, cpu.stat, pids.*, blkio.throttle.*).
// Missing files and unparsable lines leave the fields at zero. cpu_user/system_ns come from
// cpuacct.usage_user/usage_sys, else from cpuacct.stat in USER_HZ (100 Hz) ticks; swap_usage is
// memsw usage minus memory usage; "unlimited" limits (max, or v1's near-2^63 value) are 0.
Stats StatsFromV1(const FileContents& files);

// Fills Stats from the v2 files (memory.*, cpu.stat, pids.*, io.stat). memory_failcnt is the
// "max" count of memory.events (times the limit was hit).
Stats StatsFromV2(const FileContents& files);

// "key value" lines (memory.stat, cpu.stat, memory.events, ...); unparsable lines are skipped.
std::map<std::string, uint64_t> ParseFlatKeyed(std::string_view text);

}  // namespace moat::cgroups
