#include "net/ip.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "net/ip_bits.h"

namespace moat::net {
namespace {

static_assert(AF_INET == 2 && AF_INET6 == 10, "IpAddr::IsV4 hard-codes AF_INET");

using internal::U128;
using internal::MaxBits;
using internal::ToU128;
using internal::FromU128;
using internal::LowMask;

// Error messages quote the caller's text; keep them one short printable line even when the
// text is hostile (an API request body).
std::string Quote(std::string_view text) {
  constexpr size_t kMax = 64;
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      out += StrFormat("\\x%02x", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMax) out += "...";
  out += '"';
  return out;
}


// Strict decimal prefix length: digits only, no sign, no leading zero (as Go's netip).
bool ParseLen(std::string_view s, int max, int* out) {
  if (s.empty() || s.size() > 3) return false;
  if (s.size() > 1 && s[0] == '0') return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

}  // namespace

Result<IpAddr> IpAddr::Parse(std::string_view text) {
  // inet_pton reads a C string: an embedded NUL would silently cut the text short. Its
  // IPv4 grammar is the strict dotted quad (no "1.2.3", no octal, no leading zeros), and it
  // takes no zone ("fe80::1%eth0"), which Docker does not accept in subnets either.
  if (text.empty() || text.size() > INET6_ADDRSTRLEN || text.find('\0') != std::string_view::npos) {
    return Fail(ErrorKind::kInvalidArgument, "invalid IP address %s", Quote(text).c_str());
  }
  std::string s(text);
  IpAddr a;
  if (s.find(':') == std::string::npos) {
    if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
      a.family = AF_INET;
      return a;
    }
  } else if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
    return a;
  }
  return Fail(ErrorKind::kInvalidArgument, "invalid IP address %s", Quote(text).c_str());
}

std::string IpAddr::ToString() const {
  if (family != AF_INET && family != AF_INET6) return "<unset>";
  char buf[INET6_ADDRSTRLEN] = {};
  if (inet_ntop(family, bytes.data(), buf, sizeof buf) == nullptr) return "<invalid>";
  return buf;
}

bool IpAddr::IsLoopback() const {
  if (family == AF_INET) return bytes[0] == 127;
  if (family == AF_INET6) {
    return std::all_of(bytes.begin(), bytes.begin() + 15, [](uint8_t b) { return b == 0; }) &&
           bytes[15] == 1;
  }
  return false;
}

bool IpAddr::IsUnspecified() const {
  if (family != AF_INET && family != AF_INET6) return false;
  return std::all_of(bytes.begin(), bytes.begin() + static_cast<long>(Length()),
                     [](uint8_t b) { return b == 0; });
}

Result<IpPrefix> IpPrefix::Parse(std::string_view text) {
  size_t slash = text.find('/');
  std::string_view addr_text = text.substr(0, slash);
  auto addr = IpAddr::Parse(addr_text);
  if (!addr) return Fail(ErrorKind::kInvalidArgument, "invalid IP prefix %s", Quote(text).c_str());
  IpPrefix p;
  p.addr = *addr;
  p.len = MaxBits(p.addr);
  if (slash != std::string_view::npos &&
      !ParseLen(text.substr(slash + 1), MaxBits(p.addr), &p.len)) {
    return Fail(ErrorKind::kInvalidArgument, "invalid IP prefix %s: bad prefix length",
                Quote(text).c_str());
  }
  return p;
}

std::string IpPrefix::ToString() const { return addr.ToString() + "/" + std::to_string(len); }

IpPrefix IpPrefix::Masked() const {
  IpPrefix p = *this;
  int host_bits = MaxBits(addr) - len;
  p.addr = FromU128(addr.family, ToU128(addr) & ~LowMask(host_bits));
  return p;
}

bool IpPrefix::Contains(const IpAddr& a) const {
  if (a.family != addr.family) return false;
  U128 mask = ~LowMask(MaxBits(addr) - len);
  return (ToU128(a) & mask) == (ToU128(addr) & mask);
}

bool IpPrefix::Overlaps(const IpPrefix& other) const {
  if (other.addr.family != addr.family) return false;
  // Two prefixes overlap exactly when they agree on the bits of the shorter one.
  U128 mask = ~LowMask(MaxBits(addr) - std::min(len, other.len));
  return (ToU128(addr) & mask) == (ToU128(other.addr) & mask);
}

Result<IpAddr> IpPrefix::Nth(uint64_t n) const {
  int host_bits = MaxBits(addr) - len;
  if (host_bits < 64 && (n >> host_bits) != 0) {
    return Fail(ErrorKind::kInvalidArgument, "address %llu is past the end of %s",
                static_cast<unsigned long long>(n), Masked().ToString().c_str());
  }
  U128 network = ToU128(addr) & ~LowMask(host_bits);
  return FromU128(addr.family, network + n);
}

uint64_t IpPrefix::OffsetOf(const IpAddr& a) const {
  MOAT_DCHECK(Contains(a));
  // The host bits of `a`; for an IPv6 prefix shorter than /64 only the low 64 of them fit.
  return static_cast<uint64_t>(ToU128(a) & LowMask(MaxBits(addr) - len));
}

uint64_t IpPrefix::Size() const {
  int host_bits = MaxBits(addr) - len;
  if (host_bits >= 62) return uint64_t{1} << 62;
  return uint64_t{1} << host_bits;
}

}  // namespace moat::net
