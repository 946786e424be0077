#pragma once

// The control messages of protocol.h as typed values, and their JSON encoding. control.cc is
// the dns code's only user of nlohmann::json (it throws; the adapter catches).

#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"
#include "net/ip.h"

namespace moat::net::dns {

// {"op":"listen","network":..,"subnet":..} + fds [udp, tcp]
struct ListenMessage {
  std::string network;
  IpPrefix subnet;
};
// {"op":"unlisten","network":..}
struct UnlistenMessage {
  std::string network;
};
// {"op":"records","network":..,"records":{name:[addr,..],..}}
struct RecordsMessage {
  std::string network;
  std::map<std::string, std::vector<IpAddr>> records;
};
// {"op":"upstream","servers":[addr,..]} + fds: unbound UDP sockets, at most one per address
// family (AF_INET and/or AF_INET6, any order); also used for ClientUpstreamMessage's servers,
// so they may be passed with an empty `servers`.
struct UpstreamMessage {
  std::vector<IpAddr> servers;
};
// {"op":"client-upstream","network":..,"client":addr,"servers":[addr,..]}: the servers that
// queries from `client` in `network` are forwarded to instead of UpstreamMessage's; empty
// removes the override.
struct ClientUpstreamMessage {
  std::string network;
  IpAddr client;
  std::vector<IpAddr> servers;
};

using ControlMessage = std::variant<ListenMessage, UnlistenMessage, RecordsMessage, UpstreamMessage,
                                    ClientUpstreamMessage>;

// The JSON text of `message`. Never fails (names are emitted as given; invalid UTF-8 is
// replaced).
std::string EncodeControl(const ControlMessage& message);

// Parses one message. kInvalidArgument naming the field for malformed JSON, an unknown "op",
// a missing or mistyped field, an address or prefix that does not parse, or an empty network
// id.
Result<ControlMessage> DecodeControl(std::string_view text);

}  // namespace moat::net::dns
