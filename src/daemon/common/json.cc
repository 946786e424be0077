#include "daemon/common/json.h"

#include <cmath>

namespace moat::daemon {
namespace {

const char* TypeName(const Json& j) { return j.type_name(); }

Unexpected TypeError(const std::string& field, const char* want, const Json& got) {
  return Fail(ErrorKind::kInvalidArgument, "%s: expected %s, got %s", field.c_str(), want,
              TypeName(got));
}

const Json* Field(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

}  // namespace

Result<Json> ParseJson(std::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Re-parse with exceptions to learn where; the only try in the daemon's JSON adapter.
    try {
      Json again = Json::parse(text.begin(), text.end());
      (void)again;
    } catch (const Json::exception& e) {
      return Fail(ErrorKind::kInvalidArgument, "invalid JSON: %s", e.what());
    }
    return Fail(ErrorKind::kInvalidArgument, "invalid JSON");
  }
  return j;
}

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Result<void> GetString(const Json& obj, const char* key, std::string* out, const std::string& field) {
  const Json* v = Field(obj, key);
  if (!v) return {};
  if (!v->is_string()) return TypeError(field, "string", *v);
  *out = v->get_ref<const std::string&>();
  return {};
}

Result<void> GetBool(const Json& obj, const char* key, bool* out, const std::string& field) {
  const Json* v = Field(obj, key);
  if (!v) return {};
  if (!v->is_boolean()) return TypeError(field, "boolean", *v);
  *out = v->get<bool>();
  return {};
}

Result<void> GetInt(const Json& obj, const char* key, int64_t* out, const std::string& field) {
  const Json* v = Field(obj, key);
  if (!v) return {};
  if (v->is_number_integer()) {
    *out = v->get<int64_t>();
    return {};
  }
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(INT64_MAX)) {
      return Fail(ErrorKind::kInvalidArgument, "%s: value out of range", field.c_str());
    }
    *out = static_cast<int64_t>(u);
    return {};
  }
  if (v->is_number_float()) {
    double d = v->get<double>();
    // 2^63 is exact as a double: anything outside [-2^63, 2^63) does not fit, and casting it
    // would be undefined (1e70 as a restart count, found by fuzz/container_spec).
    if (!(d >= -0x1p63 && d < 0x1p63)) {
      return Fail(ErrorKind::kInvalidArgument, "%s: value out of range", field.c_str());
    }
    if (d != std::trunc(d)) {
      return Fail(ErrorKind::kInvalidArgument, "%s: expected an integer", field.c_str());
    }
    *out = static_cast<int64_t>(d);
    return {};
  }
  return TypeError(field, "integer", *v);
}

Result<void> GetStringList(const Json& obj, const char* key, std::vector<std::string>* out,
                           const std::string& field) {
  const Json* v = Field(obj, key);
  if (!v) return {};
  if (!v->is_array()) return TypeError(field, "array", *v);
  std::vector<std::string> list;
  for (size_t i = 0; i < v->size(); ++i) {
    const Json& e = (*v)[i];
    if (!e.is_string()) return TypeError(field + "[" + std::to_string(i) + "]", "string", e);
    list.push_back(e.get_ref<const std::string&>());
  }
  *out = std::move(list);
  return {};
}

Result<void> GetStrSlice(const Json& obj, const char* key,
                         std::optional<std::vector<std::string>>* out, const std::string& field) {
  const Json* v = Field(obj, key);
  if (!v) return {};
  if (v->is_string()) {
    *out = std::vector<std::string>{v->get_ref<const std::string&>()};
    return {};
  }
  std::vector<std::string> list;
  MOAT_TRY(GetStringList(obj, key, &list, field));
  *out = std::move(list);
  return {};
}

Result<void> GetStringMap(const Json& obj, const char* key, std::map<std::string, std::string>* out,
                          const std::string& field) {
  const Json* v = Field(obj, key);
  if (!v) return {};
  if (!v->is_object()) return TypeError(field, "object", *v);
  std::map<std::string, std::string> m;
  for (auto it = v->begin(); it != v->end(); ++it) {
    if (!it.value().is_string()) return TypeError(field + "." + it.key(), "string", it.value());
    m[it.key()] = it.value().get_ref<const std::string&>();
  }
  *out = std::move(m);
  return {};
}

Result<const Json*> GetObject(const Json& obj, const char* key, const std::string& field) {
  const Json* v = Field(obj, key);
  if (!v) return static_cast<const Json*>(nullptr);
  if (!v->is_object()) return TypeError(field, "object", *v);
  return v;
}

}  // namespace moat::daemon
