#include "runtime/exe_seal.h"

#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/sys/fileops.h"
#include "base/sys/fs.h"
#include "base/sys/mount.h"
#include "base/sys/process.h"

namespace moat::runtime {

namespace {

// argv as the kernel keeps it: NUL-terminated strings, empty ones included.
std::vector<std::string> SplitCmdline(const std::string& text) {
  std::vector<std::string> args;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\0', start);
    if (end == std::string::npos) end = text.size();
    args.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return args;
}

}  // namespace

Result<void> EnsureReadOnlyExecutable() {
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
  auto tree = sys::open_tree(exe.get(), "", OPEN_TREE_CLONE | AT_EMPTY_PATH);
  if (!tree && tree.error().sys_errno == EPERM) {
    // Rootless: open_tree needs CAP_SYS_ADMIN over our mount namespace. The binary belongs to
    // root and the container's ids map to this user, who cannot write it.
    MOAT_LOG(kDebug,
             "runtime binary stays on a writable mount: open_tree needs CAP_SYS_ADMIN in the "
             "mount namespace (rootless); the container's ids cannot write a root-owned binary");
    return Ok();
  }
  if (!tree && tree.error().sys_errno == ENOSYS) {
    MOAT_LOG(kWarning, "runtime binary stays on a writable mount: no open_tree (Linux < 5.2)");
    return Ok();
  }
  if (!tree) {
    Error e = std::move(tree).error();
    return Fail(std::move(e.Prefix("seal runtime binary")));
  }
  sys::MountAttr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  auto ro = sys::mount_setattr(tree->get(), "", AT_EMPTY_PATH, attr);
  if (!ro && ro.error().sys_errno == ENOSYS) {
    MOAT_LOG(kWarning, "runtime binary stays on a writable mount: no mount_setattr (Linux < 5.12)");
    return Ok();
  }
  if (!ro) return std::move(ro).Context("seal runtime binary");

  MOAT_ASSIGN_OR_RETURN(std::string cmdline, sys::ReadFile("/proc/self/cmdline"));
  std::vector<std::string> args = SplitCmdline(cmdline);
  if (args.empty())
    return Fail(ErrorKind::kInternal, "seal runtime binary: empty /proc/self/cmdline");
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  MOAT_LOG(kDebug, "re-executing from a read-only mount of the runtime binary");
  // The fd is close-on-exec: the new image holds the mount through its exe reference only.
  return std::move(sys::execveat(tree->get(), "", argv.data(), environ, AT_EMPTY_PATH))
      .Context("seal runtime binary");
}

}  // namespace moat::runtime
