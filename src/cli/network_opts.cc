#include "cli/network_opts.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <map>

#include "base/strings.h"
#include "cli/format.h"

namespace moat::cli {
namespace {

struct Addr {
  int family = 0;
  std::array<unsigned char, 16> bytes{};
};

// inet_pton is a pure parser (no syscall); it rejects IPv4 octets with leading zeros, as
// Go's net.ParseIP does since Go 1.17.
std::optional<Addr> ParseAddr(std::string_view s) {
  std::string str(s);
  Addr a;
  if (inet_pton(AF_INET, str.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
    return a;
  }
  if (inet_pton(AF_INET6, str.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
    return a;
  }
  return std::nullopt;
}

struct Cidr {
  Addr addr;
  int prefix = 0;
};

// Go's net.ParseCIDR: ADDRESS/PREFIX with a decimal prefix within the family's length.
std::optional<Cidr> ParseCidr(std::string_view s) {
  size_t slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = ParseAddr(s.substr(0, slash));
  std::string_view bits = s.substr(slash + 1);
  if (!addr || bits.empty() || bits.size() > 3) return std::nullopt;
  for (char c : bits)
    if (!isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  int prefix = static_cast<int>(*ParseInt64(bits));
  if (prefix > (addr->family == AF_INET ? 32 : 128)) return std::nullopt;
  return Cidr{*addr, prefix};
}

bool Contains(const Cidr& net, const Addr& ip) {
  if (net.addr.family != ip.family) return false;
  int full = net.prefix / 8, rest = net.prefix % 8;
  if (memcmp(net.addr.bytes.data(), ip.bytes.data(), full) != 0) return false;
  if (rest == 0) return true;
  unsigned mask = (0xffu << (8 - rest)) & 0xffu;
  return (net.addr.bytes[full] & mask) == (ip.bytes[full] & mask);
}

// docker's subnetMatches(subnet, data): is the address `data` (bare or as ADDRESS/PREFIX)
// inside `subnet`? An unparsable bare address matches nothing.
Result<bool> SubnetMatches(const std::string& subnet, const std::string& data) {
  auto net = ParseCidr(subnet);
  if (!net)
    return Fail(ErrorKind::kInvalidArgument, "invalid subnet: invalid CIDR address: %s",
                subnet.c_str());
  std::optional<Addr> ip;
  if (data.find('/') != std::string::npos) {
    auto c = ParseCidr(data);
    if (!c) return Fail(ErrorKind::kInvalidArgument, "invalid CIDR address: %s", data.c_str());
    ip = c->addr;
  } else {
    ip = ParseAddr(data);
  }
  return ip.has_value() && Contains(*net, *ip);
}

// "k=v" -> {k: v}, "k" -> {k: ""}: docker's ConvertKVStringsToMap and MapOpts.
Json KvMap(const std::vector<std::string>& kvs) {
  Json m = Json::object();
  for (const auto& kv : kvs) {
    size_t eq = kv.find('=');
    m[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
  }
  return m;
}

// Go's time.Time.String() of an RFC 3339 timestamp: "2026-11-29 13:47:22.024001272 +0000 UTC".
std::string GoTimeFromRfc3339(const std::string& s) {
  if (s.size() < 20 || s[10] != 'T') return s;
  std::string date = s.substr(0, 10), clock = s.substr(11, 8), frac;
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    size_t j = i + 1;
    while (j < s.size() && isdigit(static_cast<unsigned char>(s[j]))) ++j;
    frac = s.substr(i + 1, j - i - 1);
    i = j;
  }
  while (!frac.empty() && frac.back() == '0') frac.pop_back();
  std::string zone;
  if (s.substr(i) == "Z") {
    zone = "+0000 UTC";
  } else if (s.size() == i + 6 && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    std::string off = s.substr(i, 3) + s.substr(i + 4, 2);
    zone = off + " " + off;
  } else {
    return s;
  }
  return date + " " + clock + (frac.empty() ? "" : "." + frac) + " " + zone;
}

struct PortEntry {
  std::string ip, type;
  int64_t private_port = 0, public_port = 0;
};

std::string FormGroup(const std::string& key, int64_t first, int64_t last) {
  // key is "type" or "ip/type" (docker splits on '/', an IP has none).
  std::string ip, type = key;
  if (size_t slash = key.rfind('/'); slash != std::string::npos) {
    ip = key.substr(0, slash);
    type = key.substr(slash + 1);
  }
  std::string group = std::to_string(first);
  if (first != last) group += "-" + std::to_string(last);
  if (!ip.empty()) group = ip + ":" + group + "->" + group;
  return group + "/" + type;
}

std::string JoinHostPort(const std::string& host, const std::string& port) {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port;
  return host + ":" + port;
}

}  // namespace

std::optional<std::string> NormalizeIp(std::string_view s) {
  auto a = ParseAddr(TrimWhitespace(s));
  if (!a) return std::nullopt;
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(a->family, a->bytes.data(), buf, sizeof buf) == nullptr) return std::nullopt;
  return std::string(buf);
}

bool IsValidMac(std::string_view s) {
  auto is_hex = [](char c) { return isxdigit(static_cast<unsigned char>(c)) != 0; };
  auto valid_len = [](size_t bytes) { return bytes == 6 || bytes == 8 || bytes == 20; };
  if (s.size() >= 14 && s[4] == '.') {
    // xxxx.xxxx.xxxx: groups of four hex digits.
    if ((s.size() + 1) % 5 != 0 || !valid_len((s.size() + 1) / 5 * 2)) return false;
    for (size_t i = 0; i < s.size(); ++i)
      if ((i % 5 == 4) ? s[i] != '.' : !is_hex(s[i])) return false;
    return true;
  }
  if (s.size() < 14 || (s[2] != ':' && s[2] != '-')) return false;
  char sep = s[2];
  if ((s.size() + 1) % 3 != 0 || !valid_len((s.size() + 1) / 3)) return false;
  for (size_t i = 0; i < s.size(); ++i)
    if ((i % 3 == 2) ? s[i] != sep : !is_hex(s[i])) return false;
  return true;
}

bool IsValidDnsSearch(std::string_view s) {
  // Leading and trailing blanks are trimmed as docker's strings.Trim(val, " ").
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (s == ".") return true;
  bool has_alpha = std::any_of(s.begin(), s.end(),
                               [](char c) { return isalpha(static_cast<unsigned char>(c)) != 0; });
  if (!has_alpha) return false;
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  if (s.empty() || s.size() >= 255) return false;
  for (const std::string& label : StrSplit(s, '.')) {
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

bool IsUserDefinedNetwork(std::string_view mode) {
  return mode != "default" && mode != "bridge" && mode != "host" && mode != "none" &&
         !StartsWith(mode, "container:");
}

bool NaturalLess(std::string_view a, std::string_view b) {
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    bool da = digit(a[i]), db = digit(b[j]);
    if (da != db) return da;
    if (!da) {
      if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
      ++i;
      ++j;
      continue;
    }
    while (i < a.size() && a[i] == '0') ++i;
    while (j < b.size() && b[j] == '0') ++j;
    size_t nz_a = i, nz_b = j;
    while (i < a.size() && digit(a[i])) ++i;
    while (j < b.size() && digit(b[j])) ++j;
    if (i - nz_a != j - nz_b) return i - nz_a < j - nz_b;
    std::string_view na = a.substr(nz_a, i - nz_a), nb = b.substr(nz_b, j - nz_b);
    if (na != nb) return na < nb;
    if (nz_a != nz_b) return nz_a < nz_b;
  }
  return a.size() < b.size();
}

Result<Json> BuildNetworkCreateBody(const std::string& name, const NetworkCreateFlags& f) {
  // docker's consolidateIpam, keeping the --subnet order (docker's map order is random).
  if (f.subnets.size() < f.ip_ranges.size() || f.subnets.size() < f.gateways.size())
    return Fail(ErrorKind::kInvalidArgument,
                "every ip-range or gateway must have a corresponding subnet");
  struct Ipam {
    std::string subnet, range, gateway;
    Json aux = Json::object();
  };
  std::vector<Ipam> configs;
  for (const auto& s : f.subnets) {
    for (const auto& c : configs) {
      MOAT_ASSIGN_OR_RETURN(bool a, SubnetMatches(s, c.subnet));
      MOAT_ASSIGN_OR_RETURN(bool b, SubnetMatches(c.subnet, s));
      if (a || b)
        return Fail(ErrorKind::kInvalidArgument,
                    "multiple overlapping subnet configuration is not supported");
    }
    // A lone subnet is still checked for syntax.
    MOAT_TRY(SubnetMatches(s, s));
    configs.push_back({s, "", "", Json::object()});
  }
  enum class Kind { kRange, kGateway };
  auto assign = [&](const std::string& value, Kind kind) -> Result<void> {
    bool match = false;
    for (auto& c : configs) {
      MOAT_ASSIGN_OR_RETURN(bool ok, SubnetMatches(c.subnet, value));
      if (!ok) continue;
      std::string& slot = kind == Kind::kRange ? c.range : c.gateway;
      if (!slot.empty())
        return Fail(ErrorKind::kInvalidArgument,
                    kind == Kind::kRange
                        ? "cannot configure multiple ranges (%s, %s) on the same subnet (%s)"
                        : "cannot configure multiple gateways (%s, %s) for the same subnet (%s)",
                    value.c_str(), slot.c_str(), c.subnet.c_str());
      slot = value;
      match = true;
    }
    if (!match)
      return Fail(ErrorKind::kInvalidArgument, "no matching subnet for %s %s",
                  kind == Kind::kRange ? "range" : "gateway", value.c_str());
    return Ok();
  };
  for (const auto& r : f.ip_ranges) MOAT_TRY(assign(r, Kind::kRange));
  for (const auto& g : f.gateways) MOAT_TRY(assign(g, Kind::kGateway));
  for (const auto& kv : f.aux_addresses) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      return Fail(ErrorKind::kInvalidArgument,
                  "invalid argument \"%s\" for \"--aux-address\" flag: use NAME=IP", kv.c_str());
    std::string key = kv.substr(0, eq), addr = kv.substr(eq + 1);
    bool match = false;
    for (auto& c : configs) {
      MOAT_ASSIGN_OR_RETURN(bool ok, SubnetMatches(c.subnet, addr));
      if (!ok) continue;
      c.aux[key] = addr;
      match = true;
    }
    if (!match)
      return Fail(ErrorKind::kInvalidArgument, "no matching subnet for aux-address %s",
                  addr.c_str());
  }
  Json config = Json::array();
  for (const auto& c : configs) {
    // network.IPAMConfig: every field omitempty.
    Json e = Json::object();
    e["Subnet"] = c.subnet;
    if (!c.range.empty()) e["IPRange"] = c.range;
    if (!c.gateway.empty()) e["Gateway"] = c.gateway;
    if (!c.aux.empty()) e["AuxiliaryAddresses"] = c.aux;
    config.push_back(e);
  }
  // types.NetworkCreateRequest in Go field order: the embedded NetworkCreate, then Name.
  Json body;
  body["CheckDuplicate"] = true;
  body["Driver"] = f.driver;
  body["Scope"] = f.scope;
  body["EnableIPv6"] = f.ipv6;
  body["IPAM"]["Driver"] = f.ipam_driver;
  body["IPAM"]["Options"] = KvMap(f.ipam_opts);
  body["IPAM"]["Config"] = config;
  body["Internal"] = f.internal;
  body["Attachable"] = f.attachable;
  body["Ingress"] = false;
  body["ConfigOnly"] = false;
  body["ConfigFrom"] = Json();
  body["Options"] = KvMap(f.opts);
  body["Labels"] = KvMap(f.labels);
  body["Name"] = name;
  return body;
}

Result<void> ValidateLink(std::string_view link) {
  if (link.empty()) return Fail(ErrorKind::kInvalidArgument, "empty string specified for links");
  if (StrSplit(link, ':').size() > 2)
    return Fail(ErrorKind::kInvalidArgument, "bad format for links: %.*s",
                static_cast<int>(link.size()), link.data());
  return Ok();
}

Result<Json> BuildNetworkConnectBody(const std::string& container, const NetworkConnectFlags& f) {
  for (const auto& l : f.links)
    MOAT_TRY(ValidateLink(l).Context("invalid argument \"%s\" for \"--link\" flag", l.c_str()));
  Json driver_opts;
  for (const auto& o : f.driver_opts) {
    size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      return Fail(ErrorKind::kInvalidArgument, "invalid key value pair format in driver options");
    driver_opts[o.substr(0, eq)] = o.substr(eq + 1);
  }
  // network.EndpointIPAMConfig: the fields are omitempty, the object itself is always sent.
  Json ipam = Json::object();
  if (!f.ip.empty()) ipam["IPv4Address"] = f.ip;
  if (!f.ip6.empty()) ipam["IPv6Address"] = f.ip6;
  if (!f.link_local_ips.empty()) ipam["LinkLocalIPs"] = f.link_local_ips;
  Json ep;
  ep["IPAMConfig"] = ipam;
  ep["Links"] = f.links.empty() ? Json() : Json(f.links);
  ep["Aliases"] = f.aliases.empty() ? Json() : Json(f.aliases);
  ep["DriverOpts"] = driver_opts;
  Json body;
  body["Container"] = container;
  body["EndpointConfig"] = ep;
  return body;
}

Json BuildNetworkDisconnectBody(const std::string& container, bool force) {
  Json body;
  body["Container"] = container;
  body["Force"] = force;
  return body;
}

Json NetworkListRow(const Json& n, bool no_trunc) {
  Json row;
  std::string id = GetString(n, "Id");
  row["ID"] = no_trunc ? id : ShortId(id);
  row["Name"] = GetString(n, "Name");
  row["Driver"] = GetString(n, "Driver");
  row["Scope"] = GetString(n, "Scope");
  row["IPv6"] = GetBool(n, "EnableIPv6") ? "true" : "false";
  row["Internal"] = GetBool(n, "Internal") ? "true" : "false";
  std::vector<std::string> labels;
  if (const Json* l = Member(n, "Labels"); l && l->is_object())
    for (auto it = l->begin(); it != l->end(); ++it)
      labels.push_back(it.key() + "=" + GoPrint(*it));
  row["Labels"] = StrJoin(labels, ",");
  row["CreatedAt"] = GoTimeFromRfc3339(GetString(n, "Created"));
  return row;
}

std::string DisplayablePorts(const Json* ports) {
  if (ports == nullptr || !ports->is_array()) return "";
  std::vector<PortEntry> entries;
  for (const auto& p : *ports)
    entries.push_back({GetString(p, "IP"), GetString(p, "Type"), GetInt(p, "PrivatePort"),
                       GetInt(p, "PublicPort")});
  std::sort(entries.begin(), entries.end(), [](const PortEntry& a, const PortEntry& b) {
    if (a.private_port != b.private_port) return a.private_port < b.private_port;
    if (a.ip != b.ip) return a.ip < b.ip;
    if (a.public_port != b.public_port) return a.public_port < b.public_port;
    return a.type < b.type;
  });
  struct Group {
    int64_t first, last;
  };
  std::map<std::string, Group> groups;
  std::vector<std::string> group_order, result, host_mappings;
  for (const auto& p : entries) {
    int64_t current = p.private_port;
    std::string key = p.type;
    if (!p.ip.empty()) {
      if (p.public_port != current) {
        host_mappings.push_back(StrFormat("%s:%lld->%lld/%s", p.ip.c_str(),
                                          static_cast<long long>(p.public_port),
                                          static_cast<long long>(p.private_port), p.type.c_str()));
        continue;
      }
      key = p.ip + "/" + p.type;
    }
    auto it = groups.find(key);
    if (it == groups.end()) {
      groups[key] = {current, current};
      group_order.push_back(key);
      continue;
    }
    if (current == it->second.last + 1) {
      it->second.last = current;
      continue;
    }
    result.push_back(FormGroup(key, it->second.first, it->second.last));
    it->second = {current, current};
  }
  for (const auto& key : group_order)
    result.push_back(FormGroup(key, groups[key].first, groups[key].last));
  result.insert(result.end(), host_mappings.begin(), host_mappings.end());
  return StrJoin(result, ", ");
}

Result<std::vector<std::string>> PortLines(const Json* ports, std::string_view private_port,
                                           std::string_view container) {
  std::vector<std::string> out;
  if (!private_port.empty()) {
    std::string port(private_port), proto = "tcp";
    if (size_t slash = port.find('/'); slash != std::string::npos) {
      if (slash + 1 < port.size()) proto = port.substr(slash + 1);
      port.resize(slash);
    }
    auto n = ParseUint64(port);
    if (!n || *n > 65535 || port.empty() || !isdigit(static_cast<unsigned char>(port[0])))
      return Fail(ErrorKind::kInvalidArgument, "Error: invalid port (%s)", port.c_str());
    std::string key = port + "/" + proto;
    const Json* frontends = ports ? Member(*ports, key) : nullptr;
    if (!frontends || !frontends->is_array() || frontends->empty())
      return Fail(ErrorKind::kNotFound, "Error: No public port '%s' published for %.*s",
                  key.c_str(), static_cast<int>(container.size()), container.data());
    for (const auto& b : *frontends)
      out.push_back(JoinHostPort(GetString(b, "HostIp"), GetString(b, "HostPort")));
  } else if (ports && ports->is_object()) {
    for (auto it = ports->begin(); it != ports->end(); ++it) {
      if (!it->is_array()) continue;
      for (const auto& b : *it)
        out.push_back(it.key() + " -> " +
                      JoinHostPort(GetString(b, "HostIp"), GetString(b, "HostPort")));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const std::string& a, const std::string& b) { return NaturalLess(a, b); });
  return out;
}

}  // namespace moat::cli
