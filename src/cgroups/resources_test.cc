#include "cgroups/resources.h"

#include <gtest/gtest.h>

namespace moat::cgroups {
namespace {

constexpr int64_t kMiB = 1024 * 1024;

CgroupState V1State() {
  CgroupState s;
  s.controllers = {"memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "devices", "freezer"};
  s.files = {"memory.limit_in_bytes",
             "memory.memsw.limit_in_bytes",
             "memory.soft_limit_in_bytes",
             "cpu.shares",
             "cpu.cfs_quota_us",
             "cpu.cfs_period_us",
             "pids.max",
             "blkio.bfq.weight",
             "blkio.bfq.weight_device"};
  return s;
}

CgroupState V2State() {
  CgroupState s;
  s.controllers = {"cpu", "cpuset", "io", "memory", "pids", "hugetlb"};
  s.files = {"memory.max", "memory.low", "memory.swap.max", "memory.oom.group", "cpu.max",
             "cpu.weight", "io.weight",  "io.max",          "pids.max"};
  return s;
}

std::vector<CgroupWrite> PlanOk(Result<std::vector<CgroupWrite>> r) {
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  return r ? *r : std::vector<CgroupWrite>{};
}

oci::Resources Memory(std::optional<int64_t> limit, std::optional<int64_t> swap) {
  oci::Resources r;
  r.memory.emplace();
  r.memory->limit = limit;
  r.memory->swap = swap;
  return r;
}

TEST(PlanV1Test, RaisingMemoryWritesMemswFirst) {
  CgroupState s = V1State();
  s.current["memory.limit_in_bytes"] = std::to_string(100 * kMiB);
  auto w = PlanOk(PlanV1(Memory(300 * kMiB, 600 * kMiB), s));
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0], (CgroupWrite{"memory", "memory.memsw.limit_in_bytes", "629145600"}));
  EXPECT_EQ(w[1], (CgroupWrite{"memory", "memory.limit_in_bytes", "314572800"}));
}

TEST(PlanV1Test, LoweringMemoryWritesLimitFirst) {
  CgroupState s = V1State();
  s.current["memory.limit_in_bytes"] = std::to_string(300 * kMiB);
  auto w = PlanOk(PlanV1(Memory(100 * kMiB, 200 * kMiB), s));
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].file, "memory.limit_in_bytes");
  EXPECT_EQ(w[1].file, "memory.memsw.limit_in_bytes");
}

TEST(PlanV1Test, UnlimitedCurrentLimitWritesLimitFirst) {
  CgroupState s = V1State();
  s.current["memory.limit_in_bytes"] = "9223372036854771712";  // v1's "unlimited"
  auto w = PlanOk(PlanV1(Memory(64 * kMiB, 128 * kMiB), s));
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].file, "memory.limit_in_bytes");
  // Unknown current value: same safe choice.
  s.current.clear();
  w = PlanOk(PlanV1(Memory(64 * kMiB, 128 * kMiB), s));
  EXPECT_EQ(w[0].file, "memory.limit_in_bytes");
}

TEST(PlanV1Test, UnknownLimitDecidesFromCurrentMemsw) {
  CgroupState s = V1State();
  s.current["memory.memsw.limit_in_bytes"] = std::to_string(200 * kMiB);
  // New limit above the old memsw: the limit cannot go first.
  auto w = PlanOk(PlanV1(Memory(300 * kMiB, 600 * kMiB), s));
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].file, "memory.memsw.limit_in_bytes");
  w = PlanOk(PlanV1(Memory(100 * kMiB, 150 * kMiB), s));
  EXPECT_EQ(w[0].file, "memory.limit_in_bytes");
}

TEST(PlanV1Test, UnlimitedSwapGoesFirst) {
  CgroupState s = V1State();
  s.current["memory.limit_in_bytes"] = std::to_string(64 * kMiB);
  auto w = PlanOk(PlanV1(Memory(512 * kMiB, -1), s));
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0], (CgroupWrite{"memory", "memory.memsw.limit_in_bytes", "-1"}));
  EXPECT_EQ(w[1], (CgroupWrite{"memory", "memory.limit_in_bytes", "536870912"}));
}

TEST(PlanV1Test, UnlimitedMemoryAlsoLiftsSwap) {
  CgroupState s = V1State();
  s.current["memory.limit_in_bytes"] = std::to_string(64 * kMiB);
  auto w = PlanOk(PlanV1(Memory(-1, std::nullopt), s));
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0], (CgroupWrite{"memory", "memory.memsw.limit_in_bytes", "-1"}));
  EXPECT_EQ(w[1], (CgroupWrite{"memory", "memory.limit_in_bytes", "-1"}));
}

TEST(PlanV1Test, SwapBelowLimitIsRejected) {
  auto r = PlanV1(Memory(200 * kMiB, 100 * kMiB), V1State());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(r.error().message.find("below the memory limit"), std::string::npos);
}

TEST(PlanV1Test, SwapWithoutSwapAccounting) {
  CgroupState s = V1State();
  s.files.erase("memory.memsw.limit_in_bytes");
  auto r = PlanV1(Memory(100 * kMiB, 200 * kMiB), s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnsupported);
  EXPECT_NE(r.error().message.find("memory.memsw.limit_in_bytes"), std::string::npos);
  // memory+swap == memory asks for no swap beyond the limit: only the limit is written.
  auto w = PlanOk(PlanV1(Memory(100 * kMiB, 100 * kMiB), s));
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].file, "memory.limit_in_bytes");
}

TEST(PlanV1Test, MemoryOtherKnobs) {
  oci::Resources r;
  r.memory.emplace();
  r.memory->reservation = 32 * kMiB;
  r.memory->swappiness = 10;
  r.memory->disable_oom_killer = true;
  auto w = PlanOk(PlanV1(r, V1State()));
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0], (CgroupWrite{"memory", "memory.soft_limit_in_bytes", "33554432"}));
  EXPECT_EQ(w[1], (CgroupWrite{"memory", "memory.swappiness", "10"}));
  EXPECT_EQ(w[2], (CgroupWrite{"memory", "memory.oom_control", "1"}));
  r.memory->swappiness = 101;
  EXPECT_FALSE(PlanV1(r, V1State()));
}

TEST(PlanV1Test, CheckBeforeUpdate) {
  CgroupState s = V1State();
  s.current["memory.usage_in_bytes"] = std::to_string(100 * kMiB);
  oci::Resources r = Memory(50 * kMiB, std::nullopt);
  r.memory->check_before_update = true;
  auto e = PlanV1(r, s);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("below the current usage"), std::string::npos);
  r.memory->limit = 200 * kMiB;
  EXPECT_TRUE(PlanV1(r, s));
}

oci::Resources Cpu(std::optional<int64_t> quota, std::optional<uint64_t> period) {
  oci::Resources r;
  r.cpu.emplace();
  r.cpu->quota = quota;
  r.cpu->period = period;
  return r;
}

TEST(PlanV1Test, CpuQuotaPeriodOrderKeepsBandwidthLow) {
  CgroupState s = V1State();
  s.current["cpu.cfs_quota_us"] = "50000";
  s.current["cpu.cfs_period_us"] = "100000";
  // New 2 CPUs over a short period: quota first leaves 20000/100000 (0.2), period first would
  // leave 50000/10000 (5): quota first.
  auto w = PlanOk(PlanV1(Cpu(20000, 10000), s));
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0], (CgroupWrite{"cpu", "cpu.cfs_quota_us", "20000"}));
  EXPECT_EQ(w[1], (CgroupWrite{"cpu", "cpu.cfs_period_us", "10000"}));
  // Long period: quota first would leave 200000/100000 (2), period first 50000/1000000.
  w = PlanOk(PlanV1(Cpu(200000, 1000000), s));
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].file, "cpu.cfs_period_us");
  EXPECT_EQ(w[1].file, "cpu.cfs_quota_us");
  // Becoming unlimited: period first, then quota -1.
  w = PlanOk(PlanV1(Cpu(0, 100000), s));
  EXPECT_EQ(w[0].file, "cpu.cfs_period_us");
  EXPECT_EQ(w[1], (CgroupWrite{"cpu", "cpu.cfs_quota_us", "-1"}));
  // From unlimited: quota first.
  s.current["cpu.cfs_quota_us"] = "-1";
  w = PlanOk(PlanV1(Cpu(50000, 200000), s));
  EXPECT_EQ(w[0].file, "cpu.cfs_quota_us");
  // Unknown current values: period first.
  s.current.clear();
  w = PlanOk(PlanV1(Cpu(50000, 200000), s));
  EXPECT_EQ(w[0].file, "cpu.cfs_period_us");
}

TEST(PlanV1Test, CpuOther) {
  oci::Resources r;
  r.cpu.emplace();
  r.cpu->shares = 512;
  r.cpu->cpus = "0-1";
  r.cpu->mems = "0";
  r.cpu->realtime_runtime = 950000;
  r.cpu->realtime_period = 1000000;
  auto w = PlanOk(PlanV1(r, V1State()));
  ASSERT_EQ(w.size(), 5u);
  EXPECT_EQ(w[0], (CgroupWrite{"cpu", "cpu.shares", "512"}));
  EXPECT_EQ(w[1], (CgroupWrite{"cpu", "cpu.rt_period_us", "1000000"}));
  EXPECT_EQ(w[2], (CgroupWrite{"cpu", "cpu.rt_runtime_us", "950000"}));
  EXPECT_EQ(w[3], (CgroupWrite{"cpuset", "cpuset.cpus", "0-1"}));
  EXPECT_EQ(w[4], (CgroupWrite{"cpuset", "cpuset.mems", "0"}));
}

TEST(PlanV1Test, PidsMax) {
  for (auto [limit, want] :
       std::vector<std::pair<int64_t, std::string>>{{20, "20"}, {0, "max"}, {-1, "max"}}) {
    oci::Resources r;
    r.pids_limit = limit;
    auto w = PlanOk(PlanV1(r, V1State()));
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0], (CgroupWrite{"pids", "pids.max", want}));
    w = PlanOk(PlanV2(r, V2State()));
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0], (CgroupWrite{"pids", "pids.max", want}));
  }
}

TEST(PlanV1Test, MissingControllerIsAnError) {
  CgroupState s = V1State();
  s.controllers.erase("pids");
  oci::Resources r;
  r.pids_limit = 5;
  auto e = PlanV1(r, s);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().kind, ErrorKind::kUnsupported);
  EXPECT_NE(e.error().message.find("pids"), std::string::npos);
}

TEST(PlanV1Test, UnifiedNeedsV2) {
  oci::Resources r;
  r.unified["memory.high"] = "1G";
  auto e = PlanV1(r, V1State());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(e.error().message, "linux.resources.unified requires cgroup v2");
}

TEST(PlanV1Test, BlockIo) {
  oci::Resources r;
  r.block_io.emplace();
  r.block_io->weight = 500;
  r.block_io->weight_device.push_back({8, 0, 300, std::nullopt});
  r.block_io->throttle_read_bps_device.push_back({8, 0, 1048576});
  r.block_io->throttle_write_iops_device.push_back({8, 16, 100});
  auto w = PlanOk(PlanV1(r, V1State()));
  ASSERT_EQ(w.size(), 4u);
  // No CFQ blkio.weight here: BFQ's file takes the same value.
  EXPECT_EQ(w[0], (CgroupWrite{"blkio", "blkio.bfq.weight", "500"}));
  EXPECT_EQ(w[1], (CgroupWrite{"blkio", "blkio.bfq.weight_device", "8:0 300"}));
  EXPECT_EQ(w[2], (CgroupWrite{"blkio", "blkio.throttle.read_bps_device", "8:0 1048576"}));
  EXPECT_EQ(w[3], (CgroupWrite{"blkio", "blkio.throttle.write_iops_device", "8:16 100"}));
  CgroupState s = V1State();
  s.files.insert("blkio.weight");
  EXPECT_EQ(PlanOk(PlanV1(r, s))[0].file, "blkio.weight");
  s.files.erase("blkio.weight");
  s.files.erase("blkio.bfq.weight");
  EXPECT_FALSE(PlanV1(r, s));
}

TEST(PlanV1Test, HugetlbAndNetwork) {
  oci::Resources r;
  r.hugepage_limits.push_back({"2MB", 4 * 2 * kMiB});
  CgroupState s = V1State();
  s.controllers.insert({"hugetlb", "net_cls", "net_prio"});
  r.network_class_id = 0x100001;
  r.network_priorities.push_back({"eth0", 5});
  auto w = PlanOk(PlanV1(r, s));
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0], (CgroupWrite{"hugetlb", "hugetlb.2MB.limit_in_bytes", "8388608"}));
  EXPECT_EQ(w[1], (CgroupWrite{"net_cls", "net_cls.classid", "1048577"}));
  EXPECT_EQ(w[2], (CgroupWrite{"net_prio", "net_prio.ifpriomap", "eth0 5"}));
  r.hugepage_limits[0].page_size = "../2MB";
  EXPECT_FALSE(PlanV1(r, s));
  EXPECT_TRUE(IsValidHugepageSize("1GB"));
  EXPECT_TRUE(IsValidHugepageSize("64KB"));
  EXPECT_FALSE(IsValidHugepageSize("2M"));
  EXPECT_FALSE(IsValidHugepageSize("MB"));
  EXPECT_FALSE(IsValidHugepageSize("2/MB"));
}

oci::DeviceCgroupRule Rule(bool allow, std::string type, std::optional<int64_t> major,
                           std::optional<int64_t> minor, std::string access) {
  return {allow, std::move(type), major, minor, std::move(access)};
}

TEST(DeviceRuleV1Test, Strings) {
  auto one = [](const oci::DeviceCgroupRule& r) {
    auto l = DeviceRuleV1(r);
    EXPECT_TRUE(l.has_value());
    return l ? StrJoin(*l, "|") : "";
  };
  EXPECT_EQ(one(Rule(true, "c", 1, 3, "rwm")), "c 1:3 rwm");
  EXPECT_EQ(one(Rule(true, "b", 8, std::nullopt, "r")), "b 8:* r");
  EXPECT_EQ(one(Rule(true, "c", std::nullopt, std::nullopt, "mw")), "c *:* wm");
  EXPECT_EQ(one(Rule(true, "c", -1, -1, "")), "c *:* rwm");
  EXPECT_EQ(one(Rule(false, "a", std::nullopt, std::nullopt, "rwm")), "a");
  EXPECT_EQ(one(Rule(false, "", std::nullopt, std::nullopt, "")), "a");
  // Narrower than "everything": never a bare "a" line, which the kernel reads as all.
  EXPECT_EQ(one(Rule(true, "a", 1, 3, "rw")), "c 1:3 rw|b 1:3 rw");
  EXPECT_EQ(one(Rule(true, "a", std::nullopt, std::nullopt, "r")), "c *:* r|b *:* r");
  EXPECT_FALSE(DeviceRuleV1(Rule(true, "u", 1, 3, "rwm")));
  EXPECT_FALSE(DeviceRuleV1(Rule(true, "c", 1, 3, "rwx")));
  EXPECT_FALSE(DeviceRuleV1(Rule(true, "c", -2, 3, "r")));
}

TEST(PlanV1Test, DevicesDenyAllThenRulesInOrder) {
  oci::Resources r;
  r.devices.push_back(Rule(false, "a", std::nullopt, std::nullopt, "rwm"));
  r.devices.push_back(Rule(true, "c", 1, 3, "rwm"));
  r.devices.push_back(Rule(true, "c", 136, std::nullopt, "rw"));
  r.devices.push_back(Rule(false, "c", 1, 3, "w"));
  auto w = PlanOk(PlanV1(r, V1State()));
  std::vector<CgroupWrite> want = {
      {"devices", "devices.deny", "a"},          {"devices", "devices.deny", "a"},
      {"devices", "devices.allow", "c 1:3 rwm"}, {"devices", "devices.allow", "c 136:* rw"},
      {"devices", "devices.deny", "c 1:3 w"},
  };
  EXPECT_EQ(w, want);
}

TEST(ConversionTest, SharesToWeight) {
  EXPECT_EQ(SharesToWeight(2), 1u);
  EXPECT_EQ(SharesToWeight(0), 1u);  // clamped to the v1 minimum first
  EXPECT_EQ(SharesToWeight(1024), 39u);
  EXPECT_EQ(SharesToWeight(262144), 10000u);
  EXPECT_EQ(SharesToWeight(1000000), 10000u);
}

TEST(ConversionTest, BlkioWeightToIoWeight) {
  EXPECT_EQ(BlkioWeightToIoWeight(10), 1u);
  EXPECT_EQ(BlkioWeightToIoWeight(1), 1u);
  EXPECT_EQ(BlkioWeightToIoWeight(500), 4950u);
  EXPECT_EQ(BlkioWeightToIoWeight(1000), 10000u);
}

TEST(PlanV2Test, Memory) {
  auto w = PlanOk(PlanV2(Memory(100 * kMiB, 300 * kMiB), V2State()));
  std::vector<CgroupWrite> want = {
      {"memory", "memory.max", "104857600"},
      {"memory", "memory.swap.max", "209715200"},
      {"memory", "memory.oom.group", "1"},
  };
  EXPECT_EQ(w, want);
  w = PlanOk(PlanV2(Memory(-1, std::nullopt), V2State()));
  want = {{"memory", "memory.max", "max"},
          {"memory", "memory.swap.max", "max"},
          {"memory", "memory.oom.group", "1"}};
  EXPECT_EQ(w, want);
  w = PlanOk(PlanV2(Memory(100 * kMiB, -1), V2State()));
  EXPECT_EQ(w[1], (CgroupWrite{"memory", "memory.swap.max", "max"}));
  EXPECT_FALSE(PlanV2(Memory(100 * kMiB, 50 * kMiB), V2State()));
  EXPECT_FALSE(PlanV2(Memory(std::nullopt, 50 * kMiB), V2State()));
  EXPECT_FALSE(PlanV2(Memory(-7, std::nullopt), V2State()));

  oci::Resources r;
  r.memory.emplace();
  r.memory->reservation = 10 * kMiB;
  w = PlanOk(PlanV2(r, V2State()));
  EXPECT_EQ(w[0], (CgroupWrite{"memory", "memory.low", "10485760"}));
}

TEST(PlanV2Test, NoSwapAccounting) {
  CgroupState s = V2State();
  s.files.erase("memory.swap.max");
  auto e = PlanV2(Memory(100 * kMiB, 300 * kMiB), s);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().kind, ErrorKind::kUnsupported);
  auto w = PlanOk(PlanV2(Memory(100 * kMiB, 100 * kMiB), s));
  EXPECT_EQ(w[0].file, "memory.max");
  EXPECT_EQ(w.size(), 2u);  // max and oom.group
}

TEST(PlanV2Test, CpuMax) {
  auto w = PlanOk(PlanV2(Cpu(50000, 100000), V2State()));
  EXPECT_EQ(w, (std::vector<CgroupWrite>{{"cpu", "cpu.max", "50000 100000"}}));
  w = PlanOk(PlanV2(Cpu(-1, 100000), V2State()));
  EXPECT_EQ(w[0].value, "max 100000");
  w = PlanOk(PlanV2(Cpu(0, std::nullopt), V2State()));
  EXPECT_EQ(w[0].value, "max");
  w = PlanOk(PlanV2(Cpu(25000, std::nullopt), V2State()));
  EXPECT_EQ(w[0].value, "25000");
  CgroupState s = V2State();
  s.current["cpu.max"] = "20000 100000";
  w = PlanOk(PlanV2(Cpu(std::nullopt, 50000), s));
  EXPECT_EQ(w[0].value, "20000 50000");
}

TEST(PlanV2Test, CpuWeightBurstIdleCpuset) {
  oci::Resources r;
  r.cpu.emplace();
  r.cpu->shares = 1024;
  r.cpu->burst = 1000;
  r.cpu->idle = 1;
  r.cpu->cpus = "1";
  auto w = PlanOk(PlanV2(r, V2State()));
  std::vector<CgroupWrite> want = {{"cpu", "cpu.weight", "39"},
                                   {"cpu", "cpu.max.burst", "1000"},
                                   {"cpu", "cpu.idle", "1"},
                                   {"cpuset", "cpuset.cpus", "1"}};
  EXPECT_EQ(w, want);
  r.cpu->realtime_runtime = 1000;
  auto e = PlanV2(r, V2State());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().kind, ErrorKind::kUnsupported);
}

TEST(PlanV2Test, IoWeightAndMax) {
  oci::Resources r;
  r.block_io.emplace();
  r.block_io->weight = 1000;
  r.block_io->weight_device.push_back({8, 0, 10, std::nullopt});
  r.block_io->throttle_read_bps_device.push_back({8, 0, 1000});
  r.block_io->throttle_write_bps_device.push_back({8, 16, 2000});
  r.block_io->throttle_read_iops_device.push_back({8, 0, 0});
  r.block_io->throttle_write_iops_device.push_back({8, 0, 30});
  auto w = PlanOk(PlanV2(r, V2State()));
  std::vector<CgroupWrite> want = {
      {"io", "io.weight", "10000"},
      {"io", "io.weight", "8:0 1"},
      {"io", "io.max", "8:0 rbps=1000 riops=max wiops=30"},
      {"io", "io.max", "8:16 wbps=2000"},
  };
  EXPECT_EQ(w, want);
  CgroupState s = V2State();
  s.files.erase("io.weight");
  s.files.insert("io.bfq.weight");
  w = PlanOk(PlanV2(r, s));
  EXPECT_EQ(w[0], (CgroupWrite{"io", "io.bfq.weight", "1000"}));
  EXPECT_EQ(w[1], (CgroupWrite{"io", "io.bfq.weight", "8:0 10"}));
}

TEST(PlanV2Test, HugetlbAndNetwork) {
  oci::Resources r;
  r.hugepage_limits.push_back({"1GB", 1024 * kMiB});
  auto w = PlanOk(PlanV2(r, V2State()));
  EXPECT_EQ(w, (std::vector<CgroupWrite>{{"hugetlb", "hugetlb.1GB.max", "1073741824"}}));
  r.network_class_id = 1;
  auto e = PlanV2(r, V2State());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().kind, ErrorKind::kUnsupported);
}

TEST(PlanV2Test, UnifiedWrittenLastAndVerbatim) {
  oci::Resources r = Memory(100 * kMiB, std::nullopt);
  r.unified["memory.oom.group"] = "0";
  r.unified["cgroup.max.depth"] = "3";
  r.unified["memory.high"] = "50M";
  auto w = PlanOk(PlanV2(r, V2State()));
  ASSERT_EQ(w.size(), 5u);
  EXPECT_EQ(w[0].file, "memory.max");
  EXPECT_EQ(w[1], (CgroupWrite{"memory", "memory.oom.group", "1"}));
  EXPECT_EQ(w[2], (CgroupWrite{"", "cgroup.max.depth", "3"}));
  EXPECT_EQ(w[3], (CgroupWrite{"memory", "memory.high", "50M"}));
  EXPECT_EQ(w[4], (CgroupWrite{"memory", "memory.oom.group", "0"}));
}

TEST(PlanV2Test, UnifiedKeysMustBePlainFileNames) {
  for (const char* key : {"../memory.max", "a/b", "..", ".", "", "memory.max\n"}) {
    oci::Resources r;
    r.unified[key] = "1";
    auto e = PlanV2(r, V2State());
    ASSERT_FALSE(e) << key;
    EXPECT_EQ(e.error().kind, ErrorKind::kInvalidArgument) << key;
  }
  oci::Resources r;
  r.unified["rdma.max"] = "mlx4_0 hca_handle=2";
  auto e = PlanV2(r, V2State());
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().kind, ErrorKind::kUnsupported);
  EXPECT_NE(e.error().message.find("rdma controller"), std::string::npos);
}

TEST(PlanV2Test, DevicesAreNotFileWrites) {
  oci::Resources r;
  r.devices.push_back(Rule(false, "a", std::nullopt, std::nullopt, "rwm"));
  EXPECT_TRUE(PlanOk(PlanV2(r, V2State())).empty());
}

}  // namespace
}  // namespace moat::cgroups
