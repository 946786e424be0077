// Install() from compiler.h: the apply step, kept apart from the compiler so that it stays small
// enough to audit for async-signal-safety.
#include <linux/seccomp.h>

#include "base/sys/seccomp.h"
#include "seccomp/compiler.h"

namespace moat::seccomp {
namespace {

// linux/seccomp.h of Debian 12 has these, but older headers may not.
constexpr unsigned int kFlagTsync = 1u << 0;
constexpr unsigned int kFlagNewListener = 1u << 3;
constexpr unsigned int kFlagTsyncEsrch = 1u << 4;

}  // namespace

// Runs in the container's init between clone and execve: no allocation on the success path,
// and the program was prepared (and validated by Compile or the cache) in the parent.
Result<UniqueFd> Install(const Program& program) {
  if (program.instructions.empty() || program.instructions.size() > BPF_MAXINSNS)
    return Fail(ErrorKind::kInvalidArgument, "seccomp: program has %zu instructions",
                program.instructions.size());
  sock_fprog fprog{};
  fprog.len = static_cast<unsigned short>(program.instructions.size());
  // The kernel copies the filter and never writes through this pointer.
  fprog.filter = const_cast<sock_filter*>(program.instructions.data());
  unsigned int flags = program.flags;
  if (program.needs_listener) {
    flags |= kFlagNewListener;
    // TSYNC reports a failing thread through the return value, which NEW_LISTENER needs for
    // the fd; since Linux 5.7 TSYNC_ESRCH makes that failure an ESRCH error instead.
    if (flags & kFlagTsync) flags |= kFlagTsyncEsrch;
  }
  MOAT_ASSIGN_OR_RETURN(int rc, sys::seccomp(SECCOMP_SET_MODE_FILTER, flags, &fprog));
  if (program.needs_listener) return UniqueFd(rc);
  if (rc != 0)
    return Fail(ErrorKind::kConflict, "seccomp: thread %d could not be synchronised", rc);
  return UniqueFd();
}

}  // namespace moat::seccomp
