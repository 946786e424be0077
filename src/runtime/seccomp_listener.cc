#include "runtime/seccomp_listener.h"

#include <sys/socket.h>

#include "base/sys/process.h"
#include "base/sys/socket.h"
#include "base/unique_fd.h"
#include "runtime/runtime_json.h"

namespace moat::runtime {

Result<void> ForwardSeccompListener(int sync_fd, const SyncMessage& m, const oci::Seccomp* profile,
                                    int pidfd, pid_t pid, std::string_view state_json) {
  if (!profile || profile->listener_path.empty())
    return Fail(ErrorKind::kInternal,
                "the container process sent a seccomp listener, but linux.seccomp.listenerPath "
                "is not set");
  const std::string& path = profile->listener_path;
  MOAT_ASSIGN_OR_RETURN(
      UniqueFd listener,
      std::move(sys::pidfd_getfd(pidfd, m.pid)).Context("take the seccomp listener fd"));
  MOAT_ASSIGN_OR_RETURN(
      UniqueFd sock,
      std::move(sys::ConnectUnix(path, SOCK_STREAM)).Context("linux.seccomp.listenerPath"));
  std::string doc = ContainerProcessStateDocument(pid, profile->listener_metadata, state_json);
  MOAT_TRY(std::move(sys::SendWithFds(sock.get(), doc, {listener.get()}))
               .Context("linux.seccomp.listenerPath: send to %s", path.c_str()));
  // One state per connection, then closed (config-linux.md); our copy of the fd goes too.
  sock.reset();
  listener.reset();
  return SendSync(sync_fd, SyncType::kSeccompDone);
}

}  // namespace moat::runtime
