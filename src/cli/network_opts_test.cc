#include "cli/network_opts.h"

#include <gtest/gtest.h>

namespace moat::cli {
namespace {

Json Parse(std::string_view text) {
  auto j = ParseJson(text);
  EXPECT_TRUE(j.has_value()) << text;
  return j.has_value() ? *j : Json();
}

std::string CreateError(const NetworkCreateFlags& f) {
  auto b = BuildNetworkCreateBody("n", f);
  return b.has_value() ? "<ok>" : b.error().message;
}

TEST(NetworkOptsTest, AddressChecks) {
  EXPECT_EQ(NormalizeIp("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(NormalizeIp(" 0:0:0:0:0:0:0:1 "), "::1");
  EXPECT_EQ(NormalizeIp("1.2.3"), std::nullopt);
  EXPECT_EQ(NormalizeIp("01.2.3.4"), std::nullopt);
  EXPECT_EQ(NormalizeIp(""), std::nullopt);
  EXPECT_TRUE(IsValidMac("92:d0:c6:0a:29:33"));
  EXPECT_TRUE(IsValidMac("92-D0-C6-0A-29-33"));
  EXPECT_TRUE(IsValidMac("92d0.c60a.2933"));
  EXPECT_FALSE(IsValidMac("92:d0:c6:0a:29"));
  EXPECT_FALSE(IsValidMac("92:d0-c6:0a:29:33"));
  EXPECT_FALSE(IsValidMac("zz:d0:c6:0a:29:33"));
  EXPECT_TRUE(IsValidDnsSearch("example.com"));
  EXPECT_TRUE(IsValidDnsSearch("example.com."));
  EXPECT_TRUE(IsValidDnsSearch("."));
  EXPECT_FALSE(IsValidDnsSearch("123.456"));
  EXPECT_FALSE(IsValidDnsSearch("-bad.com"));
  EXPECT_FALSE(IsValidDnsSearch("a..b"));
  EXPECT_FALSE(IsValidDnsSearch(std::string(300, 'a')));
  EXPECT_TRUE(IsUserDefinedNetwork("mynet"));
  for (const char* m : {"default", "bridge", "host", "none", "container:abc"})
    EXPECT_FALSE(IsUserDefinedNetwork(m)) << m;
}

TEST(NetworkOptsTest, NaturalOrder) {
  EXPECT_TRUE(NaturalLess("net2", "net10"));
  EXPECT_FALSE(NaturalLess("net10", "net2"));
  EXPECT_TRUE(NaturalLess("a", "b"));
  EXPECT_TRUE(NaturalLess("a", "ab"));
  EXPECT_TRUE(NaturalLess("1", "a"));  // digits first
  EXPECT_TRUE(NaturalLess("x01", "x001"));
  EXPECT_FALSE(NaturalLess("same", "same"));
}

TEST(NetworkOptsTest, CreateBodyDefaults) {
  auto b = BuildNetworkCreateBody("web", NetworkCreateFlags{});
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(Dump(*b), R"({"CheckDuplicate":true,"Driver":"bridge","Scope":"","EnableIPv6":false,)"
                      R"("IPAM":{"Driver":"default","Options":{},"Config":[]},"Internal":false,)"
                      R"("Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,)"
                      R"("Options":{},"Labels":{},"Name":"web"})");
}

TEST(NetworkOptsTest, CreateBodyIpamAndFlags) {
  NetworkCreateFlags f;
  f.driver = "macvlan";
  f.subnets = {"10.10.0.0/16", "fd00:1::/64"};
  f.gateways = {"fd00:1::1", "10.10.0.1"};
  f.ip_ranges = {"10.10.5.0/24"};
  f.aux_addresses = {"router=10.10.0.2"};
  f.opts = {"com.docker.network.bridge.name=br-x", "flag"};
  f.labels = {"team=a"};
  f.internal = f.attachable = f.ipv6 = true;
  auto b = BuildNetworkCreateBody("n", f);
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ((*b)["Driver"], "macvlan");
  EXPECT_EQ(Dump((*b)["IPAM"]["Config"]),
            R"([{"Subnet":"10.10.0.0/16","IPRange":"10.10.5.0/24","Gateway":"10.10.0.1",)"
            R"("AuxiliaryAddresses":{"router":"10.10.0.2"}},)"
            R"({"Subnet":"fd00:1::/64","Gateway":"fd00:1::1"}])");
  EXPECT_EQ(Dump((*b)["Options"]), R"({"com.docker.network.bridge.name":"br-x","flag":""})");
  EXPECT_EQ(Dump((*b)["Labels"]), R"({"team":"a"})");
  EXPECT_EQ((*b)["Internal"], true);
  EXPECT_EQ((*b)["Attachable"], true);
  EXPECT_EQ((*b)["EnableIPv6"], true);
}

TEST(NetworkOptsTest, CreateBodyRejectsWhatDockerRejects) {
  NetworkCreateFlags gw_only;
  gw_only.gateways = {"10.0.0.1"};
  EXPECT_EQ(CreateError(gw_only), "every ip-range or gateway must have a corresponding subnet");

  NetworkCreateFlags bad_subnet;
  bad_subnet.subnets = {"10.0.0/8"};
  EXPECT_EQ(CreateError(bad_subnet), "invalid subnet: invalid CIDR address: 10.0.0/8");

  NetworkCreateFlags bad_prefix;
  bad_prefix.subnets = {"10.0.0.0/33"};
  EXPECT_NE(CreateError(bad_prefix), "<ok>");

  NetworkCreateFlags overlap;
  overlap.subnets = {"10.0.0.0/8", "10.1.0.0/16"};
  EXPECT_EQ(CreateError(overlap), "multiple overlapping subnet configuration is not supported");

  NetworkCreateFlags outside;
  outside.subnets = {"10.0.0.0/24"};
  outside.gateways = {"10.0.1.1"};
  EXPECT_EQ(CreateError(outside), "no matching subnet for gateway 10.0.1.1");

  NetworkCreateFlags range_outside;
  range_outside.subnets = {"10.0.0.0/24"};
  range_outside.ip_ranges = {"10.0.1.0/28"};
  EXPECT_EQ(CreateError(range_outside), "no matching subnet for range 10.0.1.0/28");

  NetworkCreateFlags two_gateways;
  two_gateways.subnets = {"10.0.0.0/24", "10.2.0.0/24"};
  two_gateways.gateways = {"10.0.0.1", "10.0.0.254"};
  EXPECT_EQ(CreateError(two_gateways),
            "cannot configure multiple gateways (10.0.0.254, 10.0.0.1) for the same subnet "
            "(10.0.0.0/24)");

  NetworkCreateFlags bad_aux;
  bad_aux.subnets = {"10.0.0.0/24"};
  bad_aux.aux_addresses = {"10.0.0.5"};
  EXPECT_NE(CreateError(bad_aux), "<ok>");
}

TEST(NetworkOptsTest, ConnectAndDisconnectBodies) {
  NetworkConnectFlags f;
  f.aliases = {"db", "database"};
  f.ip = "172.30.100.104";
  f.ip6 = "2001:db8::33";
  f.links = {"other:alias"};
  f.driver_opts = {"com.example.mtu=1400"};
  auto b = BuildNetworkConnectBody("web", f);
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(Dump(*b),
            R"({"Container":"web","EndpointConfig":{"IPAMConfig":{"IPv4Address":"172.30.100.104",)"
            R"("IPv6Address":"2001:db8::33"},"Links":["other:alias"],"Aliases":["db","database"],)"
            R"("DriverOpts":{"com.example.mtu":"1400"}}})");
  auto plain = BuildNetworkConnectBody("web", NetworkConnectFlags{});
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(Dump(*plain),
            R"({"Container":"web","EndpointConfig":{"IPAMConfig":{},"Links":null,"Aliases":null,)"
            R"("DriverOpts":null}})");
  NetworkConnectFlags bad_link;
  bad_link.links = {"a:b:c"};
  EXPECT_FALSE(BuildNetworkConnectBody("web", bad_link).has_value());
  NetworkConnectFlags bad_opt;
  bad_opt.driver_opts = {"novalue"};
  EXPECT_FALSE(BuildNetworkConnectBody("web", bad_opt).has_value());
  EXPECT_EQ(Dump(BuildNetworkDisconnectBody("web", true)), R"({"Container":"web","Force":true})");
}

TEST(NetworkOptsTest, ListRow) {
  Json n =
      Parse(R"({"Name":"web","Id":"0123456789abcdef0123","Created":"2026-11-29T13:47:22.024001270Z",
                    "Scope":"local","Driver":"bridge","EnableIPv6":true,"Internal":false,
                    "Labels":{"a":"1","b":"2"}})");
  Json row = NetworkListRow(n, false);
  EXPECT_EQ(row["ID"], "0123456789ab");
  EXPECT_EQ(row["Name"], "web");
  EXPECT_EQ(row["Driver"], "bridge");
  EXPECT_EQ(row["Scope"], "local");
  EXPECT_EQ(row["IPv6"], "true");
  EXPECT_EQ(row["Internal"], "false");
  EXPECT_EQ(row["Labels"], "a=1,b=2");
  EXPECT_EQ(row["CreatedAt"], "2026-11-29 13:47:22.02400127 +0000 UTC");
  EXPECT_EQ(NetworkListRow(n, true)["ID"], "0123456789abcdef0123");
}

TEST(NetworkOptsTest, DisplayablePortsMatchesDockerPs) {
  EXPECT_EQ(DisplayablePorts(nullptr), "");
  Json one = Parse(R"([{"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}])");
  EXPECT_EQ(DisplayablePorts(&one), "0.0.0.0:8080->80/tcp");
  Json dual = Parse(R"([{"IP":"::","PrivatePort":80,"PublicPort":8080,"Type":"tcp"},
                        {"IP":"0.0.0.0","PrivatePort":80,"PublicPort":8080,"Type":"tcp"}])");
  EXPECT_EQ(DisplayablePorts(&dual), "0.0.0.0:8080->80/tcp, :::8080->80/tcp");
  Json mixed = Parse(R"([{"PrivatePort":9988,"Type":"tcp"},
                         {"IP":"0.0.0.0","PrivatePort":80,"PublicPort":9090,"Type":"tcp"},
                         {"PrivatePort":53,"Type":"udp"},{"PrivatePort":54,"Type":"udp"},
                         {"IP":"127.0.0.1","PrivatePort":81,"PublicPort":81,"Type":"tcp"},
                         {"IP":"127.0.0.1","PrivatePort":82,"PublicPort":82,"Type":"tcp"}])");
  EXPECT_EQ(DisplayablePorts(&mixed),
            "53-54/udp, 127.0.0.1:81-82->81-82/tcp, 9988/tcp, 0.0.0.0:9090->80/tcp");
  Json gap = Parse(R"([{"PrivatePort":1,"Type":"tcp"},{"PrivatePort":3,"Type":"tcp"}])");
  EXPECT_EQ(DisplayablePorts(&gap), "1/tcp, 3/tcp");
}

TEST(NetworkOptsTest, PortLines) {
  Json ports =
      Parse(R"({"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"},{"HostIp":"::","HostPort":"8080"}],
                         "443/tcp":null,"53/udp":[{"HostIp":"127.0.0.1","HostPort":"5353"}],
                         "9/tcp":[{"HostIp":"0.0.0.0","HostPort":"9000"}]})");
  auto all = PortLines(&ports, "", "web");
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(*all, (std::vector<std::string>{"9/tcp -> 0.0.0.0:9000", "53/udp -> 127.0.0.1:5353",
                                            "80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080"}));
  auto one = PortLines(&ports, "80", "web");
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(*one, (std::vector<std::string>{"0.0.0.0:8080", "[::]:8080"}));
  auto udp = PortLines(&ports, "53/udp", "web");
  ASSERT_TRUE(udp.has_value());
  EXPECT_EQ(*udp, (std::vector<std::string>{"127.0.0.1:5353"}));
  auto missing = PortLines(&ports, "443", "web");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message, "Error: No public port '443/tcp' published for web");
  EXPECT_FALSE(PortLines(&ports, "http", "web").has_value());
  EXPECT_FALSE(PortLines(&ports, "70000", "web").has_value());
  auto none = PortLines(nullptr, "", "web");
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace moat::cli
