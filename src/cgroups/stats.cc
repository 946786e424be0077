#include "cgroups/stats.h"

#include <algorithm>
#include <optional>

#include "base/strings.h"

namespace moat::cgroups {

namespace {

std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> out;
  for (auto& l : StrSplit(text, '\n')) {
    std::string_view t = TrimWhitespace(l);
    if (!t.empty()) out.emplace_back(t);
  }
  return out;
}

std::vector<std::string> Fields(std::string_view line) {
  std::vector<std::string> out;
  for (auto& f : StrSplit(line, ' '))
    if (!f.empty()) out.push_back(f);
  return out;
}

const std::string* Find(const FileContents& files, const std::string& name) {
  auto it = files.find(name);
  return it == files.end() ? nullptr : &it->second;
}

uint64_t Single(const FileContents& files, const std::string& name) {
  const std::string* s = Find(files, name);
  if (!s) return 0;
  return ParseUint64(TrimWhitespace(*s)).value_or(0);
}

// A limit: "max" and v1's "unlimited" (PAGE_COUNTER_MAX pages, 9223372036854771712 with 4 KiB
// pages) become 0.
uint64_t Limit(const FileContents& files, const std::string& name) {
  const std::string* s = Find(files, name);
  if (!s) return 0;
  auto v = ParseUint64(TrimWhitespace(*s));
  if (!v || *v >= (uint64_t{1} << 62)) return 0;
  return *v;
}

uint64_t Key(const std::map<std::string, uint64_t>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? 0 : it->second;
}

std::map<std::string, uint64_t> Flat(const FileContents& files, const std::string& name) {
  const std::string* s = Find(files, name);
  return s ? ParseFlatKeyed(*s) : std::map<std::string, uint64_t>{};
}

// blkio.throttle.io_service_bytes / io_serviced: "8:0 Read 4096" lines and a final "Total N".
void AddBlkio(const std::string* text, const char* read_key, const char* write_key,
              std::map<std::string, std::map<std::string, uint64_t>>* io) {
  if (!text) return;
  for (const auto& line : Lines(*text)) {
    auto f = Fields(line);
    if (f.size() != 3 || f[0].find(':') == std::string::npos) continue;
    auto v = ParseUint64(f[2]);
    if (!v) continue;
    if (f[1] == "Read") (*io)[f[0]][read_key] += *v;
    if (f[1] == "Write") (*io)[f[0]][write_key] += *v;
  }
}

const std::string* PreferRecursive(const FileContents& files, const std::string& name) {
  // The _recursive variant also counts the container's own sub-cgroups.
  const std::string* r = Find(files, name + "_recursive");
  return r ? r : Find(files, name);
}

}  // namespace

std::map<std::string, uint64_t> ParseFlatKeyed(std::string_view text) {
  std::map<std::string, uint64_t> out;
  for (const auto& line : Lines(text)) {
    auto f = Fields(line);
    if (f.size() != 2) continue;
    if (auto v = ParseUint64(f[1])) out[f[0]] = *v;
  }
  return out;
}

std::vector<CgroupFile> StatsFilesV1() {
  return {
      {"memory", "memory.usage_in_bytes"},
      {"memory", "memory.max_usage_in_bytes"},
      {"memory", "memory.limit_in_bytes"},
      {"memory", "memory.failcnt"},
      {"memory", "memory.oom_control"},
      {"memory", "memory.memsw.usage_in_bytes"},
      {"memory", "memory.stat"},
      {"cpuacct", "cpuacct.usage"},
      {"cpuacct", "cpuacct.usage_user"},
      {"cpuacct", "cpuacct.usage_sys"},
      {"cpuacct", "cpuacct.usage_percpu"},
      {"cpuacct", "cpuacct.stat"},
      {"cpu", "cpu.stat"},
      {"pids", "pids.current"},
      {"pids", "pids.max"},
      {"blkio", "blkio.throttle.io_service_bytes_recursive"},
      {"blkio", "blkio.throttle.io_service_bytes"},
      {"blkio", "blkio.throttle.io_serviced_recursive"},
      {"blkio", "blkio.throttle.io_serviced"},
  };
}

std::vector<CgroupFile> StatsFilesV2() {
  return {
      {"memory", "memory.current"}, {"memory", "memory.peak"},
      {"memory", "memory.max"},     {"memory", "memory.events"},
      {"memory", "memory.stat"},    {"memory", "memory.swap.current"},
      {"cpu", "cpu.stat"},          {"pids", "pids.current"},
      {"pids", "pids.max"},         {"io", "io.stat"},
  };
}

Stats StatsFromV1(const FileContents& files) {
  Stats s;
  s.memory_usage = Single(files, "memory.usage_in_bytes");
  s.memory_max_usage = Single(files, "memory.max_usage_in_bytes");
  s.memory_limit = Limit(files, "memory.limit_in_bytes");
  s.memory_failcnt = Single(files, "memory.failcnt");
  s.oom_kills = Key(Flat(files, "memory.oom_control"), "oom_kill");
  if (Find(files, "memory.memsw.usage_in_bytes")) {
    uint64_t memsw = Single(files, "memory.memsw.usage_in_bytes");
    s.swap_usage = memsw > s.memory_usage ? memsw - s.memory_usage : 0;
  }
  s.memory_stat = Flat(files, "memory.stat");

  s.cpu_usage_ns = Single(files, "cpuacct.usage");
  if (Find(files, "cpuacct.usage_user") || Find(files, "cpuacct.usage_sys")) {
    s.cpu_user_ns = Single(files, "cpuacct.usage_user");
    s.cpu_system_ns = Single(files, "cpuacct.usage_sys");
  } else {
    // cpuacct.stat counts USER_HZ ticks, which is 100 Hz in the x86/arm64 ABI.
    constexpr uint64_t kNsPerTick = 1000000000 / 100;
    auto stat = Flat(files, "cpuacct.stat");
    s.cpu_user_ns = Key(stat, "user") * kNsPerTick;
    s.cpu_system_ns = Key(stat, "system") * kNsPerTick;
  }
  if (const std::string* percpu = Find(files, "cpuacct.usage_percpu")) {
    for (const auto& f : Fields(TrimWhitespace(*percpu)))
      if (auto v = ParseUint64(f)) s.cpu_per_cpu_ns.push_back(*v);
  }
  auto cpu_stat = Flat(files, "cpu.stat");
  s.cpu_nr_periods = Key(cpu_stat, "nr_periods");
  s.cpu_nr_throttled = Key(cpu_stat, "nr_throttled");
  s.cpu_throttled_ns = Key(cpu_stat, "throttled_time");

  s.pids_current = Single(files, "pids.current");
  s.pids_limit = Limit(files, "pids.max");

  AddBlkio(PreferRecursive(files, "blkio.throttle.io_service_bytes"), "read_bytes", "write_bytes",
           &s.io);
  AddBlkio(PreferRecursive(files, "blkio.throttle.io_serviced"), "reads", "writes", &s.io);
  return s;
}

Stats StatsFromV2(const FileContents& files) {
  Stats s;
  s.memory_usage = Single(files, "memory.current");
  s.memory_max_usage = Single(files, "memory.peak");
  s.memory_limit = Limit(files, "memory.max");
  auto events = Flat(files, "memory.events");
  s.memory_failcnt = Key(events, "max");
  s.oom_kills = Key(events, "oom_kill");
  s.swap_usage = Single(files, "memory.swap.current");
  s.memory_stat = Flat(files, "memory.stat");

  auto cpu = Flat(files, "cpu.stat");
  s.cpu_usage_ns = Key(cpu, "usage_usec") * 1000;
  s.cpu_user_ns = Key(cpu, "user_usec") * 1000;
  s.cpu_system_ns = Key(cpu, "system_usec") * 1000;
  s.cpu_nr_periods = Key(cpu, "nr_periods");
  s.cpu_nr_throttled = Key(cpu, "nr_throttled");
  s.cpu_throttled_ns = Key(cpu, "throttled_usec") * 1000;

  s.pids_current = Single(files, "pids.current");
  s.pids_limit = Limit(files, "pids.max");

  // io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6" per device.
  static constexpr std::pair<const char*, const char*> kIoKeys[] = {
      {"rbytes", "read_bytes"}, {"wbytes", "write_bytes"},   {"rios", "reads"},
      {"wios", "writes"},       {"dbytes", "discard_bytes"}, {"dios", "discards"},
  };
  if (const std::string* io = Find(files, "io.stat")) {
    for (const auto& line : Lines(*io)) {
      auto f = Fields(line);
      if (f.empty() || f[0].find(':') == std::string::npos) continue;
      for (size_t i = 1; i < f.size(); ++i) {
        size_t eq = f[i].find('=');
        if (eq == std::string::npos) continue;
        std::string k = f[i].substr(0, eq);
        auto v = ParseUint64(std::string_view(f[i]).substr(eq + 1));
        if (!v) continue;
        for (const auto& [from, to] : kIoKeys)
          if (k == from) s.io[f[0]][to] = *v;
      }
    }
  }
  return s;
}

}  // namespace moat::cgroups
