#pragma once

// moatd's adapter to nlohmann::json (which throws): parsing without exceptions, and typed field
// access that returns errors naming the field. Code outside this adapter uses only non-throwing
// members of Json (contains, is_*, items, iteration, operator[] on non-const objects, dump with
// replacement error handling via Dump()).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace moat::daemon {

using Json = nlohmann::json;

// Parses `text`; kInvalidArgument "invalid JSON: <what>" on malformed input (nesting is limited
// by the input size the caller accepts).
Result<Json> ParseJson(std::string_view text);
// Serialises; invalid UTF-8 in strings is replaced rather than thrown on.
std::string Dump(const Json& j);

// Typed optional fields of an object. A missing key or a null leaves `out` unchanged; a value of
// another type is kInvalidArgument "<field>: expected <type>, got <type>". `field` is the
// name used in the message (e.g. "HostConfig.Memory").
Result<void> GetString(const Json& obj, const char* key, std::string* out, const std::string& field);
Result<void> GetBool(const Json& obj, const char* key, bool* out, const std::string& field);
Result<void> GetInt(const Json& obj, const char* key, int64_t* out, const std::string& field);
Result<void> GetStringList(const Json& obj, const char* key, std::vector<std::string>* out,
                           const std::string& field);
// A string list given as a list or as a single string (Docker's strslice: Cmd, Entrypoint).
Result<void> GetStrSlice(const Json& obj, const char* key, std::optional<std::vector<std::string>>* out,
                         const std::string& field);
Result<void> GetStringMap(const Json& obj, const char* key, std::map<std::string, std::string>* out,
                          const std::string& field);
// The object at `key` (nullptr if missing or null); kInvalidArgument if it is not an object.
Result<const Json*> GetObject(const Json& obj, const char* key, const std::string& field);

}  // namespace moat::daemon
