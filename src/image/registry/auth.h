#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

// Registry authentication helpers: WWW-Authenticate challenges (RFC 7235) and the token
// endpoint's URL. Pure functions, thread-safe.
namespace moat::image::registry {

struct Challenge {
  std::string scheme;                         // lowercase: "bearer", "basic"
  std::map<std::string, std::string> params;  // keys lowercase: "realm", "service", "scope"
  bool operator==(const Challenge&) const = default;
};

// Parses one WWW-Authenticate header value, which may hold several challenges:
//   Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="a:b:pull"
//   Basic realm="Registry Realm"
// Quoted strings may contain commas and backslash escapes; token68 values (no '=') are skipped.
// Malformed input gives the challenges recognised up to that point (never fails).
std::vector<Challenge> ParseWwwAuthenticate(std::string_view header);

// Percent-encodes everything except RFC 3986 unreserved characters.
std::string UrlEncode(std::string_view s);

// The token request URL for a Bearer challenge: realm?service=..&scope=..(&scope=..) plus
// `extra_query` ("offline_token=true&client_id=moat") if not empty.
std::string TokenUrl(const Challenge& challenge, const std::vector<std::string>& scopes,
                     std::string_view extra_query);

}  // namespace moat::image::registry
