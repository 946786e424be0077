#include "runtime/monitor/monitor.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "base/defer.h"
#include "base/log.h"
#include "base/sys/fs.h"
#include "base/sys/io.h"
#include "base/sys/memory.h"
#include "base/sys/process.h"
#include "base/sys/socket.h"
#include "runtime/monitor/event_loop.h"
#include "runtime/monitor/log_writer.h"
#include "runtime/monitor/monitor_json.h"
#include "runtime/monitor/stdio_session.h"

namespace moat::runtime::monitor {

namespace {

// After a process exits, its output is read until EOF; a daemonized grandchild that keeps the
// pipes open must not hold the exit back for longer than this.
constexpr int64_t kDrainMs = 2000;
// A stopped container's monitor exits by itself after this long without a "shutdown".
constexpr int64_t kIdleExitMs = 10 * 60 * 1000;
// This long after the last request (a start, an exec, ...), the monitor gives back the memory
// of that one-off work (sys::ReleaseOneOffMemory); the reply and the first output have gone.
constexpr int64_t kReleaseAfterMs = 200;

int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

void SetSigpipe(void (*handler)(int)) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, nullptr);
}

// A container process inherits fds 0-2 and the signal dispositions of the monitor (the
// runtime's clone3 copies them): around Create/StartExec, 0-2 are the process's own stdio and
// SIGPIPE is back at its default, which the monitor itself ignores (it writes to pipes and
// sockets whose readers may go away). Afterwards 0-2 are /dev/null again, and the monitor's
// pid_for_children namespace, which the runtime moved into the container's, is its own again:
// the runtime's hooks (poststop) fork from the monitor after the container's pid namespace died.
template <typename F>
auto WithChildStdio(int in, int out, int err, int devnull, int own_pidns, F fn) -> decltype(fn()) {
  dup2(in >= 0 ? in : devnull, STDIN_FILENO);
  dup2(out >= 0 ? out : devnull, STDOUT_FILENO);
  dup2(err >= 0 ? err : devnull, STDERR_FILENO);
  SetSigpipe(SIG_DFL);
  auto r = fn();
  SetSigpipe(SIG_IGN);
  for (int fd = 0; fd <= 2; ++fd) dup2(devnull, fd);
  if (auto ns = sys::setns(own_pidns, CLONE_NEWPID); !ns)
    MOAT_LOG(kWarning, "restore pid namespace: %s", ns.error().message.c_str());
  return r;
}

// The pty master the container's process sent to the console socket before it reported ready.
Result<UniqueFd> ReceivePtyMaster(int listener) {
  auto conn = sys::accept4(listener, SOCK_NONBLOCK);
  if (!conn)
    return Fail(ErrorKind::kInvalidArgument,
                "no pty received on the console socket: is process.terminal true in config.json?");
  MOAT_ASSIGN_OR_RETURN(sys::Message m, sys::RecvWithFds(conn->get(), 256, 1));
  if (m.fds.size() != 1)
    return Fail(ErrorKind::kInternal, "console socket: expected one pty master fd, got %zu",
                m.fds.size());
  MOAT_TRY(sys::SetNonBlocking(m.fds[0].get()));
  return std::move(m.fds[0]);
}

// Connections left by a failed Create/StartExec.
void DrainConsole(int listener) {
  while (sys::accept4(listener, SOCK_NONBLOCK)) {
  }
}

struct Pipes {
  // Child halves (blocking) and monitor halves (non-blocking).
  UniqueFd child_in, child_out, child_err;
  StdioFds ours;
};

Result<Pipes> MakePipes(bool with_stdin) {
  Pipes p;
  MOAT_ASSIGN_OR_RETURN(auto out, sys::pipe2(0));
  MOAT_ASSIGN_OR_RETURN(auto err, sys::pipe2(0));
  MOAT_TRY(sys::SetNonBlocking(out.first.get()));
  MOAT_TRY(sys::SetNonBlocking(err.first.get()));
  p.ours.stdout_r = std::move(out.first);
  p.child_out = std::move(out.second);
  p.ours.stderr_r = std::move(err.first);
  p.child_err = std::move(err.second);
  if (with_stdin) {
    MOAT_ASSIGN_OR_RETURN(auto in, sys::pipe2(0));
    MOAT_TRY(sys::SetNonBlocking(in.second.get()));
    p.ours.stdin_w = std::move(in.second);
    p.child_in = std::move(in.first);
  }
  return p;
}

class Monitor {
 public:
  Monitor(const Context& ctx, const MonitorOptions& o, EventLoop loop)
      : ctx_(ctx), o_(o), loop_(std::move(loop)) {}

  // Creates everything and the container; on failure nothing of the container is left.
  Result<void> Setup();
  // Serves until "shutdown" or the idle timeout.
  Result<void> Run();
  // Removes the sockets and monitor.pid (status.json stays for the daemon).
  void RemoveFiles();

 private:
  struct ExecRecord {
    pid_t pid = 0;
    UniqueFd pidfd;
    EventLoop::Token token = 0;
    bool running = true;
    int exit_code = 0;
    int64_t exited_ms = 0;
    bool session_closed = false;
    std::unique_ptr<StdioSession> session;
  };
  struct CtlConn {
    UniqueFd sock;
    EventLoop::Token token = 0;
  };

  std::string Path(const char* name) const { return o_.dir + "/" + name; }
  Result<void> WriteStatus();
  void OnInitExit();
  void Tick();
  int Timeout() const;
  int BaseTimeout() const;
  void Finalize();

  void OnCtlListener();
  void OnAttachListener();
  void OnCtlConn(uint64_t id);
  void CloseCtl(uint64_t id);
  void Reply(uint64_t id, const std::string& text, int fd = -1);
  // Returns the reply, or nullopt when it is sent later (wait).
  std::optional<std::string> Handle(uint64_t conn, const Request& req, UniqueFd* fd_out);
  Result<std::string> DoExec(const Request& req, UniqueFd* fd_out);
  void OnExecExit(const std::string& exec_id);
  Result<void> RequireNotStopped() const;

  Context ctx_;
  MonitorOptions o_;
  EventLoop loop_;
  UniqueFd devnull_;
  UniqueFd own_pidns_;
  UniqueFd ctl_listener_, attach_listener_, console_listener_;
  std::unique_ptr<JsonFileLog> log_;
  std::unique_ptr<StdioSession> main_;
  UniqueFd init_pidfd_;
  EventLoop::Token init_token_ = 0;
  StatusRecord status_;
  bool init_exited_ = false;
  int64_t exited_ms_ = 0;
  int64_t release_due_ms_ = 0;  // 0: nothing to release
  bool finished_ = false;
  int64_t finished_ms_ = 0;
  bool quit_ = false;
  uint64_t next_conn_ = 1;
  std::map<uint64_t, CtlConn> ctl_;
  std::vector<uint64_t> waiters_;
  std::map<std::string, ExecRecord> execs_;
};

Result<void> Monitor::Setup() {
  MOAT_ASSIGN_OR_RETURN(devnull_, sys::open("/dev/null", O_RDWR));
  MOAT_ASSIGN_OR_RETURN(own_pidns_, sys::open("/proc/self/ns/pid", O_RDONLY));
  MOAT_ASSIGN_OR_RETURN(ctl_listener_, sys::ListenUnix(Path("ctl.sock"), SOCK_SEQPACKET, 0600));
  MOAT_ASSIGN_OR_RETURN(attach_listener_, sys::ListenUnix(Path("attach.sock"), SOCK_STREAM, 0600));
  MOAT_ASSIGN_OR_RETURN(console_listener_,
                        sys::ListenUnix(Path("console.sock"), SOCK_STREAM, 0600));
  MOAT_ASSIGN_OR_RETURN(log_, JsonFileLog::Open(o_.log, RealClockNow));

  Pipes pipes;
  if (!o_.tty) {
    MOAT_ASSIGN_OR_RETURN(pipes, MakePipes(o_.open_stdin));
  }
  CreateOptions co;
  co.id = o_.id;
  co.bundle = o_.bundle;
  if (o_.tty) co.console_socket = Path("console.sock");
  auto created = WithChildStdio(pipes.child_in.get(), pipes.child_out.get(), pipes.child_err.get(),
                                devnull_.get(), own_pidns_.get(), [&] { return Create(ctx_, co); });
  pipes.child_in.reset();
  pipes.child_out.reset();
  pipes.child_err.reset();
  if (!created) {
    DrainConsole(console_listener_.get());
    return Fail(std::move(created).error());
  }
  Defer remove_container([&] { (void)Delete(ctx_, o_.id, Force::kYes); });
  StdioFds fds = std::move(pipes.ours);
  if (o_.tty) {
    MOAT_ASSIGN_OR_RETURN(fds.pty_master, ReceivePtyMaster(console_listener_.get()));
  }
  MOAT_ASSIGN_OR_RETURN(main_,
                        StdioSession::Create(&loop_, std::move(fds), log_.get(),
                                             o_.stdin_once ? StdinOnce::kYes : StdinOnce::kNo));
  init_pidfd_ = std::move(created->pidfd);
  MOAT_ASSIGN_OR_RETURN(init_token_,
                        loop_.Add(init_pidfd_.get(), EPOLLIN, [this](uint32_t) { OnInitExit(); }));
  MOAT_TRY(loop_.Add(ctl_listener_.get(), EPOLLIN, [this](uint32_t) { OnCtlListener(); }));
  MOAT_TRY(loop_.Add(attach_listener_.get(), EPOLLIN, [this](uint32_t) { OnAttachListener(); }));

  status_.status = "created";
  status_.pid = created->pid;
  status_.monitor_pid = getpid();
  MOAT_TRY(WriteStatus());
  MOAT_TRY(sys::WriteFileAtomic(Path("monitor.pid"), std::to_string(getpid()), 0644,
                                sys::Durability::kUntilReboot));
  remove_container.Cancel();
  return Ok();
}

void Monitor::RemoveFiles() {
  for (const char* name : {"ctl.sock", "attach.sock", "console.sock", "monitor.pid"})
    (void)sys::unlinkat(AT_FDCWD, Path(name), 0);
}

Result<void> Monitor::WriteStatus() {
  return sys::WriteFileAtomic(Path("status.json"), StatusJson(status_), 0644,
                              sys::Durability::kUntilReboot);
}

Result<void> Monitor::Run() {
  while (!quit_) {
    MOAT_TRY(loop_.RunOnce(Timeout()));
    Tick();
  }
  return Ok();
}

int Monitor::Timeout() const {
  int t = BaseTimeout();
  if (release_due_ms_ == 0) return t;
  int r = static_cast<int>(std::max<int64_t>(release_due_ms_ - NowMs(), 0));
  return t < 0 ? r : std::min(t, r);
}

int Monitor::BaseTimeout() const {
  if (init_exited_ && !finished_) return 50;
  for (const auto& [id, e] : execs_)
    if (!e.running && !e.session_closed) return 50;
  if (finished_) {
    int64_t left = finished_ms_ + kIdleExitMs - NowMs();
    return static_cast<int>(std::max<int64_t>(left, 0));
  }
  return -1;
}

void Monitor::Tick() {
  int64_t now = NowMs();
  if (release_due_ms_ != 0 && now >= release_due_ms_) {
    // The code that served the last requests (a start: parsing the bundle, the namespaces,
    // the mounts) will not run again for a while; the monitor's own loop is small.
    release_due_ms_ = 0;
    sys::ReleasedMemory m = sys::ReleaseOneOffMemory();
    MOAT_LOG(kDebug, "monitor %s: released %zu KiB of code pages%s", o_.id.c_str(),
             m.image_bytes >> 10, m.heap_trimmed ? " and free heap" : "");
  }
  if (init_exited_ && !finished_ && (main_->OutputDone() || now - exited_ms_ >= kDrainMs))
    Finalize();
  for (auto it = execs_.begin(); it != execs_.end(); ++it) {
    ExecRecord& e = it->second;
    if (!e.running && !e.session_closed &&
        (e.session->OutputDone() || now - e.exited_ms >= kDrainMs)) {
      e.session->StopOutput();
      e.session->CloseClients();
      e.session_closed = true;
    }
    if (e.session_closed && e.session && !e.session->HasClients()) e.session.reset();
  }
  if (finished_ && now - finished_ms_ >= kIdleExitMs) {
    MOAT_LOG(kInfo, "monitor %s: exiting, nobody asked for shutdown", o_.id.c_str());
    quit_ = true;
  }
}

void Monitor::OnInitExit() {
  loop_.Remove(init_token_);
  init_token_ = 0;
  auto info = sys::waitid_pidfd(init_pidfd_.get(), WEXITED);
  status_.exit_code = info ? sys::ExitCodeFromSiginfo(*info) : 255;
  if (!info) status_.error = info.error().message;
  init_pidfd_.reset();
  init_exited_ = true;
  exited_ms_ = NowMs();
}

// The order is the contract with the daemon: output drained and logged, exit recorded, runtime
// state removed, then waiters answered and attached clients closed.
void Monitor::Finalize() {
  main_->StopOutput();
  if (auto r = log_->Flush(); !r)
    MOAT_LOG(kWarning, "container log: %s", r.error().message.c_str());
  if (auto c = LoadContainer(ctx_, o_.id)) {
    if (auto cg = OpenCgroup(c->state)) {
      if (auto stats = (*cg)->GetStats()) status_.oom_killed = stats->oom_kills > 0;
    }
  }
  status_.status = "stopped";
  status_.finished_at = RealClockNow();
  if (auto r = WriteStatus(); !r) MOAT_LOG(kWarning, "status.json: %s", r.error().message.c_str());
  if (auto r = Delete(ctx_, o_.id, Force::kYes); !r) {
    status_.error = r.error().message;
    (void)WriteStatus();
  }
  finished_ = true;
  finished_ms_ = NowMs();
  std::vector<uint64_t> waiters = std::move(waiters_);
  waiters_.clear();
  for (uint64_t id : waiters) Reply(id, WaitReply(status_));
  main_->CloseClients();
}

void Monitor::OnAttachListener() {
  while (true) {
    auto conn = sys::accept4(attach_listener_.get(), SOCK_NONBLOCK);
    if (!conn) return;
    main_->AddAttachConnection(std::move(*conn));
  }
}

void Monitor::OnCtlListener() {
  while (true) {
    auto conn = sys::accept4(ctl_listener_.get(), SOCK_NONBLOCK);
    if (!conn) return;
    uint64_t id = next_conn_++;
    auto t = loop_.Add(conn->get(), EPOLLIN, [this, id](uint32_t) { OnCtlConn(id); });
    if (!t) continue;
    ctl_.emplace(id, CtlConn{std::move(*conn), *t});
  }
}

void Monitor::CloseCtl(uint64_t id) {
  auto it = ctl_.find(id);
  if (it == ctl_.end()) return;
  loop_.Remove(it->second.token);
  ctl_.erase(it);
}

void Monitor::Reply(uint64_t id, const std::string& text, int fd) {
  auto it = ctl_.find(id);
  if (it == ctl_.end()) return;
  std::vector<int> fds;
  if (fd >= 0) fds.push_back(fd);
  // Non-blocking: a client that does not read its replies loses its connection, it does not
  // stall the monitor.
  if (!sys::SendWithFds(it->second.sock.get(), text, fds)) CloseCtl(id);
}

void Monitor::OnCtlConn(uint64_t id) {
  auto it = ctl_.find(id);
  if (it == ctl_.end()) return;
  auto msg = sys::RecvWithFds(it->second.sock.get(), kMaxRequest, 0);
  if (!msg) {
    if (msg.error().sys_errno != EAGAIN) CloseCtl(id);
    return;
  }
  if (msg->data.empty()) {
    CloseCtl(id);
    return;
  }
  auto req = ParseRequest(msg->data);
  if (!req) {
    Reply(id, ErrorReply(req.error()));
    return;
  }
  UniqueFd fd;
  auto reply = Handle(id, *req, &fd);
  if (reply) Reply(id, *reply, fd.get());
}

Result<void> Monitor::RequireNotStopped() const {
  if (finished_ || init_exited_)
    return Fail(ErrorKind::kConflict, "container %s is not running", o_.id.c_str());
  return Ok();
}

std::optional<std::string> Monitor::Handle(uint64_t conn, const Request& req, UniqueFd* fd_out) {
  auto result = [](const Result<void>& r) { return r ? OkReply() : ErrorReply(r.error()); };
  // Whatever a request ran (a start or an exec: most of the runtime; a state: the state
  // store's parsing), it is given back once requests have stopped for a moment.
  release_due_ms_ = NowMs() + kReleaseAfterMs;
  switch (req.op) {
    case Op::kState:
      return StateReply(status_);
    case Op::kWait:
      if (finished_) return WaitReply(status_);
      waiters_.push_back(conn);
      return std::nullopt;
    case Op::kStart: {
      if (auto r = RequireNotStopped(); !r) return ErrorReply(r.error());
      // Attach clients that connected before this request are registered first, so that they
      // see the container's first output.
      OnAttachListener();
      main_->ReadPendingHeaders();
      auto r = Start(ctx_, o_.id);
      if (r) {
        status_.status = "running";
        status_.started_at = RealClockNow();
        (void)WriteStatus();
      }
      return result(r);
    }
    case Op::kKill: {
      if (auto r = RequireNotStopped(); !r) return ErrorReply(r.error());
      return result(Kill(ctx_, o_.id, req.signal, req.all));
    }
    case Op::kPause:
    case Op::kResume: {
      if (auto r = RequireNotStopped(); !r) return ErrorReply(r.error());
      bool pause = req.op == Op::kPause;
      auto r = pause ? Pause(ctx_, o_.id) : Resume(ctx_, o_.id);
      if (r) {
        status_.status = pause ? "paused" : (status_.started_at.empty() ? "created" : "running");
        (void)WriteStatus();
      }
      return result(r);
    }
    case Op::kResize:
      if (auto r = RequireNotStopped(); !r) return ErrorReply(r.error());
      return result(main_->Resize(req.height, req.width));
    case Op::kExec: {
      auto r = DoExec(req, fd_out);
      return r ? *r : ErrorReply(r.error());
    }
    case Op::kExecState: {
      auto it = execs_.find(req.exec_id);
      if (it == execs_.end())
        return ErrorReply(MakeError(ErrorKind::kNotFound, "no exec %s", req.exec_id.c_str()));
      return ExecStateReply(it->second.running, it->second.exit_code, it->second.pid);
    }
    case Op::kExecResize: {
      auto it = execs_.find(req.exec_id);
      if (it == execs_.end())
        return ErrorReply(MakeError(ErrorKind::kNotFound, "no exec %s", req.exec_id.c_str()));
      if (!it->second.session || !it->second.running)
        return ErrorReply(
            MakeError(ErrorKind::kConflict, "exec %s is not running", req.exec_id.c_str()));
      return result(it->second.session->Resize(req.height, req.width));
    }
    case Op::kShutdown:
      if (!finished_)
        return ErrorReply(MakeError(ErrorKind::kConflict,
                                    "container %s is %s: the monitor stays until it stops",
                                    o_.id.c_str(), status_.status.c_str()));
      quit_ = true;
      return OkReply();
  }
  return ErrorReply(MakeError(ErrorKind::kInvalidArgument, "unknown operation"));
}

Result<std::string> Monitor::DoExec(const Request& req, UniqueFd* fd_out) {
  MOAT_TRY(RequireNotStopped());
  if (execs_.count(req.exec_id))
    return Fail(ErrorKind::kConflict, "exec %s already exists", req.exec_id.c_str());
  bool terminal = req.process.terminal;
  Pipes pipes;
  if (!terminal) {
    MOAT_ASSIGN_OR_RETURN(pipes, MakePipes(req.stdin_attached));
  }
  ExecOptions eo;
  eo.id = o_.id;
  eo.process = req.process;
  if (terminal) eo.console_socket = Path("console.sock");
  auto started =
      WithChildStdio(pipes.child_in.get(), pipes.child_out.get(), pipes.child_err.get(),
                     devnull_.get(), own_pidns_.get(), [&] { return StartExec(ctx_, eo); });
  pipes.child_in.reset();
  pipes.child_out.reset();
  pipes.child_err.reset();
  if (!started) {
    DrainConsole(console_listener_.get());
    return Fail(std::move(started).error());
  }
  Defer kill_exec([&] {
    (void)sys::pidfd_send_signal(started->pidfd.get(), SIGKILL);
    (void)sys::waitid_pidfd(started->pidfd.get(), WEXITED);
  });
  StdioFds fds = std::move(pipes.ours);
  if (terminal) {
    MOAT_ASSIGN_OR_RETURN(fds.pty_master, ReceivePtyMaster(console_listener_.get()));
  }
  MOAT_ASSIGN_OR_RETURN(auto pair, sys::socketpair(SOCK_STREAM));
  MOAT_TRY(sys::SetNonBlocking(pair.first.get()));
  ExecRecord rec;
  rec.pid = started->pid;
  MOAT_ASSIGN_OR_RETURN(rec.session,
                        StdioSession::Create(&loop_, std::move(fds), nullptr, StdinOnce::kYes));
  AttachHeader h;
  h.stdin_wanted = req.stdin_attached;
  h.stdout_wanted = h.stderr_wanted = true;
  rec.session->AddClient(std::move(pair.first), h);
  std::string exec_id = req.exec_id;
  MOAT_ASSIGN_OR_RETURN(rec.token, loop_.Add(started->pidfd.get(), EPOLLIN,
                                             [this, exec_id](uint32_t) { OnExecExit(exec_id); }));
  rec.pidfd = std::move(started->pidfd);
  kill_exec.Cancel();
  execs_.emplace(exec_id, std::move(rec));
  *fd_out = std::move(pair.second);
  return PidReply(execs_[exec_id].pid);
}

void Monitor::OnExecExit(const std::string& exec_id) {
  auto it = execs_.find(exec_id);
  if (it == execs_.end()) return;
  ExecRecord& e = it->second;
  loop_.Remove(e.token);
  e.token = 0;
  auto info = sys::waitid_pidfd(e.pidfd.get(), WEXITED);
  e.exit_code = info ? sys::ExitCodeFromSiginfo(*info) : 255;
  e.pidfd.reset();
  e.running = false;
  e.exited_ms = NowMs();
}

// The long-lived monitor, in the forked child. Returns its exit code.
int MonitorMain(const Context& ctx, const MonitorOptions& o, UniqueFd report) {
  // Detached from the daemon: its session, terminal, cwd and stdio are not the monitor's.
  setsid();
  (void)sys::chdir("/");
  // Whatever the daemon let us inherit must not reach the container.
  (void)sys::close_range_cloexec(3);
  if (auto null = sys::open("/dev/null", O_RDWR)) {
    for (int fd = 0; fd <= 2; ++fd) dup2(null->get(), fd);
  }
  SetSigpipe(SIG_IGN);
  auto send_report = [&](const std::string& text) {
    (void)sys::SendWithFds(report.get(), text, {});
    report.reset();
  };
  auto loop = EventLoop::Create();
  if (!loop) {
    send_report(
        StrFormat("%d%s", static_cast<int>(loop.error().kind), loop.error().message.c_str()));
    return 1;
  }
  Monitor m(ctx, o, std::move(*loop));
  if (auto r = m.Setup(); !r) {
    m.RemoveFiles();
    send_report(StrFormat("%d%s", static_cast<int>(r.error().kind), r.error().message.c_str()));
    return 1;
  }
  send_report("ok");
  auto r = m.Run();
  if (!r) MOAT_LOG(kError, "monitor %s: %s", o.id.c_str(), r.error().message.c_str());
  m.RemoveFiles();
  return r ? 0 : 1;
}

}  // namespace

Result<void> Launch(const Context& ctx, const MonitorOptions& o) {
  MOAT_TRY(std::move(sys::open(o.dir, O_PATH | O_DIRECTORY)).Context("--dir"));
  // One message, not a byte stream read to EOF: the container's init inherits the monitor's
  // end (close-on-exec only closes it when the init executes its program, at "start").
  MOAT_ASSIGN_OR_RETURN(auto report, sys::socketpair(SOCK_SEQPACKET));
  sys::CloneArgs ca{};
  ca.flags = CLONE_PIDFD;
  ca.exit_signal = SIGCHLD;
  UniqueFd pidfd;
  MOAT_ASSIGN_OR_RETURN(pid_t pid, sys::clone3(ca, &pidfd));
  if (pid == 0) {
    report.first.reset();
    _exit(MonitorMain(ctx, o, std::move(report.second)));
  }
  report.second.reset();
  std::string text;
  while (true) {
    pollfd fds[2] = {{report.first.get(), POLLIN, 0}, {pidfd.get(), POLLIN, 0}};
    int rc = poll(fds, 2, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return FailErrno("poll");
    if (fds[0].revents & POLLIN) {
      MOAT_ASSIGN_OR_RETURN(sys::Message m, sys::RecvWithFds(report.first.get(), 65536, 0));
      text = std::move(m.data);
      break;
    }
    if (fds[1].revents & POLLIN) break;  // exited without a word
  }
  if (text == "ok") return Ok();
  // The monitor has given up: reap it, so that nothing is left behind.
  (void)sys::waitid_pidfd(pidfd.get(), WEXITED);
  if (text.empty())
    return Fail(ErrorKind::kInternal, "monitor %s exited before creating the container",
                o.id.c_str());
  int kind = text[0] - '0';
  if (kind < 0 || kind > static_cast<int>(ErrorKind::kInternal))
    kind = static_cast<int>(ErrorKind::kInternal);
  return Fail(MakeError(static_cast<ErrorKind>(kind), "%s", text.c_str() + 1));
}

}  // namespace moat::runtime::monitor
