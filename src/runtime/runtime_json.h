#pragma once

// JSON documents the runtime prints (runtime_json.cc is the runtime's only JSON-library user).

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "cgroups/manager.h"

namespace moat::runtime {

// `ps --format json`: [pid, ...].
std::string PidsDocument(const std::vector<pid_t>& pids);
// `events`: {"type":"stats","id":..., "data":{cpu, memory, pids, blkio}} in runc's layout.
std::string StatsEventDocument(const std::string& id, const cgroups::Stats& stats);
// seccomp notify: the ContainerProcessState sent with a listener fd (config-linux.md):
//   {"ociVersion":"1.3.0","fds":["seccompFd"],"pid":<pid>,"metadata":<metadata>,"state":<state>}
// "metadata" is left out when empty; `state_json` is a state document (StatusDocument).
std::string ContainerProcessStateDocument(pid_t pid, std::string_view metadata,
                                          std::string_view state_json);
// `features`: runtime-spec features.md document.
std::string FeaturesDocument(int last_cap);

}  // namespace moat::runtime
