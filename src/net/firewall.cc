#include "net/firewall.h"

#include <arpa/inet.h>
#include <nftables/libnftables.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/strings.h"

// The rule set, per family (table "ip <table>" and "ip6 <table>", the same layout in both):
//
//   set  bridges      ifname                      every Moat bridge (NetworkBridges reads it)
//   map  from_bridge  ifname : verdict            bridge -> jump from-<bridge>
//   map  to_bridge    ifname : verdict            bridge -> jump to-<bridge>
//   map  masq_src     addr (interval) : verdict   subnet -> jump post-<bridge>
//   map  pm_addr      l4proto . addr . port : addr . port   published on one host address
//   map  pm_any       l4proto . port : addr . port          published on any local address
//   chain forward     (filter, hook forward, priority filter)   iifname/oifname vmaps
//   chain prerouting  (nat, dstnat)   fib daddr type local, not 127/8 or ::1 -> jump publish
//   chain output      (nat, -100)     fib daddr type local -> jump publish
//   chain postrouting (nat, srcnat)   ip saddr vmap @masq_src; 127/8 -> bridge masquerade;
//                                     DNATed from a local address -> bridge masquerade
//   chain guard       (filter, raw, ip only)   127/8 arriving on anything but lo: drop
//   chain publish     dnat through pm_addr, then pm_any
//   chains from-<b>, to-<b>, post-<b>   one network's rules, rewritten by AddNetwork only
//
// The base chains hold static rules only: Open flushes and re-adds them (idempotent, atomic),
// and everything per network or per mapping is a map element or a regular chain of its own,
// so AddNetwork/RemoveNetwork/port mapping calls touch nothing that belongs to another network.
// Element comments carry the bridge name, so PortMappings() can give it back.
//
// Priorities: the nat chains use the standard dstnat/srcnat priorities and the filter chain
// priority 0, as iptables-nft (Docker) and firewalld do; a packet traverses every table's base
// chains, so Moat's "policy accept" never overrides someone else's drop. The guard runs at raw
// (-300), before conntrack (-200) and NAT (-100): no packet has been DNATed at that point, and
// replies to the host's own 127.0.0.1 connections into a bridge still carry the bridge address
// (the masquerade is undone only at -100), so dropping every 127/8 destination seen on a non-lo
// interface is exactly the CVE-2020-8558 guard (a container sending to 127.0.0.1 via the bridge
// once route_localnet is on).
//
// The object is not thread-safe (one nft context); moatd calls it from one thread.

namespace moat::net {
namespace {

using json = nlohmann::json;

// ---- libnftables adapter: nothing here throws; failures come back as Result. ----

struct NftCtxDeleter {
  void operator()(nft_ctx* ctx) const { nft_ctx_free(ctx); }
};
using NftCtxPtr = std::unique_ptr<nft_ctx, NftCtxDeleter>;

enum class Output { kText, kJson };

// nft's error buffer holds "Error: ..." lines followed by the offending command and a caret
// line; the "Error:" lines are the message.
std::string NftErrorText(const char* buf) {
  std::string text = buf ? buf : "";
  std::vector<std::string> errors;
  for (const std::string& line : StrSplit(text, '\n')) {
    if (StartsWith(line, "Error: ")) errors.push_back(line.substr(7));
  }
  if (errors.empty()) {
    std::string trimmed(TrimWhitespace(text));
    return trimmed.empty() ? "nft failed without a message" : trimmed;
  }
  std::sort(errors.begin(), errors.end());
  errors.erase(std::unique(errors.begin(), errors.end()), errors.end());
  return StrJoin(errors, "; ");
}

// No nf_tables in the kernel, or no CAP_NET_ADMIN in the namespace's owning user namespace.
bool IsUnavailable(const std::string& err) {
  for (const char* s : {"Operation not permitted", "Permission denied", "Protocol not supported",
                        "Address family not supported", "Operation not supported"}) {
    if (err.find(s) != std::string::npos) return true;
  }
  return false;
}

// Runs `cmds` (one or more newline-separated commands) as one nft transaction. Returns nft's
// output (text or JSON). `what` names the operation for the error message.
Result<std::string> RunNft(nft_ctx* ctx, const std::string& cmds, Output out,
                           const std::string& what) {
  nft_ctx_output_set_flags(ctx, out == Output::kJson ? NFT_CTX_OUTPUT_JSON : 0);
  int rc = nft_run_cmd_from_buffer(ctx, cmds.c_str());
  // Reading a buffer also rewinds it for the next command, so read both every time.
  const char* out_buf = nft_ctx_get_output_buffer(ctx);
  std::string output = out_buf ? out_buf : "";
  std::string err = NftErrorText(nft_ctx_get_error_buffer(ctx));
  if (rc != 0) {
    return Fail(IsUnavailable(err) ? ErrorKind::kUnavailable : ErrorKind::kInternal, "%s: %s",
                what.c_str(), err.c_str());
  }
  return output;
}

// ---- nlohmann::json access without exceptions (parse with allow_exceptions = false, check
// every type before reading). ----

const json* Member(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::string StringOr(const json* j, std::string fallback = "") {
  return j && j->is_string() ? j->get<std::string>() : fallback;
}

// The "elem" array of the first set/map object in `nft -j list map|set ...` output.
Result<std::vector<json>> ListElements(const std::string& json_text, const char* kind) {
  json doc = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return Fail(ErrorKind::kInternal, "nft returned malformed json: %.200s", json_text.c_str());
  }
  const json* items = Member(doc, "nftables");
  if (!items || !items->is_array()) return Fail(ErrorKind::kInternal, "nft json without nftables");
  for (const json& item : *items) {
    const json* obj = Member(item, kind);
    if (!obj) continue;
    const json* elems = Member(*obj, "elem");
    if (!elems || !elems->is_array()) return std::vector<json>{};
    return std::vector<json>(elems->begin(), elems->end());
  }
  return std::vector<json>{};
}

// A set element in JSON is either the bare value or {"elem": {"val": value, "comment": ...}}.
std::pair<const json*, std::string> ElemValue(const json& e) {
  if (const json* wrapped = Member(e, "elem")) {
    return {Member(*wrapped, "val"), StringOr(Member(*wrapped, "comment"))};
  }
  return {&e, ""};
}

// ---- values ----

struct Family {
  const char* nft;        // "ip" / "ip6": table family and payload protocol
  const char* addr_type;  // nft data type
  const char* loopback;   // what prerouting never DNATs
  int af;
};
constexpr Family kV4{"ip", "ipv4_addr", "127.0.0.0/8", AF_INET};
constexpr Family kV6{"ip6", "ipv6_addr", "::1", AF_INET6};
constexpr const Family* kFamilies[] = {&kV4, &kV6};

const Family* FamilyOf(int af) {
  if (af == AF_INET) return &kV4;
  if (af == AF_INET6) return &kV6;
  return nullptr;
}

std::string AddrText(const IpAddr& a) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (!inet_ntop(a.family, a.bytes.data(), buf, sizeof(buf))) return "?";
  return buf;
}

bool ParseAddr(const std::string& text, IpAddr* out) {
  IpAddr a;
  a.family = text.find(':') == std::string::npos ? AF_INET : AF_INET6;
  if (inet_pton(a.family, text.c_str(), a.bytes.data()) != 1) return false;
  *out = a;
  return true;
}

bool IsUnspecifiedAddr(const IpAddr& a) {
  size_t n = a.family == AF_INET ? 4 : 16;
  return std::all_of(a.bytes.begin(), a.bytes.begin() + n, [](uint8_t b) { return b == 0; });
}

std::string PrefixText(const IpPrefix& p) {
  IpAddr masked = p.addr;
  size_t n = masked.family == AF_INET ? 4 : 16;
  for (size_t i = 0; i < n; ++i) {
    int bits = std::clamp(p.len - static_cast<int>(i) * 8, 0, 8);
    masked.bytes[i] &= static_cast<uint8_t>(0xff00 >> bits);
  }
  return StrFormat("%s/%d", AddrText(masked).c_str(), p.len);
}

// Names end up inside nft commands (chain names, quoted strings): a strict alphabet keeps a
// name from ever changing the command (no quotes, spaces, semicolons or newlines).
bool ValidName(const std::string& s, size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  if (!isalnum(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}
constexpr size_t kIfNameMax = 15;  // IFNAMSIZ - 1

Result<void> CheckBridge(const std::string& bridge) {
  if (!ValidName(bridge, kIfNameMax)) {
    return Fail(ErrorKind::kInvalidArgument,
                "invalid bridge name \"%s\" (1-15 characters of [A-Za-z0-9_.-])", bridge.c_str());
  }
  return Ok();
}

bool ValidProto(const std::string& p) { return p == "tcp" || p == "udp" || p == "sctp"; }

std::string Endpoint(const IpAddr& a, uint16_t port) {
  return a.family == AF_INET6 ? StrFormat("[%s]:%u", AddrText(a).c_str(), port)
                              : StrFormat("%s:%u", AddrText(a).c_str(), port);
}

std::string Describe(const PortMapping& m) {
  return StrFormat("%s %s -> %s", m.proto.c_str(), Endpoint(m.host_ip, m.host_port).c_str(),
                   Endpoint(m.container_ip, m.container_port).c_str());
}

}  // namespace

struct Firewall::Impl {
  NftCtxPtr ctx;
  std::string table;

  Result<std::string> Run(const std::string& cmds, const std::string& what,
                          Output out = Output::kText) {
    return RunNft(ctx.get(), cmds, out, what);
  }

  std::string T(const Family& f) const { return StrFormat("%s %s", f.nft, table.c_str()); }

  std::string SetupCommands(const Family& f) const {
    const std::string t = T(f);
    const char* a = f.addr_type;
    std::string c;
    auto add = [&c](const std::string& line) { c += line + "\n"; };
    add("add table " + t);
    add("add set " + t + " bridges { type ifname; }");
    add("add map " + t + " from_bridge { type ifname : verdict; }");
    add("add map " + t + " to_bridge { type ifname : verdict; }");
    add(StrFormat("add map %s masq_src { type %s : verdict; flags interval; }", t.c_str(), a));
    add(StrFormat("add map %s pm_addr { type inet_proto . %s . inet_service : %s . inet_service; }",
                  t.c_str(), a, a));
    add(StrFormat("add map %s pm_any { type inet_proto . inet_service : %s . inet_service; }",
                  t.c_str(), a));
    add("add chain " + t + " publish");
    add("add chain " + t + " forward { type filter hook forward priority filter; policy accept; }");
    add("add chain " + t +
        " prerouting { type nat hook prerouting priority dstnat; policy accept; }");
    add("add chain " + t + " output { type nat hook output priority -100; policy accept; }");
    add("add chain " + t +
        " postrouting { type nat hook postrouting priority srcnat; policy accept; }");
    if (f.af == AF_INET) {
      add("add chain " + t + " guard { type filter hook prerouting priority raw; policy accept; }");
    }
    // Static rules: flushed and re-added, so Open is idempotent and repairs edits.
    add("flush chain " + t + " publish");
    add(StrFormat("add rule %s publish dnat %s to meta l4proto . %s daddr . th dport map @pm_addr",
                  t.c_str(), f.nft, f.nft));
    add(StrFormat("add rule %s publish dnat %s to meta l4proto . th dport map @pm_any", t.c_str(),
                  f.nft));
    add("flush chain " + t + " forward");
    add("add rule " + t + " forward iifname vmap @from_bridge");
    add("add rule " + t + " forward oifname vmap @to_bridge");
    add("flush chain " + t + " prerouting");
    // Loopback destinations are published from the host only (output); from outside they are
    // dropped by the guard anyway.
    add(StrFormat("add rule %s prerouting %s daddr != %s fib daddr type local jump publish",
                  t.c_str(), f.nft, f.loopback));
    add("flush chain " + t + " output");
    add("add rule " + t + " output fib daddr type local jump publish");
    add("flush chain " + t + " postrouting");
    add(StrFormat("add rule %s postrouting %s saddr vmap @masq_src", t.c_str(), f.nft));
    if (f.af == AF_INET) {
      // The host's own connection to a port published on 127.0.0.1 leaves through the bridge
      // with source 127.0.0.1 (route_localnet); the container could not answer it.
      add("add rule " + t + " postrouting ip saddr 127.0.0.0/8 oifname @bridges masquerade");
      add("flush chain " + t + " guard");
      add("add rule " + t + " guard iifname != \"lo\" ip daddr 127.0.0.0/8 drop");
    }
    // The host's own connection to a published port through one of its other addresses: from
    // the bridge's address too, so that the container answers on the bridge's link (at the
    // link's MTU, not the default route's: docs/network.md), as Docker's userland proxy does.
    // Clients on other hosts keep their address (their source is not local).
    add("add rule " + t +
        " postrouting oifname @bridges ct status dnat fib saddr type local masquerade");
    return c;
  }

  // The masq_src keys ("addr/len") whose verdict jumps to post-<bridge>.
  Result<std::vector<std::string>> MasqKeys(const Family& f, const std::string& bridge) {
    MOAT_ASSIGN_OR_RETURN(std::string out,
                          Run("list map " + T(f) + " masq_src", "list masq_src", Output::kJson));
    MOAT_ASSIGN_OR_RETURN(std::vector<json> elems, ListElements(out, "map"));
    std::vector<std::string> keys;
    const std::string target = "post-" + bridge;
    for (const json& e : elems) {
      if (!e.is_array() || e.size() != 2) continue;
      const json* jump = Member(e[1], "jump");
      if (!jump || StringOr(Member(*jump, "target")) != target) continue;
      const json* val = ElemValue(e[0]).first;
      if (!val) continue;
      if (const json* prefix = Member(*val, "prefix")) {
        const json* len = Member(*prefix, "len");
        std::string addr = StringOr(Member(*prefix, "addr"));
        if (addr.empty() || !len || !len->is_number_integer()) continue;
        keys.push_back(StrFormat("%s/%d", addr.c_str(), len->get<int>()));
      } else if (const json* range = Member(*val, "range")) {
        if (range->is_array() && range->size() == 2 && (*range)[0].is_string() &&
            (*range)[1].is_string()) {
          keys.push_back((*range)[0].get<std::string>() + "-" + (*range)[1].get<std::string>());
        }
      } else if (val->is_string()) {
        keys.push_back(val->get<std::string>());
      }
    }
    return keys;
  }

  // The map, key and value text of a mapping's element, after validating the mapping.
  struct Elem {
    const Family* family;
    std::string map;
    std::string key;
    std::string value;
  };
  Result<Elem> MappingElem(const PortMapping& m) const {
    if (!ValidProto(m.proto)) {
      return Fail(ErrorKind::kInvalidArgument,
                  "port mapping protocol \"%s\" is not tcp, udp or sctp", m.proto.c_str());
    }
    const Family* f = FamilyOf(m.host_ip.family);
    if (!f || m.container_ip.family != m.host_ip.family) {
      return Fail(ErrorKind::kInvalidArgument, "port mapping %s: address families differ",
                  Describe(m).c_str());
    }
    if (m.host_port == 0 || m.container_port == 0) {
      return Fail(ErrorKind::kInvalidArgument, "port mapping %s: port 0", Describe(m).c_str());
    }
    if (IsUnspecifiedAddr(m.container_ip)) {
      return Fail(ErrorKind::kInvalidArgument, "port mapping %s: no container address",
                  Describe(m).c_str());
    }
    MOAT_TRY(CheckBridge(m.bridge));
    Elem e;
    e.family = f;
    if (IsUnspecifiedAddr(m.host_ip)) {
      e.map = "pm_any";
      e.key = StrFormat("%s . %u", m.proto.c_str(), m.host_port);
    } else {
      e.map = "pm_addr";
      e.key = StrFormat("%s . %s . %u", m.proto.c_str(), AddrText(m.host_ip).c_str(), m.host_port);
    }
    e.value = StrFormat("%s . %u", AddrText(m.container_ip).c_str(), m.container_port);
    return e;
  }
};

Firewall::Firewall(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Firewall::Firewall(Firewall&&) noexcept = default;
Firewall& Firewall::operator=(Firewall&&) noexcept = default;
Firewall::~Firewall() = default;

Result<Firewall> Firewall::Open(const std::string& table) {
  if (!ValidName(table, 64)) {
    return Fail(ErrorKind::kInvalidArgument, "invalid nftables table name \"%s\"", table.c_str());
  }
  auto impl = std::make_unique<Impl>();
  impl->ctx.reset(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!impl->ctx) return Fail(ErrorKind::kUnavailable, "nft_ctx_new failed");
  if (nft_ctx_buffer_output(impl->ctx.get()) != 0 || nft_ctx_buffer_error(impl->ctx.get()) != 0) {
    return Fail(ErrorKind::kInternal, "nft: cannot buffer output");
  }
  impl->table = table;
  std::string cmds;
  for (const Family* f : kFamilies) cmds += impl->SetupCommands(*f);
  MOAT_TRY(impl->Run(cmds, "create nftables tables " + table));
  return Firewall(std::move(impl));
}

Result<void> Firewall::AddNetwork(const NetworkRules& n) {
  MOAT_TRY(CheckBridge(n.bridge));
  const Family* f = FamilyOf(n.subnet.addr.family);
  int max_len = n.subnet.addr.family == AF_INET ? 32 : 128;
  if (!f || n.subnet.len < 0 || n.subnet.len > max_len) {
    return Fail(ErrorKind::kInvalidArgument, "network %s: invalid subnet", n.bridge.c_str());
  }
  const std::string what =
      StrFormat("add network %s %s", n.bridge.c_str(), PrefixText(n.subnet).c_str());
  const std::string t = impl_->T(*f);
  const std::string br = "\"" + n.bridge + "\"";
  const std::string subnet = PrefixText(n.subnet);
  // A re-added network may have a new subnet: its old masq_src keys go in the same transaction.
  MOAT_ASSIGN_OR_RETURN(std::vector<std::string> old_keys,
                        impl_->MasqKeys(*f, n.bridge).Context("%s", what.c_str()));

  std::string c;
  auto add = [&c](const std::string& line) { c += line + "\n"; };
  auto rule = [&](const std::string& chain, const std::string& r) {
    add(StrFormat("add rule %s %s-%s %s", t.c_str(), chain.c_str(), n.bridge.c_str(), r.c_str()));
  };
  for (const char* chain : {"from", "to", "post"}) {
    add(StrFormat("add chain %s %s-%s", t.c_str(), chain, n.bridge.c_str()));
    add(StrFormat("flush chain %s %s-%s", t.c_str(), chain, n.bridge.c_str()));
  }
  // from-<bridge>: traffic routed out of the bridge.
  if (n.internal) rule("from", "oifname != " + br + " drop");
  if (!n.icc) {
    // Hairpin to a published port stays allowed, as with Docker's icc=false.
    rule("from", "oifname " + br + " ct status dnat accept");
    rule("from", "oifname " + br + " drop");
  }
  rule("from", "oifname " + br + " return");
  // A published port is public: another network's containers reach it through the host, as
  // everyone else does. Anything else into another Moat network is dropped.
  rule("from", "ct status dnat return");
  rule("from", "oifname @bridges drop");
  // to-<bridge>: traffic routed into the bridge from elsewhere.
  if (n.internal) rule("to", "iifname != " + br + " drop");
  rule("to", "iifname " + br + " return");  // judged by from-<bridge>
  rule("to", "ct state established,related accept");
  rule("to", "ct status dnat accept");
  rule("to", "drop");
  // post-<bridge>: source NAT for the subnet's packets.
  if (!n.internal) {
    rule("post", "oifname " + br + " ct status dnat masquerade");  // hairpin
    if (n.masquerade) rule("post", "oifname != " + br + " masquerade");
  }
  add(StrFormat("add element %s bridges { %s }", t.c_str(), br.c_str()));
  add(StrFormat("add element %s from_bridge { %s : jump from-%s }", t.c_str(), br.c_str(),
                n.bridge.c_str()));
  add(StrFormat("add element %s to_bridge { %s : jump to-%s }", t.c_str(), br.c_str(),
                n.bridge.c_str()));
  for (const std::string& k : old_keys) {
    if (k != subnet) add(StrFormat("delete element %s masq_src { %s }", t.c_str(), k.c_str()));
  }
  add(StrFormat("add element %s masq_src { %s comment %s : jump post-%s }", t.c_str(),
                subnet.c_str(), br.c_str(), n.bridge.c_str()));
  MOAT_TRY(impl_->Run(c, what));
  return Ok();
}

Result<void> Firewall::RemoveNetwork(const std::string& bridge) {
  MOAT_TRY(CheckBridge(bridge));
  const std::string what = "remove network " + bridge;
  const std::string br = "\"" + bridge + "\"";
  std::string c;
  auto add = [&c](const std::string& line) { c += line + "\n"; };
  for (const Family* f : kFamilies) {
    const std::string t = impl_->T(*f);
    MOAT_ASSIGN_OR_RETURN(std::vector<std::string> keys,
                          impl_->MasqKeys(*f, bridge).Context("%s", what.c_str()));
    // "add" before "delete" makes each delete succeed whether or not the network was there
    // (nft has no "delete if present" before 1.0.8's destroy).
    for (const char* chain : {"from", "to", "post"}) {
      add(StrFormat("add chain %s %s-%s", t.c_str(), chain, bridge.c_str()));
    }
    add(StrFormat("add element %s bridges { %s }", t.c_str(), br.c_str()));
    add(StrFormat("delete element %s bridges { %s }", t.c_str(), br.c_str()));
    for (const char* chain : {"from", "to"}) {
      add(StrFormat("add element %s %s_bridge { %s : jump %s-%s }", t.c_str(), chain, br.c_str(),
                    chain, bridge.c_str()));
      add(StrFormat("delete element %s %s_bridge { %s }", t.c_str(), chain, br.c_str()));
    }
    for (const std::string& k : keys) {
      add(StrFormat("delete element %s masq_src { %s }", t.c_str(), k.c_str()));
    }
    for (const char* chain : {"from", "to", "post"}) {
      add(StrFormat("flush chain %s %s-%s", t.c_str(), chain, bridge.c_str()));
      add(StrFormat("delete chain %s %s-%s", t.c_str(), chain, bridge.c_str()));
    }
  }
  MOAT_TRY(impl_->Run(c, what));
  return Ok();
}

Result<void> Firewall::AddPortMapping(const PortMapping& m) {
  if (m.host_ip.family != m.container_ip.family && IsUnspecifiedAddr(m.host_ip) &&
      FamilyOf(m.container_ip.family)) {
    return Ok();  // "::" for an IPv4 container (or 0.0.0.0 for IPv6): nothing to publish
  }
  MOAT_ASSIGN_OR_RETURN(Impl::Elem e, impl_->MappingElem(m));
  MOAT_TRY(impl_->Run(
      StrFormat("add element %s %s { %s comment \"%s\" : %s }", impl_->T(*e.family).c_str(),
                e.map.c_str(), e.key.c_str(), m.bridge.c_str(), e.value.c_str()),
      "add port mapping " + Describe(m)));
  return Ok();
}

Result<void> Firewall::RemovePortMapping(const PortMapping& m) {
  if (m.host_ip.family != m.container_ip.family && IsUnspecifiedAddr(m.host_ip) &&
      FamilyOf(m.container_ip.family)) {
    return Ok();
  }
  MOAT_ASSIGN_OR_RETURN(Impl::Elem e, impl_->MappingElem(m));
  const std::string t = impl_->T(*e.family);
  // add-then-delete removes the element whether or not it was there. The add fails only when
  // the key is taken by another mapping (same host port, other container): that one stays.
  Result<std::string> r =
      impl_->Run(StrFormat("add element %s %s { %s : %s }\ndelete element %s %s { %s }", t.c_str(),
                           e.map.c_str(), e.key.c_str(), e.value.c_str(), t.c_str(), e.map.c_str(),
                           e.key.c_str()),
                 "remove port mapping " + Describe(m));
  if (r) return Ok();
  MOAT_ASSIGN_OR_RETURN(std::vector<PortMapping> all, PortMappings());
  for (const PortMapping& p : all) {
    if (p.proto == m.proto && p.host_ip == m.host_ip && p.host_port == m.host_port &&
        p.container_ip == m.container_ip && p.container_port == m.container_port) {
      return Fail(std::move(r).error());
    }
  }
  return Ok();
}

Result<std::vector<PortMapping>> Firewall::PortMappings() {
  std::vector<PortMapping> result;
  for (const Family* f : kFamilies) {
    for (const char* map : {"pm_addr", "pm_any"}) {
      MOAT_ASSIGN_OR_RETURN(std::string out,
                            impl_->Run(StrFormat("list map %s %s", impl_->T(*f).c_str(), map),
                                       "list port mappings", Output::kJson));
      MOAT_ASSIGN_OR_RETURN(std::vector<json> elems, ListElements(out, "map"));
      const bool any = std::string_view(map) == "pm_any";
      for (const json& e : elems) {
        if (!e.is_array() || e.size() != 2) continue;
        auto [key, comment] = ElemValue(e[0]);
        const json* key_parts = key ? Member(*key, "concat") : nullptr;
        const json* val_parts = Member(e[1], "concat");
        size_t key_size = any ? 2 : 3;
        if (!key_parts || !key_parts->is_array() || key_parts->size() != key_size || !val_parts ||
            !val_parts->is_array() || val_parts->size() != 2) {
          return Fail(ErrorKind::kInternal, "unexpected element in map %s: %s", map,
                      e.dump().c_str());
        }
        PortMapping m;
        const json& proto = (*key_parts)[0];
        if (proto.is_string()) {
          m.proto = proto.get<std::string>();
        } else if (proto.is_number_integer()) {
          int p = proto.get<int>();
          m.proto = p == 6 ? "tcp" : p == 17 ? "udp" : p == 132 ? "sctp" : std::to_string(p);
        }
        const json& hport = (*key_parts)[key_size - 1];
        const json& cport = (*val_parts)[1];
        bool ok = hport.is_number_unsigned() && cport.is_number_unsigned() &&
                  (*val_parts)[0].is_string() &&
                  ParseAddr((*val_parts)[0].get<std::string>(), &m.container_ip);
        if (ok && !any) {
          ok = (*key_parts)[1].is_string() &&
               ParseAddr((*key_parts)[1].get<std::string>(), &m.host_ip);
        } else if (ok) {
          m.host_ip.family = f->af;  // all-zero bytes: the unspecified address
        }
        if (!ok) {
          return Fail(ErrorKind::kInternal, "unexpected element in map %s: %s", map,
                      e.dump().c_str());
        }
        m.host_port = static_cast<uint16_t>(hport.get<unsigned>());
        m.container_port = static_cast<uint16_t>(cport.get<unsigned>());
        m.bridge = comment;
        result.push_back(std::move(m));
      }
    }
  }
  std::sort(result.begin(), result.end());
  return result;
}

Result<std::vector<std::string>> Firewall::NetworkBridges() {
  std::set<std::string> bridges;
  for (const Family* f : kFamilies) {
    MOAT_ASSIGN_OR_RETURN(std::string out, impl_->Run("list set " + impl_->T(*f) + " bridges",
                                                      "list network bridges", Output::kJson));
    MOAT_ASSIGN_OR_RETURN(std::vector<json> elems, ListElements(out, "set"));
    for (const json& e : elems) {
      const json* v = ElemValue(e).first;
      if (v && v->is_string()) bridges.insert(v->get<std::string>());
    }
  }
  return std::vector<std::string>(bridges.begin(), bridges.end());
}

Result<void> Firewall::RemoveAll() {
  std::string c;
  for (const Family* f : kFamilies) {
    // "add" first: deleting an absent table is an error.
    c += "add table " + impl_->T(*f) + "\ndelete table " + impl_->T(*f) + "\n";
  }
  MOAT_TRY(impl_->Run(c, "remove nftables tables " + impl_->table));
  return Ok();
}

Result<std::string> Firewall::Dump() {
  MOAT_ASSIGN_OR_RETURN(std::string tables, impl_->Run("list tables", "list tables"));
  // One list command per run: nft 1.0.6 fetches its cache for the first listing command of a
  // buffer only, and then misses the second family's table.
  std::string dump;
  for (const Family* f : kFamilies) {
    if (tables.find("table " + impl_->T(*f) + "\n") == std::string::npos) continue;
    MOAT_ASSIGN_OR_RETURN(std::string t,
                          impl_->Run("list table " + impl_->T(*f), "list table " + impl_->T(*f)));
    dump += t;
  }
  return dump;
}

}  // namespace moat::net
