#include "net/ipam.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

namespace moat::net {
namespace {

IpAddr A(std::string_view s) {
  auto a = IpAddr::Parse(s);
  EXPECT_TRUE(a) << s << ": " << a.error().message;
  return a ? *a : IpAddr{};
}

IpPrefix P(std::string_view s) {
  auto p = IpPrefix::Parse(s);
  EXPECT_TRUE(p) << s << ": " << p.error().message;
  return p ? *p : IpPrefix{};
}

SubnetPool Pool(std::string_view base, int size) {
  auto p = MakePool(base, size);
  EXPECT_TRUE(p) << base << ": " << p.error().message;
  return p ? *p : SubnetPool{};
}

std::string Pick(const std::vector<SubnetPool>& pools, const std::vector<IpPrefix>& taken) {
  auto r = PickSubnet(pools, taken);
  return r ? r->ToString() : "error: " + r.error().message;
}

TEST(DefaultPoolsTest, AreDockers) {
  auto pools = DefaultPools();
  ASSERT_EQ(pools.size(), 16u);
  EXPECT_EQ(pools.front().base.ToString(), "172.17.0.0/16");
  EXPECT_EQ(pools.front().size, 16);
  EXPECT_EQ(pools[14].base.ToString(), "172.31.0.0/16");
  EXPECT_EQ(pools[14].size, 16);
  EXPECT_EQ(pools.back().base.ToString(), "192.168.0.0/16");
  EXPECT_EQ(pools.back().size, 20);
  for (const auto& p : pools) EXPECT_EQ(p.base.addr.family, AF_INET);
}

TEST(MakePoolTest, ValidatesSize) {
  SubnetPool p = Pool("172.30.0.0/16", 24);
  EXPECT_EQ(p.base.ToString(), "172.30.0.0/16");
  EXPECT_EQ(p.size, 24);
  EXPECT_EQ(Pool("172.30.1.2/16", 16).base.ToString(), "172.30.0.0/16");
  EXPECT_TRUE(MakePool("10.0.0.0/8", 30));
  EXPECT_TRUE(MakePool("fd00::/8", 64));
  for (int bad : {15, 31, 32, -1}) {
    auto r = MakePool("172.30.0.0/16", bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_NE(r.error().message.find("172.30.0.0/16"), std::string::npos) << r.error().message;
  }
  EXPECT_FALSE(MakePool("fd00::/8", 7));
  EXPECT_FALSE(MakePool("fd00::/8", 129));
  auto r = MakePool("172.300.0.0/16", 24);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(r.error().message.find("\"172.300.0.0/16\""), std::string::npos) << r.error().message;
}

TEST(PickSubnetTest, FirstFreeInOrder) {
  auto pools = DefaultPools();
  EXPECT_EQ(Pick(pools, {}), "172.17.0.0/16");
  EXPECT_EQ(Pick(pools, {P("172.17.0.0/16")}), "172.18.0.0/16");
  // Host addresses of interfaces (a /32 or the interface's own prefix with host bits) count.
  EXPECT_EQ(Pick(pools, {P("172.17.0.1/16"), P("172.18.3.4/32")}), "172.19.0.0/16");
  // Unrelated and other-family prefixes do not.
  EXPECT_EQ(Pick(pools, {P("10.0.0.0/8"), P("fd00::/8"), P("172.16.0.0/16")}), "172.17.0.0/16");
}

TEST(PickSubnetTest, SmallTakenRangeInsideACandidateBlocksIt) {
  // A /24 route inside a /16 candidate makes the whole /16 unusable.
  EXPECT_EQ(Pick(DefaultPools(), {P("172.17.200.0/24")}), "172.18.0.0/16");
  EXPECT_EQ(Pick({Pool("10.10.0.0/16", 24)}, {P("10.10.0.128/25")}), "10.10.1.0/24");
}

TEST(PickSubnetTest, LargeTakenRouteCoversSeveralPools) {
  // A /8 route (a VPN) covers all of 172.17-31 at once.
  auto pools = DefaultPools();
  EXPECT_EQ(Pick(pools, {P("172.0.0.0/8")}), "192.168.0.0/20");
  EXPECT_EQ(Pick(pools, {P("172.16.0.0/12"), P("192.168.0.0/20"), P("192.168.16.5/32")}),
            "192.168.32.0/20");
  // A taken range larger than the subnet size inside one pool skips all subnets it covers.
  EXPECT_EQ(Pick({Pool("10.0.0.0/8", 24)}, {P("10.0.0.0/12")}), "10.16.0.0/24");
}

TEST(PickSubnetTest, HugeV6PoolIsNotWalkedOneByOne) {
  // fd00::/8 as /64s has 2^56 candidates; a taken /9 must be skipped in one step.
  auto pools = std::vector<SubnetPool>{Pool("fd00::/8", 64)};
  EXPECT_EQ(Pick(pools, {}), "fd00::/64");
  EXPECT_EQ(Pick(pools, {P("fd00::/9"), P("fd80::/64")}), "fd80:0:0:1::/64");
  auto full = PickSubnet(pools, {P("fc00::/7")});
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().kind, ErrorKind::kUnavailable);
}

TEST(PickSubnetTest, ExhaustedPools) {
  std::vector<SubnetPool> pools = {Pool("10.5.0.0/23", 24), Pool("10.6.0.0/24", 24)};
  EXPECT_EQ(Pick(pools, {P("10.5.0.0/24")}), "10.5.1.0/24");
  EXPECT_EQ(Pick(pools, {P("10.5.0.0/24"), P("10.5.1.9/32")}), "10.6.0.0/24");
  auto r = PickSubnet(pools, {P("10.5.0.0/24"), P("10.5.1.0/24"), P("10.6.0.0/16")});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find("no free subnet in the address pools"), std::string::npos);
  EXPECT_NE(r.error().message.find("10.5.0.0/23"), std::string::npos) << r.error().message;
  auto none = PickSubnet({}, {});
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind, ErrorKind::kUnavailable);
  // The default route covers everything of its family.
  EXPECT_FALSE(PickSubnet(DefaultPools(), {P("0.0.0.0/0")}));
}

TEST(DefaultGatewayTest, IsFirstHost) {
  EXPECT_EQ(DefaultGateway(P("172.18.0.0/16")).ToString(), "172.18.0.1");
  EXPECT_EQ(DefaultGateway(P("172.18.7.9/16")).ToString(), "172.18.0.1");
  EXPECT_EQ(DefaultGateway(P("fd00:1::/64")).ToString(), "fd00:1::1");
}

class AllocateTest : public ::testing::Test {
 protected:
  IpPrefix subnet_ = P("172.18.0.0/16");
  std::set<IpAddr> reserved_ = {A("172.18.0.1")};
  std::set<IpAddr> used_;

  std::string Alloc(std::optional<IpAddr> last = std::nullopt,
                    std::optional<IpAddr> wanted = std::nullopt) {
    auto r = Allocate(subnet_, used_, reserved_, last, wanted);
    return r ? r->ToString() : "error: " + r.error().message;
  }
};

TEST_F(AllocateTest, SequentialSkippingGatewayAndUsed) {
  EXPECT_EQ(Alloc(), "172.18.0.2");
  used_ = {A("172.18.0.2"), A("172.18.0.3")};
  EXPECT_EQ(Alloc(), "172.18.0.4");
  EXPECT_EQ(Alloc(A("172.18.0.4")), "172.18.0.5");
  // Freed addresses are not reused before the scan wraps.
  used_ = {A("172.18.0.3")};
  EXPECT_EQ(Alloc(A("172.18.0.9")), "172.18.0.10");
  EXPECT_EQ(Alloc(A("172.18.0.255")), "172.18.1.0");
}

TEST_F(AllocateTest, WrapsAroundFromLast) {
  // After the last host the scan wraps to the start, skipping the network address, the
  // broadcast address and the gateway.
  EXPECT_EQ(Alloc(A("172.18.255.254")), "172.18.0.2");
  EXPECT_EQ(Alloc(A("172.18.255.253")), "172.18.255.254");
  used_ = {A("172.18.255.254"), A("172.18.0.2")};
  EXPECT_EQ(Alloc(A("172.18.255.200")), "172.18.255.201");
  EXPECT_EQ(Alloc(A("172.18.255.253")), "172.18.0.3");
  // A `last` outside the subnet (or the broadcast) starts from the beginning.
  EXPECT_EQ(Alloc(A("10.0.0.1")), "172.18.0.3");
  EXPECT_EQ(Alloc(A("172.18.255.255")), "172.18.0.3");
  EXPECT_EQ(Alloc(A("fd00::1")), "172.18.0.3");
}

TEST_F(AllocateTest, SubnetWithHostBitsIsMasked) {
  subnet_ = P("172.18.0.1/16");
  EXPECT_EQ(Alloc(), "172.18.0.2");
}

TEST_F(AllocateTest, Wanted) {
  used_ = {A("172.18.0.5")};
  EXPECT_EQ(Alloc(std::nullopt, A("172.18.3.4")), "172.18.3.4");
  EXPECT_EQ(Alloc(A("172.18.9.9"), A("172.18.0.2")), "172.18.0.2");

  auto conflict = Allocate(subnet_, used_, reserved_, std::nullopt, A("172.18.0.5"));
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().kind, ErrorKind::kConflict);
  EXPECT_EQ(conflict.error().message, "address 172.18.0.5 is in use");

  for (const char* bad : {"172.19.0.5", "fd00::5", "172.18.0.0", "172.18.255.255", "172.18.0.1"}) {
    auto r = Allocate(subnet_, used_, reserved_, std::nullopt, A(bad));
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument) << bad;
    EXPECT_NE(r.error().message.find(bad), std::string::npos) << r.error().message;
  }
  auto outside = Allocate(subnet_, used_, reserved_, std::nullopt, A("172.19.0.5"));
  EXPECT_NE(outside.error().message.find("outside"), std::string::npos);
  auto gw = Allocate(subnet_, used_, reserved_, std::nullopt, A("172.18.0.1"));
  EXPECT_NE(gw.error().message.find("gateway"), std::string::npos);
  auto bcast = Allocate(subnet_, used_, reserved_, std::nullopt, A("172.18.255.255"));
  EXPECT_NE(bcast.error().message.find("broadcast"), std::string::npos);
}

TEST_F(AllocateTest, SlashThirtyFillsUp) {
  // 10.9.9.0/30: .0 network, .1 gateway, .2 the only host, .3 broadcast.
  subnet_ = P("10.9.9.0/30");
  reserved_ = {A("10.9.9.1")};
  EXPECT_EQ(Alloc(), "10.9.9.2");
  EXPECT_EQ(Alloc(A("10.9.9.2")), "10.9.9.2");
  used_ = {A("10.9.9.2")};
  auto full = Allocate(subnet_, used_, reserved_, A("10.9.9.2"), std::nullopt);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(full.error().message, "no free address in 10.9.9.0/30");
  // Without a gateway the /30 has two hosts.
  reserved_.clear();
  EXPECT_EQ(Alloc(A("10.9.9.2")), "10.9.9.1");
}

TEST_F(AllocateTest, NoHostsInSlash31AndSlash32) {
  for (const char* s : {"10.9.9.0/31", "10.9.9.0/32", "fd00::/128"}) {
    auto r = Allocate(P(s), {}, {}, std::nullopt, std::nullopt);
    ASSERT_FALSE(r) << s;
    EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable) << s;
  }
}

TEST_F(AllocateTest, FullSlash24) {
  subnet_ = P("10.1.1.0/24");
  reserved_ = {A("10.1.1.1")};
  for (int i = 2; i <= 254; ++i) used_.insert(*subnet_.Nth(i));
  auto r = Allocate(subnet_, used_, reserved_, A("10.1.1.77"), std::nullopt);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  used_.erase(A("10.1.1.30"));
  EXPECT_EQ(Alloc(A("10.1.1.77")), "10.1.1.30");
}

TEST_F(AllocateTest, V6) {
  subnet_ = P("fd00:1::/64");
  reserved_ = {A("fd00:1::1")};
  EXPECT_EQ(Alloc(), "fd00:1::2");
  used_ = {A("fd00:1::2")};
  EXPECT_EQ(Alloc(A("fd00:1::1")), "fd00:1::3");
  // The last address is usable (no broadcast in IPv6) and the scan continues past 2^32.
  EXPECT_EQ(Alloc(A("fd00:1::ffff:ffff")), "fd00:1::1:0:0");
  EXPECT_EQ(Alloc(std::nullopt, A("fd00:1::ffff:ffff:ffff:ffff")), "fd00:1::ffff:ffff:ffff:ffff");
  auto net = Allocate(subnet_, used_, reserved_, std::nullopt, A("fd00:1::"));
  ASSERT_FALSE(net);
  EXPECT_EQ(net.error().kind, ErrorKind::kInvalidArgument);
  // A small v6 subnet fills up and wraps.
  subnet_ = P("fd00:2::/126");
  reserved_ = {A("fd00:2::1")};
  used_ = {A("fd00:2::2")};
  EXPECT_EQ(Alloc(A("fd00:2::2")), "fd00:2::3");
  used_.insert(A("fd00:2::3"));
  EXPECT_EQ(Alloc(A("fd00:2::3")).rfind("error: no free address in fd00:2::/126", 0), 0u);
}

TEST(MacTest, ForIpFormatAndParse) {
  auto mac = MacForIp(A("172.17.0.2"));
  EXPECT_EQ(mac, (std::array<uint8_t, 6>{0x02, 0x42, 0xac, 0x11, 0x00, 0x02}));
  EXPECT_EQ(FormatMac(mac), "02:42:ac:11:00:02");
  EXPECT_EQ(FormatMac(MacForIp(A("10.255.0.1"))), "02:42:0a:ff:00:01");
  EXPECT_EQ(*ParseMac("02:42:ac:11:00:02"), mac);
  EXPECT_EQ(*ParseMac("02-42-AC-11-00-02"), mac);
  auto round = ParseMac(FormatMac({0xde, 0xad, 0xbe, 0xef, 0x00, 0xff}));
  ASSERT_TRUE(round);
  EXPECT_EQ(FormatMac(*round), "de:ad:be:ef:00:ff");
  for (std::string_view bad :
       {"", "02:42:ac:11:00", "02:42:ac:11:00:02:03", "02:42:ac:11:00:0g", "02:42-ac:11:00:02",
        "2:42:ac:11:00:02:", "02.42.ac.11.00.02", "0242.ac11.0002", "02:42:ac:11:00:02 "}) {
    auto r = ParseMac(bad);
    ASSERT_FALSE(r) << "accepted \"" << bad << "\"";
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_NE(r.error().message.find("\"" + std::string(bad) + "\""), std::string::npos)
        << r.error().message;
  }
}

}  // namespace
}  // namespace moat::net
