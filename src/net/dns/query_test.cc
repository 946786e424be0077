#include "net/dns/query.h"

#include <gtest/gtest.h>
#include <ldns/ldns.h>

#include <memory>
#include <random>

namespace moat::net::dns {
namespace {

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;

IpAddr Ip(const char* text) { return *IpAddr::Parse(text); }

RecordTable Table() {
  std::map<std::string, std::vector<IpAddr>> m = {
      {"web", {Ip("172.18.0.2")}},
      {"DB", {Ip("172.18.0.3"), Ip("fd00::3")}},
      {"v6only.", {Ip("fd00::4")}},
  };
  auto t = RecordTable::Build(m);
  EXPECT_TRUE(t.has_value());
  return *t;
}

std::string Query(const char* name, ldns_rr_type type, uint16_t id, uint16_t edns = 0) {
  ldns_pkt* p = nullptr;
  EXPECT_EQ(ldns_pkt_query_new_frm_str(&p, name, type, LDNS_RR_CLASS_IN, LDNS_RD), LDNS_STATUS_OK);
  ldns_pkt_set_id(p, id);
  if (edns) ldns_pkt_set_edns_udp_size(p, edns);
  uint8_t* buf = nullptr;
  size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&buf, p, &size), LDNS_STATUS_OK);
  std::string out(reinterpret_cast<char*>(buf), size);
  free(buf);
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

Pkt Answer(const std::string& query, Transport t = Transport::kUdp) {
  QueryOutcome o = HandleQuery(query, Table(), t, Upstream::kNone);
  EXPECT_EQ(o.action, QueryOutcome::Action::kReply);
  Pkt p = Parse(o.reply);
  EXPECT_TRUE(p);
  return p;
}

TEST(DnsQuery, AnswersAKnownName) {
  Pkt p = Answer(Query("web", LDNS_RR_TYPE_A, 0x1234));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_id(p.get()), 0x1234);
  EXPECT_TRUE(ldns_pkt_qr(p.get()));
  EXPECT_TRUE(ldns_pkt_aa(p.get()));
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR);
  EXPECT_EQ(Answers(p.get()), std::vector<std::string>{"172.18.0.2"});
  EXPECT_EQ(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(p.get()), 0)), kRecordTtl);
}

TEST(DnsQuery, AnswersAaaaOnlyWithV6Addresses) {
  Pkt p = Answer(Query("db", LDNS_RR_TYPE_AAAA, 7));
  EXPECT_EQ(Answers(p.get()), std::vector<std::string>{"fd00::3"});
  Pkt a = Answer(Query("db", LDNS_RR_TYPE_A, 7));
  EXPECT_EQ(Answers(a.get()), std::vector<std::string>{"172.18.0.3"});
}

TEST(DnsQuery, NamesAreCaseInsensitiveWithOrWithoutTrailingDot) {
  EXPECT_EQ(Answers(Answer(Query("WeB.", LDNS_RR_TYPE_A, 1)).get()),
            std::vector<std::string>{"172.18.0.2"});
  EXPECT_EQ(Answers(Answer(Query("V6ONLY", LDNS_RR_TYPE_AAAA, 1)).get()),
            std::vector<std::string>{"fd00::4"});
}

TEST(DnsQuery, KnownNameWithoutThatTypeIsEmptyNoError) {
  Pkt p = Answer(Query("v6only", LDNS_RR_TYPE_A, 9));
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(ldns_pkt_aa(p.get()));
  EXPECT_TRUE(Answers(p.get()).empty());
  Pkt mx = Answer(Query("web", LDNS_RR_TYPE_MX, 9));
  EXPECT_EQ(ldns_pkt_get_rcode(mx.get()), LDNS_RCODE_NOERROR);
  EXPECT_TRUE(Answers(mx.get()).empty());
}

TEST(DnsQuery, AnswersPtrWithTheFirstName) {
  Pkt p = Answer(Query("2.0.18.172.in-addr.arpa", LDNS_RR_TYPE_PTR, 3));
  EXPECT_EQ(Answers(p.get()), std::vector<std::string>{"web."});
  std::string v6 = ReverseName(Ip("fd00::3"));
  Pkt q = Answer(Query(v6.c_str(), LDNS_RR_TYPE_PTR, 3));
  EXPECT_EQ(Answers(q.get()), std::vector<std::string>{"db."});
}

TEST(DnsQuery, UnknownNameIsServfailWithoutUpstreamAndForwardedWithOne) {
  Pkt p = Answer(Query("example.com", LDNS_RR_TYPE_A, 44));
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_SERVFAIL);
  EXPECT_EQ(ldns_pkt_id(p.get()), 44);

  std::string q = Query("Example.COM.", LDNS_RR_TYPE_A, 45);
  QueryOutcome o = HandleQuery(q, Table(), Transport::kUdp, Upstream::kAvailable);
  ASSERT_EQ(o.action, QueryOutcome::Action::kForward);
  EXPECT_EQ(o.query, q);
  EXPECT_EQ(o.client_id, 45);
  EXPECT_EQ(o.question_name, "example.com");
  EXPECT_EQ(o.question_type, LDNS_RR_TYPE_A);
  EXPECT_EQ(o.max_reply, kMinUdpSize);
}

TEST(DnsQuery, DropsShortPacketsAndResponses) {
  EXPECT_EQ(HandleQuery(std::string(11, '\0'), Table()), "");
  std::string q = Query("web", LDNS_RR_TYPE_A, 1);
  q[2] = static_cast<char>(q[2] | 0x80);
  EXPECT_EQ(HandleQuery(q, Table()), "");
}

TEST(DnsQuery, MalformedIsFormerrWithTheClientsId) {
  std::string q = Query("web", LDNS_RR_TYPE_A, 0xbeef);
  std::string cut = q.substr(0, q.size() - 3);  // question cut short
  Pkt p = Parse(HandleQuery(cut, Table()));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_id(p.get()), 0xbeef);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_FORMERR);

  std::string two = q;
  two[5] = 2;  // QDCOUNT 2 with one question
  Pkt r = Parse(HandleQuery(two, Table()));
  ASSERT_TRUE(r);
  EXPECT_EQ(ldns_pkt_get_rcode(r.get()), LDNS_RCODE_FORMERR);
}

TEST(DnsQuery, OtherOpcodeIsNotImplemented) {
  std::string q = Query("web", LDNS_RR_TYPE_A, 5);
  q[2] = static_cast<char>((q[2] & 0x87) | (LDNS_PACKET_STATUS << 3));
  Pkt p = Parse(HandleQuery(q, Table()));
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_get_rcode(p.get()), LDNS_RCODE_NOTIMPL);
}

TEST(DnsQuery, LargeAnswersAreTruncatedOverUdpOnly) {
  std::vector<IpAddr> many;
  for (int i = 1; i <= 100; ++i) many.push_back(*IpAddr::Parse("10.0.0." + std::to_string(i)));
  RecordTable t = *RecordTable::Build({{"big", many}});
  std::string q = Query("big", LDNS_RR_TYPE_A, 6);
  Pkt udp = Parse(HandleQuery(q, t, Transport::kUdp, Upstream::kNone).reply);
  ASSERT_TRUE(udp);
  EXPECT_TRUE(ldns_pkt_tc(udp.get()));
  EXPECT_EQ(ldns_pkt_ancount(udp.get()), 0);
  EXPECT_EQ(ldns_pkt_qdcount(udp.get()), 1);
  Pkt edns =
      Parse(HandleQuery(Query("big", LDNS_RR_TYPE_A, 6, 4096), t, Transport::kUdp, Upstream::kNone)
                .reply);
  ASSERT_TRUE(edns);
  EXPECT_FALSE(ldns_pkt_tc(edns.get()));
  EXPECT_EQ(ldns_pkt_ancount(edns.get()), 100);
  Pkt tcp = Parse(HandleQuery(q, t, Transport::kTcp, Upstream::kNone).reply);
  ASSERT_TRUE(tcp);
  EXPECT_EQ(ldns_pkt_ancount(tcp.get()), 100);
}

// An upstream reply as a server would build it.
std::string UpstreamReply(const std::string& query, uint16_t id, const char* addr) {
  ldns_pkt* q = nullptr;
  EXPECT_EQ(ldns_wire2pkt(&q, reinterpret_cast<const uint8_t*>(query.data()), query.size()),
            LDNS_STATUS_OK);
  ldns_pkt_set_id(q, id);
  ldns_pkt_set_qr(q, true);
  ldns_rr* rr = nullptr;
  std::string text = std::string("example.com. 60 IN A ") + addr;
  EXPECT_EQ(ldns_rr_new_frm_str(&rr, text.c_str(), 0, nullptr, nullptr), LDNS_STATUS_OK);
  ldns_pkt_push_rr(q, LDNS_SECTION_ANSWER, rr);
  uint8_t* buf = nullptr;
  size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&buf, q, &size), LDNS_STATUS_OK);
  std::string out(reinterpret_cast<char*>(buf), size);
  free(buf);
  ldns_pkt_free(q);
  return out;
}

TEST(DnsQuery, RelaysUpstreamRepliesWithTheClientsId) {
  QueryOutcome o = HandleQuery(Query("example.com", LDNS_RR_TYPE_A, 77), Table(), Transport::kUdp,
                               Upstream::kAvailable);
  ASSERT_EQ(o.action, QueryOutcome::Action::kForward);
  auto relayed = RelayReply(UpstreamReply(o.query, 999, "93.184.216.34"), o);
  ASSERT_TRUE(relayed.has_value()) << relayed.error().message;
  Pkt p = Parse(*relayed);
  ASSERT_TRUE(p);
  EXPECT_EQ(ldns_pkt_id(p.get()), 77);
  EXPECT_EQ(Answers(p.get()), std::vector<std::string>{"93.184.216.34"});

  Pkt s = Parse(ServfailReply(o));
  ASSERT_TRUE(s);
  EXPECT_EQ(ldns_pkt_get_rcode(s.get()), LDNS_RCODE_SERVFAIL);
  EXPECT_EQ(ldns_pkt_id(s.get()), 77);
}

TEST(DnsQuery, RejectsUpstreamRepliesToAnotherQuestion) {
  QueryOutcome o = HandleQuery(Query("example.com", LDNS_RR_TYPE_A, 1), Table(), Transport::kUdp,
                               Upstream::kAvailable);
  std::string other = Query("example.org", LDNS_RR_TYPE_A, 1);
  EXPECT_FALSE(RelayReply(UpstreamReply(other, 1, "1.2.3.4"), o).has_value());
  EXPECT_FALSE(RelayReply(o.query, o).has_value());  // not a response
  EXPECT_FALSE(RelayReply("garbage-garbage-garbage", o).has_value());
}

TEST(DnsRecords, RejectsInvalidNames) {
  EXPECT_FALSE(RecordTable::Build({{"", {Ip("10.0.0.1")}}}).has_value());
  EXPECT_FALSE(RecordTable::Build({{"a..b", {Ip("10.0.0.1")}}}).has_value());
  EXPECT_FALSE(RecordTable::Build({{"a b", {Ip("10.0.0.1")}}}).has_value());
  EXPECT_FALSE(RecordTable::Build({{std::string(64, 'a'), {Ip("10.0.0.1")}}}).has_value());
  EXPECT_TRUE(RecordTable::Build({{"my_app-1.net", {Ip("10.0.0.1")}}}).has_value());
  EXPECT_EQ(ReverseName(Ip("::1")),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa");
}

// A poor man's fuzzer: random bytes and mutations of valid queries never crash, and every
// reply parses.
TEST(DnsQuery, SurvivesRandomAndMutatedPackets) {
  std::mt19937 rng(12345);
  RecordTable t = Table();
  std::vector<std::string> seeds = {Query("web", LDNS_RR_TYPE_A, 1),
                                    Query("db", LDNS_RR_TYPE_AAAA, 2, 1232),
                                    Query("2.0.18.172.in-addr.arpa", LDNS_RR_TYPE_PTR, 3)};
  for (int i = 0; i < 20000; ++i) {
    std::string p;
    if (i % 2 == 0) {
      p.resize(rng() % 600);
      for (char& c : p) c = static_cast<char>(rng());
    } else {
      p = seeds[rng() % seeds.size()];
      for (int k = 0, n = 1 + rng() % 4; k < n; ++k) p[rng() % p.size()] = static_cast<char>(rng());
      if (rng() % 4 == 0) p.resize(rng() % (p.size() + 1));
    }
    QueryOutcome o = HandleQuery(p, t, i % 3 ? Transport::kUdp : Transport::kTcp,
                                 i % 5 ? Upstream::kNone : Upstream::kAvailable);
    if (o.action == QueryOutcome::Action::kReply) {
      ASSERT_GE(o.reply.size(), 12u);
      if (i % 3) {
        ASSERT_LE(o.reply.size(), kMaxUdpSize);
      }
      ASSERT_EQ(o.reply.substr(0, 2), p.substr(0, 2));
    }
  }
}

}  // namespace
}  // namespace moat::net::dns
