#include "runtime/monitor/log_writer.h"

#include <fcntl.h>
#include <time.h>

#include "base/sys/fs.h"
#include "runtime/monitor/monitor_json.h"

namespace moat::runtime::monitor {

std::string RealClockNow() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  return StrFormat("%s.%09ldZ", buf, ts.tv_nsec);
}

Result<std::unique_ptr<JsonFileLog>> JsonFileLog::Open(const LogOptions& options, Clock clock) {
  if (options.max_files < 1)
    return Fail(ErrorKind::kInvalidArgument, "--log-max-files: must be at least 1, got %d",
                options.max_files);
  if (options.max_size < 0)
    return Fail(ErrorKind::kInvalidArgument, "--log-max-size: must not be negative");
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd,
                        std::move(sys::open(options.path, O_WRONLY | O_CREAT | O_APPEND, 0640))
                            .Context("--log-path"));
  MOAT_ASSIGN_OR_RETURN(struct stat st, sys::fstat(fd.get()));
  return std::unique_ptr<JsonFileLog>(
      new JsonFileLog(options, std::move(clock), std::move(fd), st.st_size));
}

JsonFileLog::JsonFileLog(LogOptions options, Clock clock, UniqueFd fd, int64_t size)
    : options_(std::move(options)), clock_(std::move(clock)), fd_(std::move(fd)), size_(size) {}

Result<void> JsonFileLog::Write(Stream stream, std::string_view data) {
  std::string& partial = partial_[static_cast<int>(stream)];
  while (!data.empty()) {
    size_t nl = data.find('\n');
    if (nl == std::string_view::npos) {
      partial.append(data);
      if (partial.size() >= kMaxPartialLine) {
        std::string chunk = std::move(partial);
        partial.clear();
        MOAT_TRY(Emit(stream, chunk));
      }
      return Ok();
    }
    if (partial.empty()) {
      MOAT_TRY(Emit(stream, data.substr(0, nl + 1)));
    } else {
      partial.append(data.substr(0, nl + 1));
      std::string line = std::move(partial);
      partial.clear();
      MOAT_TRY(Emit(stream, line));
    }
    data.remove_prefix(nl + 1);
  }
  return Ok();
}

Result<void> JsonFileLog::Flush() {
  for (Stream s : {Stream::kStdout, Stream::kStderr}) {
    std::string& partial = partial_[static_cast<int>(s)];
    if (partial.empty()) continue;
    std::string chunk = std::move(partial);
    partial.clear();
    MOAT_TRY(Emit(s, chunk));
  }
  return Ok();
}

Result<void> JsonFileLog::Emit(Stream stream, std::string_view chunk) {
  std::string record = LogRecord(chunk, StreamName(stream), clock_());
  auto n = static_cast<int64_t>(record.size());
  if (options_.max_size > 0 && size_ > 0 && size_ + n > options_.max_size) MOAT_TRY(Rotate());
  MOAT_TRY(std::move(sys::WriteAll(fd_.get(), record)).Context("write %s", options_.path.c_str()));
  size_ += n;
  return Ok();
}

Result<void> JsonFileLog::Rotate() {
  const std::string& path = options_.path;
  // Oldest first, so that nothing is overwritten before it has moved on; the last one drops.
  // With max_files == 1 the file is truncated in place.
  for (int i = options_.max_files - 1; i >= 1; --i) {
    std::string from = i == 1 ? path : StrFormat("%s.%d", path.c_str(), i - 1);
    std::string to = StrFormat("%s.%d", path.c_str(), i);
    auto r = sys::renameat(AT_FDCWD, from, AT_FDCWD, to);
    if (!r && r.error().sys_errno != ENOENT) return r;
  }
  MOAT_ASSIGN_OR_RETURN(fd_, sys::open(path, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC, 0640));
  size_ = 0;
  return Ok();
}

}  // namespace moat::runtime::monitor
