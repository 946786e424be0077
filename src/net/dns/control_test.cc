#include "net/dns/control.h"

#include <gtest/gtest.h>

namespace moat::net::dns {
namespace {

IpAddr Ip(const char* text) { return *IpAddr::Parse(text); }

template <typename T>
T RoundTrip(const T& m) {
  auto decoded = DecodeControl(EncodeControl(m));
  EXPECT_TRUE(decoded.has_value()) << decoded.error().message;
  EXPECT_TRUE(std::holds_alternative<T>(*decoded));
  return std::get<T>(*decoded);
}

TEST(DnsControl, RoundTrips) {
  ListenMessage l = RoundTrip(ListenMessage{"net1", *IpPrefix::Parse("172.18.0.0/16")});
  EXPECT_EQ(l.network, "net1");
  EXPECT_EQ(l.subnet.ToString(), "172.18.0.0/16");
  EXPECT_EQ(RoundTrip(UnlistenMessage{"net1"}).network, "net1");
  RecordsMessage r =
      RoundTrip(RecordsMessage{"n", {{"web", {Ip("172.18.0.2")}}, {"db", {Ip("fd00::3")}}}});
  EXPECT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records["db"][0], Ip("fd00::3"));
  UpstreamMessage u = RoundTrip(UpstreamMessage{{Ip("10.255.255.53"), Ip("2001:db8::53")}});
  EXPECT_EQ(u.servers.size(), 2u);
  EXPECT_EQ(RoundTrip(UpstreamMessage{}).servers.size(), 0u);
  ClientUpstreamMessage c =
      RoundTrip(ClientUpstreamMessage{"n", Ip("172.18.0.5"), {Ip("10.9.9.9"), Ip("fd00::53")}});
  EXPECT_EQ(c.network, "n");
  EXPECT_EQ(c.client, Ip("172.18.0.5"));
  EXPECT_EQ(c.servers, (std::vector<IpAddr>{Ip("10.9.9.9"), Ip("fd00::53")}));
  ClientUpstreamMessage removed = RoundTrip(ClientUpstreamMessage{"n", Ip("fd00::5"), {}});
  EXPECT_EQ(removed.client, Ip("fd00::5"));
  EXPECT_TRUE(removed.servers.empty());
}

TEST(DnsControl, DecodesTheProtocolExamples) {
  auto m = DecodeControl(R"({"op":"records","network":"x","records":{"web":["172.18.0.2"],)"
                         R"("db":["172.18.0.3","fd00::3"]}})");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(std::get<RecordsMessage>(*m).records["db"].size(), 2u);
  auto c = DecodeControl(
      R"({"op":"client-upstream","network":"id","client":"172.18.0.5","servers":["10.9.9.9"]})");
  ASSERT_TRUE(c.has_value()) << c.error().message;
  ASSERT_TRUE(std::holds_alternative<ClientUpstreamMessage>(*c));
  const auto& cu = std::get<ClientUpstreamMessage>(*c);
  EXPECT_EQ(cu.network, "id");
  EXPECT_EQ(cu.client, Ip("172.18.0.5"));
  EXPECT_EQ(cu.servers, std::vector<IpAddr>{Ip("10.9.9.9")});
}

TEST(DnsControl, RejectsMalformedMessages) {
  for (const char* bad :
       {"", "{", "[]", R"({"op":"fly"})", R"({"op":"listen","network":"n"})",
        R"({"op":"listen","network":"","subnet":"10.0.0.0/8"})",
        R"({"op":"listen","network":"n","subnet":"10.0.0.0/99"})",
        R"({"op":"records","network":"n","records":{"a":"10.0.0.1"}})",
        R"({"op":"records","network":"n","records":{"a":["x"]}})",
        R"({"op":"upstream","servers":[1]})",
        R"({"op":"client-upstream","network":"n","servers":[]})",
        R"({"op":"client-upstream","network":"","client":"10.0.0.2","servers":[]})",
        R"({"op":"client-upstream","network":"n","client":"x","servers":[]})",
        R"({"op":"client-upstream","network":"n","client":"10.0.0.2"})",
        R"({"op":"client-upstream","network":"n","client":"10.0.0.2",)"
        R"("servers":["10.0.0.300"]})"}) {
    EXPECT_FALSE(DecodeControl(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace moat::net::dns
