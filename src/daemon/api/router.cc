// Router and Request accessors of http.h: pure code, no I/O.

#include <algorithm>
#include <cctype>

#include "base/strings.h"
#include "daemon/api/http.h"

namespace moat::daemon::api {
namespace {

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsParam(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}
bool IsGreedy(const std::string& segment) {
  return IsParam(segment) && segment[segment.size() - 2] == '*';
}
std::string ParamName(const std::string& segment) {
  return segment.substr(1, segment.size() - (IsGreedy(segment) ? 3 : 2));
}

// Matches pattern[pi..] against path[si..], filling `params`. A greedy parameter tries the
// longest run of segments first, so "/images/{name*}/json" gives "a/json" for
// "/images/a/json/json", as moby's "{name:.*}" regex does.
bool MatchFrom(const std::vector<std::string>& pattern, size_t pi,
               const std::vector<std::string>& path, size_t si,
               std::map<std::string, std::string>& params) {
  if (pi == pattern.size()) return si == path.size();
  if (si == path.size()) return false;
  const std::string& seg = pattern[pi];
  if (IsGreedy(seg)) {
    size_t rest = pattern.size() - pi - 1;  // segments the pattern still needs after this one
    if (path.size() - si < rest + 1) return false;
    for (size_t end = path.size() - rest; end > si; --end) {
      std::vector<std::string> run(path.begin() + static_cast<ptrdiff_t>(si),
                                   path.begin() + static_cast<ptrdiff_t>(end));
      std::string value = StrJoin(run, "/");
      if (value.empty()) continue;
      std::map<std::string, std::string> saved = params;
      params[ParamName(seg)] = std::move(value);
      if (MatchFrom(pattern, pi + 1, path, end, params)) return true;
      params = std::move(saved);
    }
    return false;
  }
  if (IsParam(seg)) {
    if (path[si].empty()) return false;
    params[ParamName(seg)] = path[si];
    return MatchFrom(pattern, pi + 1, path, si + 1, params);
  }
  return seg == path[si] && MatchFrom(pattern, pi + 1, path, si + 1, params);
}

}  // namespace

std::optional<std::string> Request::Query(const std::string& key) const {
  auto it = query.find(key);
  if (it == query.end()) return std::nullopt;
  return it->second;
}

bool Request::QueryBool(const std::string& key, bool fallback) const {
  std::optional<std::string> v = Query(key);
  if (!v) return fallback;
  std::string s = ToLower(TrimWhitespace(*v));
  return !(s.empty() || s == "0" || s == "no" || s == "false" || s == "none");
}

std::string Request::Header(const std::string& name) const {
  auto it = headers.find(ToLower(name));
  return it == headers.end() ? std::string() : it->second;
}

void Router::Add(const std::string& method, const std::string& pattern, BodyMode body,
                 Handler handler) {
  routes_.push_back(Route{method, StrSplit(pattern, '/'), body, std::move(handler)});
}

Router::Match Router::Find(const std::string& method, const std::string& path) const {
  Match out;
  std::vector<std::string> segments = StrSplit(path, '/');
  for (const Route& route : routes_) {
    std::map<std::string, std::string> params;
    if (!MatchFrom(route.segments, 0, segments, 0, params)) continue;
    out.path_known = true;
    if (route.method != method) continue;
    out.handler = &route.handler;
    out.body = route.body;
    out.params = std::move(params);
    return out;
  }
  return out;
}

}  // namespace moat::daemon::api
