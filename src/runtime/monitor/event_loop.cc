#include "runtime/monitor/event_loop.h"

#include "base/sys/io.h"

namespace moat::runtime::monitor {

Result<EventLoop> EventLoop::Create() {
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd, sys::epoll_create1());
  return EventLoop(std::move(fd));
}

Result<EventLoop::Token> EventLoop::Add(int fd, uint32_t events, Handler handler) {
  Token t = next_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = t;
  MOAT_TRY(sys::epoll_ctl(epfd_.get(), EPOLL_CTL_ADD, fd, &ev));
  entries_.emplace(t, Entry{fd, events, std::move(handler)});
  return t;
}

Result<void> EventLoop::Modify(Token token, uint32_t events) {
  auto it = entries_.find(token);
  if (it == entries_.end() || it->second.events == events) return Ok();
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  MOAT_TRY(sys::epoll_ctl(epfd_.get(), EPOLL_CTL_MOD, it->second.fd, &ev));
  it->second.events = events;
  return Ok();
}

void EventLoop::Remove(Token token) {
  auto it = entries_.find(token);
  if (it == entries_.end()) return;
  // Fails only if the fd was closed first, which removed it from the epoll set anyway.
  (void)sys::epoll_ctl(epfd_.get(), EPOLL_CTL_DEL, it->second.fd, nullptr);
  entries_.erase(it);
}

Result<void> EventLoop::RunOnce(int timeout_ms) {
  epoll_event events[32];
  MOAT_ASSIGN_OR_RETURN(int n, sys::epoll_wait(epfd_.get(), events, 32, timeout_ms));
  for (int i = 0; i < n; ++i) {
    auto it = entries_.find(events[i].data.u64);
    if (it == entries_.end()) continue;
    // A copy: the handler may remove its own entry.
    Handler h = it->second.handler;
    h(events[i].events);
  }
  return Ok();
}

}  // namespace moat::runtime::monitor
