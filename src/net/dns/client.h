#pragma once

// The core's handle on one moat-dns process: starts it, makes the sockets it serves on (the
// core is root; moat-dns can open nothing) and sends it the control messages of protocol.h.

#include <sys/types.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "net/ip.h"

namespace moat::net::dns {

class Resolver {
 public:
  // Spawns `program` (the moat-dns binary) as `program --root <empty_root>` with fd 3 = one end
  // of a SOCK_SEQPACKET pair; its stderr is the caller's. `empty_root` must be an existing
  // empty directory (moat-dns chroots into it). The caller must be root (moat-dns drops
  // privileges itself). posix_spawn, so safe in a multi-threaded process; moat-dns dies with
  // the *thread* that called Start (PR_SET_PDEATHSIG), so call it from a long-lived thread.
  // Errors: those of socketpair/posix_spawn (kNotFound for a missing program).
  static Result<std::unique_ptr<Resolver>> Start(const std::string& program,
                                                 const std::string& empty_root);

  // Closes the control channel, which makes moat-dns exit, and reaps it; SIGKILL after 2 s.
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Serves `network` on `gateway`:53 (UDP, and TCP with a backlog of 64), answering only
  // sources inside `subnet`. Makes both sockets here (IP_FREEBIND, so the gateway address need
  // not be configured yet) and passes them. Listening again replaces the sockets and keeps the
  // records. Errors: socket/bind (kAlreadyExists for EADDRINUSE: another server on port 53
  // of that address), kInvalidArgument for an empty network id or a gateway whose family
  // differs from the subnet's, and sendmsg errors when moat-dns is gone.
  Result<void> Listen(const std::string& network, const IpPrefix& subnet, const IpAddr& gateway);
  // Closes that network's sockets and forgets its records. Unknown networks are ignored.
  Result<void> Unlisten(const std::string& network);
  // Replaces the names of `network` (case-insensitive, trailing dot optional). moat-dns
  // rejects (and logs) a table with an invalid name, keeping the previous one; callers can
  // check with RecordTable::Build (records.h) first.
  Result<void> SetRecords(const std::string& network,
                          const std::map<std::string, std::vector<IpAddr>>& records);
  // Servers to forward other names to (port 53), over unbound UDP sockets made here, in the
  // caller's network namespace: one per address family present in `servers`. Empty: no
  // forwarding (SERVFAIL for unknown names).
  Result<void> SetUpstream(const std::vector<IpAddr>& servers);

  pid_t Pid() const { return pid_; }

 private:
  Resolver(pid_t pid, UniqueFd pidfd, UniqueFd channel)
      : pid_(pid), pidfd_(std::move(pidfd)), channel_(std::move(channel)) {}
  Result<void> Send(const std::string& text, const std::vector<int>& fds);

  pid_t pid_;
  UniqueFd pidfd_;
  std::mutex mu_;  // serialises messages on channel_
  UniqueFd channel_;
};

}  // namespace moat::net::dns
