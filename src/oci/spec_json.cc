// The oci library's only nlohmann/json user. Every exception the library can throw is caught
// in this file and turned into a moat::Error; nothing else in src/oci may include the header.

#include "oci/spec_json.h"

#include <cmath>
#include <concepts>
#include <cstdarg>
#include <cstdint>
#include <exception>
#include <map>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/check.h"
#include "base/strings.h"
#include "base/sys/fs.h"

namespace moat::oci {
namespace {

// Decoding reads std::map objects (key order does not matter); encoding writes ordered_json
// so the output follows the spec's field order, as `runc spec` does.
using Json = nlohmann::json;
using OJson = nlohmann::ordered_json;

// Objects nest at most 6 deep in a valid config.json; anything far deeper is not a config.
constexpr size_t kMaxDepth = 64;
// Bounds the part of a parser message that echoes input bytes.
constexpr size_t kMaxDetail = 160;

// ---------------------------------------------------------------------------------------------
// Paths and errors.

// Keeps printable ASCII, replaces other bytes with '?': messages end up in logs and terminals,
// and the input is not trusted.
std::string Printable(std::string_view s, size_t max_len) {
  std::string out;
  for (char c : s.substr(0, max_len)) {
    unsigned char u = static_cast<unsigned char>(c);
    out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
  }
  if (s.size() > max_len) out += "...";
  return out;
}

std::string Sub(const std::string& path, std::string_view key) {
  if (path.empty()) return std::string(key);
  std::string out = path;
  out += '.';
  out += key;
  return out;
}

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// Map entries are written `sysctl["net.ipv4.ip_forward"]`: keys may contain dots.
std::string MapKey(const std::string& path, std::string_view key) {
  std::string quoted = Printable(key, 64);
  return path + "[\"" + quoted + "\"]";
}

Error FieldError(const std::string& path, const char* fmt, ...)
    __attribute__((format(printf, 2, 3)));

Error FieldError(const std::string& path, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string what = VStrFormat(fmt, ap);
  va_end(ap);
  Error e{ErrorKind::kInvalidArgument, 0, path.empty() ? what : path + ": " + what};
  return e;
}

Error TypeError(const std::string& path, const char* expected) {
  return FieldError(path, "expected %s", expected);
}

// ---------------------------------------------------------------------------------------------
// Parsing text into a Json tree.

// Parser callback state: rejects duplicate keys (naming the full path) and absurd nesting.
// nlohmann's callback parser reports object/array starts and ends, keys, and scalar values;
// from those events this tracks where in the document the parser is.
class DocumentChecker {
 public:
  bool OnEvent(int /*depth*/, Json::parse_event_t event, const Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (frames_.size() >= kMaxDepth && !error_) {
          error_ = FieldError(Path(), "nesting deeper than %zu levels", kMaxDepth);
        }
        frames_.push_back(Frame{event == Json::parse_event_t::array_start, 0, {}, {}});
        break;
      case Json::parse_event_t::key:
        if (!frames_.empty() && parsed.is_string()) {
          Frame& top = frames_.back();
          top.key = parsed.get<std::string>();
          if (!top.keys.insert(top.key).second && !error_) {
            error_ = FieldError(Path(), "duplicate key");
          }
        }
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        if (!frames_.empty()) frames_.pop_back();
        ElementDone();
        break;
      case Json::parse_event_t::value:
        ElementDone();
        break;
    }
    return true;
  }

  const std::optional<Error>& error() const { return error_; }

 private:
  struct Frame {
    bool is_array;
    size_t index;                // arrays: the element being parsed
    std::string key;             // objects: the member being parsed
    std::set<std::string> keys;  // objects: members seen so far
  };

  void ElementDone() {
    if (!frames_.empty() && frames_.back().is_array) ++frames_.back().index;
  }

  std::string Path() const {
    std::string path;
    for (const Frame& f : frames_) {
      path = f.is_array ? Index(path, f.index) : Sub(path, Printable(f.key, 64));
    }
    return path;
  }

  std::vector<Frame> frames_;
  std::optional<Error> error_;
};

// 1-based line and column of byte offset `pos` (the parser's "last read" position).
std::pair<size_t, size_t> LineAndColumn(std::string_view text, size_t pos) {
  size_t end = pos > 0 ? pos - 1 : 0;
  if (end > text.size()) end = text.size();
  size_t line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < end; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return {line, end - line_start + 1};
}

Result<Json> ParseDocument(std::string_view text) {
  DocumentChecker checker;
  Json::parser_callback_t callback = [&checker](int depth, Json::parse_event_t event,
                                                Json& parsed) {
    return checker.OnEvent(depth, event, parsed);
  };
  Json doc;
  try {
    doc = Json::parse(text.data(), text.data() + text.size(), callback);
  } catch (const Json::parse_error& e) {
    auto [line, column] = LineAndColumn(text, e.byte);
    // e.what() is "[json.exception.parse_error.101] parse error at line L, column C: <detail>";
    // keep only the detail, the position is recomputed above.
    std::string_view what = e.what();
    size_t at = what.find("column ");
    if (at != std::string_view::npos) at = what.find(": ", at);
    std::string_view detail = at == std::string_view::npos ? what : what.substr(at + 2);
    return Fail(ErrorKind::kInvalidArgument, "invalid JSON at line %zu, column %zu: %s", line,
                column, Printable(detail, kMaxDetail).c_str());
  } catch (const Json::out_of_range& e) {
    // A number beyond double's range ("1e400"); the parser gives no position for it.
    std::string_view what = e.what();
    size_t at = what.find("] ");
    std::string_view detail = at == std::string_view::npos ? what : what.substr(at + 2);
    return Fail(ErrorKind::kInvalidArgument, "invalid JSON: %s",
                Printable(detail, kMaxDetail).c_str());
  }
  if (checker.error()) return Fail(*checker.error());
  return doc;
}

// ---------------------------------------------------------------------------------------------
// Decoding. Each Decode(json, path, out) checks the JSON type, fills *out and names `path` on
// failure. Every struct codec is declared up front: the vector/optional/map templates find
// them by ordinary lookup at their definition, since argument-dependent lookup does not search
// this unnamed namespace.

Result<void> Decode(const Json& j, const std::string& path, Root* out);
Result<void> Decode(const Json& j, const std::string& path, IdMapping* out);
Result<void> Decode(const Json& j, const std::string& path, Mount* out);
Result<void> Decode(const Json& j, const std::string& path, User* out);
Result<void> Decode(const Json& j, const std::string& path, Capabilities* out);
Result<void> Decode(const Json& j, const std::string& path, Rlimit* out);
Result<void> Decode(const Json& j, const std::string& path, ConsoleSize* out);
Result<void> Decode(const Json& j, const std::string& path, Scheduler* out);
Result<void> Decode(const Json& j, const std::string& path, IoPriority* out);
Result<void> Decode(const Json& j, const std::string& path, ExecCpuAffinity* out);
Result<void> Decode(const Json& j, const std::string& path, Process* out);
Result<void> Decode(const Json& j, const std::string& path, Hook* out);
Result<void> Decode(const Json& j, const std::string& path, Hooks* out);
Result<void> Decode(const Json& j, const std::string& path, Namespace* out);
Result<void> Decode(const Json& j, const std::string& path, Device* out);
Result<void> Decode(const Json& j, const std::string& path, DeviceCgroupRule* out);
Result<void> Decode(const Json& j, const std::string& path, MemoryResources* out);
Result<void> Decode(const Json& j, const std::string& path, CpuResources* out);
Result<void> Decode(const Json& j, const std::string& path, WeightDevice* out);
Result<void> Decode(const Json& j, const std::string& path, ThrottleDevice* out);
Result<void> Decode(const Json& j, const std::string& path, BlockIoResources* out);
Result<void> Decode(const Json& j, const std::string& path, HugepageLimit* out);
Result<void> Decode(const Json& j, const std::string& path, NetworkPriority* out);
Result<void> Decode(const Json& j, const std::string& path, RdmaLimit* out);
Result<void> Decode(const Json& j, const std::string& path, Resources* out);
Result<void> Decode(const Json& j, const std::string& path, SeccompArg* out);
Result<void> Decode(const Json& j, const std::string& path, SeccompSyscall* out);
Result<void> Decode(const Json& j, const std::string& path, Seccomp* out);
Result<void> Decode(const Json& j, const std::string& path, Personality* out);
Result<void> Decode(const Json& j, const std::string& path, TimeOffset* out);
Result<void> Decode(const Json& j, const std::string& path, NetDevice* out);
Result<void> Decode(const Json& j, const std::string& path, IntelRdt* out);
Result<void> Decode(const Json& j, const std::string& path, MemoryPolicy* out);
Result<void> Decode(const Json& j, const std::string& path, Linux* out);
Result<void> Decode(const Json& j, const std::string& path, Spec* out);

OJson Encode(const Root& v);
OJson Encode(const IdMapping& v);
OJson Encode(const Mount& v);
OJson Encode(const User& v);
OJson Encode(const Capabilities& v);
OJson Encode(const Rlimit& v);
OJson Encode(const ConsoleSize& v);
OJson Encode(const Scheduler& v);
OJson Encode(const IoPriority& v);
OJson Encode(const ExecCpuAffinity& v);
OJson Encode(const Process& v);
OJson Encode(const Hook& v);
OJson Encode(const Hooks& v);
OJson Encode(const Namespace& v);
OJson Encode(const Device& v);
OJson Encode(const DeviceCgroupRule& v);
OJson Encode(const MemoryResources& v);
OJson Encode(const CpuResources& v);
OJson Encode(const WeightDevice& v);
OJson Encode(const ThrottleDevice& v);
OJson Encode(const BlockIoResources& v);
OJson Encode(const HugepageLimit& v);
OJson Encode(const NetworkPriority& v);
OJson Encode(const RdmaLimit& v);
OJson Encode(const Resources& v);
OJson Encode(const SeccompArg& v);
OJson Encode(const SeccompSyscall& v);
OJson Encode(const Seccomp& v);
OJson Encode(const Personality& v);
OJson Encode(const TimeOffset& v);
OJson Encode(const NetDevice& v);
OJson Encode(const IntelRdt& v);
OJson Encode(const MemoryPolicy& v);
OJson Encode(const Linux& v);
OJson Encode(const Spec& v);

Result<void> Decode(const Json& j, const std::string& path, std::string* out) {
  if (!j.is_string()) return Fail(TypeError(path, "a string"));
  *out = j.get_ref<const std::string&>();
  return Ok();
}

Result<void> Decode(const Json& j, const std::string& path, bool* out) {
  if (!j.is_boolean()) return Fail(TypeError(path, "a boolean"));
  *out = j.get<bool>();
  return Ok();
}

// Integer field types; bool has its own overloads.
template <typename T>
concept Integer = std::integral<T> && !std::same_as<T, bool>;

template <Integer T>
constexpr const char* IntegerTypeName() {
  constexpr bool s = std::is_signed_v<T>;
  switch (sizeof(T)) {
    case 1:
      return s ? "int8" : "uint8";
    case 2:
      return s ? "int16" : "uint16";
    case 4:
      return s ? "int32" : "uint32";
    default:
      return s ? "int64" : "uint64";
  }
}

// JSON has one number type; nlohmann keeps non-negative integers as uint64, negative ones as
// int64 and everything else (fractions, exponents, integers beyond 64 bits) as double. Like Go's
// encoding/json, only the first two decode into integer fields.
template <Integer T>
Result<void> Decode(const Json& j, const std::string& path, T* out) {
  if (j.is_number_unsigned()) {
    uint64_t v = j.get<uint64_t>();
    if (!std::in_range<T>(v)) {
      return Fail(FieldError(path, "%llu is out of range for %s",
                             static_cast<unsigned long long>(v), IntegerTypeName<T>()));
    }
    *out = static_cast<T>(v);
    return Ok();
  }
  if (j.is_number_integer()) {
    int64_t v = j.get<int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
      if (v < 0) {
        return Fail(
            FieldError(path, "expected an unsigned integer, got %lld", static_cast<long long>(v)));
      }
    }
    if (!std::in_range<T>(v)) {
      return Fail(FieldError(path, "%lld is out of range for %s", static_cast<long long>(v),
                             IntegerTypeName<T>()));
    }
    *out = static_cast<T>(v);
    return Ok();
  }
  if (j.is_number_float()) {
    double d = j.get<double>();
    // 18446744073709551616 and -9223372036854775809 arrive here as doubles.
    if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) >= 9.2e18) {
      return Fail(FieldError(path, "integer out of range for %s", IntegerTypeName<T>()));
    }
  }
  return Fail(TypeError(path, "an integer"));
}

template <typename T>
Result<void> Decode(const Json& j, const std::string& path, std::optional<T>* out) {
  T value{};
  MOAT_TRY(Decode(j, path, &value));
  *out = std::move(value);
  return Ok();
}

template <typename T>
Result<void> Decode(const Json& j, const std::string& path, std::vector<T>* out) {
  if (!j.is_array()) return Fail(TypeError(path, "an array"));
  out->clear();
  out->reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    T value{};
    MOAT_TRY(Decode(j[i], Index(path, i), &value));
    out->push_back(std::move(value));
  }
  return Ok();
}

template <typename T>
Result<void> Decode(const Json& j, const std::string& path, std::map<std::string, T>* out) {
  if (!j.is_object()) return Fail(TypeError(path, "an object"));
  out->clear();
  for (const auto& [key, item] : j.items()) {
    T value{};
    MOAT_TRY(Decode(item, MapKey(path, key), &value));
    out->emplace(key, std::move(value));
  }
  return Ok();
}

// Reads the members of one JSON object. The first failure is kept and later calls do nothing,
// so a struct decoder is a flat list of fields ending in Finish().
class ObjectReader {
 public:
  ObjectReader(const Json& j, std::string path) : j_(j), path_(std::move(path)) {
    if (!j_.is_object()) error_ = TypeError(path_, "an object");
  }

  // A member that may be absent (or null); *out keeps its value then.
  template <typename T>
  ObjectReader& Field(const char* key, T* out) {
    if (const Json* v = Find(key)) Record(Decode(*v, Sub(path_, key), out));
    return *this;
  }

  // A member that must be present and not null.
  template <typename T>
  ObjectReader& RequiredField(const char* key, T* out) {
    if (error_) return *this;
    if (const Json* v = Find(key)) {
      Record(Decode(*v, Sub(path_, key), out));
    } else {
      error_ = FieldError(Sub(path_, key), "required");
    }
    return *this;
  }

  // Runs `decode(json, path)` on a nested member if present, for members that do not map to
  // one field (e.g. "pids": {"limit": N}).
  template <typename F>
  ObjectReader& Nested(const char* key, F&& decode) {
    if (const Json* v = Find(key)) Record(decode(*v, Sub(path_, key)));
    return *this;
  }

  Result<void> Finish() {
    if (error_) return Fail(std::move(*error_));
    return Ok();
  }

 private:
  const Json* Find(const char* key) const {
    if (error_) return nullptr;
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  void Record(Result<void> r) {
    if (!r.has_value()) error_ = std::move(r).error();
  }

  const Json& j_;
  std::string path_;
  std::optional<Error> error_;
};

Result<void> Decode(const Json& j, const std::string& path, Root* out) {
  return ObjectReader(j, path).Field("path", &out->path).Field("readonly", &out->readonly).Finish();
}

Result<void> Decode(const Json& j, const std::string& path, IdMapping* out) {
  return ObjectReader(j, path)
      .RequiredField("containerID", &out->container_id)
      .RequiredField("hostID", &out->host_id)
      .RequiredField("size", &out->size)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, Mount* out) {
  return ObjectReader(j, path)
      .Field("destination", &out->destination)
      .Field("type", &out->type)
      .Field("source", &out->source)
      .Field("options", &out->options)
      .Field("uidMappings", &out->uid_mappings)
      .Field("gidMappings", &out->gid_mappings)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, User* out) {
  return ObjectReader(j, path)
      .RequiredField("uid", &out->uid)
      .RequiredField("gid", &out->gid)
      .Field("umask", &out->umask)
      .Field("additionalGids", &out->additional_gids)
      .Field("username", &out->username)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, Capabilities* out) {
  return ObjectReader(j, path)
      .Field("bounding", &out->bounding)
      .Field("effective", &out->effective)
      .Field("inheritable", &out->inheritable)
      .Field("permitted", &out->permitted)
      .Field("ambient", &out->ambient)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, Rlimit* out) {
  return ObjectReader(j, path)
      .Field("type", &out->type)
      .RequiredField("soft", &out->soft)
      .RequiredField("hard", &out->hard)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, ConsoleSize* out) {
  return ObjectReader(j, path)
      .RequiredField("height", &out->height)
      .RequiredField("width", &out->width)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, Scheduler* out) {
  return ObjectReader(j, path)
      .Field("policy", &out->policy)
      .Field("nice", &out->nice)
      .Field("priority", &out->priority)
      .Field("flags", &out->flags)
      .Field("runtime", &out->runtime)
      .Field("deadline", &out->deadline)
      .Field("period", &out->period)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, IoPriority* out) {
  return ObjectReader(j, path)
      .Field("class", &out->io_class)
      .RequiredField("priority", &out->priority)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, ExecCpuAffinity* out) {
  return ObjectReader(j, path)
      .Field("initial", &out->initial_cpus)
      .Field("final", &out->final_cpus)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, Process* out) {
  return ObjectReader(j, path)
      .Field("terminal", &out->terminal)
      .Field("consoleSize", &out->console_size)
      .Field("user", &out->user)
      .Field("args", &out->args)
      .Field("commandLine", &out->command_line)
      .Field("env", &out->env)
      .Field("cwd", &out->cwd)
      .Field("capabilities", &out->capabilities)
      .Field("rlimits", &out->rlimits)
      .Field("noNewPrivileges", &out->no_new_privileges)
      .Field("apparmorProfile", &out->apparmor_profile)
      .Field("oomScoreAdj", &out->oom_score_adj)
      .Field("scheduler", &out->scheduler)
      .Field("selinuxLabel", &out->selinux_label)
      .Field("ioPriority", &out->io_priority)
      .Field("execCPUAffinity", &out->exec_cpu_affinity)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, Hook* out) {
  return ObjectReader(j, path)
      .Field("path", &out->path)
      .Field("args", &out->args)
      .Field("env", &out->env)
      .Field("timeout", &out->timeout)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, Hooks* out) {
  return ObjectReader(j, path)
      .Field("prestart", &out->prestart)
      .Field("createRuntime", &out->create_runtime)
      .Field("createContainer", &out->create_container)
      .Field("startContainer", &out->start_container)
      .Field("poststart", &out->poststart)
      .Field("poststop", &out->poststop)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, Namespace* out) {
  return ObjectReader(j, path).Field("type", &out->type).Field("path", &out->path).Finish();
}

Result<void> Decode(const Json& j, const std::string& path, Device* out) {
  ObjectReader r(j, path);
  r.Field("type", &out->type).Field("path", &out->path);
  // major/minor are REQUIRED unless the device is a fifo.
  if (out->type == "p") {
    r.Field("major", &out->major).Field("minor", &out->minor);
  } else {
    r.RequiredField("major", &out->major).RequiredField("minor", &out->minor);
  }
  return r.Field("fileMode", &out->file_mode)
      .Field("uid", &out->uid)
      .Field("gid", &out->gid)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, DeviceCgroupRule* out) {
  return ObjectReader(j, path)
      .RequiredField("allow", &out->allow)
      .Field("type", &out->type)
      .Field("major", &out->major)
      .Field("minor", &out->minor)
      .Field("access", &out->access)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, MemoryResources* out) {
  return ObjectReader(j, path)
      .Field("limit", &out->limit)
      .Field("reservation", &out->reservation)
      .Field("swap", &out->swap)
      .Field("kernel", &out->kernel)
      .Field("kernelTCP", &out->kernel_tcp)
      .Field("swappiness", &out->swappiness)
      .Field("disableOOMKiller", &out->disable_oom_killer)
      .Field("useHierarchy", &out->use_hierarchy)
      .Field("checkBeforeUpdate", &out->check_before_update)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, CpuResources* out) {
  return ObjectReader(j, path)
      .Field("shares", &out->shares)
      .Field("quota", &out->quota)
      .Field("burst", &out->burst)
      .Field("period", &out->period)
      .Field("realtimeRuntime", &out->realtime_runtime)
      .Field("realtimePeriod", &out->realtime_period)
      .Field("cpus", &out->cpus)
      .Field("mems", &out->mems)
      .Field("idle", &out->idle)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, WeightDevice* out) {
  return ObjectReader(j, path)
      .RequiredField("major", &out->major)
      .RequiredField("minor", &out->minor)
      .Field("weight", &out->weight)
      .Field("leafWeight", &out->leaf_weight)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, ThrottleDevice* out) {
  return ObjectReader(j, path)
      .RequiredField("major", &out->major)
      .RequiredField("minor", &out->minor)
      .RequiredField("rate", &out->rate)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, BlockIoResources* out) {
  return ObjectReader(j, path)
      .Field("weight", &out->weight)
      .Field("leafWeight", &out->leaf_weight)
      .Field("weightDevice", &out->weight_device)
      .Field("throttleReadBpsDevice", &out->throttle_read_bps_device)
      .Field("throttleWriteBpsDevice", &out->throttle_write_bps_device)
      .Field("throttleReadIOPSDevice", &out->throttle_read_iops_device)
      .Field("throttleWriteIOPSDevice", &out->throttle_write_iops_device)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, HugepageLimit* out) {
  return ObjectReader(j, path)
      .Field("pageSize", &out->page_size)
      .RequiredField("limit", &out->limit)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, NetworkPriority* out) {
  return ObjectReader(j, path)
      .Field("name", &out->name)
      .RequiredField("priority", &out->priority)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, RdmaLimit* out) {
  return ObjectReader(j, path)
      .Field("hcaHandles", &out->hca_handles)
      .Field("hcaObjects", &out->hca_objects)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, Resources* out) {
  return ObjectReader(j, path)
      .Field("devices", &out->devices)
      .Field("memory", &out->memory)
      .Field("cpu", &out->cpu)
      .Nested("pids",
              [out](const Json& pids, const std::string& pids_path) {
                return ObjectReader(pids, pids_path).Field("limit", &out->pids_limit).Finish();
              })
      .Field("blockIO", &out->block_io)
      .Field("hugepageLimits", &out->hugepage_limits)
      .Nested("network",
              [out](const Json& net, const std::string& net_path) {
                return ObjectReader(net, net_path)
                    .Field("classID", &out->network_class_id)
                    .Field("priorities", &out->network_priorities)
                    .Finish();
              })
      .Field("rdma", &out->rdma)
      .Field("unified", &out->unified)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, SeccompArg* out) {
  return ObjectReader(j, path)
      .RequiredField("index", &out->index)
      .RequiredField("value", &out->value)
      .Field("valueTwo", &out->value_two)
      .Field("op", &out->op)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, SeccompSyscall* out) {
  return ObjectReader(j, path)
      .Field("names", &out->names)
      .Field("action", &out->action)
      .Field("errnoRet", &out->errno_ret)
      .Field("args", &out->args)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, Seccomp* out) {
  return ObjectReader(j, path)
      .Field("defaultAction", &out->default_action)
      .Field("defaultErrnoRet", &out->default_errno_ret)
      .Field("architectures", &out->architectures)
      .Field("flags", &out->flags)
      .Field("listenerPath", &out->listener_path)
      .Field("listenerMetadata", &out->listener_metadata)
      .Field("syscalls", &out->syscalls)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, Personality* out) {
  return ObjectReader(j, path).Field("domain", &out->domain).Field("flags", &out->flags).Finish();
}

Result<void> Decode(const Json& j, const std::string& path, TimeOffset* out) {
  return ObjectReader(j, path).Field("secs", &out->secs).Field("nanosecs", &out->nanosecs).Finish();
}

Result<void> Decode(const Json& j, const std::string& path, NetDevice* out) {
  return ObjectReader(j, path).Field("name", &out->name).Finish();
}

Result<void> Decode(const Json& j, const std::string& path, IntelRdt* out) {
  return ObjectReader(j, path)
      .Field("closID", &out->clos_id)
      .Field("l3CacheSchema", &out->l3_cache_schema)
      .Field("memBwSchema", &out->mem_bw_schema)
      .Field("schemata", &out->schemata)
      .Field("enableMonitoring", &out->enable_monitoring)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, MemoryPolicy* out) {
  return ObjectReader(j, path)
      .Field("mode", &out->mode)
      .Field("nodes", &out->nodes)
      .Field("flags", &out->flags)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, Linux* out) {
  return ObjectReader(j, path)
      .Field("namespaces", &out->namespaces)
      .Field("uidMappings", &out->uid_mappings)
      .Field("gidMappings", &out->gid_mappings)
      .Field("timeOffsets", &out->time_offsets)
      .Field("devices", &out->devices)
      .Field("netDevices", &out->net_devices)
      .Field("cgroupsPath", &out->cgroups_path)
      .Field("resources", &out->resources)
      .Field("intelRdt", &out->intel_rdt)
      .Field("memoryPolicy", &out->memory_policy)
      .Field("rootfsPropagation", &out->rootfs_propagation)
      .Field("seccomp", &out->seccomp)
      .Field("sysctl", &out->sysctl)
      .Field("maskedPaths", &out->masked_paths)
      .Field("readonlyPaths", &out->readonly_paths)
      .Field("mountLabel", &out->mount_label)
      .Field("personality", &out->personality)
      .Finish();
}

Result<void> Decode(const Json& j, const std::string& path, Spec* out) {
  return ObjectReader(j, path)
      .Field("ociVersion", &out->oci_version)
      .Field("root", &out->root)
      .Field("mounts", &out->mounts)
      .Field("process", &out->process)
      .Field("hostname", &out->hostname)
      .Field("domainname", &out->domainname)
      .Field("hooks", &out->hooks)
      .Field("annotations", &out->annotations)
      .Field("linux", &out->linux)
      .Finish();
}

// ---------------------------------------------------------------------------------------------
// Encoding. Members the spec marks REQUIRED are always written; OPTIONAL ones only when set.

OJson Encode(const std::string& s) { return OJson(s); }

template <Integer T>
OJson Encode(T v) {
  return OJson(v);
}

OJson Encode(bool b) { return OJson(b); }

template <typename T>
OJson Encode(const std::vector<T>& v) {
  OJson a = OJson::array();
  for (const T& item : v) a.push_back(Encode(item));
  return a;
}

template <typename T>
OJson Encode(const std::map<std::string, T>& m) {
  OJson o = OJson::object();
  for (const auto& [key, item] : m) o[key] = Encode(item);
  return o;
}

// Builds one JSON object member by member.
class ObjectWriter {
 public:
  template <typename T>
  ObjectWriter& Always(const char* key, const T& v) {
    o_[key] = Encode(v);
    return *this;
  }
  ObjectWriter& IfNotEmpty(const char* key, const std::string& s) {
    if (!s.empty()) o_[key] = s;
    return *this;
  }
  template <typename T>
  ObjectWriter& IfNotEmpty(const char* key, const std::vector<T>& v) {
    if (!v.empty()) o_[key] = Encode(v);
    return *this;
  }
  template <typename T>
  ObjectWriter& IfNotEmpty(const char* key, const std::map<std::string, T>& m) {
    if (!m.empty()) o_[key] = Encode(m);
    return *this;
  }
  template <typename T>
  ObjectWriter& IfSet(const char* key, const std::optional<T>& v) {
    if (v.has_value()) o_[key] = Encode(*v);
    return *this;
  }
  ObjectWriter& IfTrue(const char* key, bool b) {
    if (b) o_[key] = true;
    return *this;
  }
  template <Integer T>
  ObjectWriter& IfNonZero(const char* key, T v) {
    if (v != 0) o_[key] = v;
    return *this;
  }
  ObjectWriter& Raw(const char* key, OJson v) {
    o_[key] = std::move(v);
    return *this;
  }
  OJson Build() { return std::move(o_); }

 private:
  OJson o_ = OJson::object();
};

OJson Encode(const Root& v) {
  return ObjectWriter().Always("path", v.path).IfTrue("readonly", v.readonly).Build();
}

OJson Encode(const IdMapping& v) {
  return ObjectWriter()
      .Always("containerID", v.container_id)
      .Always("hostID", v.host_id)
      .Always("size", v.size)
      .Build();
}

OJson Encode(const Mount& v) {
  return ObjectWriter()
      .Always("destination", v.destination)
      .IfNotEmpty("type", v.type)
      .IfNotEmpty("source", v.source)
      .IfNotEmpty("options", v.options)
      .IfNotEmpty("uidMappings", v.uid_mappings)
      .IfNotEmpty("gidMappings", v.gid_mappings)
      .Build();
}

OJson Encode(const User& v) {
  return ObjectWriter()
      .Always("uid", v.uid)
      .Always("gid", v.gid)
      .IfSet("umask", v.umask)
      .IfNotEmpty("additionalGids", v.additional_gids)
      .IfNotEmpty("username", v.username)
      .Build();
}

OJson Encode(const Capabilities& v) {
  return ObjectWriter()
      .IfNotEmpty("bounding", v.bounding)
      .IfNotEmpty("effective", v.effective)
      .IfNotEmpty("inheritable", v.inheritable)
      .IfNotEmpty("permitted", v.permitted)
      .IfNotEmpty("ambient", v.ambient)
      .Build();
}

OJson Encode(const Rlimit& v) {
  return ObjectWriter()
      .Always("type", v.type)
      .Always("hard", v.hard)
      .Always("soft", v.soft)
      .Build();
}

OJson Encode(const ConsoleSize& v) {
  return ObjectWriter().Always("height", v.height).Always("width", v.width).Build();
}

OJson Encode(const Scheduler& v) {
  return ObjectWriter()
      .Always("policy", v.policy)
      .IfNonZero("nice", v.nice)
      .IfNonZero("priority", v.priority)
      .IfNotEmpty("flags", v.flags)
      .IfNonZero("runtime", v.runtime)
      .IfNonZero("deadline", v.deadline)
      .IfNonZero("period", v.period)
      .Build();
}

OJson Encode(const IoPriority& v) {
  return ObjectWriter().Always("class", v.io_class).Always("priority", v.priority).Build();
}

OJson Encode(const ExecCpuAffinity& v) {
  return ObjectWriter()
      .IfNotEmpty("initial", v.initial_cpus)
      .IfNotEmpty("final", v.final_cpus)
      .Build();
}

OJson Encode(const Process& v) {
  return ObjectWriter()
      .IfTrue("terminal", v.terminal)
      .IfSet("consoleSize", v.console_size)
      .Always("user", v.user)
      .IfNotEmpty("args", v.args)
      .IfNotEmpty("commandLine", v.command_line)
      .IfNotEmpty("env", v.env)
      .Always("cwd", v.cwd)
      .IfSet("capabilities", v.capabilities)
      .IfNotEmpty("rlimits", v.rlimits)
      .IfTrue("noNewPrivileges", v.no_new_privileges)
      .IfNotEmpty("apparmorProfile", v.apparmor_profile)
      .IfSet("oomScoreAdj", v.oom_score_adj)
      .IfSet("scheduler", v.scheduler)
      .IfNotEmpty("selinuxLabel", v.selinux_label)
      .IfSet("ioPriority", v.io_priority)
      .IfSet("execCPUAffinity", v.exec_cpu_affinity)
      .Build();
}

OJson Encode(const Hook& v) {
  return ObjectWriter()
      .Always("path", v.path)
      .IfNotEmpty("args", v.args)
      .IfNotEmpty("env", v.env)
      .IfSet("timeout", v.timeout)
      .Build();
}

OJson Encode(const Hooks& v) {
  return ObjectWriter()
      .IfNotEmpty("prestart", v.prestart)
      .IfNotEmpty("createRuntime", v.create_runtime)
      .IfNotEmpty("createContainer", v.create_container)
      .IfNotEmpty("startContainer", v.start_container)
      .IfNotEmpty("poststart", v.poststart)
      .IfNotEmpty("poststop", v.poststop)
      .Build();
}

OJson Encode(const Namespace& v) {
  return ObjectWriter().Always("type", v.type).IfNotEmpty("path", v.path).Build();
}

OJson Encode(const Device& v) {
  ObjectWriter w;
  w.Always("type", v.type).Always("path", v.path);
  if (v.type != "p" || v.major != 0 || v.minor != 0) {
    w.Always("major", v.major).Always("minor", v.minor);
  }
  return w.IfSet("fileMode", v.file_mode).IfSet("uid", v.uid).IfSet("gid", v.gid).Build();
}

OJson Encode(const DeviceCgroupRule& v) {
  return ObjectWriter()
      .Always("allow", v.allow)
      .IfNotEmpty("type", v.type)
      .IfSet("major", v.major)
      .IfSet("minor", v.minor)
      .IfNotEmpty("access", v.access)
      .Build();
}

OJson Encode(const MemoryResources& v) {
  return ObjectWriter()
      .IfSet("limit", v.limit)
      .IfSet("reservation", v.reservation)
      .IfSet("swap", v.swap)
      .IfSet("kernel", v.kernel)
      .IfSet("kernelTCP", v.kernel_tcp)
      .IfSet("swappiness", v.swappiness)
      .IfSet("disableOOMKiller", v.disable_oom_killer)
      .IfSet("useHierarchy", v.use_hierarchy)
      .IfSet("checkBeforeUpdate", v.check_before_update)
      .Build();
}

OJson Encode(const CpuResources& v) {
  return ObjectWriter()
      .IfSet("shares", v.shares)
      .IfSet("quota", v.quota)
      .IfSet("burst", v.burst)
      .IfSet("period", v.period)
      .IfSet("realtimeRuntime", v.realtime_runtime)
      .IfSet("realtimePeriod", v.realtime_period)
      .IfNotEmpty("cpus", v.cpus)
      .IfNotEmpty("mems", v.mems)
      .IfSet("idle", v.idle)
      .Build();
}

OJson Encode(const WeightDevice& v) {
  return ObjectWriter()
      .Always("major", v.major)
      .Always("minor", v.minor)
      .IfSet("weight", v.weight)
      .IfSet("leafWeight", v.leaf_weight)
      .Build();
}

OJson Encode(const ThrottleDevice& v) {
  return ObjectWriter()
      .Always("major", v.major)
      .Always("minor", v.minor)
      .Always("rate", v.rate)
      .Build();
}

OJson Encode(const BlockIoResources& v) {
  return ObjectWriter()
      .IfSet("weight", v.weight)
      .IfSet("leafWeight", v.leaf_weight)
      .IfNotEmpty("weightDevice", v.weight_device)
      .IfNotEmpty("throttleReadBpsDevice", v.throttle_read_bps_device)
      .IfNotEmpty("throttleWriteBpsDevice", v.throttle_write_bps_device)
      .IfNotEmpty("throttleReadIOPSDevice", v.throttle_read_iops_device)
      .IfNotEmpty("throttleWriteIOPSDevice", v.throttle_write_iops_device)
      .Build();
}

OJson Encode(const HugepageLimit& v) {
  return ObjectWriter().Always("pageSize", v.page_size).Always("limit", v.limit).Build();
}

OJson Encode(const NetworkPriority& v) {
  return ObjectWriter().Always("name", v.name).Always("priority", v.priority).Build();
}

OJson Encode(const RdmaLimit& v) {
  return ObjectWriter()
      .IfSet("hcaHandles", v.hca_handles)
      .IfSet("hcaObjects", v.hca_objects)
      .Build();
}

OJson Encode(const Resources& v) {
  ObjectWriter w;
  w.IfNotEmpty("devices", v.devices).IfSet("memory", v.memory).IfSet("cpu", v.cpu);
  if (v.pids_limit.has_value()) w.Raw("pids", ObjectWriter().IfSet("limit", v.pids_limit).Build());
  w.IfSet("blockIO", v.block_io).IfNotEmpty("hugepageLimits", v.hugepage_limits);
  if (v.network_class_id.has_value() || !v.network_priorities.empty()) {
    w.Raw("network", ObjectWriter()
                         .IfSet("classID", v.network_class_id)
                         .IfNotEmpty("priorities", v.network_priorities)
                         .Build());
  }
  return w.IfNotEmpty("rdma", v.rdma).IfNotEmpty("unified", v.unified).Build();
}

OJson Encode(const SeccompArg& v) {
  return ObjectWriter()
      .Always("index", v.index)
      .Always("value", v.value)
      .IfNonZero("valueTwo", v.value_two)
      .Always("op", v.op)
      .Build();
}

OJson Encode(const SeccompSyscall& v) {
  return ObjectWriter()
      .Always("names", v.names)
      .Always("action", v.action)
      .IfSet("errnoRet", v.errno_ret)
      .IfNotEmpty("args", v.args)
      .Build();
}

OJson Encode(const Seccomp& v) {
  return ObjectWriter()
      .Always("defaultAction", v.default_action)
      .IfSet("defaultErrnoRet", v.default_errno_ret)
      .IfNotEmpty("architectures", v.architectures)
      .IfNotEmpty("flags", v.flags)
      .IfNotEmpty("listenerPath", v.listener_path)
      .IfNotEmpty("listenerMetadata", v.listener_metadata)
      .IfNotEmpty("syscalls", v.syscalls)
      .Build();
}

OJson Encode(const Personality& v) {
  return ObjectWriter().Always("domain", v.domain).IfNotEmpty("flags", v.flags).Build();
}

OJson Encode(const TimeOffset& v) {
  return ObjectWriter().Always("secs", v.secs).Always("nanosecs", v.nanosecs).Build();
}

OJson Encode(const NetDevice& v) { return ObjectWriter().IfNotEmpty("name", v.name).Build(); }

OJson Encode(const IntelRdt& v) {
  return ObjectWriter()
      .IfNotEmpty("closID", v.clos_id)
      .IfNotEmpty("l3CacheSchema", v.l3_cache_schema)
      .IfNotEmpty("memBwSchema", v.mem_bw_schema)
      .IfNotEmpty("schemata", v.schemata)
      .IfTrue("enableMonitoring", v.enable_monitoring)
      .Build();
}

OJson Encode(const MemoryPolicy& v) {
  return ObjectWriter()
      .Always("mode", v.mode)
      .IfNotEmpty("nodes", v.nodes)
      .IfNotEmpty("flags", v.flags)
      .Build();
}

OJson Encode(const Linux& v) {
  return ObjectWriter()
      .IfNotEmpty("uidMappings", v.uid_mappings)
      .IfNotEmpty("gidMappings", v.gid_mappings)
      .IfNotEmpty("sysctl", v.sysctl)
      .IfSet("resources", v.resources)
      .IfNotEmpty("cgroupsPath", v.cgroups_path)
      .IfNotEmpty("namespaces", v.namespaces)
      .IfNotEmpty("devices", v.devices)
      .IfNotEmpty("netDevices", v.net_devices)
      .IfSet("seccomp", v.seccomp)
      .IfNotEmpty("rootfsPropagation", v.rootfs_propagation)
      .IfNotEmpty("maskedPaths", v.masked_paths)
      .IfNotEmpty("readonlyPaths", v.readonly_paths)
      .IfNotEmpty("mountLabel", v.mount_label)
      .IfSet("intelRdt", v.intel_rdt)
      .IfSet("personality", v.personality)
      .IfNotEmpty("timeOffsets", v.time_offsets)
      .IfSet("memoryPolicy", v.memory_policy)
      .Build();
}

OJson Encode(const Spec& v) {
  return ObjectWriter()
      .Always("ociVersion", v.oci_version)
      .IfSet("process", v.process)
      .IfSet("root", v.root)
      .IfNotEmpty("hostname", v.hostname)
      .IfNotEmpty("domainname", v.domainname)
      .IfNotEmpty("mounts", v.mounts)
      .IfSet("hooks", v.hooks)
      .IfNotEmpty("annotations", v.annotations)
      .IfSet("linux", v.linux)
      .Build();
}

// ---------------------------------------------------------------------------------------------
// Exception boundary.

// Runs `body` and converts anything it throws. nlohmann throws on type errors that the checks
// above should already have ruled out, and std::bad_alloc on huge inputs.
template <typename F>
auto Guarded(F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const nlohmann::json::exception& e) {
    return Fail(ErrorKind::kInvalidArgument, "%s", Printable(e.what(), kMaxDetail).c_str());
  } catch (const std::bad_alloc&) {
    return Fail(ErrorKind::kUnavailable, "out of memory decoding JSON");
  } catch (const std::exception& e) {
    return Fail(ErrorKind::kInternal, "decoding JSON: %s", Printable(e.what(), kMaxDetail).c_str());
  } catch (...) {
    return Fail(ErrorKind::kInternal, "decoding JSON: unknown exception");
  }
}

template <typename T>
Result<T> ParseAs(std::string_view text, const char* document) {
  Result<T> result = Guarded([text]() -> Result<T> {
    MOAT_ASSIGN_OR_RETURN(Json doc, ParseDocument(text));
    T out{};
    MOAT_TRY(Decode(doc, std::string(), &out));
    return out;
  });
  return std::move(result).Context("%s", document);
}

template <typename T>
std::string ToJsonText(const T& value) {
  try {
    // error_handler_t::replace: invalid UTF-8 in a string (possible in values built in code)
    // becomes U+FFFD instead of an exception.
    return Encode(value).dump(2, ' ', false, OJson::error_handler_t::replace) + "\n";
  } catch (...) {
    // Encoding only allocates and copies; it fails only when memory runs out, which aborts.
    MOAT_CHECK(false);
  }
  return {};
}

}  // namespace

Result<Spec> ParseSpec(std::string_view json) { return ParseAs<Spec>(json, "config.json"); }

Result<Spec> LoadSpec(const std::string& bundle_dir) {
  const std::string path = bundle_dir + "/config.json";
  MOAT_ASSIGN_OR_RETURN(std::string text, sys::ReadFile(path));
  return ParseSpec(text);
}

Result<Process> ParseProcess(std::string_view json) {
  return ParseAs<Process>(json, "process.json");
}

Result<Resources> ParseResources(std::string_view json) {
  return ParseAs<Resources>(json, "resources");
}

Result<Seccomp> ParseSeccomp(std::string_view json) { return ParseAs<Seccomp>(json, "seccomp"); }

std::string SpecToJson(const Spec& spec) { return ToJsonText(spec); }
std::string SeccompToJson(const Seccomp& seccomp) { return ToJsonText(seccomp); }
std::string ProcessToJson(const Process& process) { return ToJsonText(process); }
std::string ResourcesToJson(const Resources& resources) { return ToJsonText(resources); }

}  // namespace moat::oci
