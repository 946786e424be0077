#pragma once

// The API front's end of the privsep channel: sends typed requests to the core and waits for
// the matching reply. Thread-safe: any connection thread may call Call concurrently; one reader
// thread routes replies by id.

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/privsep/wire.h"

namespace moat::daemon::front {

class CoreClient {
 public:
  // Takes ownership of the channel socket.
  explicit CoreClient(UniqueFd channel);
  ~CoreClient();
  // Sends `op` with `args` and `fds` (remain owned by the caller) and blocks for the reply.
  // kUnavailable if the core is gone.
  Result<privsep::Reply> Call(privsep::Op op, Json args, const std::vector<int>& fds);

 private:
  void ReadLoop();
  UniqueFd channel_;
  privsep::Sender sender_;
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_id_ = 1;
  bool closed_ = false;
  std::map<uint64_t, std::shared_ptr<privsep::Reply>> done_;
  std::thread reader_;
};

}  // namespace moat::daemon::front
