#pragma once

// moat-dns's event loop: one thread, one epoll set over the control channel, each network's
// UDP and TCP sockets, the TCP connections and the upstream sockets. See protocol.h for the
// control messages and query.h for the answers.
//
// Limits (none of them is configurable by a container): UDP replies of 512 bytes, or the
// EDNS0 size up to 4096; TCP messages framed by a 2-byte length, at most 64 KiB in and
// kMaxTcpOutput queued out per connection; kMaxConnections TCP connections at once over all
// networks, each closed after kTcpIdle without a complete query; kMaxPending forwarded queries
// in flight, each answered with SERVFAIL after kForwardTimeout.

#include <chrono>
#include <cstddef>
#include <memory>

#include "base/result.h"
#include "base/unique_fd.h"

namespace moat::net::dns {

inline constexpr size_t kMaxConnections = 64;
inline constexpr std::chrono::seconds kTcpIdle{10};
inline constexpr std::chrono::seconds kForwardTimeout{2};
inline constexpr size_t kMaxPending = 1024;
inline constexpr size_t kMaxTcpOutput = 256 * 1024;
inline constexpr size_t kMaxControlMessage = 4 * 1024 * 1024;

class Server {
 public:
  // Takes the control channel (a SOCK_SEQPACKET socket). Creates the epoll set.
  static Result<std::unique_ptr<Server>> Create(UniqueFd control);
  ~Server();

  // Serves until the control channel closes (Ok) or the event loop itself fails. Errors of
  // single packets, connections and control messages are logged and do not end the loop.
  Result<void> Run();

 private:
  struct State;
  explicit Server(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace moat::net::dns
