// Privileged (root, real kernel). Every link lives in network namespaces the test creates:
// a "host" namespace for the bridge and one namespace per container; the machine's own
// interfaces are never touched. Namespaces are removed on teardown, also after a failure.
#include "net/netlink.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "net/netns.h"

namespace moat::net {
namespace {

std::string RandomHex(int digits) {
  std::random_device rd;
  std::string s;
  for (int i = 0; i < digits; ++i) s += "0123456789abcdef"[rd() % 16];
  return s;
}

IpAddr Addr(const char* text) {
  IpAddr a;
  if (inet_pton(AF_INET, text, a.bytes.data()) == 1) {
    a.family = AF_INET;
  } else {
    MOAT_CHECK(inet_pton(AF_INET6, text, a.bytes.data()) == 1);
    a.family = AF_INET6;
  }
  return a;
}

IpPrefix Prefix(const char* text, int len) { return IpPrefix{Addr(text), len}; }

std::string Text(const IpAddr& a) {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(a.family, a.bytes.data(), buf, sizeof buf);
  return buf;
}

// Named namespaces in a mkdtemp directory; all removed on destruction.
class Namespaces {
 public:
  Namespaces() {
    char tmpl[] = "/tmp/moat-netlink-test-XXXXXX";
    MOAT_CHECK(mkdtemp(tmpl) != nullptr);
    dir_ = tmpl;
  }
  ~Namespaces() {
    for (const auto& p : paths_) (void)RemoveNamedNetns(p);
    rmdir(dir_.c_str());
  }
  Result<UniqueFd> Create(const std::string& name) {
    paths_.push_back(dir_ + "/" + name);
    return CreateNamedNetns(paths_.back());
  }

 private:
  std::string dir_;
  std::vector<std::string> paths_;
};

// A UDP socket made inside `netns_fd`, bound to 0.0.0.0:0 there.
UniqueFd UdpSocketIn(int netns_fd) {
  UniqueFd out;
  auto r = InNetns(netns_fd, [&]() -> Result<void> {
    out.reset(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!out.valid()) return FailErrno("socket");
    sockaddr_in any{};
    any.sin_family = AF_INET;
    if (bind(out.get(), reinterpret_cast<sockaddr*>(&any), sizeof any) != 0)
      return FailErrno("bind");
    return Ok();
  });
  MOAT_CHECK(r.has_value());
  return out;
}

// Whether a datagram sent from `from` to `to_addr`:port-of-`to` arrives on `to` within
// `budget_ms`. Sends one probe every 100 ms: the first may wait for ARP, and a link that was
// just set up may drop frames until the kernel's linkwatch activates its queue.
bool UdpReaches(int from, int to, const IpAddr& to_addr, int budget_ms) {
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  MOAT_CHECK(getsockname(to, reinterpret_cast<sockaddr*>(&bound), &len) == 0);
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = bound.sin_port;
  memcpy(&dst.sin_addr, to_addr.bytes.data(), 4);
  std::string token = "moat-probe-" + RandomHex(8);
  for (int waited = 0; waited < budget_ms; waited += 100) {
    (void)sendto(from, token.data(), token.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&dst),
                 sizeof dst);
    pollfd p{to, POLLIN, 0};
    if (poll(&p, 1, 100) == 1) {
      char buf[64];
      ssize_t n = recv(to, buf, sizeof buf, MSG_DONTWAIT);
      if (n == static_cast<ssize_t>(token.size()) && std::string(buf, n) == token) return true;
    }
  }
  return false;
}

// What the network driver does per container: a veth pair with the container end created as
// eth0 inside the container namespace, address + default route inside, host end on the bridge.
Result<void> AttachContainer(Netlink& host, int container_ns, const std::string& host_end,
                             const std::string& bridge, const IpPrefix& addr,
                             const IpAddr& gateway) {
  MOAT_TRY(host.CreateVeth(host_end, "eth0", container_ns, std::nullopt, 1500));
  MOAT_ASSIGN_OR_RETURN(Netlink inside, Netlink::OpenIn(container_ns));
  MOAT_TRY(inside.AddAddress("eth0", addr));
  MOAT_TRY(inside.SetUp("eth0", true));
  MOAT_TRY(inside.AddRoute(Prefix("0.0.0.0", 0), gateway, "eth0"));
  MOAT_TRY(host.SetMaster(host_end, bridge));
  MOAT_TRY(host.SetUp(host_end, true));
  return Ok();
}

bool HasAddress(const std::vector<IpPrefix>& list, const IpPrefix& p) {
  return std::find(list.begin(), list.end(), p) != list.end();
}

// A host namespace with bridge br<sfx> at 10.R.S.1/24 and containers a (.2) and b (.3), each
// with eth0 and a default route via the bridge.
class BridgeTopology : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string sfx = RandomHex(6);
    bridge_ = "br" + sfx;
    veth_a_ = "va" + sfx;
    veth_b_ = "vb" + sfx;
    std::random_device rd;
    std::string net = "10." + std::to_string(rd() % 250 + 1) + "." + std::to_string(rd() % 250 + 1);
    bridge_ip_ = Addr((net + ".1").c_str());
    ip_a_ = Addr((net + ".2").c_str());
    ip_b_ = Addr((net + ".3").c_str());

    auto host = ns_.Create("host");
    ASSERT_TRUE(host) << host.error().message;
    host_ns_ = std::move(*host);
    auto a = ns_.Create("a");
    ASSERT_TRUE(a) << a.error().message;
    ns_a_ = std::move(*a);
    auto b = ns_.Create("b");
    ASSERT_TRUE(b) << b.error().message;
    ns_b_ = std::move(*b);

    auto nl = Netlink::OpenIn(host_ns_.get());
    ASSERT_TRUE(nl) << nl.error().message;
    host_.emplace(std::move(*nl));
    auto r = host_->CreateBridge(bridge_, 0);
    ASSERT_TRUE(r) << r.error().message;
    r = host_->AddAddress(bridge_, IpPrefix{bridge_ip_, 24});
    ASSERT_TRUE(r) << r.error().message;
    r = host_->SetUp(bridge_, true);
    ASSERT_TRUE(r) << r.error().message;
    r = AttachContainer(*host_, ns_a_.get(), veth_a_, bridge_, IpPrefix{ip_a_, 24}, bridge_ip_);
    ASSERT_TRUE(r) << r.error().message;
    r = AttachContainer(*host_, ns_b_.get(), veth_b_, bridge_, IpPrefix{ip_b_, 24}, bridge_ip_);
    ASSERT_TRUE(r) << r.error().message;
  }

  Namespaces ns_;
  UniqueFd host_ns_, ns_a_, ns_b_;
  std::optional<Netlink> host_;
  std::string bridge_, veth_a_, veth_b_;
  IpAddr bridge_ip_, ip_a_, ip_b_;
};

TEST_F(BridgeTopology, ContainersTalkUntilTheirPortsAreIsolated) {
  UniqueFd sock_a = UdpSocketIn(ns_a_.get());
  UniqueFd sock_b = UdpSocketIn(ns_b_.get());
  UniqueFd sock_host = UdpSocketIn(host_ns_.get());

  EXPECT_TRUE(UdpReaches(sock_a.get(), sock_b.get(), ip_b_, 3000)) << "a -> b over the bridge";
  EXPECT_TRUE(UdpReaches(sock_b.get(), sock_a.get(), ip_a_, 3000)) << "b -> a over the bridge";

  // The default route: an address outside the container subnet, held by the host namespace,
  // is reached only through the gateway.
  auto lo_addr = host_->AddAddress("lo", Prefix("192.0.2.77", 32));
  ASSERT_TRUE(lo_addr) << lo_addr.error().message;
  EXPECT_TRUE(UdpReaches(sock_a.get(), sock_host.get(), Addr("192.0.2.77"), 3000))
      << "a -> outside subnet via the default route";

  auto iso = host_->SetBridgePortIsolated(veth_a_, true);
  ASSERT_TRUE(iso) << iso.error().message;
  // One isolated port can still talk to a non-isolated one.
  EXPECT_TRUE(UdpReaches(sock_a.get(), sock_b.get(), ip_b_, 3000));
  iso = host_->SetBridgePortIsolated(veth_b_, true);
  ASSERT_TRUE(iso) << iso.error().message;

  EXPECT_FALSE(UdpReaches(sock_a.get(), sock_b.get(), ip_b_, 500)) << "isolated a -> b";
  EXPECT_FALSE(UdpReaches(sock_b.get(), sock_a.get(), ip_a_, 500)) << "isolated b -> a";
  // Isolation is between ports only: the host (the bridge itself) is still reachable.
  EXPECT_TRUE(UdpReaches(sock_a.get(), sock_host.get(), bridge_ip_, 3000));
  EXPECT_TRUE(UdpReaches(sock_a.get(), sock_host.get(), Addr("192.0.2.77"), 3000));

  iso = host_->SetBridgePortIsolated(veth_a_, false);
  ASSERT_TRUE(iso) << iso.error().message;
  EXPECT_TRUE(UdpReaches(sock_a.get(), sock_b.get(), ip_b_, 3000)) << "after un-isolating a";
}

TEST_F(BridgeTopology, QueriesReportWhatWasCreated) {
  auto br = host_->GetLink(bridge_);
  ASSERT_TRUE(br) << br.error().message;
  EXPECT_EQ(br->name, bridge_);
  EXPECT_EQ(br->kind, "bridge");
  EXPECT_TRUE(br->up);
  EXPECT_EQ(br->master, 0);
  EXPECT_GT(br->index, 0);

  auto va = host_->GetLink(veth_a_);
  ASSERT_TRUE(va) << va.error().message;
  EXPECT_EQ(va->kind, "veth");
  EXPECT_EQ(va->master, br->index);
  EXPECT_TRUE(va->up);
  EXPECT_EQ(va->mtu, 1500);
  EXPECT_NE(va->mac, (std::array<uint8_t, 6>{}));

  auto links = host_->Links();
  ASSERT_TRUE(links) << links.error().message;
  std::vector<std::string> names;
  for (const auto& l : *links) names.push_back(l.name);
  std::sort(names.begin(), names.end());
  std::vector<std::string> want = {"lo", bridge_, veth_a_, veth_b_};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(names, want) << "the host namespace holds exactly what the test made";

  auto br_addrs = host_->Addresses(bridge_);
  ASSERT_TRUE(br_addrs) << br_addrs.error().message;
  std::vector<IpPrefix> br_v4;
  for (const auto& a : *br_addrs)
    if (a.addr.family == AF_INET) br_v4.push_back(a);
  EXPECT_EQ(br_v4, (std::vector<IpPrefix>{IpPrefix{bridge_ip_, 24}}))
      << "IPv4 only: the bridge also has its fe80:: link-local address";
  auto all = host_->Addresses("");
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_TRUE(HasAddress(*all, IpPrefix{bridge_ip_, 24}));
  EXPECT_TRUE(HasAddress(*all, Prefix("127.0.0.1", 8)));

  auto in_a = Netlink::OpenIn(ns_a_.get());
  ASSERT_TRUE(in_a) << in_a.error().message;
  auto eth0 = in_a->GetLink("eth0");
  ASSERT_TRUE(eth0) << eth0.error().message;
  EXPECT_EQ(eth0->kind, "veth");
  EXPECT_TRUE(eth0->up);
  auto a_addrs = in_a->Addresses("eth0");
  ASSERT_TRUE(a_addrs) << a_addrs.error().message;
  EXPECT_TRUE(HasAddress(*a_addrs, IpPrefix{ip_a_, 24}));

  auto routes = in_a->Routes(AF_INET);
  ASSERT_TRUE(routes) << routes.error().message;
  bool has_default = false, has_subnet = false;
  for (const auto& r : *routes) {
    if (r.dst.len == 0) {
      has_default = true;
      ASSERT_TRUE(r.gateway.has_value());
      EXPECT_EQ(*r.gateway, bridge_ip_);
      EXPECT_EQ(r.oif, eth0->index);
      EXPECT_EQ(r.dst.addr.family, AF_INET);
      EXPECT_EQ(r.dst.addr.bytes, (std::array<uint8_t, 16>{}));
    }
    if (r.dst.len == 24 && r.oif == eth0->index) {
      has_subnet = true;
      EXPECT_FALSE(r.gateway.has_value());
    }
  }
  EXPECT_TRUE(has_default);
  EXPECT_TRUE(has_subnet) << "the kernel's connected route for the /24";
}

// Fresh namespaces per test, without the bridge topology.
class NetlinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sfx_ = RandomHex(6);
    auto host = ns_.Create("host");
    ASSERT_TRUE(host) << host.error().message;
    host_ns_ = std::move(*host);
    auto c = ns_.Create("c");
    ASSERT_TRUE(c) << c.error().message;
    ns_c_ = std::move(*c);
    auto nl = Netlink::OpenIn(host_ns_.get());
    ASSERT_TRUE(nl) << nl.error().message;
    host_.emplace(std::move(*nl));
    auto in = Netlink::OpenIn(ns_c_.get());
    ASSERT_TRUE(in) << in.error().message;
    inside_.emplace(std::move(*in));
  }

  Namespaces ns_;
  std::string sfx_;
  UniqueFd host_ns_, ns_c_;
  std::optional<Netlink> host_, inside_;
};

TEST_F(NetlinkTest, ErrorsHaveKindsAndNameTheObjects) {
  std::string absent = "nx" + sfx_;
  auto del = host_->DeleteLink(absent);
  ASSERT_FALSE(del);
  EXPECT_EQ(del.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(del.error().message, "delete link " + absent + ": No such device");

  auto get = host_->GetLink(absent);
  ASSERT_FALSE(get);
  EXPECT_EQ(get.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(get.error().message.find(absent), std::string::npos) << get.error().message;

  std::string br = "br" + sfx_;
  ASSERT_TRUE(host_->CreateBridge(br, 0));
  auto again = host_->CreateBridge(br, 0);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::kAlreadyExists);
  EXPECT_EQ(again.error().message, "create bridge " + br + ": File exists");

  // The peer name is taken inside the peer's namespace.
  std::string v1 = "v1" + sfx_, v2 = "v2" + sfx_;
  ASSERT_TRUE(host_->CreateVeth(v1, "eth0", ns_c_.get(), std::nullopt, 0));
  auto clash = host_->CreateVeth(v2, "eth0", ns_c_.get(), std::nullopt, 0);
  ASSERT_FALSE(clash);
  EXPECT_EQ(clash.error().kind, ErrorKind::kAlreadyExists);
  EXPECT_EQ(clash.error().message.rfind("create veth " + v2 + "/eth0: ", 0), 0u)
      << clash.error().message;
  EXPECT_FALSE(host_->GetLink(v2)) << "nothing half-made is left";

  auto addr = Prefix("10.77.0.1", 24);
  ASSERT_TRUE(host_->AddAddress(br, addr));
  auto dup = host_->AddAddress(br, addr);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().kind, ErrorKind::kAlreadyExists);
  EXPECT_EQ(dup.error().message.rfind("add address 10.77.0.1/24 to " + br + ": ", 0), 0u)
      << dup.error().message;
  ASSERT_TRUE(host_->DeleteAddress(br, addr));
  auto del_addr = host_->DeleteAddress(br, addr);
  ASSERT_FALSE(del_addr);
  EXPECT_EQ(del_addr.error().kind, ErrorKind::kNotFound) << del_addr.error().message;

  auto no_dev = host_->AddAddress(absent, addr);
  ASSERT_FALSE(no_dev);
  EXPECT_EQ(no_dev.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(no_dev.error().message.find(absent), std::string::npos) << no_dev.error().message;

  std::string name15 = "n" + sfx_ + "12345678";
  ASSERT_EQ(name15.size(), 15u);
  auto longest = host_->CreateBridge(name15, 0);
  EXPECT_TRUE(longest) << longest.error().message;
  auto too_long = host_->CreateBridge(name15 + "9", 0);
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().kind, ErrorKind::kInvalidArgument);

  // Isolation needs a bridge port.
  auto not_port = host_->SetBridgePortIsolated(v1, true);
  ASSERT_FALSE(not_port);
  EXPECT_NE(not_port.error().message.find(v1), std::string::npos) << not_port.error().message;

  auto bad_route = inside_->AddRoute(Prefix("0.0.0.0", 0), Addr("10.99.0.1"), "eth0");
  ASSERT_FALSE(bad_route) << "gateway not on any link";
  EXPECT_EQ(bad_route.error().message.rfind("add route 0.0.0.0/0 via 10.99.0.1 dev eth0: ", 0), 0u)
      << bad_route.error().message;
}

TEST_F(NetlinkTest, VethPeerGetsMacAndMtuInItsNamespaceAndDiesWithItsPair) {
  std::string v = "v" + sfx_;
  std::array<uint8_t, 6> mac = {0x02, 0x42, 0xac, 0x11, 0x00, 0x05};
  auto r = host_->CreateVeth(v, "eth0", ns_c_.get(), mac, 1400);
  ASSERT_TRUE(r) << r.error().message;
  auto host_end = host_->GetLink(v);
  ASSERT_TRUE(host_end) << host_end.error().message;
  EXPECT_EQ(host_end->mtu, 1400);
  EXPECT_FALSE(host_end->up);
  EXPECT_FALSE(host_->GetLink("eth0")) << "the peer is not created here";
  auto peer = inside_->GetLink("eth0");
  ASSERT_TRUE(peer) << peer.error().message;
  EXPECT_EQ(peer->mac, mac);
  EXPECT_EQ(peer->mtu, 1400);
  EXPECT_FALSE(peer->up);

  ASSERT_TRUE(host_->DeleteLink(v));
  auto gone = inside_->GetLink("eth0");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind, ErrorKind::kNotFound);
}

TEST_F(NetlinkTest, LinkSettersAreVisible) {
  std::string br = "br" + sfx_, v = "v" + sfx_, p = "p" + sfx_;
  ASSERT_TRUE(host_->CreateBridge(br, 1450));
  auto bridge = host_->GetLink(br);
  ASSERT_TRUE(bridge);
  EXPECT_FALSE(bridge->up);
  ASSERT_TRUE(host_->CreateVeth(v, p, -1, std::nullopt, 0));  // both ends here
  ASSERT_TRUE(host_->GetLink(p));

  std::array<uint8_t, 6> mac = {0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc};
  ASSERT_TRUE(host_->SetMac(v, mac));
  ASSERT_TRUE(host_->SetMtu(v, 1280));
  ASSERT_TRUE(host_->SetMaster(v, br));
  ASSERT_TRUE(host_->SetUp(v, true));
  auto l = host_->GetLink(v);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->mac, mac);
  EXPECT_EQ(l->mtu, 1280);
  EXPECT_EQ(l->master, bridge->index);
  EXPECT_TRUE(l->up);

  ASSERT_TRUE(host_->SetMaster(v, ""));
  ASSERT_TRUE(host_->SetUp(v, false));
  l = host_->GetLink(v);
  ASSERT_TRUE(l);
  EXPECT_EQ(l->master, 0);
  EXPECT_FALSE(l->up);

  auto no_bridge = host_->SetMaster(v, "nx" + sfx_);
  ASSERT_FALSE(no_bridge);
  EXPECT_EQ(no_bridge.error().kind, ErrorKind::kNotFound);
}

TEST_F(NetlinkTest, Ipv6AddressAndDefaultRoute) {
  std::string v = "v" + sfx_;
  ASSERT_TRUE(host_->CreateVeth(v, "eth0", ns_c_.get(), std::nullopt, 0));
  ASSERT_TRUE(host_->SetUp(v, true));
  ASSERT_TRUE(inside_->SetUp("eth0", true));
  auto addr = Prefix("fd00:77::2", 64);
  auto r = inside_->AddAddress("eth0", addr);
  ASSERT_TRUE(r) << r.error().message;
  r = inside_->AddRoute(Prefix("::", 0), Addr("fd00:77::1"), "eth0", 1400);
  ASSERT_TRUE(r) << r.error().message;
  auto addrs = inside_->Addresses("eth0");
  ASSERT_TRUE(addrs) << addrs.error().message;
  EXPECT_TRUE(HasAddress(*addrs, addr));
  auto routes = inside_->Routes(AF_INET6);
  ASSERT_TRUE(routes) << routes.error().message;
  bool has_default = false;
  for (const auto& rt : *routes) {
    if (rt.dst.len == 0) {
      has_default = true;
      ASSERT_TRUE(rt.gateway);
      EXPECT_EQ(Text(*rt.gateway), "fd00:77::1");
      EXPECT_EQ(rt.mtu, 1400);
    }
  }
  EXPECT_TRUE(has_default);
}

// A link with a large MTU whose default route is capped: what leaves through the gateway uses
// the route's MTU, what stays on the link the link's (the kernel's view: `ip route get`).
TEST_F(NetlinkTest, RouteMtuCapsThePathBelowTheLinks) {
  std::string v = "v" + sfx_;
  ASSERT_TRUE(host_->CreateVeth(v, "eth0", ns_c_.get(), std::nullopt, 65520));
  ASSERT_TRUE(inside_->SetUp("eth0", true));
  ASSERT_TRUE(inside_->AddAddress("eth0", Prefix("10.98.0.2", 24)));
  auto r = inside_->AddRoute(Prefix("0.0.0.0", 0), Addr("10.98.0.1"), "eth0", 1500);
  ASSERT_TRUE(r) << r.error().message;
  auto routes = inside_->Routes(AF_INET);
  ASSERT_TRUE(routes) << routes.error().message;
  int default_mtu = -1, subnet_mtu = -1;
  for (const auto& rt : *routes) {
    if (rt.dst.len == 0) default_mtu = rt.mtu;
    if (rt.dst.len == 24) subnet_mtu = rt.mtu;
  }
  EXPECT_EQ(default_mtu, 1500);
  EXPECT_EQ(subnet_mtu, 0);  // none: the link's 65520
  auto link = inside_->GetLink("eth0");
  ASSERT_TRUE(link);
  EXPECT_EQ(link->mtu, 65520);
}

// What one container start costs: named netns (with lo up) + veth pair with the peer created
// inside + address + up + default route + host end on the bridge and up. Printed, not asserted.
TEST(NetlinkTiming, ContainerAttach) {
  Namespaces ns;
  auto host_ns = ns.Create("host");
  ASSERT_TRUE(host_ns) << host_ns.error().message;
  auto host = Netlink::OpenIn(host_ns->get());
  ASSERT_TRUE(host) << host.error().message;
  std::string sfx = RandomHex(6);
  std::string br = "br" + sfx;
  ASSERT_TRUE(host->CreateBridge(br, 0));
  ASSERT_TRUE(host->AddAddress(br, Prefix("10.88.0.1", 16)));
  ASSERT_TRUE(host->SetUp(br, true));

  constexpr int kRuns = 10;
  std::vector<double> ms;
  std::vector<UniqueFd> keep;
  for (int i = 0; i < kRuns; ++i) {
    std::string ip = "10.88.0." + std::to_string(i + 2);
    auto start = std::chrono::steady_clock::now();
    auto c = ns.Create("c" + std::to_string(i));
    ASSERT_TRUE(c) << c.error().message;
    auto r = AttachContainer(*host, c->get(), "v" + std::to_string(i) + sfx, br,
                             Prefix(ip.c_str(), 16), Addr("10.88.0.1"));
    auto end = std::chrono::steady_clock::now();
    ASSERT_TRUE(r) << r.error().message;
    ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
    keep.push_back(std::move(*c));
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  std::string all;
  for (double m : ms) all += std::to_string(m).substr(0, 5) + " ";
  printf(
      "[ timing ] netns + veth + address + up + default route + bridge: median %.3f ms, "
      "min %.3f ms, max %.3f ms (runs: %s)\n",
      sorted[kRuns / 2], sorted.front(), sorted.back(), all.c_str());
}

}  // namespace
}  // namespace moat::net
