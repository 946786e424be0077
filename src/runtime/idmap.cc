#include "runtime/idmap.h"

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/io.h"
#include "base/sys/linux_compat.h"
#include "base/sys/mount.h"
#include "base/sys/process.h"

namespace moat::runtime {

namespace {

// The child that holds a fresh user namespace open while its maps are written. It only blocks
// reading a pipe whose write end the parent alone keeps: it goes away when the parent closes
// that end, dies, or kills it; the destructor does all three (kill, then reap), so no path out
// of MakeMappingUserNamespace leaves a process behind.
class NamespaceHolder {
 public:
  NamespaceHolder() = default;
  NamespaceHolder(const NamespaceHolder&) = delete;
  NamespaceHolder& operator=(const NamespaceHolder&) = delete;
  ~NamespaceHolder() {
    release_.reset();
    if (!pidfd_.valid()) return;
    (void)sys::pidfd_send_signal(pidfd_.get(), SIGKILL);
    // ECHILD when SIGCHLD is ignored (the kernel reaped it): nothing left to do then.
    (void)sys::waitid_pidfd(pidfd_.get(), WEXITED);
  }

  Result<void> Start() {
    MOAT_ASSIGN_OR_RETURN(auto pipe, sys::pipe2(0));
    sys::CloneArgs ca{};
    ca.flags = CLONE_NEWUSER | CLONE_PIDFD;
    ca.exit_signal = SIGCHLD;
    MOAT_ASSIGN_OR_RETURN(
        pid_t pid,
        std::move(sys::clone3(ca, &pidfd_)).Context("clone a user namespace for an id mapping"));
    if (pid == 0) {
      // Async-signal-safe only: the parent's copy of the address space is not ours to run.
      (void)close(pipe.second.get());
      char c;
      while (read(pipe.first.get(), &c, 1) < 0 && errno == EINTR) {
      }
      _exit(0);
    }
    pid_ = pid;
    release_ = std::move(pipe.second);
    return Ok();
  }

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd release_;  // write end of the pipe the child waits on
};

}  // namespace

std::string IdMapFileText(const std::vector<oci::IdMapping>& maps) {
  std::string s;
  for (const auto& m : maps) s += StrFormat("%u %u %u\n", m.container_id, m.host_id, m.size);
  return s;
}

Result<UniqueFd> MakeMappingUserNamespace(const std::vector<oci::IdMapping>& uids,
                                          const std::vector<oci::IdMapping>& gids) {
  if (uids.empty() || gids.empty())
    return Fail(ErrorKind::kInvalidArgument, "an id-mapped mount needs uid and gid mappings");
  NamespaceHolder holder;
  MOAT_TRY(holder.Start());
  // The child is ours and not reaped: its pid cannot be reused while these paths are used.
  std::string dir = StrFormat("/proc/%d/", holder.pid());
  MOAT_TRY(sys::WriteFile(dir + "uid_map", IdMapFileText(uids)));
  // setgroups must be settled before gid_map is written (user_namespaces(7)); nothing runs in
  // this namespace, "deny" just keeps it minimal.
  MOAT_TRY(sys::WriteFile(dir + "setgroups", "deny"));
  MOAT_TRY(sys::WriteFile(dir + "gid_map", IdMapFileText(gids)));
  return sys::open(dir + "ns/user", O_RDONLY);
}

Result<void> IdmapTree(int tree_fd, int userns_fd, IdmapRecursion recursion) {
  sys::MountAttr attr{};
  attr.attr_set = MOUNT_ATTR_IDMAP;
  attr.userns_fd = static_cast<uint64_t>(userns_fd);
  unsigned flags = AT_EMPTY_PATH | (recursion == IdmapRecursion::kWholeTree ? AT_RECURSIVE : 0);
  return sys::mount_setattr(tree_fd, "", flags, attr);
}

}  // namespace moat::runtime
