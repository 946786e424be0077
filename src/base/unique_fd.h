#pragma once

#include <unistd.h>

#include <utility>

#include "base/check.h"

namespace moat {

// Owns one file descriptor and closes it on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }
  // Gives up ownership without closing.
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }
  // Closes the owned fd (if any) and takes `fd`. EBADF from close is a bug and aborts.
  void reset(int fd = -1) {
    if (fd_ >= 0) {
      int rc = ::close(fd_);
      MOAT_CHECK(rc == 0 || errno != EBADF);
    }
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace moat
