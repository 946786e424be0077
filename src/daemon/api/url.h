#pragma once

// Request-target helpers of the API front's HTTP server: percent-decoding as Go's net/url does
// it (dockerd's behaviour), query parsing, and the /vX.Y/ version prefix. Pure functions.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace moat::daemon::api {

enum class PlusIsSpace { kNo, kYes };

// Decodes %XX escapes (either case). With PlusIsSpace::kYes (query strings, like Go's
// url.QueryUnescape) '+' becomes ' '. Fails (kInvalidArgument) on a malformed escape.
Result<std::string> PercentDecode(std::string_view s, PlusIsSpace plus);

// Parses "a=1&b=x%2Fy&c" like Go's url.ParseQuery: '&'-separated, keys and values
// percent-decoded with '+' as space, a key without '=' gets "", empty pieces are skipped.
// Fails (kInvalidArgument) on a malformed escape.
Result<std::multimap<std::string, std::string>> ParseQuery(std::string_view query);

// A path that starts with "/v<digits and dots>/": the version text and the rest of the path
// (starting with "/"). Paths without the prefix give nullopt.
struct VersionPrefix {
  std::string version;  // "1.41"
  std::string rest;     // "/containers/json"
};
std::optional<VersionPrefix> SplitVersionPrefix(std::string_view path);

// Checks a version text against [1.kMinApiMinor, 1.kMaxApiMinor] and returns its minor number;
// outside the window (or malformed) fails with kInvalidArgument and dockerd's message.
Result<int> CheckApiVersion(const std::string& version);

// JSON string literal (with the quotes) for `s`: escapes '"', '\\' and control characters;
// other bytes pass through.
std::string JsonQuote(std::string_view s);

}  // namespace moat::daemon::api
