#pragma once

// JSON documents the runtime prints (runtime_json.cc is the runtime's only JSON-library user).

#include <sys/types.h>

#include <string>
#include <vector>

#include "cgroups/manager.h"

namespace moat::runtime {

// `ps --format json`: [pid, ...].
std::string PidsDocument(const std::vector<pid_t>& pids);
// `events`: {"type":"stats","id":..., "data":{cpu, memory, pids, blkio}} in runc's layout.
std::string StatsEventDocument(const std::string& id, const cgroups::Stats& stats);
// `features`: runtime-spec features.md document.
std::string FeaturesDocument(int last_cap);

}  // namespace moat::runtime
