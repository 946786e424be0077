#pragma once

// The container's log in Docker's json-file format: one JSON object per line, split at
// newlines, with size-based rotation (FILE -> FILE.1 -> ... -> FILE.<max_files-1>).

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"
#include "runtime/monitor/protocol.h"

namespace moat::runtime::monitor {

struct LogOptions {
  std::string path;
  int64_t max_size = 0;  // bytes; 0: unlimited
  int max_files = 1;     // 1: the file is started anew in place
};

// Returns the current time as RFC 3339 with nanoseconds ("2026-11-29T13:47:22.293213659Z").
using Clock = std::function<std::string()>;
// The real clock (CLOCK_REALTIME).
std::string RealClockNow();

// Not thread-safe (the monitor is single-threaded). Writes with O_APPEND, no fsync.
class JsonFileLog {
 public:
  // Opens (creates, mode 0640) `options.path`. kInvalidArgument for max_files < 1 or
  // max_size < 0; errors of open(2).
  static Result<std::unique_ptr<JsonFileLog>> Open(const LogOptions& options, Clock clock);

  // Adds output of `stream`: every complete line becomes a record; a partial line is kept until
  // its newline comes or it reaches kMaxPartialLine bytes. Errors are those of write/rename.
  Result<void> Write(Stream stream, std::string_view data);
  // Writes the buffered partial lines as they are (at exit).
  Result<void> Flush();

 private:
  JsonFileLog(LogOptions options, Clock clock, UniqueFd fd, int64_t size);
  Result<void> Emit(Stream stream, std::string_view chunk);
  Result<void> Rotate();

  LogOptions options_;
  Clock clock_;
  UniqueFd fd_;
  int64_t size_ = 0;
  std::string partial_[3];  // indexed by Stream
};

}  // namespace moat::runtime::monitor
