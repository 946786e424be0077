// moat-runtime run by an unprivileged user (rootless, as `runc --rootless`): the caller's own
// id mapped directly, subordinate ranges through newuidmap/newgidmap, a mapping outside the
// user's ranges refused, and the lifecycle (create/start/state/exec/kill/delete) with no cgroup.
//
// The test process is root. It never changes the host's /etc/passwd, /etc/group, /etc/subuid or
// /etc/subgid: each runtime invocation runs in a private mount namespace (`unshare --mount
// --propagation private`) where copies of those files, holding an extra test user (a unique
// name, a uid of 1,500,000 or more, a subuid/subgid range of 65536 that overlaps nothing in
// the host's files), are bound over the originals; then it drops to that user with setpriv
// (--clear-groups), XDG_RUNTIME_DIR in a directory of the user's, and no --root: the state
// root is the rootless default, $XDG_RUNTIME_DIR/moat-runtime. newuidmap, setuid root, reads
// the bound copies.

#include <dirent.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "support/runtime_fixture.h"

namespace moat::testing {
namespace {

constexpr uint32_t kRangeSize = 65536;

// The first executable `name` in the usual system directories ("" when none).
std::string FindTool(const std::string& name) {
  for (const char* dir : {"/usr/sbin", "/usr/bin", "/sbin", "/bin"}) {
    std::string p = std::string(dir) + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// Every [start, start+count) that the host's id files name: passwd/group ids (count 1) and
// subuid/subgid ranges.
std::vector<std::pair<uint64_t, uint64_t>> HostIdRanges() {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  auto number = [](const std::string& s, uint64_t* v) {
    if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
    *v = std::stoull(s);
    return true;
  };
  for (const char* f : {"/etc/passwd", "/etc/group"}) {
    for (const auto& line : Lines(ReadFileOrEmpty(f))) {
      std::vector<std::string> fields;
      size_t start = 0;
      for (size_t pos; (pos = line.find(':', start)) != std::string::npos; start = pos + 1)
        fields.push_back(line.substr(start, pos - start));
      fields.push_back(line.substr(start));
      uint64_t v;
      if (fields.size() > 2 && number(fields[2], &v)) out.push_back({v, 1});
      if (fields.size() > 3 && std::string(f) == "/etc/passwd" && number(fields[3], &v))
        out.push_back({v, 1});
    }
  }
  for (const char* f : {"/etc/subuid", "/etc/subgid"}) {
    for (const auto& line : Lines(ReadFileOrEmpty(f))) {
      size_t a = line.find(':');
      size_t b = a == std::string::npos ? a : line.find(':', a + 1);
      if (b == std::string::npos) continue;
      uint64_t s, c;
      if (number(line.substr(a + 1, b - a - 1), &s) && number(line.substr(b + 1), &c))
        out.push_back({s, c});
    }
  }
  return out;
}

bool Overlaps(const std::vector<std::pair<uint64_t, uint64_t>>& ranges, uint64_t start,
              uint64_t count) {
  for (const auto& [s, c] : ranges)
    if (start < s + c && s < start + count) return true;
  return false;
}

json Mapping(uint32_t container_id, uint32_t host_id, uint32_t size) {
  return {{"containerID", container_id}, {"hostID", host_id}, {"size", size}};
}

class RootlessTest : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (!InInitialUserNamespace())
      GTEST_SKIP() << "making a test user needs root in the initial user namespace";
    for (const char* tool : {"newuidmap", "newgidmap", "unshare", "setpriv"})
      if (FindTool(tool).empty())
        GTEST_SKIP() << tool << " is not installed (tools/install-deps.sh: uidmap, util-linux)";
    // The wrapper binds copies over these; it never creates them on the host.
    for (const char* f : {"/etc/passwd", "/etc/group", "/etc/subuid", "/etc/subgid"})
      if (!PathExists(f)) GTEST_SKIP() << f << " does not exist on this host";

    // A user and ranges that nothing on the host names.
    auto taken = HostIdRanges();
    std::mt19937_64 rng(static_cast<uint64_t>(getpid()) * 1000003u ^
                        static_cast<uint64_t>(time(nullptr)));
    for (int attempt = 0; attempt < 1000; ++attempt) {
      uint64_t uid = 1500000 + rng() % 500000;
      uint64_t sub = 100000000 + (rng() % 20000) * kRangeSize;
      if (Overlaps(taken, uid, 1) || Overlaps(taken, sub, kRangeSize) ||
          (uid >= sub && uid < sub + kRangeSize))
        continue;
      uid_ = static_cast<uid_t>(uid);
      sub_ = static_cast<uint32_t>(sub);
      break;
    }
    ASSERT_NE(uid_, 0u) << "no free uid and subuid range";
    user_ = "moatrl" + std::to_string(uid_);
    ASSERT_EQ(getpwnam(user_.c_str()), nullptr) << user_ << " exists on the host";

    // Copies of the id files with the user added, bound over the originals by the wrapper.
    etc_ = scratch() + "/etc";
    ASSERT_EQ(mkdir(etc_.c_str(), 0755), 0) << strerror(errno);
    std::string u = std::to_string(uid_), s = std::to_string(sub_);
    ASSERT_TRUE(WriteFile(etc_ + "/passwd", ReadFileOrEmpty("/etc/passwd") + user_ + ":x:" + u +
                                                ":" + u + "::" + scratch() + "/home:/bin/sh\n"));
    ASSERT_TRUE(
        WriteFile(etc_ + "/group", ReadFileOrEmpty("/etc/group") + user_ + ":x:" + u + ":\n"));
    for (const char* f : {"subuid", "subgid"})
      ASSERT_TRUE(WriteFile(etc_ + "/" + f, ReadFileOrEmpty(std::string("/etc/") + f) + user_ +
                                                ":" + s + ":" + std::to_string(kRangeSize) + "\n"));

    // The user's own directories: $HOME and $XDG_RUNTIME_DIR (0700, as pam_systemd makes it).
    home_ = scratch() + "/home";
    xdg_ = home_ + "/xdg";
    for (const auto& d : {home_, xdg_}) {
      ASSERT_EQ(mkdir(d.c_str(), 0700), 0) << d << ": " << strerror(errno);
      ASSERT_EQ(chown(d.c_str(), uid_, uid_), 0) << d << ": " << strerror(errno);
    }
    wrapper_ = scratch() + "/as-user.sh";
    ASSERT_TRUE(WriteFile(wrapper_,
                          "set -e\n"
                          "for f in passwd group subuid subgid; do mount --bind \"" +
                              etc_ +
                              "/$f\" \"/etc/$f\"; done\n"
                              "exec setpriv --reuid=" +
                              u + " --regid=" + u +
                              " --clear-groups env -i "
                              "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=" +
                              home_ + " XDG_RUNTIME_DIR=" + xdg_ + " \"$@\"\n",
                          0755));
  }

  void TearDown() override {
    if (!xdg_.empty()) {
      for (const auto& id : user_ids_) {
        CommandResult r = AsUser({RuntimePath(), "delete", "--force", id});
        if (r.exit_code != 0)
          ADD_FAILURE() << "teardown: delete --force " << id << ": " << r.Describe();
      }
      // Cgroups a test made for the user (deepest last in the list), now that its containers
      // are gone; a container cgroup left in them is a leak the base fixture cannot see.
      for (auto it = cgroups_to_remove_.rbegin(); it != cgroups_to_remove_.rend(); ++it)
        if (rmdir(it->c_str()) != 0 && errno != ENOENT)
          ADD_FAILURE() << "teardown: rmdir " << *it << ": " << strerror(errno);
      // Nothing of the user's containers is left in its state root.
      for (const auto& name : StateEntries())
        ADD_FAILURE() << "leak: state directory " << state_root_user() << "/" << name;
    }
    // The fixture reaps the containers (we are their subreaper), checks for leaked processes
    // and mounts, and removes scratch() with the user's directories.
    RuntimeTest::TearDown();
  }

  // `argv` as the test user, in the private mount namespace.
  CommandResult AsUser(const std::vector<std::string>& argv, const CommandOptions& options = {}) {
    std::vector<std::string> full = {FindTool("unshare"), "--mount", "--propagation",
                                     "private",           "/bin/sh", wrapper_};
    full.insert(full.end(), argv.begin(), argv.end());
    return RunCommand(full, options);
  }
  // `moat-runtime ARGS...` as the test user (default --root).
  CommandResult UserRuntime(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {RuntimePath()};
    argv.insert(argv.end(), args.begin(), args.end());
    return AsUser(argv);
  }
  std::string NewUserId() {
    std::string id = NewId();
    user_ids_.push_back(id);
    return id;
  }
  json UserState(const std::string& id) {
    CommandResult r = UserRuntime({"state", id});
    if (r.exit_code != 0) {
      ADD_FAILURE() << "state " << id << ": " << r.Describe();
      return json();
    }
    json j = json::parse(r.out, nullptr, false);
    if (!j.is_object()) ADD_FAILURE() << "state " << id << ": " << r.out;
    return j.is_object() ? j : json();
  }
  std::string state_root_user() const { return xdg_ + "/moat-runtime"; }
  // Container entries (not dot-names) in the user's state root.
  std::vector<std::string> StateEntries() const {
    std::vector<std::string> out;
    if (DIR* d = opendir(state_root_user().c_str())) {
      while (dirent* e = readdir(d))
        if (e->d_name[0] != '.') out.push_back(e->d_name);
      closedir(d);
    }
    return out;
  }

  // `spec --rootless` written by the user, with the shared rootfs and `args`.
  json RootlessConfig(const std::vector<std::string>& args) {
    std::string dir = home_ + "/spec";
    CommandResult mk = AsUser({"mkdir", dir});
    EXPECT_EQ(mk.exit_code, 0) << mk.Describe();
    CommandResult spec = UserRuntime({"spec", "--rootless", "--bundle", dir});
    EXPECT_EQ(spec.exit_code, 0) << spec.Describe();
    json c = json::parse(ReadFileOrEmpty(dir + "/config.json"), nullptr, false);
    EXPECT_TRUE(c.is_object()) << "spec --rootless wrote no JSON object";
    RemoveTree(dir);
    if (!c.is_object()) return json::object();
    c["root"]["path"] = rootfs();
    c["root"]["readonly"] = true;
    c["process"]["args"] = args;
    return c;
  }
  // container 0 -> the user, 1..65536 -> its subordinate range, for uids and gids.
  json WithSubordinateRanges(json c, uint32_t sub_start) const {
    json maps = json::array({Mapping(0, uid_, 1), Mapping(1, sub_start, kRangeSize)});
    c["linux"]["uidMappings"] = maps;
    c["linux"]["gidMappings"] = maps;
    return c;
  }

  uid_t uid_ = 0;
  uint32_t sub_ = 0;
  std::vector<std::string> cgroups_to_remove_;
  std::string user_, etc_, home_, xdg_, wrapper_;
  std::vector<std::string> user_ids_;
};

// `spec --rootless` as is: the user's own id, mapped by the runtime itself (no helper).
TEST_F(RootlessTest, SpecRootlessRunsAsTheUser) {
  std::string id = NewUserId();
  WriteConfig(RootlessConfig({"sh", "-c", "id -u; cat /proc/self/uid_map"}));
  CommandResult r = UserRuntime({"run", "--bundle", bundle(), id});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0], "0");
  EXPECT_EQ(Words(lines[1]), (std::vector<std::string>{"0", std::to_string(uid_), "1"}));
  EXPECT_TRUE(StateEntries().empty()) << "run without --keep leaves no state";

  // Seen from the host, the container's root is the user.
  std::string id2 = NewUserId();
  WriteConfig(RootlessConfig({"sleep", "30"}));
  CommandResult c = UserRuntime({"create", "--bundle", bundle(), id2});
  ASSERT_EQ(c.exit_code, 0) << c.Describe();
  ASSERT_TRUE(PathExists(state_root_user() + "/" + id2));
  CommandResult s = UserRuntime({"start", id2});
  ASSERT_EQ(s.exit_code, 0) << s.Describe();
  json st = UserState(id2);
  EXPECT_EQ(st.value("status", ""), "running");
  pid_t pid = st.value("pid", 0);
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(WaitFor([&] { return CmdlineOf(pid) == "sleep 30"; })) << CmdlineOf(pid);
  std::string status = ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/status");
  std::string u = std::to_string(uid_);
  EXPECT_EQ(Words(StatusField(status, "Uid")), (std::vector<std::string>{u, u, u, u}));
  EXPECT_EQ(Words(StatusField(status, "Gid")), (std::vector<std::string>{u, u, u, u}));
  EXPECT_EQ(Words(ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/uid_map")),
            (std::vector<std::string>{"0", u, "1"}));

  // delete --force of the running container: process and state gone.
  CommandResult d = UserRuntime({"delete", "--force", id2});
  ASSERT_EQ(d.exit_code, 0) << d.Describe();
  EXPECT_TRUE(WaitFor([&] {
    ReapExitedChildren();
    return ProcessGone(pid);
  }));
  EXPECT_FALSE(PathExists(state_root_user() + "/" + id2));
}

// Several ranges, written by newuidmap/newgidmap from the user's /etc/subuid and /etc/subgid.
TEST_F(RootlessTest, SubordinateRangesThroughNewuidmap) {
  // A directory the container's root (the user) owns: a file chowned to 1000 inside must land
  // on the host as the 1000th id of the range (sub_ + 999), which only the second mapping gives.
  std::string data = scratch() + "/data";
  ASSERT_EQ(mkdir(data.c_str(), 0755), 0) << strerror(errno);
  ASSERT_EQ(chown(data.c_str(), uid_, uid_), 0) << strerror(errno);
  json c = WithSubordinateRanges(
      RootlessConfig({"sh", "-c",
                      "cat /proc/self/uid_map /proc/self/gid_map; touch /tmp/f && "
                      "chown 1000:1000 /tmp/f && stat -c %u:%g /tmp/f"}),
      sub_);
  AddBind(c, data, "/tmp");
  std::string id = NewUserId();
  WriteConfig(c);
  CommandResult r = UserRuntime({"run", "--bundle", bundle(), id});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 5u) << r.out;
  std::string u = std::to_string(uid_), s = std::to_string(sub_);
  std::string k = std::to_string(kRangeSize);
  for (int map = 0; map < 2; ++map) {
    EXPECT_EQ(Words(lines[2 * map]), (std::vector<std::string>{"0", u, "1"})) << r.out;
    EXPECT_EQ(Words(lines[2 * map + 1]), (std::vector<std::string>{"1", s, k})) << r.out;
  }
  EXPECT_EQ(lines[4], "1000:1000");
  struct stat st {};
  ASSERT_EQ(lstat((data + "/f").c_str(), &st), 0) << strerror(errno);
  EXPECT_EQ(st.st_uid, sub_ + 999);
  EXPECT_EQ(st.st_gid, sub_ + 999);
}

// A range the user was not given: newuidmap refuses, `run` fails naming it and leaves nothing.
TEST_F(RootlessTest, MappingOutsideTheSubordinateRangeIsRefused) {
  std::string id = NewUserId();
  WriteConfig(WithSubordinateRanges(RootlessConfig({"true"}), sub_ + kRangeSize));
  CommandResult r = UserRuntime({"run", "--bundle", bundle(), id});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("linux.uidMappings: newuidmap"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not allowed"), std::string::npos) << r.err;
  EXPECT_TRUE(StateEntries().empty());
  CommandResult st = UserRuntime({"state", id});
  EXPECT_EQ(st.exit_code, 1) << st.Describe();
}

// create/start/exec/kill/delete of a container with subordinate ranges and no cgroup.
TEST_F(RootlessTest, ExecKillDelete) {
  std::string id = NewUserId();
  WriteConfig(WithSubordinateRanges(RootlessConfig({"sleep", "30"}), sub_));
  ASSERT_EQ(UserRuntime({"create", "--bundle", bundle(), id}).exit_code, 0);
  CommandResult s = UserRuntime({"start", id});
  ASSERT_EQ(s.exit_code, 0) << s.Describe();
  pid_t pid = UserState(id).value("pid", 0);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(WaitFor([&] { return CmdlineOf(pid) == "sleep 30"; })) << CmdlineOf(pid);

  // exec joins the container: its root, its pid namespace (the init is pid 1 there).
  CommandResult e = UserRuntime({"exec", id, "sh", "-c", "id -u; cat /proc/1/comm"});
  ASSERT_EQ(e.exit_code, 0) << e.Describe();
  auto lines = Lines(e.out);
  ASSERT_EQ(lines.size(), 2u) << e.out;
  EXPECT_EQ(lines[0], "0");
  EXPECT_EQ(lines[1], "sleep");
  CommandResult code = UserRuntime({"exec", id, "sh", "-c", "exit 5"});
  EXPECT_EQ(code.exit_code, 5) << code.Describe();

  // A detached exec'd process, as the host sees it: in the init's pid namespace, the user's uid.
  std::string pid_file = home_ + "/exec.pid";
  CommandResult d = UserRuntime({"exec", "--detach", "--pid-file", pid_file, id, "sleep", "31"});
  ASSERT_EQ(d.exit_code, 0) << d.Describe();
  pid_t exec_pid = std::atoi(Trim(ReadFileOrEmpty(pid_file)).c_str());
  ASSERT_GT(exec_pid, 0);
  EXPECT_TRUE(WaitFor([&] { return CmdlineOf(exec_pid) == "sleep 31"; })) << CmdlineOf(exec_pid);
  std::string ns = "/proc/" + std::to_string(pid) + "/ns/pid";
  std::string exec_ns = "/proc/" + std::to_string(exec_pid) + "/ns/pid";
  EXPECT_EQ(InodeOf(ns), InodeOf(exec_ns));
  EXPECT_NE(InodeOf(ns), InodeOf("/proc/self/ns/pid"));
  std::string u = std::to_string(uid_);
  EXPECT_EQ(
      Words(StatusField(ReadFileOrEmpty("/proc/" + std::to_string(exec_pid) + "/status"), "Uid")),
      (std::vector<std::string>{u, u, u, u}));

  // kill --all without a cgroup reaches every process of the pid namespace; the init (pid 1
  // there, no handler) ignores SIGTERM, the exec'd sleep dies of it.
  CommandResult ka = UserRuntime({"kill", "--all", id, "TERM"});
  ASSERT_EQ(ka.exit_code, 0) << ka.Describe();
  EXPECT_TRUE(WaitFor([&] {
    ReapExitedChildren();
    return ProcessGone(exec_pid);
  }));
  EXPECT_FALSE(ProcessGone(pid));
  EXPECT_EQ(UserState(id).value("status", ""), "running");

  CommandResult busy = UserRuntime({"delete", id});
  EXPECT_EQ(busy.exit_code, 1) << "delete of a running container needs --force";

  CommandResult k = UserRuntime({"kill", id, "KILL"});
  ASSERT_EQ(k.exit_code, 0) << k.Describe();
  EXPECT_TRUE(WaitFor([&] {
    ReapExitedChildren();
    return ProcessGone(pid);
  }));
  EXPECT_EQ(UserState(id).value("status", ""), "stopped");
  CommandResult del = UserRuntime({"delete", id});
  ASSERT_EQ(del.exit_code, 0) << del.Describe();
  EXPECT_FALSE(PathExists(state_root_user() + "/" + id));
  EXPECT_EQ(UserRuntime({"state", id}).exit_code, 1);
}

// Limits need a cgroup; rootless without a writable hierarchy (the user's cgroups are root's
// here) that is an error, not a silent container without limits.
TEST_F(RootlessTest, LimitsWithoutAWritableCgroupAreRefused) {
  std::string id = NewUserId();
  json c = RootlessConfig({"true"});
  c["linux"]["resources"] = {{"pids", {{"limit", 64}}}};
  WriteConfig(c);
  CommandResult r = UserRuntime({"run", "--bundle", bundle(), id});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("linux.resources"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cgroup"), std::string::npos) << r.err;
  EXPECT_TRUE(StateEntries().empty());
}


// Rootless with limits, in a cgroup v2 subtree delegated to the user (as systemd delegates
// user@UID.service): the runtime makes the container's cgroup there and applies the limits;
// there is no device filter (it would take privileges on the host). Pure cgroup v2 only: the
// qemu lane; this host's hierarchies are v1.
TEST_F(RootlessTest, LimitsInADelegatedCgroupV2Subtree) {
  struct statfs fs {};
  if (statfs("/sys/fs/cgroup", &fs) != 0 || fs.f_type != 0x63677270 /* CGROUP2_SUPER_MAGIC */)
    GTEST_SKIP() << "needs a pure cgroup v2 host (the qemu lane runs it)";
  const std::string root = "/sys/fs/cgroup";
  std::string controllers = ReadFileOrEmpty(root + "/cgroup.controllers");
  for (const char* c : {"memory", "pids"})
    if (controllers.find(c) == std::string::npos) GTEST_SKIP() << c << " controller missing";
  std::string enabled = ReadFileOrEmpty(root + "/cgroup.subtree_control");
  for (const char* c : {"memory", "pids"}) {
    if (enabled.find(c) == std::string::npos) {
      ASSERT_TRUE(WriteFile(root + "/cgroup.subtree_control", std::string("+") + c));
    }
  }

  // The delegated subtree: the user owns the directory and its cgroup.procs,
  // cgroup.subtree_control and cgroup.threads; the user's commands start in "runner".
  const std::string deleg_name = "moat-rl-" + std::to_string(uid_);
  const std::string deleg = root + "/" + deleg_name;
  ASSERT_EQ(mkdir(deleg.c_str(), 0755), 0) << deleg << ": " << strerror(errno);
  // Removed by TearDown once the user's containers are deleted, deepest first.
  cgroups_to_remove_ = {deleg, deleg + "/runner"};
  ASSERT_TRUE(WriteFile(deleg + "/cgroup.subtree_control", "+memory +pids"));
  ASSERT_EQ(mkdir((deleg + "/runner").c_str(), 0755), 0) << strerror(errno);
  for (const std::string& f : {std::string(), std::string("/cgroup.procs"),
                               std::string("/cgroup.subtree_control"),
                               std::string("/cgroup.threads")})
    ASSERT_EQ(chown((deleg + f).c_str(), uid_, uid_), 0) << deleg + f << ": " << strerror(errno);
  for (const std::string& f : {std::string(), std::string("/cgroup.procs")})
    ASSERT_EQ(chown((deleg + "/runner" + f).c_str(), uid_, uid_), 0) << strerror(errno);
  // The user's wrapper, but joining runner first (as root: moving out of our cgroup needs
  // write access to the common ancestor's cgroup.procs, the root's).
  std::string wrapper = ReadFileOrEmpty(wrapper_);
  ASSERT_FALSE(wrapper.empty());
  ASSERT_TRUE(WriteFile(wrapper_, "echo $$ > " + deleg + "/runner/cgroup.procs\n" + wrapper, 0755));

  std::string id = NewUserId();
  json c = RootlessConfig({"sleep", "30"});
  c["linux"]["cgroupsPath"] = "/" + deleg_name + "/" + id;
  c["linux"]["resources"] = {{"memory", {{"limit", 64 << 20}}}, {"pids", {{"limit", 42}}}};
  WriteConfig(c);
  CommandResult created = UserRuntime({"create", "--bundle", bundle(), id});
  ASSERT_EQ(created.exit_code, 0) << created.Describe();
  ASSERT_EQ(UserRuntime({"start", id}).exit_code, 0);
  pid_t pid = UserState(id).value("pid", 0);
  ASSERT_GT(pid, 0);
  const std::string cg = deleg + "/" + id;
  EXPECT_EQ(Trim(ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/cgroup")),
            "0::/" + deleg_name + "/" + id);
  EXPECT_EQ(Trim(ReadFileOrEmpty(cg + "/memory.max")), std::to_string(64 << 20));
  EXPECT_EQ(Trim(ReadFileOrEmpty(cg + "/pids.max")), "42");
  struct stat st {};
  ASSERT_EQ(stat(cg.c_str(), &st), 0) << cg;
  EXPECT_EQ(st.st_uid, uid_) << "the container's cgroup is the user's";

  CommandResult d = UserRuntime({"delete", "--force", id});
  EXPECT_EQ(d.exit_code, 0) << d.Describe();
  EXPECT_FALSE(PathExists(cg)) << "delete leaves the container's cgroup";
}

}  // namespace
}  // namespace moat::testing
