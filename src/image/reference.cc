// Image reference parsing with Docker's normalisation (distribution/reference grammar).
#include <cctype>

#include "image/digest.h"
#include "image/store.h"

namespace moat::image {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// path-component: [a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*
bool ValidComponent(std::string_view c) {
  if (c.empty() || !IsLowerAlnum(c.front()) || !IsLowerAlnum(c.back())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (IsLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !IsLowerAlnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" ||
              sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok) return false;
    i = j;
  }
  return true;
}

// domain: host[:port], host components [a-zA-Z0-9-]+ separated by '.', or an IPv6 literal.
bool ValidDomain(std::string_view d) {
  if (d.empty()) return false;
  std::string_view host = d;
  size_t colon = d.rfind(':');
  if (colon != std::string_view::npos && d.front() != '[') {
    std::string_view port = d.substr(colon + 1);
    if (port.empty()) return false;
    for (char c : port)
      if (!isdigit(static_cast<unsigned char>(c))) return false;
    host = d.substr(0, colon);
  }
  if (host.empty()) return false;
  if (host.front() == '[') return host.back() == ']' || host.find("]:") != std::string_view::npos;
  for (char c : host) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  }
  return host.front() != '.' && host.back() != '.';
}

bool ValidTag(std::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  auto word = [](char c) { return isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  if (!word(t[0])) return false;
  for (char c : t)
    if (!word(c) && c != '.' && c != '-') return false;
  return true;
}

Unexpected Invalid(const char* why) {
  return Fail(ErrorKind::kInvalidArgument, "invalid reference format%s%s", *why ? ": " : "",
              why);
}

}  // namespace

std::string Reference::String() const {
  std::string s = repo;
  if (!tag.empty()) s += ":" + tag;
  if (!digest.empty()) s += "@" + digest;
  return s;
}

std::string Reference::TagString() const { return tag.empty() ? "" : repo + ":" + tag; }

Result<Reference> ParseReference(std::string_view s) {
  if (s.empty()) return Invalid("");
  if (s.size() > 4096) return Invalid("name too long");
  Reference ref;
  std::string_view rest = s;
  size_t at = rest.find('@');
  if (at != std::string_view::npos) {
    std::string_view digest = rest.substr(at + 1);
    if (!DigestHex(digest)) return Invalid("invalid digest");
    ref.digest = std::string(digest);
    rest = rest.substr(0, at);
  }
  // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    std::string_view tag = rest.substr(colon + 1);
    if (!ValidTag(tag)) return Invalid("invalid tag");
    ref.tag = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return Invalid("");
  // Split off a domain: the first component if it has '.' or ':' or is "localhost".
  std::string domain;
  std::string_view path = rest;
  size_t first = rest.find('/');
  if (first != std::string_view::npos) {
    std::string_view c = rest.substr(0, first);
    if (c.find_first_of(".:") != std::string_view::npos || c == "localhost") {
      if (!ValidDomain(c)) return Invalid("invalid domain");
      domain = std::string(c);
      path = rest.substr(first + 1);
    }
  }
  if (path.empty()) return Invalid("");
  for (char c : path) {
    if (isupper(static_cast<unsigned char>(c)))
      return Invalid("repository name must be lowercase");
  }
  for (const auto& comp : StrSplit(path, '/')) {
    if (!ValidComponent(comp)) return Invalid("invalid repository name");
  }
  // Docker Hub names lose their domain when normalised: the rule covers them too (found by
  // fuzz/reference.cc: "docker.io/<64 hex>" would be stored as a name that does not parse).
  if ((domain.empty() || domain == "docker.io" || domain == "index.docker.io") && IsSha256Hex(path))
    return Fail(ErrorKind::kInvalidArgument,
                "invalid repository name (%.*s), cannot specify 64-byte hexadecimal strings",
                static_cast<int>(path.size()), path.data());
  if (domain == "index.docker.io") domain = "docker.io";
  std::string p(path);
  // "docker.io/a.b/c" keeps its domain: shortened to "a.b/c" it would name registry a.b.
  std::string_view head = std::string_view(p).substr(0, p.find('/'));
  bool head_is_host = p.find('/') != std::string::npos &&
                      (head.find_first_of(".:") != std::string_view::npos || head == "localhost");
  if (domain.empty() || (domain == "docker.io" && !head_is_host)) {
    if (StartsWith(p, "library/") && p.find('/', 8) == std::string::npos) p = p.substr(8);
    // What is stored must parse again: "library/<64 hex>" normalises to a bare hex name.
    if (IsSha256Hex(p))
      return Fail(ErrorKind::kInvalidArgument,
                  "invalid repository name (%s), cannot specify 64-byte hexadecimal strings",
                  p.c_str());
    ref.repo = p;
  } else {
    ref.repo = domain + "/" + p;
  }
  if (ref.repo.size() > 255) return Invalid("repository name must not be more than 255 characters");
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

}  // namespace moat::image
