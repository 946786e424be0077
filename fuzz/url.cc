// Fuzz target: the API front's request-target helpers, src/daemon/api/url.h (pure functions,
// so this runs far faster than http_request, which reaches them through a socket): percent
// decoding, query parsing, the /vX.Y/ prefix and version window, the router, JsonQuote.
// Checks: a version accepted by CheckApiVersion is inside [1.40, 1.47]; SplitVersionPrefix
// gives back pieces of its input; JsonQuote of valid UTF-8 parses back (nlohmann) to the same
// bytes; a query's decoded pieces never contain more bytes than the query.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "daemon/api/http.h"
#include "daemon/api/url.h"
#include "fuzz_util.h"

using namespace moat::daemon::api;

namespace {

// RFC 3629 UTF-8 (no overlongs, no surrogates, at most U+10FFFF), as nlohmann accepts it.
bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) {
      n = 1, cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2, cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3, cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

const Router& TheRouter() {
  static const Router* router = [] {
    auto* r = new Router;
    Handler h = [](Request&, Responder&) {};
    r->Add("GET", "/containers/json", BodyMode::kBuffered, h);
    r->Add("GET", "/containers/{id}/json", BodyMode::kBuffered, h);
    r->Add("POST", "/containers/{id}/attach", BodyMode::kBuffered, h);
    r->Add("PUT", "/containers/{id}/archive", BodyMode::kStreamed, h);
    r->Add("GET", "/images/{name*}/json", BodyMode::kBuffered, h);
    r->Add("POST", "/images/{name*}/push", BodyMode::kBuffered, h);
    r->Add("DELETE", "/images/{name*}", BodyMode::kBuffered, h);
    r->Add("GET", "/networks/{id}", BodyMode::kBuffered, h);
    return r;
  }();
  return *router;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view target(reinterpret_cast<const char*>(data), size);
  size_t qmark = target.find('?');
  std::string_view raw_path = target.substr(0, qmark);
  std::string_view raw_query =
      qmark == std::string_view::npos ? std::string_view() : target.substr(qmark + 1);

  std::string path_text(raw_path);
  if (auto prefix = SplitVersionPrefix(raw_path)) {
    if (raw_path.find(prefix->version) != 2 || !raw_path.ends_with(prefix->rest) ||
        prefix->rest.empty() || prefix->rest[0] != '/')
      moat::fuzz::Violation("SplitVersionPrefix returned pieces not of its input",
                            std::string(raw_path));
    if (auto minor = CheckApiVersion(prefix->version)) {
      if (*minor < kMinApiMinor || *minor > kMaxApiMinor)
        moat::fuzz::Violation("CheckApiVersion accepted a version outside the window",
                              prefix->version + " -> " + std::to_string(*minor));
    }
    path_text = prefix->rest;
  }
  if (auto path = PercentDecode(path_text, PlusIsSpace::kNo)) {
    if (path->size() > path_text.size())
      moat::fuzz::Violation("percent-decoding grew the path", path_text);
    for (const char* method : {"GET", "POST", "DELETE", "PUT"}) {
      Router::Match m = TheRouter().Find(method, *path);
      if (m.handler && !m.path_known) moat::fuzz::Violation("a match with an unknown path", *path);
      for (const auto& [k, v] : m.params)
        if (path->find(v) == std::string::npos)
          moat::fuzz::Violation("a route parameter that is not part of the path", k + "=" + v);
    }
  }
  if (auto query = ParseQuery(raw_query)) {
    size_t total = 0;
    for (const auto& [k, v] : *query) total += k.size() + v.size();
    if (total > raw_query.size()) moat::fuzz::Violation("the query grew", std::string(raw_query));
  }
  (void)PercentDecode(target, PlusIsSpace::kYes);

  std::string quoted = JsonQuote(target);
  if (ValidUtf8(target)) {
    auto parsed = nlohmann::json::parse(quoted, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_string() || parsed.get_ref<const std::string&>() != target)
      moat::fuzz::Violation("JsonQuote of valid UTF-8 does not parse back", quoted);
  }
  return 0;
}
