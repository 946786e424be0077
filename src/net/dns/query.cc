#include "net/dns/query.h"

#include <ldns/ldns.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace moat::net::dns {
namespace {

struct PktFree {
  void operator()(ldns_pkt* p) const { ldns_pkt_free(p); }
};
using Pkt = std::unique_ptr<ldns_pkt, PktFree>;

constexpr size_t kHeaderSize = 12;
constexpr uint8_t kQrBit = 0x80;

void WriteId(std::string* packet, uint16_t id) {
  (*packet)[0] = static_cast<char>(id >> 8);
  (*packet)[1] = static_cast<char>(id & 0xff);
}

// A bare header answering `packet`'s header: for queries libldns cannot parse.
std::string HeaderOnlyReply(std::string_view packet, uint8_t rcode) {
  std::string out(kHeaderSize, '\0');
  out[0] = packet[0];
  out[1] = packet[1];
  // QR, the client's opcode and RD; RA (we recurse through the upstream).
  out[2] = static_cast<char>(kQrBit | (packet[2] & 0x79));
  out[3] = static_cast<char>(0x80 | (rcode & 0x0f));
  return out;
}

Pkt Parse(std::string_view bytes) {
  ldns_pkt* p = nullptr;
  if (ldns_wire2pkt(&p, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()) !=
      LDNS_STATUS_OK) {
    if (p) ldns_pkt_free(p);
    return nullptr;
  }
  return Pkt(p);
}

std::string ToWire(const ldns_pkt* p) {
  uint8_t* buf = nullptr;
  size_t size = 0;
  if (ldns_pkt2wire(&buf, p, &size) != LDNS_STATUS_OK) {
    free(buf);
    return {};
  }
  std::string out(reinterpret_cast<char*>(buf), size);
  free(buf);
  return out;
}

// The presentation form of a dname, normalized; empty if libldns cannot print it.
std::string NameOf(const ldns_rdf* dname) {
  char* s = ldns_rdf2str(dname);
  if (!s) return {};
  std::string out = NormalizeName(s);
  free(s);
  return out;
}

size_t MaxReply(const ldns_pkt* query, Transport transport) {
  if (transport == Transport::kTcp) return kMaxTcpSize;
  if (!ldns_pkt_edns(query)) return kMinUdpSize;
  return std::clamp<size_t>(ldns_pkt_edns_udp_size(query), kMinUdpSize, kMaxUdpSize);
}

// A reply skeleton for `query`: its id, opcode, RD and CD, the question copied, RA set, and an
// OPT record advertising kMaxUdpSize if the query had EDNS0.
Pkt NewReply(const ldns_pkt* query, uint8_t rcode) {
  Pkt r(ldns_pkt_new());
  if (!r) return nullptr;
  ldns_pkt_set_id(r.get(), ldns_pkt_id(query));
  ldns_pkt_set_qr(r.get(), true);
  ldns_pkt_set_opcode(r.get(), ldns_pkt_get_opcode(query));
  ldns_pkt_set_rd(r.get(), ldns_pkt_rd(query));
  ldns_pkt_set_cd(r.get(), ldns_pkt_cd(query));
  ldns_pkt_set_ra(r.get(), true);
  ldns_pkt_set_rcode(r.get(), rcode);
  ldns_rr_list* q = ldns_pkt_question(query);
  for (size_t i = 0; q && i < ldns_rr_list_rr_count(q); ++i) {
    ldns_pkt_push_rr(r.get(), LDNS_SECTION_QUESTION, ldns_rr_clone(ldns_rr_list_rr(q, i)));
  }
  if (ldns_pkt_edns(query)) ldns_pkt_set_edns_udp_size(r.get(), kMaxUdpSize);
  return r;
}

// Serialises `reply`; over `max` bytes, the same header and question with TC set instead.
std::string Finish(const ldns_pkt* reply, size_t max) {
  std::string wire = ToWire(reply);
  if (wire.size() <= max) return wire;
  Pkt cut(ldns_pkt_new());
  if (!cut) return {};
  ldns_pkt_set_id(cut.get(), ldns_pkt_id(reply));
  ldns_pkt_set_qr(cut.get(), true);
  ldns_pkt_set_opcode(cut.get(), ldns_pkt_get_opcode(reply));
  ldns_pkt_set_aa(cut.get(), ldns_pkt_aa(reply));
  ldns_pkt_set_rd(cut.get(), ldns_pkt_rd(reply));
  ldns_pkt_set_cd(cut.get(), ldns_pkt_cd(reply));
  ldns_pkt_set_ra(cut.get(), ldns_pkt_ra(reply));
  ldns_pkt_set_rcode(cut.get(), ldns_pkt_get_rcode(reply));
  ldns_pkt_set_tc(cut.get(), true);
  ldns_rr_list* q = ldns_pkt_question(reply);
  for (size_t i = 0; q && i < ldns_rr_list_rr_count(q); ++i) {
    ldns_pkt_push_rr(cut.get(), LDNS_SECTION_QUESTION, ldns_rr_clone(ldns_rr_list_rr(q, i)));
  }
  if (ldns_pkt_edns(reply)) ldns_pkt_set_edns_udp_size(cut.get(), ldns_pkt_edns_udp_size(reply));
  std::string out = ToWire(cut.get());
  // A question alone cannot exceed 512 bytes (a name is at most 255), but never send more
  // than the client accepts.
  return out.size() <= max ? out : std::string();
}

bool AddAddress(ldns_pkt* reply, const ldns_rdf* owner, const IpAddr& a) {
  ldns_rr* rr = ldns_rr_new();
  if (!rr) return false;
  ldns_rr_set_owner(rr, ldns_rdf_clone(owner));
  ldns_rr_set_type(rr, a.IsV4() ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA);
  ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
  ldns_rr_set_ttl(rr, kRecordTtl);
  ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(a.IsV4() ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA,
                                             a.Length(), a.bytes.data()));
  return ldns_pkt_push_rr(reply, LDNS_SECTION_ANSWER, rr);
}

bool AddPtr(ldns_pkt* reply, const ldns_rdf* owner, const std::string& name) {
  ldns_rdf* target = ldns_dname_new_frm_str((name + ".").c_str());
  if (!target) return false;
  ldns_rr* rr = ldns_rr_new();
  if (!rr) {
    ldns_rdf_deep_free(target);
    return false;
  }
  ldns_rr_set_owner(rr, ldns_rdf_clone(owner));
  ldns_rr_set_type(rr, LDNS_RR_TYPE_PTR);
  ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
  ldns_rr_set_ttl(rr, kRecordTtl);
  ldns_rr_push_rdf(rr, target);
  return ldns_pkt_push_rr(reply, LDNS_SECTION_ANSWER, rr);
}

std::string Simple(const ldns_pkt* query, uint8_t rcode, size_t max) {
  Pkt r = NewReply(query, rcode);
  return r ? Finish(r.get(), max) : std::string();
}

}  // namespace

QueryOutcome HandleQuery(std::string_view packet, const RecordTable& records, Transport transport,
                         Upstream upstream) {
  QueryOutcome out;
  // Never answer a response: two resolvers (or a spoofed source) would bounce it forever.
  if (packet.size() < kHeaderSize || (static_cast<uint8_t>(packet[2]) & kQrBit)) return out;
  out.action = QueryOutcome::Action::kReply;
  Pkt query = Parse(packet);
  if (!query) {
    out.reply = HeaderOnlyReply(packet, LDNS_RCODE_FORMERR);
    return out;
  }
  size_t max = MaxReply(query.get(), transport);
  if (ldns_pkt_get_opcode(query.get()) != LDNS_PACKET_QUERY) {
    out.reply = Simple(query.get(), LDNS_RCODE_NOTIMPL, max);
    return out;
  }
  ldns_rr_list* questions = ldns_pkt_question(query.get());
  if (!questions || ldns_rr_list_rr_count(questions) != 1) {
    out.reply = HeaderOnlyReply(packet, LDNS_RCODE_FORMERR);
    return out;
  }
  const ldns_rr* q = ldns_rr_list_rr(questions, 0);
  if (ldns_rr_get_class(q) != LDNS_RR_CLASS_IN) {
    out.reply = Simple(query.get(), LDNS_RCODE_REFUSED, max);
    return out;
  }
  const ldns_rdf* owner = ldns_rr_owner(q);
  std::string name = NameOf(owner);
  ldns_rr_type type = ldns_rr_get_type(q);

  if (const std::vector<IpAddr>* addrs = name.empty() ? nullptr : records.Find(name)) {
    Pkt r = NewReply(query.get(), LDNS_RCODE_NOERROR);
    if (!r) {
      out.action = QueryOutcome::Action::kDrop;  // out of memory: let the client retry
      return out;
    }
    ldns_pkt_set_aa(r.get(), true);
    for (const IpAddr& a : *addrs) {
      bool wanted = type == LDNS_RR_TYPE_ANY || (type == LDNS_RR_TYPE_A && a.IsV4()) ||
                    (type == LDNS_RR_TYPE_AAAA && a.family == AF_INET6);
      if (wanted) AddAddress(r.get(), owner, a);
    }
    out.reply = Finish(r.get(), max);
    return out;
  }
  if (type == LDNS_RR_TYPE_PTR && !name.empty()) {
    if (const std::string* target = records.FindReverse(name)) {
      Pkt r = NewReply(query.get(), LDNS_RCODE_NOERROR);
      if (r) {
        ldns_pkt_set_aa(r.get(), true);
        AddPtr(r.get(), owner, *target);
        out.reply = Finish(r.get(), max);
      }
      return out;
    }
  }
  if (upstream == Upstream::kNone || name.empty()) {
    out.reply = Simple(query.get(), LDNS_RCODE_SERVFAIL, max);
    return out;
  }
  out.action = QueryOutcome::Action::kForward;
  out.query = std::string(packet);
  out.client_id = ldns_pkt_id(query.get());
  out.question_name = std::move(name);
  out.question_type = static_cast<uint16_t>(type);
  out.question_class = static_cast<uint16_t>(ldns_rr_get_class(q));
  out.max_reply = max;
  return out;
}

std::string HandleQuery(std::string_view packet, const RecordTable& records) {
  QueryOutcome o = HandleQuery(packet, records, Transport::kUdp, Upstream::kNone);
  return o.action == QueryOutcome::Action::kReply ? o.reply : std::string();
}

Result<std::string> RelayReply(std::string_view upstream_reply, const QueryOutcome& forwarded) {
  if (upstream_reply.size() < kHeaderSize || !(static_cast<uint8_t>(upstream_reply[2]) & kQrBit))
    return Fail(ErrorKind::kInvalidArgument, "upstream reply is not a response");
  Pkt reply = Parse(upstream_reply);
  if (!reply) return Fail(ErrorKind::kInvalidArgument, "malformed upstream reply");
  ldns_rr_list* questions = ldns_pkt_question(reply.get());
  if (!questions || ldns_rr_list_rr_count(questions) != 1)
    return Fail(ErrorKind::kInvalidArgument, "upstream reply without the question");
  const ldns_rr* q = ldns_rr_list_rr(questions, 0);
  if (ldns_rr_get_type(q) != forwarded.question_type ||
      ldns_rr_get_class(q) != forwarded.question_class ||
      NameOf(ldns_rr_owner(q)) != forwarded.question_name)
    return Fail(ErrorKind::kInvalidArgument, "upstream reply to another question");
  if (upstream_reply.size() <= forwarded.max_reply) {
    std::string out(upstream_reply);
    WriteId(&out, forwarded.client_id);
    return out;
  }
  ldns_pkt_set_id(reply.get(), forwarded.client_id);
  std::string cut = Finish(reply.get(), forwarded.max_reply);
  if (cut.empty()) return Fail(ErrorKind::kInternal, "cannot truncate upstream reply");
  return cut;
}

std::string ServfailReply(const QueryOutcome& forwarded) {
  Pkt query = Parse(forwarded.query);
  if (!query) return HeaderOnlyReply(forwarded.query, LDNS_RCODE_SERVFAIL);
  return Simple(query.get(), LDNS_RCODE_SERVFAIL, forwarded.max_reply);
}

}  // namespace moat::net::dns
