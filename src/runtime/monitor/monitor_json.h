#pragma once

// The monitor's JSON: ctl requests and replies, status.json, the attach header and json-file
// log records. The only nlohmann user of the monitor; every function here catches the
// library's exceptions and returns kInvalidArgument for malformed input.

#include <sys/types.h>

#include <string>
#include <string_view>

#include "base/result.h"
#include "oci/spec.h"

namespace moat::runtime::monitor {

// What status.json and the "state" reply hold.
struct StatusRecord {
  std::string status = "created";  // created | running | paused | stopped
  pid_t pid = 0;                   // the container's init
  pid_t monitor_pid = 0;
  int exit_code = 0;  // shell convention: 128 + N for signal N
  bool oom_killed = false;
  std::string started_at;   // RFC 3339 with nanoseconds, "" until started
  std::string finished_at;  // "" until stopped
  std::string error;
};

enum class Op {
  kStart,
  kState,
  kWait,
  kKill,
  kPause,
  kResume,
  kResize,
  kExec,
  kExecState,
  kExecResize,
  kShutdown,
};

struct Request {
  Op op = Op::kState;
  int signal = 0;               // kill
  bool all = false;             // kill
  int height = 0, width = 0;    // resize, exec-resize
  std::string exec_id;          // exec, exec-state, exec-resize: lowercase hex
  oci::Process process;         // exec
  bool stdin_attached = false;  // exec: "stdin"
};

// Parses one ctl request; kInvalidArgument names the bad field.
Result<Request> ParseRequest(std::string_view text);

// status.json's document (no "ok").
std::string StatusJson(const StatusRecord& s);
// {"ok":true, ...status fields}.
std::string StateReply(const StatusRecord& s);
// {"ok":true}.
std::string OkReply();
// {"ok":true,"pid":N}.
std::string PidReply(pid_t pid);
// {"ok":true,"exit_code":N,"oom_killed":b,"finished_at":"..."}.
std::string WaitReply(const StatusRecord& s);
// {"ok":true,"running":b,"exit_code":N,"pid":N}.
std::string ExecStateReply(bool running, int exit_code, pid_t pid);
// {"ok":false,"kind":"not_found|...","message":"..."}.
std::string ErrorReply(const Error& error);
// "not_found", "conflict", ... for `kind`.
const char* ErrorKindWireName(ErrorKind kind);

struct AttachHeader {
  bool stdin_wanted = false;
  bool stdout_wanted = false;
  bool stderr_wanted = false;
};
// Parses the attach header line (without its "\n"); absent members are false.
Result<AttachHeader> ParseAttachHeader(std::string_view line);

// One json-file log line, newline-terminated: {"log":..., "stream":..., "time":...}. Invalid
// UTF-8 in `log` becomes U+FFFD, as Docker's encoder does.
std::string LogRecord(std::string_view log, const char* stream, const std::string& time);

}  // namespace moat::runtime::monitor
