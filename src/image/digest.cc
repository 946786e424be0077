#include "image/digest.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include "base/check.h"
#include "base/sys/fs.h"

namespace moat::image {

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  MOAT_CHECK(ctx_->md != nullptr);
  MOAT_CHECK(EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) == 1);
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_->md); }

void Sha256::Update(const void* data, size_t len) {
  MOAT_CHECK(EVP_DigestUpdate(ctx_->md, data, len) == 1);
}

std::string Sha256::HexDigest() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  MOAT_CHECK(EVP_DigestFinal_ex(ctx_->md, out, &n) == 1);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(n * 2);
  for (unsigned i = 0; i < n; ++i) {
    hex.push_back(kHex[out[i] >> 4]);
    hex.push_back(kHex[out[i] & 15]);
  }
  return hex;
}

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.HexDigest();
}

bool IsSha256Hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<std::string> DigestHex(std::string_view digest) {
  if (!StartsWith(digest, "sha256:"))
    return Fail(ErrorKind::kInvalidArgument, "unsupported digest %.*s",
                static_cast<int>(digest.size()), digest.data());
  std::string_view hex = digest.substr(7);
  if (!IsSha256Hex(hex))
    return Fail(ErrorKind::kInvalidArgument, "invalid digest %.*s",
                static_cast<int>(digest.size()), digest.data());
  return std::string(hex);
}

Result<std::pair<std::string, uint64_t>> Sha256File(const std::string& path) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(path, O_RDONLY | O_NOFOLLOW));
  Sha256 h;
  uint64_t total = 0;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FailErrno("read %s", path.c_str());
    if (n == 0) break;
    h.Update(buf, static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
  }
  return std::make_pair(h.HexDigest(), total);
}

}  // namespace moat::image
