#include "image/registry/auth.h"

#include <cctype>

namespace moat::image::registry {
namespace {

bool IsTokenChar(char c) {
  return isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~/").find(c) != std::string_view::npos;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  bool Done() {
    SkipSpace();
    return i_ >= s_.size();
  }
  bool Peek(char c) {
    SkipSpace();
    return i_ < s_.size() && s_[i_] == c;
  }
  void Skip() { ++i_; }
  std::string Token() {
    SkipSpace();
    size_t start = i_;
    while (i_ < s_.size() && IsTokenChar(s_[i_])) ++i_;
    return std::string(s_.substr(start, i_ - start));
  }
  // A quoted-string (after the opening quote was seen) or a token.
  bool Value(std::string* out) {
    SkipSpace();
    if (i_ < s_.size() && s_[i_] == '"') {
      ++i_;
      out->clear();
      while (i_ < s_.size() && s_[i_] != '"') {
        if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
        out->push_back(s_[i_++]);
      }
      if (i_ >= s_.size()) return false;  // unterminated
      ++i_;
      return true;
    }
    // Unquoted: lenient (realms such as https://x/t are often sent bare): up to ',' or space.
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != ' ' && s_[i_] != '\t') ++i_;
    *out = std::string(s_.substr(start, i_ - start));
    return true;
  }
  size_t pos() const { return i_; }
  void set_pos(size_t p) { i_ = p; }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::vector<Challenge> ParseWwwAuthenticate(std::string_view header) {
  std::vector<Challenge> out;
  Lexer lx(header);
  while (!lx.Done()) {
    if (lx.Peek(',')) {
      lx.Skip();
      continue;
    }
    std::string scheme = lx.Token();
    if (scheme.empty()) return out;
    Challenge ch;
    ch.scheme = Lower(scheme);
    // auth-params: name=value pairs separated by commas, until a token followed by a space
    // and no '=' (the next challenge's scheme).
    for (;;) {
      if (lx.Done()) break;
      size_t save = lx.pos();
      if (lx.Peek(',')) lx.Skip();
      std::string name = lx.Token();
      if (name.empty()) {
        if (lx.Peek(',')) continue;
        if (lx.Done()) break;
        out.push_back(std::move(ch));  // garbage: keep what was recognised
        return out;
      }
      if (!lx.Peek('=')) {
        lx.set_pos(save);  // the next challenge's scheme
        break;
      }
      lx.Skip();
      std::string value;
      if (!lx.Value(&value)) {
        out.push_back(ch);
        return out;
      }
      ch.params[Lower(name)] = value;
    }
    out.push_back(std::move(ch));
  }
  return out;
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string TokenUrl(const Challenge& challenge, const std::vector<std::string>& scopes,
                     std::string_view extra_query) {
  auto it = challenge.params.find("realm");
  std::string url = it == challenge.params.end() ? "" : it->second;
  char sep = url.find('?') == std::string::npos ? '?' : '&';
  auto add = [&](std::string_view k, std::string_view v) {
    url.push_back(sep);
    sep = '&';
    url.append(k);
    url.push_back('=');
    url.append(UrlEncode(v));
  };
  if (auto s = challenge.params.find("service"); s != challenge.params.end())
    add("service", s->second);
  for (const auto& scope : scopes) add("scope", scope);
  if (!extra_query.empty()) {
    url.push_back(sep);
    url.append(extra_query);
  }
  return url;
}

}  // namespace moat::image::registry
