// Privileged (root) tests of the nftables firewall. Every test body runs in a forked child that
// has unshared its network namespace first: nftables state, links and sysctls are per network
// namespace, so the host's rule set and configuration are never touched. Extra namespaces
// ("containers", "client") are made by the child with unshare and kept alive by fds; they die
// with the child.
#include "net/firewall.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "base/strings.h"
#include "base/sys/process.h"
#include "base/unique_fd.h"

namespace moat::net {
namespace {

ino_t NetnsInode(const char* path) {
  struct stat st {};
  if (stat(path, &st) != 0) return 0;
  return st.st_ino;
}

// Runs `body` in a forked child inside a fresh network namespace (loopback up) and fails the
// test if the body failed, crashed, or ran longer than 90 s.
void RunInNewNetns(const std::function<void()>& body) {
  const ino_t host_netns = NetnsInode("/proc/self/ns/net");
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (!sys::unshare(CLONE_NEWNET) || NetnsInode("/proc/self/ns/net") == host_netns) {
      fprintf(stderr, "unshare(CLONE_NEWNET) failed\n");
      _exit(2);
    }
    if (system("ip link set lo up") != 0) _exit(2);
    body();
    fflush(stdout);
    fflush(stderr);
    _exit(::testing::Test::HasFailure() ? 1 : 0);
  }
  int status = 0;
  for (int i = 0; i < 9000; ++i) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (i == 8999) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      FAIL() << "test child timed out";
    }
    usleep(10000);
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "test child failed (status " << status << "), see its output above";
}

IpAddr Addr(const char* text) {
  IpAddr a;
  a.family = strchr(text, ':') ? AF_INET6 : AF_INET;
  EXPECT_EQ(inet_pton(a.family, text, a.bytes.data()), 1) << text;
  return a;
}

IpPrefix Prefix(const char* addr, int len) { return IpPrefix{Addr(addr), len}; }

PortMapping Mapping(const char* proto, const char* host_ip, uint16_t host_port,
                    const char* container_ip, uint16_t container_port, const char* bridge) {
  PortMapping m;
  m.proto = proto;
  m.host_ip = Addr(host_ip);
  m.host_port = host_port;
  m.container_ip = Addr(container_ip);
  m.container_port = container_port;
  m.bridge = bridge;
  return m;
}

NetworkRules Net(const char* bridge, const char* addr, int len) {
  NetworkRules n;
  n.bridge = bridge;
  n.subnet = Prefix(addr, len);
  return n;
}

std::string DumpOrDie(Firewall& fw) {
  Result<std::string> d = fw.Dump();
  EXPECT_TRUE(d.has_value()) << d.error().message;
  return d.has_value() ? *d : "";
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(FirewallTest, OpenCreatesTablesAndIsIdempotent) {
  RunInNewNetns([] {
    Result<Firewall> fw = Firewall::Open("moat-t-open");
    ASSERT_TRUE(fw.has_value()) << fw.error().message;
    std::string dump = DumpOrDie(*fw);
    EXPECT_TRUE(Contains(dump, "table ip moat-t-open {")) << dump;
    EXPECT_TRUE(Contains(dump, "table ip6 moat-t-open {")) << dump;
    EXPECT_TRUE(Contains(dump, "type filter hook forward priority filter; policy accept;"));
    EXPECT_TRUE(Contains(dump, "type nat hook prerouting priority dstnat; policy accept;"));
    EXPECT_TRUE(Contains(dump, "type nat hook postrouting priority srcnat; policy accept;"));
    EXPECT_TRUE(Contains(dump, "iifname != \"lo\" ip daddr 127.0.0.0/8 drop")) << dump;

    ASSERT_TRUE(fw->AddNetwork(Net("mbr0", "172.30.0.0", 16)).has_value());
    ASSERT_TRUE(fw->AddPortMapping(Mapping("tcp", "0.0.0.0", 8080, "172.30.0.2", 80, "mbr0")));
    std::string before = DumpOrDie(*fw);
    // A second Open (moatd restart) keeps networks and mappings and changes nothing.
    Result<Firewall> again = Firewall::Open("moat-t-open");
    ASSERT_TRUE(again.has_value()) << again.error().message;
    EXPECT_EQ(DumpOrDie(*again), before);
    ASSERT_TRUE(again->AddNetwork(Net("mbr0", "172.30.0.0", 16)).has_value());
    ASSERT_TRUE(again->AddPortMapping(Mapping("tcp", "0.0.0.0", 8080, "172.30.0.2", 80, "mbr0")));
    EXPECT_EQ(DumpOrDie(*again), before);
    Result<std::vector<PortMapping>> maps = again->PortMappings();
    ASSERT_TRUE(maps.has_value()) << maps.error().message;
    EXPECT_EQ(maps->size(), 1u);

    EXPECT_EQ(Firewall::Open("bad name").error().kind, ErrorKind::kInvalidArgument);
  });
}

TEST(FirewallTest, AddAndRemoveNetworks) {
  RunInNewNetns([] {
    Result<Firewall> fw = Firewall::Open("moat-t-net");
    ASSERT_TRUE(fw.has_value()) << fw.error().message;
    NetworkRules a = Net("mbr-a", "172.30.1.0", 24);
    NetworkRules a6 = Net("mbr-a", "fd00:30:1::", 64);
    NetworkRules b = Net("mbr-b", "172.30.2.0", 24);
    b.internal = true;
    b.icc = false;
    ASSERT_TRUE(fw->AddNetwork(a).has_value());
    ASSERT_TRUE(fw->AddNetwork(a6).has_value());
    Result<void> rb = fw->AddNetwork(b);
    ASSERT_TRUE(rb.has_value()) << rb.error().message;
    EXPECT_EQ(*fw->NetworkBridges(), (std::vector<std::string>{"mbr-a", "mbr-b"}));
    std::string dump = DumpOrDie(*fw);
    EXPECT_TRUE(Contains(dump, "172.30.1.0/24 comment \"mbr-a\" : jump post-mbr-a")) << dump;
    EXPECT_TRUE(Contains(dump, "fd00:30:1::/64 comment \"mbr-a\" : jump post-mbr-a")) << dump;
    EXPECT_TRUE(Contains(dump, "oifname != \"mbr-a\" masquerade")) << dump;
    EXPECT_TRUE(Contains(dump, "oifname != \"mbr-b\" drop")) << dump;  // internal
    EXPECT_TRUE(Contains(dump, "iifname != \"mbr-b\" drop")) << dump;  // internal
    EXPECT_FALSE(Contains(dump, "oifname != \"mbr-b\" masquerade")) << dump;

    // Re-adding with another subnet replaces the old one.
    ASSERT_TRUE(fw->AddNetwork(Net("mbr-a", "172.30.9.0", 24)).has_value());
    dump = DumpOrDie(*fw);
    EXPECT_FALSE(Contains(dump, "172.30.1.0/24")) << dump;
    EXPECT_TRUE(Contains(dump, "172.30.9.0/24 comment \"mbr-a\"")) << dump;

    std::string b_before = dump.substr(dump.find("chain from-mbr-b"));
    b_before = b_before.substr(0, b_before.find('}'));
    ASSERT_TRUE(fw->RemoveNetwork("mbr-a").has_value());
    EXPECT_EQ(*fw->NetworkBridges(), (std::vector<std::string>{"mbr-b"}));
    dump = DumpOrDie(*fw);
    EXPECT_FALSE(Contains(dump, "mbr-a")) << dump;
    EXPECT_TRUE(Contains(dump, b_before)) << dump;
    // Absent networks: success.
    EXPECT_TRUE(fw->RemoveNetwork("mbr-a").has_value());
    EXPECT_TRUE(fw->RemoveNetwork("never-there").has_value());
    EXPECT_EQ(DumpOrDie(*fw), dump);
    ASSERT_TRUE(fw->RemoveNetwork("mbr-b").has_value());
    EXPECT_TRUE(fw->NetworkBridges()->empty());
  });
}

TEST(FirewallTest, PortMappingsRoundTrip) {
  RunInNewNetns([] {
    Result<Firewall> fw = Firewall::Open("moat-t-pm");
    ASSERT_TRUE(fw.has_value()) << fw.error().message;
    std::vector<PortMapping> want = {
        Mapping("tcp", "0.0.0.0", 8080, "172.30.0.2", 80, "mbr0"),
        Mapping("udp", "0.0.0.0", 5353, "172.30.0.2", 53, "mbr0"),
        Mapping("sctp", "0.0.0.0", 9999, "172.30.0.3", 9, "mbr0"),
        Mapping("tcp", "10.1.2.3", 8080, "172.30.0.3", 8000, "mbr0"),
        Mapping("tcp", "127.0.0.1", 8081, "172.30.0.2", 80, "mbr-other"),
        Mapping("tcp", "::", 8080, "fd00:30::2", 80, "mbr0"),
        Mapping("tcp", "fd00:99::1", 443, "fd00:30::2", 8443, "mbr0"),
    };
    for (const PortMapping& m : want) {
      Result<void> r = fw->AddPortMapping(m);
      ASSERT_TRUE(r.has_value()) << r.error().message;
    }
    std::sort(want.begin(), want.end());
    Result<std::vector<PortMapping>> got = fw->PortMappings();
    ASSERT_TRUE(got.has_value()) << got.error().message;
    EXPECT_EQ(*got, want);

    // "::" for an IPv4 container publishes nothing.
    ASSERT_TRUE(fw->AddPortMapping(Mapping("tcp", "::", 7000, "172.30.0.2", 80, "mbr0")));
    EXPECT_EQ(*fw->PortMappings(), want);

    // The same host port to another container: a conflict, nothing changes.
    std::string before = DumpOrDie(*fw);
    Result<void> conflict =
        fw->AddPortMapping(Mapping("tcp", "0.0.0.0", 8080, "172.30.0.9", 80, "mbr0"));
    ASSERT_FALSE(conflict.has_value());
    EXPECT_EQ(conflict.error().kind, ErrorKind::kInternal);
    EXPECT_TRUE(StartsWith(conflict.error().message,
                           "add port mapping tcp 0.0.0.0:8080 -> 172.30.0.9:80: "))
        << conflict.error().message;
    EXPECT_EQ(DumpOrDie(*fw), before);
    // Removing that (absent) mapping leaves the one holding the port alone.
    EXPECT_TRUE(fw->RemovePortMapping(Mapping("tcp", "0.0.0.0", 8080, "172.30.0.9", 80, "mbr0")));
    EXPECT_EQ(*fw->PortMappings(), want);

    // Remove two, then remove them again (absent: success).
    PortMapping v4 = Mapping("tcp", "0.0.0.0", 8080, "172.30.0.2", 80, "mbr0");
    PortMapping v6 = Mapping("tcp", "fd00:99::1", 443, "fd00:30::2", 8443, "mbr0");
    for (int i = 0; i < 2; ++i) {
      Result<void> r = fw->RemovePortMapping(v4);
      ASSERT_TRUE(r.has_value()) << r.error().message;
      ASSERT_TRUE(fw->RemovePortMapping(v6).has_value());
    }
    std::erase(want, v4);
    std::erase(want, v6);
    EXPECT_EQ(*fw->PortMappings(), want);

    EXPECT_EQ(
        fw->AddPortMapping(Mapping("icmp", "0.0.0.0", 1, "172.30.0.2", 1, "mbr0")).error().kind,
        ErrorKind::kInvalidArgument);
    EXPECT_EQ(fw->AddPortMapping(Mapping("tcp", "10.0.0.1", 1, "fd00::2", 1, "mbr0")).error().kind,
              ErrorKind::kInvalidArgument);
    EXPECT_EQ(
        fw->AddPortMapping(Mapping("tcp", "0.0.0.0", 1, "172.30.0.2", 1, "x\" }; flush ruleset"))
            .error()
            .kind,
        ErrorKind::kInvalidArgument);
  });
}

TEST(FirewallTest, FailedTransactionLeavesPreviousState) {
  RunInNewNetns([] {
    Result<Firewall> fw = Firewall::Open("moat-t-atomic");
    ASSERT_TRUE(fw.has_value()) << fw.error().message;
    ASSERT_TRUE(fw->AddNetwork(Net("mbr-a", "172.30.1.0", 24)).has_value());
    std::string before = DumpOrDie(*fw);

    NetworkRules bad = Net("bad bridge\"", "172.30.2.0", 24);
    EXPECT_EQ(fw->AddNetwork(bad).error().kind, ErrorKind::kInvalidArgument);
    EXPECT_EQ(DumpOrDie(*fw), before);

    // Valid names, but the subnet overlaps mbr-a's: nft rejects the last command of the
    // transaction, and none of the earlier ones (chains, bridge set element) may remain.
    Result<void> r = fw->AddNetwork(Net("mbr-b", "172.30.1.0", 25));
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().kind, ErrorKind::kInternal);
    EXPECT_TRUE(StartsWith(r.error().message, "add network mbr-b 172.30.1.0/25: "))
        << r.error().message;
    EXPECT_EQ(DumpOrDie(*fw), before);
    EXPECT_EQ(*fw->NetworkBridges(), std::vector<std::string>{"mbr-a"});
  });
}

TEST(FirewallTest, RemoveAllLeavesNoTable) {
  RunInNewNetns([] {
    Result<Firewall> fw = Firewall::Open("moat-t-rm");
    ASSERT_TRUE(fw.has_value()) << fw.error().message;
    ASSERT_TRUE(fw->AddNetwork(Net("mbr0", "172.30.0.0", 16)).has_value());
    ASSERT_TRUE(fw->AddPortMapping(Mapping("tcp", "0.0.0.0", 8080, "172.30.0.2", 80, "mbr0")));
    ASSERT_TRUE(fw->RemoveAll().has_value());
    EXPECT_EQ(DumpOrDie(*fw), "");
    FILE* p = popen("nft list tables", "r");
    ASSERT_NE(p, nullptr);
    char buf[4096] = {};
    size_t n = fread(buf, 1, sizeof(buf) - 1, p);
    EXPECT_EQ(pclose(p), 0);
    EXPECT_EQ(std::string(buf, n), "");
    EXPECT_TRUE(fw->RemoveAll().has_value());  // nothing there: success
    Result<Firewall> again = Firewall::Open("moat-t-rm");
    ASSERT_TRUE(again.has_value()) << again.error().message;
    EXPECT_TRUE(again->PortMappings()->empty());
  });
}

TEST(FirewallTest, WithoutCapNetAdminIsUnavailable) {
  RunInNewNetns([] {
    // Leaving uid 0 clears the effective capabilities.
    ASSERT_TRUE(sys::setresgid(65534, 65534, 65534).has_value());
    ASSERT_TRUE(sys::setresuid(65534, 65534, 65534).has_value());
    Result<Firewall> fw = Firewall::Open("moat-t-perm");
    ASSERT_FALSE(fw.has_value());
    EXPECT_EQ(fw.error().kind, ErrorKind::kUnavailable) << fw.error().message;
  });
}

double MedianMs(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

TEST(FirewallTest, Timings) {
  RunInNewNetns([] {
    using Clock = std::chrono::steady_clock;
    auto ms = [](Clock::duration d) {
      return std::chrono::duration<double, std::milli>(d).count();
    };
    auto t0 = Clock::now();
    Result<Firewall> fw = Firewall::Open("moat-t-time");
    double open_ms = ms(Clock::now() - t0);
    ASSERT_TRUE(fw.has_value()) << fw.error().message;
    std::vector<double> net, add, remove;
    for (int i = 0; i < 20; ++i) {
      NetworkRules n = Net(StrFormat("mbr-%d", i).c_str(), "172.30.0.0", 24);
      n.subnet.addr.bytes[2] = static_cast<uint8_t>(i);
      auto t = Clock::now();
      ASSERT_TRUE(fw->AddNetwork(n).has_value());
      net.push_back(ms(Clock::now() - t));
    }
    for (int i = 0; i < 50; ++i) {
      PortMapping m =
          Mapping("tcp", "0.0.0.0", static_cast<uint16_t>(20000 + i), "172.30.0.2", 80, "mbr-0");
      auto t = Clock::now();
      ASSERT_TRUE(fw->AddPortMapping(m).has_value());
      add.push_back(ms(Clock::now() - t));
    }
    for (int i = 0; i < 50; ++i) {
      PortMapping m =
          Mapping("tcp", "0.0.0.0", static_cast<uint16_t>(20000 + i), "172.30.0.2", 80, "mbr-0");
      auto t = Clock::now();
      ASSERT_TRUE(fw->RemovePortMapping(m).has_value());
      remove.push_back(ms(Clock::now() - t));
    }
    std::vector<double> rm_net;
    for (int i = 0; i < 20; ++i) {
      auto t = Clock::now();
      ASSERT_TRUE(fw->RemoveNetwork(StrFormat("mbr-%d", i)).has_value());
      rm_net.push_back(ms(Clock::now() - t));
    }
    printf(
        "[ timing ] Open %.2f ms; median AddNetwork %.2f ms, RemoveNetwork %.2f ms, "
        "AddPortMapping %.2f ms, RemovePortMapping %.2f ms\n",
        open_ms, MedianMs(net), MedianMs(rm_net), MedianMs(add), MedianMs(remove));
  });
}

// ---- Real traffic: a "host" namespace (the test child's) with three bridges and a client
// namespace joined by a veth. ----

class Topology {
 public:
  // Must run in the test child, in its fresh "host" namespace.
  Topology() {
    host_ = Open("/proc/self/ns/net");
    host_inode_ = NetnsInode("/proc/self/ns/net");
  }

  int host() const { return host_.get(); }

  // A new, empty namespace with loopback up; the calling thread stays in the host namespace.
  int NewNetns() {
    EXPECT_TRUE(sys::unshare(CLONE_NEWNET).has_value());
    UniqueFd fd = Open("/proc/self/ns/net");
    int raw = fd.get();
    EXPECT_TRUE(sys::setns(host_.get(), CLONE_NEWNET).has_value());
    owned_.push_back(std::move(fd));
    EXPECT_TRUE(Sh(raw, "ip link set lo up"));
    return raw;
  }

  // Runs a shell command in namespace `ns` (nsenter on this process's fd).
  bool Sh(int ns, const std::string& cmd) {
    std::string full =
        ns == host_.get() ? cmd
                          : StrFormat("nsenter --net=/proc/%d/fd/%d %s", getpid(), ns, cmd.c_str());
    int rc = system((full + " 2>&1").c_str());
    EXPECT_EQ(rc, 0) << full;
    return rc == 0;
  }

  // Writes a sysctl of the host namespace (the test's own, never the real host's).
  void Sysctl(const std::string& path, const char* value) {
    ASSERT_EQ(NetnsInode("/proc/self/ns/net"), host_inode_);
    UniqueFd fd(open(("/proc/sys/net/" + path).c_str(), O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid()) << path;
    ASSERT_EQ(write(fd.get(), value, strlen(value)), static_cast<ssize_t>(strlen(value))) << path;
  }

  // A container namespace on `bridge` (created if needed, with gateway `gw`/24).
  int AddContainer(const std::string& bridge, const std::string& gw, const std::string& ip,
                   const std::string& veth) {
    int ns = NewNetns();
    if (system(StrFormat("ip link show %s >/dev/null 2>&1", bridge.c_str()).c_str()) != 0) {
      Sh(host(), StrFormat("ip link add %s type bridge", bridge.c_str()));
      Sh(host(), StrFormat("ip addr add %s/24 dev %s", gw.c_str(), bridge.c_str()));
      Sh(host(), StrFormat("ip link set %s up", bridge.c_str()));
    }
    Sh(host(), StrFormat("ip link add %s type veth peer name eth0 netns /proc/%d/fd/%d",
                         veth.c_str(), getpid(), ns));
    Sh(host(), StrFormat("ip link set %s master %s up", veth.c_str(), bridge.c_str()));
    Sh(ns, StrFormat("ip addr add %s/24 dev eth0", ip.c_str()));
    Sh(ns, "ip link set eth0 up");
    Sh(ns, StrFormat("ip route add default via %s", gw.c_str()));
    return ns;
  }

  UniqueFd Socket(int ns) {
    EXPECT_TRUE(sys::setns(ns, CLONE_NEWNET).has_value());
    UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    EXPECT_TRUE(sys::setns(host_.get(), CLONE_NEWNET).has_value());
    EXPECT_TRUE(s.valid());
    return s;
  }

  UniqueFd Listen(int ns, const char* ip, uint16_t port) {
    UniqueFd s = Socket(ns);
    int one = 1;
    setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sa = SockAddr(ip, port);
    EXPECT_EQ(bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << strerror(errno);
    EXPECT_EQ(listen(s.get(), 16), 0);
    return s;
  }

  // Connects from namespace `ns` to ip:port within 1 s. On success, accepts on `listener` (also
  // within 1 s) so the connection provably reached it, and returns the peer address it saw;
  // on failure returns "".
  std::string Connect(int ns, const char* ip, uint16_t port, int listener) {
    Drain(listener);
    UniqueFd s = Socket(ns);
    sockaddr_in sa = SockAddr(ip, port);
    int rc = connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
    if (rc != 0 && errno != EINPROGRESS) return "";
    pollfd p{s.get(), POLLOUT, 0};
    if (poll(&p, 1, 1000) != 1) {
      printf("connect %s:%u: timeout\n", ip, port);
      return "";
    }
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      printf("connect %s:%u: %s\n", ip, port, strerror(err));
      return "";
    }
    pollfd l{listener, POLLIN, 0};
    if (poll(&l, 1, 1000) != 1) return "accepted nothing";
    sockaddr_in peer{};
    socklen_t plen = sizeof(peer);
    UniqueFd c(accept4(listener, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_CLOEXEC));
    if (!c.valid()) return "accept failed";
    char buf[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &peer.sin_addr, buf, sizeof(buf));
    return buf;
  }

 private:
  // Accepts and closes whatever a previous check left queued (e.g. a handshake completed late).
  static void Drain(int listener) {
    pollfd l{listener, POLLIN, 0};
    while (poll(&l, 1, 0) == 1) {
      UniqueFd c(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
      if (!c.valid()) break;
    }
  }
  static UniqueFd Open(const char* path) {
    UniqueFd fd(open(path, O_RDONLY | O_CLOEXEC));
    EXPECT_TRUE(fd.valid()) << path;
    return fd;
  }
  static sockaddr_in SockAddr(const char* ip, uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, ip, &sa.sin_addr);
    return sa;
  }

  UniqueFd host_;
  ino_t host_inode_ = 0;
  std::vector<UniqueFd> owned_;
};

TEST(FirewallTest, RealTraffic) {
  RunInNewNetns([] {
    Topology topo;
    const int host = topo.host();
    topo.Sysctl("ipv4/ip_forward", "1");
    int ca = topo.AddContainer("mbr-a", "172.31.1.1", "172.31.1.2", "mva");
    int cb = topo.AddContainer("mbr-b", "172.31.2.1", "172.31.2.2", "mvb");
    int ci = topo.AddContainer("mbr-i", "172.31.3.1", "172.31.3.2", "mvi");
    int cl = topo.NewNetns();
    topo.Sh(host, StrFormat("ip link add mvc type veth peer name eth0 netns /proc/%d/fd/%d",
                            getpid(), cl));
    topo.Sh(host, "ip addr add 10.99.0.1/24 dev mvc");
    topo.Sh(host, "ip link set mvc up");
    topo.Sh(cl, "ip addr add 10.99.0.2/24 dev eth0");
    topo.Sh(cl, "ip link set eth0 up");
    // The client can route to container subnets, so only the firewall keeps it out.
    topo.Sh(cl, "ip route add 172.31.0.0/16 via 10.99.0.1");
    if (::testing::Test::HasFailure()) return;

    UniqueFd la = topo.Listen(ca, "0.0.0.0", 80);
    UniqueFd lcl = topo.Listen(cl, "0.0.0.0", 9000);
    UniqueFd lhost = topo.Listen(host, "127.0.0.1", 18090);

    // CVE-2020-8558 setup: route_localnet on the bridge (needed for 127.0.0.1 publishing), and
    // a container that routes 127.0.0.1 to the host instead of its own loopback.
    topo.Sysctl("ipv4/conf/mbr-a/route_localnet", "1");
    topo.Sh(ca, "ip addr del 127.0.0.1/8 dev lo");
    topo.Sh(ca, "sysctl -qw net.ipv4.conf.eth0.route_localnet=1");
    topo.Sh(ca, "ip route add 127.0.0.1/32 via 172.31.1.1 dev eth0");

    // Controls, before any firewall: everything is reachable.
    EXPECT_EQ(topo.Connect(cl, "172.31.1.2", 80, la.get()), "10.99.0.2");
    EXPECT_EQ(topo.Connect(cb, "172.31.1.2", 80, la.get()), "172.31.2.2");
    EXPECT_EQ(topo.Connect(ci, "10.99.0.2", 9000, lcl.get()), "172.31.3.2");
    EXPECT_EQ(topo.Connect(ca, "127.0.0.1", 18090, lhost.get()), "172.31.1.2");
    EXPECT_EQ(topo.Connect(cl, "10.99.0.1", 18080, la.get()), "");

    Result<Firewall> fw = Firewall::Open("moat-t-traffic");
    ASSERT_TRUE(fw.has_value()) << fw.error().message;
    NetworkRules internal = Net("mbr-i", "172.31.3.0", 24);
    internal.internal = true;
    ASSERT_TRUE(fw->AddNetwork(Net("mbr-a", "172.31.1.0", 24)).has_value());
    ASSERT_TRUE(fw->AddNetwork(Net("mbr-b", "172.31.2.0", 24)).has_value());
    ASSERT_TRUE(fw->AddNetwork(internal).has_value());

    // Container addresses are not routable from outside; networks are isolated; the internal
    // network reaches nothing; a normal network gets out, masqueraded.
    EXPECT_EQ(topo.Connect(cl, "172.31.1.2", 80, la.get()), "");
    EXPECT_EQ(topo.Connect(cb, "172.31.1.2", 80, la.get()), "");
    EXPECT_EQ(topo.Connect(ci, "10.99.0.2", 9000, lcl.get()), "");
    EXPECT_EQ(topo.Connect(cb, "10.99.0.2", 9000, lcl.get()), "10.99.0.1");
    // The loopback guard.
    EXPECT_EQ(topo.Connect(ca, "127.0.0.1", 18090, lhost.get()), "");

    // Publish 18080 -> container 80 on any address: the client gets in with its own address.
    PortMapping any = Mapping("tcp", "0.0.0.0", 18080, "172.31.1.2", 80, "mbr-a");
    ASSERT_TRUE(fw->AddPortMapping(any).has_value());
    EXPECT_EQ(topo.Connect(cl, "10.99.0.1", 18080, la.get()), "10.99.0.2");
    // Hairpin: the container reaches its own published port, masqueraded to the bridge address.
    // With br_netfilter (bridge-nf-call-iptables, on by default), the DNATed packet is bridged
    // straight back out of the port it came in on, which takes hairpin mode on that port.
    topo.Sh(host, "ip link set mva type bridge_slave hairpin on");
    EXPECT_EQ(topo.Connect(ca, "10.99.0.1", 18080, la.get()), "172.31.1.1");
    // Another network's container reaches the published port through the host, too
    // (masqueraded: its subnet leaves through a bridge other than its own).
    EXPECT_EQ(topo.Connect(cb, "10.99.0.1", 18080, la.get()), "172.31.1.1");
    ASSERT_TRUE(fw->RemovePortMapping(any).has_value());
    EXPECT_EQ(topo.Connect(cl, "10.99.0.1", 18080, la.get()), "");

    // A mapping on one host address matches that address only.
    ASSERT_TRUE(topo.Sh(host, "ip addr add 10.99.0.11/24 dev mvc"));
    PortMapping one = Mapping("tcp", "10.99.0.11", 18082, "172.31.1.2", 80, "mbr-a");
    ASSERT_TRUE(fw->AddPortMapping(one).has_value());
    EXPECT_EQ(topo.Connect(cl, "10.99.0.11", 18082, la.get()), "10.99.0.2");
    EXPECT_EQ(topo.Connect(cl, "10.99.0.1", 18082, la.get()), "");

    // Loopback publishing from the host itself.
    EXPECT_EQ(topo.Connect(host, "127.0.0.1", 18081, la.get()), "");
    PortMapping lo = Mapping("tcp", "127.0.0.1", 18081, "172.31.1.2", 80, "mbr-a");
    ASSERT_TRUE(fw->AddPortMapping(lo).has_value());
    EXPECT_EQ(topo.Connect(host, "127.0.0.1", 18081, la.get()), "172.31.1.1");
    // ...but not from the client, nor on the host's other addresses.
    EXPECT_EQ(topo.Connect(cl, "10.99.0.1", 18081, la.get()), "");
    ASSERT_TRUE(fw->RemovePortMapping(lo).has_value());
    EXPECT_EQ(topo.Connect(host, "127.0.0.1", 18081, la.get()), "");

    // Removing the networks lifts the isolation again (the rules were the cause).
    ASSERT_TRUE(fw->RemoveNetwork("mbr-b").has_value());
    ASSERT_TRUE(fw->RemoveNetwork("mbr-a").has_value());
    EXPECT_EQ(topo.Connect(cb, "172.31.1.2", 80, la.get()), "172.31.2.2");
    ASSERT_TRUE(fw->RemoveAll().has_value());
  });
}

}  // namespace
}  // namespace moat::net
