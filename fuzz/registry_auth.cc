// Fuzz target: what a registry (or anything that answers in its place) sends back before any
// blob: WWW-Authenticate challenges (image/registry/auth.h), token endpoint answers and error
// bodies (registry_json.h); plus the repository-to-registry mapping and the plain-HTTP rule
// (location.h), which see names from API requests. The first byte picks the parser.
// Checks: challenge schemes and parameter names come out lowercase; a Bearer challenge with a
// realm gives a token URL that starts with the realm; a parsed token is not empty; a resolved
// repository has a host and a non-empty path.

#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "image/registry/auth.h"
#include "image/registry/location.h"
#include "image/registry/registry_json.h"

namespace {

bool IsLower(const std::string& s) {
  for (unsigned char c : s)
    if (std::isupper(c)) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace moat::image::registry;
  if (size == 0) return 0;
  std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0: {
      for (const Challenge& c : ParseWwwAuthenticate(text)) {
        if (!IsLower(c.scheme)) moat::fuzz::Violation("challenge scheme not lowercase", c.scheme);
        for (const auto& [k, v] : c.params)
          if (!IsLower(k)) moat::fuzz::Violation("challenge parameter not lowercase", k);
        auto realm = c.params.find("realm");
        if (c.scheme == "bearer" && realm != c.params.end()) {
          std::string url = TokenUrl(c, {"repository:moat/x:pull", "repository:a b:push"}, "x=1");
          if (url.compare(0, realm->second.size(), realm->second) != 0)
            moat::fuzz::Violation("token URL does not start with the realm", url);
        }
      }
      break;
    }
    case 1: {
      auto t = ParseTokenResponse(text);
      if (t && t->token.empty()) moat::fuzz::Violation("a parsed token response without a token", text);
      break;
    }
    case 2: {
      std::string code;
      (void)RegistryErrorText(text, &code);
      break;
    }
    case 3: {
      auto loc = ResolveRepository(text);
      if (loc && (loc->host.empty() || loc->repository.empty()))
        moat::fuzz::Violation("a resolved repository without host or path", text);
      if (loc) (void)PlainHttpAllowed(loc->host, {"10.0.0.0/8", "registry.local:5000", "::1/128"});
      (void)HostFromServerAddress(text);
      (void)UrlEncode(text);
      break;
    }
  }
  return 0;
}
