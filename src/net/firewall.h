// Moat's packet filtering and NAT, in nftables tables of its own ("ip moat", "ip6 moat",
// "bridge moat"), driven through libnftables. Moat never touches another table: it creates its
// tables, changes only what is inside them, and deletes them whole. Every call is one nftables
// transaction (all of it applies or none), so a crash never leaves half a rule set.
//
// What the tables do, for the networks and port mappings added:
// - forward: a Moat bridge's traffic to another Moat bridge is dropped (networks are isolated);
//   an internal network's traffic to or from anything but its own bridge is dropped; with
//   inter-container communication off, traffic routed from a bridge back to the same bridge is
//   dropped; traffic into a Moat bridge from outside is accepted only when it belongs to a
//   connection (ct state established,related) or was DNATed to a published port (ct status
//   dnat): container addresses are not routable from other hosts.
// - nat postrouting: masquerade of a non-internal network's subnet leaving through any interface
//   but its bridge; masquerade of 127.0.0.0/8 sources leaving through a Moat bridge (the host's
//   own connections to a port published on 127.0.0.1, which needs route_localnet on that bridge);
//   hairpin: a container reaching a published port of its own network is masqueraded.
// - nat prerouting and output: DNAT of published ports. A mapping on the unspecified address
//   (0.0.0.0 / ::) matches any local address (fib daddr type local); one on a specific address
//   matches that address only. Mappings on 127.0.0.1 are matched in output only (from the host).
// - filter prerouting (the CVE-2020-8558 guard): a packet to 127.0.0.0/8 that arrives on any
//   interface other than lo and was not DNATed is dropped, so route_localnet on a Moat bridge
//   exposes none of the host's loopback services.
// Port mappings are elements of nftables maps (adding or removing one never rewrites rules).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "net/ip.h"

namespace moat::net {

struct NetworkRules {
  std::string bridge;        // interface name, e.g. "moat0", "moat-1a2b3c4d"
  IpPrefix subnet;           // masked, e.g. 172.17.0.0/16 (IPv4); IPv6 networks add a second call
  bool internal = false;     // no traffic in or out of the bridge
  bool icc = true;           // inter-container communication on this bridge
  bool masquerade = true;    // outbound NAT (off for internal networks regardless)
};

struct PortMapping {
  std::string proto;         // "tcp" | "udp" | "sctp"
  IpAddr host_ip;            // 0.0.0.0 / :: = any local address; 127.0.0.1 allowed
  uint16_t host_port = 0;
  IpAddr container_ip;       // same family as host_ip (or any-address of the other family: skip)
  uint16_t container_port = 0;
  std::string bridge;        // the bridge the container is on
  auto operator<=>(const PortMapping&) const = default;
};

class Firewall {
 public:
  // Creates the nft context and Moat's (empty) tables and chains if absent. Fails with
  // kUnavailable when nftables is not usable (no nf_tables in the kernel, no CAP_NET_ADMIN).
  // `table` names Moat's tables in each family (tests pass unique names).
  static Result<Firewall> Open(const std::string& table = "moat");
  Firewall(Firewall&&) noexcept;
  Firewall& operator=(Firewall&&) noexcept;
  ~Firewall();

  // Idempotent: adding a network whose bridge is already there replaces its rules.
  Result<void> AddNetwork(const NetworkRules& n);
  Result<void> RemoveNetwork(const std::string& bridge);   // absent: success
  Result<void> AddPortMapping(const PortMapping& m);       // the same mapping twice: success
  Result<void> RemovePortMapping(const PortMapping& m);    // absent: success
  // What is in the tables now (for reconciling after a crash).
  Result<std::vector<PortMapping>> PortMappings();
  Result<std::vector<std::string>> NetworkBridges();
  // Deletes Moat's tables whole (tests, `moatd --cleanup-network`).
  Result<void> RemoveAll();

  // The nft text of Moat's tables (`nft list table ...`), for tests and debugging.
  Result<std::string> Dump();

 private:
  struct Impl;
  explicit Firewall(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace moat::net
