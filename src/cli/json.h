#pragma once

// The moat CLI's JSON vocabulary. json.cc is the CLI's only place that calls nlohmann/json
// operations that can throw (parse, typed get, dump); it catches and returns Result.
//
// Other CLI files may *build* values with the non-throwing operations: constructing from
// scalars/strings/initializer lists, operator[] on an object or null value (it becomes an
// object), push_back on an array or null value. Reading goes through the accessors below,
// which check types and never throw.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace moat::cli {

// Ordered: objects keep the daemon's key order, so `inspect` prints what the daemon sent.
using Json = nlohmann::ordered_json;

// Parses `text`. kInvalidArgument with the parser's position on malformed input.
Result<Json> ParseJson(std::string_view text);

// Compact (indent < 0) or indented serialisation. Invalid UTF-8 is replaced, never thrown.
std::string Dump(const Json& j, int indent = -1);

// Member `key` of object `j`, or nullptr when `j` is not an object or lacks it.
const Json* Member(const Json& j, std::string_view key);
// Typed reads of member `key`; the fallback when missing or of another type.
std::string GetString(const Json& j, std::string_view key, std::string_view fallback = "");
int64_t GetInt(const Json& j, std::string_view key, int64_t fallback = 0);
double GetDouble(const Json& j, std::string_view key, double fallback = 0);
bool GetBool(const Json& j, std::string_view key, bool fallback = false);
// The strings of array member `key` (non-strings skipped).
std::vector<std::string> GetStrings(const Json& j, std::string_view key);

// The value at a Go-template style path ".State.ExitCode" (leading dot optional; "." is `j`
// itself). Member names match exactly first, then case-insensitively as Go's text/template
// does for struct fields of the API types. nullptr when absent.
const Json* LookupPath(const Json& j, std::string_view path);

// How a value prints in a Go template: strings bare, numbers without exponent for
// integers, null as "<no value>", objects/arrays as Go prints maps ("map[k:v]") and slices
// ("[a b]").
std::string GoPrint(const Json& j);

}  // namespace moat::cli
