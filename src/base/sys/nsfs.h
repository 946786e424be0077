#pragma once

// nsfs ioctls (ioctl_ns(2)) on namespace file descriptors. Every fd remains owned by the caller.

#include "base/result.h"

namespace moat::sys {

// ioctl(NS_GET_NSTYPE): the CLONE_NEW* flag of the namespace behind `fd` (Linux 4.11). A file
// that is not an nsfs file fails with ENOTTY (kInternal); callers decide what that means.
Result<int> ioctl_ns_get_nstype(int fd);

}  // namespace moat::sys
