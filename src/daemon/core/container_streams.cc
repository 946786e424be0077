// Streams of a container: logs (json-file replay and follow), attach (the monitor's attach
// socket, handed to the front), and exec (run by the monitor, its stdio socket handed over).

#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <thread>

#include "base/stdcopy.h"
#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/socket.h"
#include "daemon/core/container_internal.h"
#include "daemon/core/oci_config.h"

namespace moat::daemon::core {
namespace {

struct LogLine {
  std::string text;
  int stream = 1;
  int64_t time = 0;
  std::string time_text;
};

std::optional<LogLine> ParseLogLine(const std::string& line) {
  auto j = ParseJson(line);
  if (!j || !j->is_object()) return std::nullopt;
  LogLine l;
  l.text = j->value("log", "");
  l.stream = j->value("stream", "stdout") == "stderr" ? 2 : 1;
  l.time_text = j->value("time", "");
  l.time = ParseTime(l.time_text);
  return l;
}

bool WriteAllFd(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

Result<StreamResult> Containers::Logs(const std::string& ref, const LogOptions& o) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  bool tty;
  std::string id;
  {
    std::lock_guard lock(mu_);
    tty = c->spec.tty;
    id = c->id;
  }
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return FailErrno("pipe2");
  UniqueFd r(p[0]);
  auto w = std::make_shared<UniqueFd>(p[1]);
  std::string path = DataDir(id) + "/" + id + "-json.log";
  std::thread([this, c, o, tty, path, w] {
    signal(SIGPIPE, SIG_IGN);
    auto emit = [&](const LogLine& l) {
      if ((l.stream == 1 && !o.stdout_) || (l.stream == 2 && !o.stderr_)) return true;
      if (o.since_nano > 0 && l.time < o.since_nano) return true;
      if (o.until_nano > 0 && l.time > o.until_nano) return true;
      std::string payload = o.timestamps ? l.time_text + " " + l.text : l.text;
      return WriteAllFd(w->get(), tty ? payload : StdcopyFrame(static_cast<uint8_t>(l.stream), payload));
    };
    // Older rotated files first.
    std::vector<std::string> files;
    for (int i = 9; i >= 1; --i) {
      std::string f = path + "." + std::to_string(i);
      if (::access(f.c_str(), R_OK) == 0) files.push_back(f);
    }
    files.push_back(path);
    std::deque<LogLine> lines;
    for (const auto& f : files) {
      if (f == path) break;
      for (const auto& line : StrSplit(sys::ReadFile(f).value_or(""), '\n')) {
        if (auto l = ParseLogLine(line)) lines.push_back(std::move(*l));
      }
    }
    UniqueFd cur(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    std::string pending;
    auto read_more = [&](std::deque<LogLine>* out) {
      if (!cur) return;
      char buf[65536];
      for (;;) {
        ssize_t n = ::read(cur.get(), buf, sizeof buf);
        if (n <= 0) break;
        pending.append(buf, static_cast<size_t>(n));
      }
      size_t start = 0;
      for (;;) {
        size_t nl = pending.find('\n', start);
        if (nl == std::string::npos) break;
        if (auto l = ParseLogLine(pending.substr(start, nl - start))) out->push_back(std::move(*l));
        start = nl + 1;
      }
      pending.erase(0, start);
    };
    read_more(&lines);
    if (o.tail >= 0) {
      while (static_cast<int64_t>(lines.size()) > o.tail) lines.pop_front();
    }
    for (const auto& l : lines) {
      if (!emit(l)) return;
    }
    if (!o.follow) return;
    for (;;) {
      bool running;
      {
        std::lock_guard lock(mu_);
        running = (c->status == "running" || c->status == "paused" || c->status == "restarting") && !c->removed;
      }
      std::deque<LogLine> more;
      if (!cur) cur.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      // Rotation: the path now names a new file.
      struct stat a, b;
      if (cur && ::fstat(cur.get(), &a) == 0 && ::stat(path.c_str(), &b) == 0 && a.st_ino != b.st_ino) {
        read_more(&more);
        cur.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
      }
      read_more(&more);
      for (const auto& l : more) {
        if (!emit(l)) return;
      }
      if (!running && more.empty()) return;
      if (o.until_nano > 0 && NowNano() > o.until_nano) return;
      // A reader that went away: the pipe's read end is closed (poll reports POLLERR).
      struct pollfd pfd = {w->get(), 0, 0};
      if (::poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLERR | POLLHUP))) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }).detach();
  return StreamResult{std::move(r), tty};
}

Result<StreamResult> Containers::Attach(const std::string& ref, const AttachOptions& o) {
  if (o.logs && !o.stream) {
    LogOptions lo;
    lo.stdout_ = o.stdout_;
    lo.stderr_ = o.stderr_;
    return Logs(ref, lo);
  }
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  bool tty;
  {
    std::unique_lock lock(mu_);
    tty = c->spec.tty;
    if (!c->monitor_ready) {
      if (c->status != "created" && c->status != "exited") {
        return Fail(ErrorKind::kConflict, "container %s is %s", c->id.c_str(), c->status.c_str());
      }
      // Attach before start (docker run): wait for the monitor, which start brings up.
      uint64_t seq = c->exit_seq;
      ++c->pending_attaches;
      cv_.wait(lock, [&] { return c->monitor_ready || c->removed || c->exit_seq != seq; });
      if (!c->monitor_ready) {
        --c->pending_attaches;
        cv_.notify_all();
        return Fail(ErrorKind::kConflict, "container %s stopped before it could be attached", c->id.c_str());
      }
    } else {
      ++c->pending_attaches;
    }
  }
  auto connected = [&]() -> Result<UniqueFd> {
    MOAT_ASSIGN_OR_RETURN(UniqueFd s, sys::ConnectUnix(ExecDir(c->id) + "/attach.sock", SOCK_STREAM));
    Json header = {{"stdin", o.stdin_}, {"stdout", o.stdout_}, {"stderr", o.stderr_}};
    MOAT_TRY(sys::WriteAll(s.get(), Dump(header) + "\n"));
    return s;
  }();
  {
    std::lock_guard lock(mu_);
    --c->pending_attaches;
    cv_.notify_all();
  }
  if (!connected) return Fail(connected.error());
  return StreamResult{std::move(*connected), tty};
}

Result<Json> Containers::ExecCreate(const std::string& ref, const privsep::ExecSpec& spec) {
  MOAT_TRY(privsep::ValidateExecSpec(spec));
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  std::lock_guard lock(mu_);
  if (c->status != "running") {
    return Fail(ErrorKind::kConflict, "Container %s is not running", c->id.c_str());
  }
  auto e = std::make_shared<ExecRecord>();
  e->id = RandomId();
  e->container_id = c->id;
  e->spec = spec;
  execs_[e->id] = e;
  c->exec_ids.insert(e->id);
  return Json{{"Id", e->id}};
}

Result<StreamResult> Containers::ExecStart(const std::string& exec_id, bool detach) {
  std::shared_ptr<ExecRecord> e;
  {
    std::lock_guard lock(mu_);
    auto it = execs_.find(exec_id);
    if (it == execs_.end()) return Fail(ErrorKind::kNotFound, "No such exec instance: %s", exec_id.c_str());
    e = it->second;
    if (e->started) return Fail(ErrorKind::kConflict, "Error: Exec command %s has already run", exec_id.c_str());
    e->started = true;
    e->running = true;
  }
  MOAT_ASSIGN_OR_RETURN(auto c, Find(e->container_id));
  std::string exec_dir = ExecDir(c->id);
  MOAT_ASSIGN_OR_RETURN(std::string config_text, sys::ReadFile(exec_dir + "/bundle/config.json"));
  MOAT_ASSIGN_OR_RETURN(Json config, ParseJson(config_text));
  uint32_t uid = 0, gid = 0;
  if (!e->spec.user.empty()) {
    UniqueFd root(::open((exec_dir + "/bundle/rootfs").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!root) return FailErrno("open rootfs of %s", c->id.c_str());
    MOAT_ASSIGN_OR_RETURN(auto ug, ResolveUserInRoot(root.get(), e->spec.user));
    uid = ug.first;
    gid = ug.second;
  }
  MOAT_ASSIGN_OR_RETURN(Json process, BuildExecProcess(config["process"], e->spec, uid, gid));
  if (e->spec.privileged) {
    Json all = Json::array();
    for (const auto& cap : config["process"]["capabilities"]["bounding"]) all.push_back(cap);
    process["capabilities"]["effective"] = all;
  }
  std::vector<UniqueFd> fds;
  auto r = CtlCall(*c, {{"op", "exec"}, {"exec_id", e->id}, {"process", process}, {"stdin", e->spec.attach_stdin && !detach}}, &fds);
  if (!r) {
    std::lock_guard lock(mu_);
    e->running = false;
    // dockerd's codes: 127 when the program is not there, 126 when it cannot be run.
    const std::string& m = r.error().message;
    bool missing = m.find("No such file or directory") != std::string::npos ||
                   m.find("no such file or directory") != std::string::npos ||
                   m.find("executable file not found") != std::string::npos;
    e->exit_code = missing ? 127 : 126;
    return Fail(r.error());
  }
  {
    std::lock_guard lock(mu_);
    e->pid = r->value("pid", 0);
  }
  Event ev;
  ev.type = "container";
  ev.action = "exec_start: " + StrJoin(e->spec.cmd, " ");
  ev.id = c->id;
  ev.attributes = {{"name", c->name}, {"image", c->spec.image}, {"execID", e->id}};
  events_->Publish(std::move(ev));
  if (fds.empty()) return Fail(ErrorKind::kInternal, "exec %s: the monitor sent no stream", e->id.c_str());
  if (detach) return StreamResult{UniqueFd(), e->spec.tty};
  return StreamResult{std::move(fds[0]), e->spec.tty};
}

Result<Json> Containers::ExecInspect(const std::string& exec_id) {
  std::shared_ptr<ExecRecord> e;
  {
    std::lock_guard lock(mu_);
    auto it = execs_.find(exec_id);
    if (it == execs_.end()) return Fail(ErrorKind::kNotFound, "No such exec instance: %s", exec_id.c_str());
    e = it->second;
  }
  if (e->started) {
    if (auto c = Find(e->container_id)) {
      auto st = CtlCall(**c, {{"op", "exec-state"}, {"exec_id", e->id}});
      std::lock_guard lock(mu_);
      if (st) {
        e->running = st->value("running", false);
        if (!e->running) e->exit_code = st->value("exit_code", 0);
        e->pid = st->value("pid", e->pid);
      } else if (e->running) {
        e->running = false;
      }
    }
  }
  std::lock_guard lock(mu_);
  std::vector<std::string> args;
  if (e->spec.cmd.size() > 1) args.assign(e->spec.cmd.begin() + 1, e->spec.cmd.end());
  return Json{{"ID", e->id},
              {"Running", e->running},
              {"ExitCode", e->exit_code ? Json(*e->exit_code) : Json(nullptr)},
              {"ProcessConfig", {{"tty", e->spec.tty}, {"entrypoint", e->spec.cmd.empty() ? "" : e->spec.cmd[0]},
                                 {"arguments", args}, {"privileged", e->spec.privileged}, {"user", e->spec.user}}},
              {"OpenStdin", e->spec.attach_stdin},
              {"OpenStderr", e->spec.attach_stderr},
              {"OpenStdout", e->spec.attach_stdout},
              {"CanRemove", false},
              {"ContainerID", e->container_id},
              {"DetachKeys", ""},
              {"Pid", e->pid}};
}

Result<void> Containers::ExecResize(const std::string& exec_id, int height, int width) {
  std::string cid;
  {
    std::lock_guard lock(mu_);
    auto it = execs_.find(exec_id);
    if (it == execs_.end()) return Fail(ErrorKind::kNotFound, "No such exec instance: %s", exec_id.c_str());
    cid = it->second->container_id;
  }
  MOAT_ASSIGN_OR_RETURN(auto c, Find(cid));
  MOAT_TRY(CtlCall(*c, {{"op", "exec-resize"}, {"exec_id", exec_id}, {"height", height}, {"width", width}}));
  return {};
}

}  // namespace moat::daemon::core
