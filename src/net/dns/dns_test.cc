// moat-dns end to end, as root: the resolver is started through dns::Resolver and serves on
// port 53 of 127.53.N.1 (N random per test); queries come from other 127.53.N.x addresses, and
// the fake upstream listens on 127.53.N.2. Only loopback is used.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <ldns/ldns.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "base/sys/inet.h"
#include "net/dns/client.h"
#include "net/dns/sockaddr.h"

namespace moat::net::dns {
namespace {

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;

IpAddr Ip(const std::string& text) { return *IpAddr::Parse(text); }

std::string Wire(ldns_pkt* p) {
  uint8_t* buf = nullptr;
  size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&buf, p, &size), LDNS_STATUS_OK);
  std::string out(reinterpret_cast<char*>(buf), size);
  free(buf);
  return out;
}

std::string Query(const char* name, ldns_rr_type type, uint16_t id) {
  ldns_pkt* p = nullptr;
  EXPECT_EQ(ldns_pkt_query_new_frm_str(&p, name, type, LDNS_RR_CLASS_IN, LDNS_RD), LDNS_STATUS_OK);
  ldns_pkt_set_id(p, id);
  std::string out = Wire(p);
  ldns_pkt_free(p);
  return out;
}

Pkt Parse(const std::string& wire) {
  ldns_pkt* p = nullptr;
  if (ldns_wire2pkt(&p, reinterpret_cast<const uint8_t*>(wire.data()), wire.size()) !=
      LDNS_STATUS_OK)
    return nullptr;
  return Pkt(p);
}

std::vector<std::string> Answers(const ldns_pkt* p) {
  std::vector<std::string> out;
  ldns_rr_list* a = ldns_pkt_answer(p);
  for (size_t i = 0; a && i < ldns_rr_list_rr_count(a); ++i) {
    char* s = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(a, i), 0));
    out.push_back(s);
    free(s);
  }
  return out;
}

UniqueFd Bound(const IpAddr& addr, uint16_t port, int type) {
  auto fd = sys::socket(AF_INET, type, 0);
  EXPECT_TRUE(fd.has_value());
  if (!fd) return {};
  (void)sys::setsockopt_int(fd->get(), SOL_SOCKET, SO_REUSEADDR, 1);
  sockaddr_storage ss{};
  socklen_t len = ToSockaddr(addr, port, &ss);
  auto r = sys::bind(fd->get(), reinterpret_cast<sockaddr*>(&ss), len);
  EXPECT_TRUE(r.has_value()) << r.error().message;
  return std::move(*fd);
}

// Waits up to `ms` for one datagram on `fd`.
std::optional<std::string> Receive(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, ms) != 1) return std::nullopt;
  std::string buf(65536, '\0');
  ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<size_t>(n));
  return buf;
}

class DnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (binds port 53, moat-dns drops privileges)";
    std::random_device rd;
    net_ = static_cast<int>(rd() % 250) + 1;
    gateway_ = Ip(Prefix() + "1");
    upstream_ = Ip(Prefix() + "2");
    client_ = Ip(Prefix() + "10");
    char tmpl[] = "/tmp/moat-dns-root-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    ASSERT_EQ(chmod(root_.c_str(), 0555), 0);
    auto r = Resolver::Start(MOAT_DNS_BINARY, root_);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    resolver_ = std::move(*r);
    auto l = resolver_->Listen("net1", *IpPrefix::Parse(Prefix() + "0/24"), gateway_);
    ASSERT_TRUE(l.has_value()) << l.error().message;
    ASSERT_TRUE(resolver_
                    ->SetRecords("net1", {{"web", {Ip("172.18.0.2")}},
                                          {"Db", {Ip("172.18.0.3"), Ip("fd00::3")}}})
                    .has_value());
  }
  void TearDown() override {
    resolver_.reset();
    if (!root_.empty()) rmdir(root_.c_str());
  }

  std::string Prefix() const { return "127.53." + std::to_string(net_) + "."; }

  // Sends `query` from `from` to the resolver and waits `ms` for the reply.
  std::optional<std::string> Ask(const std::string& query, int ms = 3000) {
    return AskFrom(client_, query, ms);
  }
  std::optional<std::string> AskFrom(const IpAddr& from, const std::string& query, int ms) {
    UniqueFd fd = Bound(from, 0, SOCK_DGRAM);
    sockaddr_storage to{};
    socklen_t len = ToSockaddr(gateway_, 53, &to);
    EXPECT_EQ(
        ::sendto(fd.get(), query.data(), query.size(), 0, reinterpret_cast<sockaddr*>(&to), len),
        static_cast<ssize_t>(query.size()));
    return Receive(fd.get(), ms);
  }
  Pkt AskParsed(const std::string& query) {
    auto reply = Ask(query);
    EXPECT_TRUE(reply.has_value());
    if (!reply) return nullptr;
    Pkt p = Parse(*reply);
    EXPECT_TRUE(p);
    return p;
  }

  int net_ = 0;
  IpAddr gateway_, upstream_, client_;
  std::string root_;
  std::unique_ptr<Resolver> resolver_;
};

TEST_F(DnsTest, AnswersAAndAaaa) {
  Pkt a = AskParsed(Query("web", LDNS_RR_TYPE_A, 0x0101));
  ASSERT_TRUE(a);
  EXPECT_EQ(ldns_pkt_id(a.get()), 0x0101);
  EXPECT_EQ(Answers(a.get()), std::vector<std::string>{"172.18.0.2"});
  Pkt aaaa = AskParsed(Query("db", LDNS_RR_TYPE_AAAA, 0x0202));
  ASSERT_TRUE(aaaa);
  EXPECT_EQ(Answers(aaaa.get()), std::vector<std::string>{"fd00::3"});
}

TEST_F(DnsTest, NamesAreCaseInsensitiveWithTrailingDot) {
  Pkt a = AskParsed(Query("WEB.", LDNS_RR_TYPE_A, 3));
  ASSERT_TRUE(a);
  EXPECT_EQ(Answers(a.get()), std::vector<std::string>{"172.18.0.2"});
  Pkt b = AskParsed(Query("dB", LDNS_RR_TYPE_A, 4));
  ASSERT_TRUE(b);
  EXPECT_EQ(Answers(b.get()), std::vector<std::string>{"172.18.0.3"});
}

TEST_F(DnsTest, PtrAndRecordReplacement) {
  Pkt p = AskParsed(Query("2.0.18.172.in-addr.arpa", LDNS_RR_TYPE_PTR, 5));
  ASSERT_TRUE(p);
  EXPECT_EQ(Answers(p.get()), std::vector<std::string>{"web."});
  ASSERT_TRUE(resolver_->SetRecords("net1", {{"web", {Ip("172.18.0.9")}}}).has_value());
  Pkt a = AskParsed(Query("web", LDNS_RR_TYPE_A, 6));
  ASSERT_TRUE(a);
  EXPECT_EQ(Answers(a.get()), std::vector<std::string>{"172.18.0.9"});
  Pkt gone = AskParsed(Query("db", LDNS_RR_TYPE_A, 7));
  ASSERT_TRUE(gone);
  EXPECT_EQ(ldns_pkt_get_rcode(gone.get()), LDNS_RCODE_SERVFAIL);
}

TEST_F(DnsTest, UnknownNameWithoutUpstreamIsServfail) {
  Pkt p = AskParsed(Query("nothing.example", LDNS_RR_TYPE_A, 0x7777));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_id(p.get()), 0x7777);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_SERVFAIL);
}

TEST_F(DnsTest, SourcesOutsideTheSubnetGetNoAnswer) {
  EXPECT_FALSE(AskFrom(Ip("127.0.0.1"), Query("web", LDNS_RR_TYPE_A, 8), 500).has_value());
  // TCP from outside: the connection is closed at once.
  UniqueFd fd = Bound(Ip("127.0.0.1"), 0, SOCK_STREAM);
  sockaddr_storage to{};
  socklen_t len = ToSockaddr(gateway_, 53, &to);
  ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), len), 0);
  std::string q = Query("web", LDNS_RR_TYPE_A, 9);
  std::string framed =
      std::string{static_cast<char>(q.size() >> 8), static_cast<char>(q.size() & 0xff)} + q;
  (void)::send(fd.get(), framed.data(), framed.size(), MSG_NOSIGNAL);
  pollfd p{fd.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 3000), 1);
  char c;
  EXPECT_LE(::recv(fd.get(), &c, 1, 0), 0);
  // And the inside still works.
  EXPECT_TRUE(Ask(Query("web", LDNS_RR_TYPE_A, 10)).has_value());
}

TEST_F(DnsTest, TcpQuery) {
  UniqueFd fd = Bound(client_, 0, SOCK_STREAM);
  sockaddr_storage to{};
  socklen_t len = ToSockaddr(gateway_, 53, &to);
  ASSERT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), len), 0);
  for (uint16_t id : {0x1111, 0x2222}) {  // two queries on one connection
    std::string q = Query("web", LDNS_RR_TYPE_A, id);
    std::string framed =
        std::string{static_cast<char>(q.size() >> 8), static_cast<char>(q.size() & 0xff)} + q;
    ASSERT_EQ(::send(fd.get(), framed.data(), framed.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(framed.size()));
    std::string got;
    auto need = [&] {
      return 2 + ((size_t{static_cast<uint8_t>(got[0])} << 8) | static_cast<uint8_t>(got[1]));
    };
    while (got.size() < 2 || got.size() < need()) {
      pollfd p{fd.get(), POLLIN, 0};
      ASSERT_EQ(::poll(&p, 1, 3000), 1);
      char buf[4096];
      ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
      ASSERT_GT(n, 0);
      got.append(buf, static_cast<size_t>(n));
    }
    Pkt p = Parse(got.substr(2));
    ASSERT_TRUE(p);
    EXPECT_EQ(ldns_pkt_id(p.get()), id);
    EXPECT_EQ(Answers(p.get()), std::vector<std::string>{"172.18.0.2"});
  }
}

UniqueFd ConnectTcp(const IpAddr& from, const IpAddr& to_addr) {
  UniqueFd fd = Bound(from, 0, SOCK_STREAM);
  sockaddr_storage to{};
  socklen_t len = ToSockaddr(to_addr, 53, &to);
  EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&to), len), 0);
  return fd;
}

// Whether moat-dns closed `fd` within `ms`.
bool ClosedWithin(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, ms) != 1) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

TEST_F(DnsTest, AtMost64TcpConnections) {
  std::vector<UniqueFd> held;
  for (int i = 0; i < 64; ++i) held.push_back(ConnectTcp(client_, gateway_));
  // Make sure all 64 were accepted before the next one: a round trip on the last one.
  std::string q = Query("web", LDNS_RR_TYPE_A, 1);
  std::string framed =
      std::string{static_cast<char>(q.size() >> 8), static_cast<char>(q.size() & 0xff)} + q;
  ASSERT_EQ(::send(held.back().get(), framed.data(), framed.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(framed.size()));
  pollfd p{held.back().get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 3000), 1);
  UniqueFd extra = ConnectTcp(client_, gateway_);
  EXPECT_TRUE(ClosedWithin(extra.get(), 3000));
  EXPECT_FALSE(ClosedWithin(held.front().get(), 200));
  // UDP is unaffected.
  EXPECT_TRUE(Ask(Query("web", LDNS_RR_TYPE_A, 2)).has_value());
}

TEST_F(DnsTest, MalformedPacketsDoNotCrashIt) {
  std::mt19937 rng(7);
  UniqueFd fd = Bound(client_, 0, SOCK_DGRAM);
  sockaddr_storage to{};
  socklen_t len = ToSockaddr(gateway_, 53, &to);
  auto send = [&](const std::string& b) {
    (void)::sendto(fd.get(), b.data(), b.size(), 0, reinterpret_cast<sockaddr*>(&to), len);
  };
  for (int i = 0; i < 300; ++i) {
    std::string b(rng() % 1500, '\0');
    for (char& c : b) c = static_cast<char>(rng());
    send(b);
  }
  send(std::string(5, 'x'));  // shorter than a header
  send("");
  // QDCOUNT 65535 and a name of 63-byte labels, and a compression pointer to itself.
  std::string huge = {0x12, 0x34, 0x01, 0x00, '\xff', '\xff', 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < 200; ++i) huge += '\x3f' + std::string(63, 'a');
  send(huge);
  std::string loop = {0x12, 0x35, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, '\xc0', 0x0c, 0, 1, 0, 1};
  send(loop);
  // The flood may overflow the resolver's receive queue, which drops datagrams as a real
  // network would: like a stub resolver, retry until it has caught up.
  bool answered = false;
  for (int i = 0; i < 5 && !answered; ++i)
    answered = Ask(Query("web", LDNS_RR_TYPE_A, 0x5050), 1000).has_value();
  ASSERT_TRUE(answered);
  // A query cut inside its question gets FORMERR with its id.
  std::string q = Query("web", LDNS_RR_TYPE_A, 0x5151);
  auto formerr = Ask(q.substr(0, q.size() - 2));
  ASSERT_TRUE(formerr.has_value());
  Pkt f = Parse(*formerr);
  ASSERT_TRUE(f);
  EXPECT_EQ(ldns_pkt_id(f.get()), 0x5151);
  EXPECT_EQ(ldns_pkt_get_rcode(f.get()), LDNS_RCODE_FORMERR);
  // Still alive and answering.
  Pkt a = AskParsed(Query("web", LDNS_RR_TYPE_A, 0x5252));
  ASSERT_TRUE(a);
  EXPECT_EQ(Answers(a.get()), std::vector<std::string>{"172.18.0.2"});
  EXPECT_EQ(::kill(resolver_->Pid(), 0), 0);
}

// A fake upstream on 127.53.N.2:53. kAnswer answers each query with A 192.0.2.1; kSilent
// never answers; kSpoof sends that answer from `spoof` (another address, port 53) and, from
// the right address, with the id off by one: both must be ignored.
enum class Mode { kAnswer, kSilent, kSpoof };

class FakeUpstream {
 public:
  FakeUpstream(const IpAddr& addr, Mode mode, const IpAddr& spoof = {})
      : fd_(Bound(addr, 53, SOCK_DGRAM)) {
    if (mode == Mode::kSpoof) spoof_ = Bound(spoof, 53, SOCK_DGRAM);
    thread_ = std::thread([this, mode] {
      while (!stop_) {
        pollfd p{fd_.get(), POLLIN, 0};
        if (::poll(&p, 1, 100) != 1) continue;
        std::string buf(4096, '\0');
        sockaddr_storage from{};
        socklen_t from_len = sizeof from;
        ssize_t n = ::recvfrom(fd_.get(), buf.data(), buf.size(), 0,
                               reinterpret_cast<sockaddr*>(&from), &from_len);
        if (n <= 0) continue;
        buf.resize(static_cast<size_t>(n));
        ++queries_;
        Pkt q = Parse(buf);
        if (!q || mode == Mode::kSilent) continue;
        ldns_pkt_set_qr(q.get(), true);
        ldns_pkt_set_ra(q.get(), true);
        ldns_rr* rr = nullptr;
        ldns_rdf* owner = ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(q.get()), 0));
        char* name = ldns_rdf2str(owner);
        std::string text = std::string(name) + " 60 IN A 192.0.2.1";
        free(name);
        if (ldns_rr_new_frm_str(&rr, text.c_str(), 0, nullptr, nullptr) != LDNS_STATUS_OK) continue;
        ldns_pkt_push_rr(q.get(), LDNS_SECTION_ANSWER, rr);
        std::string reply = Wire(q.get());
        auto* to = reinterpret_cast<sockaddr*>(&from);
        if (mode == Mode::kAnswer) {
          (void)::sendto(fd_.get(), reply.data(), reply.size(), 0, to, from_len);
          continue;
        }
        (void)::sendto(spoof_.get(), reply.data(), reply.size(), 0, to, from_len);
        ldns_pkt_set_id(q.get(), static_cast<uint16_t>(ldns_pkt_id(q.get()) + 1));
        std::string wrong_id = Wire(q.get());
        (void)::sendto(fd_.get(), wrong_id.data(), wrong_id.size(), 0, to, from_len);
      }
    });
  }
  ~FakeUpstream() {
    stop_ = true;
    thread_.join();
  }
  int queries() const { return queries_; }

 private:
  UniqueFd fd_, spoof_;
  std::atomic<bool> stop_{false};
  std::atomic<int> queries_{0};
  std::thread thread_;
};

TEST_F(DnsTest, ForwardsUnknownNamesAndRelaysWithTheClientsId) {
  FakeUpstream upstream(upstream_, Mode::kAnswer);
  ASSERT_TRUE(resolver_->SetUpstream({upstream_}).has_value());
  Pkt p = AskParsed(Query("Example.COM", LDNS_RR_TYPE_A, 0x4242));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_id(p.get()), 0x4242);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(Answers(p.get()), std::vector<std::string>{"192.0.2.1"});
  EXPECT_EQ(upstream.queries(), 1);
  // Known names are still answered locally.
  Pkt local = AskParsed(Query("web", LDNS_RR_TYPE_A, 1));
  ASSERT_TRUE(local);
  EXPECT_EQ(Answers(local.get()), std::vector<std::string>{"172.18.0.2"});
  EXPECT_EQ(upstream.queries(), 1);
}

TEST_F(DnsTest, SilentUpstreamGivesServfailAfterTheTimeout) {
  FakeUpstream upstream(upstream_, Mode::kSilent);
  ASSERT_TRUE(resolver_->SetUpstream({upstream_}).has_value());
  auto start = std::chrono::steady_clock::now();
  Pkt p = AskParsed(Query("slow.example", LDNS_RR_TYPE_A, 0x0909));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_id(p.get()), 0x0909);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_SERVFAIL);
  EXPECT_GE(took, std::chrono::milliseconds(1900));
  EXPECT_EQ(upstream.queries(), 1);
}

TEST_F(DnsTest, SpoofedUpstreamRepliesAreIgnored) {
  FakeUpstream upstream(upstream_, Mode::kSpoof, Ip(Prefix() + "3"));
  ASSERT_TRUE(resolver_->SetUpstream({upstream_}).has_value());
  Pkt p = AskParsed(Query("spoof.example", LDNS_RR_TYPE_A, 0x3131));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_id(p.get()), 0x3131);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_SERVFAIL);
  EXPECT_TRUE(Answers(p.get()).empty());
  EXPECT_EQ(upstream.queries(), 1);
}

// Sends `query` over TCP from `from` and waits up to 3 s for one framed reply.
std::optional<std::string> AskTcp(const IpAddr& from, const IpAddr& gateway,
                                  const std::string& query) {
  UniqueFd fd = ConnectTcp(from, gateway);
  std::string framed =
      std::string{static_cast<char>(query.size() >> 8), static_cast<char>(query.size() & 0xff)} +
      query;
  if (::send(fd.get(), framed.data(), framed.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(framed.size()))
    return std::nullopt;
  std::string got;
  auto need = [&] {
    return 2 + ((size_t{static_cast<uint8_t>(got[0])} << 8) | static_cast<uint8_t>(got[1]));
  };
  while (got.size() < 2 || got.size() < need()) {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 3000) != 1) return std::nullopt;
    char buf[4096];
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n <= 0) return std::nullopt;
    got.append(buf, static_cast<size_t>(n));
  }
  return got.substr(2, need() - 2);
}

class ClientUpstreamTest : public DnsTest {
 protected:
  // The rcode of the reply to an A query for `name` from `from`, and its answers; nullopt
  // without a reply (or one with another id).
  struct Reply {
    ldns_pkt_rcode rcode;
    std::vector<std::string> answers;
  };
  std::optional<Reply> Resolve(const IpAddr& from, const char* name, uint16_t id,
                               bool tcp = false) {
    std::string q = Query(name, LDNS_RR_TYPE_A, id);
    auto wire = tcp ? AskTcp(from, gateway_, q) : AskFrom(from, q, 3000);
    if (!wire) return std::nullopt;
    Pkt p = Parse(*wire);
    if (!p || ldns_pkt_id(p.get()) != id) return std::nullopt;
    return Reply{ldns_pkt_get_rcode(p.get()), Answers(p.get())};
  }
  void ExpectRelayed(const IpAddr& from, const char* name, uint16_t id, bool tcp = false) {
    auto r = Resolve(from, name, id, tcp);
    ASSERT_TRUE(r.has_value()) << name;
    EXPECT_EQ(r->rcode, LDNS_RCODE_NOERROR) << name;
    EXPECT_EQ(r->answers, std::vector<std::string>{"192.0.2.1"}) << name;
  }
  void ExpectServfail(const IpAddr& from, const char* name, uint16_t id) {
    auto r = Resolve(from, name, id);
    ASSERT_TRUE(r.has_value()) << name;
    EXPECT_EQ(r->rcode, LDNS_RCODE_SERVFAIL) << name;
    EXPECT_TRUE(r->answers.empty()) << name;
  }

  IpAddr own() const { return Ip(Prefix() + "20"); }    // has its own servers
  IpAddr other() const { return Ip(Prefix() + "21"); }  // same network, no override
  IpAddr own_server() const { return Ip(Prefix() + "4"); }
};

TEST_F(ClientUpstreamTest, OnlyThatClientsQueriesGoToItsServers) {
  FakeUpstream upstream(own_server(), Mode::kAnswer);
  ASSERT_TRUE(resolver_->SetUpstream({}).has_value());  // no global servers
  auto set = resolver_->SetClientUpstream("net1", own(), {own_server()});
  ASSERT_TRUE(set.has_value()) << set.error().message;
  ExpectRelayed(own(), "example.com", 0x6101);
  EXPECT_EQ(upstream.queries(), 1);
  ExpectRelayed(own(), "tcp.example.com", 0x6102, /*tcp=*/true);
  EXPECT_EQ(upstream.queries(), 2);
  // Its known names are still answered locally.
  auto local = Resolve(own(), "web", 0x6103);
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(local->answers, std::vector<std::string>{"172.18.0.2"});
  // Another container of the network has no servers: SERVFAIL, nothing sent upstream.
  ExpectServfail(other(), "example.com", 0x6104);
  EXPECT_EQ(upstream.queries(), 2);

  // New records for the network, and another network's override and unlisten, keep it.
  ASSERT_TRUE(resolver_->SetRecords("net1", {{"web", {Ip("172.18.0.9")}}}).has_value());
  ASSERT_TRUE(resolver_->SetClientUpstream("net2", own(), {Ip(Prefix() + "5")}).has_value());
  ASSERT_TRUE(resolver_->Unlisten("net2").has_value());
  ExpectRelayed(own(), "after-records.example", 0x6105);
  EXPECT_EQ(upstream.queries(), 3);

  // Removing the override: SERVFAIL again.
  ASSERT_TRUE(resolver_->SetClientUpstream("net1", own(), {}).has_value());
  ExpectServfail(own(), "removed.example", 0x6106);
  EXPECT_EQ(upstream.queries(), 3);
}

TEST_F(ClientUpstreamTest, WorksWithoutSetUpstreamAndOverridesTheGlobalServers) {
  FakeUpstream mine(own_server(), Mode::kAnswer);
  // No SetUpstream yet: SetClientUpstream sends the sockets itself.
  ASSERT_TRUE(resolver_->SetClientUpstream("net1", own(), {own_server()}).has_value());
  ExpectRelayed(own(), "first.example", 0x6201);
  EXPECT_EQ(mine.queries(), 1);
  ExpectServfail(other(), "first.example", 0x6202);

  // Global servers: the others use them, the client with an override only its own.
  FakeUpstream global(upstream_, Mode::kAnswer);
  ASSERT_TRUE(resolver_->SetUpstream({upstream_}).has_value());
  ExpectRelayed(other(), "global.example", 0x6203);
  EXPECT_EQ(global.queries(), 1);
  ExpectRelayed(own(), "mine.example", 0x6204);
  EXPECT_EQ(mine.queries(), 2);
  EXPECT_EQ(global.queries(), 1);
}

TEST_F(ClientUpstreamTest, RepliesMustComeFromTheClientsServers) {
  // The client's server answers from another address (and with a wrong id from its own):
  // both ignored, SERVFAIL after the timeout. The global server (silent) is not asked.
  FakeUpstream spoofing(own_server(), Mode::kSpoof, Ip(Prefix() + "6"));
  FakeUpstream global(upstream_, Mode::kSilent);
  ASSERT_TRUE(resolver_->SetUpstream({upstream_}).has_value());
  ASSERT_TRUE(resolver_->SetClientUpstream("net1", own(), {own_server()}).has_value());
  ExpectServfail(own(), "spoof.example", 0x6301);
  EXPECT_EQ(spoofing.queries(), 1);
  EXPECT_EQ(global.queries(), 0);
}

TEST_F(ClientUpstreamTest, UnlistenDropsTheNetworksOverrides) {
  FakeUpstream upstream(own_server(), Mode::kAnswer);
  ASSERT_TRUE(resolver_->SetClientUpstream("net1", own(), {own_server()}).has_value());
  ExpectRelayed(own(), "before.example", 0x6401);
  ASSERT_TRUE(resolver_->Unlisten("net1").has_value());
  ASSERT_TRUE(resolver_->Listen("net1", *IpPrefix::Parse(Prefix() + "0/24"), gateway_).has_value());
  ExpectServfail(own(), "after.example", 0x6402);
  EXPECT_EQ(upstream.queries(), 1);
}

TEST_F(DnsTest, UnlistenStopsAnswering) {
  ASSERT_TRUE(Ask(Query("web", LDNS_RR_TYPE_A, 1)).has_value());
  ASSERT_TRUE(resolver_->Unlisten("net1").has_value());
  EXPECT_FALSE(Ask(Query("web", LDNS_RR_TYPE_A, 2), 500).has_value());
  // The port is free again: listening anew works.
  ASSERT_TRUE(resolver_->Listen("net1", *IpPrefix::Parse(Prefix() + "0/24"), gateway_).has_value());
  ASSERT_TRUE(resolver_->SetRecords("net1", {{"web", {Ip("172.18.0.2")}}}).has_value());
  EXPECT_TRUE(Ask(Query("web", LDNS_RR_TYPE_A, 3)).has_value());
}

std::map<std::string, std::string> Status(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::map<std::string, std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    out[line.substr(0, colon)] = value;
  }
  return out;
}

TEST_F(DnsTest, IsConfined) {
  // An answer means the sandbox is in place (it is entered before the first read).
  ASSERT_TRUE(Ask(Query("web", LDNS_RR_TYPE_A, 1)).has_value());
  auto st = Status(resolver_->Pid());
  ASSERT_FALSE(st.empty());
  std::istringstream uids(st["Uid"]);
  for (int i = 0; i < 4; ++i) {
    int uid = -1;
    uids >> uid;
    EXPECT_EQ(uid, 65534) << st["Uid"];
  }
  std::istringstream gids(st["Gid"]);
  int gid = -1;
  gids >> gid;
  EXPECT_EQ(gid, 65534);
  EXPECT_EQ(st["Groups"], "");
  EXPECT_EQ(st["CapEff"], "0000000000000000");
  EXPECT_EQ(st["CapPrm"], "0000000000000000");
  EXPECT_EQ(st["CapBnd"], "0000000000000000");
  EXPECT_EQ(st["NoNewPrivs"], "1");
  EXPECT_EQ(st["Seccomp"], "2");
}

TEST_F(DnsTest, ExitsAndIsReapedWhenTheResolverIsDestroyed) {
  pid_t pid = resolver_->Pid();
  ASSERT_EQ(::kill(pid, 0), 0);
  auto start = std::chrono::steady_clock::now();
  resolver_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST_F(DnsTest, ListenFailsWhenThePortIsTaken) {
  // moat-dns holds 127.53.N.1:53 for net1; a second network on the same gateway cannot bind.
  auto r = resolver_->Listen("net2", *IpPrefix::Parse(Prefix() + "0/24"), gateway_);
  EXPECT_FALSE(r.has_value());
}

}  // namespace
}  // namespace moat::net::dns
