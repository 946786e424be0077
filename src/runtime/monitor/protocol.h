#pragma once

// Wire constants shared by the monitor's sockets and its log: the stream numbers of Docker's
// stdcopy framing and the limits that bound a monitor's memory.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/stdcopy.h"

namespace moat::runtime::monitor {

// Docker's stdcopy stream ids (the first byte of a frame header).
enum class Stream : uint8_t { kStdin = 0, kStdout = 1, kStderr = 2 };

inline const char* StreamName(Stream s) { return s == Stream::kStderr ? "stderr" : "stdout"; }

// A partial line is written to the log once this much of it is buffered.
constexpr size_t kMaxPartialLine = 16 * 1024;
// An attached client whose unsent output exceeds this is dropped.
constexpr size_t kMaxClientBuffer = 1024 * 1024;
// Container stdin bytes buffered before the clients stop being read.
constexpr size_t kMaxStdinBuffer = 1024 * 1024;
// The attach header line (JSON) may not be longer.
constexpr size_t kMaxAttachHeader = 4096;
// One ctl request (SOCK_SEQPACKET message).
constexpr size_t kMaxRequest = 256 * 1024;

// An 8-byte stdcopy header followed by `payload` (base/stdcopy.h).
inline std::string StdcopyFrame(Stream stream, std::string_view payload) {
  return moat::StdcopyFrame(static_cast<uint8_t>(stream), payload);
}

}  // namespace moat::runtime::monitor
