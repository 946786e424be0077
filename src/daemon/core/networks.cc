#include "daemon/core/networks.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "base/log.h"
#include "base/strings.h"
#include "base/sys/fs.h"
#include "daemon/core/container_internal.h"
#include "net/dns/client.h"
#include "net/firewall.h"
#include "net/netlink.h"
#include "net/netns.h"

namespace moat::daemon::core {

using privsep::ContainerSpec;
using privsep::EndpointSpec;

struct Networks::Endpoint {
  std::string container_id, container_name, endpoint_id, veth, ifname;
  net::IpAddr ip;
  std::optional<net::IpAddr> ip6;     // on --ipv6 networks
  std::array<uint8_t, 6> mac{};
  std::vector<std::string> aliases;   // as asked (EndpointsConfig)
  std::vector<std::string> dns_names; // name, short id, aliases
  std::vector<net::PortMapping> ports;
  std::vector<std::string> port_keys; // "80/tcp" of each port (parallel to ports)
  std::vector<net::IpAddr> dns;       // --dns: the resolver forwards this container's queries there
};

struct Networks::Network {
  std::string id, name, driver = "bridge", bridge;
  int64_t created_nano = 0;
  net::IpPrefix subnet;  // masked
  net::IpAddr gateway;
  std::optional<net::IpPrefix> subnet6;  // --ipv6
  std::optional<net::IpAddr> gateway6, last_ip6;
  bool internal = false, icc = true, masquerade = true, attachable = false, ipv6 = false, predefined = false;
  // Docker's network MTU: the path MTU of traffic that leaves through the gateway (the
  // containers' default routes carry it). The links themselves use LinkMtu(): see there.
  int mtu = 1500;
  std::map<std::string, std::string> options, labels;
  std::map<std::string, Endpoint> endpoints;  // by container id
  std::optional<net::IpAddr> last_ip;
};

namespace {

// The MTU of a network's bridge and veths. Nothing but the host and the network's containers
// is on that link, so it needs no Ethernet-sized frames: like lo, it takes near-64 KiB ones,
// and TCP between containers, or between the host and a container (a published port reached
// from the host), runs ~25% faster than at 1500 (bench/network.sh). What leaves the host is
// kept to the network's MTU by the containers' default routes (`mtu` metric; the container's
// SYN then advertises an MSS that fits it), and what comes in from outside arrives at the
// outside link's size anyway.
constexpr int kLocalLinkMtu = 65520;
int LinkMtu(int network_mtu) { return std::max(kLocalLinkMtu, network_mtu); }

// The error with `context` in front of its message ("network web: ...").
Unexpected Prefixed(Error e, const std::string& context) {
  e.message = context + ": " + e.message;
  return Fail(std::move(e));
}

Json EndpointJson(const Networks::Endpoint& e) {
  Json dns = Json::array();
  for (const auto& d : e.dns) dns.push_back(d.ToString());
  Json ports = Json::array();
  for (size_t i = 0; i < e.ports.size(); ++i) {
    const auto& p = e.ports[i];
    ports.push_back({{"Key", e.port_keys[i]}, {"Proto", p.proto}, {"HostIp", p.host_ip.ToString()},
                     {"HostPort", p.host_port}, {"ContainerPort", p.container_port}});
  }
  return {{"ContainerId", e.container_id}, {"Name", e.container_name}, {"EndpointID", e.endpoint_id},
          {"Veth", e.veth}, {"Ifname", e.ifname}, {"IP", e.ip.ToString()}, {"IP6", e.ip6 ? e.ip6->ToString() : ""}, {"Mac", net::FormatMac(e.mac)},
          {"Aliases", e.aliases}, {"DnsNames", e.dns_names}, {"Ports", ports}, {"Dns", dns}};
}

Result<Networks::Endpoint> EndpointFromJson(const Json& j) {
  Networks::Endpoint e;
  e.container_id = j.value("ContainerId", "");
  e.container_name = j.value("Name", "");
  e.endpoint_id = j.value("EndpointID", "");
  e.veth = j.value("Veth", "");
  e.ifname = j.value("Ifname", "eth0");
  MOAT_ASSIGN_OR_RETURN(e.ip, net::IpAddr::Parse(j.value("IP", "")));
  MOAT_ASSIGN_OR_RETURN(e.mac, net::ParseMac(j.value("Mac", "")));
  if (auto ip6 = net::IpAddr::Parse(j.value("IP6", "")); ip6) e.ip6 = *ip6;
  (void)GetStringList(j, "Aliases", &e.aliases, "Aliases");
  (void)GetStringList(j, "DnsNames", &e.dns_names, "DnsNames");
  std::vector<std::string> dns;
  (void)GetStringList(j, "Dns", &dns, "Dns");
  for (const auto& d : dns) {
    if (auto a = net::IpAddr::Parse(d)) e.dns.push_back(*a);
  }
  const Json ports = j.contains("Ports") && j["Ports"].is_array() ? j["Ports"] : Json::array();
  for (const auto& p : ports) {
    net::PortMapping m;
    m.proto = p.value("Proto", "tcp");
    MOAT_ASSIGN_OR_RETURN(m.host_ip, net::IpAddr::Parse(p.value("HostIp", "0.0.0.0")));
    m.host_port = p.value("HostPort", 0);
    m.container_port = p.value("ContainerPort", 0);
    m.container_ip = m.host_ip.IsV4() || !e.ip6 ? e.ip : *e.ip6;
    e.ports.push_back(m);
    e.port_keys.push_back(p.value("Key", std::to_string(m.container_port) + "/" + m.proto));
  }
  return e;
}

// Holds host_ip:port so that nothing else binds it while it is published (no proxy process: the
// socket never listens; traffic is DNATed before it would reach it). Returns the port bound
// (port 0: an ephemeral one).
Result<std::pair<UniqueFd, uint16_t>> HoldPort(const std::string& proto, const net::IpAddr& ip, uint16_t port) {
  int type = proto == "udp" ? SOCK_DGRAM : SOCK_STREAM;
  int family = ip.IsV4() ? AF_INET : AF_INET6;
  UniqueFd fd(::socket(family, type | SOCK_CLOEXEC, 0));
  if (!fd) return FailErrno("socket for port %u", port);
  sockaddr_storage ss{};
  socklen_t len;
  if (ip.IsV4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    memcpy(&sin->sin_addr, ip.bytes.data(), 4);
    len = sizeof(sockaddr_in);
  } else {
    int one = 1;
    (void)setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    memcpy(&sin6->sin6_addr, ip.bytes.data(), 16);
    len = sizeof(sockaddr_in6);
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int err = errno;
    if (err == EADDRINUSE) {
      return Fail(ErrorKind::kConflict, "Bind for %s:%u failed: port is already allocated",
                  ip.ToString().c_str(), port);
    }
    errno = err;
    return FailErrno("bind %s:%u/%s", ip.ToString().c_str(), port, proto.c_str());
  }
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return FailErrno("getsockname");
  uint16_t bound = ip.IsV4() ? ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port)
                             : ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return std::pair{std::move(fd), bound};
}

std::string ShortHex(size_t n) { return RandomId().substr(0, n); }


bool Matches(const Json& filters, const char* key, const std::string& value, bool prefix = false) {
  if (!filters.contains(key)) return true;
  const Json& f = filters[key];
  auto one = [&](const std::string& want) {
    return prefix ? value.rfind(want, 0) == 0 : value == want;
  };
  if (f.is_object()) {
    for (auto it = f.begin(); it != f.end(); ++it) {
      if (one(it.key())) return true;
    }
    return false;
  }
  if (f.is_array()) {
    for (const auto& v : f) {
      if (v.is_string() && one(v.get<std::string>())) return true;
    }
    return false;
  }
  return true;
}

std::vector<std::string> FilterValues(const Json& filters, const char* key) {
  std::vector<std::string> out;
  if (!filters.contains(key)) return out;
  const Json& f = filters[key];
  if (f.is_object()) {
    for (auto it = f.begin(); it != f.end(); ++it) out.push_back(it.key());
  } else if (f.is_array()) {
    for (const auto& v : f) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

bool LabelsMatch(const Json& filters, const std::map<std::string, std::string>& labels) {
  for (const auto& want : FilterValues(filters, "label")) {
    size_t eq = want.find('=');
    std::string k = want.substr(0, eq);
    auto it = labels.find(k);
    if (it == labels.end()) return false;
    if (eq != std::string::npos && it->second != want.substr(eq + 1)) return false;
  }
  return true;
}

}  // namespace

Networks::Networks(NetworkOptions options, std::string data_root, std::string exec_root, Events* events)
    : opts_(std::move(options)), data_root_(std::move(data_root)), exec_root_(std::move(exec_root)), events_(events) {}

Networks::~Networks() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    dns_cv_.notify_all();
  }
  if (dns_thread_.joinable()) dns_thread_.join();
}

void Networks::DnsThread() {
  std::unique_lock lock(mu_);
  dns_cv_.wait(lock, [&] { return dns_wanted_ || stopping_; });
  if (!stopping_) {
    lock.unlock();
    std::string empty_root = exec_root_ + "/dns-root";
    (void)sys::MkdirAll(empty_root, 0555);
    auto d = net::dns::Resolver::Start(opts_.dns_binary, empty_root);
    std::vector<net::IpAddr> up;
    // Loopback resolvers of the host (systemd-resolved, dnsmasq) are reachable from the host's
    // namespace, where the resolver runs.
    for (const auto& s : HostNameservers()) {
      if (auto a = net::IpAddr::Parse(s)) up.push_back(*a);
    }
    lock.lock();
    if (d) {
      dns_ = std::move(*d);
      if (auto r = dns_->SetUpstream(up); !r) MOAT_LOG(kWarning, "dns upstream: %s", r.error().message.c_str());
      for (auto& [id, n] : by_id_) {
        if (!n->predefined || loopback_resolvers_) {
          if (auto r = dns_->Listen(n->id, n->subnet, n->gateway); !r) {
            MOAT_LOG(kWarning, "network %s: no embedded DNS: %s", n->name.c_str(), r.error().message.c_str());
          }
        }
        PushDnsLocked(*n);
        for (const auto& [cid, e] : n->endpoints) {
          if (!e.dns.empty()) (void)dns_->SetClientUpstream(n->id, e.ip, e.dns);
        }
      }
      dns_up_ = true;
    } else {
      MOAT_LOG(kWarning, "no embedded DNS resolver: %s", d.error().message.c_str());
    }
    dns_done_ = true;
    dns_cv_.notify_all();
  }
  dns_cv_.wait(lock, [&] { return stopping_; });
  dns_.reset();
}

bool Networks::WantDnsLocked(std::unique_lock<std::mutex>& lock) {
  if (opts_.dns_binary.empty() || !dns_thread_.joinable()) return false;
  if (!dns_done_) {
    dns_wanted_ = true;
    dns_cv_.notify_all();
    dns_cv_.wait(lock, [&] { return dns_done_ || stopping_; });
  }
  return dns_ != nullptr;
}

std::vector<std::pair<std::string, EndpointSpec>> Networks::JoinList(const ContainerSpec& s) {
  std::vector<std::pair<std::string, EndpointSpec>> out;
  std::string primary = privsep::PrimaryNetwork(s);
  if (!OwnStack(s.network_mode) || primary == "none") return out;
  auto it = s.endpoints.find(primary);
  if (it == s.endpoints.end()) it = s.endpoints.find(s.network_mode);
  if (it != s.endpoints.end()) out.emplace_back(it->first, it->second);
  for (const auto& [name, ep] : s.endpoints) {
    if (!out.empty() && name == out[0].first) continue;
    out.emplace_back(name, ep);
  }
  return out;
}

bool Networks::OwnStack(const std::string& mode) {
  return mode != "host" && mode != "none" && mode.rfind("container:", 0) != 0;
}

std::string Networks::NetnsPath(const std::string& id) const { return exec_root_ + "/netns/" + id; }

Result<void> Networks::PersistLocked(const Network& n) {
  if (n.name == "host" || n.name == "none") return {};
  Json eps = Json::object();
  for (const auto& [cid, e] : n.endpoints) eps[cid] = EndpointJson(e);
  Json j = {{"Id", n.id},
            {"Name", n.name},
            {"Driver", n.driver},
            {"Bridge", n.bridge},
            {"Created", n.created_nano},
            {"Subnet", n.subnet.ToString()},
            {"Gateway", n.gateway.ToString()},
            {"Subnet6", n.subnet6 ? n.subnet6->ToString() : ""},
            {"Gateway6", n.gateway6 ? n.gateway6->ToString() : ""},
            {"LastIP6", n.last_ip6 ? n.last_ip6->ToString() : ""},
            {"Internal", n.internal},
            {"Icc", n.icc},
            {"Masquerade", n.masquerade},
            {"Attachable", n.attachable},
            {"EnableIPv6", n.ipv6},
            {"Predefined", n.predefined},
            {"Mtu", n.mtu},
            {"Options", n.options},
            {"Labels", n.labels},
            {"Endpoints", eps},
            {"LastIP", n.last_ip ? n.last_ip->ToString() : ""}};
  return sys::WriteFileAtomic(data_root_ + "/networks/" + n.id + ".json", Dump(j), 0600,
                              sys::Durability::kUntilReboot);
}

std::vector<net::IpPrefix> Networks::TakenSubnetsLocked() {
  std::vector<net::IpPrefix> taken;
  for (const auto& [id, n] : by_id_) taken.push_back(n->subnet);
  if (auto nl = net::Netlink::Open()) {
    if (auto routes = nl->Routes(AF_INET)) {
      for (const auto& r : *routes) {
        if (r.dst.len > 0) taken.push_back(r.dst.Masked());  // the default route takes nothing
      }
    }
    if (auto addrs = nl->Addresses("")) {
      for (const auto& a : *addrs) taken.push_back(a.Masked());
    }
  }
  return taken;
}

std::optional<net::IpPrefix> Networks::ExistingBridgeAddress(const std::string& bridge) {
  auto nl = net::Netlink::Open();
  if (!nl || !nl->GetLink(bridge)) return std::nullopt;
  auto addrs = nl->Addresses(bridge);
  if (!addrs) return std::nullopt;
  for (const auto& a : *addrs) {
    if (a.addr.IsV4() && a.len < 32) return a;
  }
  return std::nullopt;
}

std::vector<std::string> Networks::HostNameservers() {
  std::vector<std::string> out;
  auto text = sys::ReadFile("/etc/resolv.conf");
  if (!text) return out;
  for (const auto& line : StrSplit(*text, '\n')) {
    auto words = StrSplit(line, ' ');
    if (words.size() >= 2 && words[0] == "nameserver") out.push_back(words[1]);
  }
  return out;
}

Result<void> Networks::EnsureBridge(Network& n, std::unique_lock<std::mutex>& lock) {
  MOAT_ASSIGN_OR_RETURN(net::Netlink nl, net::Netlink::Open());
  if (auto link = nl.GetLink(n.bridge); !link) {
    if (link.error().kind != ErrorKind::kNotFound) return Fail(link.error());
    MOAT_TRY(nl.CreateBridge(n.bridge, LinkMtu(n.mtu)));
  } else if (link->mtu != LinkMtu(n.mtu)) {
    // A bridge left by an earlier daemon (or made before links were sized so): set explicitly,
    // the kernel no longer lowers it to its smallest port's.
    MOAT_TRY(nl.SetMtu(n.bridge, LinkMtu(n.mtu)));
  }
  net::IpPrefix gw{n.gateway, n.subnet.len};
  auto has = nl.Addresses(n.bridge);
  bool present = has && std::find(has->begin(), has->end(), gw) != has->end();
  if (!present) {
    if (auto r = nl.AddAddress(n.bridge, gw); !r && r.error().kind != ErrorKind::kAlreadyExists) return r;
  }
  if (n.subnet6 && n.gateway6) {
    // No duplicate address detection on Moat's own addresses: the gateway works at once.
    (void)sys::WriteFile("/proc/sys/net/ipv6/conf/" + n.bridge + "/accept_dad", "0");
    (void)sys::WriteFile("/proc/sys/net/ipv6/conf/" + n.bridge + "/disable_ipv6", "0");
    net::IpPrefix gw6{*n.gateway6, n.subnet6->len};
    bool present6 = has && std::find(has->begin(), has->end(), gw6) != has->end();
    if (!present6) {
      if (auto r = nl.AddAddress(n.bridge, gw6); !r && r.error().kind != ErrorKind::kAlreadyExists) return r;
    }
    (void)sys::WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", "1");
  }
  MOAT_TRY(nl.SetUp(n.bridge, true));
  if (!n.internal) {
    // The host's own connections to ports published on 127.0.0.1 leave through the bridge with a
    // loopback source; the firewall's guard drops any other 127/8 traffic (CVE-2020-8558).
    (void)sys::WriteFile("/proc/sys/net/ipv4/conf/" + n.bridge + "/route_localnet", "1");
  }
  net::NetworkRules rules;
  rules.bridge = n.bridge;
  rules.subnet = n.subnet;
  rules.internal = n.internal;
  rules.icc = n.icc;
  rules.masquerade = n.masquerade && !n.internal;
  if (firewall_) {
    std::lock_guard fw(fw_mu_);
    MOAT_TRY(firewall_->AddNetwork(rules));
    if (n.subnet6) {
      net::NetworkRules rules6 = rules;
      rules6.subnet = *n.subnet6;
      MOAT_TRY(firewall_->AddNetwork(rules6));
    }
  }
  if ((!n.predefined || loopback_resolvers_) && WantDnsLocked(lock)) {
    if (auto r = dns_->Listen(n.id, n.subnet, n.gateway); !r) {
      MOAT_LOG(kWarning, "network %s: no embedded DNS: %s", n.name.c_str(), r.error().message.c_str());
    }
  }
  return {};
}

Result<void> Networks::Init() {
  MOAT_TRY(sys::MkdirAll(data_root_ + "/networks", 0700));
  MOAT_TRY(sys::MkdirAll(exec_root_ + "/netns", 0700));
  auto fw = net::Firewall::Open(opts_.firewall_table);
  if (fw) {
    firewall_ = std::make_unique<net::Firewall>(std::move(*fw));
  } else {
    MOAT_LOG(kWarning, "nftables unavailable, no NAT, published ports or isolation: %s",
             fw.error().message.c_str());
  }
  if (auto r = sys::WriteFile("/proc/sys/net/ipv4/ip_forward", "1"); !r) {
    MOAT_LOG(kWarning, "ip_forward: %s", r.error().message.c_str());
  }
  for (const auto& ns_text : HostNameservers()) {
    if (auto a = net::IpAddr::Parse(ns_text); a && a->IsLoopback()) loopback_resolvers_ = true;
  }
  if (!opts_.dns_binary.empty()) {
    // The resolver starts when a network first needs it (a user-defined network, or the host's
    // name servers are on loopback), on a thread that lives as long as it does (moat-dns dies
    // with the thread that started it).
    dns_thread_ = std::thread([this] { DnsThread(); });
  }
  std::unique_lock lock(mu_);
  if (DIR* d = opendir((data_root_ + "/networks").c_str())) {
    while (dirent* e = readdir(d)) {
      std::string f = e->d_name;
      if (f.size() < 6 || f.substr(f.size() - 5) != ".json" || f[0] == '.') continue;
      auto text = sys::ReadFile(data_root_ + "/networks/" + f);
      auto j = text ? ParseJson(*text) : Result<Json>(Fail(text.error()));
      if (!j) {
        MOAT_LOG(kWarning, "network record %s: %s", f.c_str(), j.error().message.c_str());
        continue;
      }
      auto n = std::make_shared<Network>();
      n->id = j->value("Id", "");
      n->name = j->value("Name", "");
      n->bridge = j->value("Bridge", "");
      n->created_nano = j->value("Created", int64_t{0});
      auto sub = net::IpPrefix::Parse(j->value("Subnet", ""));
      auto gw = net::IpAddr::Parse(j->value("Gateway", ""));
      if (!sub || !gw || n->id.empty() || n->name.empty() || n->bridge.empty()) {
        MOAT_LOG(kWarning, "network record %s: incomplete, ignored", f.c_str());
        continue;
      }
      n->subnet = sub->Masked();
      n->gateway = *gw;
      n->internal = j->value("Internal", false);
      n->icc = j->value("Icc", true);
      n->masquerade = j->value("Masquerade", true);
      n->attachable = j->value("Attachable", false);
      n->ipv6 = j->value("EnableIPv6", false);
      n->predefined = j->value("Predefined", false);
      n->mtu = j->value("Mtu", 1500);
      (void)GetStringMap(*j, "Options", &n->options, "Options");
      (void)GetStringMap(*j, "Labels", &n->labels, "Labels");
      if (auto last = net::IpAddr::Parse(j->value("LastIP", "")); last) n->last_ip = *last;
      if (auto s6 = net::IpPrefix::Parse(j->value("Subnet6", "")); s6) n->subnet6 = s6->Masked();
      if (auto g6 = net::IpAddr::Parse(j->value("Gateway6", "")); g6) n->gateway6 = *g6;
      if (auto l6 = net::IpAddr::Parse(j->value("LastIP6", "")); l6) n->last_ip6 = *l6;
      if (j->contains("Endpoints") && (*j)["Endpoints"].is_object()) {
        const Json& eps = (*j)["Endpoints"];
        for (auto it = eps.begin(); it != eps.end(); ++it) {
          if (auto ep = EndpointFromJson(it.value())) {
            for (auto& m : ep->ports) m.bridge = n->bridge;  // the record keeps it once, on the network
            n->endpoints[it.key()] = std::move(*ep);
          }
        }
      }
      by_id_[n->id] = n;
    }
    closedir(d);
  }
  bool have_default = false;
  for (auto& [id, n] : by_id_) have_default |= n->predefined && n->name == "bridge";
  if (!have_default && opts_.bridge_name != "none") {
    auto n = std::make_shared<Network>();
    n->id = RandomId();
    n->name = "bridge";
    n->bridge = opts_.bridge_name;
    n->predefined = true;
    n->created_nano = NowNano();
    n->icc = opts_.icc;
    n->mtu = opts_.mtu;
    if (!opts_.bip.empty()) {
      MOAT_ASSIGN_OR_RETURN(net::IpPrefix bip, net::IpPrefix::Parse(opts_.bip));
      n->subnet = bip.Masked();
      n->gateway = bip.addr == n->subnet.addr ? net::DefaultGateway(n->subnet) : bip.addr;
    } else if (auto existing = ExistingBridgeAddress(opts_.bridge_name)) {
      // The bridge is there already with an address (an earlier daemon's with another data
      // root, or the administrator's): the default network takes it, as dockerd does with
      // docker0, instead of picking a free subnet and giving the bridge a second address.
      n->subnet = existing->Masked();
      n->gateway = existing->addr;
      MOAT_LOG(kInfo, "default bridge %s exists: using its address %s", opts_.bridge_name.c_str(),
               existing->ToString().c_str());
    } else {
      MOAT_ASSIGN_OR_RETURN(n->subnet, net::PickSubnet(opts_.pools, TakenSubnetsLocked()));
      n->gateway = net::DefaultGateway(n->subnet);
    }
    n->options = {{"com.docker.network.bridge.default_bridge", "true"},
                  {"com.docker.network.bridge.enable_icc", opts_.icc ? "true" : "false"},
                  {"com.docker.network.bridge.enable_ip_masquerade", "true"},
                  {"com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"},
                  {"com.docker.network.bridge.name", n->bridge},
                  {"com.docker.network.driver.mtu", std::to_string(opts_.mtu)}};
    MOAT_TRY(PersistLocked(*n));
    by_id_[n->id] = n;
  }
  for (auto& [id, n] : by_id_) {
    if (auto r = EnsureBridge(*n, lock); !r) {
      MOAT_LOG(kWarning, "network %s (%s): %s", n->name.c_str(), n->bridge.c_str(), r.error().message.c_str());
    }
  }
  return {};
}

Result<std::shared_ptr<Networks::Network>> Networks::FindLocked(const std::string& ref_in) {
  const std::string& ref = ref_in == "default" ? std::string("bridge") : ref_in;
  for (const auto& [id, n] : by_id_) {
    if (n->name == ref || id == ref) return n;
  }
  std::shared_ptr<Network> found;
  if (ref.size() >= 1) {
    for (const auto& [id, n] : by_id_) {
      if (id.rfind(ref, 0) == 0) {
        if (found) return Fail(ErrorKind::kInvalidArgument, "network %s is ambiguous", ref.c_str());
        found = n;
      }
    }
  }
  if (!found) return Fail(ErrorKind::kNotFound, "network %s not found", ref.c_str());
  return found;
}

Result<std::string> Networks::ResolveName(const std::string& ref) {
  if (ref == "host" || ref == "none") return ref;
  std::lock_guard lock(mu_);
  MOAT_ASSIGN_OR_RETURN(auto n, FindLocked(ref == "default" ? "bridge" : ref));
  return n->name;
}

Json Networks::NetworkJsonLocked(const Network& n, bool with_containers) {
  Json containers = Json::object();
  if (with_containers) {
    for (const auto& [cid, e] : n.endpoints) {
      containers[cid] = {{"Name", e.container_name},
                         {"EndpointID", e.endpoint_id},
                         {"MacAddress", net::FormatMac(e.mac)},
                         {"IPv4Address", e.ip.ToString() + "/" + std::to_string(n.subnet.len)},
                         {"IPv6Address", e.ip6 && n.subnet6 ? e.ip6->ToString() + "/" + std::to_string(n.subnet6->len) : ""}};
    }
  }
  Json ipam_config = Json::array();
  ipam_config.push_back({{"Subnet", n.subnet.ToString()}, {"Gateway", n.gateway.ToString()}});
  if (n.subnet6 && n.gateway6) {
    ipam_config.push_back({{"Subnet", n.subnet6->ToString()}, {"Gateway", n.gateway6->ToString()}});
  }
  return {{"Name", n.name},
          {"Id", n.id},
          {"Created", FormatTime(n.created_nano)},
          {"Scope", "local"},
          {"Driver", n.driver},
          {"EnableIPv6", n.ipv6},
          {"IPAM", {{"Driver", "default"}, {"Options", nullptr}, {"Config", ipam_config}}},
          {"Internal", n.internal},
          {"Attachable", n.attachable},
          {"Ingress", false},
          {"ConfigFrom", {{"Network", ""}}},
          {"ConfigOnly", false},
          {"Containers", containers},
          {"Options", n.options},
          {"Labels", n.labels}};
}

namespace {
Json PseudoNetworkJson(const std::string& name) {
  return {{"Name", name},
          {"Id", name},
          {"Created", "0001-01-01T00:00:00Z"},
          {"Scope", "local"},
          {"Driver", name == "none" ? "null" : "host"},
          {"EnableIPv6", false},
          {"IPAM", {{"Driver", "default"}, {"Options", nullptr}, {"Config", Json::array()}}},
          {"Internal", false},
          {"Attachable", false},
          {"Ingress", false},
          {"ConfigFrom", {{"Network", ""}}},
          {"ConfigOnly", false},
          {"Containers", Json::object()},
          {"Options", Json::object()},
          {"Labels", Json::object()}};
}
}  // namespace

Result<Json> Networks::Inspect(const std::string& ref) {
  if (ref == "host" || ref == "none") return PseudoNetworkJson(ref);
  std::lock_guard lock(mu_);
  MOAT_ASSIGN_OR_RETURN(auto n, FindLocked(ref));
  return NetworkJsonLocked(*n, true);
}

Result<Json> Networks::List(const Json& filters) {
  Json out = Json::array();
  auto keep = [&](const std::string& name, const std::string& id, const std::string& driver, bool custom,
                  const std::map<std::string, std::string>& labels) {
    // name: a substring of the name (dockerd matches it as a regular expression).
    if (filters.contains("name")) {
      auto want = FilterValues(filters, "name");
      if (std::none_of(want.begin(), want.end(), [&](const std::string& w) { return name.find(w) != std::string::npos; })) {
        return false;
      }
    }
    if (!Matches(filters, "id", id, true)) return false;
    if (!Matches(filters, "driver", driver)) return false;
    if (!Matches(filters, "type", custom ? "custom" : "builtin")) return false;
    if (!Matches(filters, "scope", "local")) return false;
    return LabelsMatch(filters, labels);
  };
  std::lock_guard lock(mu_);
  for (const auto& [id, n] : by_id_) {
    if (keep(n->name, n->id, n->driver, !n->predefined, n->labels)) out.push_back(NetworkJsonLocked(*n, false));
  }
  for (const char* p : {"host", "none"}) {
    if (keep(p, p, p == std::string("none") ? "null" : "host", false, {})) out.push_back(PseudoNetworkJson(p));
  }
  return out;
}

Result<Json> Networks::Create(const Json& body) {
  std::string name, driver = "bridge";
  MOAT_TRY(GetString(body, "Name", &name, "Name"));
  MOAT_TRY(GetString(body, "Driver", &driver, "Driver"));
  if (driver.empty()) driver = "bridge";
  MOAT_TRY(privsep::ValidateNetworkName(name));
  if (name == "host" || name == "none" || name == "bridge" || name == "default") {
    return Fail(ErrorKind::kPermissionDenied, "%s is a pre-defined network and cannot be created", name.c_str());
  }
  if (driver != "bridge") {
    return Fail(ErrorKind::kNotFound, "plugin \"%s\" not found (Moat has the bridge driver)", driver.c_str());
  }
  auto n = std::make_shared<Network>();
  n->name = name;
  n->id = RandomId();
  n->bridge = "moat-" + n->id.substr(0, 10);
  n->created_nano = NowNano();
  MOAT_TRY(GetBool(body, "Internal", &n->internal, "Internal"));
  MOAT_TRY(GetBool(body, "Attachable", &n->attachable, "Attachable"));
  MOAT_TRY(GetBool(body, "EnableIPv6", &n->ipv6, "EnableIPv6"));
  MOAT_TRY(GetStringMap(body, "Options", &n->options, "Options"));
  MOAT_TRY(GetStringMap(body, "Labels", &n->labels, "Labels"));
  for (const auto& [k, v] : n->options) {
    if (k == "com.docker.network.bridge.enable_icc") {
      n->icc = v != "false" && v != "0";
    } else if (k == "com.docker.network.bridge.enable_ip_masquerade") {
      n->masquerade = v != "false" && v != "0";
    } else if (k == "com.docker.network.bridge.name") {
      if (v.empty() || v.size() > 15 || v.find_first_of("/ \t\n:") != std::string::npos) {
        return Fail(ErrorKind::kInvalidArgument, "invalid bridge name \"%s\"", v.c_str());
      }
      n->bridge = v;
    } else if (k == "com.docker.network.driver.mtu") {
      try {
        n->mtu = std::stoi(v);
      } catch (...) {
        n->mtu = 0;
      }
      if (n->mtu < 68 || n->mtu > 65535) return Fail(ErrorKind::kInvalidArgument, "invalid mtu \"%s\"", v.c_str());
    }
  }
  std::optional<net::IpPrefix> want_subnet, want_subnet6;
  std::optional<net::IpAddr> want_gateway, want_gateway6;
  MOAT_ASSIGN_OR_RETURN(const Json* ipam, GetObject(body, "IPAM", "IPAM"));
  if (ipam && ipam->contains("Config") && (*ipam)["Config"].is_array()) {
    for (const auto& cfg : (*ipam)["Config"]) {
      if (!cfg.is_object()) return Fail(ErrorKind::kInvalidArgument, "IPAM.Config: expected objects");
      std::string subnet = cfg.value("Subnet", ""), gateway = cfg.value("Gateway", "");
      bool v6 = false;
      if (!subnet.empty()) {
        MOAT_ASSIGN_OR_RETURN(net::IpPrefix p, net::IpPrefix::Parse(subnet));
        if (p.Masked() != p) return Fail(ErrorKind::kInvalidArgument, "invalid subnet %s: it has host bits set", subnet.c_str());
        v6 = !p.addr.IsV4();
        if (p.len > (v6 ? 126 : 30)) return Fail(ErrorKind::kInvalidArgument, "invalid subnet %s: too small", subnet.c_str());
        if (v6 && !n->ipv6) {
          return Fail(ErrorKind::kInvalidArgument, "subnet %s is IPv6: create the network with --ipv6", subnet.c_str());
        }
        (v6 ? want_subnet6 : want_subnet) = p;
      }
      if (!gateway.empty()) {
        MOAT_ASSIGN_OR_RETURN(net::IpAddr g, net::IpAddr::Parse(gateway));
        (g.IsV4() ? want_gateway : want_gateway6) = g;
      }
    }
  }
  std::unique_lock lock(mu_);
  for (const auto& [id, other] : by_id_) {
    if (other->name == name) {
      return Fail(ErrorKind::kConflict, "network with name %s already exists", name.c_str());
    }
    if (other->bridge == n->bridge) {
      return Fail(ErrorKind::kConflict, "bridge %s is used by network %s", n->bridge.c_str(), other->name.c_str());
    }
  }
  if (want_subnet) {
    for (const auto& [id, other] : by_id_) {
      if (other->subnet.Overlaps(*want_subnet)) {
        return Fail(ErrorKind::kInvalidArgument, "Pool overlaps with other one on this address space (network %s, %s)",
                    other->name.c_str(), other->subnet.ToString().c_str());
      }
    }
    n->subnet = want_subnet->Masked();
  } else {
    MOAT_ASSIGN_OR_RETURN(n->subnet, net::PickSubnet(opts_.pools, TakenSubnetsLocked()));
  }
  if (want_gateway) {
    if (!n->subnet.Contains(*want_gateway)) {
      return Fail(ErrorKind::kInvalidArgument, "gateway %s is not in the subnet %s",
                  want_gateway->ToString().c_str(), n->subnet.ToString().c_str());
    }
    n->gateway = *want_gateway;
  } else {
    n->gateway = net::DefaultGateway(n->subnet);
  }
  if (n->ipv6) {
    if (!want_subnet6) {
      // A unique local /64 of the network's own (fdXX:XXXX:XXXX:1::/64, from its id).
      std::string h = n->id;
      MOAT_ASSIGN_OR_RETURN(want_subnet6, net::IpPrefix::Parse("fd" + h.substr(0, 2) + ":" + h.substr(2, 4) + ":" +
                                                               h.substr(6, 4) + ":1::/64"));
    }
    for (const auto& [id, other] : by_id_) {
      if (other->subnet6 && other->subnet6->Overlaps(*want_subnet6)) {
        return Fail(ErrorKind::kInvalidArgument, "Pool overlaps with other one on this address space (network %s, %s)",
                    other->name.c_str(), other->subnet6->ToString().c_str());
      }
    }
    n->subnet6 = want_subnet6->Masked();
    if (want_gateway6 && !n->subnet6->Contains(*want_gateway6)) {
      return Fail(ErrorKind::kInvalidArgument, "gateway %s is not in the subnet %s", want_gateway6->ToString().c_str(),
                  n->subnet6->ToString().c_str());
    }
    n->gateway6 = want_gateway6 ? *want_gateway6 : net::DefaultGateway(*n->subnet6);
  }
  if (auto r = EnsureBridge(*n, lock); !r) {
    // Nothing half-made stays: the bridge and the rules go again.
    if (firewall_) {
      std::lock_guard fw(fw_mu_);
      (void)firewall_->RemoveNetwork(n->bridge);
    }
    if (auto nl = net::Netlink::Open()) (void)nl->DeleteLink(n->bridge);
    if (dns_) (void)dns_->Unlisten(n->id);
    return Prefixed(r.error(), "network " + name);
  }
  MOAT_TRY(PersistLocked(*n));
  by_id_[n->id] = n;
  events_->Publish(Event{"network", "create", n->id, {{"name", n->name}, {"type", n->driver}}, 0});
  return Json{{"Id", n->id}, {"Warning", ""}};
}

Result<void> Networks::Remove(const std::string& ref) {
  if (ref == "host" || ref == "none" || ref == "bridge") {
    return Fail(ErrorKind::kPermissionDenied, "%s is a pre-defined network and cannot be removed", ref.c_str());
  }
  std::lock_guard lock(mu_);
  MOAT_ASSIGN_OR_RETURN(auto n, FindLocked(ref));
  if (n->predefined) {
    return Fail(ErrorKind::kPermissionDenied, "%s is a pre-defined network and cannot be removed", n->name.c_str());
  }
  if (!n->endpoints.empty()) {
    return Fail(ErrorKind::kPermissionDenied, "error while removing network: network %s id %s has active endpoints",
                n->name.c_str(), n->id.c_str());
  }
  if (dns_) (void)dns_->Unlisten(n->id);
  if (firewall_) {
    std::lock_guard fw(fw_mu_);
    if (auto r = firewall_->RemoveNetwork(n->bridge); !r) return r;
  }
  if (auto nl = net::Netlink::Open()) {
    if (auto r = nl->DeleteLink(n->bridge); !r && r.error().kind != ErrorKind::kNotFound) {
      MOAT_LOG(kWarning, "network %s: delete bridge %s: %s", n->name.c_str(), n->bridge.c_str(),
               r.error().message.c_str());
    }
  }
  ::unlink((data_root_ + "/networks/" + n->id + ".json").c_str());
  by_id_.erase(n->id);
  events_->Publish(Event{"network", "destroy", n->id, {{"name", n->name}, {"type", n->driver}}, 0});
  return {};
}

Result<Json> Networks::Prune(const Json& filters) {
  std::vector<std::string> unused;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, n] : by_id_) {
      if (!n->predefined && n->endpoints.empty() && LabelsMatch(filters, n->labels)) unused.push_back(n->name);
    }
  }
  Json deleted = Json::array();
  for (const auto& name : unused) {
    if (Remove(name)) deleted.push_back(name);
  }
  return Json{{"NetworksDeleted", deleted}};
}

void Networks::PushDnsLocked(const Network& n) {
  if (!dns_) return;
  std::map<std::string, std::vector<net::IpAddr>> records;
  if (!n.predefined) {
    for (const auto& [cid, e] : n.endpoints) {
      for (const auto& name : e.dns_names) {
        records[name].push_back(e.ip);
        if (e.ip6) records[name].push_back(*e.ip6);
      }
    }
  }
  if (auto r = dns_->SetRecords(n.id, records); !r) {
    MOAT_LOG(kWarning, "network %s: dns records: %s", n.name.c_str(), r.error().message.c_str());
  }
}

Result<void> Networks::Publish(Network& n, Endpoint& e, const ContainerNetInfo& c) {
  const ContainerSpec& s = *c.spec;
  std::vector<privsep::PortBinding> bindings = s.ports;
  if (s.publish_all) {
    for (const auto& key : c.exposed_ports) {
      auto pp = privsep::ParsePortProto(key);
      if (!pp) continue;
      bool bound = std::any_of(bindings.begin(), bindings.end(), [&](const privsep::PortBinding& b) {
        return b.container_port == pp->first && b.proto == pp->second;
      });
      if (!bound) {
        privsep::PortBinding b;
        b.container_port = pp->first;
        b.proto = pp->second;
        bindings.push_back(b);
      }
    }
  }
  std::vector<UniqueFd> holds;
  std::vector<net::PortMapping> added;
  auto undo = [&] {
    if (firewall_) {
      std::lock_guard fw(fw_mu_);
      for (const auto& m : added) (void)firewall_->RemovePortMapping(m);
    }
  };
  for (const auto& b : bindings) {
    net::PortMapping m;
    m.proto = b.proto;
    if (b.host_ip.empty()) {
      m.host_ip = *net::IpAddr::Parse("0.0.0.0");
    } else {
      MOAT_ASSIGN_OR_RETURN(m.host_ip, net::IpAddr::Parse(b.host_ip));
    }
    if (!m.host_ip.IsV4() && !e.ip6) continue;  // an IPv6 host address needs an IPv6 network
    m.container_ip = m.host_ip.IsV4() ? e.ip : *e.ip6;
    m.container_port = b.container_port;
    m.bridge = n.bridge;
    Result<std::pair<UniqueFd, uint16_t>> held = Fail(ErrorKind::kInternal, "no port");
    if (b.proto == "sctp") {
      held = std::pair{UniqueFd(), b.host_port};
    } else if (b.host_port_end) {
      for (uint32_t p = b.host_port; p <= b.host_port_end; ++p) {
        held = HoldPort(b.proto, m.host_ip, static_cast<uint16_t>(p));
        if (held || held.error().kind != ErrorKind::kConflict) break;
      }
    } else {
      held = HoldPort(b.proto, m.host_ip, b.host_port);
    }
    if (!held) {
      undo();
      return Prefixed(held.error(), "driver failed programming external connectivity on endpoint " + c.name);
    }
    m.host_port = held->second;
    if (held->first) holds.push_back(std::move(held->first));
    if (firewall_) {
      std::unique_lock fw(fw_mu_);
      if (auto r = firewall_->AddPortMapping(m); !r) {
        fw.unlock();
        undo();
        return r;
      }
    }
    added.push_back(m);
    e.ports.push_back(m);
    e.port_keys.push_back(std::to_string(b.container_port) + "/" + b.proto);
    if (b.host_ip.empty() && e.ip6) {
      // Every address: IPv6's too, on the same port, as dockerd publishes on 0.0.0.0 and ::.
      net::PortMapping m6 = m;
      m6.host_ip = *net::IpAddr::Parse("::");
      m6.container_ip = *e.ip6;
      if (b.proto != "sctp") {
        auto held6 = HoldPort(b.proto, m6.host_ip, m.host_port);
        if (!held6) {
          undo();
          return Prefixed(held6.error(), "driver failed programming external connectivity on endpoint " + c.name);
        }
        holds.push_back(std::move(held6->first));
      }
      if (firewall_) {
        std::unique_lock fw(fw_mu_);
        if (auto r = firewall_->AddPortMapping(m6); !r) {
          fw.unlock();
          undo();
          return r;
        }
      }
      added.push_back(m6);
      e.ports.push_back(m6);
      e.port_keys.push_back(std::to_string(b.container_port) + "/" + b.proto);
    }
  }
  std::lock_guard lock(mu_);
  auto& h = port_holds_[c.id];
  for (auto& fd : holds) h.push_back(std::move(fd));
  return {};
}

Result<void> Networks::Join(Network& n, const ContainerNetInfo& c, const EndpointSpec& ep, int netns_fd,
                            const std::string& ifname, bool primary, Endpoint* out) {
  Endpoint e;
  e.container_id = c.id;
  e.container_name = c.name;
  e.endpoint_id = RandomId();
  e.ifname = ifname;
  e.veth = "mv" + ShortHex(11);
  e.aliases = ep.aliases;
  {
    std::lock_guard lock(mu_);
    std::set<net::IpAddr> used, reserved{n.gateway};
    for (const auto& [cid, other] : n.endpoints) used.insert(other.ip);
    std::optional<net::IpAddr> wanted;
    if (!ep.ipv4.empty()) {
      MOAT_ASSIGN_OR_RETURN(wanted, net::IpAddr::Parse(ep.ipv4));
      if (n.predefined) {
        return Fail(ErrorKind::kInvalidArgument, "user specified IP address is supported on user defined networks only");
      }
    }
    MOAT_ASSIGN_OR_RETURN(e.ip, net::Allocate(n.subnet, used, reserved, n.last_ip, wanted));
    n.last_ip = e.ip;
    if (n.subnet6 && n.gateway6) {
      std::set<net::IpAddr> used6, reserved6{*n.gateway6};
      for (const auto& [cid, other] : n.endpoints) {
        if (other.ip6) used6.insert(*other.ip6);
      }
      std::optional<net::IpAddr> wanted6;
      if (!ep.ipv6.empty()) {
        MOAT_ASSIGN_OR_RETURN(wanted6, net::IpAddr::Parse(ep.ipv6));
      }
      MOAT_ASSIGN_OR_RETURN(e.ip6, net::Allocate(*n.subnet6, used6, reserved6, n.last_ip6, wanted6));
      n.last_ip6 = e.ip6;
    }
    n.endpoints[c.id] = e;  // the lease, before anything can collide with it
  }
  auto release = [&] {
    std::lock_guard lock(mu_);
    n.endpoints.erase(c.id);
  };
  // Docker's MAC derived from the address, unless this endpoint (or, for the primary network,
  // the container) asks for one.
  std::string want_mac = !ep.mac.empty() ? ep.mac : primary ? c.spec->mac_address : "";
  if (want_mac.empty()) {
    e.mac = net::MacForIp(e.ip);
  } else {
    auto mac = net::ParseMac(want_mac);
    if (!mac) {
      release();
      return Fail(mac.error());
    }
    e.mac = *mac;
  }
  auto wired = [&]() -> Result<void> {
    MOAT_ASSIGN_OR_RETURN(net::Netlink host, net::Netlink::Open());
    if (e.ip6) {
      // The container's IPv6 addresses without duplicate address detection (usable at once).
      (void)net::InNetns(netns_fd, [] {
        (void)sys::WriteFile("/proc/sys/net/ipv6/conf/all/accept_dad", "0");
        (void)sys::WriteFile("/proc/sys/net/ipv6/conf/default/accept_dad", "0");
        return Result<void>{};
      });
    }
    MOAT_TRY(host.CreateVeth(e.veth, ifname, netns_fd, e.mac, LinkMtu(n.mtu)));
    auto wire_host = [&]() -> Result<void> {
      MOAT_TRY(host.SetMaster(e.veth, n.bridge));
      if (!n.icc) MOAT_TRY(host.SetBridgePortIsolated(e.veth, true));
      MOAT_TRY(host.SetUp(e.veth, true));
      MOAT_ASSIGN_OR_RETURN(net::Netlink inside, net::Netlink::OpenIn(netns_fd));
      MOAT_TRY(inside.AddAddress(ifname, net::IpPrefix{e.ip, n.subnet.len}));
      if (e.ip6) MOAT_TRY(inside.AddAddress(ifname, net::IpPrefix{*e.ip6, n.subnet6->len}));
      MOAT_TRY(inside.SetUp(ifname, true));
      if (primary && !n.internal) {
        MOAT_TRY(inside.AddRoute(*net::IpPrefix::Parse("0.0.0.0/0"), n.gateway, ifname, n.mtu));
        if (e.ip6)
          MOAT_TRY(inside.AddRoute(*net::IpPrefix::Parse("::/0"), n.gateway6, ifname, n.mtu));
      }
      return {};
    }();
    if (!wire_host) {
      (void)host.DeleteLink(e.veth);
      return wire_host;
    }
    return {};
  }();
  if (!wired) {
    release();
    return Prefixed(wired.error(), "network " + n.name);
  }
  e.dns_names = {c.name, c.id.substr(0, 12)};
  for (const auto& a : ep.aliases) e.dns_names.push_back(a);
  if (!n.predefined) {
    for (const auto& d : c.spec->dns) {
      if (auto a = net::IpAddr::Parse(d)) e.dns.push_back(*a);
    }
  }
  if (primary) {
    if (auto r = Publish(n, e, c); !r) {
      if (auto nl = net::Netlink::Open()) (void)nl->DeleteLink(e.veth);
      release();
      return r;
    }
  }
  {
    std::lock_guard lock(mu_);
    n.endpoints[c.id] = e;
    if (auto r = PersistLocked(n); !r) MOAT_LOG(kWarning, "network %s: %s", n.name.c_str(), r.error().message.c_str());
    PushDnsLocked(n);
    if (dns_ && !e.dns.empty()) {
      if (auto r = dns_->SetClientUpstream(n.id, e.ip, e.dns); !r) {
        MOAT_LOG(kWarning, "container %s: dns servers: %s", c.id.c_str(), r.error().message.c_str());
      }
    }
  }
  events_->Publish(Event{"network", "connect", n.id, {{"container", c.id}, {"name", n.name}, {"type", n.driver}}, 0});
  *out = e;
  return {};
}

void Networks::Leave(Network& n, const std::string& container_id, bool delete_link) {
  Endpoint e;
  {
    std::lock_guard lock(mu_);
    auto it = n.endpoints.find(container_id);
    if (it == n.endpoints.end()) return;
    e = it->second;
    if (firewall_) {
      std::lock_guard fw(fw_mu_);
      for (const auto& m : e.ports) {
        if (auto r = firewall_->RemovePortMapping(m); !r) {
          MOAT_LOG(kWarning, "unpublish %u: %s", m.host_port, r.error().message.c_str());
        }
      }
    }
    if (dns_ && !e.dns.empty()) (void)dns_->SetClientUpstream(n.id, e.ip, {});
    n.endpoints.erase(it);
    if (auto r = PersistLocked(n); !r) MOAT_LOG(kWarning, "network %s: %s", n.name.c_str(), r.error().message.c_str());
    PushDnsLocked(n);
  }
  // A veth dies with its namespace (the kernel deletes both ends when the namespace goes): only
  // a namespace that lives on (disconnect) needs it deleted here, which costs an RCU grace
  // period or two.
  if (delete_link) {
    if (auto nl = net::Netlink::Open()) {
      if (auto r = nl->DeleteLink(e.veth); !r && r.error().kind != ErrorKind::kNotFound) {
        MOAT_LOG(kWarning, "delete %s: %s", e.veth.c_str(), r.error().message.c_str());
      }
    }
  }
  events_->Publish(Event{"network", "disconnect", n.id, {{"container", container_id}, {"name", n.name}, {"type", n.driver}}, 0});
}

Result<Sandbox> Networks::SetUp(const ContainerNetInfo& c) {
  const ContainerSpec& s = *c.spec;
  Sandbox sb;
  std::string path = NetnsPath(c.id);
  (void)net::RemoveNamedNetns(path);  // a leftover of a crash
  MOAT_ASSIGN_OR_RETURN(UniqueFd ns, net::CreateNamedNetns(path));
  sb.netns_path = path;
  // The networks to join: the primary one first.
  std::vector<std::pair<std::shared_ptr<Network>, EndpointSpec>> joins;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, ep] : JoinList(s)) {
      auto n = FindLocked(name);
      if (!n) {
        (void)net::RemoveNamedNetns(path);
        return Fail(n.error());
      }
      joins.emplace_back(*n, ep);
    }
  }
  std::vector<std::pair<std::shared_ptr<Network>, Endpoint>> joined;
  auto undo = [&] {
    for (auto& [n, e] : joined) Leave(*n, c.id, false);
    {
      std::lock_guard lock(mu_);
      port_holds_.erase(c.id);
    }
    (void)net::RemoveNamedNetns(path);
  };
  for (size_t i = 0; i < joins.size(); ++i) {
    Endpoint e;
    if (auto r = Join(*joins[i].first, c, joins[i].second, ns.get(), "eth" + std::to_string(i), i == 0, &e); !r) {
      undo();
      return Fail(r.error());
    }
    joined.emplace_back(joins[i].first, e);
  }
  // /etc/hosts and /etc/resolv.conf.
  std::string hosts =
      "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
      "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";
  std::optional<net::IpAddr> gateway;
  if (!joined.empty()) gateway = joined[0].first->gateway;
  for (const auto& h : s.extra_hosts) {
    size_t colon = h.find(':');
    std::string ip = h.substr(colon + 1);
    if (ip == "host-gateway") ip = gateway ? gateway->ToString() : "127.0.0.1";
    hosts += ip + "\t" + h.substr(0, colon) + "\n";
  }
  if (!joined.empty() && joined[0].first->predefined) {
    // --link on the default bridge: the linked container's address under its name and alias.
    std::lock_guard lock(mu_);
    for (const auto& l : s.links) {
      auto parts = StrSplit(l, ':');
      std::string target = parts[0];
      if (!target.empty() && target[0] == '/') target.erase(0, 1);
      std::string alias = parts.size() > 1 ? parts[1] : target;
      if (!alias.empty() && alias[0] == '/') alias = alias.substr(alias.rfind('/') + 1);
      for (const auto& [cid, e] : joined[0].first->endpoints) {
        if (e.container_name == target || cid.rfind(target, 0) == 0) {
          hosts += e.ip.ToString() + "\t" + alias + (alias != target ? " " + target : "") + " " + cid.substr(0, 12) + "\n";
        }
      }
    }
  }
  if (!joined.empty()) {
    std::string fqdn = c.domainname.empty() ? c.hostname : c.hostname + "." + c.domainname;
    hosts += joined[0].second.ip.ToString() + "\t" + fqdn + (fqdn != c.hostname ? " " + c.hostname : "") + "\n";
  }
  sb.hosts = hosts;
  std::string resolv;
  auto host_text = sys::ReadFile("/etc/resolv.conf").value_or("");
  std::vector<std::string> search, options, host_servers;
  for (const auto& line : StrSplit(host_text, '\n')) {
    auto words = StrSplit(line, ' ');
    if (words.size() >= 2 && words[0] == "nameserver") {
      host_servers.push_back(words[1]);
    } else if (words.size() >= 2 && (words[0] == "search" || words[0] == "domain")) {
      search.assign(words.begin() + 1, words.end());
    } else if (words.size() >= 2 && words[0] == "options") {
      options.assign(words.begin() + 1, words.end());
    }
  }
  if (!s.dns_search.empty()) search = s.dns_search;
  if (!s.dns_options.empty()) options = s.dns_options;
  std::vector<std::string> servers;
  bool embedded = !joined.empty() && !joined[0].first->predefined && dns_up_;
  if (embedded) {
    servers.push_back(joined[0].first->gateway.ToString());
  } else if (!s.dns.empty()) {
    servers = s.dns;
  } else {
    for (const auto& ns_text : host_servers) {
      auto a = net::IpAddr::Parse(ns_text);
      if (a && a->IsLoopback()) {
        // A loopback resolver of the host is not reachable from the container: the default
        // bridge's embedded resolver (on the gateway) forwards to it.
        if (gateway && dns_up_) servers.push_back(gateway->ToString());
        continue;
      }
      if (a && !a->IsV4()) continue;
      servers.push_back(ns_text);
    }
    if (joined.empty()) servers.clear();
  }
  // The order is the resolver's order: duplicates (several loopback servers) go, the rest stays.
  std::vector<std::string> unique_servers;
  for (const auto& sv : servers) {
    if (std::find(unique_servers.begin(), unique_servers.end(), sv) == unique_servers.end()) unique_servers.push_back(sv);
  }
  for (const auto& sv : unique_servers) resolv += "nameserver " + sv + "\n";
  if (!search.empty()) resolv += "search " + StrJoin(search, " ") + "\n";
  if (!options.empty()) resolv += "options " + StrJoin(options, " ") + "\n";
  if (embedded && !s.dns.empty()) resolv += "# ExtServers: [" + StrJoin(s.dns, " ") + "]\n";
  sb.resolv_conf = resolv;
  return sb;
}

void Networks::TearDown(const std::string& container_id) {
  std::vector<std::shared_ptr<Network>> nets;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, n] : by_id_) {
      if (n->endpoints.count(container_id)) nets.push_back(n);
    }
  }
  for (auto& n : nets) Leave(*n, container_id, false);
  {
    std::lock_guard lock(mu_);
    port_holds_.erase(container_id);
  }
  if (auto r = net::RemoveNamedNetns(NetnsPath(container_id)); !r) {
    MOAT_LOG(kWarning, "container %s: remove netns: %s", container_id.c_str(), r.error().message.c_str());
  }
}

Result<void> Networks::Connect(const ContainerNetInfo& c, const std::string& network, const EndpointSpec& ep) {
  std::shared_ptr<Network> n;
  int index = 0;
  {
    std::lock_guard lock(mu_);
    MOAT_ASSIGN_OR_RETURN(n, FindLocked(network));
    if (n->endpoints.count(c.id)) {
      return Fail(ErrorKind::kConflict, "endpoint with name %s already exists in network %s", c.name.c_str(),
                  n->name.c_str());
    }
    for (const auto& [id, other] : by_id_) index += other->endpoints.count(c.id) ? 1 : 0;
  }
  MOAT_ASSIGN_OR_RETURN(UniqueFd ns, net::OpenNamedNetns(NetnsPath(c.id)));
  // The next free ethN inside.
  std::string ifname;
  {
    MOAT_ASSIGN_OR_RETURN(net::Netlink inside, net::Netlink::OpenIn(ns.get()));
    for (int i = index;; ++i) {
      ifname = "eth" + std::to_string(i);
      if (!inside.GetLink(ifname)) break;
    }
  }
  Endpoint e;
  return Join(*n, c, ep, ns.get(), ifname, false, &e);
}

Result<void> Networks::Disconnect(const std::string& container_id, const std::string& network) {
  std::shared_ptr<Network> n;
  {
    std::lock_guard lock(mu_);
    MOAT_ASSIGN_OR_RETURN(n, FindLocked(network));
    if (!n->endpoints.count(container_id)) {
      return Fail(ErrorKind::kNotFound, "container %s is not connected to network %s", container_id.c_str(),
                  n->name.c_str());
    }
  }
  Leave(*n, container_id, true);
  return {};
}

std::vector<std::string> Networks::AttachedNetworks(const std::string& container_id) {
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, n] : by_id_) {
    if (n->endpoints.count(container_id)) out.push_back(n->name);
  }
  return out;
}

Json Networks::SettingsJson(const std::string& cid, const ContainerSpec& spec) {
  Json networks = Json::object();
  Json ports = Json::object();
  std::string mode = privsep::PrimaryNetwork(spec);
  Json top = {{"Bridge", ""}, {"SandboxID", ""}, {"HairpinMode", false}, {"LinkLocalIPv6Address", ""},
              {"LinkLocalIPv6PrefixLen", 0}, {"SandboxKey", ""}, {"SecondaryIPAddresses", nullptr},
              {"SecondaryIPv6Addresses", nullptr}, {"EndpointID", ""}, {"Gateway", ""}, {"GlobalIPv6Address", ""},
              {"GlobalIPv6PrefixLen", 0}, {"IPAddress", ""}, {"IPPrefixLen", 0}, {"IPv6Gateway", ""},
              {"MacAddress", ""}};
  for (const auto& b : spec.ports) ports[std::to_string(b.container_port) + "/" + b.proto] = nullptr;
  auto endpoint_json = [](const EndpointSpec* ep) {
    return Json{{"IPAMConfig", ep && (!ep->ipv4.empty() || !ep->ipv6.empty())
                                   ? Json{{"IPv4Address", ep->ipv4}, {"IPv6Address", ep->ipv6}}
                                   : Json(nullptr)},
                {"Links", ep && !ep->links.empty() ? Json(ep->links) : Json(nullptr)},
                {"Aliases", ep && !ep->aliases.empty() ? Json(ep->aliases) : Json(nullptr)},
                {"NetworkID", ""}, {"EndpointID", ""}, {"Gateway", ""}, {"IPAddress", ""}, {"IPPrefixLen", 0},
                {"IPv6Gateway", ""}, {"GlobalIPv6Address", ""}, {"GlobalIPv6PrefixLen", 0}, {"MacAddress", ""},
                {"DriverOpts", nullptr}};
  };
  std::lock_guard lock(mu_);
  if (!OwnStack(mode) || mode == "none") {
    if (mode.rfind("container:", 0) != 0) {
      Json j = endpoint_json(nullptr);
      j["NetworkID"] = mode;
      networks[mode] = j;
    }
    top["Networks"] = networks;
    top["Ports"] = Json::object();
    return top;
  }
  // Desired networks (what the container joins when it runs), with live data where it runs.
  auto wanted_list = JoinList(spec);
  std::vector<std::pair<std::string, const EndpointSpec*>> wanted;
  for (const auto& [name, ep] : wanted_list) {
    auto it = spec.endpoints.find(name);
    wanted.emplace_back(name, it != spec.endpoints.end() ? &it->second : nullptr);
  }
  bool first = true;
  for (const auto& [name, ep] : wanted) {
    auto n = FindLocked(name);
    Json j = endpoint_json(ep);
    std::string key = n ? (*n)->name : name;
    if (n) {
      j["NetworkID"] = (*n)->id;
      if (!(*n)->predefined) {
        // Containers answer to their short id on user-defined networks (docker-compose looks
        // for it before the container runs).
        Json aliases = ep && !ep->aliases.empty() ? Json(ep->aliases) : Json::array();
        if (std::find(aliases.begin(), aliases.end(), Json(cid.substr(0, 12))) == aliases.end()) {
          aliases.push_back(cid.substr(0, 12));
        }
        j["Aliases"] = aliases;
      }
      auto it = (*n)->endpoints.find(cid);
      if (it != (*n)->endpoints.end()) {
        const Endpoint& e = it->second;
        j["EndpointID"] = e.endpoint_id;
        j["Gateway"] = (*n)->internal ? "" : (*n)->gateway.ToString();
        j["IPAddress"] = e.ip.ToString();
        j["IPPrefixLen"] = (*n)->subnet.len;
        j["MacAddress"] = net::FormatMac(e.mac);
        if (e.ip6 && (*n)->subnet6) {
          j["GlobalIPv6Address"] = e.ip6->ToString();
          j["GlobalIPv6PrefixLen"] = (*n)->subnet6->len;
          j["IPv6Gateway"] = (*n)->internal || !(*n)->gateway6 ? "" : (*n)->gateway6->ToString();
        }
        if (first) {
          for (const auto& k : {"EndpointID", "Gateway", "IPAddress", "IPPrefixLen", "MacAddress", "GlobalIPv6Address",
                                "GlobalIPv6PrefixLen", "IPv6Gateway"}) {
            top[k] = j[k];
          }
          top["SandboxKey"] = NetnsPath(cid);
          top["SandboxID"] = cid;
          if ((*n)->predefined) top["Bridge"] = (*n)->bridge;
          for (size_t i = 0; i < e.ports.size(); ++i) {
            const auto& p = e.ports[i];
            Json& list = ports[e.port_keys[i]];
            if (!list.is_array()) list = Json::array();
            list.push_back({{"HostIp", p.host_ip.ToString()}, {"HostPort", std::to_string(p.host_port)}});
          }
        }
      }
    }
    networks[key] = j;
    first = false;
  }
  top["Networks"] = networks;
  top["Ports"] = ports;
  return top;
}

void Networks::Readopt(const std::string& container_id) {
  std::lock_guard lock(mu_);
  for (auto& [id, n] : by_id_) {
    auto it = n->endpoints.find(container_id);
    if (it == n->endpoints.end()) continue;
    for (const auto& m : it->second.ports) {
      if (m.proto != "sctp") {
        if (auto held = HoldPort(m.proto, m.host_ip, m.host_port)) {
          port_holds_[container_id].push_back(std::move(held->first));
        } else {
          MOAT_LOG(kWarning, "container %s: port %u: %s", container_id.c_str(), m.host_port,
                   held.error().message.c_str());
        }
      }
      if (firewall_) {
        std::lock_guard fw(fw_mu_);
        (void)firewall_->AddPortMapping(m);
      }
    }
  }
}

void Networks::Sweep(const std::set<std::string>& running) {
  std::vector<std::pair<std::shared_ptr<Network>, std::string>> stale;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, n] : by_id_) {
      for (const auto& [cid, e] : n->endpoints) {
        if (!running.count(cid)) stale.emplace_back(n, cid);
      }
    }
  }
  for (auto& [n, cid] : stale) {
    MOAT_LOG(kInfo, "network %s: container %s stopped while moatd was down, its endpoint goes", n->name.c_str(),
             cid.substr(0, 12).c_str());
    Leave(*n, cid, true);
  }
  // Namespaces of containers that no longer run.
  if (DIR* d = opendir((exec_root_ + "/netns").c_str())) {
    std::vector<std::string> names;
    while (dirent* e = readdir(d)) {
      std::string f = e->d_name;
      if (f != "." && f != ".." && !running.count(f)) names.push_back(f);
    }
    closedir(d);
    for (const auto& f : names) (void)net::RemoveNamedNetns(NetnsPath(f));
  }
  // Port mappings nobody owns.
  if (firewall_) {
    std::set<net::PortMapping> expected;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, n] : by_id_) {
        for (const auto& [cid, e] : n->endpoints) {
          for (const auto& m : e.ports) expected.insert(m);
        }
      }
    }
    std::lock_guard fw(fw_mu_);
    if (auto live = firewall_->PortMappings()) {
      for (const auto& m : *live) {
        if (!expected.count(m)) (void)firewall_->RemovePortMapping(m);
      }
    }
  }
}

}  // namespace moat::daemon::core
