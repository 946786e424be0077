// The registry library's only nlohmann-json user: every call that can throw is inside a try.
#include "image/registry/registry_json.h"

#include <nlohmann/json.hpp>

namespace moat::image::registry {

using json = nlohmann::json;

Result<TokenResponse> ParseTokenResponse(const std::string& body) {
  try {
    json j = json::parse(body);
    TokenResponse t;
    if (auto it = j.find("token"); it != j.end() && it->is_string()) t.token = *it;
    if (t.token.empty())
      if (auto it = j.find("access_token"); it != j.end() && it->is_string()) t.token = *it;
    if (auto it = j.find("refresh_token"); it != j.end() && it->is_string()) t.refresh_token = *it;
    if (auto it = j.find("expires_in"); it != j.end() && it->is_number_integer())
      t.expires_in = *it;
    if (t.token.empty()) return Fail(ErrorKind::kInvalidArgument, "token response without a token");
    return t;
  } catch (const std::exception& e) {
    return Fail(ErrorKind::kInvalidArgument, "invalid token response: %s", e.what());
  }
}

std::string RegistryErrorText(const std::string& body, std::string* code) {
  try {
    json j = json::parse(body);
    const json& errs = j.at("errors");
    if (!errs.is_array() || errs.empty()) return "";
    const json& e = errs.at(0);
    std::string c = e.value("code", "");
    std::string msg = e.value("message", "");
    if (code) *code = c;
    std::string text;
    for (char ch : c) text.push_back(ch == '_' ? ' ' : static_cast<char>(tolower(ch)));
    if (!msg.empty() && msg != text) text += text.empty() ? msg : ": " + msg;
    return text;
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace moat::image::registry
