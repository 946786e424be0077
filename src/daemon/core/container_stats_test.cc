#include "daemon/core/container_stats.h"

#include <gtest/gtest.h>

namespace moat::daemon::core {
namespace {

using privsep::ContainerSpec;

StatsSample V1Sample() {
  StatsSample s;
  s.version = cgroups::Version::kV1;
  s.read_nano = 1'700'000'000'123'456'789;
  s.cgroup.memory_usage = 10 << 20;
  s.cgroup.memory_max_usage = 12 << 20;
  s.cgroup.memory_limit = 64 << 20;
  s.cgroup.memory_failcnt = 3;
  s.cgroup.memory_stat = {{"total_inactive_file", 1 << 20}, {"cache", 2 << 20}};
  s.cgroup.cpu_usage_ns = 5'000'000'000;
  s.cgroup.cpu_user_ns = 3'000'000'000;
  s.cgroup.cpu_system_ns = 2'000'000'000;
  s.cgroup.cpu_per_cpu_ns = {4'000'000'000, 1'000'000'000};
  s.cgroup.cpu_nr_periods = 7;
  s.cgroup.cpu_nr_throttled = 2;
  s.cgroup.cpu_throttled_ns = 99;
  s.cgroup.pids_current = 4;
  s.cgroup.pids_limit = 50;
  s.cgroup.io = {{"8:0", {{"read_bytes", 100}, {"write_bytes", 200}, {"reads", 1}, {"writes", 2}}}};
  s.system_cpu_ns = 123'000'000'000;
  s.online_cpus = 2;
  return s;
}

TEST(SystemCpuNs, SumsTheFirstEightFieldsInNanoseconds) {
  // user nice system idle iowait irq softirq steal guest guest_nice
  std::string stat = "cpu  100 2 30 1000 4 5 6 7 500 500\ncpu0 50 1 15 500 2 2 3 3 0 0\nintr 1\n";
  auto ns = SystemCpuNsFromProcStat(stat, 100);
  ASSERT_TRUE(ns) << ns.error().message;
  EXPECT_EQ(*ns, (100ull + 2 + 30 + 1000 + 4 + 5 + 6 + 7) * 10'000'000ull);
}

TEST(SystemCpuNs, RejectsMissingOrMalformedCpuLine) {
  EXPECT_FALSE(SystemCpuNsFromProcStat("intr 1 2\n", 100));
  EXPECT_FALSE(SystemCpuNsFromProcStat("cpu  1 x 3 4\n", 100));
  EXPECT_FALSE(SystemCpuNsFromProcStat("cpu  1 2\n", 100));
  EXPECT_FALSE(SystemCpuNsFromProcStat("cpu  1 2 3 4\n", 0));
}

TEST(SystemCpuNs, NoOverflowForLongUptimes) {
  // 2 years on 256 CPUs at 100 Hz.
  uint64_t ticks = 2ull * 365 * 86400 * 100 * 256;
  auto ns = SystemCpuNsFromProcStat("cpu  " + std::to_string(ticks) + " 0 0 0\n", 100);
  ASSERT_TRUE(ns);
  EXPECT_EQ(*ns, ticks * 10'000'000ull);
}

TEST(MemTotal, ParsesKibibytes) {
  EXPECT_EQ(MemTotalFromMeminfo("MemTotal:       16318480 kB\nMemFree: 1 kB\n"),
            16318480ull * 1024);
  EXPECT_EQ(MemTotalFromMeminfo("MemFree: 1 kB\n"), 0u);
  EXPECT_EQ(MemTotalFromMeminfo("MemTotal: lots kB\n"), 0u);
}

TEST(StatsDocument, V1ShapeAsDockerd) {
  StatsSample s = V1Sample();
  StatsSample prev = s;
  prev.read_nano -= 1'000'000'000;
  prev.cgroup.cpu_usage_ns = 4'000'000'000;
  prev.system_cpu_ns = 121'000'000'000;
  Json doc = StatsDocument("abc", "web", s, CpuStatsJson(prev), prev.read_nano, 1ull << 34);
  EXPECT_EQ(doc["id"], "abc");
  EXPECT_EQ(doc["name"], "/web");
  EXPECT_EQ(doc["read"], "2023-11-14T22:13:20.123456789Z");
  EXPECT_EQ(doc["preread"], "2023-11-14T22:13:19.123456789Z");
  EXPECT_EQ(doc["cpu_stats"]["cpu_usage"]["total_usage"], 5'000'000'000u);
  EXPECT_EQ(doc["cpu_stats"]["cpu_usage"]["usage_in_usermode"], 3'000'000'000u);
  EXPECT_EQ(doc["cpu_stats"]["cpu_usage"]["usage_in_kernelmode"], 2'000'000'000u);
  EXPECT_EQ(doc["cpu_stats"]["cpu_usage"]["percpu_usage"].size(), 2u);
  EXPECT_EQ(doc["cpu_stats"]["system_cpu_usage"], 123'000'000'000u);
  EXPECT_EQ(doc["cpu_stats"]["online_cpus"], 2);
  EXPECT_EQ(doc["cpu_stats"]["throttling_data"]["throttled_periods"], 2);
  EXPECT_EQ(doc["precpu_stats"]["cpu_usage"]["total_usage"], 4'000'000'000u);
  EXPECT_EQ(doc["precpu_stats"]["system_cpu_usage"], 121'000'000'000u);
  // What the docker CLI computes: (1 s of CPU / 2 s of host time) * 2 CPUs * 100 = 100 %.
  double cpu_delta = 5e9 - 4e9, sys_delta = 123e9 - 121e9;
  EXPECT_DOUBLE_EQ(cpu_delta / sys_delta * doc["cpu_stats"]["online_cpus"].get<double>() * 100.0,
                   100.0);
  EXPECT_EQ(doc["memory_stats"]["usage"], 10u << 20);
  EXPECT_EQ(doc["memory_stats"]["max_usage"], 12u << 20);
  EXPECT_EQ(doc["memory_stats"]["limit"], 64u << 20);
  EXPECT_EQ(doc["memory_stats"]["failcnt"], 3);
  EXPECT_EQ(doc["memory_stats"]["stats"]["total_inactive_file"], 1u << 20);
  EXPECT_EQ(doc["pids_stats"]["current"], 4);
  EXPECT_EQ(doc["pids_stats"]["limit"], 50);
  const Json& bytes = doc["blkio_stats"]["io_service_bytes_recursive"];
  ASSERT_EQ(bytes.size(), 3u);
  EXPECT_EQ(bytes[0], Json({{"major", 8}, {"minor", 0}, {"op", "Read"}, {"value", 100}}));
  EXPECT_EQ(bytes[1]["op"], "Write");
  EXPECT_EQ(bytes[1]["value"], 200);
  EXPECT_EQ(bytes[2]["op"], "Total");
  EXPECT_EQ(bytes[2]["value"], 300);
  EXPECT_EQ(doc["blkio_stats"]["io_serviced_recursive"][1]["value"], 2);
  EXPECT_TRUE(doc["networks"].is_object());
  EXPECT_EQ(doc["num_procs"], 0);
}

TEST(StatsDocument, V2ShapeAndUnlimitedMemoryIsTheHostsMemory) {
  StatsSample s = V1Sample();
  s.version = cgroups::Version::kV2;
  s.cgroup.memory_limit = 0;
  s.cgroup.pids_limit = 0;
  s.cgroup.cpu_per_cpu_ns.clear();
  Json doc = StatsDocument("abc", "web", s, nullptr, 0, 8ull << 30);
  EXPECT_EQ(doc["memory_stats"]["limit"], 8ull << 30);
  EXPECT_FALSE(doc["memory_stats"].contains("max_usage"));
  EXPECT_FALSE(doc["memory_stats"].contains("failcnt"));
  EXPECT_FALSE(doc["pids_stats"].contains("limit"));
  EXPECT_FALSE(doc["cpu_stats"]["cpu_usage"].contains("percpu_usage"));
  const Json& bytes = doc["blkio_stats"]["io_service_bytes_recursive"];
  ASSERT_EQ(bytes.size(), 2u);
  EXPECT_EQ(bytes[0]["op"], "read");
  EXPECT_EQ(bytes[1]["op"], "write");
  // No previous sample: zeros, dated 0001-01-01.
  EXPECT_EQ(doc["preread"], "0001-01-01T00:00:00Z");
  EXPECT_EQ(doc["precpu_stats"]["cpu_usage"]["total_usage"], 0);
}

TEST(StatsDocument, LimitAboveTheHostsMemoryIsClamped) {
  StatsSample s = V1Sample();
  s.cgroup.memory_limit = 1ull << 40;
  EXPECT_EQ(StatsDocument("a", "b", s, nullptr, 0, 1ull << 30)["memory_stats"]["limit"],
            1ull << 30);
  // Unknown host memory: the cgroup's own limit.
  EXPECT_EQ(StatsDocument("a", "b", s, nullptr, 0, 0)["memory_stats"]["limit"], 1ull << 40);
}

TEST(StatsDocument, EmptyDocumentForAStoppedContainer) {
  Json doc = EmptyStatsDocument("abc", "web");
  EXPECT_EQ(doc["name"], "/web");
  EXPECT_EQ(doc["id"], "abc");
  EXPECT_EQ(doc["read"], "0001-01-01T00:00:00Z");
  EXPECT_EQ(doc["cpu_stats"]["cpu_usage"]["total_usage"], 0);
  EXPECT_EQ(doc["precpu_stats"]["cpu_usage"]["total_usage"], 0);
  EXPECT_TRUE(doc["memory_stats"].is_object());
  EXPECT_TRUE(doc["memory_stats"].empty());
  EXPECT_TRUE(doc["blkio_stats"]["io_service_bytes_recursive"].is_null());
}

ContainerSpec BaseSpec() {
  ContainerSpec s;
  s.image = "busybox";
  return s;
}

TEST(ApplyUpdate, ZeroLeavesFieldsAloneAndValuesAreSet) {
  ContainerSpec s = BaseSpec();
  s.cpu_shares = 512;
  auto u = ApplyUpdate(s, {{"Memory", 128 << 20},
                           {"PidsLimit", 30},
                           {"CpuShares", 0},
                           {"CpusetCpus", ""},
                           {"BlkioWeight", 300}});
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->memory, 128 << 20);
  EXPECT_EQ(u->memory_swap, 0);  // none in force before: the default (twice) applies
  EXPECT_EQ(u->pids_limit, 30);
  EXPECT_EQ(u->cpu_shares, 512);
  EXPECT_EQ(u->blkio_weight, 300);
  EXPECT_EQ(u->image, "busybox");
}

TEST(ApplyUpdate, PidsLimitZeroOrNegativeLifts) {
  ContainerSpec s = BaseSpec();
  s.pids_limit = 20;
  auto u = ApplyUpdate(s, {{"PidsLimit", -1}});
  ASSERT_TRUE(u);
  EXPECT_FALSE(u->pids_limit.has_value());
  u = ApplyUpdate(s, {{"PidsLimit", nullptr}});
  ASSERT_TRUE(u);
  EXPECT_EQ(u->pids_limit, 20);
}

TEST(ApplyUpdate, MemoryAboveTheSwapLimitInForceNeedsSwap) {
  ContainerSpec s = BaseSpec();
  s.memory = 64 << 20;  // memory+swap in force: 128m
  auto u = ApplyUpdate(s, {{"Memory", 200 << 20}});
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().kind, ErrorKind::kConflict);
  EXPECT_NE(u.error().message.find("update the memoryswap at the same time"), std::string::npos);
  u = ApplyUpdate(s, {{"Memory", 200 << 20}, {"MemorySwap", -1}});
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->memory_swap, -1);
  // Within the limit in force: the derived 128m is written out and stays.
  u = ApplyUpdate(s, {{"Memory", 100 << 20}});
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_EQ(u->memory, 100 << 20);
  EXPECT_EQ(u->memory_swap, 128 << 20);
}

TEST(ApplyUpdate, ValidatedLikeCreate) {
  ContainerSpec s = BaseSpec();
  auto u = ApplyUpdate(s, {{"Memory", 1024}});
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().message, "Minimum memory limit allowed is 6MB");
  u = ApplyUpdate(s, {{"BlkioWeight", 5}});
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().kind, ErrorKind::kInvalidArgument);
  u = ApplyUpdate(s, {{"RestartPolicy", {{"Name", "sometimes"}}}});
  ASSERT_FALSE(u);
  EXPECT_NE(u.error().message.find("unknown policy"), std::string::npos);
  u = ApplyUpdate(s, {{"Memory", "lots"}});
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().kind, ErrorKind::kInvalidArgument);
}

TEST(ApplyUpdate, NanoCpusAndPeriodQuotaExcludeEachOther) {
  ContainerSpec s = BaseSpec();
  s.cpu_quota = 50000;
  auto u = ApplyUpdate(s, {{"NanoCpus", 1'000'000'000}});
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().kind, ErrorKind::kConflict);
  s = BaseSpec();
  s.nano_cpus = 500'000'000;
  u = ApplyUpdate(s, {{"CpuPeriod", 100000}});
  ASSERT_FALSE(u);
  EXPECT_NE(u.error().message.find("NanoCPUs has already been set"), std::string::npos);
  u = ApplyUpdate(s, {{"NanoCpus", 1'500'000'000}});
  ASSERT_TRUE(u);
  EXPECT_EQ(u->nano_cpus, 1'500'000'000);
}

TEST(ApplyUpdate, RestartPolicy) {
  ContainerSpec s = BaseSpec();
  auto u = ApplyUpdate(s, {{"RestartPolicy", {{"Name", "on-failure"}, {"MaximumRetryCount", 3}}}});
  ASSERT_TRUE(u);
  EXPECT_EQ(u->restart_policy, "on-failure");
  EXPECT_EQ(u->restart_max_retries, 3);
  // An empty name leaves the policy alone.
  u = ApplyUpdate(*u, {{"RestartPolicy", {{"Name", ""}, {"MaximumRetryCount", 0}}}});
  ASSERT_TRUE(u);
  EXPECT_EQ(u->restart_policy, "on-failure");
  s.auto_remove = true;
  u = ApplyUpdate(s, {{"RestartPolicy", {{"Name", "always"}}}});
  ASSERT_FALSE(u);
  EXPECT_NE(u.error().message.find("AutoRemove is enabled"), std::string::npos);
}

TEST(UpdateResources, OnlyTheChangedGroupsAsAtCreate) {
  ContainerSpec before = BaseSpec();
  ContainerSpec after = before;
  EXPECT_TRUE(UpdateResourcesJson(before, after).empty());
  after.memory = 128 << 20;
  after.pids_limit = 30;
  Json r = UpdateResourcesJson(before, after);
  EXPECT_EQ(r, Json({{"memory", {{"limit", 128 << 20}, {"swap", 256 << 20}}},
                     {"pids", {{"limit", 30}}}}));
  before = after;
  after.pids_limit.reset();
  after.nano_cpus = 1'500'000'000;
  after.cpuset_cpus = "0";
  r = UpdateResourcesJson(before, after);
  EXPECT_EQ(r, Json({{"cpu", {{"period", 100000}, {"quota", 150000}, {"cpus", "0"}}},
                     {"pids", {{"limit", -1}}}}));
  before = after;
  after.memory_reservation = 32 << 20;
  after.memory_swap = -1;
  after.blkio_weight = 300;
  r = UpdateResourcesJson(before, after);
  EXPECT_EQ(r, Json({{"memory", {{"limit", 128 << 20}, {"reservation", 32 << 20}, {"swap", -1}}},
                     {"blockIO", {{"weight", 300}}}}));
}

TEST(UpdateResources, DockerUpdateMemoryAndPidsEndToEnd) {
  // `docker update --memory 128m --pids-limit 30` on a container without limits.
  ContainerSpec before = BaseSpec();
  auto after = ApplyUpdate(before, {{"Memory", 128 << 20},
                                    {"MemorySwap", 0},
                                    {"PidsLimit", 30},
                                    {"CpuShares", 0},
                                    {"NanoCpus", 0},
                                    {"CpusetCpus", ""}});
  ASSERT_TRUE(after) << after.error().message;
  Json r = UpdateResourcesJson(before, *after);
  EXPECT_EQ(r["memory"]["limit"], 128 << 20);
  EXPECT_EQ(r["pids"]["limit"], 30);
  EXPECT_FALSE(r.contains("cpu"));
}

}  // namespace
}  // namespace moat::daemon::core
