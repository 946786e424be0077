#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"

// The registry client's JSON: token endpoint answers and error bodies. registry_json.cc is the
// registry library's only nlohmann-json user (it catches the library's exceptions).
namespace moat::image::registry {

struct TokenResponse {
  std::string token;          // "token", else "access_token"
  std::string refresh_token;  // identity token for later logins ("" if none)
  int64_t expires_in = 0;     // seconds; 0: not given
};

// kInvalidArgument for malformed JSON or a missing token.
Result<TokenResponse> ParseTokenResponse(const std::string& body);

// The first error of a registry error body {"errors":[{"code":"MANIFEST_UNKNOWN","message":..}]}
// as "manifest unknown: <message>" style text (code lowercased, '_' -> ' '), or "" if the body
// is not one.
std::string RegistryErrorText(const std::string& body, std::string* code);

}  // namespace moat::image::registry
