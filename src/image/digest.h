#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"

// SHA-256 content digests ("sha256:<64 lowercase hex>").
namespace moat::image {

// Incremental SHA-256 (OpenSSL EVP). Not thread-safe; one instance per stream.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t len);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // Returns the 64-char lowercase hex digest; the object must not be updated afterwards.
  std::string HexDigest();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string Sha256Hex(std::string_view data);

// Whether `s` is 64 lowercase hex chars.
bool IsSha256Hex(std::string_view s);
// Parses "sha256:<hex>" into the hex part. kInvalidArgument for other algorithms or bad hex.
Result<std::string> DigestHex(std::string_view digest);

// Hashes the file `path` (a regular file); returns its hex digest and size.
Result<std::pair<std::string, uint64_t>> Sha256File(const std::string& path);

}  // namespace moat::image
