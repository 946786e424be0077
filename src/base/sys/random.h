#pragma once

// Kernel randomness.

#include <cstddef>

#include "base/result.h"

namespace moat::sys {

// Fills `buf` with `len` bytes from getrandom(2) (flags 0: blocks only until the pool is
// initialised at boot), retrying EINTR and short reads.
Result<void> getrandom(void* buf, size_t len);

}  // namespace moat::sys
