#include "cli/format.h"

#include <time.h>

#include <cctype>
#include <cmath>

#include "base/strings.h"

namespace moat::cli {

std::string HumanDuration(int64_t seconds) {
  if (seconds < 1) return "Less than a second";
  if (seconds == 1) return "1 second";
  if (seconds < 60) return StrFormat("%lld seconds", static_cast<long long>(seconds));
  int64_t minutes = seconds / 60;
  if (minutes == 1) return "About a minute";
  if (minutes < 60) return StrFormat("%lld minutes", static_cast<long long>(minutes));
  // Go rounds to the nearest hour here (d.Round(time.Hour)).
  int64_t hours = (seconds + 1800) / 3600;
  if (hours == 1) return "About an hour";
  if (hours < 48) return StrFormat("%lld hours", static_cast<long long>(hours));
  if (hours < 24 * 7 * 2) return StrFormat("%lld days", static_cast<long long>(hours / 24));
  if (hours < 24 * 30 * 2) return StrFormat("%lld weeks", static_cast<long long>(hours / 24 / 7));
  if (hours < 24 * 365 * 2)
    return StrFormat("%lld months", static_cast<long long>(hours / 24 / 30));
  return StrFormat("%lld years", static_cast<long long>(seconds / 3600 / 24 / 365));
}

namespace {

std::string CustomSize(double size, double base, const char* const* units, size_t n,
                       int precision) {
  size_t i = 0;
  while (size >= base && i < n - 1) {
    size /= base;
    ++i;
  }
  return StrFormat("%.*g%s", precision, size, units[i]);
}

}  // namespace

std::string HumanSize(double bytes) {
  static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
  return CustomSize(bytes, 1000.0, kUnits, std::size(kUnits), 3);
}

std::string BytesSize(double bytes) {
  static constexpr const char* kUnits[] = {"B",   "KiB", "MiB", "GiB", "TiB",
                                           "PiB", "EiB", "ZiB", "YiB"};
  return CustomSize(bytes, 1024.0, kUnits, std::size(kUnits), 4);
}

std::string ShortId(std::string_view id) {
  if (StartsWith(id, "sha256:")) id.remove_prefix(7);
  return std::string(id.substr(0, 12));
}

std::string Ellipsis(std::string_view s, size_t max) {
  // Counted in UTF-8 code points, as Go's runes.
  std::vector<std::string> chars;
  for (size_t i = 0; i < s.size();) {
    size_t len = 1;
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0xf0) len = 4;
    else if (c >= 0xe0) len = 3;
    else if (c >= 0xc0) len = 2;
    chars.emplace_back(s.substr(i, len));
    i += len;
  }
  if (chars.size() <= max) return std::string(s);
  std::string out;
  for (size_t i = 0; i + 1 < max; ++i) out += chars[i];
  return out + "\u2026";
}

Result<int64_t> ParseRfc3339(std::string_view s) {
  struct tm tm {};
  std::string str(s);
  const char* rest = strptime(str.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return Fail(ErrorKind::kInvalidArgument, "bad timestamp %s", str.c_str());
  if (*rest == '.')
    while (isdigit(static_cast<unsigned char>(*++rest))) {
    }
  int64_t offset = 0;
  if (*rest == '+' || *rest == '-') {
    int hh = 0, mm = 0;
    if (sscanf(rest + 1, "%d:%d", &hh, &mm) != 2)
      return Fail(ErrorKind::kInvalidArgument, "bad timestamp %s", str.c_str());
    offset = (hh * 3600 + mm * 60) * (*rest == '+' ? 1 : -1);
  } else if (*rest != 'Z') {
    return Fail(ErrorKind::kInvalidArgument, "bad timestamp %s", str.c_str());
  }
  return static_cast<int64_t>(timegm(&tm)) - offset;
}

std::string GoTimeString(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S +0000 UTC", &tm);
  return buf;
}

std::string TabWrite(const std::vector<std::string>& lines) {
  constexpr size_t kMinWidth = 10, kPadding = 3;
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> widths;
  auto width_of = [](const std::string& c) {
    size_t w = 0;
    for (unsigned char ch : c) w += (ch & 0xc0) != 0x80;
    return w;
  };
  for (const auto& line : lines) {
    cells.push_back(StrSplit(line, '\t'));
    const auto& row = cells.back();
    for (size_t i = 0; i + 1 < row.size(); ++i) {
      if (widths.size() <= i) widths.resize(i + 1, 0);
      widths[i] = std::max(widths[i], std::max(width_of(row[i]) + kPadding, kMinWidth));
    }
  }
  std::string out;
  for (const auto& row : cells) {
    for (size_t i = 0; i < row.size(); ++i) {
      out += row[i];
      if (i + 1 < row.size()) out.append(widths[i] - width_of(row[i]), ' ');
    }
    out += '\n';
  }
  return out;
}

namespace {

std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 't' || s[i + 1] == 'n')) {
      out += s[i + 1] == 't' ? '\t' : '\n';
      ++i;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> Tokens(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    if (isspace(static_cast<unsigned char>(s[i]))) {
      ++i;
      continue;
    }
    if (s[i] == '"') {
      size_t j = s.find('"', i + 1);
      if (j == std::string_view::npos) j = s.size();
      out.emplace_back(s.substr(i, j + 1 - i));
      i = j + 1;
      continue;
    }
    size_t j = i;
    while (j < s.size() && !isspace(static_cast<unsigned char>(s[j]))) ++j;
    out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

bool IsPath(const std::string& t) { return !t.empty() && t[0] == '.'; }
bool IsQuoted(const std::string& t) { return t.size() >= 2 && t[0] == '"' && t.back() == '"'; }

std::string HeaderFromField(const std::string& path) {
  std::string name = path.substr(path.rfind('.') + 1);
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (i > 0 && isupper(static_cast<unsigned char>(name[i])) &&
        islower(static_cast<unsigned char>(name[i - 1])))
      out += ' ';
    out += static_cast<char>(toupper(static_cast<unsigned char>(name[i])));
  }
  return out;
}

}  // namespace

Result<Template> Template::Parse(std::string_view format) {
  Template t;
  if (StartsWith(format, "table")) {
    t.table_ = true;
    format.remove_prefix(5);
    if (!format.empty() && format[0] == ' ') format.remove_prefix(1);
  }
  std::string f = Unescape(format);
  size_t pos = 0;
  while (pos < f.size()) {
    size_t open = f.find("{{", pos);
    if (open == std::string::npos) {
      t.pieces_.push_back({false, f.substr(pos), "", ""});
      break;
    }
    if (open > pos) t.pieces_.push_back({false, f.substr(pos, open - pos), "", ""});
    size_t close = f.find("}}", open + 2);
    if (close == std::string::npos)
      return Fail(ErrorKind::kInvalidArgument, "template parsing error: unclosed action in %s",
                  f.c_str());
    std::string inner(TrimWhitespace(std::string_view(f).substr(open + 2, close - open - 2)));
    // Go's trim markers "{{- x -}}" are accepted and ignored.
    if (StartsWith(inner, "- ")) inner = inner.substr(2);
    if (inner.size() >= 2 && inner.compare(inner.size() - 2, 2, " -") == 0)
      inner.resize(inner.size() - 2);
    auto tok = Tokens(inner);
    Piece p{true, "", "", ""};
    static constexpr const char* kUnary[] = {"json", "upper", "lower", "title", "println", "len"};
    bool ok = false;
    if (tok.size() == 1 && IsPath(tok[0])) {
      p.path = tok[0];
      ok = true;
    } else if (tok.size() == 2 && IsPath(tok[1])) {
      for (const char* fn : kUnary) ok = ok || tok[0] == fn;
      p.text = tok[0];
      p.path = tok[1];
    } else if (tok.size() == 3 && IsPath(tok[1]) && IsQuoted(tok[2]) &&
               (tok[0] == "join" || tok[0] == "index")) {
      p.text = tok[0];
      p.path = tok[1];
      p.arg = tok[2].substr(1, tok[2].size() - 2);
      ok = true;
    }
    if (!ok)
      return Fail(ErrorKind::kInvalidArgument,
                  "unsupported template action {{%s}}: moat supports {{.Field}}, {{json .}}, "
                  "{{json .Field}}, {{upper|lower|title|len|println .Field}}, "
                  "{{join .Field \"sep\"}}, {{index .Field \"key\"}}",
                  inner.c_str());
    t.pieces_.push_back(std::move(p));
    pos = close + 2;
  }
  return t;
}

std::string Template::Header(const Json& headers) const {
  std::string out;
  for (const auto& p : pieces_) {
    if (!p.action) {
      out += p.text;
      continue;
    }
    std::string field = p.path.substr(p.path.rfind('.') + 1);
    std::string h = GetString(headers, field);
    out += h.empty() ? HeaderFromField(p.path) : h;
  }
  return out;
}

std::string Template::Render(const Json& data) const {
  std::string out;
  for (const auto& p : pieces_) {
    if (!p.action) {
      out += p.text;
      continue;
    }
    const Json* v = LookupPath(data, p.path);
    Json null_value;
    if (v == nullptr) v = &null_value;
    if (p.text.empty()) {
      out += GoPrint(*v);
    } else if (p.text == "json") {
      out += Dump(*v);
    } else if (p.text == "upper" || p.text == "lower" || p.text == "title") {
      std::string s = GoPrint(*v);
      bool start = true;
      for (char& c : s) {
        unsigned char u = static_cast<unsigned char>(c);
        if (p.text == "upper" || (p.text == "title" && start)) c = static_cast<char>(toupper(u));
        else if (p.text == "lower") c = static_cast<char>(tolower(u));
        start = isspace(u);
      }
      out += s;
    } else if (p.text == "println") {
      out += GoPrint(*v) + "\n";
    } else if (p.text == "len") {
      out += std::to_string(v->is_structured() ? v->size() : GoPrint(*v).size());
    } else if (p.text == "join") {
      std::vector<std::string> parts;
      if (v->is_array())
        for (const auto& e : *v) parts.push_back(GoPrint(e));
      out += StrJoin(parts, p.arg);
    } else if (p.text == "index") {
      const Json* e = Member(*v, p.arg);
      out += e ? GoPrint(*e) : "<no value>";
    }
  }
  return out;
}

}  // namespace moat::cli
