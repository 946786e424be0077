// The container lifecycle as runc users drive it: run, create/start/state/kill/delete, list,
// ps, --pid-file. Each assertion checks the effect (the process on the host, the state
// directory, the cgroup), not only the exit code.

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "support/runtime_fixture.h"

namespace moat::testing {
namespace {

using LifecycleTest = RuntimeTest;

TEST_F(LifecycleTest, RunPrintsOutputAndPropagatesExitCode) {
  std::string id = NewId();
  CommandResult r = RunContainer(Config({"sh", "-c", "echo hello; exit 3"}), id);
  EXPECT_EQ(r.exit_code, 3) << r.Describe();
  EXPECT_EQ(r.out, "hello\n");
  // Without --keep the container is deleted when it exits.
  EXPECT_FALSE(PathExists(state_root() + "/" + id));
  for (const auto& [hierarchy, dir] : CgroupDirs(id)) EXPECT_FALSE(PathExists(dir)) << dir;
  CommandResult st = Runtime({"state", id});
  EXPECT_EQ(st.exit_code, 1) << st.Describe();
  EXPECT_NE(st.err.find("does not exist"), std::string::npos) << st.err;
}

TEST_F(LifecycleTest, CreateStartStateKillDelete) {
  std::string id = NewId();
  std::string pid_file = scratch() + "/container.pid";
  WriteConfig(Config({"sleep", "30"}));
  CommandResult c = Runtime({"create", "--bundle", bundle(), "--pid-file", pid_file, id});
  ASSERT_EQ(c.exit_code, 0) << c.Describe();

  json st = State(id);
  ASSERT_TRUE(st.is_object());
  EXPECT_EQ(st.value("status", ""), "created");
  EXPECT_EQ(st.value("id", ""), id);
  EXPECT_EQ(st.value("bundle", ""), bundle());
  pid_t pid = st.value("pid", 0);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(Trim(ReadFileOrEmpty(pid_file)), std::to_string(pid));
  // Created: the process exists on the host but has not executed the user's program yet.
  EXPECT_FALSE(ProcessGone(pid));
  EXPECT_NE(CmdlineOf(pid), "sleep 30");
  // It sits in the container's cgroup already.
  for (const auto& [hierarchy, dir] : ManagedCgroupDirs(id)) {
    EXPECT_NE(ReadFileOrEmpty(dir + "/cgroup.procs").find(std::to_string(pid)), std::string::npos)
        << dir;
  }

  CommandResult s = Runtime({"start", id});
  ASSERT_EQ(s.exit_code, 0) << s.Describe();
  EXPECT_EQ(Status(id), "running");
  EXPECT_TRUE(WaitFor([&] { return CmdlineOf(pid) == "sleep 30"; })) << CmdlineOf(pid);
  CommandResult again = Runtime({"start", id});
  EXPECT_EQ(again.exit_code, 1) << "a second start must fail: " << again.Describe();

  CommandResult list = Runtime({"list", "--format", "json"});
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  json all = json::parse(list.out, nullptr, false);
  ASSERT_TRUE(all.is_array()) << list.out;
  int found = 0;
  for (const auto& e : all) {
    if (e.value("id", "") != id) continue;
    ++found;
    EXPECT_EQ(e.value("status", ""), "running");
    EXPECT_EQ(e.value("pid", 0), pid);
    EXPECT_EQ(e.value("bundle", ""), bundle());
  }
  EXPECT_EQ(found, 1) << list.out;

  CommandResult ps = Runtime({"ps", "--format", "json", id});
  ASSERT_EQ(ps.exit_code, 0) << ps.Describe();
  json pids = json::parse(ps.out, nullptr, false);
  ASSERT_TRUE(pids.is_array()) << ps.out;
  EXPECT_EQ(pids, json::array({pid})) << ps.out;

  CommandResult del_running = Runtime({"delete", id});
  EXPECT_EQ(del_running.exit_code, 1) << "delete of a running container needs --force";
  EXPECT_FALSE(ProcessGone(pid));

  CommandResult k = Runtime({"kill", id, "KILL"});
  ASSERT_EQ(k.exit_code, 0) << k.Describe();
  EXPECT_TRUE(WaitFor([&] { return ProcessGone(pid); }));
  EXPECT_EQ(Status(id), "stopped");
  EXPECT_EQ(State(id).value("pid", -1), 0);

  CommandResult d = Runtime({"delete", id});
  ASSERT_EQ(d.exit_code, 0) << d.Describe();
  EXPECT_FALSE(PathExists(state_root() + "/" + id));
  for (const auto& [hierarchy, dir] : CgroupDirs(id)) EXPECT_FALSE(PathExists(dir)) << dir;
  CommandResult gone = Runtime({"state", id});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find("does not exist"), std::string::npos) << gone.err;
}

// `kill` takes a signal by name with and without the SIG prefix, and by number.
TEST_F(LifecycleTest, KillAcceptsEverySignalSpelling) {
  for (const char* spelling : {"SIGKILL", "9", "KILL"}) {
    SCOPED_TRACE(spelling);
    std::string id = NewId();
    pid_t pid = CreateAndStart(Config({"sleep", "30"}), id);
    ASSERT_GT(pid, 0);
    CommandResult k = Runtime({"kill", id, spelling});
    ASSERT_EQ(k.exit_code, 0) << k.Describe();
    EXPECT_TRUE(WaitFor([&] { return ProcessGone(pid); }));
    EXPECT_EQ(Status(id), "stopped");
    CommandResult d = Runtime({"delete", id});
    EXPECT_EQ(d.exit_code, 0) << d.Describe();
    EXPECT_FALSE(PathExists(state_root() + "/" + id));
  }
}

TEST_F(LifecycleTest, KillRejectsAnUnknownSignal) {
  std::string id = NewId();
  pid_t pid = CreateAndStart(Config({"sleep", "30"}), id);
  ASSERT_GT(pid, 0);
  CommandResult k = Runtime({"kill", id, "SIGBOGUS"});
  EXPECT_EQ(k.exit_code, 1) << k.Describe();
  EXPECT_NE(k.err.find("unknown signal"), std::string::npos) << k.err;
  EXPECT_NE(k.err.find("SIGBOGUS"), std::string::npos) << k.err;
  EXPECT_FALSE(ProcessGone(pid));
  EXPECT_EQ(Status(id), "running");
}

TEST_F(LifecycleTest, DuplicateIdIsRefusedAndTheFirstContainerStillWorks) {
  std::string id = NewId();
  WriteConfig(Config({"sleep", "30"}));
  CommandResult first = Runtime({"create", "--bundle", bundle(), id});
  ASSERT_EQ(first.exit_code, 0) << first.Describe();
  pid_t pid = State(id).value("pid", 0);
  ASSERT_GT(pid, 0);

  CommandResult second = Runtime({"create", "--bundle", bundle(), id});
  EXPECT_EQ(second.exit_code, 1) << second.Describe();
  EXPECT_NE(second.err.find("already exists"), std::string::npos) << second.err;

  // The failed create must not have removed or disturbed the first container.
  EXPECT_TRUE(PathExists(state_root() + "/" + id));
  EXPECT_FALSE(ProcessGone(pid));
  for (const auto& [hierarchy, dir] : ManagedCgroupDirs(id)) EXPECT_TRUE(PathExists(dir)) << dir;
  CommandResult s = Runtime({"start", id});
  ASSERT_EQ(s.exit_code, 0) << s.Describe();
  EXPECT_EQ(Status(id), "running");
  EXPECT_EQ(State(id).value("pid", 0), pid);
  EXPECT_TRUE(WaitFor([&] { return CmdlineOf(pid) == "sleep 30"; }));
}

// `spec --rootless` must give a config that runs: here as root, its user namespace then maps
// root to itself.
TEST_F(LifecycleTest, RootlessSpecRuns) {
  std::string dir = scratch() + "/rootless-spec";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  CommandResult spec = RunCommand({RuntimePath(), "spec", "--rootless", "--bundle", dir});
  ASSERT_EQ(spec.exit_code, 0) << spec.Describe();
  json c = json::parse(ReadFileOrEmpty(dir + "/config.json"), nullptr, false);
  ASSERT_TRUE(c.is_object());
  c["root"]["path"] = rootfs();
  c["process"]["args"] = {"sh", "-c", "id -u; cat /proc/self/uid_map"};
  std::string id = NewId();
  CommandResult r = RunContainer(c, id);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0], "0");
  // A user namespace of its own, mapping exactly the caller's id.
  EXPECT_EQ(Words(lines[1]), (std::vector<std::string>{"0", std::to_string(getuid()), "1"}))
      << lines[1];
}

// Deleting a created (never started) container kills its waiting process.
TEST_F(LifecycleTest, DeleteOfACreatedContainer) {
  std::string id = NewId();
  WriteConfig(Config({"sleep", "30"}));
  ASSERT_EQ(Runtime({"create", "--bundle", bundle(), id}).exit_code, 0);
  pid_t pid = State(id).value("pid", 0);
  ASSERT_GT(pid, 0);
  CommandResult d = Runtime({"delete", id});
  ASSERT_EQ(d.exit_code, 0) << d.Describe();
  EXPECT_TRUE(WaitFor([&] {
    ReapExitedChildren();
    return ProcessGone(pid);
  }));
  EXPECT_FALSE(PathExists(state_root() + "/" + id));
  for (const auto& [hierarchy, dir] : CgroupDirs(id)) EXPECT_FALSE(PathExists(dir)) << dir;
}

// `run` forwards the signals it receives to the container's process and returns its status.
TEST_F(LifecycleTest, RunForwardsSignals) {
  std::string id = NewId();
  WriteConfig(Config(
      {"sh", "-c", "trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.1; done"}));
  auto run = StartRuntime({"run", "--bundle", bundle(), id});
  ASSERT_TRUE(WaitFor([&] {
    CommandResult st = Runtime({"state", id});
    return st.exit_code == 0 && st.out.find("\"running\"") != std::string::npos;
  }));
  SleepMs(200);  // let the shell install its trap
  ASSERT_EQ(kill(run->pid(), SIGTERM), 0);
  CommandResult r = run->Wait();
  EXPECT_EQ(r.exit_code, 7) << r.Describe();
  EXPECT_NE(r.out.find("got-term"), std::string::npos) << r.out;
  EXPECT_FALSE(PathExists(state_root() + "/" + id));
}

}  // namespace
}  // namespace moat::testing
