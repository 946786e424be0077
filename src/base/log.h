#pragma once

#include <string>

namespace moat::log {

enum class Level { kDebug, kInfo, kWarning, kError };
enum class Format { kText, kJson };

// The process's one log sink, set up in main(). Not thread-safe to reconfigure; once Configure
// has returned, Write may be called from any thread (moatd's): each line is formatted locally
// and written with one write(2).
struct Options {
  std::string path;  // empty: stderr
  Format format = Format::kText;
  Level min_level = Level::kWarning;
  bool also_stderr_errors = false;  // errors also go to stderr when logging to a file
};

void Configure(const Options& options);
bool Enabled(Level level);
void Write(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace moat::log

#define MOAT_LOG(level, ...)                                                  \
  do {                                                                        \
    if (::moat::log::Enabled(::moat::log::Level::level))                      \
      ::moat::log::Write(::moat::log::Level::level, __VA_ARGS__);             \
  } while (0)
