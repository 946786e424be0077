#include "image/registry/location.h"

#include <arpa/inet.h>

#include <cstring>

#include "base/strings.h"

namespace moat::image::registry {
namespace {

// Parses an IPv4 or IPv6 literal into 16 bytes (IPv4 mapped into ::ffff:0:0/96); returns the
// prefix offset in bits of the IPv4 part (96) or 0 for IPv6.
bool ParseIp(const std::string& s, unsigned char out[16], int* v4_offset) {
  struct in_addr a4;
  if (inet_pton(AF_INET, s.c_str(), &a4) == 1) {
    memset(out, 0, 10);
    out[10] = out[11] = 0xff;
    memcpy(out + 12, &a4, 4);
    *v4_offset = 96;
    return true;
  }
  struct in6_addr a6;
  if (inet_pton(AF_INET6, s.c_str(), &a6) == 1) {
    memcpy(out, &a6, 16);
    *v4_offset = 0;
    return true;
  }
  return false;
}

bool CidrContains(const std::string& cidr, const std::string& ip) {
  size_t slash = cidr.find('/');
  if (slash == std::string::npos) return false;
  auto bits = ParseInt64(cidr.substr(slash + 1));
  unsigned char net[16], addr[16];
  int net_off = 0, addr_off = 0;
  if (!bits || !ParseIp(cidr.substr(0, slash), net, &net_off) || !ParseIp(ip, addr, &addr_off))
    return false;
  if (net_off != addr_off) return false;
  int64_t prefix = *bits + net_off;
  if (*bits < 0 || prefix > 128) return false;
  for (int i = 0; i < 128 && i < prefix; ++i) {
    int byte = i / 8, bit = 7 - i % 8;
    if (((net[byte] >> bit) & 1) != ((addr[byte] >> bit) & 1)) return false;
  }
  return true;
}

}  // namespace

std::string HostName(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    return std::string(
        host.substr(1, close == std::string_view::npos ? std::string_view::npos : close - 1));
  }
  size_t colon = host.rfind(':');
  // More than one ':' without brackets: a bare IPv6 literal.
  if (colon != std::string_view::npos && host.find(':') == colon)
    return std::string(host.substr(0, colon));
  return std::string(host);
}

Result<Location> ResolveRepository(std::string_view repo) {
  Location loc;
  std::string_view path = repo;
  size_t slash = repo.find('/');
  if (slash != std::string_view::npos) {
    std::string_view first = repo.substr(0, slash);
    if (first.find_first_of(".:") != std::string_view::npos || first == "localhost") {
      loc.host = std::string(first);
      path = repo.substr(slash + 1);
    }
  }
  if (path.empty())
    return Fail(ErrorKind::kInvalidArgument, "invalid repository name %.*s",
                static_cast<int>(repo.size()), repo.data());
  if (loc.host.empty() || loc.host == "docker.io" || loc.host == "index.docker.io") {
    loc.host = kDockerHubHost;
    loc.repository = path.find('/') == std::string_view::npos ? "library/" + std::string(path)
                                                              : std::string(path);
  } else {
    loc.repository = std::string(path);
  }
  return loc;
}

std::string HostFromServerAddress(std::string_view addr) {
  std::string s(TrimWhitespace(addr));
  for (const char* scheme : {"https://", "http://"})
    if (StartsWith(s, scheme)) s = s.substr(strlen(scheme));
  if (size_t slash = s.find('/'); slash != std::string::npos) s = s.substr(0, slash);
  if (s.empty() || s == "docker.io" || s == "index.docker.io" || s == "registry-1.docker.io")
    return kDockerHubHost;
  return s;
}

bool PlainHttpAllowed(std::string_view host, const std::vector<std::string>& insecure) {
  std::string name = HostName(host);
  if (name == "localhost" || name == "::1" || StartsWith(name, "127.")) {
    unsigned char b[16];
    int off = 0;
    if (name == "localhost" || ParseIp(name, b, &off)) return true;
  }
  for (const auto& entry : insecure) {
    if (entry == host || entry == name) return true;
    if (entry.find('/') != std::string::npos && CidrContains(entry, name)) return true;
  }
  return false;
}

}  // namespace moat::image::registry
