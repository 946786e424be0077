#include "net/dns/client.h"

#include <time.h>

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "base/sys/inet.h"
#include "base/sys/process.h"
#include "base/sys/socket.h"
#include "base/sys/socket_io.h"
#include "base/sys/spawn.h"
#include "net/dns/control.h"
#include "net/dns/protocol.h"
#include "net/dns/server.h"
#include "net/dns/sockaddr.h"

namespace moat::net::dns {
namespace {

constexpr int kReapTimeoutMs = 2000;

// Binds before the address exists on the bridge: IP_FREEBIND (IPv4) / IPV6_FREEBIND
// (Linux 4.15). Best effort: without it the bind needs the address configured.
void FreeBind(int fd, int family) {
  if (family == AF_INET)
    (void)sys::setsockopt_int(fd, IPPROTO_IP, IP_FREEBIND, 1);
  else
    (void)sys::setsockopt_int(fd, IPPROTO_IPV6, IPV6_FREEBIND, 1);
}

Result<UniqueFd> BoundSocket(const IpAddr& addr, int type) {
  int family = addr.IsV4() ? AF_INET : AF_INET6;
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd, sys::socket(family, type, 0));
  FreeBind(fd.get(), family);
  if (family == AF_INET6) MOAT_TRY(sys::setsockopt_int(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 1));
  if (type == SOCK_STREAM) MOAT_TRY(sys::setsockopt_int(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1));
  sockaddr_storage ss{};
  socklen_t len = ToSockaddr(addr, 53, &ss);
  MOAT_TRY(sys::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len)
               .Context("%s %s:53", type == SOCK_STREAM ? "tcp" : "udp", addr.ToString().c_str()));
  return fd;
}

}  // namespace

Result<std::unique_ptr<Resolver>> Resolver::Start(const std::string& program,
                                                  const std::string& empty_root) {
  MOAT_ASSIGN_OR_RETURN(auto pair, sys::socketpair(SOCK_SEQPACKET));
  auto& [ours, theirs] = pair;
  // Records of a large network exceed the default 208 KiB socket buffer; a seqpacket message
  // must fit in it whole. Root may force past wmem_max.
  if (!sys::setsockopt_int(ours.get(), SOL_SOCKET, SO_SNDBUFFORCE, kMaxControlMessage))
    (void)sys::setsockopt_int(ours.get(), SOL_SOCKET, SO_SNDBUF, kMaxControlMessage);
  MOAT_ASSIGN_OR_RETURN(pid_t pid, sys::Spawn(program, {program, "--root", empty_root},
                                              {{theirs.get(), kControlFd}}));
  theirs.reset();
  auto pidfd = sys::pidfd_open(pid);
  if (!pidfd) {
    (void)sys::kill(pid, SIGKILL);
    (void)sys::waitpid(pid);
    return Fail(std::move(pidfd).error());
  }
  return std::unique_ptr<Resolver>(new Resolver(pid, std::move(*pidfd), std::move(ours)));
}

Resolver::~Resolver() {
  channel_.reset();
  pollfd p{pidfd_.get(), POLLIN, 0};
  auto ready = sys::poll(&p, 1, kReapTimeoutMs);
  if (!ready || *ready == 0) (void)sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
  (void)sys::waitpid(pid_);
}

Result<void> Resolver::Send(const std::string& text, const std::vector<int>& fds) {
  std::lock_guard lock(mu_);
  return sys::SendWithFds(channel_.get(), text, fds).Context("moat-dns control");
}

Result<void> Resolver::Listen(const std::string& network, const IpPrefix& subnet,
                              const IpAddr& gateway) {
  if (network.empty()) return Fail(ErrorKind::kInvalidArgument, "dns listen: empty network id");
  if (gateway.family != subnet.addr.family)
    return Fail(ErrorKind::kInvalidArgument, "dns listen %s: gateway %s outside %s",
                network.c_str(), gateway.ToString().c_str(), subnet.ToString().c_str());
  // The sockets of an earlier listen on the same address (an Unlisten just sent, a network
  // removed and made again) close when moat-dns reads that message: a bind that finds the
  // address still in use is retried for up to a second.
  Result<UniqueFd> udp = Fail(ErrorKind::kInternal, "dns listen: not tried");
  Result<UniqueFd> tcp = Fail(ErrorKind::kInternal, "dns listen: not tried");
  for (int attempt = 0; attempt < 100; ++attempt) {
    udp = BoundSocket(gateway, SOCK_DGRAM);
    if (udp) {
      tcp = BoundSocket(gateway, SOCK_STREAM);
      if (tcp) break;
    }
    const Error& e = udp ? tcp.error() : udp.error();
    if (e.sys_errno != EADDRINUSE) break;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  if (!udp) return Fail(std::move(udp).error());
  if (!tcp) return Fail(std::move(tcp).error());
  MOAT_TRY(sys::listen(tcp->get(), 64));
  return Send(EncodeControl(ListenMessage{network, subnet}), {udp->get(), tcp->get()});
}

Result<void> Resolver::Unlisten(const std::string& network) {
  return Send(EncodeControl(UnlistenMessage{network}), {});
}

Result<void> Resolver::SetRecords(const std::string& network,
                                  const std::map<std::string, std::vector<IpAddr>>& records) {
  return Send(EncodeControl(RecordsMessage{network, records}), {});
}

Result<void> Resolver::SetUpstream(const std::vector<IpAddr>& servers) {
  std::lock_guard lock(upstream_mu_);
  return SendUpstream(servers);
}

Result<void> Resolver::SendUpstream(const std::vector<IpAddr>& servers) {
  bool v6_needed = false;
  for (const IpAddr& s : servers) v6_needed |= !s.IsV4();
  std::vector<UniqueFd> sockets;
  MOAT_ASSIGN_OR_RETURN(UniqueFd v4, sys::socket(AF_INET, SOCK_DGRAM, 0));
  sockets.push_back(std::move(v4));
  auto v6 = sys::socket(AF_INET6, SOCK_DGRAM, 0);
  if (v6) {
    sockets.push_back(std::move(*v6));
  } else if (v6_needed || v6.error().sys_errno != EAFNOSUPPORT) {
    return Fail(std::move(v6).error());
  }
  std::vector<int> fds;
  for (const UniqueFd& fd : sockets) fds.push_back(fd.get());
  MOAT_TRY(Send(EncodeControl(UpstreamMessage{servers}), fds));
  upstream_sent_ = true;
  return Ok();
}

Result<void> Resolver::SetClientUpstream(const std::string& network, const IpAddr& client,
                                         const std::vector<IpAddr>& servers) {
  if (network.empty())
    return Fail(ErrorKind::kInvalidArgument, "dns client upstream: empty network id");
  if (client.family == 0)
    return Fail(ErrorKind::kInvalidArgument, "dns client upstream %s: no client address",
                network.c_str());
  {
    std::lock_guard lock(upstream_mu_);
    if (!upstream_sent_ && !servers.empty()) MOAT_TRY(SendUpstream({}));
  }
  return Send(EncodeControl(ClientUpstreamMessage{network, client, servers}), {});
}

}  // namespace moat::net::dns
