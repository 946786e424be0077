#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

// Where a repository lives: Docker's name normalisation from a (Moat-normalised) repository
// name to a registry host and the repository path on it. Pure functions, thread-safe.
namespace moat::image::registry {

constexpr char kDockerHubHost[] = "registry-1.docker.io";

struct Location {
  std::string host;        // "registry-1.docker.io", "127.0.0.1:5000", "[::1]:5000"
  std::string repository;  // "library/busybox", "myorg/app", "x/y"
  bool operator==(const Location&) const = default;
};

// `repo` as Reference::repo holds it ("busybox", "myorg/app", "localhost:5000/x",
// "ghcr.io/a/b", "docker.io/x" too). The first component is a host if it has a '.' or ':' or is
// "localhost"; no host or docker.io / index.docker.io means Docker Hub (registry-1.docker.io),
// where single-component names get "library/". kInvalidArgument for an empty repository path.
Result<Location> ResolveRepository(std::string_view repo);

// The registry host of a `docker login` server address: "https://index.docker.io/v1/",
// "docker.io", "" -> registry-1.docker.io; "http://localhost:5000/" -> "localhost:5000".
std::string HostFromServerAddress(std::string_view server_address);

// Whether `host` ("name[:port]", "[v6]:port") may be reached over plain HTTP: loopback names
// and addresses (localhost, 127.0.0.0/8, ::1) always; otherwise if `insecure` (daemon.json's
// insecure-registries) lists "host:port", "host", or a CIDR containing the host's IP literal.
bool PlainHttpAllowed(std::string_view host, const std::vector<std::string>& insecure);

// "127.0.0.1:5000" -> "127.0.0.1"; "[::1]:5000" -> "::1"; "example.com" -> "example.com".
std::string HostName(std::string_view host);

}  // namespace moat::image::registry
