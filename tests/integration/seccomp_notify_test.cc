// seccomp user notification: a profile rule with SCMP_ACT_NOTIFY makes the runtime hand the
// filter's listener fd, with the ContainerProcessState JSON (runtime-spec config-linux.md), to
// the agent at linux.seccomp.listenerPath: during `create` for the init, during `exec` for an
// exec'd process. The agent here is a thread of the test that answers every notification with
// EXDEV, an answer no other part of the system would give to mkdir: seeing "Invalid cross-device
// link" in the container proves that the fd reached a working listener.

#include <fcntl.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/runtime_fixture.h"

namespace moat::testing {
namespace {

using SeccompNotifyTest = RuntimeTest;

constexpr const char* kMetadata = "agent=test;quote=\"q\";backslash=\\;tab=\t";

// A seccomp agent on a unix socket in a temp dir of its own (short enough for sun_path). It
// accepts any number of connections, keeps each message (JSON text, number of fds, and what
// the first fd is), and answers the notifications of every listener fd it was given with
// -reply_errno. Everything is closed and removed by the destructor.
class NotifyAgent {
 public:
  struct Received {
    std::string text;
    size_t fd_count = 0;
    std::string fd_link;  // readlink of /proc/self/fd/<first fd>
  };
  struct Notification {
    pid_t pid = 0;
    int nr = -1;
  };

  explicit NotifyAgent(int reply_errno) : reply_errno_(reply_errno) {
    char tmpl[] = "/tmp/moat-notify-XXXXXX";
    if (!mkdtemp(tmpl)) {
      ADD_FAILURE() << "mkdtemp: " << strerror(errno);
      return;
    }
    dir_ = tmpl;
    path_ = dir_ + "/agent.sock";
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    if (listen_fd_ < 0 || bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, 8) != 0) {
      ADD_FAILURE() << "agent socket " << path_ << ": " << strerror(errno);
      return;
    }
    if (pipe2(stop_, O_CLOEXEC) != 0) {
      ADD_FAILURE() << "pipe2: " << strerror(errno);
      return;
    }
    thread_ = std::thread([this] { Loop(); });
  }

  ~NotifyAgent() {
    if (thread_.joinable()) {
      char c = 'x';
      (void)!write(stop_[1], &c, 1);
      thread_.join();
    }
    for (int fd : {stop_[0], stop_[1], listen_fd_})
      if (fd >= 0) close(fd);
    for (int fd : notify_fds_) close(fd);
    if (!path_.empty()) unlink(path_.c_str());
    if (!dir_.empty()) rmdir(dir_.c_str());
  }

  const std::string& path() const { return path_; }

  std::vector<Received> Messages() {
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  std::vector<Notification> Notifications() {
    std::lock_guard<std::mutex> lock(mu_);
    return notifications_;
  }
  std::vector<std::string> Errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }

  // Nobody listens any more: the socket is closed and its path removed (the listener fds
  // already received are still served).
  void StopListening() {
    std::lock_guard<std::mutex> lock(mu_);
    stop_listening_ = true;
  }

 private:
  void Error(const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    errors_.push_back(what + ": " + strerror(errno));
  }

  void Loop() {
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_listening_ && listen_fd_ >= 0) {
          close(listen_fd_);
          listen_fd_ = -1;
          unlink(path_.c_str());
        }
      }
      std::vector<pollfd> fds;
      fds.push_back({stop_[0], POLLIN, 0});
      fds.push_back({listen_fd_, POLLIN, 0});  // ignored by poll when -1
      for (int fd : notify_fds_) fds.push_back({fd, POLLIN, 0});
      int rc = poll(fds.data(), fds.size(), 50);
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) return Error("poll");
      if (fds[0].revents) return;
      if (fds[1].revents & POLLIN) Accept();
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents & POLLIN) {
          Serve(fds[i].fd);
        } else if (fds[i].revents & (POLLHUP | POLLERR | POLLNVAL)) {
          // Every process using this filter has exited.
          close(fds[i].fd);
          std::erase(notify_fds_, fds[i].fd);
        }
      }
    }
  }

  void Accept() {
    int conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) return Error("accept");
    Received r;
    std::vector<int> fds;
    // The runtime sends one state and closes the connection: read up to EOF.
    while (true) {
      pollfd p{conn, POLLIN, 0};
      if (poll(&p, 1, 5000) != 1) {
        Error("agent: no EOF from the runtime");
        break;
      }
      char buf[4096];
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
      iovec iov{buf, sizeof buf};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
      if (n < 0) {
        Error("recvmsg");
        break;
      }
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t k = 0; k < count; ++k) {
          int fd;
          memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
          fds.push_back(fd);
        }
      }
      if (n == 0) break;
      r.text.append(buf, static_cast<size_t>(n));
    }
    close(conn);
    r.fd_count = fds.size();
    if (!fds.empty()) {
      char link[256];
      ssize_t len =
          readlink(("/proc/self/fd/" + std::to_string(fds[0])).c_str(), link, sizeof link);
      if (len > 0) r.fd_link.assign(link, static_cast<size_t>(len));
      notify_fds_.push_back(fds[0]);
      for (size_t k = 1; k < fds.size(); ++k) close(fds[k]);
    }
    std::lock_guard<std::mutex> lock(mu_);
    messages_.push_back(std::move(r));
  }

  void Serve(int fd) {
    seccomp_notif req;
    memset(&req, 0, sizeof req);  // the kernel requires it zeroed
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
      if (errno != ENOENT && errno != EINTR) Error("SECCOMP_IOCTL_NOTIF_RECV");
      return;
    }
    seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = req.id;
    resp.error = -reply_errno_;
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0 && errno != ENOENT)
      Error("SECCOMP_IOCTL_NOTIF_SEND");
    std::lock_guard<std::mutex> lock(mu_);
    notifications_.push_back({static_cast<pid_t>(req.pid), req.data.nr});
  }

  const int reply_errno_;
  std::string dir_, path_;
  int listen_fd_ = -1;
  int stop_[2] = {-1, -1};
  std::vector<int> notify_fds_;  // the agent thread's only
  std::thread thread_;
  std::mutex mu_;
  bool stop_listening_ = false;
  std::vector<Received> messages_;
  std::vector<Notification> notifications_;
  std::vector<std::string> errors_;
};

bool IsMkdir(int nr) { return nr == SYS_mkdir || nr == SYS_mkdirat; }

json NotifyProfile(const std::string& listener_path) {
  return {{"defaultAction", "SCMP_ACT_ALLOW"},
          {"listenerPath", listener_path},
          {"listenerMetadata", kMetadata},
          {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_NOTIFY"}}}}};
}

// A host dir for the container's output, writable by any user.
std::string OutputDir(const std::string& scratch) {
  std::string dir = scratch + "/out";
  EXPECT_EQ(mkdir(dir.c_str(), 0777), 0) << dir << ": " << strerror(errno);
  chmod(dir.c_str(), 0777);
  return dir;
}

// Checks the ContainerProcessState of one message.
void ExpectProcessState(const NotifyAgent::Received& m, pid_t pid, const std::string& id,
                        pid_t init_pid, const std::string& status, const std::string& bundle) {
  EXPECT_EQ(m.fd_count, 1u) << m.text;
  EXPECT_EQ(m.fd_link, "anon_inode:seccomp notify");
  json j = json::parse(m.text, nullptr, false);
  ASSERT_TRUE(j.is_object()) << m.text;
  EXPECT_TRUE(j.contains("ociVersion") && j["ociVersion"].is_string() &&
              !j["ociVersion"].get<std::string>().empty())
      << m.text;
  EXPECT_EQ(j.value("fds", json()), json({"seccompFd"})) << m.text;
  EXPECT_EQ(j.value("pid", 0), pid) << m.text;
  EXPECT_EQ(j.value("metadata", ""), kMetadata) << m.text;
  ASSERT_TRUE(j.contains("state") && j["state"].is_object()) << m.text;
  const json& st = j["state"];
  EXPECT_EQ(st.value("id", ""), id) << m.text;
  EXPECT_EQ(st.value("status", ""), status) << m.text;
  EXPECT_EQ(st.value("pid", 0), init_pid) << m.text;
  EXPECT_EQ(st.value("bundle", ""), bundle) << m.text;
  EXPECT_TRUE(st.contains("ociVersion")) << m.text;
}

TEST_F(SeccompNotifyTest, CreateSendsListenerAndAgentAnswersMkdir) {
  NotifyAgent agent(EXDEV);
  std::string id = NewId();
  std::string out = OutputDir(scratch());
  json c = Config({"sh", "-c",
                   "mkdir /tmp/x 2>/tmp/out/err; echo mkdir=$? >/tmp/out/res; "
                   "test -d /tmp/x || echo absent >>/tmp/out/res; echo done >>/tmp/out/res"});
  AddTmpfs(c, "/tmp");
  AddBind(c, out, "/tmp/out");
  c["linux"]["seccomp"] = NotifyProfile(agent.path());
  WriteConfig(c);

  CommandResult created = Runtime({"create", "--bundle", bundle(), id});
  ASSERT_EQ(created.exit_code, 0) << created.Describe();
  // Sent during `create`: it is there before `start`.
  ASSERT_TRUE(WaitFor([&] { return !agent.Messages().empty(); })) << "no message from create";
  json st = State(id);
  ASSERT_TRUE(st.is_object());
  EXPECT_EQ(st.value("status", ""), "created");
  pid_t pid = st.value("pid", 0);
  ASSERT_GT(pid, 0);
  auto messages = agent.Messages();
  ASSERT_EQ(messages.size(), 1u);
  ExpectProcessState(messages[0], pid, id, pid, "creating", bundle());
  EXPECT_TRUE(agent.Notifications().empty()) << "the program ran before start";

  CommandResult started = Runtime({"start", id});
  ASSERT_EQ(started.exit_code, 0) << started.Describe();
  ASSERT_TRUE(WaitFor([&] {
    return ReadFileOrEmpty(out + "/res").find("done") != std::string::npos;
  })) << ReadFileOrEmpty(out + "/res");
  std::string res = ReadFileOrEmpty(out + "/res");
  EXPECT_NE(res.find("mkdir=1\n"), std::string::npos) << res;
  EXPECT_NE(res.find("absent"), std::string::npos) << res;
  std::string err = ReadFileOrEmpty(out + "/err");
  EXPECT_NE(err.find("Invalid cross-device link"), std::string::npos) << err;  // EXDEV
  auto notes = agent.Notifications();
  ASSERT_FALSE(notes.empty());
  for (const auto& n : notes) EXPECT_TRUE(IsMkdir(n.nr)) << "syscall " << n.nr;
  EXPECT_EQ(agent.Messages().size(), 1u);
  EXPECT_TRUE(agent.Errors().empty()) << agent.Errors()[0];
}

// Without no_new_privileges the filter goes on before the privilege drop, as a non-root user
// the init then opens the exec fifo itself; WAIT_KILLABLE_RECV is accepted with a listener.
TEST_F(SeccompNotifyTest, RunAsUserWithoutNoNewPrivsAndWaitKillableRecv) {
  NotifyAgent agent(EXDEV);
  std::string id = NewId();
  json c = Config({"sh", "-c",
                   "id -u; grep NoNewPrivs /proc/self/status; mkdir /tmp/x; "
                   "echo mkdir=$?"});
  AddTmpfs(c, "/tmp");
  c["process"]["noNewPrivileges"] = false;
  c["process"]["user"] = {{"uid", 1000}, {"gid", 1000}};
  c["linux"]["seccomp"] = NotifyProfile(agent.path());
  c["linux"]["seccomp"]["flags"] = {"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"};
  CommandResult r = RunContainer(c, id);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("1000\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("NoNewPrivs:\t0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mkdir=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("Invalid cross-device link"), std::string::npos) << r.err;
  auto messages = agent.Messages();
  ASSERT_EQ(messages.size(), 1u);
  json j = json::parse(messages[0].text, nullptr, false);
  ASSERT_TRUE(j.is_object()) << messages[0].text;
  EXPECT_EQ(j["state"].value("status", ""), "creating");
  EXPECT_EQ(j.value("pid", 0), j["state"].value("pid", -1));
  EXPECT_EQ(messages[0].fd_link, "anon_inode:seccomp notify");
  EXPECT_TRUE(agent.Errors().empty()) << agent.Errors()[0];
}

TEST_F(SeccompNotifyTest, ExecSendsItsOwnListener) {
  NotifyAgent agent(EXDEV);
  std::string id = NewId();
  json c = Config({"sleep", "60"});
  AddTmpfs(c, "/tmp");
  c["linux"]["seccomp"] = NotifyProfile(agent.path());
  pid_t init = CreateAndStart(c, id);
  ASSERT_GT(init, 0);
  ASSERT_TRUE(WaitFor([&] { return agent.Messages().size() == 1; }));

  std::string pid_file = scratch() + "/exec.pid";
  CommandResult r = Runtime({"exec", "--pid-file", pid_file, id, "sh", "-c",
                             "mkdir /tmp/y; echo mkdir=$?; test -d /tmp/y || echo absent"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("mkdir=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("absent"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("Invalid cross-device link"), std::string::npos) << r.err;
  pid_t exec_pid = std::atoi(Trim(ReadFileOrEmpty(pid_file)).c_str());
  ASSERT_GT(exec_pid, 0);
  EXPECT_NE(exec_pid, init);
  auto messages = agent.Messages();
  ASSERT_EQ(messages.size(), 2u);
  ExpectProcessState(messages[1], exec_pid, id, init, "running", bundle());
  auto notes = agent.Notifications();
  ASSERT_FALSE(notes.empty());
  for (const auto& n : notes) EXPECT_TRUE(IsMkdir(n.nr)) << "syscall " << n.nr;
  EXPECT_TRUE(agent.Errors().empty()) << agent.Errors()[0];

  // The agent goes away: the next exec fails, names listenerPath, and leaves no process.
  agent.StopListening();
  ASSERT_TRUE(WaitFor([&] { return !PathExists(agent.path()); }));
  CommandResult failed = Runtime({"exec", id, "sh", "-c", "echo ran"});
  EXPECT_EQ(failed.exit_code, 1) << failed.Describe();
  EXPECT_EQ(failed.out.find("ran"), std::string::npos) << failed.out;
  EXPECT_NE(failed.err.find("listenerPath"), std::string::npos) << failed.err;
  EXPECT_NE(failed.err.find(agent.path()), std::string::npos) << failed.err;
  CommandResult ps = Runtime({"ps", "--format", "json", id});
  ASSERT_EQ(ps.exit_code, 0) << ps.Describe();
  EXPECT_EQ(json::parse(ps.out, nullptr, false), json({init})) << ps.out;
  EXPECT_EQ(Status(id), "running");
}

TEST_F(SeccompNotifyTest, UnreachableListenerFailsCreateAndLeavesNothing) {
  // Nothing at the path; then a socket that is bound but does not listen (ECONNREFUSED).
  std::string missing = scratch() + "/none.sock";
  std::string refusing = scratch() + "/r.sock";
  int bound = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(bound, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(refusing.size(), sizeof addr.sun_path);
  memcpy(addr.sun_path, refusing.c_str(), refusing.size() + 1);
  ASSERT_EQ(bind(bound, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << strerror(errno);
  for (const std::string& path : {missing, refusing}) {
    SCOPED_TRACE(path);
    std::string id = NewId();
    json c = Config({"true"});
    c["linux"]["seccomp"] = NotifyProfile(path);
    WriteConfig(c);
    CommandResult r = Runtime({"create", "--bundle", bundle(), id});
    EXPECT_EQ(r.exit_code, 1) << r.Describe();
    EXPECT_NE(r.err.find("listenerPath"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
    EXPECT_NE(Runtime({"state", id}).exit_code, 0);
    EXPECT_FALSE(PathExists(state_root() + "/" + id));
    for (const auto& [name, dir] : ManagedCgroupDirs(id)) EXPECT_FALSE(PathExists(dir)) << dir;
    ReapExitedChildren();
    EXPECT_TRUE(LiveChildren().empty());
  }
  close(bound);
}

}  // namespace
}  // namespace moat::testing
