#pragma once

// Pure formatting helpers matching the docker CLI's output (go-units, formatter package).
// No I/O; all functions are thread-safe.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "cli/json.h"

namespace moat::cli {

// go-units HumanDuration: "Less than a second", "1 second", "5 seconds", "About a minute",
// "3 minutes", "About an hour", "5 hours", "3 days", "2 weeks", "3 months", "2 years".
std::string HumanDuration(int64_t seconds);
// Decimal sizes with 3 significant digits, as `docker images`: "2.14MB", "512B", "1.2kB".
std::string HumanSize(double bytes);
// Binary sizes, as `docker stats`: "1.5MiB".
std::string BytesSize(double bytes);
// The first 12 hex characters of an id, without a "sha256:" prefix.
std::string ShortId(std::string_view id);
// "sh -c 'echo hi'" shortened to `max` characters with a trailing "…", as ps prints COMMAND.
std::string Ellipsis(std::string_view s, size_t max);
// Parses RFC 3339 ("2026-11-29T13:47:22.024001272Z", offsets allowed) to unix seconds.
Result<int64_t> ParseRfc3339(std::string_view s);
// Unix seconds as "2026-11-29 13:47:22 +0000 UTC", as Go prints a time.Time in UTC.
std::string GoTimeString(int64_t unix_seconds);

// Aligns '\t'-separated cells like Go's tabwriter with minwidth 10, padding 3, padchar ' '
// (the docker CLI's table writer). The last cell of each line is not padded.
std::string TabWrite(const std::vector<std::string>& lines);

// A parsed Go text/template subset. Supported actions: {{.A.B}} (path lookup; "." alone is
// the whole value), {{json .X}}, {{upper .X}}, {{lower .X}}, {{title .X}}, {{println .X}},
// {{join .X "sep"}}, {{index .X "key"}}, {{len .X}}, and "\t"/"\n" escapes in the text. A
// format starting "table " renders a header line from the field names. Anything else
// (range, if, pipes, variables) is a kInvalidArgument error naming the action.
class Template {
 public:
  static Result<Template> Parse(std::string_view format);
  // True for a "table ..." format.
  bool is_table() const { return table_; }
  // The header line for a table format: each {{.Field}} replaced by `headers[Field]` or the
  // field name in upper case with camel-case split ("RunningFor" -> "RUNNING FOR").
  std::string Header(const Json& headers) const;
  std::string Render(const Json& data) const;

 private:
  struct Piece {
    bool action = false;
    std::string text;               // literal, or the function name ("" for a plain path)
    std::string path;               // argument path
    std::string arg;                // string argument (join, index)
  };
  std::vector<Piece> pieces_;
  bool table_ = false;
};

}  // namespace moat::cli
