// Address management for Moat's networks: picking a subnet that collides with nothing on the
// host, and handing out addresses inside it. The leases themselves are kept by the caller (the
// core stores them in each network's record, written atomically); these functions are pure.
#pragma once

#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "net/ip.h"

namespace moat::net {

// A pool of subnets: `base` cut into prefixes of length `size` (Docker's default-address-pools).
struct SubnetPool {
  IpPrefix base;
  int size = 0;
};

// Docker's defaults: 172.17.0.0/16 .. 172.31.0.0/16 as /16s, then 192.168.0.0/16 as /20s.
std::vector<SubnetPool> DefaultPools();

// "base=172.30.0.0/16,size=24" (daemon.json "default-address-pools" entries are objects; the
// caller converts). Size shorter than the base or longer than /30 (v4) is kInvalidArgument.
Result<SubnetPool> MakePool(std::string_view base, int size);

// The first subnet of `pools`, in order, that overlaps none of `taken` (host routes, the
// addresses on the host's interfaces, other networks). None left: kUnavailable
// ("no free subnet in the address pools ...").
Result<IpPrefix> PickSubnet(const std::vector<SubnetPool>& pools, const std::vector<IpPrefix>& taken);

// The gateway of a subnet: its first host address (172.18.0.1).
IpAddr DefaultGateway(const IpPrefix& subnet);

// The next free host address of `subnet`, scanning up from the address after `last` (Docker
// allocates sequentially and wraps), skipping the network address, the IPv4 broadcast address,
// `reserved` (gateway) and `used`. `wanted` set: that exact address or kConflict ("address
// 172.18.0.5 is in use") / kInvalidArgument (outside the subnet, or the network/broadcast/
// gateway address). Subnet full: kUnavailable ("no free address in 172.18.0.0/16").
Result<IpAddr> Allocate(const IpPrefix& subnet, const std::set<IpAddr>& used, const std::set<IpAddr>& reserved,
                        const std::optional<IpAddr>& last, const std::optional<IpAddr>& wanted);

// Docker's MAC for an IPv4 address: 02:42 followed by the four address bytes.
std::array<uint8_t, 6> MacForIp(const IpAddr& v4);
std::string FormatMac(const std::array<uint8_t, 6>& mac);
Result<std::array<uint8_t, 6>> ParseMac(std::string_view text);

}  // namespace moat::net
