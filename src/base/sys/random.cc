#include "base/sys/random.h"

#include <sys/random.h>

#include <cerrno>

namespace moat::sys {

Result<void> getrandom(void* buf, size_t len) {
  auto* p = static_cast<unsigned char*>(buf);
  while (len > 0) {
    ssize_t n = ::getrandom(p, len, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return FailErrno("getrandom");
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return Ok();
}

}  // namespace moat::sys
