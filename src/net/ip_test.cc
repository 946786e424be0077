#include "net/ip.h"

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

TEST(IpAddrTest, ParsesV4) {
  IpAddr a = A("172.18.0.2");
  EXPECT_EQ(a.family, AF_INET);
  EXPECT_EQ(a.family, 2);
  EXPECT_TRUE(a.IsV4());
  EXPECT_EQ(a.Length(), 4u);
  EXPECT_EQ(a.bytes[0], 172);
  EXPECT_EQ(a.bytes[1], 18);
  EXPECT_EQ(a.bytes[2], 0);
  EXPECT_EQ(a.bytes[3], 2);
  for (size_t i = 4; i < 16; ++i) EXPECT_EQ(a.bytes[i], 0) << i;
  EXPECT_EQ(a.ToString(), "172.18.0.2");
}

TEST(IpAddrTest, ParsesV6AndFormatsCanonically) {
  IpAddr a = A("fd00:0:0::0001");
  EXPECT_EQ(a.family, AF_INET6);
  EXPECT_EQ(a.family, 10);
  EXPECT_FALSE(a.IsV4());
  EXPECT_EQ(a.Length(), 16u);
  EXPECT_EQ(a.bytes[0], 0xfd);
  EXPECT_EQ(a.bytes[15], 1);
  EXPECT_EQ(a.ToString(), "fd00::1");
  EXPECT_EQ(A("FD00::ABCD").ToString(), "fd00::abcd");
  EXPECT_EQ(A("::ffff:1.2.3.4").family, AF_INET6);
}

TEST(IpAddrTest, RejectsBadTextNamingIt) {
  for (std::string_view bad :
       {"", "abc", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", " 1.2.3.4", "1.2.3.4 ",
        "1.2.3.4/24", "fd00::1::2", "fe80::1%eth0", "gggg::1", "-1.2.3.4", "::1:"}) {
    auto r = IpAddr::Parse(bad);
    ASSERT_FALSE(r) << "accepted \"" << bad << "\"";
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument) << bad;
    EXPECT_NE(r.error().message.find("\"" + std::string(bad) + "\""), std::string::npos)
        << r.error().message;
  }
}

TEST(IpAddrTest, RejectsEmbeddedNulAndEscapesIt) {
  using namespace std::literals;
  auto r = IpAddr::Parse("1.2.3.4\0junk"sv);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("1.2.3.4\\x00junk"), std::string::npos) << r.error().message;
}

TEST(IpAddrTest, LongTextIsTruncatedInTheMessage) {
  std::string junk(5000, 'x');
  auto r = IpAddr::Parse(junk);
  ASSERT_FALSE(r);
  EXPECT_LT(r.error().message.size(), 200u);
  EXPECT_NE(r.error().message.find("xxx..."), std::string::npos);
}

TEST(IpAddrTest, LoopbackAndUnspecified) {
  EXPECT_TRUE(A("127.0.0.1").IsLoopback());
  EXPECT_TRUE(A("127.255.0.9").IsLoopback());
  EXPECT_FALSE(A("128.0.0.1").IsLoopback());
  EXPECT_TRUE(A("::1").IsLoopback());
  EXPECT_FALSE(A("::2").IsLoopback());
  EXPECT_FALSE(A("1::1").IsLoopback());
  EXPECT_TRUE(A("0.0.0.0").IsUnspecified());
  EXPECT_FALSE(A("0.0.0.1").IsUnspecified());
  EXPECT_TRUE(A("::").IsUnspecified());
  EXPECT_FALSE(A("::1").IsUnspecified());
  EXPECT_FALSE(IpAddr{}.IsUnspecified());
  EXPECT_FALSE(IpAddr{}.IsLoopback());
}

TEST(IpAddrTest, OrdersByFamilyThenBytes) {
  EXPECT_LT(A("10.0.0.1"), A("10.0.0.2"));
  EXPECT_LT(A("9.255.255.255"), A("10.0.0.0"));
  EXPECT_LT(A("255.255.255.255"), A("::"));  // AF_INET < AF_INET6
  EXPECT_EQ(A("10.0.0.1"), A("10.0.0.1"));
}

TEST(IpPrefixTest, ParsesAndKeepsHostBits) {
  IpPrefix p = P("172.18.0.1/16");
  EXPECT_EQ(p.len, 16);
  EXPECT_EQ(p.addr, A("172.18.0.1"));
  EXPECT_EQ(p.ToString(), "172.18.0.1/16");
  EXPECT_EQ(p.Masked().ToString(), "172.18.0.0/16");
  EXPECT_EQ(P("fd00:1::5/64").Masked().ToString(), "fd00:1::/64");
  EXPECT_EQ(P("10.1.2.3/0").Masked().ToString(), "0.0.0.0/0");
  EXPECT_EQ(P("10.1.2.3/32").Masked().ToString(), "10.1.2.3/32");
  EXPECT_EQ(P("172.18.77.255/20").Masked().ToString(), "172.18.64.0/20");
}

TEST(IpPrefixTest, BareAddressIsAHostPrefix) {
  EXPECT_EQ(P("10.0.0.1").len, 32);
  EXPECT_EQ(P("fd00::1").len, 128);
}

TEST(IpPrefixTest, RejectsBadTextNamingIt) {
  for (std::string_view bad : {"172.18.0.0/33", "fd00::/129", "172.18.0.0/", "/16", "172.18.0.0/-1",
                               "172.18.0.0/+8", "172.18.0.0/016", "172.18.0.0/16/2",
                               "172.18.0.0/1a", "x/16", "172.18.0.0/ 16", "172.18.0.0/1000"}) {
    auto r = IpPrefix::Parse(bad);
    ASSERT_FALSE(r) << "accepted \"" << bad << "\"";
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument) << bad;
    EXPECT_NE(r.error().message.find("\"" + std::string(bad) + "\""), std::string::npos)
        << r.error().message;
  }
  EXPECT_TRUE(IpPrefix::Parse("fd00::/128"));
  EXPECT_TRUE(IpPrefix::Parse("0.0.0.0/0"));
}

TEST(IpPrefixTest, Contains) {
  IpPrefix p = P("172.18.0.1/16");
  EXPECT_TRUE(p.Contains(A("172.18.0.0")));
  EXPECT_TRUE(p.Contains(A("172.18.255.255")));
  EXPECT_FALSE(p.Contains(A("172.19.0.0")));
  EXPECT_FALSE(p.Contains(A("172.17.255.255")));
  EXPECT_FALSE(p.Contains(A("::ffff:172.18.0.1")));  // other family
  EXPECT_TRUE(P("0.0.0.0/0").Contains(A("8.8.8.8")));
  EXPECT_FALSE(P("0.0.0.0/0").Contains(A("::1")));
  EXPECT_TRUE(P("10.0.0.7/32").Contains(A("10.0.0.7")));
  EXPECT_FALSE(P("10.0.0.7/32").Contains(A("10.0.0.6")));
  IpPrefix v6 = P("fd00:1::/64");
  EXPECT_TRUE(v6.Contains(A("fd00:1::ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(v6.Contains(A("fd00:1:0:1::")));
  EXPECT_TRUE(P("fd00::/7").Contains(A("fdff::1")));
  EXPECT_FALSE(P("fd00::/8").Contains(A("fc00::1")));
}

TEST(IpPrefixTest, Overlaps) {
  EXPECT_TRUE(P("172.18.0.0/16").Overlaps(P("172.18.5.0/24")));
  EXPECT_TRUE(P("172.18.5.0/24").Overlaps(P("172.18.0.0/16")));
  EXPECT_TRUE(P("10.0.0.0/8").Overlaps(P("10.200.0.0/16")));
  EXPECT_TRUE(P("172.18.0.0/16").Overlaps(P("172.18.0.0/16")));
  EXPECT_FALSE(P("172.18.0.0/16").Overlaps(P("172.19.0.0/16")));
  EXPECT_FALSE(P("192.168.0.0/20").Overlaps(P("192.168.16.0/20")));
  EXPECT_TRUE(P("192.168.0.0/20").Overlaps(P("192.168.15.255/32")));
  // Host bits in either side do not matter.
  EXPECT_TRUE(P("172.18.0.1/16").Overlaps(P("172.18.9.9/24")));
  EXPECT_TRUE(P("0.0.0.0/0").Overlaps(P("1.2.3.4/32")));
  EXPECT_FALSE(P("0.0.0.0/0").Overlaps(P("::/0")));
  EXPECT_TRUE(P("fd00::/8").Overlaps(P("fd12:3456::/48")));
  EXPECT_FALSE(P("fd00:1::/64").Overlaps(P("fd00:2::/64")));
}

TEST(IpPrefixTest, NthAndOffsetOf) {
  IpPrefix p = P("172.18.0.9/16");
  EXPECT_EQ(p.Nth(0)->ToString(), "172.18.0.0");
  EXPECT_EQ(p.Nth(1)->ToString(), "172.18.0.1");
  EXPECT_EQ(p.Nth(256)->ToString(), "172.18.1.0");
  EXPECT_EQ(p.Nth(65535)->ToString(), "172.18.255.255");
  auto past = p.Nth(65536);
  ASSERT_FALSE(past);
  EXPECT_EQ(past.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(past.error().message.find("172.18.0.0/16"), std::string::npos) << past.error().message;
  EXPECT_FALSE(P("10.0.0.0/32").Nth(1));
  EXPECT_EQ(P("10.0.0.0/32").Nth(0)->ToString(), "10.0.0.0");
  EXPECT_EQ(P("0.0.0.0/0").Nth(0xffffffff)->ToString(), "255.255.255.255");
  EXPECT_FALSE(P("0.0.0.0/0").Nth(uint64_t{1} << 32));

  EXPECT_EQ(p.OffsetOf(A("172.18.0.0")), 0u);
  EXPECT_EQ(p.OffsetOf(A("172.18.1.2")), 258u);
  EXPECT_EQ(p.OffsetOf(A("172.18.255.255")), 65535u);
  for (uint64_t n : {0u, 1u, 2u, 1000u, 65535u}) EXPECT_EQ(p.OffsetOf(*p.Nth(n)), n);
}

TEST(IpPrefixTest, NthAndOffsetOfV6) {
  IpPrefix p = P("fd00:1::/64");
  EXPECT_EQ(p.Nth(1)->ToString(), "fd00:1::1");
  EXPECT_EQ(p.Nth(0x10000)->ToString(), "fd00:1::1:0");
  EXPECT_EQ(p.Nth(~uint64_t{0})->ToString(), "fd00:1::ffff:ffff:ffff:ffff");
  EXPECT_EQ(p.OffsetOf(A("fd00:1::ffff:ffff:ffff:ffff")), ~uint64_t{0});
  EXPECT_EQ(p.OffsetOf(A("fd00:1::1:0")), 0x10000u);
  IpPrefix small = P("fd00::/120");
  EXPECT_EQ(small.Nth(255)->ToString(), "fd00::ff");
  EXPECT_FALSE(small.Nth(256));
  // A carry crosses byte boundaries.
  EXPECT_EQ(P("fd00::ff:ff00/112").Nth(0x100)->ToString(), "fd00::ff:100");
}

TEST(IpPrefixTest, Size) {
  EXPECT_EQ(P("172.18.0.0/16").Size(), 65536u);
  EXPECT_EQ(P("10.0.0.0/30").Size(), 4u);
  EXPECT_EQ(P("10.0.0.0/32").Size(), 1u);
  EXPECT_EQ(P("0.0.0.0/0").Size(), uint64_t{1} << 32);
  EXPECT_EQ(P("fd00::/120").Size(), 256u);
  EXPECT_EQ(P("fd00::/128").Size(), 1u);
  EXPECT_EQ(P("fd00::/66").Size(), uint64_t{1} << 62);
  EXPECT_EQ(P("fd00::/64").Size(), uint64_t{1} << 62);
  EXPECT_EQ(P("::/0").Size(), uint64_t{1} << 62);
  EXPECT_EQ(P("fd00::/67").Size(), uint64_t{1} << 61);
}

}  // namespace
}  // namespace moat::net
