// Live tests on this kernel (ctest label "privileged"; needs root). Every cgroup is created under
// a unique name ("moat-test-<pid>-<random>") below the test's own cgroup and removed by a guard
// even when an assertion fails. The host's hierarchies are not reconfigured: the v2 test runs
// on the hybrid host's cgroup2 mount with no controllers enabled (Layout::v2_controllers empty).

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "base/strings.h"
#include "base/sys/bpf.h"
#include "base/sys/fs.h"
#include "cgroups/manager.h"

namespace moat::cgroups {
namespace {

std::string UniqueName() {
  std::random_device rd;
  return StrFormat("moat-test-%d-%08x", getpid(), rd());
}

bool PathExists(const std::string& p) { return access(p.c_str(), F_OK) == 0; }

std::string ReadOrEmpty(const std::string& p) {
  auto r = sys::ReadFile(p);
  return r ? std::string(TrimWhitespace(*r)) : "";
}

// A forked child that waits for Release(), then runs `body` and exits with its result.
class Child {
 public:
  explicit Child(std::function<int()> body) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(fds[1]);
      char c;
      if (read(fds[0], &c, 1) != 1) _exit(100);
      _exit(body());
    }
    close(fds[0]);
    release_fd_ = fds[1];
  }
  ~Child() {
    if (release_fd_ >= 0) close(release_fd_);
  }
  pid_t pid() const { return pid_; }
  void Release() {
    if (release_fd_ < 0) return;
    (void)!write(release_fd_, "x", 1);
    close(release_fd_);
    release_fd_ = -1;
  }
  // Waits for the child; returns the wait status.
  int Wait() {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    return status;
  }
  bool reaped() const { return reaped_; }

 private:
  pid_t pid_ = -1;
  int release_fd_ = -1;
  bool reaped_ = false;
};

// Owns a live cgroup and the children put in it: on scope exit, thaws, kills and reaps the
// children, and destroys the cgroup, whatever the test body did.
class LiveCgroup {
 public:
  explicit LiveCgroup(std::unique_ptr<Manager> m) : m_(std::move(m)) {}
  ~LiveCgroup() {
    if (!m_) return;
    (void)m_->Thaw();  // a v1 frozen task dies of SIGKILL only once thawed
    for (auto& c : children_) {
      if (c->reaped() || c->pid() <= 0) continue;
      kill(c->pid(), SIGKILL);
      c->Wait();
    }
    auto d = m_->Destroy();
    if (!d) ADD_FAILURE() << "cleanup: " << d.error().message;
  }
  Manager* operator->() { return m_.get(); }
  // Forks a child (see Child) that the guard kills and reaps.
  Child& Spawn(std::function<int()> body) {
    children_.push_back(std::make_unique<Child>(std::move(body)));
    return *children_.back();
  }

 private:
  std::unique_ptr<Manager> m_;
  std::vector<std::unique_ptr<Child>> children_;
};

bool InCgroup(pid_t pid, const std::string& needle) {
  std::string text = ReadOrEmpty(StrFormat("/proc/%d/cgroup", pid));
  for (const auto& line : StrSplit(text, '\n'))
    if (line.find(needle) != std::string::npos && line.size() == line.find(needle) + needle.size())
      return true;
  return false;
}

TEST(CgroupV1LiveTest, LifecycleOnThisHost) {
  auto layout = DetectLayout();
  ASSERT_TRUE(layout.has_value()) << layout.error().message;
  if (layout->version != Version::kV1) GTEST_SKIP() << "no cgroup v1 controllers on this host";
  for (const char* c : {"memory", "pids", "cpu", "freezer", "devices"}) {
    if (!layout->v1_mounts.count(c)) GTEST_SKIP() << "v1 controller " << c << " is not mounted";
  }

  auto made = MakeManager(*layout, UniqueName(), "unused");
  ASSERT_TRUE(made.has_value()) << made.error().message;
  LiveCgroup cg(std::move(*made));
  auto paths = cg->Paths();
  auto dir = [&](const std::string& c) { return layout->v1_mounts[c] + paths[c]; };

  auto created = cg->Create();
  ASSERT_TRUE(created) << created.error().message;
  for (const auto& [c, p] : paths) EXPECT_TRUE(PathExists(dir(c))) << dir(c);
  if (layout->v1_mounts.count("cpuset")) {
    EXPECT_NE(ReadOrEmpty(dir("cpuset") + "/cpuset.cpus"), "");
  }

  oci::Resources r;
  r.memory.emplace();
  r.memory->limit = 64 << 20;
  r.pids_limit = 20;
  r.cpu.emplace();
  r.cpu->quota = 50000;
  r.cpu->period = 100000;
  r.devices = {{false, "a", std::nullopt, std::nullopt, "rwm"}, {true, "c", 1, 5, "rwm"}};
  auto applied = cg->Apply(r);
  ASSERT_TRUE(applied) << applied.error().message;
  EXPECT_EQ(ReadOrEmpty(dir("memory") + "/memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(ReadOrEmpty(dir("pids") + "/pids.max"), "20");
  EXPECT_EQ(ReadOrEmpty(dir("cpu") + "/cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(ReadOrEmpty(dir("devices") + "/devices.list"), "c 1:5 rwm");

  // The kernel refuses a quota under 1 ms: the error names the file and the value.
  oci::Resources bad;
  bad.cpu.emplace();
  bad.cpu->quota = 500;
  auto refused = cg->Apply(bad);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, "cpu.cfs_quota_us: write \"500\": Invalid argument");

  // Never released: it stays blocked in read(2) until killed.
  Child& child = cg.Spawn([] { return 0; });
  ASSERT_GT(child.pid(), 0);
  auto added = cg->AddProcess(child.pid());
  ASSERT_TRUE(added) << added.error().message;
  EXPECT_TRUE(InCgroup(child.pid(), ":memory:" + paths["memory"]));
  EXPECT_TRUE(InCgroup(child.pid(), ":pids:" + paths["pids"]));
  auto pids = cg->Pids();
  ASSERT_TRUE(pids);
  EXPECT_EQ(*pids, std::vector<pid_t>{child.pid()});

  auto frozen = cg->Freeze();
  ASSERT_TRUE(frozen) << frozen.error().message;
  EXPECT_EQ(ReadOrEmpty(dir("freezer") + "/freezer.state"), "FROZEN");
  EXPECT_EQ(*cg->GetFreezerState(), FreezerState::kFrozen);
  ASSERT_TRUE(cg->Thaw());
  EXPECT_EQ(*cg->GetFreezerState(), FreezerState::kThawed);

  auto stats = cg->GetStats();
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_EQ(stats->pids_current, 1u);
  EXPECT_EQ(stats->pids_limit, 20u);
  EXPECT_EQ(stats->memory_limit, uint64_t{64} << 20);
  EXPECT_GT(stats->memory_stat.size(), 0u);

  auto killed = cg->SignalAll(SIGKILL);
  ASSERT_TRUE(killed) << killed.error().message;
  int status = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  EXPECT_EQ(*cg->GetFreezerState(), FreezerState::kThawed);

  auto destroyed = cg->Destroy();
  ASSERT_TRUE(destroyed) << destroyed.error().message;
  for (const auto& [c, p] : paths) EXPECT_FALSE(PathExists(dir(c))) << dir(c);
}

// The hybrid host's cgroup2 mount, without touching its subtree_control.
Result<Layout> HostUnifiedLayout() {
  MOAT_ASSIGN_OR_RETURN(Layout detected, DetectLayout());
  if (detected.unified_root.empty())
    return Fail(ErrorKind::kUnsupported, "no cgroup2 mount on this host");
  Layout l;
  l.version = Version::kV2;
  l.unified_root = detected.unified_root;
  l.self[""] = detected.self.count("") ? detected.self[""] : "/";
  l.v2_controllers.clear();
  return l;
}

TEST(CgroupV2LiveTest, CreateFreezeKillDestroy) {
  auto layout = HostUnifiedLayout();
  if (!layout && layout.error().kind == ErrorKind::kUnsupported)
    GTEST_SKIP() << layout.error().message;
  ASSERT_TRUE(layout.has_value()) << layout.error().message;
  auto made = MakeManager(*layout, UniqueName(), "unused");
  ASSERT_TRUE(made.has_value()) << made.error().message;
  LiveCgroup cg(std::move(*made));
  std::string dir = layout->unified_root + cg->Path();
  auto created = cg->Create();
  ASSERT_TRUE(created) << created.error().message;
  ASSERT_TRUE(PathExists(dir + "/cgroup.freeze"));

  // Never released: it stays blocked in read(2) until killed.
  Child& child = cg.Spawn([] { return 0; });
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(cg->AddProcess(child.pid()));
  EXPECT_TRUE(InCgroup(child.pid(), "0::" + cg->Path()));
  auto pids = cg->Pids();
  ASSERT_TRUE(pids);
  EXPECT_EQ(*pids, std::vector<pid_t>{child.pid()});

  auto frozen = cg->Freeze();
  ASSERT_TRUE(frozen) << frozen.error().message;
  EXPECT_NE(ReadOrEmpty(dir + "/cgroup.events").find("frozen 1"), std::string::npos);
  EXPECT_EQ(*cg->GetFreezerState(), FreezerState::kFrozen);
  auto thawed = cg->Thaw();
  ASSERT_TRUE(thawed) << thawed.error().message;
  EXPECT_EQ(*cg->GetFreezerState(), FreezerState::kThawed);

  auto fd = cg->OpenForClone();
  ASSERT_TRUE(fd);

  auto killed = cg->SignalAll(SIGKILL);  // cgroup.kill
  ASSERT_TRUE(killed) << killed.error().message;
  int status = child.Wait();
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

  fd->reset();
  auto destroyed = cg->Destroy();
  ASSERT_TRUE(destroyed) << destroyed.error().message;
  EXPECT_FALSE(PathExists(dir));
}

// Exit code bits of the device probe child.
constexpr int kNullWriteOpened = 1;
constexpr int kZeroReadOpened = 2;
constexpr int kNullRefusedEperm = 4;

int ProbeDevices() {
  int code = 0;
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    code |= kNullWriteOpened;
    close(fd);
  } else if (errno == EPERM) {
    code |= kNullRefusedEperm;
  }
  fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    code |= kZeroReadOpened;
    close(fd);
  }
  return code;
}

TEST(CgroupV2LiveTest, DeviceProgramFiltersOpens) {
  auto layout = HostUnifiedLayout();
  if (!layout && layout.error().kind == ErrorKind::kUnsupported)
    GTEST_SKIP() << layout.error().message;
  ASSERT_TRUE(layout.has_value()) << layout.error().message;
  auto made = MakeManager(*layout, UniqueName(), "unused");
  ASSERT_TRUE(made.has_value()) << made.error().message;
  LiveCgroup cg(std::move(*made));
  ASSERT_TRUE(cg->Create());

  oci::Resources only_zero;
  only_zero.devices = {{false, "a", std::nullopt, std::nullopt, "rwm"},
                       {true, "c", 1, 5, "rwm"}};  // /dev/zero
  auto applied = cg->Apply(only_zero);
  if (!applied && applied.error().sys_errno == EPERM)
    GTEST_SKIP() << "bpf() refused with EPERM: " << applied.error().message;
  ASSERT_TRUE(applied) << applied.error().message;

  Child& probe = cg.Spawn(ProbeDevices);
  ASSERT_GT(probe.pid(), 0);
  ASSERT_TRUE(cg->AddProcess(probe.pid()));
  probe.Release();
  int status = probe.Wait();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), kZeroReadOpened | kNullRefusedEperm);

  // A second Apply replaces the program rather than stacking another one.
  oci::Resources both = only_zero;
  both.devices.push_back({true, "c", 1, 3, "rw"});  // /dev/null
  applied = cg->Apply(both);
  ASSERT_TRUE(applied) << applied.error().message;
  auto fd = cg->OpenForClone();
  ASSERT_TRUE(fd);
  auto ids = sys::bpf_prog_query(fd->get(), BPF_CGROUP_DEVICE, 64);
  ASSERT_TRUE(ids) << ids.error().message;
  EXPECT_EQ(ids->size(), 1u);
  fd->reset();

  Child& probe2 = cg.Spawn(ProbeDevices);
  ASSERT_GT(probe2.pid(), 0);
  ASSERT_TRUE(cg->AddProcess(probe2.pid()));
  probe2.Release();
  status = probe2.Wait();
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), kZeroReadOpened | kNullWriteOpened);
}

}  // namespace
}  // namespace moat::cgroups
