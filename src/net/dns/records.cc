#include "net/dns/records.h"

#include <sys/socket.h>

#include "base/strings.h"

namespace moat::net::dns {
namespace {

bool ValidHostName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (char c : name) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok || ++label > 63) return false;
  }
  return label > 0;
}

}  // namespace

std::string NormalizeName(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

std::string ReverseName(const IpAddr& addr) {
  std::string out;
  if (addr.IsV4()) {
    for (int i = 3; i >= 0; --i) out += std::to_string(addr.bytes[i]) + ".";
    return out + "in-addr.arpa";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out += kHex[addr.bytes[i] & 0xf];
    out += '.';
    out += kHex[addr.bytes[i] >> 4];
    out += '.';
  }
  return out + "ip6.arpa";
}

Result<RecordTable> RecordTable::Build(const std::map<std::string, std::vector<IpAddr>>& names) {
  RecordTable t;
  for (const auto& [raw, addrs] : names) {
    std::string name = NormalizeName(raw);
    if (!ValidHostName(name))
      return Fail(ErrorKind::kInvalidArgument, "invalid dns name \"%s\"", raw.c_str());
    auto& list = t.forward_[name];
    for (const IpAddr& a : addrs) {
      if (a.family != AF_INET && a.family != AF_INET6)
        return Fail(ErrorKind::kInvalidArgument, "name %s: address without family", raw.c_str());
      list.push_back(a);
      t.reverse_.emplace(ReverseName(a), name);  // keeps the first name
    }
  }
  return t;
}

const std::vector<IpAddr>* RecordTable::Find(std::string_view normalized_name) const {
  auto it = forward_.find(normalized_name);
  return it == forward_.end() ? nullptr : &it->second;
}

const std::string* RecordTable::FindReverse(std::string_view normalized_reverse) const {
  auto it = reverse_.find(normalized_reverse);
  return it == reverse_.end() ? nullptr : &it->second;
}

}  // namespace moat::net::dns
