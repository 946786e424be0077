#pragma once

// The core's networks: Docker's bridge driver on Moat's own bridges, veth pairs, nftables and
// an embedded DNS resolver (src/net). Thread-safe.
//
// Layout:
//   <data_root>/networks/<id>.json   one record per network, with its live endpoints (the
//                                    address leases) and their published ports; atomic writes
//   <exec_root>/netns/<container id> the container's network namespace (a bind mount), made at
//                                    start and removed when the container stops
//
// The predefined networks are "bridge" (the default bridge, `moat0`, made at startup unless
// daemon.json says "bridge": "none"), "host" and "none" (no records). A container joins its
// primary network (HostConfig.NetworkMode) as eth0 and the others of its EndpointsConfig as
// eth1...; addresses are leased while it runs, as dockerd does.

#include <array>
#include <atomic>
#include <condition_variable>
#include <thread>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/common/json.h"
#include "daemon/core/events.h"
#include "daemon/privsep/commands.h"
#include "net/ip.h"
#include "net/ipam.h"

namespace moat::net {
class Firewall;
namespace dns {
class Resolver;
}
}  // namespace moat::net

namespace moat::daemon::core {

struct NetworkOptions {
  std::string bridge_name = "moat0";  // the default bridge's interface; "none": no default bridge
  std::string bip;                    // the default bridge's gateway/prefix ("" = from the pools)
  std::vector<net::SubnetPool> pools = net::DefaultPools();
  bool icc = true;                    // inter-container communication on the default bridge
  int mtu = 1500;
  std::string dns_binary;             // moat-dns; "" = no embedded resolver
  std::string firewall_table = "moat";
};

// What a container's start needs from its networks.
struct Sandbox {
  std::string netns_path;   // the namespace the runtime joins ("" = none to join)
  std::string hosts;        // /etc/hosts
  std::string resolv_conf;  // /etc/resolv.conf
};

struct ContainerNetInfo {
  std::string id, name, hostname, domainname;
  const privsep::ContainerSpec* spec = nullptr;
  std::vector<std::string> exposed_ports;  // the image's and the container's ("80/tcp")
};

class Networks {
 public:
  Networks(NetworkOptions options, std::string data_root, std::string exec_root, Events* events);
  ~Networks();

  // Loads the records, makes the default bridge, Moat's nftables tables and the resolver.
  Result<void> Init();

  // --- the Engine API's /networks ---
  Result<Json> Create(const Json& body);               // {"Id":..,"Warning":""}
  Result<Json> Inspect(const std::string& ref);
  Result<Json> List(const Json& filters);
  Result<void> Remove(const std::string& ref);
  Result<Json> Prune(const Json& filters);             // {"NetworksDeleted":[...]}
  // A network's name from its name, id or id prefix (host and none included); kNotFound
  // "network X not found".
  Result<std::string> ResolveName(const std::string& ref);
  // True for networks with their own stack (bridge networks): not host, none or container:.
  static bool OwnStack(const std::string& network_mode);
  // The networks a container joins when it starts, primary (eth0) first: its EndpointsConfig,
  // whose names the create resolved and to which it added the primary network (NetworkMode).
  // Disconnecting every network leaves it empty: the container starts with loopback only.
  static std::vector<std::pair<std::string, privsep::EndpointSpec>> JoinList(const privsep::ContainerSpec& spec);

  // --- containers ---
  // Makes the container's namespace and joins its networks (primary first); publishes its ports.
  // On failure nothing is left. For "none": a namespace with loopback only.
  Result<Sandbox> SetUp(const ContainerNetInfo& c);
  // Leaves every network, unpublishes, removes the namespace. Never fails (logs).
  void TearDown(const std::string& container_id);
  // A running container joins / leaves one more network (docker network connect/disconnect).
  Result<void> Connect(const ContainerNetInfo& c, const std::string& network, const privsep::EndpointSpec& ep);
  Result<void> Disconnect(const std::string& container_id, const std::string& network);
  // NetworkSettings of `docker inspect` (Networks, Ports, IPAddress ...) for the container.
  Json SettingsJson(const std::string& container_id, const privsep::ContainerSpec& spec);
  // After a restart: the container still runs; hold its ports again, re-add its records.
  void Readopt(const std::string& container_id);
  // After a restart: removes leases, namespaces, port mappings and veths of containers that are
  // not in `running` (they stopped while moatd was down).
  void Sweep(const std::set<std::string>& running);
  // Names of networks a container is attached to now.
  std::vector<std::string> AttachedNetworks(const std::string& container_id);

  struct Endpoint;
  struct Network;

 private:
  Result<std::shared_ptr<Network>> FindLocked(const std::string& ref);
  Result<void> PersistLocked(const Network& n);
  Result<void> EnsureBridge(Network& n, std::unique_lock<std::mutex>& lock);
  void DnsThread();
  // Starts the resolver if it is not running yet (waits for it; mu_ held through `lock`).
  bool WantDnsLocked(std::unique_lock<std::mutex>& lock);
  Result<void> Join(Network& n, const ContainerNetInfo& c, const privsep::EndpointSpec& ep, int netns_fd,
                    const std::string& ifname, bool primary, Endpoint* out);
  void Leave(Network& n, const std::string& container_id, bool delete_link);
  Result<void> Publish(Network& n, Endpoint& e, const ContainerNetInfo& c);
  void PushDnsLocked(const Network& n);
  // The first IPv4 address (not a /32) of the link `bridge` if it exists; nullopt otherwise.
  static std::optional<net::IpPrefix> ExistingBridgeAddress(const std::string& bridge);
  std::vector<net::IpPrefix> TakenSubnetsLocked();
  std::string NetnsPath(const std::string& container_id) const;
  Json NetworkJsonLocked(const Network& n, bool with_containers);
  std::vector<std::string> HostNameservers();

  NetworkOptions opts_;
  std::string data_root_, exec_root_;
  Events* events_;
  std::mutex mu_;     // guards the maps, the records and the resolver's channel
  std::mutex fw_mu_;  // the firewall (taken after mu_ where both are held)
  std::map<std::string, std::shared_ptr<Network>> by_id_;
  std::unique_ptr<net::Firewall> firewall_;
  std::unique_ptr<net::dns::Resolver> dns_;
  std::thread dns_thread_;
  std::condition_variable dns_cv_;
  bool dns_wanted_ = false, dns_done_ = false, stopping_ = false;
  std::atomic<bool> dns_up_{false};
  bool loopback_resolvers_ = false;  // the host's resolv.conf names a loopback server
  std::map<std::string, std::vector<UniqueFd>> port_holds_;  // by container id
};

}  // namespace moat::daemon::core
