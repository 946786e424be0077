#pragma once

// The daemon's event log (GET /events): the last 256 events kept for replay, and live
// subscribers, each fed through a pipe whose read end goes to the API front. Thread-safe.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/common/json.h"

namespace moat::daemon::core {

struct Event {
  std::string type;    // container | image | volume | network | daemon
  std::string action;  // create, start, die, destroy, pull, load, tag, delete ...
  std::string id;
  std::map<std::string, std::string> attributes;  // name, image, exitCode, labels ...
  int64_t time_nano = 0;
};

// The JSON line docker's clients read (with the legacy status/id/from fields for containers).
Json EventJson(const Event& e);

// Docker's event filters: {"type":{"container":true},"event":{...},"container":{...},
// "image":{...},"label":{"k=v":true}} or list forms.
bool EventMatches(const Event& e, const Json& filters);

class Events {
 public:
  Events() = default;
  ~Events();
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;
  void Publish(Event e);
  // Returns the read end of a pipe that receives, as JSON lines, the matching replayed events
  // from `since_nano` (0 = none) and, unless `until_nano` is in the past, live events until
  // `until_nano` (0 = forever) or until the reader closes. A stream with an `until` ends at that
  // time, whether or not an event comes (a thread, started with the first such stream, closes it).
  Result<UniqueFd> Subscribe(int64_t since_nano, int64_t until_nano, const Json& filters);

 private:
  struct Subscriber {
    UniqueFd fd;  // write end, O_NONBLOCK
    int64_t until_nano;
    Json filters;
  };
  void ExpireLoop();

  std::mutex mu_;
  std::condition_variable cv_;  // a subscriber with an until arrived, or the end
  bool stopping_ = false;
  std::thread expirer_;
  std::deque<Event> recent_;
  std::vector<Subscriber> subscribers_;
};

int64_t NowNano();

}  // namespace moat::daemon::core
