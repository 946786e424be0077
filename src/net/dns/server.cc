#include "net/dns/server.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "base/log.h"
#include "base/sys/inet.h"
#include "base/sys/io.h"
#include "base/sys/random.h"
#include "base/sys/socket.h"
#include "base/sys/socket_io.h"
#include "net/dns/control.h"
#include "net/dns/query.h"
#include "net/dns/records.h"
#include "net/dns/sockaddr.h"

namespace moat::net::dns {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint16_t kDnsPort = 53;
// Datagrams read per wakeup of one socket, so that one busy network cannot starve the others.
constexpr int kBurst = 64;
constexpr size_t kDatagramBuffer = 65536;

enum class Kind { kControl, kUdp, kTcpListener, kTcpConnection, kUpstream };

struct Watch {
  Kind kind;
  std::string network;  // kUdp, kTcpListener, kTcpConnection
};

struct Network {
  IpPrefix subnet;
  UniqueFd udp, tcp;
  uint64_t udp_token = 0, tcp_token = 0;
  RecordTable records;
  // client-upstream: a container's own servers, by its address.
  std::map<IpAddr, std::vector<IpAddr>> client_servers;
};

struct Connection {
  UniqueFd fd;
  std::string network;
  IpAddr peer;
  std::string in, out;
  Clock::time_point deadline;
  bool want_write = false;
};

struct Pending {
  QueryOutcome query;
  std::string network;
  uint64_t connection = 0;  // the TCP connection's token, 0 for UDP
  sockaddr_storage client{};
  socklen_t client_len = 0;
  std::vector<IpAddr> sent_to;
  Clock::time_point deadline;
};

}  // namespace

struct Server::State {
  UniqueFd epoll;
  UniqueFd control;
  uint64_t next_token = 1;
  std::map<uint64_t, Watch> watches;
  std::map<std::string, Network> networks;
  std::map<uint64_t, Connection> connections;  // by token
  std::vector<IpAddr> servers;                 // the global ones; see Network::client_servers
  UniqueFd upstream_v4, upstream_v6;
  uint64_t upstream_v4_token = 0, upstream_v6_token = 0;
  std::map<uint16_t, Pending> pending;  // by the id sent upstream
  std::vector<uint16_t> random_ids;
  std::string buffer = std::string(kDatagramBuffer, '\0');
  bool done = false;

  Result<uint64_t> Add(int fd, uint32_t events, Watch watch) {
    uint64_t token = next_token++;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = token;
    MOAT_TRY(sys::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev));
    watches.emplace(token, std::move(watch));
    return token;
  }
  // Closing an fd removes it from the epoll set; the token is forgotten so that an event
  // already returned for it in this round is ignored.
  void Forget(uint64_t token) { watches.erase(token); }

  // --- control channel -----------------------------------------------------------------

  void OnControl() {
    auto msg = sys::RecvWithFds(control.get(), kMaxControlMessage, 4);
    if (!msg) {
      if (msg.error().sys_errno == EAGAIN) return;
      MOAT_LOG(kError, "control channel: %s", msg.error().message.c_str());
      done = true;
      return;
    }
    if (msg->data.empty() && msg->fds.empty()) {
      done = true;  // the core closed the channel
      return;
    }
    auto decoded = DecodeControl(msg->data);
    if (!decoded) {
      MOAT_LOG(kError, "%s", decoded.error().message.c_str());
      return;
    }
    Result<void> r = std::visit([&](auto& m) { return Apply(m, msg->fds); }, *decoded);
    if (!r) MOAT_LOG(kError, "control message: %s", r.error().message.c_str());
  }

  // Applies every control message already queued. Called after reading a query and before
  // answering it: a message the core sent before the query was sent is then always applied
  // (records for a container that was just started, say), whatever order epoll reports.
  void DrainControl() {
    char c;
    while (!done) {
      auto peek = sys::recv(control.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (!peek) return;  // EAGAIN: nothing queued
      OnControl();        // also handles end of file (peek returned 0)
    }
  }

  Result<void> Apply(ListenMessage& m, std::vector<UniqueFd>& fds) {
    if (fds.size() != 2)
      return Fail(ErrorKind::kInvalidArgument, "listen %s: expected 2 fds, got %zu",
                  m.network.c_str(), fds.size());
    MOAT_TRY(sys::SetNonBlocking(fds[0].get()));
    MOAT_TRY(sys::SetNonBlocking(fds[1].get()));
    Network& n = networks[m.network];
    CloseSockets(m.network, &n);
    n.subnet = m.subnet.Masked();
    n.udp = std::move(fds[0]);
    n.tcp = std::move(fds[1]);
    MOAT_ASSIGN_OR_RETURN(n.udp_token, Add(n.udp.get(), EPOLLIN, {Kind::kUdp, m.network}));
    MOAT_ASSIGN_OR_RETURN(n.tcp_token, Add(n.tcp.get(), EPOLLIN, {Kind::kTcpListener, m.network}));
    MOAT_LOG(kInfo, "network %s: listening for %s", m.network.c_str(), n.subnet.ToString().c_str());
    return Ok();
  }

  Result<void> Apply(UnlistenMessage& m, std::vector<UniqueFd>&) {
    auto it = networks.find(m.network);
    if (it == networks.end()) return Ok();
    CloseSockets(m.network, &it->second);
    networks.erase(it);
    return Ok();
  }

  Result<void> Apply(RecordsMessage& m, std::vector<UniqueFd>&) {
    MOAT_ASSIGN_OR_RETURN(RecordTable table, RecordTable::Build(m.records));
    networks[m.network].records = std::move(table);
    return Ok();
  }

  Result<void> Apply(UpstreamMessage& m, std::vector<UniqueFd>& fds) {
    Forget(upstream_v4_token);
    Forget(upstream_v6_token);
    upstream_v4.reset();
    upstream_v6.reset();
    servers = m.servers;
    for (UniqueFd& fd : fds) {
      sockaddr_storage ss{};
      MOAT_TRY(sys::getsockname(fd.get(), &ss));
      MOAT_TRY(sys::SetNonBlocking(fd.get()));
      if (ss.ss_family == AF_INET && !upstream_v4) {
        MOAT_ASSIGN_OR_RETURN(upstream_v4_token, Add(fd.get(), EPOLLIN, {Kind::kUpstream, {}}));
        upstream_v4 = std::move(fd);
      } else if (ss.ss_family == AF_INET6 && !upstream_v6) {
        MOAT_ASSIGN_OR_RETURN(upstream_v6_token, Add(fd.get(), EPOLLIN, {Kind::kUpstream, {}}));
        upstream_v6 = std::move(fd);
      }
    }
    return Ok();
  }

  Result<void> Apply(ClientUpstreamMessage& m, std::vector<UniqueFd>&) {
    Network& n = networks[m.network];
    if (m.servers.empty())
      n.client_servers.erase(m.client);
    else
      n.client_servers[m.client] = std::move(m.servers);
    return Ok();
  }

  void CloseSockets(const std::string& name, Network* n) {
    Forget(n->udp_token);
    Forget(n->tcp_token);
    n->udp.reset();
    n->tcp.reset();
    for (auto it = connections.begin(); it != connections.end();) {
      if (it->second.network == name) {
        Forget(it->first);
        it = connections.erase(it);
      } else {
        ++it;
      }
    }
  }

  // The servers that names `source` asks in `n` and `n` does not know are forwarded to.
  const std::vector<IpAddr>& ServersFor(const Network& n, const IpAddr& source) const {
    auto it = n.client_servers.find(source);
    return it != n.client_servers.end() ? it->second : servers;
  }
  Upstream UpstreamFor(const std::vector<IpAddr>& to) const {
    return !to.empty() && (upstream_v4 || upstream_v6) ? Upstream::kAvailable : Upstream::kNone;
  }

  // --- queries -------------------------------------------------------------------------

  void OnUdp(const std::string& name) {
    for (int i = 0; i < kBurst; ++i) {
      auto it = networks.find(name);
      if (it == networks.end() || !it->second.udp) return;
      Network& n = it->second;
      sockaddr_storage from{};
      auto got = sys::recvfrom(n.udp.get(), buffer.data(), buffer.size(), 0, &from);
      if (!got) return;  // EAGAIN, or an ICMP error queued on the socket
      DrainControl();
      if (done) return;
      it = networks.find(name);
      if (it == networks.end() || !it->second.udp) return;
      Network& current = it->second;
      IpAddr source;
      uint16_t port = 0;
      // Only the network's own containers get answers (and port 0 is no real source).
      if (!FromSockaddr(from, &source, &port) || port == 0 || !current.subnet.Contains(source))
        continue;
      const std::vector<IpAddr>& to = ServersFor(current, source);
      QueryOutcome q = HandleQuery(std::string_view(buffer.data(), *got), current.records,
                                   Transport::kUdp, UpstreamFor(to));
      socklen_t from_len = from.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
      if (q.action == QueryOutcome::Action::kReply) {
        SendUdp(current.udp.get(), q.reply, from, from_len);
      } else if (q.action == QueryOutcome::Action::kForward) {
        Pending p;
        p.network = name;
        p.client = from;
        p.client_len = from_len;
        Forward(std::move(q), std::move(p), to);
      }
    }
  }

  static void SendUdp(int fd, const std::string& reply, const sockaddr_storage& to,
                      socklen_t to_len) {
    if (reply.empty()) return;
    // A full socket buffer drops the reply, as the network would; the client retries.
    (void)sys::sendto(fd, reply.data(), reply.size(), MSG_DONTWAIT,
                      reinterpret_cast<const sockaddr*>(&to), to_len);
  }

  Result<uint16_t> NewId() {
    for (int attempt = 0; attempt < 16; ++attempt) {
      if (random_ids.empty()) {
        random_ids.resize(256);
        MOAT_TRY(sys::getrandom(random_ids.data(), random_ids.size() * sizeof(uint16_t)));
      }
      uint16_t id = random_ids.back();
      random_ids.pop_back();
      if (!pending.contains(id)) return id;
    }
    return Fail(ErrorKind::kUnavailable, "no free query id");
  }

  // Sends `q` to each of `to` that has a socket of its family. `to` must not change during
  // the call (it is a network's or the global list; nothing here edits them).
  void Forward(QueryOutcome q, Pending p, const std::vector<IpAddr>& to) {
    auto id = pending.size() < kMaxPending
                  ? NewId()
                  : Result<uint16_t>(Fail(ErrorKind::kUnavailable, "too many forwarded queries"));
    if (!id) {
      MOAT_LOG(kDebug, "forward: %s", id.error().message.c_str());
      ReplyTo(p, ServfailReply(q));
      return;
    }
    std::string wire = q.query;
    wire[0] = static_cast<char>(*id >> 8);
    wire[1] = static_cast<char>(*id & 0xff);
    for (const IpAddr& server : to) {
      int fd = server.IsV4() ? upstream_v4.get() : upstream_v6.get();
      if (fd < 0) continue;
      sockaddr_storage addr{};
      socklen_t addr_len = ToSockaddr(server, kDnsPort, &addr);
      if (sys::sendto(fd, wire.data(), wire.size(), MSG_DONTWAIT,
                      reinterpret_cast<const sockaddr*>(&addr), addr_len))
        p.sent_to.push_back(server);
    }
    if (p.sent_to.empty()) {
      ReplyTo(p, ServfailReply(q));
      return;
    }
    p.query = std::move(q);
    p.deadline = Clock::now() + kForwardTimeout;
    pending.emplace(*id, std::move(p));
  }

  void OnUpstream(int fd) {
    for (int i = 0; i < kBurst; ++i) {
      sockaddr_storage from{};
      auto got = sys::recvfrom(fd, buffer.data(), buffer.size(), 0, &from);
      if (!got) return;
      IpAddr source;
      uint16_t port = 0;
      if (*got < 12 || !FromSockaddr(from, &source, &port) || port != kDnsPort) continue;
      uint16_t id = static_cast<uint16_t>((static_cast<uint8_t>(buffer[0]) << 8) |
                                          static_cast<uint8_t>(buffer[1]));
      auto it = pending.find(id);
      // Matched by (id, server asked): an answer from anyone else is a spoofing attempt.
      if (it == pending.end() || std::find(it->second.sent_to.begin(), it->second.sent_to.end(),
                                           source) == it->second.sent_to.end())
        continue;
      auto relayed = RelayReply(std::string_view(buffer.data(), *got), it->second.query);
      if (!relayed) {
        MOAT_LOG(kDebug, "upstream %s: %s", source.ToString().c_str(),
                 relayed.error().message.c_str());
        continue;  // keep waiting for a good answer until the deadline
      }
      Pending p = std::move(it->second);
      pending.erase(it);
      ReplyTo(p, *relayed);
    }
  }

  void ReplyTo(const Pending& p, const std::string& reply) {
    if (reply.empty()) return;
    if (p.connection != 0) {
      auto c = connections.find(p.connection);
      if (c != connections.end()) QueueTcp(p.connection, &c->second, reply);
      return;
    }
    auto n = networks.find(p.network);
    if (n == networks.end() || !n->second.udp) return;
    SendUdp(n->second.udp.get(), reply, p.client, p.client_len);
  }

  // --- TCP -----------------------------------------------------------------------------

  void OnTcpListener(const std::string& name) {
    for (int i = 0; i < kBurst; ++i) {
      auto it = networks.find(name);
      if (it == networks.end() || !it->second.tcp) return;
      sockaddr_storage peer{};
      auto fd = sys::accept4(it->second.tcp.get(), SOCK_NONBLOCK, &peer);
      if (!fd) return;
      IpAddr source;
      uint16_t port = 0;
      // Over the limit or from outside: closed at once (leaving it in the backlog would
      // wake the level-triggered loop forever).
      if (connections.size() >= kMaxConnections || !FromSockaddr(peer, &source, &port) ||
          !it->second.subnet.Contains(source))
        continue;
      Connection c;
      c.fd = std::move(*fd);
      c.network = name;
      c.peer = source;
      c.deadline = Clock::now() + kTcpIdle;
      auto token = Add(c.fd.get(), EPOLLIN | EPOLLRDHUP, {Kind::kTcpConnection, name});
      if (!token) continue;
      connections.emplace(*token, std::move(c));
    }
  }

  void CloseConnection(uint64_t token) {
    Forget(token);
    connections.erase(token);
  }

  void OnTcpConnection(uint64_t token, uint32_t events) {
    auto it = connections.find(token);
    if (it == connections.end()) return;
    Connection& c = it->second;
    if (events & EPOLLOUT) {
      if (!Flush(token, &c)) return CloseConnection(token);
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      // Read at most one message's worth beyond what is buffered.
      size_t room = 2 + kMaxTcpSize - c.in.size();
      size_t old = c.in.size();
      c.in.resize(old + std::min<size_t>(room, 16384));
      auto got = sys::recv(c.fd.get(), c.in.data() + old, c.in.size() - old, MSG_DONTWAIT);
      if (!got) {
        c.in.resize(old);
        if (got.error().sys_errno == EAGAIN) return;
        return CloseConnection(token);
      }
      c.in.resize(old + *got);
      if (*got == 0) return CloseConnection(token);
      DrainControl();  // may close this connection (unlisten)
      if (done || !connections.contains(token)) return;
      while (c.in.size() >= 2) {
        size_t len = (static_cast<uint8_t>(c.in[0]) << 8) | static_cast<uint8_t>(c.in[1]);
        if (len == 0) return CloseConnection(token);
        if (c.in.size() < 2 + len) break;
        std::string message = c.in.substr(2, len);
        c.in.erase(0, 2 + len);
        c.deadline = Clock::now() + kTcpIdle;
        auto n = networks.find(c.network);
        if (n == networks.end()) return CloseConnection(token);
        const std::vector<IpAddr>& to = ServersFor(n->second, c.peer);
        QueryOutcome q = HandleQuery(message, n->second.records, Transport::kTcp, UpstreamFor(to));
        if (q.action == QueryOutcome::Action::kReply) {
          if (!QueueTcp(token, &c, q.reply)) return;
        } else if (q.action == QueryOutcome::Action::kForward) {
          Pending p;
          p.network = c.network;
          p.connection = token;
          Forward(std::move(q), std::move(p), to);
          // Forward may have answered at once (SERVFAIL) and closed the connection.
          if (!connections.contains(token)) return;
        }
      }
    }
  }

  // Appends a framed reply and writes what the socket takes. False if the connection was
  // closed (the client stopped reading, or an error).
  bool QueueTcp(uint64_t token, Connection* c, const std::string& reply) {
    if (reply.empty() || reply.size() > kMaxTcpSize) return true;
    if (c->out.size() + 2 + reply.size() > kMaxTcpOutput) {
      CloseConnection(token);
      return false;
    }
    c->out.push_back(static_cast<char>(reply.size() >> 8));
    c->out.push_back(static_cast<char>(reply.size() & 0xff));
    c->out += reply;
    if (!Flush(token, c)) {
      CloseConnection(token);
      return false;
    }
    return true;
  }

  bool Flush(uint64_t token, Connection* c) {
    while (!c->out.empty()) {
      auto sent = sys::sendto(c->fd.get(), c->out.data(), c->out.size(), MSG_DONTWAIT, nullptr, 0);
      if (!sent) {
        if (sent.error().sys_errno != EAGAIN) return false;
        break;
      }
      c->out.erase(0, *sent);
    }
    bool want = !c->out.empty();
    if (want != c->want_write) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u);
      ev.data.u64 = token;
      if (!sys::epoll_ctl(epoll.get(), EPOLL_CTL_MOD, c->fd.get(), &ev)) return false;
      c->want_write = want;
    }
    return true;
  }

  // --- timers --------------------------------------------------------------------------

  int Timeout() const {
    auto now = Clock::now();
    auto next = Clock::time_point::max();
    for (const auto& [id, p] : pending) next = std::min(next, p.deadline);
    for (const auto& [token, c] : connections) next = std::min(next, c.deadline);
    if (next == Clock::time_point::max()) return -1;
    if (next <= now) return 0;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    return static_cast<int>(std::min<int64_t>(ms, 60000));
  }

  void Expire() {
    auto now = Clock::now();
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->second.deadline <= now) {
        Pending p = std::move(it->second);
        it = pending.erase(it);
        ReplyTo(p, ServfailReply(p.query));
      } else {
        ++it;
      }
    }
    std::vector<uint64_t> idle;
    for (const auto& [token, c] : connections) {
      if (c.deadline <= now) idle.push_back(token);
    }
    for (uint64_t token : idle) CloseConnection(token);
  }
};

Server::Server(std::unique_ptr<State> state) : s_(std::move(state)) {}
Server::~Server() = default;

Result<std::unique_ptr<Server>> Server::Create(UniqueFd control) {
  auto state = std::make_unique<State>();
  MOAT_ASSIGN_OR_RETURN(state->epoll, sys::epoll_create1());
  state->control = std::move(control);
  MOAT_TRY(state->Add(state->control.get(), EPOLLIN, {Kind::kControl, {}}));
  return std::unique_ptr<Server>(new Server(std::move(state)));
}

Result<void> Server::Run() {
  State& s = *s_;
  epoll_event events[64];
  while (!s.done) {
    MOAT_ASSIGN_OR_RETURN(int n, sys::epoll_wait(s.epoll.get(), events, 64, s.Timeout()));
    // Control messages first: the core sends records, listen and upstream changes before it
    // lets the containers that depend on them run, so a query that became readable in the
    // same round must see them.
    std::stable_partition(events, events + n, [&](const epoll_event& e) {
      auto w = s.watches.find(e.data.u64);
      return w != s.watches.end() && w->second.kind == Kind::kControl;
    });
    for (int i = 0; i < n && !s.done; ++i) {
      uint64_t token = events[i].data.u64;
      auto w = s.watches.find(token);
      if (w == s.watches.end()) continue;
      Watch watch = w->second;
      switch (watch.kind) {
        case Kind::kControl:
          s.OnControl();
          break;
        case Kind::kUdp:
          s.OnUdp(watch.network);
          break;
        case Kind::kTcpListener:
          s.OnTcpListener(watch.network);
          break;
        case Kind::kTcpConnection:
          s.OnTcpConnection(token, events[i].events);
          break;
        case Kind::kUpstream:
          s.OnUpstream(token == s.upstream_v4_token ? s.upstream_v4.get() : s.upstream_v6.get());
          break;
      }
    }
    s.Expire();
  }
  return Ok();
}

}  // namespace moat::net::dns
