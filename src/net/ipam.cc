#include "net/ipam.h"

#include <sys/socket.h>

#include <cctype>

#include "net/ip_bits.h"

namespace moat::net {
namespace {

using internal::U128;
using internal::MaxBits;
using internal::ToU128;
using internal::FromU128;
using internal::LowMask;


// The first free subnet of one pool, or nullopt. Candidates are walked in address order, but
// a taken prefix at least as large as a candidate is skipped in one step, so the work is
// bounded by the number of taken prefixes, not by the pool's size (fd00::/8 cut into /64s
// has 2^56 candidates).
std::optional<IpPrefix> PickFromPool(const SubnetPool& pool, const std::vector<IpPrefix>& taken) {
  const int family = pool.base.addr.family;
  const int max_bits = MaxBits(pool.base.addr);
  const U128 cand_mask = LowMask(max_bits - pool.size);
  const U128 base_last = ToU128(pool.base.addr) | LowMask(max_bits - pool.base.len);
  U128 start = ToU128(pool.base.addr) & ~LowMask(max_bits - pool.base.len);
  while (true) {
    IpPrefix cand{FromU128(family, start), pool.size};
    U128 resume_after = start | cand_mask;  // the candidate's last address
    bool blocked = false;
    for (const IpPrefix& t : taken) {
      if (!cand.Overlaps(t)) continue;
      blocked = true;
      if (t.len < pool.size) {
        // t covers the candidate and its neighbours up to t's end: resume after t.
        U128 t_last = ToU128(t.addr) | LowMask(max_bits - t.len);
        if (t_last > resume_after) resume_after = t_last;
      }
    }
    if (!blocked) return cand;
    if (resume_after >= base_last) return std::nullopt;
    start = resume_after + 1;
  }
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::vector<SubnetPool> DefaultPools() {
  // libnetwork ipamutils.localScopeDefaultNetworks.
  std::vector<SubnetPool> pools;
  for (int second = 17; second <= 31; ++second) {
    IpPrefix base;
    base.addr.family = AF_INET;
    base.addr.bytes[0] = 172;
    base.addr.bytes[1] = static_cast<uint8_t>(second);
    base.len = 16;
    pools.push_back({base, 16});
  }
  IpPrefix base;
  base.addr.family = AF_INET;
  base.addr.bytes[0] = 192;
  base.addr.bytes[1] = 168;
  base.len = 16;
  pools.push_back({base, 20});
  return pools;
}

Result<SubnetPool> MakePool(std::string_view base, int size) {
  MOAT_ASSIGN_OR_RETURN(IpPrefix prefix, IpPrefix::Parse(base).Context("address pool"));
  // A /31 or /32 has no host address once the network and broadcast addresses are skipped.
  const int max_size = prefix.addr.IsV4() ? 30 : 128;
  if (size < prefix.len || size > max_size) {
    return Fail(ErrorKind::kInvalidArgument, "address pool %s: invalid size %d (want /%d to /%d)",
                prefix.ToString().c_str(), size, prefix.len, max_size);
  }
  // Like Docker (net.ParseCIDR), a base written with host bits means its network.
  return SubnetPool{prefix.Masked(), size};
}

Result<IpPrefix> PickSubnet(const std::vector<SubnetPool>& pools,
                            const std::vector<IpPrefix>& taken) {
  for (const SubnetPool& pool : pools) {
    if (pool.size < pool.base.len || pool.size > MaxBits(pool.base.addr)) continue;
    if (auto p = PickFromPool(pool, taken)) return *p;
  }
  std::string names;
  for (const SubnetPool& pool : pools) {
    if (!names.empty()) names += ", ";
    names += StrFormat("%s as /%d", pool.base.Masked().ToString().c_str(), pool.size);
  }
  return Fail(ErrorKind::kUnavailable, "no free subnet in the address pools (%s)", names.c_str());
}

IpAddr DefaultGateway(const IpPrefix& subnet) {
  // A /32 or /128 has no address after its network; it then gets the network address itself.
  auto gw = subnet.Nth(1);
  return gw ? *gw : subnet.Masked().addr;
}

Result<IpAddr> Allocate(const IpPrefix& subnet_in, const std::set<IpAddr>& used,
                        const std::set<IpAddr>& reserved, const std::optional<IpAddr>& last,
                        const std::optional<IpAddr>& wanted) {
  const IpPrefix subnet = subnet_in.Masked();
  const uint64_t size = subnet.Size();
  // Host offsets are [1, last_host]: offset 0 is the network address and, for IPv4, the last
  // one is the broadcast address. IPv6 has no broadcast; Size() caps it at 2^62 addresses.
  const uint64_t last_host = subnet.addr.IsV4() ? size - 2 : size - 1;
  if (wanted) {
    const std::string w = wanted->ToString();
    if (!subnet.Contains(*wanted)) {
      return Fail(ErrorKind::kInvalidArgument, "address %s is outside subnet %s", w.c_str(),
                  subnet.ToString().c_str());
    }
    uint64_t off = subnet.OffsetOf(*wanted);
    if (off == 0) {
      return Fail(ErrorKind::kInvalidArgument, "address %s is the network address of %s", w.c_str(),
                  subnet.ToString().c_str());
    }
    if (subnet.addr.IsV4() && off == size - 1) {
      return Fail(ErrorKind::kInvalidArgument, "address %s is the broadcast address of %s",
                  w.c_str(), subnet.ToString().c_str());
    }
    if (reserved.count(*wanted)) {
      return Fail(ErrorKind::kInvalidArgument, "address %s is reserved (gateway) in %s", w.c_str(),
                  subnet.ToString().c_str());
    }
    if (used.count(*wanted)) return Fail(ErrorKind::kConflict, "address %s is in use", w.c_str());
    return *wanted;
  }
  if (size >= 2 && last_host >= 1) {
    const uint64_t hosts = last_host;  // offsets 1..last_host
    uint64_t first = 1;
    if (last && subnet.Contains(*last)) {
      uint64_t off = subnet.OffsetOf(*last);
      if (off >= 1 && off < last_host) first = off + 1;
    }
    // Each probe either returns or steps over a distinct used/reserved address, so the loop
    // ends after at most |used| + |reserved| + 1 probes even in a huge IPv6 subnet.
    for (uint64_t i = 0; i < hosts; ++i) {
      uint64_t off = first + i;
      if (off > last_host) off -= hosts;
      auto a = subnet.Nth(off);
      if (!a) break;
      if (used.count(*a) || reserved.count(*a)) continue;
      return *a;
    }
  }
  return Fail(ErrorKind::kUnavailable, "no free address in %s", subnet.ToString().c_str());
}

std::array<uint8_t, 6> MacForIp(const IpAddr& v4) {
  // libnetwork netutils.GenerateMACFromIP. For an IPv6 address (Docker picks a random MAC
  // there) the last four bytes stand in, which keeps the function total and deterministic.
  const size_t at = v4.IsV4() ? 0 : 12;
  return {0x02, 0x42, v4.bytes[at], v4.bytes[at + 1], v4.bytes[at + 2], v4.bytes[at + 3]};
}

std::string FormatMac(const std::array<uint8_t, 6>& mac) {
  return StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

Result<std::array<uint8_t, 6>> ParseMac(std::string_view text) {
  // Six two-digit hex groups separated all by ':' or all by '-' (the forms Docker's
  // --mac-address users write; net.ParseMAC's dotted and 20-byte forms are not MACs we set).
  std::array<uint8_t, 6> mac{};
  bool ok = text.size() == 17 && (text[2] == ':' || text[2] == '-');
  for (size_t i = 0; ok && i < 6; ++i) {
    int hi = HexDigit(text[i * 3]), lo = HexDigit(text[i * 3 + 1]);
    if (hi < 0 || lo < 0 || (i < 5 && text[i * 3 + 2] != text[2]))
      ok = false;
    else
      mac[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  if (!ok) {
    std::string shown(text.substr(0, 64));
    for (char& c : shown) {
      if (!std::isprint(static_cast<unsigned char>(c))) c = '?';
    }
    return Fail(ErrorKind::kInvalidArgument, "invalid MAC address \"%s\"%s", shown.c_str(),
                text.size() > 64 ? "..." : "");
  }
  return mac;
}

}  // namespace moat::net
