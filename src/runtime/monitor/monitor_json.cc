// nlohmann::json throws on malformed input and on type mismatches: every entry point catches
// and converts (STYLE.md section 4).

#include "runtime/monitor/monitor_json.h"

#include <nlohmann/json.hpp>

#include "oci/spec_json.h"

namespace moat::runtime::monitor {

namespace {

using nlohmann::json;

std::string Dump(const json& j) {
  // Container output is arbitrary bytes: invalid UTF-8 is replaced, never thrown on.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json StatusObject(const StatusRecord& s) {
  return json{{"status", s.status},           {"pid", s.pid},
              {"monitor_pid", s.monitor_pid}, {"exit_code", s.exit_code},
              {"oom_killed", s.oom_killed},   {"started_at", s.started_at},
              {"finished_at", s.finished_at}, {"error", s.error}};
}

bool IsLowerHex(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<int> IntField(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return Fail(ErrorKind::kInvalidArgument, "%s: required", name);
  if (!it->is_number_integer())
    return Fail(ErrorKind::kInvalidArgument, "%s: expected an integer", name);
  int64_t v = it->get<int64_t>();
  if (v < 0 || v > 65535) return Fail(ErrorKind::kInvalidArgument, "%s: out of range", name);
  return static_cast<int>(v);
}

Result<bool> BoolField(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end()) return false;
  if (!it->is_boolean()) return Fail(ErrorKind::kInvalidArgument, "%s: expected a boolean", name);
  return it->get<bool>();
}

Result<std::string> ExecIdField(const json& j) {
  auto it = j.find("exec_id");
  if (it == j.end() || !it->is_string() || !IsLowerHex(it->get<std::string>()))
    return Fail(ErrorKind::kInvalidArgument, "exec_id: expected lowercase hex");
  return it->get<std::string>();
}

Result<Request> ParseRequestJson(const json& j) {
  if (!j.is_object()) return Fail(ErrorKind::kInvalidArgument, "request: expected an object");
  auto op_it = j.find("op");
  if (op_it == j.end() || !op_it->is_string())
    return Fail(ErrorKind::kInvalidArgument, "op: required string");
  std::string op = op_it->get<std::string>();
  Request r;
  if (op == "start") {
    r.op = Op::kStart;
  } else if (op == "state") {
    r.op = Op::kState;
  } else if (op == "wait") {
    r.op = Op::kWait;
  } else if (op == "kill") {
    r.op = Op::kKill;
    MOAT_ASSIGN_OR_RETURN(r.signal, IntField(j, "signal"));
    if (r.signal < 1 || r.signal > 64)
      return Fail(ErrorKind::kInvalidArgument, "signal: %d is not a signal", r.signal);
    MOAT_ASSIGN_OR_RETURN(r.all, BoolField(j, "all"));
  } else if (op == "pause") {
    r.op = Op::kPause;
  } else if (op == "resume") {
    r.op = Op::kResume;
  } else if (op == "resize" || op == "exec-resize") {
    r.op = op == "resize" ? Op::kResize : Op::kExecResize;
    MOAT_ASSIGN_OR_RETURN(r.height, IntField(j, "height"));
    MOAT_ASSIGN_OR_RETURN(r.width, IntField(j, "width"));
    if (r.op == Op::kExecResize) {
      MOAT_ASSIGN_OR_RETURN(r.exec_id, ExecIdField(j));
    }
  } else if (op == "exec") {
    r.op = Op::kExec;
    MOAT_ASSIGN_OR_RETURN(r.exec_id, ExecIdField(j));
    auto p = j.find("process");
    if (p == j.end() || !p->is_object())
      return Fail(ErrorKind::kInvalidArgument, "process: required object");
    MOAT_ASSIGN_OR_RETURN(r.process, std::move(oci::ParseProcess(p->dump())).Context("process"));
    MOAT_ASSIGN_OR_RETURN(r.stdin_attached, BoolField(j, "stdin"));
  } else if (op == "exec-state") {
    r.op = Op::kExecState;
    MOAT_ASSIGN_OR_RETURN(r.exec_id, ExecIdField(j));
  } else if (op == "shutdown") {
    r.op = Op::kShutdown;
  } else {
    return Fail(ErrorKind::kInvalidArgument, "op: unknown operation \"%s\"", op.c_str());
  }
  return r;
}

}  // namespace

Result<Request> ParseRequest(std::string_view text) {
  try {
    json j = json::parse(text);
    return ParseRequestJson(j);
  } catch (const std::exception& e) {
    return Fail(ErrorKind::kInvalidArgument, "request: %s", e.what());
  }
}

std::string StatusJson(const StatusRecord& s) {
  try {
    return Dump(StatusObject(s));
  } catch (const std::exception&) {
    return "{}";  // Only allocation can fail here.
  }
}

std::string StateReply(const StatusRecord& s) {
  json j = StatusObject(s);
  j["ok"] = true;
  return Dump(j);
}

std::string OkReply() { return R"({"ok":true})"; }

std::string PidReply(pid_t pid) { return Dump(json{{"ok", true}, {"pid", pid}}); }

std::string WaitReply(const StatusRecord& s) {
  return Dump(json{{"ok", true},
                   {"exit_code", s.exit_code},
                   {"oom_killed", s.oom_killed},
                   {"finished_at", s.finished_at}});
}

std::string ExecStateReply(bool running, int exit_code, pid_t pid) {
  return Dump(json{{"ok", true}, {"running", running}, {"exit_code", exit_code}, {"pid", pid}});
}

const char* ErrorKindWireName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNotFound:
      return "not_found";
    case ErrorKind::kAlreadyExists:
      return "already_exists";
    case ErrorKind::kInvalidArgument:
      return "invalid_argument";
    case ErrorKind::kPermissionDenied:
      return "permission_denied";
    case ErrorKind::kConflict:
      return "conflict";
    case ErrorKind::kUnsupported:
      return "unsupported";
    case ErrorKind::kUnavailable:
      return "unavailable";
    case ErrorKind::kInternal:
      return "internal";
  }
  return "internal";
}

std::string ErrorReply(const Error& error) {
  try {
    return Dump(
        json{{"ok", false}, {"kind", ErrorKindWireName(error.kind)}, {"message", error.message}});
  } catch (const std::exception&) {
    return R"({"ok":false,"kind":"internal","message":"encoding the error failed"})";
  }
}

Result<AttachHeader> ParseAttachHeader(std::string_view line) {
  try {
    json j = json::parse(line);
    if (!j.is_object()) return Fail(ErrorKind::kInvalidArgument, "attach: expected an object");
    AttachHeader h;
    MOAT_ASSIGN_OR_RETURN(h.stdin_wanted, BoolField(j, "stdin"));
    MOAT_ASSIGN_OR_RETURN(h.stdout_wanted, BoolField(j, "stdout"));
    MOAT_ASSIGN_OR_RETURN(h.stderr_wanted, BoolField(j, "stderr"));
    return h;
  } catch (const std::exception& e) {
    return Fail(ErrorKind::kInvalidArgument, "attach: %s", e.what());
  }
}

std::string LogRecord(std::string_view log, const char* stream, const std::string& time) {
  try {
    return Dump(json{{"log", std::string(log)}, {"stream", stream}, {"time", time}}) + "\n";
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace moat::runtime::monitor
