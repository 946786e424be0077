#include "runtime/mounts.h"

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cerrno>
#include <cstring>

#include "base/sys/fs.h"
#include "base/sys/linux_compat.h"
#include "base/sys/mount.h"
#include "runtime/idmap.h"

namespace moat::runtime {

namespace {

struct FlagOption {
  const char* name;
  bool clear;  // the option clears the flag
  unsigned long flag;
};

// mount(2) flags for fs mounts.
constexpr FlagOption kFlagOptions[] = {
    {"ro", false, MS_RDONLY},          {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},      {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},        {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},      {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},   {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},    {"remount", false, MS_REMOUNT},
    {"mand", false, MS_MANDLOCK},      {"nomand", true, MS_MANDLOCK},
    {"noatime", false, MS_NOATIME},    {"atime", true, MS_NOATIME},
    {"nodiratime", false, MS_NODIRATIME}, {"diratime", true, MS_NODIRATIME},
    {"relatime", false, MS_RELATIME},  {"norelatime", true, MS_RELATIME},
    {"strictatime", false, MS_STRICTATIME}, {"nostrictatime", true, MS_STRICTATIME},
    {"nosymfollow", false, MS_NOSYMFOLLOW}, {"symfollow", true, MS_NOSYMFOLLOW},
    {"silent", false, MS_SILENT},      {"loud", true, MS_SILENT},
};

struct PropOption {
  const char* name;
  unsigned long flags;
};

constexpr PropOption kPropOptions[] = {
    {"private", MS_PRIVATE},         {"rprivate", MS_PRIVATE | MS_REC},
    {"shared", MS_SHARED},           {"rshared", MS_SHARED | MS_REC},
    {"slave", MS_SLAVE},             {"rslave", MS_SLAVE | MS_REC},
    {"unbindable", MS_UNBINDABLE},   {"runbindable", MS_UNBINDABLE | MS_REC},
};

struct AttrOption {
  const char* name;
  bool clear;
  uint64_t attr;
};

// Recursive variants ("rro") set mount attributes on every submount through mount_setattr.
constexpr AttrOption kRecursiveAttrOptions[] = {
    {"rro", false, MOUNT_ATTR_RDONLY},     {"rrw", true, MOUNT_ATTR_RDONLY},
    {"rnosuid", false, MOUNT_ATTR_NOSUID}, {"rsuid", true, MOUNT_ATTR_NOSUID},
    {"rnodev", false, MOUNT_ATTR_NODEV},   {"rdev", true, MOUNT_ATTR_NODEV},
    {"rnoexec", false, MOUNT_ATTR_NOEXEC}, {"rexec", true, MOUNT_ATTR_NOEXEC},
    {"rnoatime", false, MOUNT_ATTR_NOATIME}, {"rnosymfollow", false, MOUNT_ATTR_NOSYMFOLLOW},
};

uint64_t AttrFromFlags(unsigned long flags) {
  uint64_t a = 0;
  if (flags & MS_RDONLY) a |= MOUNT_ATTR_RDONLY;
  if (flags & MS_NOSUID) a |= MOUNT_ATTR_NOSUID;
  if (flags & MS_NODEV) a |= MOUNT_ATTR_NODEV;
  if (flags & MS_NOEXEC) a |= MOUNT_ATTR_NOEXEC;
  if (flags & MS_NOATIME) a |= MOUNT_ATTR_NOATIME;
  if (flags & MS_NODIRATIME) a |= MOUNT_ATTR_NODIRATIME;
  if (flags & MS_NOSYMFOLLOW) a |= MOUNT_ATTR_NOSYMFOLLOW;
  return a;
}

bool IsProcFs(int fd) {
  struct statfs st {};
  return fstatfs(fd, &st) == 0 && st.f_type == PROC_SUPER_MAGIC;
}

// The id-mapping part of PlanMount. Mappings without "idmap"/"ridmap" still map the mount:
// the spec only says the option SHOULD accompany them (runc maps the top mount then).
Result<void> PlanIdmap(const oci::Mount& m, const ContainerIdMaps& container,
                       const std::string& field, MountOp* op) {
  bool has_maps = !m.uid_mappings.empty() || !m.gid_mappings.empty();
  if (!has_maps && !op->idmap) return Ok();
  if (!op->bind) {
    if (has_maps)
      return Fail(ErrorKind::kInvalidArgument,
                  "%s.uidMappings: only bind mounts can be id-mapped (type \"%s\")",
                  field.c_str(), m.type.c_str());
    return Fail(ErrorKind::kInvalidArgument,
                "%s.options: \"%s\" applies only to bind mounts (type \"%s\")", field.c_str(),
                op->idmap_recursive ? "ridmap" : "idmap", m.type.c_str());
  }
  op->idmap = true;
  if (has_maps) {
    // config.md: each "MUST be specified along with" the other (validate.cc says so too).
    if (m.uid_mappings.empty() || m.gid_mappings.empty())
      return Fail(ErrorKind::kInvalidArgument, "%s.%s: required with %s", field.c_str(),
                  m.uid_mappings.empty() ? "uidMappings" : "gidMappings",
                  m.uid_mappings.empty() ? "gidMappings" : "uidMappings");
    op->uid_mappings = m.uid_mappings;
    op->gid_mappings = m.gid_mappings;
    return Ok();
  }
  // config.md: without mappings the runtime MAY use the container's user namespace mapping,
  // and MUST fail when the container has no user namespace.
  if (container.uids.empty() || container.gids.empty())
    return Fail(ErrorKind::kInvalidArgument,
                "%s.uidMappings: required with option \"%s\" when the container has no user "
                "namespace mappings of its own (linux.uidMappings) to use",
                field.c_str(), op->idmap_recursive ? "ridmap" : "idmap");
  op->uid_mappings = container.uids;
  op->gid_mappings = container.gids;
  return Ok();
}

// Sets the op's mount attributes on a detached bind tree (remains owned by the caller).
Result<void> SetTreeAttributes(int tree_fd, const MountOp& op) {
  if (!op.attr_set && !op.attr_clr) return Ok();
  sys::MountAttr attr{};
  attr.attr_set = op.attr_set;
  attr.attr_clr = op.attr_clr;
  if (op.attr_set & MOUNT_ATTR__ATIME) attr.attr_clr |= MOUNT_ATTR__ATIME;
  unsigned flags = AT_EMPTY_PATH | ((op.attr_recursive || op.recursive) ? AT_RECURSIVE : 0);
  return std::move(sys::mount_setattr(tree_fd, "", flags, attr))
      .Context("bind mount %s", op.destination.c_str());
}

}  // namespace

std::string FdPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

Result<unsigned long> PropagationFlags(const std::string& name) {
  if (name.empty()) return static_cast<unsigned long>(MS_REC | MS_SLAVE);
  for (const auto& p : kPropOptions)
    if (name == p.name) return p.flags;
  return Fail(ErrorKind::kInvalidArgument, "linux.rootfsPropagation: unknown value \"%s\"",
              name.c_str());
}

Result<MountOp> PlanMount(const oci::Mount& m, const std::string& bundle,
                          const std::string& field, const ContainerIdMaps& container) {
  MountOp op;
  op.destination = m.destination;
  op.type = m.type;
  op.source = m.source;
  std::vector<std::string> data;
  unsigned long clear_flags = 0;
  for (const auto& o : m.options) {
    bool known = false;
    if (o == "bind" || o == "rbind") {
      op.bind = true;
      op.recursive = op.recursive || o == "rbind";
      continue;
    }
    if (o == "defaults" || o == "tmpcopyup") continue;
    if (o == "idmap" || o == "ridmap") {
      op.idmap = true;
      op.idmap_recursive = op.idmap_recursive || o == "ridmap";
      continue;
    }
    for (const auto& f : kFlagOptions) {
      if (o == f.name) {
        if (f.clear) {
          op.flags &= ~f.flag;
          clear_flags |= f.flag;
        } else {
          op.flags |= f.flag;
        }
        known = true;
      }
    }
    for (const auto& p : kPropOptions) {
      if (o == p.name) {
        op.propagation = p.flags;
        known = true;
      }
    }
    for (const auto& a : kRecursiveAttrOptions) {
      if (o == a.name) {
        (a.clear ? op.attr_clr : op.attr_set) |= a.attr;
        op.attr_recursive = true;
        known = true;
      }
    }
    if (!known) {
      if (o.empty() || o.find(',') != std::string::npos)
        return Fail(ErrorKind::kInvalidArgument, "%s.options: invalid option \"%s\"",
                    field.c_str(), o.c_str());
      data.push_back(o);
    }
  }
  if (m.type == "bind") op.bind = true;
  MOAT_TRY(PlanIdmap(m, container, field, &op));
  if (op.bind) {
    op.type = "bind";
    if (op.source.empty())
      return Fail(ErrorKind::kInvalidArgument, "%s.source: a bind mount needs a source",
                  field.c_str());
    if (op.source[0] != '/') op.source = bundle + "/" + op.source;
    op.attr_set |= AttrFromFlags(op.flags);
    op.attr_clr |= AttrFromFlags(clear_flags);
    if (op.flags & MS_RELATIME) op.attr_set |= MOUNT_ATTR_RELATIME;
    struct stat st {};
    if (::stat(op.source.c_str(), &st) != 0)
      return Fail(Error::FromErrno(errno, field + ".source: " + op.source));
    op.source_is_dir = S_ISDIR(st.st_mode);
  } else if (op.type.empty()) {
    return Fail(ErrorKind::kInvalidArgument, "%s.type: required for a non-bind mount",
                field.c_str());
  }
  op.data = StrJoin(data, ",");
  return op;
}

Result<void> PrepareIdmappedMountsFromParent(std::vector<MountOp>& ops) {
  for (size_t i = 0; i < ops.size(); ++i) {
    MountOp& op = ops[i];
    if (!op.bind || !op.idmap) continue;
    const std::string field = StrFormat("mounts[%zu]", i);
    unsigned tree_flags = OPEN_TREE_CLONE | (op.recursive ? AT_RECURSIVE : 0);
    MOAT_ASSIGN_OR_RETURN(UniqueFd tree, std::move(sys::open_tree(AT_FDCWD, op.source, tree_flags))
                                             .Context("%s.source", field.c_str()));
    // A clone of a shared mount joins its peer group: without this, what the container mounts
    // under the destination would propagate to the host. The init's own binds get this from
    // the rslave of "/" in PrepareRootInChild; this tree is cloned from the host's namespace.
    sys::MountAttr slave{};
    slave.propagation = MS_SLAVE;
    MOAT_TRY(std::move(sys::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, slave))
                 .Context("%s: make the id-mapped tree a slave", field.c_str()));
    MOAT_TRY(std::move(SetTreeAttributes(tree.get(), op)).Context("%s", field.c_str()));
    {
      MOAT_ASSIGN_OR_RETURN(UniqueFd userns,
                            std::move(MakeMappingUserNamespace(op.uid_mappings, op.gid_mappings))
                                .Context("%s.uidMappings/gidMappings", field.c_str()));
      auto r = IdmapTree(tree.get(), userns.get(),
                         op.idmap_recursive ? IdmapRecursion::kWholeTree
                                            : IdmapRecursion::kTopOnly);
      if (!r && r.error().sys_errno == EINVAL)
        return std::move(r).Context(
            "%s: id-mapping %s (does its filesystem%s support id-mapped mounts?)", field.c_str(),
            op.source.c_str(), op.idmap_recursive ? ", or one of its submounts'," : "");
      MOAT_TRY(std::move(r).Context("%s: id-mapping %s", field.c_str(), op.source.c_str()));
    }
    op.idmapped_tree = std::make_shared<UniqueFd>(std::move(tree));
  }
  return Ok();
}

namespace {

Result<UniqueFd> MkdirAllInRootDepth(int root_fd, const std::string& path, bool leaf_is_dir,
                                     int depth) {
  constexpr uint64_t kResolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  if (depth > 40) return Fail(ErrorKind::kInvalidArgument, "path %s: too many symlinks", path.c_str());
  auto existing = sys::openat2(root_fd, path, O_PATH, 0, kResolve);
  if (existing || existing.error().sys_errno != ENOENT) return existing;
  // Walk the components: each missing one is created with mkdirat under the fd of its resolved
  // parent, so creation never follows a path string either.
  std::vector<std::string> parts;
  for (auto& p : StrSplit(path, '/'))
    if (!p.empty() && p != ".") parts.push_back(p);
  if (parts.empty()) return sys::openat2(root_fd, "/", O_PATH, 0, kResolve);
  MOAT_ASSIGN_OR_RETURN(UniqueFd parent, sys::openat2(root_fd, "/", O_PATH, 0, kResolve));
  std::string prefix;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] == "..")
      return Fail(ErrorKind::kInvalidArgument, "path %s: \"..\" is not allowed", path.c_str());
    std::string parent_prefix = prefix.empty() ? "/" : prefix;
    prefix += "/" + parts[i];
    bool last = i + 1 == parts.size();
    bool want_dir = !last || leaf_is_dir;
    auto next = sys::openat2(root_fd, prefix, O_PATH, 0, kResolve);
    if (!next) {
      if (next.error().sys_errno != ENOENT) return Fail(std::move(next).error());
      if (auto link = sys::readlinkat(parent.get(), parts[i]); link) {
        // A dangling symlink: create what it points to, inside the root (an absolute target
        // is relative to the root, as RESOLVE_IN_ROOT reads it).
        std::string target = (*link)[0] == '/' ? *link : parent_prefix + "/" + *link;
        MOAT_TRY(MkdirAllInRootDepth(root_fd, target, want_dir, depth + 1));
      } else if (!want_dir) {
        int fd = ::openat(parent.get(), parts[i].c_str(),
                          O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST) return FailErrno("create %s", prefix.c_str());
        if (fd >= 0) ::close(fd);
      } else {
        auto mk = sys::mkdirat(parent.get(), parts[i], 0755);
        if (!mk && mk.error().sys_errno != EEXIST) return Fail(std::move(mk).error());
      }
      MOAT_ASSIGN_OR_RETURN(UniqueFd created, sys::openat2(root_fd, prefix, O_PATH, 0, kResolve));
      next = std::move(created);
    }
    parent = std::move(*next);
  }
  return parent;
}

}  // namespace

Result<UniqueFd> MkdirAllInRoot(int root_fd, const std::string& path, bool leaf_is_dir) {
  return MkdirAllInRootDepth(root_fd, path, leaf_is_dir, 0);
}

Result<void> ApplyMount(int root_fd, const MountOp& op) {
  constexpr uint64_t kResolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  MOAT_ASSIGN_OR_RETURN(UniqueFd target,
                        std::move(MkdirAllInRoot(root_fd, op.destination,
                                                 op.bind ? op.source_is_dir : true))
                            .Context("mount target %s", op.destination.c_str()));
  if (op.bind && op.idmap) {
    // Made by the runtime on the host (PrepareIdmappedMountsFromParent): only attached here.
    if (!op.idmapped_tree || !op.idmapped_tree->valid())
      return Fail(ErrorKind::kInternal, "id-mapped mount %s: its tree was not prepared",
                  op.destination.c_str());
    MOAT_TRY(std::move(sys::move_mount(op.idmapped_tree->get(), "", target.get(), "",
                                       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH))
                 .Context("id-mapped mount %s", op.destination.c_str()));
    op.idmapped_tree->reset();
  } else if (op.bind) {
    unsigned tree_flags = OPEN_TREE_CLONE | (op.recursive ? AT_RECURSIVE : 0);
    MOAT_ASSIGN_OR_RETURN(UniqueFd tree, sys::open_tree(AT_FDCWD, op.source, tree_flags));
    MOAT_TRY(SetTreeAttributes(tree.get(), op));
    MOAT_TRY(sys::move_mount(tree.get(), "", target.get(), "",
                             MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH));
  } else {
    auto r = sys::mount(op.source, FdPath(target.get()), op.type, op.flags, op.data);
    if (!r && op.type == "sysfs" && r.error().sys_errno == EPERM) {
      // Without a network namespace of its own, a user namespace may not mount sysfs: bind
      // the host's /sys read-only, as runc does.
      MountOp bind = op;
      bind.bind = true;
      bind.recursive = true;
      bind.source = "/sys";
      bind.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
      return ApplyMount(root_fd, bind);
    }
    if (!r && op.type == "mqueue" && r.error().sys_errno == EPERM) {
      MountOp bind = op;
      bind.bind = true;
      bind.source = "/dev/mqueue";
      bind.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
      return ApplyMount(root_fd, bind);
    }
    MOAT_TRY(std::move(r).Context("mounts: %s", op.destination.c_str()));
    if (op.type == "proc") {
      // Whatever sits at the target now must be procfs: the runtime writes through it later.
      MOAT_ASSIGN_OR_RETURN(UniqueFd check, sys::openat2(root_fd, op.destination, O_PATH, 0,
                                                         kResolve));
      if (!IsProcFs(check.get()))
        return Fail(ErrorKind::kPermissionDenied, "mount %s: not procfs after mounting",
                    op.destination.c_str());
    }
  }
  if (op.propagation) {
    MOAT_ASSIGN_OR_RETURN(UniqueFd mounted,
                          sys::openat2(root_fd, op.destination, O_PATH, 0, kResolve));
    MOAT_TRY(sys::mount("", FdPath(mounted.get()), "", op.propagation, ""));
  }
  return Ok();
}

}  // namespace moat::runtime
