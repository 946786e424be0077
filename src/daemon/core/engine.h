#pragma once

// The privileged core's request handling: each request from the API front is decoded into a
// typed command, validated again, and carried out on the container manager or the image store.
// Serve() reads requests from the front's channel and answers each on its own thread.

#include <memory>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/core/containers.h"
#include "daemon/core/events.h"
#include "daemon/core/networks.h"
#include "daemon/privsep/wire.h"
#include "image/store.h"

namespace moat::daemon::core {

struct EngineInfo {
  std::string version;
  std::string data_root, exec_root;
  std::string daemon_id;
  // After this long without a request beginning or ending, the core gives its one-off memory
  // back (sys::QuietReleaser: code pages and free heap); 0: never.
  int release_quiet_ms = 0;
};

class Engine {
 public:
  Engine(EngineInfo info, image::Store* store, Containers* containers, Events* events,
         Networks* networks = nullptr);
  // Handles one request; never fails as a whole (failures become error replies).
  privsep::Reply Handle(privsep::Request request);
  // Serves the channel `sock` (remains owned by the caller) until the front closes it.
  Result<void> Serve(int sock);

 private:
  Result<Json> Dispatch(privsep::Request& r, std::vector<UniqueFd>* out_fds);
  Result<Json> Info();
  Result<Json> LoadImage(privsep::Request& r, std::vector<UniqueFd>* out_fds);
  Result<Json> SaveImage(privsep::Request& r, std::vector<UniqueFd>* out_fds);
  // docker pull / push: a JSON progress stream in a pipe whose read end goes to the front.
  Result<Json> PullImage(privsep::Request& r, std::vector<UniqueFd>* out_fds);
  Result<Json> PushImage(privsep::Request& r, std::vector<UniqueFd>* out_fds);
  Result<Json> Volumes(privsep::Request& r);
  Result<Json> NetworkOp(privsep::Request& r);

  EngineInfo info_;
  image::Store* store_;
  Containers* containers_;
  Events* events_;
  Networks* networks_;
};

}  // namespace moat::daemon::core
