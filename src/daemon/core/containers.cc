#include "daemon/core/containers.h"

#include <algorithm>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "base/log.h"
#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/process.h"
#include "base/sys/socket.h"
#include "base/sys/socket_io.h"
#include "daemon/core/container_internal.h"
#include "daemon/core/oci_config.h"

namespace moat::daemon::core {
namespace {

using privsep::ContainerSpec;

bool IsRunningStatus(const std::string& s) { return s == "running" || s == "paused" || s == "restarting"; }

// Reads `path` inside the root `root_fd` without leaving it (symlinks resolved in the root).
Result<std::string> ReadInRoot(int root_fd, const std::string& path) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd, sys::openat2(root_fd, path, O_RDONLY | O_CLOEXEC, 0,
                                                  RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS));
  std::string out;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return FailErrno("read %s", path.c_str());
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (4 << 20)) return Fail(ErrorKind::kInvalidArgument, "%s: too large", path.c_str());
  }
  return out;
}

bool AllDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

struct ResolvedUser {
  uint32_t uid = 0, gid = 0;
  std::vector<uint32_t> additional_gids;
};

// "user[:group]" with names looked up in the container's /etc/passwd and /etc/group.
Result<ResolvedUser> ResolveUser(int root_fd, const std::string& spec_user) {
  ResolvedUser u;
  if (spec_user.empty()) return u;
  std::string user = spec_user, group;
  if (auto colon = spec_user.find(':'); colon != std::string::npos) {
    user = spec_user.substr(0, colon);
    group = spec_user.substr(colon + 1);
  }
  bool have_gid = false;
  if (AllDigits(user)) {
    u.uid = static_cast<uint32_t>(std::stoul(user));
  }
  auto passwd = ReadInRoot(root_fd, "/etc/passwd");
  bool found = AllDigits(user);
  if (passwd) {
    for (const auto& line : StrSplit(*passwd, '\n')) {
      auto f = StrSplit(line, ':');
      if (f.size() < 4) continue;
      if (f[0] == user || (AllDigits(user) && f[2] == user)) {
        if (!AllDigits(f[2]) || !AllDigits(f[3])) continue;
        u.uid = static_cast<uint32_t>(std::stoul(f[2]));
        u.gid = static_cast<uint32_t>(std::stoul(f[3]));
        have_gid = true;
        found = true;
        break;
      }
    }
  }
  if (!found) {
    return Fail(ErrorKind::kInvalidArgument,
                "unable to find user %s: no matching entries in passwd file", user.c_str());
  }
  if (!group.empty()) {
    if (AllDigits(group)) {
      u.gid = static_cast<uint32_t>(std::stoul(group));
    } else {
      auto groups = ReadInRoot(root_fd, "/etc/group");
      bool gfound = false;
      if (groups) {
        for (const auto& line : StrSplit(*groups, '\n')) {
          auto f = StrSplit(line, ':');
          if (f.size() >= 3 && f[0] == group && AllDigits(f[2])) {
            u.gid = static_cast<uint32_t>(std::stoul(f[2]));
            gfound = true;
            break;
          }
        }
      }
      if (!gfound) {
        return Fail(ErrorKind::kInvalidArgument,
                    "unable to find group %s: no matching entries in group file", group.c_str());
      }
    }
  } else if (!have_gid) {
    u.gid = 0;
  }
  return u;
}

}  // namespace

Result<std::pair<uint32_t, uint32_t>> ResolveUserInRoot(int root_fd, const std::string& user) {
  MOAT_ASSIGN_OR_RETURN(ResolvedUser u, ResolveUser(root_fd, user));
  return std::make_pair(u.uid, u.gid);
}

namespace {

Result<std::string> DeviceNumbers(const std::string& path) {
  MOAT_ASSIGN_OR_RETURN(struct stat st, sys::fstatat(AT_FDCWD, path, 0));
  if (S_ISCHR(st.st_mode)) return StrFormat("c %u:%u", major(st.st_rdev), minor(st.st_rdev));
  if (S_ISBLK(st.st_mode)) return StrFormat("b %u:%u", major(st.st_rdev), minor(st.st_rdev));
  return Fail(ErrorKind::kInvalidArgument, "error gathering device information while adding custom device \"%s\": not a device node", path.c_str());
}

Result<std::string> BlockDeviceNumbers(const std::string& path) {
  MOAT_ASSIGN_OR_RETURN(struct stat st, sys::fstatat(AT_FDCWD, path, 0));
  if (!S_ISBLK(st.st_mode)) return Fail(ErrorKind::kInvalidArgument, "%s: not a block device", path.c_str());
  return StrFormat("%u:%u", major(st.st_rdev), minor(st.st_rdev));
}

}  // namespace

Containers::Containers(Paths paths, image::Store* store, Events* events, Json default_spec,
                       std::string default_seccomp, Networks* networks)
    : paths_(std::move(paths)),
      store_(store),
      events_(events),
      networks_(networks),
      default_spec_(std::move(default_spec)),
      default_seccomp_(std::move(default_seccomp)) {}

Containers::~Containers() = default;

// The monitor's sockets live here, and sun_path holds 108 bytes: the id's first 24 hex digits
// (96 random bits) keep "<exec root>/c/<24>/attach.sock" short.
std::string Containers::ExecDir(const std::string& id) const {
  return paths_.exec_root + "/c/" + id.substr(0, 24);
}
std::string Containers::DataDir(const std::string& id) const {
  return paths_.data_root + "/containers/" + id;
}

Result<std::shared_ptr<Containers::Container>> Containers::Find(const std::string& ref_in) {
  std::string ref = ref_in;
  if (!ref.empty() && ref[0] == '/') ref.erase(0, 1);
  std::lock_guard lock(mu_);
  if (auto it = by_id_.find(ref); it != by_id_.end()) return it->second;
  if (auto it = id_by_name_.find(ref); it != id_by_name_.end()) return by_id_.at(it->second);
  std::shared_ptr<Container> found;
  if (!ref.empty()) {
    for (const auto& [id, c] : by_id_) {
      if (id.rfind(ref, 0) == 0) {
        if (found) return Fail(ErrorKind::kInvalidArgument, "multiple IDs found with provided prefix: %s", ref.c_str());
        found = c;
      }
    }
  }
  if (!found) return Fail(ErrorKind::kNotFound, "No such container: %s", ref_in.c_str());
  return found;
}

Result<void> Containers::Persist(const Container& c) {
  Json j = {{"Id", c.id},
            {"Name", c.name},
            {"Spec", privsep::EncodeContainerSpec(c.spec)},
            {"ImageID", c.image_id},
            {"Args", c.args},
            {"Created", c.created_nano},
            {"Status", c.status},
            {"ExitCode", c.exit_code},
            {"OOMKilled", c.oom_killed},
            {"Error", c.error},
            {"StartedAt", c.started_nano},
            {"FinishedAt", c.finished_nano},
            {"Pid", c.pid},
            {"RestartCount", c.restart_count},
            {"ManuallyStopped", c.manually_stopped}};
  return sys::WriteFileAtomic(DataDir(c.id) + "/container.json", Dump(j), 0600);
}

void Containers::Emit(const Container& c, const std::string& action,
                      std::map<std::string, std::string> extra) {
  Event e;
  e.type = "container";
  e.action = action;
  e.id = c.id;
  e.attributes = c.spec.labels;
  e.attributes["name"] = c.name;
  e.attributes["image"] = c.spec.image;
  for (auto& [k, v] : extra) e.attributes[k] = v;
  events_->Publish(std::move(e));
}

Result<void> Containers::Restore() {
  MOAT_TRY(sys::MkdirAll(paths_.data_root + "/containers", 0700));
  MOAT_TRY(sys::MkdirAll(paths_.exec_root + "/c", 0700));
  MOAT_TRY(sys::MkdirAll(paths_.data_root + "/volumes", 0700));
  UniqueFd dir(::open((paths_.data_root + "/containers").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) return FailErrno("open %s/containers", paths_.data_root.c_str());
  DIR* d = fdopendir(dup(dir.get()));
  if (!d) return FailErrno("fdopendir");
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    names.push_back(n);
  }
  closedir(d);
  std::set<std::string> running;
  for (const auto& n : names) {
    if (n.rfind(".", 0) == 0) {
      // A create that did not finish, or a removal that did not: never visible, now gone.
      (void)sys::RemoveAll(paths_.data_root + "/containers/" + n);
      continue;
    }
    auto text = sys::ReadFile(DataDir(n) + "/container.json");
    if (!text) {
      MOAT_LOG(kWarning, "container %s: no record, ignored: %s", n.c_str(), text.error().message.c_str());
      continue;
    }
    auto j = ParseJson(*text);
    if (!j) {
      MOAT_LOG(kWarning, "container %s: bad record: %s", n.c_str(), j.error().message.c_str());
      continue;
    }
    auto c = std::make_shared<Container>();
    Json& r = *j;
    std::string name;
    (void)GetString(r, "Id", &c->id, "Id");
    (void)GetString(r, "Name", &c->name, "Name");
    auto spec = privsep::DecodeContainerSpec(r.value("Spec", Json::object()), "");
    if (!spec || c->id != n) {
      MOAT_LOG(kWarning, "container %s: bad record", n.c_str());
      continue;
    }
    c->spec = std::move(*spec);
    c->spec.name = c->name;
    (void)GetString(r, "ImageID", &c->image_id, "ImageID");
    (void)GetStringList(r, "Args", &c->args, "Args");
    (void)GetInt(r, "Created", &c->created_nano, "Created");
    (void)GetString(r, "Status", &c->status, "Status");
    (void)GetInt(r, "ExitCode", &c->exit_code, "ExitCode");
    (void)GetBool(r, "OOMKilled", &c->oom_killed, "OOMKilled");
    (void)GetString(r, "Error", &c->error, "Error");
    (void)GetInt(r, "StartedAt", &c->started_nano, "StartedAt");
    (void)GetInt(r, "FinishedAt", &c->finished_nano, "FinishedAt");
    int64_t pid = 0, rc = 0;
    (void)GetInt(r, "Pid", &pid, "Pid");
    (void)GetInt(r, "RestartCount", &rc, "RestartCount");
    c->pid = static_cast<int>(pid);
    c->restart_count = static_cast<int>(rc);
    (void)GetBool(r, "ManuallyStopped", &c->manually_stopped, "ManuallyStopped");
    {
      std::lock_guard lock(mu_);
      by_id_[c->id] = c;
      id_by_name_[c->name] = c->id;
    }
    if (IsRunningStatus(c->status)) {
      // Re-adopt the monitor if it still answers.
      auto state = CtlCall(*c, {{"op", "state"}});
      if (state && state->value("status", "") != "stopped") {
        std::lock_guard lock(mu_);
        c->monitor_ready = true;
        c->rootfs_mounted = true;
        std::string st = state->value("status", "running");
        c->status = st == "paused" ? "paused" : "running";
        MOAT_LOG(kInfo, "container %s: monitor re-adopted", c->id.c_str());
        running.insert(c->id);
      } else {
        int64_t code = 255;
        bool oom = false;
        std::string err = "the container's monitor is gone";
        if (state) {
          code = state->value("exit_code", 255);
          oom = state->value("oom_killed", false);
          err.clear();
        } else if (auto st = sys::ReadFile(ExecDir(c->id) + "/status.json")) {
          if (auto sj = ParseJson(*st); sj && sj->value("status", "") == "stopped") {
            code = sj->value("exit_code", 255);
            oom = sj->value("oom_killed", false);
            err.clear();
          }
        }
        {
          std::lock_guard lock(mu_);
          c->rootfs_mounted = true;
        }
        OnExit(c, code, oom, err);
        (void)CtlCall(*c, {{"op", "shutdown"}});
        continue;
      }
      if (networks_) networks_->Readopt(c->id);
      StartWaiter(c);
    } else {
      UnmountRootfs(*c);
    }
  }
  if (networks_) networks_->Sweep(running);
  return {};
}

Result<void> Containers::CheckNetworks(const ContainerSpec& spec) {
  const std::string& mode = spec.network_mode;
  if (mode.rfind("container:", 0) == 0) {
    MOAT_TRY(Find(mode.substr(10)).Context("network mode"));
    return {};
  }
  if (!networks_) {
    if (mode != "default" && mode != "bridge" && mode != "none" && mode != "host") {
      return Fail(ErrorKind::kNotFound, "network %s not found", mode.c_str());
    }
    return {};
  }
  MOAT_TRY(networks_->ResolveName(privsep::PrimaryNetwork(spec)));
  for (const auto& [name, ep] : spec.endpoints) {
    MOAT_ASSIGN_OR_RETURN(std::string resolved, networks_->ResolveName(name));
    if ((resolved == "host" || resolved == "none") && resolved != privsep::PrimaryNetwork(spec)) {
      return Fail(ErrorKind::kInvalidArgument, "container cannot be connected to network %s and others",
                  resolved.c_str());
    }
  }
  return {};
}

Result<Json> Containers::Create(const ContainerSpec& spec_in) {
  MOAT_TRY(privsep::ValidateContainerSpec(spec_in));
  ContainerSpec spec = spec_in;
  MOAT_ASSIGN_OR_RETURN(image::Image img, store_->Resolve(spec.image));
  MOAT_ASSIGN_OR_RETURN(std::vector<std::string> args, ProcessArgs(spec, img.config));
  MOAT_TRY(CheckNetworks(spec));
  if (networks_ && Networks::OwnStack(spec.network_mode) && spec.network_mode != "none") {
    // Network names resolved once (an id or a prefix becomes the name); the primary network is
    // one of the endpoints, so that it can be disconnected and connected like the others.
    MOAT_ASSIGN_OR_RETURN(std::string primary, networks_->ResolveName(privsep::PrimaryNetwork(spec)));
    std::map<std::string, privsep::EndpointSpec> eps;
    for (const auto& [name, ep] : spec.endpoints) {
      MOAT_ASSIGN_OR_RETURN(std::string resolved, networks_->ResolveName(name));
      eps[resolved] = ep;
    }
    if (!eps.count(primary)) eps[primary] = privsep::EndpointSpec{};
    spec.endpoints = std::move(eps);
    if (spec.network_mode != "default") spec.network_mode = primary;
  }
  auto c = std::make_shared<Container>();
  c->id = RandomId();
  c->image_id = img.id;
  c->args = args;
  c->created_nano = NowNano();
  if (spec.stop_signal.empty()) spec.stop_signal = img.config.stop_signal;
  {
    std::lock_guard lock(mu_);
    std::string name = spec.name;
    if (name.empty()) {
      do name = RandomName() + "_" + c->id.substr(0, 4);
      while (id_by_name_.count(name));
    } else if (auto it = id_by_name_.find(name); it != id_by_name_.end()) {
      return Fail(ErrorKind::kConflict,
                  "Conflict. The container name \"/%s\" is already in use by container \"%s\". You "
                  "have to remove (or rename) that container to be able to reuse that name.",
                  name.c_str(), it->second.c_str());
    }
    c->name = name;
    spec.name = name;
    // Reserve the name while the record is written.
    id_by_name_[name] = c->id;
  }
  c->spec = spec;
  // Written under a dot name, then renamed: a crash never leaves a half-created container.
  std::string tmp = paths_.data_root + "/containers/.new-" + c->id;
  auto written = [&]() -> Result<void> {
    MOAT_TRY(sys::MkdirAll(tmp, 0700));
    MOAT_TRY(sys::MkdirAll(tmp + "/upper", 0755));
    MOAT_TRY(sys::MkdirAll(tmp + "/work", 0700));
    if (::rename(tmp.c_str(), DataDir(c->id).c_str()) != 0) return FailErrno("rename %s", tmp.c_str());
    return Persist(*c);
  }();
  if (!written) {
    (void)sys::RemoveAll(tmp);
    (void)sys::RemoveAll(DataDir(c->id));
    std::lock_guard lock(mu_);
    id_by_name_.erase(c->name);
    return Fail(written.error());
  }
  {
    std::lock_guard lock(mu_);
    by_id_[c->id] = c;
  }
  Emit(*c, "create");
  return Json{{"Id", c->id}, {"Warnings", Json::array()}};
}

Result<void> Containers::PrepareRootfs(Container& c, const image::Image& img) {
  std::string bundle = ExecDir(c.id) + "/bundle";
  std::string rootfs = bundle + "/rootfs";
  MOAT_TRY(sys::MkdirAll(rootfs, 0755));
  bool mounted;
  {
    std::lock_guard lock(mu_);
    mounted = c.rootfs_mounted;
  }
  if (mounted) {
    // After a restart of the daemon the flag may be stale: trust /proc/self/mountinfo-free
    // check — a mounted overlay has a different device than its parent.
    struct stat a, b;
    if (stat(rootfs.c_str(), &a) == 0 && stat(bundle.c_str(), &b) == 0 && a.st_dev != b.st_dev) return {};
  }
  std::string lower;
  for (auto it = img.layer_dirs.rbegin(); it != img.layer_dirs.rend(); ++it) {
    if (!lower.empty()) lower += ":";
    lower += *it;
  }
  std::string data = DataDir(c.id);
  std::string opts = "lowerdir=" + lower + ",upperdir=" + data + "/upper,workdir=" + data + "/work";
  if (img.layer_dirs.empty()) {
    // An image without layers: an empty read-only lower dir.
    MOAT_TRY(sys::MkdirAll(data + "/empty", 0755));
    opts = "lowerdir=" + data + "/empty,upperdir=" + data + "/upper,workdir=" + data + "/work";
  }
  if (opts.size() > 4000) {
    return Fail(ErrorKind::kUnsupported, "image %s has too many layers for one overlay mount", img.id.c_str());
  }
  if (::mount("overlay", rootfs.c_str(), "overlay", MS_NODEV, opts.c_str()) != 0) {
    return FailErrno("mount overlay on %s", rootfs.c_str());
  }
  std::lock_guard lock(mu_);
  c.rootfs_mounted = true;
  return {};
}

Result<std::string> Containers::EnsureRootfs(const std::shared_ptr<Container>& c, bool* mounted_here) {
  *mounted_here = false;
  std::string rootfs = ExecDir(c->id) + "/bundle/rootfs";
  {
    std::lock_guard lock(mu_);
    if (c->rootfs_mounted) return rootfs;
  }
  MOAT_ASSIGN_OR_RETURN(image::Image img, store_->Resolve(c->image_id));
  MOAT_TRY(PrepareRootfs(*c, img));
  *mounted_here = true;
  return rootfs;
}

void Containers::UnmountRootfs(const Container& c) {
  std::string rootfs = ExecDir(c.id) + "/bundle/rootfs";
  // Detach: a process still holding a file open does not keep the daemon from going on.
  while (::umount2(rootfs.c_str(), MNT_DETACH) == 0) {
  }
}

Result<Json> Containers::CtlCall(const Container& c, const Json& request, std::vector<UniqueFd>* fds) {
  MOAT_ASSIGN_OR_RETURN(UniqueFd sock, sys::ConnectUnix(ExecDir(c.id) + "/ctl.sock", SOCK_SEQPACKET));
  MOAT_TRY(sys::SendWithFds(sock.get(), Dump(request), {}));
  MOAT_ASSIGN_OR_RETURN(sys::Message m, sys::RecvWithFds(sock.get(), 1 << 20, 4));
  if (m.data.empty()) return Fail(ErrorKind::kUnavailable, "container %s: monitor closed the connection", c.id.c_str());
  MOAT_ASSIGN_OR_RETURN(Json reply, ParseJson(m.data));
  if (!reply.value("ok", false)) {
    std::string kind = reply.value("kind", "internal");
    ErrorKind k = kind == "not_found" ? ErrorKind::kNotFound
                  : kind == "conflict" ? ErrorKind::kConflict
                  : kind == "invalid_argument" ? ErrorKind::kInvalidArgument
                                               : ErrorKind::kInternal;
    return Fail(k, "%s", reply.value("message", "monitor error").c_str());
  }
  if (fds) *fds = std::move(m.fds);
  return reply;
}

Result<bool> Containers::Start(const std::string& ref) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  std::lock_guard op(c->op_mu);
  return StartLocked(c);
}

Result<bool> Containers::StartLocked(const std::shared_ptr<Container>& c) {
  {
    std::lock_guard lock(mu_);
    if (c->removed) return Fail(ErrorKind::kNotFound, "No such container: %s", c->id.c_str());
    if (c->status == "running" || c->status == "paused") return false;
  }
  MOAT_ASSIGN_OR_RETURN(image::Image img, store_->Resolve(c->image_id));
  auto cleanup_mount = [&] { UnmountRootfs(*c); std::lock_guard lock(mu_); c->rootfs_mounted = false; };
  MOAT_TRY(PrepareRootfs(*c, img));
  bool networked = false;
  auto prepared = [&]() -> Result<void> {
    const ContainerSpec& s = c->spec;
    std::string exec_dir = ExecDir(c->id);
    std::string data = DataDir(c->id);
    // Leftovers of a previous run (monitor sockets, status) go first.
    for (const char* f : {"ctl.sock", "attach.sock", "status.json", "monitor.pid"}) {
      ::unlink((exec_dir + "/" + f).c_str());
    }
    UniqueFd root(::open((exec_dir + "/bundle/rootfs").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return FailErrno("open rootfs of %s", c->id.c_str());
    ConfigInputs in;
    in.spec = &s;
    in.image = &img.config;
    in.id = c->id;
    in.hostname = s.hostname.empty() ? c->id.substr(0, 12) : s.hostname;
    std::string user = !s.user.empty() ? s.user : img.config.user;
    MOAT_ASSIGN_OR_RETURN(ResolvedUser u, ResolveUser(root.get(), user));
    in.uid = u.uid;
    in.gid = u.gid;
    in.additional_gids = u.additional_gids;
    for (const auto& g : s.group_add) {
      if (AllDigits(g)) in.additional_gids.push_back(static_cast<uint32_t>(std::stoul(g)));
    }
    // /etc/hosts, /etc/hostname, /etc/resolv.conf of the container's own.
    std::string hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
    std::string resolv;
    const std::string& mode = s.network_mode;
    if (mode == "host") {
      hosts = sys::ReadFile("/etc/hosts").value_or(hosts);
      resolv = sys::ReadFile("/etc/resolv.conf").value_or("");
    } else if (mode.rfind("container:", 0) == 0) {
      // Another container's network stack: its namespace, its hosts and resolv.conf.
      MOAT_ASSIGN_OR_RETURN(auto other, Find(mode.substr(10)));
      int pid;
      {
        std::lock_guard lock(mu_);
        pid = other->status == "running" || other->status == "paused" ? other->pid : 0;
      }
      if (pid <= 0) {
        return Fail(ErrorKind::kConflict, "cannot join network of a non running container: %s",
                    other->id.c_str());
      }
      in.netns_path = "/proc/" + std::to_string(pid) + "/ns/net";
      hosts = sys::ReadFile(DataDir(other->id) + "/hosts").value_or(hosts);
      resolv = sys::ReadFile(DataDir(other->id) + "/resolv.conf").value_or("");
    } else if (networks_) {
      ContainerNetInfo info;
      info.id = c->id;
      info.name = c->name;
      info.hostname = in.hostname;
      info.domainname = s.domainname;
      info.spec = &s;
      info.exposed_ports = s.exposed_ports;
      for (const auto& p : img.config.exposed_ports) info.exposed_ports.push_back(p);
      MOAT_ASSIGN_OR_RETURN(Sandbox sb, networks_->SetUp(info));
      networked = true;
      in.netns_path = sb.netns_path;
      hosts = sb.hosts;
      resolv = sb.resolv_conf;
    } else {
      hosts += "127.0.1.1\t" + in.hostname + "\n";
    }
    MOAT_TRY(sys::WriteFileAtomic(data + "/hosts", hosts, 0644, sys::Durability::kUntilReboot));
    MOAT_TRY(sys::WriteFileAtomic(data + "/hostname", in.hostname + "\n", 0644, sys::Durability::kUntilReboot));
    MOAT_TRY(sys::WriteFileAtomic(data + "/resolv.conf", resolv, 0644, sys::Durability::kUntilReboot));
    in.hosts_path = data + "/hosts";
    in.hostname_path = data + "/hostname";
    in.resolv_conf_path = data + "/resolv.conf";
    for (const auto& m : s.mounts) {
      if (m.type != "volume") {
        in.volume_dirs.push_back("");
        continue;
      }
      std::string name = m.source.empty() ? RandomId() : m.source;
      std::string dir = paths_.data_root + "/volumes/" + name + "/_data";
      MOAT_TRY(sys::MkdirAll(dir, 0755));
      in.volume_dirs.push_back(dir);
    }
    if (s.init) {
      // Debian's tini-static (install-deps.sh): reaps zombies, forwards signals; static, so it
      // runs in any image. Bind-mounted read-only as /sbin/moat-init.
      for (const char* p : {"/usr/bin/tini-static"}) {
        if (::access(p, X_OK) == 0) {
          in.init_path = p;
          break;
        }
      }
      if (in.init_path.empty()) {
        return Fail(ErrorKind::kUnsupported, "--init: /usr/bin/tini-static is missing (apt-get install tini)");
      }
    }
    in.cgroups_path = paths_.cgroup_parent + "/" + c->id;
    struct rlimit nofile {};
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_max != RLIM_INFINITY) {
      in.default_nofile = nofile.rlim_max;
    }
    if (s.seccomp_profile && *s.seccomp_profile != "unconfined") {
      in.seccomp_json = *s.seccomp_profile;
    } else {
      in.seccomp_json = default_seccomp_;
    }
    ContainerSpec resolved = s;
    for (auto& d : resolved.devices) {
      MOAT_ASSIGN_OR_RETURN(d.path_on_host, DeviceNumbers(d.path_on_host));
    }
    for (auto* list : {&resolved.read_bps, &resolved.write_bps, &resolved.read_iops, &resolved.write_iops}) {
      for (auto& t : *list) {
        MOAT_ASSIGN_OR_RETURN(t.path, BlockDeviceNumbers(t.path));
      }
    }
    in.spec = &resolved;
    MOAT_ASSIGN_OR_RETURN(Json config, BuildOciConfig(default_spec_, in));
    MOAT_TRY(sys::WriteFileAtomic(exec_dir + "/bundle/config.json", Dump(config), 0600,
                                  sys::Durability::kUntilReboot));
    std::vector<std::string> argv = {paths_.runtime_binary, "--root", paths_.exec_root + "/runtime",
                                     "monitor", "--bundle", exec_dir + "/bundle", "--dir", exec_dir,
                                     "--log-path", data + "/" + c->id + "-json.log"};
    if (paths_.log_max_size > 0) {
      argv.insert(argv.end(), {"--log-max-size", std::to_string(paths_.log_max_size),
                               "--log-max-files", std::to_string(paths_.log_max_files)});
    }
    if (s.tty) argv.push_back("--tty");
    if (s.open_stdin) argv.push_back("--stdin");
    if (s.stdin_once) argv.push_back("--stdin-once");
    argv.push_back(c->id);
    return RunTool(argv, "", paths_.runtime_exec);
  }();
  if (!prepared) {
    cleanup_mount();
    if (networked) networks_->TearDown(c->id);
    Error e = prepared.error();
    // Clients map the text to exit codes (docker run: 127 for "no such file or directory" and
    // "executable file not found", 126 for "permission denied"), in runc's lowercase spelling.
    for (auto [from, to] : {std::pair<const char*, const char*>{"No such file or directory", "no such file or directory"},
                            {"Permission denied", "permission denied"}, {"Is a directory", "is a directory"}}) {
      for (size_t at; (at = e.message.find(from)) != std::string::npos;) e.message.replace(at, strlen(from), to);
    }
    e.message = "failed to create task for container: OCI runtime create failed: " + e.message;
    bool auto_remove;
    {
      std::lock_guard lock(mu_);
      c->error = e.message;
      c->exit_code = 128;
      (void)Persist(*c);
      ++c->exit_seq;
      cv_.notify_all();
      auto_remove = c->spec.auto_remove;
    }
    if (auto_remove) {
      // As dockerd: a --rm container that failed to start is removed (after this start, which
      // holds the container's operation lock, has returned).
      std::thread([this, c] {
        std::lock_guard op(c->op_mu);
        (void)RemoveLocked(c, true);
      }).detach();
    }
    return Fail(e);
  }
  {
    // Attach requests made before start connect now, so that no output is lost.
    std::unique_lock lock(mu_);
    c->monitor_ready = true;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(5), [&] { return c->pending_attaches == 0; });
  }
  auto started = CtlCall(*c, {{"op", "start"}});
  if (!started) {
    (void)CtlCall(*c, {{"op", "kill"}, {"signal", SIGKILL}, {"all", true}});
    StartWaiter(c);
    return Fail(started.error());
  }
  auto state = CtlCall(*c, {{"op", "state"}});
  {
    std::lock_guard lock(mu_);
    c->status = "running";
    c->started_nano = NowNano();
    c->pid = state ? state->value("pid", 0) : 0;
    c->error.clear();
    c->exit_code = 0;
    c->oom_killed = false;
    c->manually_stopped = false;
    (void)Persist(*c);
  }
  Emit(*c, "start");
  StartWaiter(c);
  return true;
}

void Containers::StartWaiter(const std::shared_ptr<Container>& c) {
  std::thread([this, c] {
    // The monitor's pid, to see it gone before the exit is announced: a restart makes a new
    // monitor in the same directory, and the old one removes its sockets as it quits.
    UniqueFd monitor;
    if (auto text = sys::ReadFile(ExecDir(c->id) + "/monitor.pid")) {
      if (auto pid = ParseInt64(TrimWhitespace(*text)); pid && *pid > 0) {
        if (auto fd = sys::pidfd_open(static_cast<pid_t>(*pid))) monitor = std::move(*fd);
      }
    }
    auto r = CtlCall(*c, {{"op", "wait"}});
    int64_t code = 255;
    bool oom = false;
    std::string error;
    if (r) {
      code = r->value("exit_code", 255);
      oom = r->value("oom_killed", false);
    } else {
      // The monitor vanished without answering: read what it recorded.
      error = r.error().message;
      if (auto st = sys::ReadFile(ExecDir(c->id) + "/status.json")) {
        if (auto sj = ParseJson(*st); sj && sj->value("status", "") == "stopped") {
          code = sj->value("exit_code", 255);
          oom = sj->value("oom_killed", false);
        }
      }
    }
    (void)CtlCall(*c, {{"op", "shutdown"}});
    if (monitor) {
      struct pollfd pfd = {monitor.get(), POLLIN, 0};
      if (::poll(&pfd, 1, 5000) == 0)
        MOAT_LOG(kWarning, "container %s: its monitor did not quit within 5 s of shutdown",
                 c->id.c_str());
    }
    OnExit(c, code, oom, error);
    AfterExit(c);
  }).detach();
}

void Containers::OnExit(const std::shared_ptr<Container>& c, int64_t code, bool oom,
                        const std::string& error) {
  // Torn down before the exit is announced: a stop or restart waiting for it may start the
  // container again at once, with the same endpoint.
  if (networks_) networks_->TearDown(c->id);
  {
    std::lock_guard lock(mu_);
    c->status = "exited";
    c->exit_code = code;
    c->oom_killed = oom;
    if (!error.empty()) c->error = error;
    c->finished_nano = NowNano();
    c->pid = 0;
    c->monitor_ready = false;
    ++c->exit_seq;
    for (const auto& e : c->exec_ids) {
      if (auto it = execs_.find(e); it != execs_.end() && it->second->running) {
        it->second->running = false;
      }
    }
    UnmountRootfs(*c);
    c->rootfs_mounted = false;
    (void)Persist(*c);
    cv_.notify_all();
  }
  if (oom) Emit(*c, "oom");
  Emit(*c, "die", {{"exitCode", std::to_string(code)}});
}

void Containers::AfterExit(const std::shared_ptr<Container>& c) {
  std::string policy;
  int64_t code, max;
  int count;
  bool manual, auto_remove;
  {
    std::lock_guard lock(mu_);
    if (c->removed) return;
    policy = c->spec.restart_policy;
    code = c->exit_code;
    max = c->spec.restart_max_retries;
    count = c->restart_count;
    manual = c->manually_stopped;
    auto_remove = c->spec.auto_remove;
  }
  if (auto_remove) {
    std::lock_guard op(c->op_mu);
    if (auto r = RemoveLocked(c, false); !r) {
      MOAT_LOG(kWarning, "container %s: auto-remove: %s", c->id.c_str(), r.error().message.c_str());
    }
    return;
  }
  bool restart = !manual && (policy == "always" || policy == "unless-stopped" ||
                             (policy == "on-failure" && code != 0 && (max == 0 || count < max)));
  if (!restart) return;
  // Docker's back-off: 100 ms doubling, capped at a minute.
  int64_t delay_ms = std::min<int64_t>(100LL << std::min(count, 10), 60'000);
  {
    std::unique_lock lock(mu_);
    c->status = "restarting";
    ++c->restart_count;
    (void)Persist(*c);
    cv_.wait_for(lock, std::chrono::milliseconds(delay_ms), [&] { return c->removed || c->manually_stopped; });
    if (c->removed || c->manually_stopped) {
      if (!c->removed) c->status = "exited";
      return;
    }
    c->status = "exited";
  }
  std::lock_guard op(c->op_mu);
  if (auto r = StartLocked(c); !r) {
    MOAT_LOG(kWarning, "container %s: restart: %s", c->id.c_str(), r.error().message.c_str());
  }
}

Result<void> Containers::StopLocked(const std::shared_ptr<Container>& c, int timeout, bool manual) {
  uint64_t seq;
  std::string sig_name;
  {
    std::lock_guard lock(mu_);
    if (manual) {
      c->manually_stopped = true;
      (void)Persist(*c);
      cv_.notify_all();
    }
    seq = c->exit_seq;
    sig_name = c->spec.stop_signal;
    if (timeout < 0) timeout = c->spec.stop_timeout ? static_cast<int>(*c->spec.stop_timeout) : 10;
    if (c->status == "paused") {
      (void)CtlCall(*c, {{"op", "resume"}});
    }
  }
  int sig = SIGTERM;
  if (!sig_name.empty()) {
    if (auto s = privsep::ParseSignal(sig_name)) sig = *s;
  }
  auto exited = [&](int secs) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(secs), [&] { return c->exit_seq != seq; });
  };
  if (timeout != 0) {
    (void)CtlCall(*c, {{"op", "kill"}, {"signal", sig}, {"all", false}});
    if (exited(timeout)) return {};
  }
  (void)CtlCall(*c, {{"op", "kill"}, {"signal", SIGKILL}, {"all", true}});
  if (exited(30)) return {};
  return Fail(ErrorKind::kInternal, "container %s did not stop within 30 s of SIGKILL", c->id.c_str());
}

Result<bool> Containers::Stop(const std::string& ref, int timeout) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  std::lock_guard op(c->op_mu);
  {
    std::lock_guard lock(mu_);
    if (c->status == "restarting") {
      c->manually_stopped = true;
      cv_.notify_all();
      return true;
    }
    if (!IsRunningStatus(c->status)) return false;
  }
  MOAT_TRY(StopLocked(c, timeout, true));
  Emit(*c, "stop");
  return true;
}

Result<void> Containers::Restart(const std::string& ref, int timeout) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  std::lock_guard op(c->op_mu);
  bool running;
  {
    std::lock_guard lock(mu_);
    running = IsRunningStatus(c->status);
  }
  if (running) MOAT_TRY(StopLocked(c, timeout, true));
  MOAT_TRY(StartLocked(c));
  Emit(*c, "restart");
  return {};
}

Result<void> Containers::Kill(const std::string& ref, int signal) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  {
    std::lock_guard lock(mu_);
    if (!IsRunningStatus(c->status) || !c->monitor_ready) {
      return Fail(ErrorKind::kConflict, "Container %s is not running", c->id.c_str());
    }
    if (signal == SIGKILL) c->manually_stopped = true;
  }
  MOAT_TRY(CtlCall(*c, {{"op", "kill"}, {"signal", signal}, {"all", false}}));
  Emit(*c, "kill", {{"signal", std::to_string(signal)}});
  return {};
}

Result<void> Containers::Remove(const std::string& ref, bool force) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  std::lock_guard op(c->op_mu);
  return RemoveLocked(c, force);
}

Result<void> Containers::RemoveLocked(const std::shared_ptr<Container>& c, bool force) {
  {
    std::lock_guard lock(mu_);
    if (c->removed) return {};
    if (IsRunningStatus(c->status) && c->status != "restarting") {
      if (!force) {
        return Fail(ErrorKind::kConflict,
                    "You cannot remove a %s container %s. Stop the container before attempting "
                    "removal or force remove",
                    c->status.c_str(), c->id.c_str());
      }
    }
    c->manually_stopped = true;
    cv_.notify_all();
  }
  bool running;
  {
    std::lock_guard lock(mu_);
    running = IsRunningStatus(c->status) && c->status != "restarting";
  }
  if (running) MOAT_TRY(StopLocked(c, 0, true));
  UnmountRootfs(*c);
  // Renamed first so that a crash half-way never shows a half-removed container.
  std::string trash = paths_.data_root + "/containers/.rm-" + c->id;
  if (::rename(DataDir(c->id).c_str(), trash.c_str()) != 0 && errno != ENOENT) {
    return FailErrno("rename %s", DataDir(c->id).c_str());
  }
  (void)sys::RemoveAll(trash);
  // The waiter thread tells the monitor to go once the exit is recorded (and the network torn
  // down); a removal can get here first: without its ctl socket the monitor would never hear it.
  if (::access((ExecDir(c->id) + "/ctl.sock").c_str(), F_OK) == 0) (void)CtlCall(*c, {{"op", "shutdown"}});
  (void)sys::RemoveAll(ExecDir(c->id));
  {
    std::lock_guard lock(mu_);
    c->removed = true;
    by_id_.erase(c->id);
    if (auto it = id_by_name_.find(c->name); it != id_by_name_.end() && it->second == c->id) {
      id_by_name_.erase(it);
    }
    for (const auto& e : c->exec_ids) execs_.erase(e);
    cv_.notify_all();
  }
  Emit(*c, "destroy");
  return {};
}

Result<void> Containers::Pause(const std::string& ref) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  std::lock_guard op(c->op_mu);
  {
    std::lock_guard lock(mu_);
    if (c->status == "paused") return Fail(ErrorKind::kConflict, "Container %s is already paused", c->id.c_str());
    if (c->status != "running") return Fail(ErrorKind::kConflict, "Container %s is not running", c->id.c_str());
  }
  MOAT_TRY(CtlCall(*c, {{"op", "pause"}}));
  {
    std::lock_guard lock(mu_);
    c->status = "paused";
    (void)Persist(*c);
  }
  Emit(*c, "pause");
  return {};
}

Result<void> Containers::Unpause(const std::string& ref) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  std::lock_guard op(c->op_mu);
  {
    std::lock_guard lock(mu_);
    if (c->status != "paused") return Fail(ErrorKind::kConflict, "Container %s is not paused", c->id.c_str());
  }
  MOAT_TRY(CtlCall(*c, {{"op", "resume"}}));
  {
    std::lock_guard lock(mu_);
    c->status = "running";
    (void)Persist(*c);
  }
  Emit(*c, "unpause");
  return {};
}

Result<void> Containers::Rename(const std::string& ref, const std::string& new_name_in) {
  MOAT_ASSIGN_OR_RETURN(std::string new_name, privsep::NormaliseContainerName(new_name_in));
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  std::lock_guard lock(mu_);
  if (auto it = id_by_name_.find(new_name); it != id_by_name_.end()) {
    return Fail(ErrorKind::kConflict,
                "Conflict. The container name \"/%s\" is already in use by container \"%s\". You "
                "have to remove (or rename) that container to be able to reuse that name.",
                new_name.c_str(), it->second.c_str());
  }
  std::string old = c->name;
  id_by_name_.erase(old);
  id_by_name_[new_name] = c->id;
  c->name = new_name;
  c->spec.name = new_name;
  (void)Persist(*c);
  Event e;
  e.type = "container";
  e.action = "rename";
  e.id = c->id;
  e.attributes = {{"name", new_name}, {"oldName", "/" + old}, {"image", c->spec.image}};
  events_->Publish(std::move(e));
  return {};
}

Result<Json> Containers::Wait(const std::string& ref, const std::string& condition, int client_fd) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  std::string cond = condition.empty() ? "not-running" : condition;
  if (cond != "not-running" && cond != "next-exit" && cond != "removed") {
    return Fail(ErrorKind::kInvalidArgument, "invalid condition: \"%s\"", condition.c_str());
  }
  std::unique_lock lock(mu_);
  uint64_t seq = c->exit_seq;
  auto holds = [&] {
    if (cond == "not-running") return !IsRunningStatus(c->status) || c->removed;
    if (cond == "next-exit") return c->exit_seq != seq || c->removed;
    return c->removed;
  };
  while (!cv_.wait_for(lock, std::chrono::seconds(1), holds)) {
    if (client_fd < 0) continue;
    // The client hung up (or half-closed: a client waiting for an answer does not).
    pollfd p = {client_fd, POLLRDHUP, 0};
    Result<int> ready = sys::poll(&p, 1, 0);
    if (ready && *ready == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) {
      return Fail(ErrorKind::kUnavailable, "wait for %s: the client went away", c->id.c_str());
    }
  }
  Json err = nullptr;
  if (!c->error.empty()) err = {{"Message", c->error}};
  return Json{{"StatusCode", c->exit_code}, {"Error", err}};
}

Result<void> Containers::Resize(const std::string& ref, int height, int width) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  {
    std::lock_guard lock(mu_);
    if (!c->monitor_ready) return Fail(ErrorKind::kConflict, "Container %s is not running", c->id.c_str());
  }
  MOAT_TRY(CtlCall(*c, {{"op", "resize"}, {"height", height}, {"width", width}}));
  return {};
}

std::map<std::string, std::string> Containers::VolumesInUse() {
  std::lock_guard lock(mu_);
  std::map<std::string, std::string> used;
  for (const auto& [id, c] : by_id_) {
    for (const auto& m : c->spec.mounts) {
      if (m.type == "volume" && !m.source.empty()) used.emplace(m.source, id);
    }
  }
  return used;
}

std::optional<std::string> Containers::ImageUser(const std::string& image_id) {
  std::lock_guard lock(mu_);
  for (const auto& [id, c] : by_id_) {
    if (c->image_id == image_id) return id;
  }
  return std::nullopt;
}

Containers::Counts Containers::Count() {
  std::lock_guard lock(mu_);
  Counts n;
  for (const auto& [id, c] : by_id_) {
    ++n.total;
    if (c->status == "running" || c->status == "restarting") ++n.running;
    else if (c->status == "paused") ++n.paused;
    else ++n.stopped;
  }
  return n;
}

Result<void> Containers::Connect(const std::string& ref, const std::string& network, const privsep::EndpointSpec& ep) {
  if (!networks_) return Fail(ErrorKind::kUnsupported, "networking is off");
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  std::lock_guard op(c->op_mu);
  MOAT_ASSIGN_OR_RETURN(std::string name, networks_->ResolveName(network));
  ContainerSpec spec;
  bool running;
  {
    std::lock_guard lock(mu_);
    spec = c->spec;
    running = c->status == "running" || c->status == "paused";
  }
  if (!Networks::OwnStack(spec.network_mode) || spec.network_mode == "none" || name == "host" || name == "none") {
    // As dockerd: a container on host, none or another container's stack joins nothing else.
    return Fail(ErrorKind::kInvalidArgument, "container sharing network namespace with another container or host "
                "cannot be connected to any other network");
  }
  auto attached = networks_->AttachedNetworks(c->id);
  bool already = false;
  if (running) {
    already = std::find(attached.begin(), attached.end(), name) != attached.end();
  } else {
    for (const auto& [n, e] : Networks::JoinList(spec)) already |= n == name;
  }
  if (already) {
    return Fail(ErrorKind::kPermissionDenied, "endpoint with name %s already exists in network %s", c->name.c_str(),
                name.c_str());
  }
  if (running) {
    ContainerNetInfo info;
    info.id = c->id;
    info.name = c->name;
    info.spec = &spec;
    MOAT_TRY(networks_->Connect(info, name, ep));
  }
  std::lock_guard lock(mu_);
  c->spec.endpoints[name] = ep;
  return Persist(*c);
}

Result<void> Containers::Disconnect(const std::string& ref, const std::string& network, bool force) {
  if (!networks_) return Fail(ErrorKind::kUnsupported, "networking is off");
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  std::lock_guard op(c->op_mu);
  MOAT_ASSIGN_OR_RETURN(std::string name, networks_->ResolveName(network));
  bool running;
  ContainerSpec spec;
  {
    std::lock_guard lock(mu_);
    spec = c->spec;
    running = c->status == "running" || c->status == "paused";
  }
  auto joins = Networks::JoinList(spec);
  bool joined = std::any_of(joins.begin(), joins.end(), [&](const auto& j) { return j.first == name; });
  if (!joined) {
    if (force) return {};
    return Fail(ErrorKind::kPermissionDenied, "container %s is not connected to network %s", c->id.c_str(), name.c_str());
  }
  if (running) {
    if (auto r = networks_->Disconnect(c->id, name); !r && !force) return r;
  }
  std::lock_guard lock(mu_);
  c->spec.endpoints.erase(name);
  return Persist(*c);
}

Result<Json> Containers::Prune() {
  std::vector<std::shared_ptr<Container>> victims;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, c] : by_id_) {
      if (!IsRunningStatus(c->status)) victims.push_back(c);
    }
  }
  Json deleted = Json::array();
  for (const auto& c : victims) {
    std::lock_guard op(c->op_mu);
    if (RemoveLocked(c, false)) deleted.push_back(c->id);
  }
  return Json{{"ContainersDeleted", deleted}, {"SpaceReclaimed", 0}};
}

}  // namespace moat::daemon::core
