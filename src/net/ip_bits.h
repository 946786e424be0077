// Internal to src/net (ip.cc, ipam.cc): addresses as 128-bit integers for prefix arithmetic.
#pragma once

#include "net/ip.h"

namespace moat::net::internal {

using U128 = unsigned __int128;

inline int MaxBits(const IpAddr& a) { return a.IsV4() ? 32 : 128; }

inline U128 ToU128(const IpAddr& a) {
  U128 v = 0;
  for (size_t i = 0; i < a.Length(); ++i) v = (v << 8) | a.bytes[i];
  return v;
}

inline IpAddr FromU128(int family, U128 v) {
  IpAddr a;
  a.family = family;
  size_t n = a.Length();
  for (size_t i = 0; i < n; ++i) {
    a.bytes[n - 1 - i] = static_cast<uint8_t>(v & 0xff);
    v >>= 8;
  }
  return a;
}

// The low `bits` bits set; `bits` may be 0..128.
inline U128 LowMask(int bits) {
  if (bits <= 0) return 0;
  if (bits >= 128) return ~U128{0};
  return (U128{1} << bits) - 1;
}

}  // namespace moat::net::internal
