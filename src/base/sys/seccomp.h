#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

// seccomp(2), plus the two memory-file calls the seccomp compiler needs to read back the BPF
// that libseccomp can only write to a file descriptor.
namespace moat::sys {

// seccomp(2) via syscall(): glibc 2.36 has no wrapper. Returns the syscall's non-negative result:
// 0, or the notification listener fd for SECCOMP_FILTER_FLAG_NEW_LISTENER (the caller takes
// ownership), or with SECCOMP_FILTER_FLAG_TSYNC alone the id of a thread that could not be
// synchronised. `args` remains owned by the caller. Not retried on EINTR: the filter may
// already be installed. async-signal-safe and allocation-free on success; a failure allocates
// the error message. Errors: kInvalidArgument (EINVAL, EFAULT), kPermissionDenied (EACCES
// without no_new_privs), kUnsupported (ENOSYS), kUnavailable (ENOMEM), kConflict (EBUSY).
Result<int> seccomp(unsigned int operation, unsigned int flags, void* args);

// memfd_create(2); MFD_CLOEXEC is always added.
Result<UniqueFd> memfd_create(const std::string& name, unsigned int flags);

// pread(2) retried on EINTR; returns the number of bytes read (0 at end of file). `fd` remains
// owned by the caller.
Result<size_t> pread(int fd, void* buf, size_t count, off_t offset);

}  // namespace moat::sys
