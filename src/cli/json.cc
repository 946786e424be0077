// The CLI's only caller of throwing nlohmann/json operations (STYLE 4): every exception is
// caught here and becomes a moat::Error.

#include "cli/json.h"

#include <strings.h>

#include <cmath>
#include <exception>

#include "base/strings.h"

namespace moat::cli {

Result<Json> ParseJson(std::string_view text) {
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const std::exception& e) {
    return Fail(ErrorKind::kInvalidArgument, "malformed json from daemon: %s", e.what());
  }
}

std::string Dump(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

const Json* Member(const Json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::string GetString(const Json& j, std::string_view key, std::string_view fallback) {
  const Json* m = Member(j, key);
  if (m == nullptr || !m->is_string()) return std::string(fallback);
  return m->get_ref<const std::string&>();
}

int64_t GetInt(const Json& j, std::string_view key, int64_t fallback) {
  const Json* m = Member(j, key);
  if (m == nullptr) return fallback;
  if (m->is_number_integer()) return m->get<int64_t>();
  if (m->is_number_unsigned()) return static_cast<int64_t>(m->get<uint64_t>());
  if (m->is_number_float()) return static_cast<int64_t>(m->get<double>());
  return fallback;
}

double GetDouble(const Json& j, std::string_view key, double fallback) {
  const Json* m = Member(j, key);
  if (m == nullptr || !m->is_number()) return fallback;
  return m->get<double>();
}

bool GetBool(const Json& j, std::string_view key, bool fallback) {
  const Json* m = Member(j, key);
  if (m == nullptr || !m->is_boolean()) return fallback;
  return m->get<bool>();
}

std::vector<std::string> GetStrings(const Json& j, std::string_view key) {
  std::vector<std::string> out;
  const Json* m = Member(j, key);
  if (m == nullptr || !m->is_array()) return out;
  for (const auto& e : *m)
    if (e.is_string()) out.push_back(e.get_ref<const std::string&>());
  return out;
}

const Json* LookupPath(const Json& j, std::string_view path) {
  if (!path.empty() && path[0] == '.') path.remove_prefix(1);
  const Json* cur = &j;
  if (path.empty()) return cur;
  for (const std::string& part : StrSplit(path, '.')) {
    if (!cur->is_object() || part.empty()) return nullptr;
    const Json* next = Member(*cur, part);
    if (next == nullptr) {
      for (auto it = cur->begin(); it != cur->end(); ++it) {
        if (strcasecmp(it.key().c_str(), part.c_str()) == 0) {
          next = &*it;
          break;
        }
      }
    }
    if (next == nullptr) return nullptr;
    cur = next;
  }
  return cur;
}

std::string GoPrint(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null: return "<no value>";
    case Json::value_t::string: return j.get_ref<const std::string&>();
    case Json::value_t::boolean: return j.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer: return std::to_string(j.get<int64_t>());
    case Json::value_t::number_unsigned: return std::to_string(j.get<uint64_t>());
    case Json::value_t::number_float: {
      double d = j.get<double>();
      if (std::floor(d) == d && std::fabs(d) < 1e15) return StrFormat("%.0f", d);
      return StrFormat("%g", d);
    }
    case Json::value_t::array: {
      std::string out = "[";
      bool first = true;
      for (const auto& e : j) {
        if (!first) out += ' ';
        first = false;
        out += e.is_null() ? "<nil>" : GoPrint(e);
      }
      return out + "]";
    }
    case Json::value_t::object: {
      std::string out = "map[";
      bool first = true;
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (!first) out += ' ';
        first = false;
        out += it.key() + ":" + (it->is_null() ? "<nil>" : GoPrint(*it));
      }
      return out + "]";
    }
    default: return Dump(j);
  }
}

}  // namespace moat::cli
