// Resource limits as the kernel enforces them (the files are read on the host under the
// container's cgroup): memory and the OOM killer, pids, the CPU quota, `update`, and
// pause/resume through the freezer. On a v1 or hybrid host the v1 files of each controller's
// hierarchy (memory.limit_in_bytes, freezer.state...); on a pure cgroup v2 host (the qemu lane)
// the same effects through the unified files (memory.max, cgroup.events...) of
// /sys/fs/cgroup/<own cgroup>/moat/<id>.

#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "support/runtime_fixture.h"

namespace moat::testing {
namespace {

class CgroupsTest : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    v2_ = IsCgroupV2Unified();
    auto own = OwnCgroupDirs();
    if (v2_) {
      // The runtime enables these in its parent cgroups' subtree_control: prove they exist.
      auto it = own.find("unified");
      if (it == own.end()) GTEST_SKIP() << "pure cgroup v2 host, but no cgroup2 mount found";
      std::vector<std::string> available =
          Words(ReadFileOrEmpty("/sys/fs/cgroup/cgroup.controllers"));
      for (const char* c : {"memory", "pids", "cpu"}) {
        bool found = false;
        for (const auto& a : available) found |= a == c;
        if (!found) GTEST_SKIP() << "no cgroup v2 " << c << " controller on this host";
      }
      return;
    }
    // The tests read v1 files (memory.limit_in_bytes, freezer.state...): prove the layout.
    for (const char* c : {"memory", "pids", "cpu", "freezer"}) {
      bool found = false;
      for (const auto& [hierarchy, dir] : own)
        found |= ("," + hierarchy + ",").find(std::string(",") + c + ",") != std::string::npos;
      if (!found) GTEST_SKIP() << "no cgroup v1 " << c << " hierarchy on this host";
    }
  }

  // The host directory of the container's cgroup in the hierarchy holding `controller`.
  // On a pure v2 host, the one unified directory whatever the controller.
  std::string Dir(const std::string& id, const std::string& controller) const {
    if (v2_) {
      auto dirs = CgroupDirs(id);
      auto it = dirs.find("unified");
      return it == dirs.end() ? "" : it->second;
    }
    for (const auto& [hierarchy, dir] : CgroupDirs(id))
      if (("," + hierarchy + ",").find("," + controller + ",") != std::string::npos) return dir;
    return "";
  }

  static uint64_t ReadNumber(const std::string& path) {
    return std::stoull("0" + Trim(ReadFileOrEmpty(path)));
  }

  // A field of a flat-keyed file of the container's cgroup (v2: memory.events, cpu.stat...).
  uint64_t Keyed(const std::string& id, const std::string& file, const std::string& key) const {
    return KeyedValue(ReadFileOrEmpty(Dir(id, "unified") + "/" + file), key);
  }

  // Total CPU time of the cgroup in ns, straight from cpuacct (v1) or cpu.stat usage_usec (v2).
  uint64_t CpuUsage(const std::string& id) const {
    if (v2_) return Keyed(id, "cpu.stat", "usage_usec") * 1000;
    return ReadNumber(Dir(id, "cpuacct") + "/cpuacct.usage");
  }

  static int64_t NowNs() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
  }

  // A pure cgroup v2 host (set by SetUp).
  bool v2_ = false;
};

TEST_F(CgroupsTest, MemoryLimitTriggersTheOomKiller) {
  std::string id = NewId();
  json c = Config({"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"});
  c["linux"]["resources"]["memory"] = {{"limit", 32 << 20}};
  CommandResult r = RunContainer(c, id, {"--keep"});
  // The OOM killer's SIGKILL, in the shell convention.
  EXPECT_EQ(r.exit_code, 137) << r.Describe();
  std::string mem = Dir(id, "memory");
  if (v2_) {
    EXPECT_EQ(Trim(ReadFileOrEmpty(mem + "/memory.max")), "33554432");
    EXPECT_GE(Keyed(id, "memory.events", "oom_kill"), 1u)
        << mem << "/memory.events: " << ReadFileOrEmpty(mem + "/memory.events");
  } else {
    EXPECT_EQ(Trim(ReadFileOrEmpty(mem + "/memory.limit_in_bytes")), "33554432");
    EXPECT_NE(ReadFileOrEmpty(mem + "/memory.oom_control").find("oom_kill 1"), std::string::npos)
        << ReadFileOrEmpty(mem + "/memory.oom_control");
  }
  EXPECT_EQ(Status(id), "stopped");
  json stats = Stats(id);
  ASSERT_TRUE(stats.is_object());
  EXPECT_GE(stats["memory"].value("oom_kill", 0), 1) << stats.dump();
  EXPECT_EQ(stats["memory"]["usage"].value("limit", uint64_t{0}), uint64_t{32} << 20);
  CommandResult d = Runtime({"delete", id});
  EXPECT_EQ(d.exit_code, 0) << d.Describe();
}

TEST_F(CgroupsTest, PidsLimitHoldsAForkBomb) {
  std::string id = NewId();
  // An inner shell forks 100 background sleeps; busybox sh gives up at the first fork the
  // kernel refuses, then the outer one (no fork needed) becomes `sleep 30`, holding the
  // container up with what the bomb got.
  json c = Config({"sh", "-c",
                   "sh -c 'i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done'; "
                   "exec sleep 30"});
  c["linux"]["resources"]["pids"] = {{"limit", 16}};
  WriteConfig(c);
  CommandResult r = Runtime({"run", "--detach", "--bundle", bundle(), id});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::string pids_dir = Dir(id, "pids");
  EXPECT_EQ(Trim(ReadFileOrEmpty(pids_dir + "/pids.max")), "16");
  // The bomb reaches the limit: the kernel refuses forks beyond it ("max N" counts them).
  auto refused = [&] {
    std::string events = ReadFileOrEmpty(pids_dir + "/pids.events");
    size_t at = events.find("max ");
    return at == std::string::npos ? 0 : std::stoull(events.substr(at + 4));
  };
  EXPECT_TRUE(WaitFor([&] { return refused() > 0; }))
      << "pids.events: " << ReadFileOrEmpty(pids_dir + "/pids.events");
  EXPECT_TRUE(WaitFor([&] { return CmdlineOf(State(id).value("pid", 0)) == "sleep 30"; }));
  json stats = Stats(id);
  ASSERT_TRUE(stats.is_object());
  uint64_t current = stats["pids"].value("current", uint64_t{999});
  EXPECT_LE(current, 16u) << stats.dump();
  EXPECT_GE(current, 10u) << stats.dump();
  EXPECT_EQ(stats["pids"].value("limit", uint64_t{0}), 16u);
  EXPECT_LE(ReadNumber(pids_dir + "/pids.current"), 16u);
  // The host is fine: we can still fork and exec.
  EXPECT_EQ(RunCommand({"/bin/true"}).exit_code, 0);

  CommandResult ps = Runtime({"ps", "--format", "json", id});
  ASSERT_EQ(ps.exit_code, 0) << ps.Describe();
  json pids = json::parse(ps.out, nullptr, false);
  ASSERT_TRUE(pids.is_array());
  EXPECT_GE(pids.size(), 10u) << ps.out;
  CommandResult d = Runtime({"delete", "--force", id});
  ASSERT_EQ(d.exit_code, 0) << d.Describe();
  for (const auto& p : pids) {
    pid_t pid = p.get<pid_t>();
    EXPECT_TRUE(WaitFor([&] {
      ReapExitedChildren();
      return ProcessGone(pid);
    })) << "process "
        << pid << " survived delete --force";
  }
  EXPECT_FALSE(PathExists(pids_dir));
}

TEST_F(CgroupsTest, CpuQuotaThrottlesABusyLoop) {
  std::string id = NewId();
  json c = Config({"sh", "-c", "while :; do :; done"});
  c["linux"]["resources"]["cpu"] = {{"quota", 20000}, {"period", 100000}};
  WriteConfig(c);
  int64_t start = NowNs();
  CommandResult r = Runtime({"run", "--detach", "--bundle", bundle(), id});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  if (v2_) {
    EXPECT_EQ(Trim(ReadFileOrEmpty(Dir(id, "cpu") + "/cpu.max")), "20000 100000");
  } else {
    EXPECT_EQ(Trim(ReadFileOrEmpty(Dir(id, "cpu") + "/cpu.cfs_quota_us")), "20000");
    EXPECT_EQ(Trim(ReadFileOrEmpty(Dir(id, "cpu") + "/cpu.cfs_period_us")), "100000");
  }
  SleepMs(1500);
  if (v2_) {
    EXPECT_GT(Keyed(id, "cpu.stat", "nr_throttled"), 0u)
        << "cpu.stat: " << ReadFileOrEmpty(Dir(id, "cpu") + "/cpu.stat");
  }
  json stats = Stats(id);
  int64_t wall = NowNs() - start;
  ASSERT_TRUE(stats.is_object());
  EXPECT_GT(stats["cpu"]["throttling"].value("throttledPeriods", uint64_t{0}), 0u)
      << stats["cpu"].dump();
  uint64_t used = stats["cpu"]["usage"].value("total", uint64_t{0});
  EXPECT_GT(used, 0u);
  // 20% of one CPU; a generous bound (60% of the wall time) that a free-running loop exceeds.
  EXPECT_LT(static_cast<double>(used), 0.6 * static_cast<double>(wall))
      << "used " << used << " ns in " << wall << " ns";
}

TEST_F(CgroupsTest, UpdateChangesTheMemoryLimit) {
  std::string id = NewId();
  json c = Config({"sleep", "30"});
  c["linux"]["resources"]["memory"] = {{"limit", 128 << 20}};
  ASSERT_GT(CreateAndStart(c, id), 0);
  std::string file = Dir(id, "memory") + (v2_ ? "/memory.max" : "/memory.limit_in_bytes");
  EXPECT_EQ(Trim(ReadFileOrEmpty(file)), "134217728");
  CommandResult u = Runtime({"update", "--memory", "64m", id});
  ASSERT_EQ(u.exit_code, 0) << u.Describe();
  EXPECT_EQ(Trim(ReadFileOrEmpty(file)), "67108864");
  CommandResult p = Runtime({"update", "--pids-limit", "50", id});
  ASSERT_EQ(p.exit_code, 0) << p.Describe();
  EXPECT_EQ(Trim(ReadFileOrEmpty(Dir(id, "pids") + "/pids.max")), "50");
  // Unset fields were left alone.
  EXPECT_EQ(Trim(ReadFileOrEmpty(file)), "67108864");
}

TEST_F(CgroupsTest, PauseFreezesAndResumeThaws) {
  std::string id = NewId();
  WriteConfig(Config({"sh", "-c", "while :; do :; done"}));
  CommandResult r = Runtime({"run", "--detach", "--bundle", bundle(), id});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  // v1: freezer.state FROZEN/THAWED; v2: the "frozen" key of cgroup.events.
  std::string freezer =
      v2_ ? Dir(id, "unified") + "/cgroup.events" : Dir(id, "freezer") + "/freezer.state";
  auto frozen_state = [&] {
    if (!v2_) return Trim(ReadFileOrEmpty(freezer));
    switch (KeyedValue(ReadFileOrEmpty(freezer), "frozen", 2)) {
      case 0:
        return std::string("THAWED");
      case 1:
        return std::string("FROZEN");
      default:
        return "? (" + ReadFileOrEmpty(freezer) + ")";
    }
  };
  SleepMs(100);

  CommandResult p = Runtime({"pause", id});
  ASSERT_EQ(p.exit_code, 0) << p.Describe();
  EXPECT_EQ(Status(id), "paused");
  EXPECT_EQ(frozen_state(), "FROZEN");
  uint64_t before = CpuUsage(id);
  SleepMs(300);
  uint64_t after = CpuUsage(id);
  EXPECT_LT(after - before, 5'000'000u) << "a frozen busy loop used " << (after - before) << " ns";

  CommandResult res = Runtime({"resume", id});
  ASSERT_EQ(res.exit_code, 0) << res.Describe();
  EXPECT_EQ(Status(id), "running");
  EXPECT_EQ(frozen_state(), "THAWED");
  before = CpuUsage(id);
  SleepMs(300);
  after = CpuUsage(id);
  // Generous: other builds share the two cores.
  EXPECT_GT(after - before, 10'000'000u)
      << "a thawed busy loop used only " << (after - before) << " ns in 300 ms";
}

// delete --force of a paused container: the frozen tasks must die and the cgroup go.
TEST_F(CgroupsTest, DeleteForceRemovesAPausedContainer) {
  std::string id = NewId();
  pid_t pid = CreateAndStart(Config({"sleep", "30"}), id);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(Runtime({"pause", id}).exit_code, 0);
  EXPECT_EQ(Status(id), "paused");
  if (v2_) {
    EXPECT_EQ(KeyedValue(ReadFileOrEmpty(Dir(id, "unified") + "/cgroup.events"), "frozen", 2), 1u);
  }
  CommandResult d = Runtime({"delete", "--force", id});
  ASSERT_EQ(d.exit_code, 0) << d.Describe();
  EXPECT_TRUE(WaitFor([&] {
    ReapExitedChildren();
    return ProcessGone(pid);
  }));
  for (const auto& [hierarchy, dir] : CgroupDirs(id)) EXPECT_FALSE(PathExists(dir)) << dir;
}

}  // namespace
}  // namespace moat::testing
