#pragma once

#include <optional>
#include <string>
#include <string_view>

// Base64 (RFC 4648) for the Docker API's X-Registry-Auth header and credential files. OpenSSL's
// EVP block functions do only the standard alphabet with padding; Docker clients send the
// URL-safe alphabet, with or without padding, so this codec is Moat's own.
namespace moat {

enum class Base64Alphabet { kStandard, kUrl };

// Encodes with '=' padding.
std::string Base64Encode(std::string_view data, Base64Alphabet alphabet = Base64Alphabet::kStandard);

// Decodes either alphabet (they may not be mixed within one input), with or without padding.
// Surrounding ASCII whitespace is ignored; anything else that is not part of the alphabet, a
// misplaced '=' or a length that cannot be base64 gives nullopt.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace moat
