#include "base/log.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>

#include "base/strings.h"

namespace moat::log {
namespace {

// The only mutable global allowed (STYLE 8): the sink.
struct Sink {
  int fd = STDERR_FILENO;
  Format format = Format::kText;
  Level min_level = Level::kWarning;
  bool also_stderr_errors = false;
};
Sink g_sink;

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarning: return "warning";
    case Level::kError: return "error";
  }
  return "info";
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) out += StrFormat("\\u%04x", c);
        else out += static_cast<char>(c);
    }
  }
  return out;
}

std::string Timestamp() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  return StrFormat("%s.%09ldZ", buf, ts.tv_nsec);
}

}  // namespace

void Configure(const Options& options) {
  if (!options.path.empty()) {
    int fd = open(options.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd >= 0) g_sink.fd = fd;
  }
  g_sink.format = options.format;
  g_sink.min_level = options.min_level;
  g_sink.also_stderr_errors = options.also_stderr_errors && !options.path.empty();
}

bool Enabled(Level level) { return level >= g_sink.min_level; }

void Write(Level level, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string msg = VStrFormat(fmt, ap);
  va_end(ap);
  std::string line;
  if (g_sink.format == Format::kJson) {
    line = StrFormat("{\"level\":\"%s\",\"msg\":\"%s\",\"time\":\"%s\"}\n", LevelName(level),
                     JsonEscape(msg).c_str(), Timestamp().c_str());
  } else if (g_sink.fd == STDERR_FILENO) {
    line = StrFormat("moat: %s\n", msg.c_str());
  } else {
    line = StrFormat("time=\"%s\" level=%s msg=\"%s\"\n", Timestamp().c_str(), LevelName(level),
                     JsonEscape(msg).c_str());
  }
  ssize_t rc = write(g_sink.fd, line.data(), line.size());
  (void)rc;
  if (level == Level::kError && g_sink.also_stderr_errors) {
    std::string plain = StrFormat("moat: %s\n", msg.c_str());
    rc = write(STDERR_FILENO, plain.data(), plain.size());
    (void)rc;
  }
}

}  // namespace moat::log
