#pragma once

// A minimal epoll loop for the monitor: fds with a handler each, single-threaded. A handler
// may add or remove any registration (its own included): events for a registration removed
// earlier in the same round are dropped.

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <map>

#include "base/result.h"
#include "base/unique_fd.h"

namespace moat::runtime::monitor {

class EventLoop {
 public:
  using Handler = std::function<void(uint32_t events)>;
  using Token = uint64_t;

  // Errors of epoll_create1.
  static Result<EventLoop> Create();

  // Watches `fd` (remains owned by the caller, who must Remove it before closing it) for
  // `events` (EPOLLIN, EPOLLOUT...). Returns the registration's token.
  Result<Token> Add(int fd, uint32_t events, Handler handler);
  // Changes the events watched; no effect for an unknown token.
  Result<void> Modify(Token token, uint32_t events);
  // Stops watching; no effect for an unknown token or 0.
  void Remove(Token token);

  // Waits up to `timeout_ms` (-1: forever) and runs the handlers of the ready fds.
  Result<void> RunOnce(int timeout_ms);

 private:
  explicit EventLoop(UniqueFd epfd) : epfd_(std::move(epfd)) {}
  struct Entry {
    int fd;
    uint32_t events;
    Handler handler;
  };
  UniqueFd epfd_;
  Token next_ = 1;
  std::map<Token, Entry> entries_;
};

}  // namespace moat::runtime::monitor
