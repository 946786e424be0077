#pragma once

// Conversions between net::IpAddr and the kernel's socket addresses. Pure.

#include <sys/socket.h>

#include <cstdint>

#include "net/ip.h"

namespace moat::net::dns {

// Fills `out` with `addr`:`port`; returns the length to pass to bind/sendto.
socklen_t ToSockaddr(const IpAddr& addr, uint16_t port, sockaddr_storage* out);
// The address and port of an AF_INET/AF_INET6 `in`; false for other families. An IPv4-mapped
// IPv6 address (::ffff:a.b.c.d) is returned as the IPv4 address.
bool FromSockaddr(const sockaddr_storage& in, IpAddr* addr, uint16_t* port);

}  // namespace moat::net::dns
