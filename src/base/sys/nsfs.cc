#include "base/sys/nsfs.h"

#include <linux/nsfs.h>
#include <sys/ioctl.h>

namespace moat::sys {

Result<int> ioctl_ns_get_nstype(int fd) {
  int type = ::ioctl(fd, NS_GET_NSTYPE);
  if (type < 0) return FailErrno("ioctl NS_GET_NSTYPE fd %d", fd);
  return type;
}

}  // namespace moat::sys
