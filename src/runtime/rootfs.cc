#include "runtime/rootfs.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>

#include "base/sys/fs.h"
#include "base/sys/linux_compat.h"
#include "base/sys/mount.h"
#include "runtime/mounts.h"

namespace moat::runtime {

namespace {
constexpr uint64_t kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

std::pair<std::string, std::string> SplitParent(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {"/", path};
  return {slash == 0 ? "/" : path.substr(0, slash), path.substr(slash + 1)};
}

mode_t DeviceType(const std::string& t) {
  if (t == "b") return S_IFBLK;
  if (t == "p") return S_IFIFO;
  return S_IFCHR;  // "c" and "u"
}
}  // namespace

std::vector<oci::Device> PlanDevices(const std::vector<oci::Device>& configured) {
  struct Default {
    const char* path;
    int major, minor;
  };
  constexpr Default kDefaults[] = {{"/dev/null", 1, 3},    {"/dev/zero", 1, 5},
                                   {"/dev/full", 1, 7},    {"/dev/random", 1, 8},
                                   {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0}};
  std::vector<oci::Device> out;
  for (const auto& d : kDefaults) {
    bool overridden = false;
    for (const auto& c : configured) overridden |= c.path == d.path;
    if (overridden) continue;
    oci::Device dev;
    dev.type = "c";
    dev.path = d.path;
    dev.major = d.major;
    dev.minor = d.minor;
    dev.file_mode = 0666;
    dev.uid = 0;
    dev.gid = 0;
    out.push_back(dev);
  }
  out.insert(out.end(), configured.begin(), configured.end());
  return out;
}

Result<void> CreateDevicesInChild(int root_fd, const std::vector<oci::Device>& devices,
                                  DeviceMode mode) {
  mode_t old_umask = umask(0);
  for (const auto& d : devices) {
    auto [dir, name] = SplitParent(d.path);
    auto parent = MkdirAllInRoot(root_fd, dir, true);
    if (!parent) {
      umask(old_umask);
      return std::move(Result<void>(Fail(std::move(parent).error()))).Context("device %s", d.path.c_str());
    }
    MOAT_ASSIGN_OR_RETURN(UniqueFd pdir, sys::openat2(root_fd, dir, O_PATH | O_DIRECTORY, 0, kInRoot));
    (void)sys::unlinkat(pdir.get(), name, 0);  // replace what the image had there
    Result<void> r = Ok();
    if (mode == DeviceMode::kMknod) {
      mode_t m = DeviceType(d.type) | (d.file_mode ? *d.file_mode & 07777 : 0666);
      r = sys::mknodat(pdir.get(), name, m,
                       makedev(static_cast<unsigned>(d.major), static_cast<unsigned>(d.minor)));
      if (r) r = sys::fchownat(pdir.get(), name, d.uid.value_or(0), d.gid.value_or(0),
                               AT_SYMLINK_NOFOLLOW);
    } else {
      MountOp bind;
      bind.bind = true;
      bind.source = d.path;
      bind.destination = d.path;
      bind.source_is_dir = false;
      r = ApplyMount(root_fd, bind);
    }
    if (!r) {
      umask(old_umask);
      return std::move(r).Context("device %s", d.path.c_str());
    }
  }
  umask(old_umask);
  return Ok();
}

Result<void> CreateDevSymlinksInChild(int root_fd) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd dev, MkdirAllInRoot(root_fd, "/dev", true));
  MOAT_ASSIGN_OR_RETURN(UniqueFd devdir, sys::openat2(root_fd, "/dev", O_PATH | O_DIRECTORY, 0, kInRoot));
  struct Link {
    const char* target;
    const char* name;
  };
  constexpr Link kLinks[] = {{"/proc/self/fd", "fd"},
                             {"/proc/self/fd/0", "stdin"},
                             {"/proc/self/fd/1", "stdout"},
                             {"/proc/self/fd/2", "stderr"}};
  for (const auto& l : kLinks) {
    auto r = sys::symlinkat(l.target, devdir.get(), l.name);
    if (!r && r.error().sys_errno != EEXIST) return r;
  }
  if (access("/proc/kcore", F_OK) == 0) {
    auto r = sys::symlinkat("/proc/kcore", devdir.get(), "core");
    if (!r && r.error().sys_errno != EEXIST) return r;
  }
  // /dev/ptmx must point into this container's devpts instance.
  auto pts = sys::openat2(root_fd, "/dev/pts/ptmx", O_PATH, 0, kInRoot);
  if (pts) {
    (void)sys::unlinkat(devdir.get(), "ptmx", 0);
    MOAT_TRY(sys::symlinkat("pts/ptmx", devdir.get(), "ptmx"));
  }
  return Ok();
}

Result<UniqueFd> PrepareRootInChild(const std::string& rootfs, unsigned long propagation) {
  // Nothing the container mounts may propagate back to the host: slave (or what the config
  // asks) recursively from "/" before any mount.
  MOAT_TRY(sys::mount("", "/", "", propagation, ""));
  MOAT_TRY(sys::mount(rootfs, rootfs, "", MS_BIND | MS_REC, ""));
  // pivot_root refuses a new root whose parent mount is shared.
  if (propagation & MS_SHARED) MOAT_TRY(sys::mount("", rootfs, "", MS_PRIVATE, ""));
  return sys::open(rootfs, O_PATH | O_DIRECTORY);
}

Result<void> PivotRootInChild(int root_fd) {
  MOAT_TRY(sys::fchdir(root_fd));
  MOAT_TRY(sys::pivot_root(".", "."));
  // The old root is now stacked under "/": make it a slave so the detach cannot propagate to
  // the host, then detach it.
  MOAT_TRY(sys::mount("", ".", "", MS_SLAVE | MS_REC, ""));
  MOAT_TRY(sys::umount2(".", MNT_DETACH));
  return sys::chdir("/");
}

Result<void> MaskPathsInChild(const std::vector<std::string>& paths, int devnull_fd) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd root, sys::open("/", O_PATH | O_DIRECTORY));
  for (const auto& p : paths) {
    auto target = sys::openat2(root.get(), p, O_PATH | O_NOFOLLOW, 0, kInRoot);
    if (!target) {
      if (target.error().sys_errno == ENOENT) continue;
      return std::move(Result<void>(Fail(std::move(target).error()))).Context("masked path %s", p.c_str());
    }
    MOAT_ASSIGN_OR_RETURN(struct stat st, sys::fstat(target->get()));
    if (S_ISDIR(st.st_mode)) {
      MOAT_TRY(std::move(sys::mount("tmpfs", FdPath(target->get()), "tmpfs", MS_RDONLY, "size=0k"))
                   .Context("masked path %s", p.c_str()));
    } else {
      MOAT_TRY(std::move(sys::mount(FdPath(devnull_fd), FdPath(target->get()), "", MS_BIND, ""))
                   .Context("masked path %s", p.c_str()));
    }
  }
  return Ok();
}

Result<void> ReadonlyPathsInChild(const std::vector<std::string>& paths) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd root, sys::open("/", O_PATH | O_DIRECTORY));
  for (const auto& p : paths) {
    auto tree = sys::open_tree(root.get(), p.c_str()[0] == '/' ? p.substr(1) : p,
                               OPEN_TREE_CLONE | AT_RECURSIVE | AT_SYMLINK_NOFOLLOW);
    if (!tree) {
      if (tree.error().sys_errno == ENOENT) continue;
      return std::move(Result<void>(Fail(std::move(tree).error()))).Context("readonly path %s", p.c_str());
    }
    sys::MountAttr attr{};
    attr.attr_set = MOUNT_ATTR_RDONLY;
    MOAT_TRY(std::move(sys::mount_setattr(tree->get(), "", AT_EMPTY_PATH | AT_RECURSIVE, attr))
                 .Context("readonly path %s", p.c_str()));
    MOAT_ASSIGN_OR_RETURN(UniqueFd target, sys::openat2(root.get(), p, O_PATH | O_NOFOLLOW, 0, kInRoot));
    MOAT_TRY(std::move(sys::move_mount(tree->get(), "", target.get(), "",
                                       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH))
                 .Context("readonly path %s", p.c_str()));
  }
  return Ok();
}

Result<void> MakeRootReadonlyInChild() {
  sys::MountAttr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  return std::move(sys::mount_setattr(AT_FDCWD, "/", 0, attr)).Context("read-only rootfs");
}

}  // namespace moat::runtime
