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
  // caller's network namespace. Always passes an IPv4 and an IPv6 socket, whatever the
  // families of `servers` (and also for an empty list), because SetClientUpstream's servers
  // go out over them too; the IPv6 one is skipped when the host has no IPv6
  // (EAFNOSUPPORT), unless `servers` has an IPv6 address. Empty `servers`: no global
  // forwarding (SERVFAIL for unknown names of clients without their own servers).
  Result<void> SetUpstream(const std::vector<IpAddr>& servers);
  // A container's own servers (docker run --dns): names not known that `client` (its
  // address in `network`) asks are forwarded to `servers` instead of SetUpstream's. Empty
  // `servers` removes the override. Kept across Listen/SetRecords of `network`, dropped by
  // its Unlisten. If SetUpstream was never called, calls SetUpstream({}) first so that the
  // sockets exist. Errors: kInvalidArgument for an empty network id or an unset client
  // address, SetUpstream's, and sendmsg errors when moat-dns is gone.
  Result<void> SetClientUpstream(const std::string& network, const IpAddr& client,
                                 const std::vector<IpAddr>& servers);

  pid_t Pid() const { return pid_; }

 private:
  Resolver(pid_t pid, UniqueFd pidfd, UniqueFd channel)
      : pid_(pid), pidfd_(std::move(pidfd)), channel_(std::move(channel)) {}
  Result<void> Send(const std::string& text, const std::vector<int>& fds);
  Result<void> SendUpstream(const std::vector<IpAddr>& servers);  // needs upstream_mu_

  pid_t pid_;
  UniqueFd pidfd_;
  std::mutex mu_;  // serialises messages on channel_
  UniqueFd channel_;
  // Held across the check of upstream_sent_ and the "upstream" message, so that
  // SetClientUpstream's implicit SetUpstream({}) cannot overtake a concurrent SetUpstream.
  std::mutex upstream_mu_;
  bool upstream_sent_ = false;  // guarded by upstream_mu_
};

}  // namespace moat::net::dns
