#include "net/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

#include "base/log.h"
#include "base/sys/fs.h"
#include "base/sys/mount.h"
#include "base/sys/nsfs.h"
#include "base/sys/process.h"
#include "net/netlink.h"

namespace moat::net {

namespace {

// The calling thread's own network namespace. /proc/thread-self, not /proc/self: in a
// multi-threaded process another thread may be switched elsewhere, and setns/unshare act on the
// calling thread only.
constexpr char kThreadNetns[] = "/proc/thread-self/ns/net";

Result<UniqueFd> OpenThreadNetns() {
  return std::move(sys::open(kThreadNetns, O_RDONLY)).Context("save the thread's netns");
}

// A thread stranded in another network namespace would run later work (sockets, links,
// firewall rules) in the wrong place; there is no sane way to continue.
void ReturnToNetnsOrDie(int own_netns_fd) {
  auto back = sys::setns(own_netns_fd, CLONE_NEWNET);
  if (!back) {
    MOAT_LOG(kError, "cannot return to the thread's network namespace: %s",
             back.error().message.c_str());
    std::abort();
  }
}

Unexpected Prefixed(Error e, const std::string& context) {
  e.Prefix(context);
  return Fail(std::move(e));
}

}  // namespace

Result<UniqueFd> CreateNamedNetns(const std::string& path) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd own, OpenThreadNetns());
  // O_EXCL: an existing path (maybe a live namespace of someone else) is kAlreadyExists, never
  // mounted over.
  {
    auto file = sys::open(path, O_RDONLY | O_CREAT | O_EXCL, 0444);
    if (!file) return Prefixed(std::move(file).error(), "create netns " + path);
  }
  auto remove_file = [&path] { (void)sys::unlinkat(AT_FDCWD, path, 0); };

  // CLONE_NEWNET needs neither a single-threaded process nor an unshared fs (unlike
  // CLONE_NEWNS/CLONE_NEWUSER): only this thread moves.
  if (auto r = sys::unshare(CLONE_NEWNET); !r) {
    remove_file();
    return Prefixed(std::move(r).error(), "create netns " + path);
  }
  // From here on the thread is in the new namespace and must go back on every path.
  auto fail_in_new = [&](Error e, bool mounted) -> Unexpected {
    if (mounted) (void)sys::umount2(path, MNT_DETACH);
    ReturnToNetnsOrDie(own.get());
    remove_file();
    return Prefixed(std::move(e), "create netns " + path);
  };

  // A new namespace's lo is down; containers expect 127.0.0.1 to work.
  {
    auto nl = Netlink::Open();
    if (!nl) return fail_in_new(std::move(nl).error(), false);
    if (auto up = nl->SetUp("lo", true); !up) return fail_in_new(std::move(up).error(), false);
  }
  if (auto m = sys::mount(kThreadNetns, path, "", MS_BIND, ""); !m)
    return fail_in_new(std::move(m).error(), false);
  auto ns = sys::open(path, O_RDONLY);
  if (!ns) return fail_in_new(std::move(ns).error(), true);
  ReturnToNetnsOrDie(own.get());
  return std::move(ns).value();
}

Result<UniqueFd> OpenNamedNetns(const std::string& path) {
  MOAT_ASSIGN_OR_RETURN(
      UniqueFd fd, std::move(sys::open(path, O_RDONLY)).Context("open netns %s", path.c_str()));
  auto type = sys::ioctl_ns_get_nstype(fd.get());
  // ENOTTY: not an nsfs file at all (e.g. the bind mount is gone and only the file is left).
  if (!type && type.error().sys_errno != ENOTTY)
    return Prefixed(std::move(type).error(), "open netns " + path);
  if (!type || *type != CLONE_NEWNET)
    return Fail(ErrorKind::kInvalidArgument, "open netns %s: not a network namespace",
                path.c_str());
  return fd;
}

Result<void> RemoveNamedNetns(const std::string& path) {
  // EINVAL: not a mount point (a half-made or already detached entry); ENOENT: already gone.
  if (auto r = sys::umount2(path, MNT_DETACH);
      !r && r.error().sys_errno != EINVAL && r.error().sys_errno != ENOENT)
    return Prefixed(std::move(r).error(), "remove netns " + path);
  if (auto r = sys::unlinkat(AT_FDCWD, path, 0); !r && r.error().sys_errno != ENOENT)
    return Prefixed(std::move(r).error(), "remove netns " + path);
  return Ok();
}

Result<void> InNetns(int netns_fd, const std::function<Result<void>()>& fn) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd own, OpenThreadNetns());
  MOAT_TRY(std::move(sys::setns(netns_fd, CLONE_NEWNET)).Context("enter netns"));
  Result<void> r = fn();
  ReturnToNetnsOrDie(own.get());
  return r;
}

}  // namespace moat::net
