#include "net/netlink.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <utility>

#include "net/netns.h"

namespace moat::net {

namespace {

// Requests are a header, a fixed struct and a few short attributes (names are bounded by
// IFNAMSIZ below), far below this.
constexpr size_t kRequestSize = 1024;
// Dumps: the kernel fills each datagram up to 32 KiB when the reader's buffer allows it
// (netlink_dump, NLMSG_GOODSIZE); a smaller buffer gets MSG_TRUNC (ENOSPC from libmnl).
constexpr size_t kReceiveSize = 32768;
// NLM_F_DUMP_INTR: the table changed during the dump; try again a few times, then report it.
constexpr int kDumpAttempts = 4;

struct Buffer {
  alignas(nlmsghdr) char data[kRequestSize];
};

std::string Str(std::string_view s) { return std::string(s); }

Result<void> CheckIfName(std::string_view name) {
  if (name.empty() || name.size() >= IFNAMSIZ)
    return Fail(ErrorKind::kInvalidArgument, "invalid interface name \"%.*s\" (1 to %d bytes)",
                static_cast<int>(name.size()), name.data(), IFNAMSIZ - 1);
  return Ok();
}

void PutName(nlmsghdr* nlh, uint16_t type, std::string_view name) {
  // mnl_attr_put_strz wants a C string; string_view need not be terminated.
  char buf[IFNAMSIZ] = {};
  memcpy(buf, name.data(), name.size());
  mnl_attr_put_strz(nlh, type, buf);
}

// For messages only (no dependency on the parser in ip.cc).
std::string FormatAddr(const IpAddr& a) {
  char text[INET6_ADDRSTRLEN] = "?";
  inet_ntop(a.family, a.bytes.data(), text, sizeof text);
  return text;
}
std::string FormatPrefix(const IpPrefix& p) {
  return FormatAddr(p.addr) + "/" + std::to_string(p.len);
}

Result<void> CheckPrefix(const IpPrefix& p) {
  int max = p.addr.family == AF_INET ? 32 : p.addr.family == AF_INET6 ? 128 : -1;
  if (max < 0 || p.len < 0 || p.len > max)
    return Fail(ErrorKind::kInvalidArgument, "invalid prefix (family %d, length %d)", p.addr.family,
                p.len);
  return Ok();
}

size_t AddrLength(int family) { return family == AF_INET ? 4 : 16; }

nlmsghdr* NewMessage(Buffer& buf, uint16_t type, uint16_t flags) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | flags;
  return nlh;
}

ifinfomsg* PutIfinfo(nlmsghdr* nlh, int family = AF_UNSPEC) {
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = static_cast<unsigned char>(family);
  return ifi;
}

// The error of an NLMSG_ERROR message, with the kernel's extended ACK text if it sent one
// (NETLINK_EXT_ACK, Linux 4.12): "Invalid argument (kernel: Unknown device type)".
struct KernelError {
  int err = 0;
  std::string text;
};

KernelError ParseError(const nlmsghdr* nlh) {
  KernelError out;
  if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(nlmsgerr))) {
    out.err = EBADMSG;
    return out;
  }
  const auto* e = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(nlh));
  out.err = -e->error;
  if (out.err == 0 || !(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return out;
  // With NETLINK_CAP_ACK (NLM_F_CAPPED) the echoed request is only its header.
  size_t offset = sizeof(nlmsgerr);
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED) && e->msg.nlmsg_len > sizeof(nlmsghdr))
    offset += MNL_ALIGN(e->msg.nlmsg_len - sizeof(nlmsghdr));
  if (mnl_nlmsg_size(offset) > nlh->nlmsg_len) return out;
  mnl_attr_parse(
      nlh, static_cast<unsigned>(offset),
      [](const nlattr* attr, void* data) -> int {
        if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG && mnl_attr_get_payload_len(attr) > 0) {
          const char* s = static_cast<const char*>(mnl_attr_get_payload(attr));
          static_cast<std::string*>(data)->assign(s, strnlen(s, mnl_attr_get_payload_len(attr)));
        }
        return MNL_CB_OK;
      },
      &out.text);
  return out;
}

Error KernelFailure(const KernelError& ke, const std::string& what) {
  Error e = Error::FromErrno(ke.err, what);
  if (!ke.text.empty()) e.message += " (kernel: " + ke.text + ")";
  return e;
}

using MessageFn = std::function<void(const nlmsghdr*)>;

// Sends `req` and reads the answer up to its end: the ACK of a request (NLM_F_ACK), or
// NLMSG_DONE of a dump, whose data messages go to `on_message`. Messages with another sequence
// number or port are leftovers of an earlier exchange that failed half-way and are skipped.
// Sets *interrupted if the kernel flagged the dump inconsistent (NLM_F_DUMP_INTR).
Result<void> Exchange(mnl_socket* sock, uint32_t seq, nlmsghdr* req, const std::string& what,
                      const MessageFn& on_message, bool* interrupted) {
  req->nlmsg_seq = seq;
  uint32_t portid = mnl_socket_get_portid(sock);
  ssize_t sent;
  do sent = mnl_socket_sendto(sock, req, req->nlmsg_len);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) return FailErrno("%s: send netlink request", what.c_str());

  alignas(nlmsghdr) char buf[kReceiveSize];
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FailErrno("%s: receive netlink answer", what.c_str());
    int left = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf); mnl_nlmsg_ok(nlh, left);
         nlh = mnl_nlmsg_next(nlh, &left)) {
      if (nlh->nlmsg_seq != seq || (nlh->nlmsg_pid != 0 && nlh->nlmsg_pid != portid)) continue;
      if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) *interrupted = true;
      switch (nlh->nlmsg_type) {
        case NLMSG_NOOP:
        case NLMSG_OVERRUN:
          break;
        case NLMSG_ERROR: {
          KernelError ke = ParseError(nlh);
          if (ke.err != 0) return Fail(KernelFailure(ke, what));
          return Ok();
        }
        case NLMSG_DONE: {
          // A dump that failed part-way ends with DONE carrying a negative errno.
          if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
            int err = *static_cast<const int*>(mnl_nlmsg_get_payload(nlh));
            if (err < 0) return Fail(Error::FromErrno(-err, what));
          }
          return Ok();
        }
        default:
          if (on_message) on_message(nlh);
      }
    }
  }
}

// A dump request with retries on NLM_F_DUMP_INTR. `build` fills a fresh request each time;
// `reset` clears what the previous attempt collected.
Result<void> Dump(mnl_socket* sock, uint32_t* seq, const std::function<nlmsghdr*(Buffer&)>& build,
                  const std::string& what, const MessageFn& on_message,
                  const std::function<void()>& reset) {
  for (int attempt = 0;; ++attempt) {
    Buffer buf;
    nlmsghdr* req = build(buf);
    bool interrupted = false;
    MOAT_TRY(Exchange(sock, ++*seq, req, what, on_message, &interrupted));
    if (!interrupted) return Ok();
    if (attempt + 1 == kDumpAttempts)
      return Fail(ErrorKind::kUnavailable, "%s: dump kept changing (NLM_F_DUMP_INTR)",
                  what.c_str());
    reset();
  }
}

// Attribute table for one nesting level: tb[type] or nullptr. Unknown (newer) types are skipped.
template <size_t N>
int CollectAttr(const nlattr* attr, void* data) {
  auto* tb = static_cast<const nlattr**>(data);
  uint16_t type = mnl_attr_get_type(attr);
  if (type < N) tb[type] = attr;
  return MNL_CB_OK;
}

std::string AttrString(const nlattr* attr) {
  const char* s = static_cast<const char*>(mnl_attr_get_payload(attr));
  return std::string(s, strnlen(s, mnl_attr_get_payload_len(attr)));
}

std::optional<uint32_t> AttrU32(const nlattr* attr) {
  if (!attr || mnl_attr_get_payload_len(attr) < sizeof(uint32_t)) return std::nullopt;
  return mnl_attr_get_u32(attr);
}

std::optional<IpAddr> AttrAddr(const nlattr* attr, int family) {
  if (!attr || (family != AF_INET && family != AF_INET6)) return std::nullopt;
  size_t len = AddrLength(family);
  if (mnl_attr_get_payload_len(attr) < len) return std::nullopt;
  IpAddr a;
  a.family = family;
  memcpy(a.bytes.data(), mnl_attr_get_payload(attr), len);
  return a;
}

std::optional<LinkInfo> ParseLink(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWLINK || mnl_nlmsg_get_payload_len(nlh) < sizeof(ifinfomsg))
    return std::nullopt;
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  const nlattr* tb[IFLA_MAX + 1] = {};
  mnl_attr_parse(nlh, sizeof(ifinfomsg), CollectAttr<IFLA_MAX + 1>, tb);
  LinkInfo link;
  link.index = ifi->ifi_index;
  link.up = (ifi->ifi_flags & IFF_UP) != 0;
  if (tb[IFLA_IFNAME]) link.name = AttrString(tb[IFLA_IFNAME]);
  link.master = static_cast<int>(AttrU32(tb[IFLA_MASTER]).value_or(0));
  link.mtu = static_cast<int>(AttrU32(tb[IFLA_MTU]).value_or(0));
  if (tb[IFLA_ADDRESS] && mnl_attr_get_payload_len(tb[IFLA_ADDRESS]) == link.mac.size())
    memcpy(link.mac.data(), mnl_attr_get_payload(tb[IFLA_ADDRESS]), link.mac.size());
  if (tb[IFLA_LINKINFO]) {
    const nlattr* info[IFLA_INFO_MAX + 1] = {};
    mnl_attr_parse_nested(tb[IFLA_LINKINFO], CollectAttr<IFLA_INFO_MAX + 1>, info);
    if (info[IFLA_INFO_KIND]) link.kind = AttrString(info[IFLA_INFO_KIND]);
  }
  return link;
}

}  // namespace

Netlink::Netlink(mnl_socket* s) : sock_(s) {}

Netlink::Netlink(Netlink&& o) noexcept : sock_(std::exchange(o.sock_, nullptr)), seq_(o.seq_) {}

Netlink& Netlink::operator=(Netlink&& o) noexcept {
  if (this != &o) {
    if (sock_) mnl_socket_close(sock_);
    sock_ = std::exchange(o.sock_, nullptr);
    seq_ = o.seq_;
  }
  return *this;
}

Netlink::~Netlink() {
  if (sock_) mnl_socket_close(sock_);
}

Result<Netlink> Netlink::Open() {
  mnl_socket* s = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (!s) return FailErrno("open netlink route socket");
  Netlink nl(s);
  if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0) return FailErrno("bind netlink route socket");
  // Best effort: both only make answers smaller or errors clearer (Linux 4.3 / 4.12).
  int on = 1;
  (void)mnl_socket_setsockopt(s, NETLINK_CAP_ACK, &on, sizeof on);
  (void)mnl_socket_setsockopt(s, NETLINK_EXT_ACK, &on, sizeof on);
  return nl;
}

Result<Netlink> Netlink::OpenIn(int netns_fd) {
  // A netlink socket belongs to the namespace it was created in (sock_net), whatever thread
  // uses it later: create it inside, then return.
  std::optional<Netlink> out;
  auto open_here = [&out]() -> Result<void> {
    MOAT_ASSIGN_OR_RETURN(Netlink nl, Open());
    out.emplace(std::move(nl));
    return Ok();
  };
  MOAT_TRY(std::move(InNetns(netns_fd, open_here)).Context("open netlink in netns"));
  return std::move(*out);
}

Result<void> Netlink::Request(void* nlh, const char* what) {
  auto* req = static_cast<nlmsghdr*>(nlh);
  req->nlmsg_flags |= NLM_F_ACK;
  bool interrupted = false;
  return Exchange(sock_, ++seq_, req, what, nullptr, &interrupted);
}

Result<LinkInfo> Netlink::GetLink(std::string_view name) {
  std::string what = "get link " + Str(name);
  MOAT_TRY(std::move(CheckIfName(name)).Context("%s", what.c_str()));
  Buffer buf;
  // NLM_F_ACK on a get: the kernel sends the answer, then the ACK, so the exchange has an end.
  nlmsghdr* nlh = NewMessage(buf, RTM_GETLINK, NLM_F_ACK);
  PutIfinfo(nlh);
  PutName(nlh, IFLA_IFNAME, name);
  mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::optional<LinkInfo> found;
  bool interrupted = false;
  MOAT_TRY(Exchange(
      sock_, ++seq_, nlh, what, [&found](const nlmsghdr* m) { found = ParseLink(m); },
      &interrupted));
  if (!found) return Fail(ErrorKind::kInternal, "%s: no link in the kernel's answer", what.c_str());
  return std::move(*found);
}

Result<std::vector<LinkInfo>> Netlink::Links() {
  std::vector<LinkInfo> links;
  MOAT_TRY(Dump(
      sock_, &seq_,
      [](Buffer& buf) {
        nlmsghdr* nlh = NewMessage(buf, RTM_GETLINK, NLM_F_DUMP);
        PutIfinfo(nlh);
        mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
        return nlh;
      },
      "list links",
      [&links](const nlmsghdr* m) {
        if (auto l = ParseLink(m)) links.push_back(std::move(*l));
      },
      [&links] { links.clear(); }));
  return links;
}

Result<void> Netlink::CreateBridge(std::string_view name, int mtu) {
  std::string what = "create bridge " + Str(name);
  MOAT_TRY(std::move(CheckIfName(name)).Context("%s", what.c_str()));
  Buffer buf;
  nlmsghdr* nlh = NewMessage(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  PutIfinfo(nlh);
  PutName(nlh, IFLA_IFNAME, name);
  if (mtu > 0) mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
  mnl_attr_nest_end(nlh, linkinfo);
  return Request(nlh, what.c_str());
}

Result<void> Netlink::CreateVeth(std::string_view name, std::string_view peer_name,
                                 int peer_netns_fd,
                                 const std::optional<std::array<uint8_t, 6>>& peer_mac, int mtu) {
  std::string what = "create veth " + Str(name) + "/" + Str(peer_name);
  MOAT_TRY(std::move(CheckIfName(name)).Context("%s", what.c_str()));
  MOAT_TRY(std::move(CheckIfName(peer_name)).Context("%s", what.c_str()));
  Buffer buf;
  nlmsghdr* nlh = NewMessage(buf, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  PutIfinfo(nlh);
  PutName(nlh, IFLA_IFNAME, name);
  if (mtu > 0) mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
  nlattr* linkinfo = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  // VETH_INFO_PEER holds an ifinfomsg followed by the peer's own IFLA_* attributes
  // (veth_newlink). IFLA_NET_NS_FD there creates the peer directly in its namespace: one
  // request, and the name is checked for clashes where it will live, not here.
  nlattr* peer = mnl_attr_nest_start(nlh, VETH_INFO_PEER);
  PutIfinfo(nlh);
  PutName(nlh, IFLA_IFNAME, peer_name);
  if (peer_netns_fd >= 0)
    mnl_attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
  if (peer_mac) mnl_attr_put(nlh, IFLA_ADDRESS, peer_mac->size(), peer_mac->data());
  if (mtu > 0) mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
  mnl_attr_nest_end(nlh, peer);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, linkinfo);
  return Request(nlh, what.c_str());
}

Result<void> Netlink::DeleteLink(std::string_view name) {
  std::string what = "delete link " + Str(name);
  MOAT_TRY(std::move(CheckIfName(name)).Context("%s", what.c_str()));
  Buffer buf;
  nlmsghdr* nlh = NewMessage(buf, RTM_DELLINK, 0);
  PutIfinfo(nlh);
  PutName(nlh, IFLA_IFNAME, name);
  return Request(nlh, what.c_str());
}

// RTM_SETLINK finds the device by IFLA_IFNAME when ifi_index is 0 (rtnl_setlink), which saves
// a lookup round trip.
Result<void> Netlink::SetUp(std::string_view name, bool up) {
  std::string what = (up ? "set up " : "set down ") + Str(name);
  MOAT_TRY(std::move(CheckIfName(name)).Context("%s", what.c_str()));
  Buffer buf;
  nlmsghdr* nlh = NewMessage(buf, RTM_SETLINK, 0);
  ifinfomsg* ifi = PutIfinfo(nlh);
  ifi->ifi_change = IFF_UP;
  ifi->ifi_flags = up ? IFF_UP : 0;
  PutName(nlh, IFLA_IFNAME, name);
  return Request(nlh, what.c_str());
}

Result<void> Netlink::SetMaster(std::string_view name, std::string_view bridge) {
  std::string what = bridge.empty() ? "detach " + Str(name) + " from its master"
                                    : "attach " + Str(name) + " to " + Str(bridge);
  MOAT_TRY(std::move(CheckIfName(name)).Context("%s", what.c_str()));
  uint32_t master = 0;
  if (!bridge.empty()) {
    MOAT_ASSIGN_OR_RETURN(LinkInfo br, std::move(GetLink(bridge)).Context("%s", what.c_str()));
    master = static_cast<uint32_t>(br.index);
  }
  Buffer buf;
  nlmsghdr* nlh = NewMessage(buf, RTM_SETLINK, 0);
  PutIfinfo(nlh);
  PutName(nlh, IFLA_IFNAME, name);
  mnl_attr_put_u32(nlh, IFLA_MASTER, master);
  return Request(nlh, what.c_str());
}

Result<void> Netlink::SetBridgePortIsolated(std::string_view name, bool isolated) {
  std::string what = (isolated ? "isolate bridge port " : "unisolate bridge port ") + Str(name);
  // The AF_BRIDGE setlink handler (rtnl_bridge_setlink) looks the port up by index only.
  MOAT_ASSIGN_OR_RETURN(LinkInfo port, std::move(GetLink(name)).Context("%s", what.c_str()));
  Buffer buf;
  nlmsghdr* nlh = NewMessage(buf, RTM_SETLINK, 0);
  ifinfomsg* ifi = PutIfinfo(nlh, AF_BRIDGE);
  ifi->ifi_index = port.index;
  // br_setlink parses a nested IFLA_PROTINFO (NLA_F_NESTED, set by mnl_attr_nest_start) with
  // the IFLA_BRPORT_* port options; IFLA_BRPORT_ISOLATED is Linux 4.18. A port with no bridge
  // is EOPNOTSUPP.
  nlattr* protinfo = mnl_attr_nest_start(nlh, IFLA_PROTINFO);
  mnl_attr_put_u8(nlh, IFLA_BRPORT_ISOLATED, isolated ? 1 : 0);
  mnl_attr_nest_end(nlh, protinfo);
  return Request(nlh, what.c_str());
}

Result<void> Netlink::SetMac(std::string_view name, const std::array<uint8_t, 6>& mac) {
  char text[18];
  snprintf(text, sizeof text, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
           mac[4], mac[5]);
  std::string what = "set mac of " + Str(name) + " to " + text;
  MOAT_TRY(std::move(CheckIfName(name)).Context("%s", what.c_str()));
  Buffer buf;
  nlmsghdr* nlh = NewMessage(buf, RTM_SETLINK, 0);
  PutIfinfo(nlh);
  PutName(nlh, IFLA_IFNAME, name);
  mnl_attr_put(nlh, IFLA_ADDRESS, mac.size(), mac.data());
  return Request(nlh, what.c_str());
}

Result<void> Netlink::SetMtu(std::string_view name, int mtu) {
  std::string what = "set mtu of " + Str(name) + " to " + std::to_string(mtu);
  MOAT_TRY(std::move(CheckIfName(name)).Context("%s", what.c_str()));
  if (mtu <= 0) return Fail(ErrorKind::kInvalidArgument, "%s: invalid mtu", what.c_str());
  Buffer buf;
  nlmsghdr* nlh = NewMessage(buf, RTM_SETLINK, 0);
  PutIfinfo(nlh);
  PutName(nlh, IFLA_IFNAME, name);
  mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
  return Request(nlh, what.c_str());
}

namespace {

nlmsghdr* BuildAddrRequest(Buffer& buf, uint16_t type, uint16_t flags, int index,
                           const IpPrefix& addr) {
  nlmsghdr* nlh = NewMessage(buf, type, flags);
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = static_cast<unsigned char>(addr.addr.family);
  ifa->ifa_prefixlen = static_cast<unsigned char>(addr.len);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<unsigned>(index);
  size_t len = AddrLength(addr.addr.family);
  // IFA_LOCAL is the interface's address, IFA_ADDRESS the peer's on point-to-point links; on
  // broadcast links both are the same (what `ip addr add` sends).
  mnl_attr_put(nlh, IFA_LOCAL, len, addr.addr.bytes.data());
  mnl_attr_put(nlh, IFA_ADDRESS, len, addr.addr.bytes.data());
  return nlh;
}

}  // namespace

Result<void> Netlink::AddAddress(std::string_view name, const IpPrefix& addr) {
  std::string what = "add address " + FormatPrefix(addr) + " to " + Str(name);
  MOAT_TRY(std::move(CheckPrefix(addr)).Context("%s", what.c_str()));
  MOAT_ASSIGN_OR_RETURN(LinkInfo link, std::move(GetLink(name)).Context("%s", what.c_str()));
  Buffer buf;
  nlmsghdr* nlh = BuildAddrRequest(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, link.index, addr);
  return Request(nlh, what.c_str());
}

Result<void> Netlink::DeleteAddress(std::string_view name, const IpPrefix& addr) {
  std::string what = "delete address " + FormatPrefix(addr) + " from " + Str(name);
  MOAT_TRY(std::move(CheckPrefix(addr)).Context("%s", what.c_str()));
  MOAT_ASSIGN_OR_RETURN(LinkInfo link, std::move(GetLink(name)).Context("%s", what.c_str()));
  Buffer buf;
  nlmsghdr* nlh = BuildAddrRequest(buf, RTM_DELADDR, 0, link.index, addr);
  auto r = Request(nlh, what.c_str());
  // The kernel says EADDRNOTAVAIL for an address the link does not have: that is "absent".
  if (!r && r.error().sys_errno == EADDRNOTAVAIL) {
    Error e = std::move(r).error();
    e.kind = ErrorKind::kNotFound;
    return Fail(std::move(e));
  }
  return r;
}

Result<std::vector<IpPrefix>> Netlink::Addresses(std::string_view name) {
  std::string what =
      name.empty() ? std::string("list addresses") : "list addresses of " + Str(name);
  int index = 0;
  if (!name.empty()) {
    MOAT_ASSIGN_OR_RETURN(LinkInfo link, std::move(GetLink(name)).Context("%s", what.c_str()));
    index = link.index;
  }
  std::vector<IpPrefix> out;
  MOAT_TRY(Dump(
      sock_, &seq_,
      [](Buffer& buf) {
        nlmsghdr* nlh = NewMessage(buf, RTM_GETADDR, NLM_F_DUMP);
        mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg));
        return nlh;
      },
      what,
      [&out, index](const nlmsghdr* m) {
        if (m->nlmsg_type != RTM_NEWADDR || mnl_nlmsg_get_payload_len(m) < sizeof(ifaddrmsg))
          return;
        const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(m));
        // Without NETLINK_GET_STRICT_CHK the kernel ignores ifa_index in a dump: filter here.
        if (index != 0 && static_cast<int>(ifa->ifa_index) != index) return;
        const nlattr* tb[IFA_MAX + 1] = {};
        mnl_attr_parse(m, sizeof(ifaddrmsg), CollectAttr<IFA_MAX + 1>, tb);
        auto a = AttrAddr(tb[IFA_LOCAL], ifa->ifa_family);
        if (!a) a = AttrAddr(tb[IFA_ADDRESS], ifa->ifa_family);
        if (a) out.push_back(IpPrefix{*a, ifa->ifa_prefixlen});
      },
      [&out] { out.clear(); }));
  return out;
}

Result<void> Netlink::AddRoute(const IpPrefix& dst, const std::optional<IpAddr>& gateway,
                               std::string_view dev, int mtu) {
  std::string what = "add route " + FormatPrefix(dst);
  if (gateway) what += " via " + FormatAddr(*gateway);
  if (!dev.empty()) what += " dev " + Str(dev);
  if (mtu > 0) what += " mtu " + std::to_string(mtu);
  MOAT_TRY(std::move(CheckPrefix(dst)).Context("%s", what.c_str()));
  if (gateway && gateway->family != dst.addr.family)
    return Fail(ErrorKind::kInvalidArgument, "%s: gateway and destination differ in family",
                what.c_str());
  int oif = 0;
  if (!dev.empty()) {
    MOAT_ASSIGN_OR_RETURN(LinkInfo link, std::move(GetLink(dev)).Context("%s", what.c_str()));
    oif = link.index;
  }
  Buffer buf;
  nlmsghdr* nlh = NewMessage(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<unsigned char>(dst.addr.family);
  rtm->rtm_dst_len = static_cast<unsigned char>(dst.len);
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT;  // what `ip route add` uses
  // Without a gateway the destination is directly on the link.
  rtm->rtm_scope = gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rtm->rtm_type = RTN_UNICAST;
  size_t len = AddrLength(dst.addr.family);
  if (dst.len > 0) mnl_attr_put(nlh, RTA_DST, len, dst.addr.bytes.data());
  if (gateway) mnl_attr_put(nlh, RTA_GATEWAY, len, gateway->bytes.data());
  if (oif) mnl_attr_put_u32(nlh, RTA_OIF, static_cast<uint32_t>(oif));
  if (mtu > 0) {
    nlattr* metrics = mnl_attr_nest_start(nlh, RTA_METRICS);
    mnl_attr_put_u32(nlh, RTAX_MTU, static_cast<uint32_t>(mtu));
    mnl_attr_nest_end(nlh, metrics);
  }
  return Request(nlh, what.c_str());
}

Result<std::vector<RouteInfo>> Netlink::Routes(int family) {
  if (family != AF_INET && family != AF_INET6)
    return Fail(ErrorKind::kInvalidArgument, "list routes: invalid family %d", family);
  std::vector<RouteInfo> out;
  MOAT_TRY(Dump(
      sock_, &seq_,
      [family](Buffer& buf) {
        nlmsghdr* nlh = NewMessage(buf, RTM_GETROUTE, NLM_F_DUMP);
        auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
        rtm->rtm_family = static_cast<unsigned char>(family);
        return nlh;
      },
      family == AF_INET ? "list ipv4 routes" : "list ipv6 routes",
      [&out, family](const nlmsghdr* m) {
        if (m->nlmsg_type != RTM_NEWROUTE || mnl_nlmsg_get_payload_len(m) < sizeof(rtmsg)) return;
        const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(m));
        if (rtm->rtm_family != family || rtm->rtm_type != RTN_UNICAST ||
            (rtm->rtm_flags & RTM_F_CLONED))
          return;
        const nlattr* tb[RTA_MAX + 1] = {};
        mnl_attr_parse(m, sizeof(rtmsg), CollectAttr<RTA_MAX + 1>, tb);
        // rtm_table is 8 bits; RTA_TABLE has the full id.
        uint32_t table = AttrU32(tb[RTA_TABLE]).value_or(rtm->rtm_table);
        if (table != RT_TABLE_MAIN) return;
        RouteInfo r;
        r.dst.addr.family = family;
        r.dst.len = rtm->rtm_dst_len;
        if (auto d = AttrAddr(tb[RTA_DST], family)) r.dst.addr = *d;
        r.gateway = AttrAddr(tb[RTA_GATEWAY], family);
        r.oif = static_cast<int>(AttrU32(tb[RTA_OIF]).value_or(0));
        if (tb[RTA_METRICS]) {
          const nlattr* mx[RTAX_MAX + 1] = {};
          mnl_attr_parse_nested(tb[RTA_METRICS], CollectAttr<RTAX_MAX + 1>, mx);
          r.mtu = static_cast<int>(AttrU32(mx[RTAX_MTU]).value_or(0));
        }
        out.push_back(std::move(r));
      },
      [&out] { out.clear(); }));
  return out;
}

}  // namespace moat::net
