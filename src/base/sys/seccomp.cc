#include "base/sys/seccomp.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace moat::sys {

Result<int> seccomp(unsigned int operation, unsigned int flags, void* args) {
  long rc = ::syscall(SYS_seccomp, operation, flags, args);
  if (rc < 0) return FailErrno("seccomp op %u flags %#x", operation, flags);
  return static_cast<int>(rc);
}

Result<UniqueFd> memfd_create(const std::string& name, unsigned int flags) {
  int fd = ::memfd_create(name.c_str(), flags | MFD_CLOEXEC);
  if (fd < 0) return FailErrno("memfd_create %s", name.c_str());
  return UniqueFd(fd);
}

Result<size_t> pread(int fd, void* buf, size_t count, off_t offset) {
  ssize_t n;
  do n = ::pread(fd, buf, count, offset);
  while (n < 0 && errno == EINTR);
  if (n < 0) return FailErrno("pread");
  return static_cast<size_t>(n);
}

}  // namespace moat::sys
