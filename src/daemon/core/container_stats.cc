// Container statistics (GET /containers/{id}/stats) and live resource updates.
// TODO(#3): being written.

#include "daemon/core/container_internal.h"

namespace moat::daemon::core {

Result<Json> Containers::Stats(const std::string& ref) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  (void)c;
  return Fail(ErrorKind::kUnsupported, "stats are not implemented yet");
}

Result<Json> Containers::Update(const std::string& ref, const Json& resources) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  (void)c;
  (void)resources;
  return Fail(ErrorKind::kUnsupported, "update is not implemented yet");
}

}  // namespace moat::daemon::core
