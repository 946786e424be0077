#pragma once

// The runtime's own binary must not be writable through a container (CVE-2019-5736 class).
//
// Threat: when the runtime's clone executes a program in a container and that program is a
// script "#!/proc/self/exe", the kernel runs the HOST moat-runtime binary in the container,
// dumpable (a fresh execve). Another process of the container opens /proc/<pid>/exe, waits
// for the process to exit, reopens /proc/self/fd/N for writing and overwrites the binary the
// host runs next (container root has CAP_DAC_OVERRIDE by default). Making the init
// non-dumpable until its final execve (container_init.cc) does not cover this.
//
// Policy (runc 1.2 / crun in spirit): before a command puts a process into a container, the
// runtime runs from a READ-ONLY mount of its binary, so /proc/<pid>/exe of the runtime and of
// anything it executes as /proc/self/exe cannot be opened for writing (EROFS):
//   1. the binary is already on a read-only mount (a read-only /usr): nothing to do;
//   2. privileged: make a detached read-only bind mount of the binary (open_tree(OPEN_TREE_CLONE)
//      + mount_setattr(MOUNT_ATTR_RDONLY)), attached nowhere, so no mount namespace changes and
//      nothing propagates; then move the running image onto it without a second execve: every
//      mapping of the binary is replaced by the same range through the read-only mount (the
//      writable segment by an anonymous copy of its current bytes), and PR_SET_MM_EXE_FILE
//      points /proc/self/exe there (the kernel allows it once no mapping of the old path is
//      left). Where that is refused (no CAP_SYS_RESOURCE, an unexpected mapping), re-execute the
//      same command line from the mount (execveat), as before;
//   3. unprivileged (rootless, open_tree refused with EPERM): the binary is root's and not
//      writable by the ids the container maps to; nothing to do.
// A kernel without open_tree/mount_setattr (before 5.12: ENOSYS) is logged as a warning and
// left unprotected.

#include "base/result.h"

namespace moat::runtime {

// Ensures the process runs from a read-only mount of its binary (the policy above). On the
// re-execute fallback it does not return on success: main() starts over with `argv` (main's, NULL-
// terminated), the current environ and every inherited fd, and the second call returns at once
// (the binary is then on a read-only mount). Logs, at debug or warning level, why it left the
// binary as it was.
// Preconditions: single-threaded; called from main() before the command has cloned a process
// or done anything that must not happen twice. Not async-signal-safe.
// Errors: the failing syscall's kind (kNotFound, kPermissionDenied, kInternal...) when sealing
// fails for a reason other than the ones above; the caller must not start a container then.
Result<void> EnsureReadOnlyExecutable(char* const argv[]);

}  // namespace moat::runtime
