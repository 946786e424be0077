#pragma once

// Docker's stdcopy framing of a non-tty stream (attach, exec, logs): an 8-byte header
// [stream, 0, 0, 0, size as big-endian u32] and the payload. Streams: 0 stdin, 1 stdout,
// 2 stderr, 3 systemerr (a daemon error after the stream started).

#include <cstdint>
#include <string>
#include <string_view>

namespace moat {

inline std::string StdcopyFrame(uint8_t stream, std::string_view payload) {
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

}  // namespace moat
