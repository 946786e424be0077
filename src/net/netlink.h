// rtnetlink through libmnl: the links, addresses and routes Moat's networks need (bridges, veth
// pairs, addresses, default routes, bridge-port isolation). No `ip` processes: each call is one
// netlink request and its ACK on the socket's namespace.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "net/ip.h"

struct mnl_socket;

namespace moat::net {

struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;           // "bridge", "veth", "" (IFLA_INFO_KIND)
  int master = 0;             // ifindex of the bridge it is attached to, 0 if none
  bool up = false;            // IFF_UP
  std::array<uint8_t, 6> mac{};
  int mtu = 0;
};

struct RouteInfo {
  IpPrefix dst;               // 0.0.0.0/0 for a default route
  std::optional<IpAddr> gateway;
  int oif = 0;
  int mtu = 0;                // RTAX_MTU of the route's metrics; 0: none (the link's)
};

// A NETLINK_ROUTE socket. Every call acts in the network namespace the socket was opened in.
// Errors are kernel errors with the operation and the names in the message, e.g.
// "create bridge moat0: File exists"; EEXIST is ErrorKind::kAlreadyExists, ENODEV/ENOENT
// kNotFound. Not thread-safe: one Netlink per thread (they are cheap).
class Netlink {
 public:
  static Result<Netlink> Open();                   // in the calling thread's namespace
  static Result<Netlink> OpenIn(int netns_fd);     // in another namespace (thread returns to its own)
  Netlink(Netlink&&) noexcept;
  Netlink& operator=(Netlink&&) noexcept;
  ~Netlink();

  Result<LinkInfo> GetLink(std::string_view name);           // kNotFound if absent
  Result<std::vector<LinkInfo>> Links();
  // mtu 0 = kernel default. The bridge is created down.
  Result<void> CreateBridge(std::string_view name, int mtu);
  // A veth pair: `name` here, `peer_name` created directly in `peer_netns_fd` (-1 = here), with
  // `peer_mac` if given and `mtu` on both ends if non-zero. Both ends down.
  Result<void> CreateVeth(std::string_view name, std::string_view peer_name, int peer_netns_fd,
                          const std::optional<std::array<uint8_t, 6>>& peer_mac, int mtu);
  Result<void> DeleteLink(std::string_view name);            // kNotFound if absent
  Result<void> SetUp(std::string_view name, bool up);
  Result<void> SetMaster(std::string_view name, std::string_view bridge);  // "" = no master
  // IFLA_BRPORT_ISOLATED: isolated ports of one bridge cannot exchange frames with each other.
  Result<void> SetBridgePortIsolated(std::string_view name, bool isolated);
  Result<void> SetMac(std::string_view name, const std::array<uint8_t, 6>& mac);
  Result<void> SetMtu(std::string_view name, int mtu);
  // addr carries the prefix length of its subnet: 172.18.0.2/16. EEXIST = kAlreadyExists.
  Result<void> AddAddress(std::string_view name, const IpPrefix& addr);
  Result<void> DeleteAddress(std::string_view name, const IpPrefix& addr);
  Result<std::vector<IpPrefix>> Addresses(std::string_view name);  // "" = every link's
  // A route in the main table; dst 0.0.0.0/0 (::/0) is the default route. gateway optional.
  // `mtu` > 0 caps the path MTU of what takes this route below the link's (`ip route ... mtu`).
  Result<void> AddRoute(const IpPrefix& dst, const std::optional<IpAddr>& gateway,
                        std::string_view dev, int mtu = 0);
  Result<std::vector<RouteInfo>> Routes(int family);  // main table, AF_INET or AF_INET6

 private:
  explicit Netlink(mnl_socket* s);
  Result<void> Request(void* nlh, const char* what);   // send, read the ACK
  mnl_socket* sock_ = nullptr;
  uint32_t seq_ = 0;
};

}  // namespace moat::net
