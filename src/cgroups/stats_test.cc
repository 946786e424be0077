#include "cgroups/stats.h"

#include <gtest/gtest.h>

namespace moat::cgroups {
namespace {

TEST(StatsV1Test, ParsesSampleFiles) {
  FileContents f;
  f["memory.usage_in_bytes"] = "1048576\n";
  f["memory.max_usage_in_bytes"] = "2097152\n";
  f["memory.limit_in_bytes"] = "67108864\n";
  f["memory.failcnt"] = "3\n";
  f["memory.oom_control"] = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
  f["memory.memsw.usage_in_bytes"] = "1310720\n";
  f["memory.stat"] = "cache 4096\nrss 8192\nbogus line here\ntotal_rss 8192\n";
  f["cpuacct.usage"] = "123456789\n";
  f["cpuacct.usage_user"] = "100000000\n";
  f["cpuacct.usage_sys"] = "23456789\n";
  f["cpuacct.usage_percpu"] = "100 200 \n";
  f["cpu.stat"] = "nr_periods 10\nnr_throttled 4\nthrottled_time 5000\n";
  f["pids.current"] = "1\n";
  f["pids.max"] = "20\n";
  f["blkio.throttle.io_service_bytes"] =
      "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n"
      "8:0 Total 12288\nTotal 12288\n";
  f["blkio.throttle.io_serviced"] = "8:0 Read 1\n8:0 Write 2\n8:0 Total 3\nTotal 3\n";

  Stats s = StatsFromV1(f);
  EXPECT_EQ(s.memory_usage, 1048576u);
  EXPECT_EQ(s.memory_max_usage, 2097152u);
  EXPECT_EQ(s.memory_limit, 67108864u);
  EXPECT_EQ(s.memory_failcnt, 3u);
  EXPECT_EQ(s.oom_kills, 2u);
  EXPECT_EQ(s.swap_usage, 262144u);
  EXPECT_EQ(s.memory_stat.size(), 3u);
  EXPECT_EQ(s.memory_stat["rss"], 8192u);
  EXPECT_EQ(s.cpu_usage_ns, 123456789u);
  EXPECT_EQ(s.cpu_user_ns, 100000000u);
  EXPECT_EQ(s.cpu_system_ns, 23456789u);
  EXPECT_EQ(s.cpu_per_cpu_ns, (std::vector<uint64_t>{100, 200}));
  EXPECT_EQ(s.cpu_nr_periods, 10u);
  EXPECT_EQ(s.cpu_nr_throttled, 4u);
  EXPECT_EQ(s.cpu_throttled_ns, 5000u);
  EXPECT_EQ(s.pids_current, 1u);
  EXPECT_EQ(s.pids_limit, 20u);
  EXPECT_EQ(s.io["8:0"]["read_bytes"], 4096u);
  EXPECT_EQ(s.io["8:0"]["write_bytes"], 8192u);
  EXPECT_EQ(s.io["8:0"]["reads"], 1u);
  EXPECT_EQ(s.io["8:0"]["writes"], 2u);
  EXPECT_EQ(s.io.size(), 1u);  // the "Total" line is not a device
}

TEST(StatsV1Test, UnlimitedAndMissing) {
  FileContents f;
  f["memory.limit_in_bytes"] = "9223372036854771712\n";
  f["pids.max"] = "max\n";
  f["cpuacct.stat"] = "user 150\nsystem 20\n";  // USER_HZ ticks
  f["blkio.throttle.io_service_bytes_recursive"] = "8:16 Read 1\nTotal 1\n";
  f["blkio.throttle.io_service_bytes"] = "8:0 Read 999\nTotal 999\n";
  Stats s = StatsFromV1(f);
  EXPECT_EQ(s.memory_limit, 0u);
  EXPECT_EQ(s.pids_limit, 0u);
  EXPECT_EQ(s.memory_usage, 0u);
  EXPECT_EQ(s.swap_usage, 0u);
  EXPECT_EQ(s.cpu_user_ns, 1500000000u);
  EXPECT_EQ(s.cpu_system_ns, 200000000u);
  // The recursive file, which includes sub-cgroups, is preferred.
  EXPECT_EQ(s.io.count("8:0"), 0u);
  EXPECT_EQ(s.io["8:16"]["read_bytes"], 1u);
  EXPECT_TRUE(s.cpu_per_cpu_ns.empty());
}

TEST(StatsV2Test, ParsesSampleFiles) {
  FileContents f;
  f["memory.current"] = "4194304\n";
  f["memory.peak"] = "8388608\n";
  f["memory.max"] = "67108864\n";
  f["memory.events"] = "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 1\n";
  f["memory.stat"] = "anon 1024\nfile 2048\n";
  f["memory.swap.current"] = "512\n";
  f["cpu.stat"] =
      "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 3\nnr_throttled 1\n"
      "throttled_usec 42\nnr_bursts 0\nburst_usec 0\n";
  f["pids.current"] = "2\n";
  f["pids.max"] = "max\n";
  f["io.stat"] =
      "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
      "259:0 rbytes=1 wbytes=0 rios=1 wios=0 dbytes=0 dios=0 cost.vrate=100.00\n";
  Stats s = StatsFromV2(f);
  EXPECT_EQ(s.memory_usage, 4194304u);
  EXPECT_EQ(s.memory_max_usage, 8388608u);
  EXPECT_EQ(s.memory_limit, 67108864u);
  EXPECT_EQ(s.memory_failcnt, 7u);
  EXPECT_EQ(s.oom_kills, 1u);
  EXPECT_EQ(s.swap_usage, 512u);
  EXPECT_EQ(s.memory_stat["file"], 2048u);
  EXPECT_EQ(s.cpu_usage_ns, 1500000u);
  EXPECT_EQ(s.cpu_user_ns, 1000000u);
  EXPECT_EQ(s.cpu_system_ns, 500000u);
  EXPECT_EQ(s.cpu_nr_periods, 3u);
  EXPECT_EQ(s.cpu_nr_throttled, 1u);
  EXPECT_EQ(s.cpu_throttled_ns, 42000u);
  EXPECT_EQ(s.pids_current, 2u);
  EXPECT_EQ(s.pids_limit, 0u);
  EXPECT_EQ(s.io["8:0"]["write_bytes"], 8192u);
  EXPECT_EQ(s.io["8:0"]["writes"], 2u);
  EXPECT_EQ(s.io["259:0"]["read_bytes"], 1u);
  EXPECT_EQ(s.io["259:0"].count("cost.vrate"), 0u);
}

TEST(StatsV2Test, EverythingMissingIsZero) {
  Stats s = StatsFromV2({});
  EXPECT_EQ(s.memory_usage, 0u);
  EXPECT_EQ(s.memory_limit, 0u);
  EXPECT_TRUE(s.io.empty());
  EXPECT_TRUE(s.memory_stat.empty());
}

TEST(ParseFlatKeyedTest, SkipsMalformedLines) {
  auto m = ParseFlatKeyed("a 1\nb x\nc 2 3\n\n  d 4  \n");
  EXPECT_EQ(m, (std::map<std::string, uint64_t>{{"a", 1}, {"d", 4}}));
}

}  // namespace
}  // namespace moat::cgroups
