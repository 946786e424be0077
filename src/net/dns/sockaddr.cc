#include "net/dns/sockaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace moat::net::dns {

socklen_t ToSockaddr(const IpAddr& addr, uint16_t port, sockaddr_storage* out) {
  memset(out, 0, sizeof *out);
  if (addr.IsV4()) {
    auto* sin = reinterpret_cast<sockaddr_in*>(out);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    memcpy(&sin->sin_addr, addr.bytes.data(), 4);
    return sizeof *sin;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(out);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  memcpy(&sin6->sin6_addr, addr.bytes.data(), 16);
  return sizeof *sin6;
}

bool FromSockaddr(const sockaddr_storage& in, IpAddr* addr, uint16_t* port) {
  *addr = IpAddr{};
  if (in.ss_family == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&in);
    addr->family = AF_INET;
    memcpy(addr->bytes.data(), &sin->sin_addr, 4);
    *port = ntohs(sin->sin_port);
    return true;
  }
  if (in.ss_family == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&in);
    *port = ntohs(sin6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
      addr->family = AF_INET;
      memcpy(addr->bytes.data(), reinterpret_cast<const uint8_t*>(&sin6->sin6_addr) + 12, 4);
      return true;
    }
    addr->family = AF_INET6;
    memcpy(addr->bytes.data(), &sin6->sin6_addr, 16);
    return true;
  }
  return false;
}

}  // namespace moat::net::dns
