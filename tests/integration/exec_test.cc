// `exec`: the new process joins every namespace and the cgroup of the container, exit codes
// propagate, --process, refusals with clear errors, and a terminal through --console-socket.

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "support/runtime_fixture.h"

namespace moat::testing {
namespace {

using ExecTest = RuntimeTest;

constexpr const char* kNamespaces[] = {"pid", "net", "ipc", "uts", "mnt", "cgroup"};

std::string NsLink(pid_t pid, const std::string& ns) {
  char buf[128];
  std::string path = "/proc/" + std::to_string(pid) + "/ns/" + ns;
  ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

TEST_F(ExecTest, JoinsEveryNamespaceAndTheCgroup) {
  std::string id = NewId();
  pid_t init = CreateAndStart(Config({"sleep", "30"}), id);
  ASSERT_GT(init, 0);

  // Seen from inside: the exec'd process's namespaces are the init's (as the host sees them).
  CommandResult r =
      Runtime({"exec", id, "sh", "-c",
               "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::string expected;
  for (const char* ns : kNamespaces) {
    std::string link = NsLink(init, ns);
    ASSERT_FALSE(link.empty()) << ns;
    // The container has its own, different from ours.
    EXPECT_NE(link, NsLink(getpid(), ns)) << ns;
    expected += link + "\n";
  }
  EXPECT_EQ(r.out, expected);

  // Seen from the host: a detached exec'd process, compared by inode and by cgroup.
  std::string pid_file = scratch() + "/exec.pid";
  CommandResult d = Runtime({"exec", "--detach", "--pid-file", pid_file, id, "sleep", "30"});
  ASSERT_EQ(d.exit_code, 0) << d.Describe();
  pid_t exec_pid = std::atoi(Trim(ReadFileOrEmpty(pid_file)).c_str());
  ASSERT_GT(exec_pid, 0);
  for (const char* ns : kNamespaces) {
    std::string base = std::string("/ns/") + ns;
    EXPECT_EQ(InodeOf("/proc/" + std::to_string(exec_pid) + base),
              InodeOf("/proc/" + std::to_string(init) + base))
        << ns;
  }
  std::string init_cgroup = ReadFileOrEmpty("/proc/" + std::to_string(init) + "/cgroup");
  EXPECT_FALSE(init_cgroup.empty());
  EXPECT_EQ(ReadFileOrEmpty("/proc/" + std::to_string(exec_pid) + "/cgroup"), init_cgroup);
  EXPECT_NE(init_cgroup.find("/moat/" + id), std::string::npos) << init_cgroup;
  // ps lists both.
  CommandResult ps = Runtime({"ps", "--format", "json", id});
  ASSERT_EQ(ps.exit_code, 0) << ps.Describe();
  json pids = json::parse(ps.out, nullptr, false);
  ASSERT_TRUE(pids.is_array()) << ps.out;
  EXPECT_NE(std::find(pids.begin(), pids.end(), json(init)), pids.end()) << ps.out;
  EXPECT_NE(std::find(pids.begin(), pids.end(), json(exec_pid)), pids.end()) << ps.out;
  // The exec'd process got the container's restrictions, not the runtime's privileges.
  std::string status = ReadFileOrEmpty("/proc/" + std::to_string(exec_pid) + "/status");
  EXPECT_EQ(StatusField(status, "CapEff"), "00000000800405fb");
  EXPECT_EQ(StatusField(status, "NoNewPrivs"), "1");
  EXPECT_EQ(StatusField(status, "Seccomp"), "2");
}

TEST_F(ExecTest, ExitCodesPropagateAndCapsCanBeAdded) {
  std::string id = NewId();
  ASSERT_GT(CreateAndStart(Config({"sleep", "30"}), id), 0);
  CommandResult r = Runtime({"exec", id, "sh", "-c", "echo out; echo err >&2; exit 42"});
  EXPECT_EQ(r.exit_code, 42) << r.Describe();
  EXPECT_EQ(r.out, "out\n");
  EXPECT_NE(r.err.find("err\n"), std::string::npos) << r.err;

  // Repeatable flags take one value each, the id and the command follow.
  CommandResult env = Runtime({"exec", "-e", "FOO=foo", "--env", "BAR=bar", "--cwd", "/etc", id,
                               "sh", "-c", "echo $FOO $BAR $(pwd)"});
  EXPECT_EQ(env.exit_code, 0) << env.Describe();
  EXPECT_EQ(env.out, "foo bar /etc\n");

  CommandResult user = Runtime(
      {"exec", "-u", "1000:1001", id, "sh", "-c", "id -u; id -g; grep CapEff /proc/self/status"});
  EXPECT_EQ(user.exit_code, 0) << user.Describe();
  EXPECT_EQ(user.out, "1000\n1001\nCapEff:\t0000000000000000\n");

  CommandResult missing = Runtime({"exec", id, "/no/such/program"});
  EXPECT_NE(missing.exit_code, 0) << missing.Describe();
  EXPECT_NE(missing.err.find("/no/such/program"), std::string::npos) << missing.err;

  CommandResult caps = Runtime({"exec", "--cap", "CAP_SYS_ADMIN", id, "cat", "/proc/self/status"});
  ASSERT_EQ(caps.exit_code, 0) << caps.Describe();
  // CAP_SYS_ADMIN is bit 21: 0x800405fb | 0x200000.
  EXPECT_EQ(StatusField(caps.out, "CapEff"), "00000000802405fb");
  EXPECT_EQ(StatusField(caps.out, "CapBnd"), "00000000802405fb");
  // The container's init is unchanged.
  CommandResult plain = Runtime({"exec", id, "cat", "/proc/self/status"});
  EXPECT_EQ(StatusField(plain.out, "CapEff"), "00000000800405fb");
}

TEST_F(ExecTest, ProcessFile) {
  std::string id = NewId();
  ASSERT_GT(CreateAndStart(Config({"sleep", "30"}), id), 0);
  json process = {
      {"args", {"sh", "-c", "echo from-file $GREETING; pwd; cat /proc/self/status; exit 5"}},
      {"cwd", "/etc"},
      {"env", {"PATH=/bin", "GREETING=hi"}},
      {"user", {{"uid", 0}, {"gid", 0}}}};
  std::string file = scratch() + "/process.json";
  ASSERT_TRUE(WriteFile(file, process.dump()));
  CommandResult r = Runtime({"exec", "--process", file, id});
  EXPECT_EQ(r.exit_code, 5) << r.Describe();
  auto lines = Lines(r.out);
  ASSERT_GE(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0], "from-file hi");
  EXPECT_EQ(lines[1], "/etc");
  // A process.json without "capabilities" must not run with the runtime's full privileges:
  // like runc, the container's own capabilities apply.
  EXPECT_EQ(StatusField(r.out, "CapEff"), "00000000800405fb") << r.out;
  EXPECT_EQ(StatusField(r.out, "CapBnd"), "00000000800405fb") << r.out;
  EXPECT_EQ(StatusField(r.out, "Seccomp"), "2") << r.out;
}

TEST_F(ExecTest, RefusesAStoppedContainer) {
  std::string id = NewId();
  pid_t pid = CreateAndStart(Config({"sleep", "30"}), id);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(Runtime({"kill", id, "KILL"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return ProcessGone(pid); }));
  CommandResult r = Runtime({"exec", id, "true"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("stopped"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(id), std::string::npos) << r.err;
}

TEST_F(ExecTest, TtyWithoutConsoleSocketIsRefused) {
  std::string id = NewId();
  ASSERT_GT(CreateAndStart(Config({"sleep", "30"}), id), 0);
  CommandResult r = Runtime({"exec", "-t", id, "echo", "hello"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("console-socket"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("hello"), std::string::npos);
}

// Receives one fd sent with SCM_RIGHTS on a connection accepted from `listener`.
int ReceivePtyMaster(int listener, std::string* error) {
  pollfd p{listener, POLLIN, 0};
  if (poll(&p, 1, 10000) != 1) {
    *error = "nobody connected to the console socket";
    return -1;
  }
  int conn = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (conn < 0) {
    *error = std::string("accept: ") + strerror(errno);
    return -1;
  }
  char data[256];
  iovec iov{data, sizeof data};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  pollfd pc{conn, POLLIN, 0};
  ssize_t n = poll(&pc, 1, 10000) == 1 ? recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) : -1;
  close(conn);
  cmsghdr* c = n > 0 ? CMSG_FIRSTHDR(&msg) : nullptr;
  if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
    *error = "no fd received on the console socket";
    return -1;
  }
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

// Reads the pty master until `want` shows up, EOF/EIO (the slave side is gone) or 10 s pass.
std::string ReadPty(int master, const std::string& want) {
  std::string got;
  for (int i = 0; i < 100 && got.find(want) == std::string::npos; ++i) {
    pollfd p{master, POLLIN, 0};
    if (poll(&p, 1, 100) != 1) continue;
    char buf[512];
    ssize_t n = read(master, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

class ConsoleListener {
 public:
  explicit ConsoleListener(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (fd_ < 0 || path.size() >= sizeof addr.sun_path) return;
    memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd_, 4) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~ConsoleListener() {
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
  }
  int fd() const { return fd_; }

 private:
  std::string path_;
  int fd_ = -1;
};

TEST_F(ExecTest, ExecWithTerminalSendsThePtyMasterToTheConsoleSocket) {
  std::string id = NewId();
  ASSERT_GT(CreateAndStart(Config({"sleep", "30"}), id), 0);
  std::string sock = scratch() + "/console.sock";
  ConsoleListener listener(sock);
  ASSERT_GE(listener.fd(), 0) << strerror(errno);

  auto exec = StartRuntime({"exec", "-t", "--console-socket", sock, id, "sh", "-c",
                            "test -t 0 && test -t 1 && echo hello"});
  std::string error;
  int master = ReceivePtyMaster(listener.fd(), &error);
  ASSERT_GE(master, 0) << error << "\n" << exec->Wait().Describe();
  std::string out = ReadPty(master, "hello");
  // Closing the master first would hang up the terminal (SIGHUP) under a still-running shell.
  CommandResult r = exec->Wait();
  close(master);
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  // The pty translates "\n" to "\r\n"; stdin and stdout were the terminal.
  EXPECT_NE(out.find("hello"), std::string::npos) << out;
  EXPECT_EQ(r.out.find("hello"), std::string::npos) << "output bypassed the terminal";
}

TEST_F(ExecTest, ContainerWithTerminalSendsThePtyMasterToTheConsoleSocket) {
  std::string id = NewId();
  json c = Config({"sh", "-c", "test -t 0 && echo hello-from-init; sleep 30"});
  c["process"]["terminal"] = true;
  WriteConfig(c);
  std::string sock = scratch() + "/console.sock";
  ConsoleListener listener(sock);
  ASSERT_GE(listener.fd(), 0) << strerror(errno);
  auto create = StartRuntime({"create", "--bundle", bundle(), "--console-socket", sock, id});
  std::string error;
  int master = ReceivePtyMaster(listener.fd(), &error);
  CommandResult cr = create->Wait();
  ASSERT_GE(master, 0) << error << "\n" << cr.Describe();
  ASSERT_EQ(cr.exit_code, 0) << cr.Describe();
  CommandResult s = Runtime({"start", id});
  ASSERT_EQ(s.exit_code, 0) << s.Describe();
  std::string out = ReadPty(master, "hello-from-init");
  close(master);
  EXPECT_NE(out.find("hello-from-init"), std::string::npos) << out;
}

}  // namespace
}  // namespace moat::testing
