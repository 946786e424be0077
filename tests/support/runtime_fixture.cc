#include "support/runtime_fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#ifndef MOAT_RUNTIME_PATH
#error "MOAT_RUNTIME_PATH must name the moat-runtime binary under test"
#endif

namespace moat::testing {

std::string RuntimeTest::suite_error_;
std::string RuntimeTest::work_dir_;
std::string RuntimeTest::rootfs_;
std::vector<std::string> RuntimeTest::cgroup_parents_;
std::string RuntimeTest::state_root_;
json RuntimeTest::default_spec_;
int RuntimeTest::test_counter_ = 0;
int RuntimeTest::id_counter_ = 0;

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool WriteFile(const std::string& path, const std::string& data, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      close(fd);
      errno = e;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return close(fd) == 0;
}

bool PathExists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

std::vector<std::string> Words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

bool InInitialUserNamespace() {
  return Words(ReadFileOrEmpty("/proc/self/uid_map")) ==
         std::vector<std::string>{"0", "0", "4294967295"};
}

ino_t InodeOf(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

std::string StatusField(const std::string& status_text, const std::string& key) {
  for (const auto& line : Lines(status_text)) {
    if (line.compare(0, key.size() + 1, key + ":") == 0) return Trim(line.substr(key.size() + 1));
  }
  return "";
}

namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string::npos ? std::string::npos : pos - start));
    if (pos == std::string::npos) break;
    start = pos + 1;
  }
  return out;
}

struct MountEntry {
  std::string root;
  std::string mount_point;
  std::string fstype;
  std::string super_options;
};

std::string UnescapeMountinfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<MountEntry> ReadMountinfo() {
  std::vector<MountEntry> out;
  for (const auto& line : Lines(ReadFileOrEmpty("/proc/self/mountinfo"))) {
    std::vector<std::string> f;
    for (auto& x : Split(line, ' '))
      if (!x.empty()) f.push_back(x);
    size_t dash = 0;
    for (size_t i = 6; i < f.size(); ++i)
      if (f[i] == "-") {
        dash = i;
        break;
      }
    if (dash == 0 || dash + 3 >= f.size()) continue;
    out.push_back({UnescapeMountinfo(f[3]), UnescapeMountinfo(f[4]), f[dash + 1], f[dash + 3]});
  }
  return out;
}

int RemoveEntry(const char* path, const struct stat*, int type, struct FTW*) {
  if (type == FTW_DP) return rmdir(path) == 0 ? 0 : (errno == ENOENT ? 0 : -1);
  return unlink(path) == 0 || errno == ENOENT ? 0 : -1;
}

// Removes a cgroup directory and its sub-cgroups (rmdir only: cgroupfs files go with it).
void RemoveCgroupDir(const std::string& dir) {
  if (DIR* d = opendir(dir.c_str())) {
    std::vector<std::string> subs;
    while (dirent* e = readdir(d)) {
      if (e->d_type == DT_DIR && strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
        subs.push_back(dir + "/" + e->d_name);
    }
    closedir(d);
    for (const auto& s : subs) RemoveCgroupDir(s);
  }
  for (int i = 0; i < 100 && rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i) usleep(20000);
}

// True when /proc/<pid>/cgroup places the process in a cgroup ".../moat/<id>" (or below).
bool InContainerCgroup(pid_t pid, const std::string& id) {
  std::string needle = "/moat/" + id;
  for (const auto& line : Lines(ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/cgroup"))) {
    size_t at = line.find(needle);
    if (at == std::string::npos) continue;
    size_t end = at + needle.size();
    if (end == line.size() || line[end] == '/') return true;
  }
  return false;
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> out;
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      pid_t p = static_cast<pid_t>(atoi(e->d_name));
      if (p > 0) out.push_back(p);
    }
    closedir(d);
  }
  return out;
}

}  // namespace

std::string CmdlineOf(pid_t pid) {
  std::string c = ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/cmdline");
  for (char& ch : c)
    if (ch == '\0') ch = ' ';
  return Trim(c);
}

bool ProcessGone(pid_t pid) {
  std::string stat = ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return true;
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() &&
         (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X');
}

bool RemoveTree(const std::string& path) {
  if (path.empty() || path == "/") return false;
  if (!MountsMentioning(path).empty()) return false;
  if (!PathExists(path)) return true;
  return nftw(path.c_str(), RemoveEntry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) == 0;
}

std::vector<std::string> MountsMentioning(const std::string& needle) {
  std::vector<std::string> out;
  for (const auto& m : ReadMountinfo())
    if (m.mount_point.find(needle) != std::string::npos || m.root.find(needle) != std::string::npos)
      out.push_back(m.mount_point);
  return out;
}

std::map<std::string, std::string> OwnCgroupDirs() {
  static const std::set<std::string> kControllers = {
      "cpu",      "cpuacct", "cpuset",     "memory",  "devices", "freezer", "net_cls",
      "net_prio", "blkio",   "perf_event", "hugetlb", "pids",    "rdma",    "misc"};
  struct Hierarchy {
    std::set<std::string> controllers;
    std::string mount_point, root;
  };
  std::vector<Hierarchy> v1;
  std::optional<Hierarchy> v2;
  for (const auto& m : ReadMountinfo()) {
    if (m.fstype == "cgroup2") {
      if (!v2) v2 = Hierarchy{{}, m.mount_point, m.root};
    } else if (m.fstype == "cgroup") {
      Hierarchy h{{}, m.mount_point, m.root};
      for (const auto& o : Split(m.super_options, ','))
        if (kControllers.count(o)) h.controllers.insert(o);
      if (!h.controllers.empty()) v1.push_back(h);
    }
  }
  auto under = [](const std::string& path, const std::string& root) -> std::string {
    if (root.empty() || root == "/") return path == "/" ? "" : path;
    if (path == root) return "";
    if (path.compare(0, root.size() + 1, root + "/") == 0) return path.substr(root.size());
    return "";
  };
  std::map<std::string, std::string> out;
  for (const auto& line : Lines(ReadFileOrEmpty("/proc/self/cgroup"))) {
    size_t a = line.find(':');
    size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::string ctrls = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (ctrls.empty()) {
      if (v2) out["unified"] = v2->mount_point + under(path, v2->root);
      continue;
    }
    std::string first = Split(ctrls, ',')[0];
    for (const auto& h : v1)
      if (h.controllers.count(first)) out[ctrls] = h.mount_point + under(path, h.root);
  }
  return out;
}

bool IsCgroupV2Unified() {
  constexpr decltype(statfs::f_type) kCgroup2SuperMagic = 0x63677270;  // CGROUP2_SUPER_MAGIC
  struct statfs fs {};
  if (statfs("/sys/fs/cgroup", &fs) == 0 && fs.f_type == kCgroup2SuperMagic) return true;
  return PathExists("/sys/fs/cgroup/cgroup.controllers");
}

uint64_t KeyedValue(const std::string& text, const std::string& key, uint64_t fallback) {
  for (const auto& line : Lines(text)) {
    auto w = Words(line);
    if (w.size() == 2 && w[0] == key && !w[1].empty() &&
        w[1].find_first_not_of("0123456789") == std::string::npos)
      return std::stoull(w[1]);
  }
  return fallback;
}

std::string RuntimeTest::RuntimePath() { return MOAT_RUNTIME_PATH; }

void RuntimeTest::SleepMs(int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void RuntimeTest::SetUpTestSuite() {
  // Once per binary: every suite deriving from this fixture shares the rootfs and state root;
  // they are removed at exit.
  static bool done = false;
  if (done) return;
  done = true;
  atexit(RemoveSuiteFiles);
  if (geteuid() != 0) {
    suite_error_ = "SKIP: the privileged runtime tests need root";
    return;
  }
  // Container processes left by `create` and `run -d` are reparented to us, and PID 1 on
  // these machines does not reap orphans (KERNEL.md).
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    suite_error_ = std::string("prctl(PR_SET_CHILD_SUBREAPER): ") + strerror(errno);
    return;
  }
  signal(SIGPIPE, SIG_IGN);  // Command restores the default in its children
  std::string tmpl = "/tmp/moat-it-" + std::to_string(getpid()) + "-XXXXXX";
  if (!mkdtemp(tmpl.data())) {
    suite_error_ = "mkdtemp: " + std::string(strerror(errno));
    return;
  }
  work_dir_ = tmpl;
  // Traversable by a user namespace's root, which is "other" to these host-owned dirs.
  chmod(work_dir_.c_str(), 0755);
  rootfs_ = work_dir_ + "/rootfs";
  for (const char* d : {"", "/bin", "/dev", "/proc", "/sys", "/tmp", "/etc", "/root"}) {
    if (mkdir((rootfs_ + d).c_str(), 0755) != 0) {
      suite_error_ = "mkdir " + rootfs_ + d + ": " + strerror(errno);
      return;
    }
  }
  chmod((rootfs_ + "/tmp").c_str(), 01777);
  std::string busybox = ReadFileOrEmpty("/bin/busybox");
  if (busybox.empty()) {
    suite_error_ = "/bin/busybox is missing (tools/install-deps.sh installs busybox-static)";
    return;
  }
  if (!WriteFile(rootfs_ + "/bin/busybox", busybox, 0755)) {
    suite_error_ = "write busybox: " + std::string(strerror(errno));
    return;
  }
  CommandResult list = RunCommand({"/bin/busybox", "--list"});
  if (list.exit_code != 0) {
    suite_error_ = "busybox --list: " + list.Describe();
    return;
  }
  for (const auto& applet : Lines(list.out)) {
    if (applet.empty() || applet == "busybox") continue;
    if (symlink("busybox", (rootfs_ + "/bin/" + applet).c_str()) != 0) {
      suite_error_ = "symlink " + applet + ": " + strerror(errno);
      return;
    }
  }
  WriteFile(rootfs_ + "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
  WriteFile(rootfs_ + "/etc/group", "root:x:0:\n");

  state_root_ = "/run/moat-it-" + std::to_string(getpid());
  RemoveTree(state_root_);  // a stale one from a crashed run with the same pid
  if (mkdir(state_root_.c_str(), 0700) != 0) {
    suite_error_ = "mkdir " + state_root_ + ": " + strerror(errno);
    return;
  }

  for (const auto& [hierarchy, dir] : OwnCgroupDirs()) cgroup_parents_.push_back(dir + "/moat");

  std::string spec_dir = work_dir_ + "/spec";
  mkdir(spec_dir.c_str(), 0755);
  CommandResult spec = RunCommand({RuntimePath(), "spec", "--bundle", spec_dir});
  if (spec.exit_code != 0) {
    suite_error_ = "moat-runtime spec: " + spec.Describe();
    return;
  }
  default_spec_ = json::parse(ReadFileOrEmpty(spec_dir + "/config.json"), nullptr, false);
  if (default_spec_.is_discarded() || !default_spec_.is_object()) {
    suite_error_ = "moat-runtime spec wrote a config.json that is not a JSON object";
    return;
  }
}

void RuntimeTest::TearDownTestSuite() { ReapExitedChildren(); }

void RuntimeTest::RemoveSuiteFiles() {
  ReapExitedChildren();
  if (!work_dir_.empty() && !RemoveTree(work_dir_))
    fprintf(stderr, "runtime tests: could not remove %s (a mount left in it?)\n",
            work_dir_.c_str());
  if (!state_root_.empty()) RemoveTree(state_root_);
  // Only when empty: another test binary may still have containers there (rmdir then fails,
  // EBUSY), or be about to make one (moat-runtime makes a parent again that vanishes under it).
  for (const auto& dir : cgroup_parents_) rmdir(dir.c_str());
  cgroup_parents_.clear();
  work_dir_.clear();
  state_root_.clear();
}

void RuntimeTest::SetUp() {
  if (suite_error_.rfind("SKIP: ", 0) == 0) GTEST_SKIP() << suite_error_.substr(6);
  ASSERT_TRUE(suite_error_.empty()) << "suite setup failed: " << suite_error_;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info->name();
  for (char& ch : name)
    if (ch == '/') ch = '_';  // parameterized tests: "Case/Param"
  scratch_ = work_dir_ + "/" + name + "-" + std::to_string(++test_counter_);
  bundle_ = scratch_ + "/bundle";
  ASSERT_EQ(mkdir(scratch_.c_str(), 0755), 0) << scratch_ << ": " << strerror(errno);
  ASSERT_EQ(mkdir(bundle_.c_str(), 0755), 0) << bundle_ << ": " << strerror(errno);
}

void RuntimeTest::TearDown() {
  if (scratch_.empty()) return;  // skipped or failed before SetUp made anything
  for (const auto& id : ids_) {
    CommandResult r = Runtime({"delete", "--force", id});
    if (r.exit_code != 0)
      ADD_FAILURE() << "teardown: delete --force " << id << ": " << r.Describe();
  }
  // Container inits die asynchronously after SIGKILL; they are our children (subreaper).
  WaitFor(
      [] {
        ReapExitedChildren();
        return LiveChildren().empty();
      },
      5000);
  CheckNothingLeaked();
  if (!RemoveTree(scratch_)) ADD_FAILURE() << "teardown: could not remove " << scratch_;
}

void RuntimeTest::CheckNothingLeaked() {
  // 1. No container state directory (dot-names such as .seccomp-cache are the runtime's own).
  if (DIR* d = opendir(state_root_.c_str())) {
    std::vector<std::string> left;
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') left.push_back(e->d_name);
    closedir(d);
    for (const auto& name : left) {
      ADD_FAILURE() << "leak: state directory " << state_root_ << "/" << name;
      RemoveTree(state_root_ + "/" + name);
    }
  }
  // 2. No process in a cgroup of ours, then no cgroup directory.
  for (const auto& id : ids_) {
    for (pid_t p : AllPids()) {
      if (p == getpid() || !InContainerCgroup(p, id)) continue;
      ADD_FAILURE() << "leak: process " << p << " (" << CmdlineOf(p) << ") still in the cgroup of "
                    << id;
      kill(p, SIGKILL);
    }
    for (const auto& [hierarchy, dir] : CgroupDirs(id)) {
      if (!PathExists(dir)) continue;
      ADD_FAILURE() << "leak: cgroup " << dir << " (" << hierarchy << ")";
      if (hierarchy == "freezer") WriteFile(dir + "/freezer.state", "THAWED");
      RemoveCgroupDir(dir);
    }
  }
  // 3. No mount on the host mentions our rootfs or bundles.
  auto mounts = MountsMentioning(work_dir_);
  for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) {
    ADD_FAILURE() << "leak: mount on " << *it;
    umount2(it->c_str(), MNT_DETACH);
  }
  // 4. No live child: every container process that was reparented to us is gone.
  for (pid_t p : LiveChildren()) {
    ADD_FAILURE() << "leak: live child process " << p << " (" << CmdlineOf(p) << ")";
    kill(p, SIGKILL);
    waitpid(p, nullptr, 0);
  }
  ReapExitedChildren();
}

std::string RuntimeTest::NewId() {
  std::string id = "it-" + std::to_string(getpid()) + "-" + std::to_string(++id_counter_);
  ids_.push_back(id);
  return id;
}

CommandResult RuntimeTest::Runtime(const std::vector<std::string>& args,
                                   const CommandOptions& options) {
  return StartRuntime(args, options)->Wait();
}

std::unique_ptr<Command> RuntimeTest::StartRuntime(const std::vector<std::string>& args,
                                                   const CommandOptions& options) {
  std::vector<std::string> argv = {RuntimePath(), "--root", state_root_};
  argv.insert(argv.end(), args.begin(), args.end());
  return std::make_unique<Command>(argv, options);
}

json RuntimeTest::Config(const std::vector<std::string>& args) const {
  json c = default_spec_;
  c["root"]["path"] = rootfs_;
  c["root"]["readonly"] = true;
  c["process"]["args"] = args;
  return c;
}

void RuntimeTest::AddTmpfs(json& config, const std::string& destination) {
  config["mounts"].push_back({{"destination", destination},
                              {"type", "tmpfs"},
                              {"source", "tmpfs"},
                              {"options", {"nosuid", "nodev", "mode=1777", "size=16m"}}});
}

void RuntimeTest::AddBind(json& config, const std::string& source, const std::string& destination) {
  config["mounts"].push_back({{"destination", destination},
                              {"type", "bind"},
                              {"source", source},
                              {"options", {"rbind", "rw"}}});
}

void RuntimeTest::WriteConfig(const json& config) const { WriteConfigText(config.dump(2)); }

void RuntimeTest::WriteConfigText(const std::string& text) const {
  ASSERT_TRUE(WriteFile(bundle_ + "/config.json", text)) << strerror(errno);
}

CommandResult RuntimeTest::RunContainer(const json& config, const std::string& id,
                                        const std::vector<std::string>& extra_flags,
                                        const CommandOptions& options) {
  WriteConfig(config);
  std::vector<std::string> args = {"run", "--bundle", bundle_};
  args.insert(args.end(), extra_flags.begin(), extra_flags.end());
  args.push_back(id);
  return Runtime(args, options);
}

pid_t RuntimeTest::CreateAndStart(const json& config, const std::string& id) {
  WriteConfig(config);
  CommandResult c = Runtime({"create", "--bundle", bundle_, id});
  EXPECT_EQ(c.exit_code, 0) << "create: " << c.Describe();
  if (c.exit_code != 0) return 0;
  CommandResult s = Runtime({"start", id});
  EXPECT_EQ(s.exit_code, 0) << "start: " << s.Describe();
  if (s.exit_code != 0) return 0;
  json st = State(id);
  return st.is_object() ? st.value("pid", 0) : 0;
}

json RuntimeTest::State(const std::string& id) {
  CommandResult r = Runtime({"state", id});
  if (r.exit_code != 0) {
    ADD_FAILURE() << "state " << id << ": " << r.Describe();
    return json();
  }
  json j = json::parse(r.out, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    ADD_FAILURE() << "state " << id << " is not a JSON object: " << r.out;
    return json();
  }
  return j;
}

std::string RuntimeTest::Status(const std::string& id) {
  json j = State(id);
  return j.is_object() ? j.value("status", "") : "";
}

json RuntimeTest::Stats(const std::string& id) {
  CommandResult r = Runtime({"events", "--stats", id});
  if (r.exit_code != 0) {
    ADD_FAILURE() << "events --stats " << id << ": " << r.Describe();
    return json();
  }
  json j = json::parse(r.out, nullptr, false);
  if (j.is_discarded() || !j.contains("data")) {
    ADD_FAILURE() << "events --stats " << id << ": not a stats event: " << r.out;
    return json();
  }
  return j["data"];
}

std::map<std::string, std::string> RuntimeTest::CgroupDirs(const std::string& id) const {
  std::map<std::string, std::string> out;
  for (const auto& [hierarchy, dir] : OwnCgroupDirs()) out[hierarchy] = dir + "/moat/" + id;
  return out;
}

std::map<std::string, std::string> RuntimeTest::ManagedCgroupDirs(const std::string& id) const {
  auto all = CgroupDirs(id);
  if (all.size() > 1) all.erase("unified");  // hybrid: the v1 hierarchies hold the controllers
  return all;
}

}  // namespace moat::testing
