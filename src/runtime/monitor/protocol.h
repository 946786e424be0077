#pragma once

// Wire constants shared by the monitor's sockets and its log: the stream numbers of Docker's
// stdcopy framing and the limits that bound a monitor's memory.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

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

// An 8-byte stdcopy header followed by `payload`: [stream, 0, 0, 0, size (big-endian u32)].
inline std::string StdcopyFrame(Stream stream, std::string_view payload) {
  std::string out(8, '\0');
  out[0] = static_cast<char>(stream);
  uint32_t n = static_cast<uint32_t>(payload.size());
  out[4] = static_cast<char>((n >> 24) & 0xff);
  out[5] = static_cast<char>((n >> 16) & 0xff);
  out[6] = static_cast<char>((n >> 8) & 0xff);
  out[7] = static_cast<char>(n & 0xff);
  out.append(payload);
  return out;
}

}  // namespace moat::runtime::monitor
