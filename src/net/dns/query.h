#pragma once

// moat-dns's packet logic as pure functions (no system calls, no global state): answering a
// query from a network's records, and checking and relaying an upstream reply. Every input is
// untrusted bytes from a container or an upstream server; nothing here aborts on bad input.
// Thread-compatible (libldns keeps no global state for these calls).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "net/dns/records.h"

namespace moat::net::dns {

inline constexpr size_t kMinUdpSize = 512;    // RFC 1035 without EDNS0
inline constexpr size_t kMaxUdpSize = 4096;   // the most we accept or advertise with EDNS0
inline constexpr size_t kMaxTcpSize = 65535;  // the 2-byte length prefix
inline constexpr uint32_t kRecordTtl = 600;

enum class Transport { kUdp, kTcp };
enum class Upstream { kNone, kAvailable };

// What to do with one query.
struct QueryOutcome {
  enum class Action {
    kDrop,     // say nothing (shorter than a header, or a response rather than a query)
    kReply,    // send `reply`
    kForward,  // send `query` (the client's bytes) upstream with a fresh id, relay the answer
  };
  Action action = Action::kDrop;
  std::string reply;
  // kForward only:
  std::string query;
  uint16_t client_id = 0;
  std::string question_name;  // normalized (NormalizeName of the presentation form)
  uint16_t question_type = 0;
  uint16_t question_class = 0;
  size_t max_reply = kMinUdpSize;  // the largest reply the client accepts on its transport
};

// Answers `packet`, a query received over `transport`:
//  - fewer than 12 bytes, or the QR bit set: kDrop;
//  - malformed past the header: FORMERR (header only, the client's id);
//  - opcode other than QUERY: NOTIMP; a question count other than 1: FORMERR; a class other
//    than IN: REFUSED;
//  - A/AAAA/ANY for a known name: the addresses of that type (TTL kRecordTtl, authoritative),
//    other types for a known name: an empty authoritative NOERROR; PTR for a known address:
//    its first name;
//  - anything else: kForward when `upstream` is kAvailable, else SERVFAIL.
// A reply larger than the transport allows (512, or the EDNS0 size clamped to 512..4096, over
// UDP) is cut to the question with TC set.
QueryOutcome HandleQuery(std::string_view packet, const RecordTable& records, Transport transport,
                         Upstream upstream);

// The fuzzing entry point: HandleQuery over UDP without upstream; the reply bytes, or an empty
// string when the query is dropped.
std::string HandleQuery(std::string_view packet, const RecordTable& records);

// Checks `upstream_reply` against the forwarded query (a well-formed response whose single
// question equals the one asked, case-insensitively) and returns the bytes to send to the
// client: the upstream's reply with the client's id, or, when it exceeds `max_reply`, its
// header and question with TC set. kInvalidArgument for anything else (the caller drops it).
Result<std::string> RelayReply(std::string_view upstream_reply, const QueryOutcome& forwarded);

// SERVFAIL for a forwarded query that no upstream answered in time.
std::string ServfailReply(const QueryOutcome& forwarded);

}  // namespace moat::net::dns
