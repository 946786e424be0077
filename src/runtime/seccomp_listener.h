#pragma once

// seccomp user notification (SCMP_ACT_NOTIFY), the runtime's half: handing the listener fd of
// a container process to the profile's agent at linux.seccomp.listenerPath.
//
// How the fd travels. The container's process (the init during `create`, or the process of
// `exec`) installs its filter with SECCOMP_FILTER_FLAG_NEW_LISTENER while the runtime still
// waits on the sync socket, and sends kSeccompFd carrying only the fd's number (no SCM_RIGHTS:
// after the filter is on, the fewer syscalls the child makes the better). The runtime takes its
// own copy with pidfd_getfd(2), connects to listenerPath (AF_UNIX, SOCK_STREAM), sends one
// ContainerProcessState (runtime-spec config-linux.md) with the fd in SCM_RIGHTS, closes the
// connection and its copy, and answers kSeccompDone; the child then closes its fd.
//
// Limit (runc's too): between the install and kSeccompDone the child itself calls send and
// recv on the sync socket (sendto, recvfrom) while nobody holds a copy of the listener yet. A
// profile that notified those would make the child, and `create` or `exec` with it, wait
// forever: oci::ValidateSpec refuses SCMP_ACT_NOTIFY on sendto and recvfrom. A profile that
// denies them makes the setup fail.

#include <sys/types.h>

#include <string>
#include <string_view>

#include "base/result.h"
#include "oci/spec.h"
#include "runtime/sync_protocol.h"

namespace moat::runtime {

// Parent: answers a kSeccompFd message `m` from the child `pid` (pidfd `pidfd`; both remain
// owned by the caller) on `sync_fd`: copies the child's listener fd, sends it with the
// ContainerProcessState (pid `pid`, `profile`'s listenerMetadata, `state_json`) to `profile`'s
// listenerPath, then sends kSeccompDone. A connect or send failure is returned with the
// message "linux.seccomp.listenerPath: connect <path>: <errno text>" (kind from the errno);
// kInternal if the profile has no listenerPath. On failure the caller must kill the child,
// which is waiting for kSeccompDone.
Result<void> ForwardSeccompListener(int sync_fd, const SyncMessage& m, const oci::Seccomp* profile,
                                    int pidfd, pid_t pid, std::string_view state_json);

}  // namespace moat::runtime
