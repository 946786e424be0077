#include "daemon/api/url.h"

#include <climits>
#include <vector>

#include "base/strings.h"
#include "daemon/api/http.h"

namespace moat::daemon::api {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Version components compared as numbers, like moby's versions.compare; a component that is
// not a number counts as 0 and one too large for an int saturates.
std::vector<int> VersionParts(const std::string& version) {
  std::vector<int> parts;
  for (const std::string& piece : StrSplit(version, '.')) {
    std::optional<int64_t> v = ParseInt64(piece);
    if (!v) {
      bool digits = !piece.empty() && piece.find_first_not_of("0123456789") == std::string::npos;
      parts.push_back(digits ? INT_MAX : 0);
    } else {
      parts.push_back(*v > INT_MAX ? INT_MAX : static_cast<int>(*v));
    }
  }
  return parts;
}

// <0, 0, >0 as a < b, a == b, a > b; missing components count as 0.
int CompareVersions(const std::vector<int>& a, const std::vector<int>& b) {
  for (size_t i = 0; i < a.size() || i < b.size(); ++i) {
    int x = i < a.size() ? a[i] : 0;
    int y = i < b.size() ? b[i] : 0;
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

}  // namespace

Result<std::string> PercentDecode(std::string_view s, PlusIsSpace plus) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      int hi = i + 2 < s.size() ? HexValue(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? HexValue(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) {
        std::string bad(s.substr(i, 3));
        return Fail(ErrorKind::kInvalidArgument, "invalid URL escape \"%s\"", bad.c_str());
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus == PlusIsSpace::kYes) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<std::multimap<std::string, std::string>> ParseQuery(std::string_view query) {
  std::multimap<std::string, std::string> out;
  for (const std::string& piece : StrSplit(query, '&')) {
    if (piece.empty()) continue;
    size_t eq = piece.find('=');
    std::string_view key_raw = std::string_view(piece).substr(0, eq);
    std::string_view value_raw =
        eq == std::string::npos ? std::string_view() : std::string_view(piece).substr(eq + 1);
    MOAT_ASSIGN_OR_RETURN(std::string key, PercentDecode(key_raw, PlusIsSpace::kYes));
    MOAT_ASSIGN_OR_RETURN(std::string value, PercentDecode(value_raw, PlusIsSpace::kYes));
    out.emplace(std::move(key), std::move(value));
  }
  return out;
}

std::optional<VersionPrefix> SplitVersionPrefix(std::string_view path) {
  // moby's route: "/v{version:[0-9.]+}" + the route path.
  if (!StartsWith(path, "/v")) return std::nullopt;
  size_t end = path.find('/', 2);
  if (end == std::string_view::npos || end == 2) return std::nullopt;
  std::string_view version = path.substr(2, end - 2);
  if (version.find_first_not_of("0123456789.") != std::string_view::npos) return std::nullopt;
  return VersionPrefix{std::string(version), std::string(path.substr(end))};
}

Result<int> CheckApiVersion(const std::string& version) {
  std::vector<int> parts = VersionParts(version);
  if (CompareVersions(parts, {1, kMaxApiMinor}) > 0)
    return Fail(ErrorKind::kInvalidArgument,
                "client version %s is too new. Maximum supported API version is 1.%d",
                version.c_str(), kMaxApiMinor);
  if (CompareVersions(parts, {1, kMinApiMinor}) < 0)
    return Fail(ErrorKind::kInvalidArgument,
                "client version %s is too old. Minimum supported API version is 1.%d, please "
                "upgrade your client to a newer version",
                version.c_str(), kMinApiMinor);
  // Inside the window the major version is 1 and the minor is in range.
  return parts.size() > 1 ? parts[1] : 0;
}

std::string JsonQuote(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f)
          out += StrFormat("\\u%04x", c);
        else
          out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace moat::daemon::api
