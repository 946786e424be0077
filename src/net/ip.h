// IPv4/IPv6 addresses and prefixes: parsing, formatting, containment, overlap.
// Pure value types; no system calls.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace moat::net {

struct IpAddr {
  int family = 0;                    // AF_INET or AF_INET6; 0 = unset
  std::array<uint8_t, 16> bytes{};   // network order; IPv4 uses bytes[0..3]

  // "172.18.0.2", "fd00::1". Anything else is kInvalidArgument naming the text.
  static Result<IpAddr> Parse(std::string_view text);
  std::string ToString() const;
  bool IsV4() const { return family == 2; }
  size_t Length() const { return IsV4() ? 4 : 16; }  // bytes used
  bool IsLoopback() const;                            // 127.0.0.0/8, ::1
  bool IsUnspecified() const;                         // 0.0.0.0, ::
  auto operator<=>(const IpAddr&) const = default;
};

struct IpPrefix {
  IpAddr addr;  // as written (host bits may be set: "172.18.0.1/16" keeps .1)
  int len = 0;

  // "172.18.0.0/16", "fd00:1::/64". A bare address is a /32 or /128.
  static Result<IpPrefix> Parse(std::string_view text);
  std::string ToString() const;   // addr/len
  IpPrefix Masked() const;        // host bits cleared
  bool Contains(const IpAddr& a) const;
  bool Overlaps(const IpPrefix& other) const;  // same family and one contains the other's network
  // The address network + n (n = 1 is the first host). n past the prefix is kInvalidArgument.
  Result<IpAddr> Nth(uint64_t n) const;
  // Offset of `a` from the network address; `a` must be inside.
  uint64_t OffsetOf(const IpAddr& a) const;
  // Number of addresses, capped at 2^62 for IPv6.
  uint64_t Size() const;
  auto operator<=>(const IpPrefix&) const = default;
};

}  // namespace moat::net
