// `moat-runtime monitor`: the per-container monitor moatd talks to. Driven as the daemon would:
// the real binary, its ctl.sock (SOCK_SEQPACKET, JSON) and attach.sock (stdcopy frames).

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "support/runtime_fixture.h"

namespace moat::testing {
namespace {

// A connected AF_UNIX socket of `type` to `path`, or -1.
int Connect(const std::string& path, int type) {
  int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    close(fd);
    return -1;
  }
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// One ctl.sock connection.
class Ctl {
 public:
  explicit Ctl(const std::string& dir) : fd_(Connect(dir + "/ctl.sock", SOCK_SEQPACKET)) {}
  bool ok() const { return fd_.get() >= 0; }
  int fd() const { return fd_.get(); }
  // Sends `req`; returns the reply (null json on timeout/closed); *fd_out gets an attached fd.
  json Call(const json& req, int timeout_ms = 10000, int* fd_out = nullptr) {
    if (!Send(req)) return json();
    return Receive(timeout_ms, fd_out);
  }
  bool Send(const json& req) {
    std::string s = req.dump();
    return send(fd_.get(), s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
  }
  json Receive(int timeout_ms, int* fd_out = nullptr) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (poll(&p, 1, timeout_ms) != 1) return json();
    char data[65536];
    iovec iov{data, sizeof data};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0) return json();
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int fd;
        memcpy(&fd, CMSG_DATA(c), sizeof fd);
        if (fd_out)
          *fd_out = fd;
        else
          close(fd);
      }
    }
    return json::parse(std::string(data, static_cast<size_t>(n)), nullptr, false);
  }

 private:
  Fd fd_;
};

// Reads `fd` until EOF or `timeout_ms`; *eof tells which.
std::string ReadUntilEof(int fd, int timeout_ms, bool* eof) {
  std::string out;
  *eof = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 50) != 1) continue;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *eof = true;
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

struct Frames {
  std::string out, err;
  bool valid = true;  // every byte belonged to a well-formed frame
};

Frames Demux(const std::string& raw) {
  Frames f;
  size_t i = 0;
  while (i < raw.size()) {
    if (raw.size() - i < 8) {
      f.valid = false;
      break;
    }
    auto b = [&](size_t k) {
      return static_cast<uint32_t>(static_cast<unsigned char>(raw[i + k]));
    };
    uint32_t size = (b(4) << 24) | (b(5) << 16) | (b(6) << 8) | b(7);
    if (raw.size() - i - 8 < size || b(1) || b(2) || b(3) || (b(0) != 1 && b(0) != 2)) {
      f.valid = false;
      break;
    }
    (b(0) == 1 ? f.out : f.err).append(raw, i + 8, size);
    i += 8 + size;
  }
  return f;
}

class MonitorTest : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    dir_ = scratch() + "/m";
    log_ = scratch() + "/c.log";
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0) << strerror(errno);
  }

  void TearDown() override {
    // Whatever the test did: the container killed, the monitor asked to leave, then made to.
    for (pid_t m : monitors_) {
      if (ProcessGone(m)) continue;
      Ctl ctl(dir_);
      if (ctl.ok()) {
        ctl.Call({{"op", "kill"}, {"signal", 9}, {"all", true}}, 2000);
        ctl.Call({{"op", "wait"}}, 5000);
        ctl.Call({{"op", "shutdown"}}, 2000);
      }
      if (!WaitFor([&] { return ProcessGone(m); }, 5000)) {
        ADD_FAILURE() << "monitor " << m << " did not exit";
        kill(m, SIGKILL);
      }
    }
    RuntimeTest::TearDown();
  }

  // `moat-runtime monitor` for `id` with the bundle written from `config`.
  CommandResult Launch(const json& config, const std::string& id,
                       const std::vector<std::string>& flags = {}) {
    WriteConfig(config);
    std::vector<std::string> args = {"monitor", "--bundle",   bundle(), "--dir",
                                     dir_,      "--log-path", log_};
    args.insert(args.end(), flags.begin(), flags.end());
    args.push_back(id);
    CommandResult r = Runtime(args);
    pid_t m = MonitorPid();
    if (m > 0) monitors_.push_back(m);
    return r;
  }

  pid_t MonitorPid() const { return std::atoi(ReadFileOrEmpty(dir_ + "/monitor.pid").c_str()); }
  json StatusFile() const {
    return json::parse(ReadFileOrEmpty(dir_ + "/status.json"), nullptr, false);
  }

  // Connects to attach.sock and sends the header.
  Fd Attach(bool in, bool out, bool err) {
    Fd fd(Connect(dir_ + "/attach.sock", SOCK_STREAM));
    if (fd.get() < 0) {
      ADD_FAILURE() << "connect attach.sock: " << strerror(errno);
      return fd;
    }
    std::string header = json{{"stdin", in}, {"stdout", out}, {"stderr", err}}.dump() + "\n";
    EXPECT_EQ(write(fd.get(), header.data(), header.size()), static_cast<ssize_t>(header.size()));
    return fd;
  }

  // Waits for the container to stop, then shuts the monitor down and checks it left nothing.
  void ShutdownAndCheckGone(const std::string& id) {
    pid_t m = MonitorPid();
    Ctl ctl(dir_);
    ASSERT_TRUE(ctl.ok());
    json w = ctl.Call({{"op", "wait"}});
    ASSERT_EQ(w.value("ok", false), true) << w.dump();
    json s = ctl.Call({{"op", "shutdown"}});
    EXPECT_EQ(s.value("ok", false), true) << s.dump();
    EXPECT_TRUE(WaitFor([&] { return ProcessGone(m); })) << "monitor " << m << " still there";
    EXPECT_FALSE(PathExists(dir_ + "/ctl.sock"));
    EXPECT_FALSE(PathExists(dir_ + "/attach.sock"));
    EXPECT_FALSE(PathExists(state_root() + "/" + id));
    for (const auto& [h, d] : ManagedCgroupDirs(id)) EXPECT_FALSE(PathExists(d)) << h << " " << d;
    // The status stays for the daemon.
    EXPECT_EQ(StatusFile().value("status", ""), "stopped");
  }

  std::string dir_;
  std::string log_;
  std::vector<pid_t> monitors_;
};

TEST_F(MonitorTest, Lifecycle) {
  std::string id = NewId();
  CommandResult r = Launch(Config({"sh", "-c", "echo out; echo err >&2; printf part; exit 3"}), id);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  pid_t m = MonitorPid();
  ASSERT_GT(m, 0);
  // Created, not started: the runtime says so too, and the init waits.
  json st = StatusFile();
  EXPECT_EQ(st.value("status", ""), "created") << st.dump();
  EXPECT_EQ(st.value("monitor_pid", 0), m);
  pid_t init = st.value("pid", 0);
  ASSERT_GT(init, 0);
  EXPECT_FALSE(ProcessGone(init));
  EXPECT_EQ(Status(id), "created");
  // Its own session, and the container's init is its child.
  EXPECT_EQ(getsid(m), m);
  EXPECT_EQ(StatusField(ReadFileOrEmpty("/proc/" + std::to_string(init) + "/status"), "PPid"),
            std::to_string(m));
  struct stat sock {};
  ASSERT_EQ(stat((dir_ + "/ctl.sock").c_str(), &sock), 0);
  EXPECT_EQ(sock.st_mode & 0777, 0600u);

  Ctl ctl(dir_);
  ASSERT_TRUE(ctl.ok());
  json state = ctl.Call({{"op", "state"}});
  EXPECT_EQ(state.value("ok", false), true) << state.dump();
  EXPECT_EQ(state.value("status", ""), "created");
  EXPECT_EQ(ctl.Call({{"op", "shutdown"}}).value("kind", ""), "conflict");
  EXPECT_EQ(ctl.Call({{"op", "bogus"}}).value("kind", ""), "invalid_argument");
  json started = ctl.Call({{"op", "start"}});
  ASSERT_EQ(started.value("ok", false), true) << started.dump();
  json w = ctl.Call({{"op", "wait"}});
  EXPECT_EQ(w.value("ok", false), true) << w.dump();
  EXPECT_EQ(w.value("exit_code", -1), 3) << w.dump();
  EXPECT_EQ(w.value("oom_killed", true), false);
  st = StatusFile();
  EXPECT_EQ(st.value("status", ""), "stopped") << st.dump();
  EXPECT_EQ(st.value("exit_code", -1), 3);
  EXPECT_FALSE(st.value("started_at", "").empty());
  EXPECT_FALSE(st.value("finished_at", "").empty());
  // The log: one record per line, the partial line flushed at exit.
  auto lines = Lines(ReadFileOrEmpty(log_));
  std::vector<std::pair<std::string, std::string>> records;
  for (const auto& l : lines) {
    json j = json::parse(l, nullptr, false);
    ASSERT_TRUE(j.is_object()) << l;
    EXPECT_EQ(j.value("time", "").size(), 30u) << l;
    records.emplace_back(j.value("stream", ""), j.value("log", ""));
  }
  auto has = [&](const std::string& stream, const std::string& text) {
    for (const auto& r2 : records)
      if (r2.first == stream && r2.second == text) return true;
    return false;
  };
  EXPECT_EQ(records.size(), 3u) << ReadFileOrEmpty(log_);
  EXPECT_TRUE(has("stdout", "out\n")) << ReadFileOrEmpty(log_);
  EXPECT_TRUE(has("stderr", "err\n")) << ReadFileOrEmpty(log_);
  EXPECT_TRUE(has("stdout", "part")) << ReadFileOrEmpty(log_);
  // The runtime's state is gone before the wait is answered.
  EXPECT_FALSE(PathExists(state_root() + "/" + id));
  ShutdownAndCheckGone(id);
}

// Once the container runs, the monitor gives back the code pages of the start (bundle parsing,
// namespaces, mounts: several MiB of the runtime binary) and keeps only what its loop touches.
TEST_F(MonitorTest, ReleasesStartupMemoryOnceTheContainerRuns) {
  std::string id = NewId();
  CommandResult r = Launch(Config({"sh", "-c", "echo ready; exec sleep 30"}), id);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  pid_t m = MonitorPid();
  ASSERT_GT(m, 0);
  auto rss_file_kib = [&] {
    std::string v = StatusField(ReadFileOrEmpty("/proc/" + std::to_string(m) + "/status"),
                                "RssFile");
    return std::atol(v.c_str());
  };
  Ctl ctl(dir_);
  ASSERT_TRUE(ctl.ok());
  json started = ctl.Call({{"op", "start"}});
  ASSERT_EQ(started.value("ok", false), true) << started.dump();
  long after_start = rss_file_kib();
  // Without the release this stays at the start's level (~4 MiB here); with it, it falls to
  // the loop's pages (~0.5 MiB).
  ASSERT_TRUE(WaitFor([&] { return rss_file_kib() < 1024; }))
      << "monitor RssFile " << rss_file_kib() << " KiB (right after start " << after_start
      << " KiB)";
  // ...and it still does its work: state, output logged, kill, wait.
  EXPECT_EQ(ctl.Call({{"op", "state"}}).value("status", ""), "running");
  ASSERT_TRUE(WaitFor([&] { return ReadFileOrEmpty(log_).find("ready") != std::string::npos; }));
  EXPECT_EQ(ctl.Call({{"op", "kill"}, {"signal", 9}}).value("ok", false), true);
  json w = ctl.Call({{"op", "wait"}});
  EXPECT_EQ(w.value("exit_code", -1), 137) << w.dump();
  ShutdownAndCheckGone(id);
}

TEST_F(MonitorTest, AttachStdinOnce) {
  std::string id = NewId();
  CommandResult r =
      Launch(Config({"sh", "-c", "cat; echo done >&2"}), id, {"--stdin", "--stdin-once"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  Fd both = Attach(true, true, true);
  Fd only_out = Attach(false, true, false);
  Ctl ctl(dir_);
  ASSERT_EQ(ctl.Call({{"op", "start"}}).value("ok", false), true);
  std::string input = "hello from attach\n";
  ASSERT_EQ(write(both.get(), input.data(), input.size()), static_cast<ssize_t>(input.size()));
  // cat ends only when its stdin is closed: the half-close with --stdin-once does that.
  ASSERT_EQ(shutdown(both.get(), SHUT_WR), 0);
  bool eof = false;
  Frames f = Demux(ReadUntilEof(both.get(), 10000, &eof));
  EXPECT_TRUE(eof);
  EXPECT_TRUE(f.valid);
  EXPECT_EQ(f.out, input);
  EXPECT_EQ(f.err, "done\n");
  Frames o = Demux(ReadUntilEof(only_out.get(), 10000, &eof));
  EXPECT_TRUE(eof);
  EXPECT_TRUE(o.valid);
  EXPECT_EQ(o.out, input);
  EXPECT_EQ(o.err, "");
  json w = ctl.Call({{"op", "wait"}});
  EXPECT_EQ(w.value("exit_code", -1), 0) << w.dump();
  ShutdownAndCheckGone(id);
}

TEST_F(MonitorTest, TtyRawAndResize) {
  std::string id = NewId();
  json config = Config({"sh", "-c", "read x; stty size; exit 4"});
  config["process"]["terminal"] = true;
  CommandResult r = Launch(config, id, {"--tty", "--stdin"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  Fd a = Attach(true, true, true);
  Ctl ctl(dir_);
  ASSERT_EQ(ctl.Call({{"op", "start"}}).value("ok", false), true);
  json rs = ctl.Call({{"op", "resize"}, {"height", 33}, {"width", 77}});
  ASSERT_EQ(rs.value("ok", false), true) << rs.dump();
  ASSERT_EQ(write(a.get(), "go\n", 3), 3);
  bool eof = false;
  std::string out = ReadUntilEof(a.get(), 10000, &eof);
  EXPECT_TRUE(eof);
  // Raw bytes, no stdcopy header: the pty echoes the input, then stty's answer, CRLF.
  EXPECT_EQ(out.rfind("go\r\n", 0), 0u) << out;
  EXPECT_NE(out.find("33 77\r\n"), std::string::npos) << out;
  EXPECT_EQ(ctl.Call({{"op", "wait"}}).value("exit_code", -1), 4);
  EXPECT_NE(ReadFileOrEmpty(log_).find("33 77\\r\\n\",\"stream\":\"stdout\""), std::string::npos)
      << ReadFileOrEmpty(log_);
  ShutdownAndCheckGone(id);
}

TEST_F(MonitorTest, ResizeWithoutTtyFails) {
  std::string id = NewId();
  ASSERT_EQ(Launch(Config({"sleep", "30"}), id).exit_code, 0);
  Ctl ctl(dir_);
  json rs = ctl.Call({{"op", "resize"}, {"height", 10}, {"width", 10}});
  EXPECT_EQ(rs.value("ok", true), false) << rs.dump();
  EXPECT_EQ(ctl.Call({{"op", "kill"}, {"signal", 9}}).value("ok", false), true);
  EXPECT_EQ(ctl.Call({{"op", "wait"}}).value("exit_code", -1), 137);
  ShutdownAndCheckGone(id);
}

TEST_F(MonitorTest, Exec) {
  std::string id = NewId();
  json config = Config({"sleep", "30"});
  ASSERT_EQ(Launch(config, id).exit_code, 0);
  Ctl ctl(dir_);
  ASSERT_EQ(ctl.Call({{"op", "start"}}).value("ok", false), true);
  json process = config["process"];
  process["args"] = {"sh", "-c", "cat; echo hi; echo err >&2; exit 7"};
  int fd = -1;
  json reply = ctl.Call({{"op", "exec"}, {"exec_id", "e1"}, {"process", process}, {"stdin", true}},
                        10000, &fd);
  ASSERT_EQ(reply.value("ok", false), true) << reply.dump();
  ASSERT_GE(fd, 0);
  Fd stream(fd);
  EXPECT_GT(reply.value("pid", 0), 0);
  json es = ctl.Call({{"op", "exec-state"}, {"exec_id", "e1"}});
  EXPECT_EQ(es.value("running", false), true) << es.dump();
  ASSERT_EQ(write(fd, "in\n", 3), 3);
  ASSERT_EQ(shutdown(fd, SHUT_WR), 0);
  bool eof = false;
  Frames f = Demux(ReadUntilEof(fd, 10000, &eof));
  EXPECT_TRUE(eof);
  EXPECT_TRUE(f.valid);
  EXPECT_EQ(f.out, "in\nhi\n");
  EXPECT_EQ(f.err, "err\n");
  EXPECT_TRUE(WaitFor([&] {
    return ctl.Call({{"op", "exec-state"}, {"exec_id", "e1"}}).value("running", true) == false;
  }));
  es = ctl.Call({{"op", "exec-state"}, {"exec_id", "e1"}});
  EXPECT_EQ(es.value("exit_code", -1), 7) << es.dump();
  EXPECT_EQ(ctl.Call({{"op", "exec-state"}, {"exec_id", "e2"}}).value("kind", ""), "not_found");
  // A missing program is the runtime's error, and nothing runs.
  process["args"] = {"/no/such/program"};
  json bad = ctl.Call({{"op", "exec"}, {"exec_id", "e3"}, {"process", process}});
  EXPECT_EQ(bad.value("ok", true), false) << bad.dump();
  EXPECT_NE(bad.value("message", "").find("/no/such/program"), std::string::npos) << bad.dump();
  // The exec's output does not go to the container's log.
  EXPECT_EQ(ReadFileOrEmpty(log_).find("hi"), std::string::npos);
  // The init is PID 1 of its namespace: only SIGKILL ends a sleep there.
  EXPECT_EQ(ctl.Call({{"op", "kill"}, {"signal", 9}}).value("ok", false), true);
  EXPECT_EQ(ctl.Call({{"op", "wait"}}).value("exit_code", -1), 137);
  ShutdownAndCheckGone(id);
}

TEST_F(MonitorTest, OutlivesItsLauncher) {
  std::string id = NewId();
  ASSERT_EQ(Launch(Config({"sleep", "30"}), id).exit_code, 0);
  pid_t m = MonitorPid();
  // The launcher has exited; a first "daemon" starts the container and goes away.
  {
    Ctl first(dir_);
    ASSERT_TRUE(first.ok());
    ASSERT_EQ(first.Call({{"op", "start"}}).value("ok", false), true);
  }
  // None of the monitor's fds reached the container's program.
  pid_t init = StatusFile().value("pid", 0);
  std::vector<std::string> fds;
  if (DIR* d = opendir(("/proc/" + std::to_string(init) + "/fd").c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') fds.push_back(e->d_name);
    closedir(d);
  }
  std::sort(fds.begin(), fds.end());
  EXPECT_EQ(fds, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_FALSE(ProcessGone(m));
  // A second one reconnects: one connection waits while another kills.
  Ctl waiter(dir_), killer(dir_);
  ASSERT_TRUE(waiter.ok() && killer.ok());
  EXPECT_EQ(waiter.Call({{"op", "state"}}).value("status", ""), "running");
  ASSERT_TRUE(waiter.Send({{"op", "wait"}}));
  EXPECT_TRUE(waiter.Receive(300).is_null());  // not answered while running
  json p = killer.Call({{"op", "pause"}});
  EXPECT_EQ(p.value("ok", false), true) << p.dump();
  EXPECT_EQ(StatusFile().value("status", ""), "paused");
  EXPECT_EQ(killer.Call({{"op", "resume"}}).value("ok", false), true);
  EXPECT_EQ(killer.Call({{"op", "kill"}, {"signal", 9}, {"all", true}}).value("ok", false), true);
  json w = waiter.Receive(10000);
  EXPECT_EQ(w.value("exit_code", -1), 137) << w.dump();
  EXPECT_EQ(killer.Call({{"op", "kill"}, {"signal", 9}}).value("kind", ""), "conflict");
  ShutdownAndCheckGone(id);
}

TEST_F(MonitorTest, CreateFailureLeavesNothing) {
  std::string id = NewId();
  CommandResult r = Launch(Config({"nosuch"}), id);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("executable file not found"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nosuch"), std::string::npos) << r.err;
  EXPECT_EQ(Lines(r.err).size(), 1u) << r.err;
  EXPECT_FALSE(PathExists(dir_ + "/ctl.sock"));
  EXPECT_FALSE(PathExists(dir_ + "/attach.sock"));
  EXPECT_FALSE(PathExists(dir_ + "/console.sock"));
  EXPECT_FALSE(PathExists(dir_ + "/monitor.pid"));
  EXPECT_FALSE(PathExists(state_root() + "/" + id));
  // No process: the fixture's teardown fails the test on a live child or a leaked cgroup.
  EXPECT_TRUE(LiveChildren().empty());
}

}  // namespace
}  // namespace moat::testing
