#pragma once

// `moat network` request bodies, the address checks `run`/`create` share with them, and the
// port displays of `ps` and `port`, all built the way the docker CLI builds them
// (cli/command/network, opts/, formatter.DisplayablePorts). Pure functions, thread-safe.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "cli/json.h"

namespace moat::cli {

// An IPv4 or IPv6 literal in its canonical text form ("::0001" -> "::1"), as Go's
// net.ParseIP(...).String(); nullopt when `s` (surrounding blanks ignored) is not one.
std::optional<std::string> NormalizeIp(std::string_view s);
// Go's net.ParseMAC: 6, 8 or 20 bytes as hex pairs separated by ':' or '-', or as
// dot-separated groups of four hex digits.
bool IsValidMac(std::string_view s);
// docker's ValidateDNSSearch: "." or a domain name of letters, digits, '-' and dots (at
// least one letter, under 255 characters, an optional trailing dot).
bool IsValidDnsSearch(std::string_view s);
// container.NetworkMode(mode).IsUserDefined(): anything but default, bridge, host, none
// and container:<id>.
bool IsUserDefinedNetwork(std::string_view mode);
// Go's sortorder.NaturalLess: digit runs compare as numbers ("net2" < "net10").
bool NaturalLess(std::string_view a, std::string_view b);

// `moat network create` flags.
struct NetworkCreateFlags {
  std::string driver = "bridge";           // -d
  std::vector<std::string> opts;           // -o k=v (driver options)
  std::vector<std::string> labels;         // --label k=v
  std::vector<std::string> subnets;        // --subnet CIDR
  std::vector<std::string> gateways;       // --gateway IP
  std::vector<std::string> ip_ranges;      // --ip-range CIDR
  std::vector<std::string> aux_addresses;  // --aux-address name=IP
  std::string ipam_driver = "default";     // --ipam-driver
  std::vector<std::string> ipam_opts;      // --ipam-opt k=v
  std::string scope;                       // --scope
  bool internal = false, attachable = false, ipv6 = false;
};

// The POST /networks/create body (NetworkCreateRequest) for `name`. The IPAM configs pair
// each --ip-range, --gateway and --aux-address with the one --subnet containing it, in
// --subnet order. kInvalidArgument with docker's message for an unparsable subnet,
// overlapping subnets, a range/gateway/aux address outside every subnet, or two of one
// kind in one subnet.
Result<Json> BuildNetworkCreateBody(const std::string& name, const NetworkCreateFlags& f);

// `moat network connect` flags.
struct NetworkConnectFlags {
  std::vector<std::string> aliases;         // --alias
  std::vector<std::string> links;           // --link name[:alias]
  std::vector<std::string> link_local_ips;  // --link-local-ip
  std::vector<std::string> driver_opts;     // --driver-opt k=v
  std::string ip, ip6;                      // --ip, --ip6
};

// The POST /networks/{id}/connect body: {"Container", "EndpointConfig"{IPAMConfig, Links,
// Aliases, DriverOpts}}. kInvalidArgument for a malformed --link or --driver-opt.
Result<Json> BuildNetworkConnectBody(const std::string& container, const NetworkConnectFlags& f);
// The POST /networks/{id}/disconnect body.
Json BuildNetworkDisconnectBody(const std::string& container, bool force);

// docker's ValidateLink: "name" or "name:alias". kInvalidArgument otherwise.
Result<void> ValidateLink(std::string_view link);

// One `network ls` row from a GET /networks entry: ID (12 characters unless `no_trunc`),
// Name, Driver, Scope, IPv6, Internal, Labels ("k=v,..."), CreatedAt.
Json NetworkListRow(const Json& network, bool no_trunc);

// The PORTS column of `ps` from a GET /containers/json entry's Ports array, exactly as
// docker's formatter.DisplayablePorts: sorted by private port, IP, public port, type;
// consecutive ports published on the same port number grouped ("0.0.0.0:80-81->80-81/tcp",
// "8000-8001/udp"), other mappings ("0.0.0.0:8080->80/tcp") after them. "" for none.
std::string DisplayablePorts(const Json* ports);

// The lines `moat port CONTAINER [PRIVATE_PORT[/PROTO]]` prints from inspect's
// NetworkSettings.Ports ({"80/tcp":[{"HostIp","HostPort"}]}): "80/tcp -> 0.0.0.0:8080"
// for all mappings, or "0.0.0.0:8080" for the one asked (proto defaults to tcp), IPv6 hosts
// bracketed, in natural order. kInvalidArgument for a bad port number; kNotFound
// "Error: No public port '80/tcp' published for CONTAINER" when it is not published.
Result<std::vector<std::string>> PortLines(const Json* ports, std::string_view private_port,
                                           std::string_view container);

}  // namespace moat::cli
