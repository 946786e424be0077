// Fuzz target: the embedded DNS resolver's packet logic, src/net/dns/query.h. HandleQuery
// answers packets from containers (UDP and TCP, with and without an upstream); for a query it
// forwards, the same bytes with the QR bit set stand in for the upstream's reply to RelayReply,
// so the relay's checks see the fuzzer's answer sections too.
// Checks: a reply keeps the client's id, is a response, fits the transport (the client's UDP
// size, 65535 over TCP) and parses as a DNS message (ldns); a forward carries the client's
// bytes unchanged.

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "net/dns/query.h"

// Last: ldns's headers define macros that break libstdc++ headers included after them.
#include <ldns/ldns.h>

using namespace moat::net::dns;
using moat::net::IpAddr;

namespace {

const RecordTable& Table() {
  static const RecordTable* table = [] {
    std::map<std::string, std::vector<IpAddr>> m = {
        {"web", {*IpAddr::Parse("172.18.0.2")}},
        {"DB", {*IpAddr::Parse("172.18.0.3"), *IpAddr::Parse("fd00::3")}},
        {"v6only.", {*IpAddr::Parse("fd00::4")}},
        {"db.project_default", {*IpAddr::Parse("172.18.0.3")}},
    };
    auto t = RecordTable::Build(m);
    if (!t) moat::fuzz::Violation("RecordTable::Build", t.error().message);
    return new RecordTable(std::move(*t));
  }();
  return *table;
}

void CheckReply(std::string_view query, const std::string& reply, size_t limit, const char* what) {
  if (reply.size() < 12) moat::fuzz::Violation(what, "a reply shorter than a DNS header");
  if (reply.size() > limit)
    moat::fuzz::Violation(what, "a reply larger than the transport allows: " +
                                    std::to_string(reply.size()) + " > " + std::to_string(limit));
  if (reply.compare(0, 2, query.substr(0, 2)) != 0)
    moat::fuzz::Violation(what, "a reply with another id than the query's");
  if (!(static_cast<unsigned char>(reply[2]) & 0x80))
    moat::fuzz::Violation(what, "a reply without the QR bit");
  ldns_pkt* p = nullptr;
  if (ldns_wire2pkt(&p, reinterpret_cast<const uint8_t*>(reply.data()), reply.size()) !=
      LDNS_STATUS_OK)
    moat::fuzz::Violation(what, "a reply that does not parse as a DNS message");
  ldns_pkt_free(p);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view packet(reinterpret_cast<const char*>(data), size);
  for (Transport transport : {Transport::kUdp, Transport::kTcp}) {
    for (Upstream upstream : {Upstream::kNone, Upstream::kAvailable}) {
      QueryOutcome out = HandleQuery(packet, Table(), transport, upstream);
      size_t limit = transport == Transport::kUdp ? kMaxUdpSize : kMaxTcpSize;
      switch (out.action) {
        case QueryOutcome::Action::kDrop:
          break;
        case QueryOutcome::Action::kReply:
          CheckReply(packet, out.reply, limit, "HandleQuery");
          break;
        case QueryOutcome::Action::kForward: {
          if (upstream != Upstream::kAvailable)
            moat::fuzz::Violation("HandleQuery", "a forward without an upstream");
          if (out.query != packet)
            moat::fuzz::Violation("HandleQuery", "a forward that changed the client's bytes");
          if (out.max_reply > limit || out.max_reply < kMinUdpSize)
            moat::fuzz::Violation("HandleQuery", "a forward with max_reply outside its range");
          std::string upstream_reply(packet);
          upstream_reply[2] = static_cast<char>(upstream_reply[2] | 0x80);
          if (auto relayed = RelayReply(upstream_reply, out))
            CheckReply(packet, *relayed, out.max_reply, "RelayReply");
          CheckReply(packet, ServfailReply(out), out.max_reply, "ServfailReply");
          break;
        }
      }
    }
  }
  // The moat-dns entry point as the header names it.
  std::string reply = HandleQuery(packet, Table());
  if (!reply.empty()) CheckReply(packet, reply, kMaxUdpSize, "HandleQuery (fuzzing entry)");
  return 0;
}
