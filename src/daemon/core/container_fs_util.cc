#include "daemon/core/container_fs_util.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <utility>

#include "base/strings.h"
#include "base/sys/fdio.h"
#include "base/sys/fs.h"
#include "base/sys/linux_compat.h"
#include "daemon/core/container_internal.h"

namespace moat::daemon::core::fs {

namespace {

// Names of a directory open on `dir_fd` (remains owned by the caller), without "." and "..",
// sorted (a stable tar order).
Result<std::vector<std::string>> ReadDirNames(int dir_fd) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd d, sys::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY));
  DIR* dir = fdopendir(d.get());
  if (!dir) return FailErrno("fdopendir");
  (void)d.release();  // owned by `dir` now
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = readdir(dir)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) names.push_back(e->d_name);
    errno = 0;
  }
  int err = errno;
  closedir(dir);
  if (err != 0) return Fail(Error::FromErrno(err, "readdir"));
  std::sort(names.begin(), names.end());
  return names;
}

// fgetxattr(2) of a small value; "" when absent. TODO(#3): move to src/base/sys/.
std::string GetXattr(int fd, const char* name) {
  char buf[16];
  ssize_t n = ::fgetxattr(fd, name, buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

bool IsWhiteout(const struct stat& st) { return S_ISCHR(st.st_mode) && st.st_rdev == 0; }

bool IsOpaque(int dir_fd) {
  return GetXattr(dir_fd, "trusted.overlay.opaque") == "y" ||
         GetXattr(dir_fd, "user.overlay.opaque") == "y";
}

std::string JoinTar(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "/" + name;
}

}  // namespace

uint32_t GoFileMode(mode_t mode) {
  uint32_t m = mode & 0777;
  switch (mode & S_IFMT) {
    case S_IFDIR:
      m |= 1u << 31;
      break;
    case S_IFLNK:
      m |= 1u << 27;
      break;
    case S_IFBLK:
      m |= 1u << 26;
      break;
    case S_IFCHR:
      m |= (1u << 26) | (1u << 21);
      break;
    case S_IFIFO:
      m |= 1u << 25;
      break;
    case S_IFSOCK:
      m |= 1u << 24;
      break;
    default:
      break;
  }
  if (mode & S_ISUID) m |= 1u << 23;
  if (mode & S_ISGID) m |= 1u << 22;
  if (mode & S_ISVTX) m |= 1u << 20;
  return m;
}

Json PathStatJson(const std::string& name, const struct stat& st, const std::string& link_target) {
  int64_t nano = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  return Json{{"name", name},
              {"size", static_cast<int64_t>(st.st_size)},
              {"mode", GoFileMode(st.st_mode)},
              {"mtime", FormatTime(nano)},
              {"linkTarget", link_target}};
}

namespace {

// Lexical clean of an absolute path (Go's filepath.Clean).
std::string CleanAbs(const std::string& p) {
  std::vector<std::string> out;
  for (const auto& c : StrSplit(p, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.push_back(c);
  }
  return "/" + StrJoin(out, "/");
}

}  // namespace

Result<ContainerPath> ParseContainerPath(const std::string& raw_in) {
  if (raw_in.empty()) return Fail(ErrorKind::kInvalidArgument, "empty path");
  if (raw_in.find('\0') != std::string::npos)
    return Fail(ErrorKind::kInvalidArgument, "path contains a NUL byte");
  std::string raw = raw_in[0] == '/' ? raw_in : "/" + raw_in;
  ContainerPath p;
  p.clean = CleanAbs(raw);
  size_t slash = p.clean.rfind('/');
  p.parent = slash == 0 ? "/" : p.clean.substr(0, slash);
  p.base = p.clean.substr(slash + 1);
  p.follow_last = raw.back() == '/' || (raw.size() >= 2 && raw.substr(raw.size() - 2) == "/.");
  if (raw.size() >= 2 && raw.substr(raw.size() - 2) == "/.") {
    p.tar_name = ".";
  } else {
    p.tar_name = p.base.empty() ? "." : p.base;
  }
  return p;
}

std::string LinkTargetPath(const std::string& link_path, const std::string& target) {
  if (!target.empty() && target[0] == '/') return CleanAbs(target);
  size_t slash = link_path.rfind('/');
  std::string dir = slash == std::string::npos ? "/" : link_path.substr(0, slash);
  return CleanAbs(dir + "/" + target);
}

// ---------------------------------------------------------------------------------------------
// TarStream

struct TarStream::Impl {
  struct archive* a = nullptr;
  Whiteouts whiteouts;
  std::map<std::pair<dev_t, ino_t>, std::string> links;  // hardlinked files already written
  bool failed = false;

  Result<void> Check(int rc, const std::string& what) {
    if (rc >= ARCHIVE_WARN) return Ok();
    failed = true;
    int err = archive_errno(a);
    const char* msg = archive_error_string(a);
    return Fail(err > 0 ? Error::FromErrno(err, "tar " + what)
                        : MakeError(ErrorKind::kInternal, "tar %s: %s", what.c_str(),
                                    msg ? msg : "unknown error"));
  }

  // Writes one header; `content_fd` (a regular file's data, remains owned by the caller) or -1.
  Result<void> Write(const std::string& tar_name, const struct stat& st,
                     const std::string& link_target, const std::string& hardlink, int content_fd) {
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, tar_name.c_str());
    archive_entry_set_mode(e, st.st_mode);
    archive_entry_set_uid(e, st.st_uid);
    archive_entry_set_gid(e, st.st_gid);
    archive_entry_set_mtime(e, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    if (S_ISREG(st.st_mode) && hardlink.empty())
      archive_entry_set_size(e, st.st_size);
    else
      archive_entry_set_size(e, 0);
    if (S_ISLNK(st.st_mode)) archive_entry_set_symlink(e, link_target.c_str());
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      archive_entry_set_rdevmajor(e, major(st.st_rdev));
      archive_entry_set_rdevminor(e, minor(st.st_rdev));
    }
    if (!hardlink.empty()) archive_entry_set_hardlink(e, hardlink.c_str());
    auto r = Check(archive_write_header(a, e), "header " + tar_name);
    archive_entry_free(e);
    MOAT_TRY(r);
    if (content_fd >= 0 && hardlink.empty()) {
      // The file may change while it is read (a running container): what is written is cut or
      // zero-padded (by libarchive at the entry's end) to the size in the header.
      int64_t left = st.st_size;
      char buf[1 << 16];
      while (left > 0) {
        MOAT_ASSIGN_OR_RETURN(size_t n, sys::read(content_fd, buf, sizeof buf));
        if (n == 0) break;
        size_t take = static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(n)));
        la_ssize_t w = archive_write_data(a, buf, take);
        if (w < 0) MOAT_TRY(Check(static_cast<int>(w), "data " + tar_name));
        left -= static_cast<int64_t>(take);
      }
    }
    return Check(archive_write_finish_entry(a), "entry " + tar_name);
  }

  Result<void> Children(int dir_fd, const std::string& prefix) {
    MOAT_ASSIGN_OR_RETURN(auto names, ReadDirNames(dir_fd));
    if (whiteouts == Whiteouts::kToOci && IsOpaque(dir_fd)) {
      struct stat st {};
      st.st_mode = S_IFREG | 0600;
      MOAT_TRY(Write(JoinTar(prefix, ".wh..wh..opq"), st, "", "", -1));
    }
    for (const auto& n : names) {
      // Gone since readdir (a running container): skip it.
      auto r = Entry(dir_fd, n, JoinTar(prefix, n));
      if (!r && r.error().kind != ErrorKind::kNotFound) return r;
      if (!r && failed) return r;
    }
    return Ok();
  }

  Result<void> Entry(int parent_fd, const std::string& name, const std::string& tar_name) {
    MOAT_ASSIGN_OR_RETURN(struct stat st, sys::fstatat(parent_fd, name, AT_SYMLINK_NOFOLLOW));
    if (IsWhiteout(st) && whiteouts == Whiteouts::kToOci) {
      size_t slash = tar_name.rfind('/');
      std::string wh = slash == std::string::npos
                           ? ".wh." + tar_name
                           : tar_name.substr(0, slash + 1) + ".wh." + tar_name.substr(slash + 1);
      struct stat wst {};
      wst.st_mode = S_IFREG | 0600;
      wst.st_mtim = st.st_mtim;
      return Write(wh, wst, "", "", -1);
    }
    if (S_ISDIR(st.st_mode)) {
      // O_NOFOLLOW: replaced by a symlink since the fstatat, the open fails instead of leaving
      // the tree.
      MOAT_ASSIGN_OR_RETURN(UniqueFd d,
                            sys::openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
      MOAT_ASSIGN_OR_RETURN(st, sys::fstat(d.get()));
      MOAT_TRY(Write(tar_name + "/", st, "", "", -1));
      return Children(d.get(), tar_name);
    }
    if (S_ISLNK(st.st_mode)) {
      MOAT_ASSIGN_OR_RETURN(std::string target, sys::readlinkat(parent_fd, name));
      return Write(tar_name, st, target, "", -1);
    }
    if (S_ISREG(st.st_mode)) {
      if (st.st_nlink > 1) {
        auto key = std::make_pair(st.st_dev, st.st_ino);
        if (auto it = links.find(key); it != links.end())
          return Write(tar_name, st, "", it->second, -1);
        links[key] = tar_name;
      }
      // O_NONBLOCK: replaced by a fifo since the fstatat, the open does not hang.
      MOAT_ASSIGN_OR_RETURN(UniqueFd f,
                            sys::openat(parent_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK));
      MOAT_ASSIGN_OR_RETURN(struct stat fst, sys::fstat(f.get()));
      if (!S_ISREG(fst.st_mode)) return Ok();
      fst.st_size = st.st_size;
      return Write(tar_name, fst, "", "", f.get());
    }
    if (S_ISSOCK(st.st_mode)) return Ok();  // tar has no sockets (Go's archive/tar skips them)
    return Write(tar_name, st, "", "", -1);
  }
};

TarStream::TarStream(int out_fd, Whiteouts whiteouts) : impl_(new Impl) {
  impl_->whiteouts = whiteouts;
  impl_->a = archive_write_new();
  archive_write_set_format_pax_restricted(impl_->a);
  archive_write_add_filter_none(impl_->a);
  archive_write_set_bytes_in_last_block(impl_->a, 1);
  if (archive_write_open_fd(impl_->a, out_fd) != ARCHIVE_OK) impl_->failed = true;
}

TarStream::~TarStream() {
  archive_write_free(impl_->a);
  delete impl_;
}

Result<void> TarStream::AddAt(int parent_fd, const std::string& name, const std::string& tar_name) {
  if (impl_->failed) return Fail(ErrorKind::kInternal, "tar stream failed");
  return impl_->Entry(parent_fd, name, tar_name);
}

Result<void> TarStream::AddDir(int dir_fd, const std::string& tar_name) {
  if (impl_->failed) return Fail(ErrorKind::kInternal, "tar stream failed");
  if (!tar_name.empty()) {
    MOAT_ASSIGN_OR_RETURN(struct stat st, sys::fstat(dir_fd));
    MOAT_TRY(impl_->Write(tar_name + "/", st, "", "", -1));
  }
  return impl_->Children(dir_fd, tar_name);
}

Result<void> TarStream::Finish() {
  if (impl_->failed) return Fail(ErrorKind::kInternal, "tar stream failed");
  return impl_->Check(archive_write_close(impl_->a), "close");
}

// ---------------------------------------------------------------------------------------------
// Changes

namespace {

constexpr uint64_t kBeneath = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

// Whether `rel` ("a/b") exists in the merged view of `lower_fds` (top first). The overlay looks
// components up literally in each layer (no symlinks followed), so RESOLVE_NO_SYMLINKS.
bool ExistsBelow(const std::vector<int>& lower_fds, const std::string& rel) {
  for (int fd : lower_fds) {
    auto f = sys::openat2(fd, rel, O_PATH | O_NOFOLLOW, 0, kBeneath);
    if (!f) continue;
    auto st = sys::fstat(f->get());
    if (!st) continue;
    return !IsWhiteout(*st);
  }
  return false;
}

Result<void> Walk(int dir_fd, const std::string& rel, const std::vector<int>& lower_fds,
                  std::vector<Change>* out) {
  MOAT_ASSIGN_OR_RETURN(auto names, ReadDirNames(dir_fd));
  for (const auto& n : names) {
    std::string child = rel.empty() ? n : rel + "/" + n;
    auto st = sys::fstatat(dir_fd, n, AT_SYMLINK_NOFOLLOW);
    if (!st) {
      if (st.error().sys_errno == ENOENT) continue;
      return Fail(std::move(st).error());
    }
    if (IsWhiteout(*st)) {
      out->push_back({"/" + child, 2});
      continue;
    }
    bool below = ExistsBelow(lower_fds, child);
    out->push_back({"/" + child, below ? 0 : 1});
    if (S_ISDIR(st->st_mode)) {
      MOAT_ASSIGN_OR_RETURN(UniqueFd d,
                            sys::openat(dir_fd, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
      // Below an opaque directory nothing of the lower layers shows: all is added.
      MOAT_TRY(Walk(d.get(), child, IsOpaque(d.get()) ? std::vector<int>{} : lower_fds, out));
    }
  }
  return Ok();
}

}  // namespace

Result<std::vector<Change>> ComputeChanges(int upper_fd, const std::vector<int>& lower_fds) {
  std::vector<Change> out;
  MOAT_TRY(Walk(upper_fd, "", lower_fds, &out));
  std::sort(out.begin(), out.end(),
            [](const Change& a, const Change& b) { return a.path < b.path; });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Commit config

namespace {

std::string EnvName(const std::string& kv) { return kv.substr(0, kv.find('=')); }

void MergeEnv(Json* env, const std::vector<std::string>& add) {
  if (!env->is_array()) *env = Json::array();
  for (const auto& kv : add) {
    bool replaced = false;
    for (auto& e : *env) {
      if (e.is_string() && EnvName(e.get_ref<const std::string&>()) == EnvName(kv)) {
        e = kv;
        replaced = true;
      }
    }
    if (!replaced) env->push_back(kv);
  }
}

std::string Unquote(std::string s) {
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front())
    return s.substr(1, s.size() - 2);
  return s;
}

// CMD/ENTRYPOINT argument: a JSON array of strings, or the shell form.
Result<Json> CommandForm(const std::string& arg, const std::string& change) {
  if (!arg.empty() && arg[0] == '[') {
    auto j = ParseJson(arg);
    if (j && j->is_array() &&
        std::all_of(j->begin(), j->end(), [](const Json& x) { return x.is_string(); }))
      return *j;
    return Fail(ErrorKind::kInvalidArgument, "invalid change %s: not a JSON array of strings",
                change.c_str());
  }
  return Json::array({"/bin/sh", "-c", arg});
}

Result<void> ApplyChange(Json* cfg, const std::string& change) {
  std::string c = change;
  while (!c.empty() && (c.back() == '\n' || c.back() == ' ')) c.pop_back();
  size_t sp = c.find_first_of(" \t");
  std::string kw = c.substr(0, sp);
  std::string arg = sp == std::string::npos ? "" : c.substr(c.find_first_not_of(" \t", sp));
  for (auto& ch : kw) ch = static_cast<char>(toupper(static_cast<unsigned char>(ch)));
  if (kw == "CMD") {
    MOAT_ASSIGN_OR_RETURN((*cfg)["Cmd"], CommandForm(arg, change));
  } else if (kw == "ENTRYPOINT") {
    MOAT_ASSIGN_OR_RETURN((*cfg)["Entrypoint"], CommandForm(arg, change));
  } else if (kw == "ENV") {
    size_t eq = arg.find('=');
    size_t space = arg.find(' ');
    std::string kv;
    if (eq != std::string::npos && (space == std::string::npos || eq < space)) {
      kv = arg.substr(0, eq) + "=" + Unquote(arg.substr(eq + 1));
    } else if (space != std::string::npos) {
      kv = arg.substr(0, space) + "=" + arg.substr(space + 1);
    } else {
      return Fail(ErrorKind::kInvalidArgument, "ENV needs a name and a value: %s", change.c_str());
    }
    MergeEnv(&(*cfg)["Env"], {kv});
  } else if (kw == "WORKDIR") {
    (*cfg)["WorkingDir"] = arg;
  } else if (kw == "USER") {
    (*cfg)["User"] = arg;
  } else if (kw == "LABEL") {
    size_t eq = arg.find('=');
    if (eq == std::string::npos || eq == 0)
      return Fail(ErrorKind::kInvalidArgument, "LABEL needs key=value: %s", change.c_str());
    (*cfg)["Labels"][Unquote(arg.substr(0, eq))] = Unquote(arg.substr(eq + 1));
  } else if (kw == "EXPOSE") {
    for (const auto& p : StrSplit(arg, ' ')) {
      if (p.empty()) continue;
      (*cfg)["ExposedPorts"][p.find('/') == std::string::npos ? p + "/tcp" : p] = Json::object();
    }
  } else if (kw == "VOLUME") {
    (*cfg)["Volumes"][arg] = Json::object();
  } else if (kw == "STOPSIGNAL") {
    (*cfg)["StopSignal"] = arg;
  } else {
    return Fail(ErrorKind::kInvalidArgument, "%s is not a valid change command", kw.c_str());
  }
  return Ok();
}

}  // namespace

Result<Json> CommitConfig(const Json& image_config, const privsep::ContainerSpec& spec,
                          const Json& overrides, const std::vector<std::string>& changes) {
  Json cfg = image_config.is_object() ? image_config : Json::object();
  if (spec.entrypoint) {
    cfg["Entrypoint"] = *spec.entrypoint;
    // As docker create: an entrypoint given without a command drops the image's command.
    if (!spec.cmd) cfg["Cmd"] = nullptr;
  }
  if (spec.cmd) cfg["Cmd"] = *spec.cmd;
  if (!spec.env.empty()) MergeEnv(&cfg["Env"], spec.env);
  if (!spec.working_dir.empty()) cfg["WorkingDir"] = spec.working_dir;
  if (!spec.user.empty()) cfg["User"] = spec.user;
  for (const auto& [k, v] : spec.labels) cfg["Labels"][k] = v;
  for (const auto& p : spec.exposed_ports) cfg["ExposedPorts"][p] = Json::object();
  if (overrides.is_object()) {
    std::optional<std::vector<std::string>> cmd, entrypoint;
    std::vector<std::string> env;
    std::string workdir, user;
    std::map<std::string, std::string> labels;
    MOAT_TRY(GetStrSlice(overrides, "Cmd", &cmd, "config.Cmd"));
    MOAT_TRY(GetStrSlice(overrides, "Entrypoint", &entrypoint, "config.Entrypoint"));
    MOAT_TRY(GetStringList(overrides, "Env", &env, "config.Env"));
    MOAT_TRY(GetString(overrides, "WorkingDir", &workdir, "config.WorkingDir"));
    MOAT_TRY(GetString(overrides, "User", &user, "config.User"));
    MOAT_TRY(GetStringMap(overrides, "Labels", &labels, "config.Labels"));
    if (cmd) cfg["Cmd"] = *cmd;
    if (entrypoint) cfg["Entrypoint"] = *entrypoint;
    if (!env.empty()) MergeEnv(&cfg["Env"], env);
    if (!workdir.empty()) cfg["WorkingDir"] = workdir;
    if (!user.empty()) cfg["User"] = user;
    for (const auto& [k, v] : labels) cfg["Labels"][k] = v;
  }
  for (const auto& c : changes) {
    if (c.empty()) continue;
    MOAT_TRY(ApplyChange(&cfg, c));
  }
  return cfg;
}

}  // namespace moat::daemon::core::fs
