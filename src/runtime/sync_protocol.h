#pragma once

// Messages between the runtime (parent) and the container process before it executes the
// user's program, over a SOCK_SEQPACKET pair: one message per packet, a fixed header and text.

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "base/result.h"

namespace moat::runtime {

enum class SyncType : uint32_t {
  kGo = 1,         // parent -> child: cgroup joined, id maps written; go on
  kRunHooks = 2,   // child -> parent: mounts are done; run prestart and createRuntime hooks
  kHooksDone = 3,  // parent -> child
  kReady = 4,      // child -> parent: set up; waiting for start (pid: as the parent sees it)
  kError = 5,      // child -> parent: failure as data (kind, errno, message)
  // child -> parent: a seccomp filter with SCMP_ACT_NOTIFY is installed; its listener is the
  // child's fd number `pid`. The parent takes a copy with pidfd_getfd and hands it to the
  // profile's listenerPath; the child keeps its fd open until kSeccompDone.
  kSeccompFd = 6,
  kSeccompDone = 7,  // parent -> child: the listener has its fd
  // exec, rootless: the first child joined the container's namespaces and made `pid` (as the
  // parent sees it; the parent's own child through CLONE_PARENT), which waits for a second
  // kGo; the first child then exits. See exec.cc.
  kChildPid = 8,
};

struct SyncMessage {
  SyncType type = SyncType::kError;
  int32_t pid = 0;  // kReady: a pid (unused today); kSeccompFd: the fd number; kChildPid
  Error error;      // kError only
};

Result<void> SendSync(int fd, SyncType type, int32_t pid = 0);
// Best effort: the child is about to _exit anyway.
void SendSyncError(int fd, const Error& error);
// EOF means the peer died; that is reported as kInternal "... exited during setup".
Result<SyncMessage> RecvSync(int fd);
// Receives and requires `want`; a kError message becomes the returned error.
Result<SyncMessage> ExpectSync(int fd, SyncType want);

}  // namespace moat::runtime
