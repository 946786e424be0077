#pragma once

// The Engine API's routes in the front: each handler checks the request's shape and types,
// turns it into a typed privsep command for the core, and renders the core's answer (JSON, a
// stream from an fd, or a hijacked connection spliced to an fd).

#include <string>

#include "daemon/api/http.h"
#include "daemon/front/core_client.h"

namespace moat::daemon::front {

struct FrontInfo {
  std::string version = "0.1.0";
};

api::Router MakeRouter(CoreClient* core, FrontInfo info);

}  // namespace moat::daemon::front
