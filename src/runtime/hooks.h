#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "oci/spec.h"

namespace moat::runtime {

// Runs each hook in order: path with args and env, the container's state JSON on stdin. A hook
// that exits non-zero, is killed, or outlives its timeout (it is then SIGKILLed) fails the
// call, naming the hook kind, index and path. `kind` is e.g. "prestart".
Result<void> RunHooks(const std::vector<oci::Hook>& hooks, const char* kind,
                      std::string_view state_json);

}  // namespace moat::runtime
