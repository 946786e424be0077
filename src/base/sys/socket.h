#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace moat::sys {

// A connected AF_UNIX pair of `type` (SOCK_SEQPACKET for the runtime's sync channel).
Result<std::pair<UniqueFd, UniqueFd>> socketpair(int type);
// Connects a SOCK_STREAM AF_UNIX socket to `path`.
Result<UniqueFd> ConnectUnix(const std::string& path);
// Connects an AF_UNIX socket of `type` (SOCK_STREAM, SOCK_SEQPACKET) to `path`.
Result<UniqueFd> ConnectUnix(const std::string& path, int type);
// Sends `data` with `fds` attached (SCM_RIGHTS) to the first byte; on a stream socket the
// rest follows as the socket takes it. fds remain owned by the caller.
Result<void> SendWithFds(int sock, std::string_view data, const std::vector<int>& fds);
// Receives one message of at most `max` bytes and up to `max_fds` fds. An empty string with no
// fds means the peer closed.
struct Message {
  std::string data;
  std::vector<UniqueFd> fds;
};
Result<Message> RecvWithFds(int sock, size_t max, size_t max_fds);

}  // namespace moat::sys
