#include "runtime/exe_seal.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>

#include "base/log.h"
#include "base/sys/fileops.h"
#include "base/sys/fs.h"
#include "base/sys/mount.h"
#include "base/sys/process.h"

namespace moat::runtime {

Result<void> EnsureReadOnlyExecutable(char* const argv[]) {
  // One open of the magic link, then everything through the fd: no second path walk.
  MOAT_ASSIGN_OR_RETURN(UniqueFd exe, sys::open("/proc/self/exe", O_PATH));
  // statfs reports the mount's flags (ST_RDONLY for MNT_READONLY too) since Linux 2.6.36.
  MOAT_ASSIGN_OR_RETURN(
      struct statvfs vfs,
      std::move(sys::fstatvfs(exe.get())).Context("runtime binary /proc/self/exe"));
  // This is also the exit of the re-executed process: the detached mount below is read-only.
  if (vfs.f_flag & ST_RDONLY) return Ok();

  // A detached bind mount of the binary alone: in no mount namespace's tree, so nothing is
  // mounted, propagated or left behind; it lives as long as a process executes from it.
  auto ro = sys::ReadOnlyBindMount(exe.get(), "");
  if (!ro && ro.error().sys_errno == EPERM) {
    // Rootless: open_tree needs CAP_SYS_ADMIN over our mount namespace. The binary belongs to
    // root and the container's ids map to this user, who cannot write it.
    MOAT_LOG(kDebug,
             "runtime binary stays on a writable mount: open_tree needs CAP_SYS_ADMIN in the "
             "mount namespace (rootless); the container's ids cannot write a root-owned binary");
    return Ok();
  }
  if (!ro && ro.error().sys_errno == ENOSYS) {
    MOAT_LOG(kWarning, "runtime binary stays on a writable mount: %s (Linux < 5.12)",
             ro.error().message.c_str());
    return Ok();
  }
  if (!ro) {
    Error e = std::move(ro).error();
    e.Prefix("seal runtime binary");
    return Fail(std::move(e));
  }
  MOAT_LOG(kDebug, "re-executing from a read-only mount of the runtime binary");
  // The fd is close-on-exec: the new image holds the mount through its exe reference only.
  return std::move(sys::execveat(ro->get(), "", argv, environ, AT_EMPTY_PATH))
      .Context("seal runtime binary");
}

}  // namespace moat::runtime
