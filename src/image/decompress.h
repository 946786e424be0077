#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"

// Streaming decompression of layer blobs: gzip (ISA-L igzip), zstd (libzstd) or plain,
// detected from the first bytes.
namespace moat::image {

enum class Compression { kNone, kGzip, kZstd };
const char* CompressionName(Compression c);

// Reads compressed bytes from `fd` (remains owned by the caller) and yields them uncompressed.
// Not thread-safe.
class DecompressReader {
 public:
  explicit DecompressReader(int fd) : DecompressReader(fd, -1) {}
  // With `cancel_fd` >= 0 (remains owned by the caller; an eventfd or pipe read end), every read
  // of `fd` first waits until `fd` or `cancel_fd` is readable, and once `cancel_fd` is readable
  // Read fails with kUnavailable ("layer read cancelled"): another thread can so stop a reader
  // blocked on a pipe whose writer is idle.
  DecompressReader(int fd, int cancel_fd);
  ~DecompressReader();
  DecompressReader(const DecompressReader&) = delete;
  DecompressReader& operator=(const DecompressReader&) = delete;

  // Fills up to `len` bytes; returns 0 at the end of the stream. kInvalidArgument for corrupt
  // compressed data or a truncated stream.
  Result<size_t> Read(char* buf, size_t len);
  Compression compression() const { return compression_; }
  uint64_t compressed_bytes() const { return in_total_; }

 private:
  Result<void> Detect();
  Result<size_t> Fill();  // reads more input into in_buf_; 0 at EOF

  int fd_;
  int cancel_fd_;
  bool detected_ = false;
  bool in_eof_ = false;
  Compression compression_ = Compression::kNone;
  uint64_t in_total_ = 0;
  std::unique_ptr<uint8_t[]> in_buf_;
  size_t in_pos_ = 0, in_len_ = 0;
  struct State;
  std::unique_ptr<State> st_;
};

// Streaming gzip compression (ISA-L, level 1) into a sink: push recompresses layers that were
// stored without their blob. Not thread-safe.
class GzipWriter {
 public:
  using Sink = std::function<Result<void>(std::string_view)>;
  explicit GzipWriter(Sink sink);
  ~GzipWriter();
  GzipWriter(const GzipWriter&) = delete;
  GzipWriter& operator=(const GzipWriter&) = delete;
  Result<void> Write(std::string_view data);
  // Ends the gzip stream; nothing may be written afterwards.
  Result<void> Finish();

 private:
  Result<void> Run(std::string_view data, bool end);
  Sink sink_;
  struct State;
  std::unique_ptr<State> st_;
};

// gzip-compresses a whole buffer with ISA-L (used to write test fixtures and by Save).
std::string GzipCompress(const std::string& data);
std::string ZstdCompress(const std::string& data);

}  // namespace moat::image
