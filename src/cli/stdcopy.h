#pragma once

// Demultiplexing of the Engine API's stdcopy framing (non-tty attach, exec and logs
// streams): frames of [stream, 0, 0, 0, size big-endian u32] + payload.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace moat::cli {

enum class StdStream : uint8_t { kStdin = 0, kStdout = 1, kStderr = 2, kSystemErr = 3 };

// Incremental decoder: Feed() any split of the byte stream; each complete payload piece is
// passed to the sink as soon as it is available (payloads may be delivered in parts). Not
// thread-safe.
class StdcopyDemuxer {
 public:
  using Sink = std::function<Result<void>(StdStream, std::string_view)>;
  explicit StdcopyDemuxer(Sink sink) : sink_(std::move(sink)) {}

  // kInvalidArgument for an unknown stream byte (the stream is not framed); sink errors
  // are returned as they are.
  Result<void> Feed(std::string_view data);
  // True when no frame is half-read.
  bool AtFrameBoundary() const { return header_.empty() && remaining_ == 0; }

 private:
  Sink sink_;
  std::string header_;
  uint32_t remaining_ = 0;
  StdStream stream_ = StdStream::kStdout;
};

// Encodes one frame (for tests and fakes).
std::string StdcopyFrame(StdStream stream, std::string_view payload);

}  // namespace moat::cli
