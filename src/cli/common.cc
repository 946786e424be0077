// Shared pieces of the command files: the lazily connected client, error reporting,
// query building and formatted output.

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>

#include "base/log.h"
#include "base/strings.h"
#include "cli/commands.h"
#include "cli/format.h"

namespace moat::cli {

Result<ApiClient*> Context::Client() {
  if (client_) return client_.get();
  MOAT_ASSIGN_OR_RETURN(std::string host,
                        ResolveHost(host_flag, getenv("MOAT_HOST"), getenv("DOCKER_HOST"),
                                    getenv("DOCKER_TLS_VERIFY")));
  auto client = std::make_unique<ApiClient>(host);
  MOAT_TRY(client->Negotiate());
  MOAT_LOG(kDebug, "api version %s (daemon %s)", client->api_version().c_str(),
           client->daemon_api_version().c_str());
  client_ = std::move(client);
  return client_.get();
}

int ReportError(const Error& error, int code) {
  fprintf(stderr, "%s\n", error.message.c_str());
  return code;
}

int ExitStatus(const Result<void>& r) {
  if (r.has_value()) return 0;
  // The reader of our stdout went away (`moat logs -f c | head`): not worth a message.
  if (r.error().sys_errno == EPIPE) return 1;
  return ReportError(r.error());
}

std::string QueryEscape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') out += static_cast<char>(c);
    else out += StrFormat("%%%02X", c);
  }
  return out;
}

std::string Query(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (v.empty()) continue;
    out += out.empty() ? "?" : "&";
    out += k + "=" + QueryEscape(v);
  }
  return out;
}

std::string FiltersJson(const std::vector<std::string>& filters) {
  if (filters.empty()) return "";
  Json j = Json::object();
  for (const auto& f : filters) {
    size_t eq = f.find('=');
    std::string k = f.substr(0, eq);
    std::string v = eq == std::string::npos ? "" : f.substr(eq + 1);
    j[k][v] = true;
  }
  return Dump(j);
}

Result<void> PrintFormatted(const std::string& format, const std::string& default_format,
                            const Json& headers, const std::vector<Json>& rows) {
  std::string f = format.empty() || format == "table" ? default_format : format;
  std::string out;
  if (f == "json") {
    for (const auto& r : rows) out += Dump(r) + "\n";
  } else {
    MOAT_ASSIGN_OR_RETURN(Template t, Template::Parse(f));
    std::vector<std::string> lines;
    if (t.is_table()) lines.push_back(t.Header(headers));
    for (const auto& r : rows) {
      std::string line = t.Render(r);
      // A rendered value may contain newlines (println); each becomes its own line.
      for (auto& l : StrSplit(line, '\n')) lines.push_back(l);
      if (!line.empty() && line.back() == '\n') lines.pop_back();
    }
    out = TabWrite(lines);
  }
  fputs(out.c_str(), stdout);
  return Ok();
}

// "10m", "1h30m", "2026-11-29T13:00:00Z" or unix seconds -> the unix-seconds string the API
// takes.
Result<std::string> ParseTimeArg(const std::string& s, const char* flag) {
  if (s.empty()) return std::string();
  if (ParseInt64(s) || s.find('.') != std::string::npos) {
    bool numeric = true;
    for (char ch : s) numeric = numeric && (isdigit(static_cast<unsigned char>(ch)) || ch == '.');
    if (numeric) return s;
  }
  if (auto t = ParseRfc3339(s); t.has_value()) return std::to_string(*t);
  // Go durations: sequences of <number><unit> with units h m s.
  int64_t total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && isdigit(static_cast<unsigned char>(s[j]))) ++j;
    auto n = ParseInt64(s.substr(i, j - i));
    if (!n || j >= s.size())
      return Fail(ErrorKind::kInvalidArgument,
                  "invalid value %s for %s: use a timestamp, unix seconds or a duration like 10m",
                  s.c_str(), flag);
    char unit = s[j];
    int64_t mult = unit == 'h' ? 3600 : unit == 'm' ? 60 : unit == 's' ? 1 : 0;
    if (mult == 0)
      return Fail(ErrorKind::kInvalidArgument, "invalid duration %s for %s", s.c_str(), flag);
    total += *n * mult;
    i = j + 1;
  }
  return std::to_string(static_cast<int64_t>(time(nullptr)) - total);
}

bool Confirm(const char* warning) {
  fprintf(stderr, "%s\nAre you sure you want to continue? [y/N] ", warning);
  fflush(stderr);
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return answer == "y" || answer == "Y" || answer == "yes";
}

}  // namespace moat::cli
