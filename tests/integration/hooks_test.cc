// OCI hooks: all six kinds run, in the spec's order, where the spec says (host or container),
// with the state on stdin; a failing or hanging hook fails the operation and leaves nothing.

#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "support/runtime_fixture.h"

namespace moat::testing {
namespace {

using HooksTest = RuntimeTest;

// A hook that runs `script` with the host's /bin/sh (or the container's, for startContainer).
json ShellHook(const std::string& script) {
  return {{"path", "/bin/sh"}, {"args", {"sh", "-c", script}}};
}

TEST_F(HooksTest, AllHooksRunInOrder) {
  std::string dir = scratch() + "/hooks";
  ASSERT_EQ(mkdir(dir.c_str(), 0777), 0);
  std::string log = dir + "/log";
  auto append = [&](const std::string& name) { return "echo " + name + " >> " + log; };

  std::string id = NewId();
  json c = Config({"sleep", "30"});
  AddTmpfs(c, "/tmp");
  AddBind(c, dir, "/tmp/hooks");
  c["hooks"]["prestart"] = {ShellHook(append("prestart"))};
  c["hooks"]["createRuntime"] = {
      ShellHook("cat > " + dir + "/createRuntime.state; " + append("createRuntime"))};
  c["hooks"]["createContainer"] = {ShellHook(append("createContainer"))};
  // Runs in the container after pivot_root: its own /bin/sh, the log through the bind mount.
  // It is slow on purpose: poststart must still come after it (it runs before the user's
  // program is executed, poststart after).
  c["hooks"]["startContainer"] = {
      ShellHook("/bin/sleep 0.3; echo startContainer >> /tmp/hooks/log")};
  c["hooks"]["poststart"] = {
      ShellHook("cat > " + dir + "/poststart.state; " + append("poststart"))};
  c["hooks"]["poststop"] = {ShellHook(append("poststop"))};

  pid_t pid = CreateAndStart(c, id);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(ReadFileOrEmpty(log),
            "prestart\ncreateRuntime\ncreateContainer\nstartContainer\npoststart\n");
  // The hooks get the container's state on stdin.
  json created = json::parse(ReadFileOrEmpty(dir + "/createRuntime.state"), nullptr, false);
  ASSERT_TRUE(created.is_object()) << ReadFileOrEmpty(dir + "/createRuntime.state");
  EXPECT_EQ(created.value("id", ""), id);
  EXPECT_EQ(created.value("pid", 0), pid);
  EXPECT_EQ(created.value("bundle", ""), bundle());
  json started = json::parse(ReadFileOrEmpty(dir + "/poststart.state"), nullptr, false);
  ASSERT_TRUE(started.is_object());
  EXPECT_EQ(started.value("pid", 0), pid);
  EXPECT_EQ(started.value("status", ""), "running");

  CommandResult d = Runtime({"delete", "--force", id});
  ASSERT_EQ(d.exit_code, 0) << d.Describe();
  EXPECT_EQ(ReadFileOrEmpty(log),
            "prestart\ncreateRuntime\ncreateContainer\nstartContainer\npoststart\npoststop\n");
}

// Hooks that run in the container's own process must not change what the user's program
// inherits: an ignored SIGPIPE survives execve (signal(7)).
TEST_F(HooksTest, InContainerHooksLeaveSignalDispositionsAlone) {
  std::string id = NewId();
  json c = Config({"sh", "-c", "grep ^SigIgn: /proc/self/status"});
  c["hooks"]["createContainer"] = {ShellHook("true")};
  c["hooks"]["startContainer"] = {ShellHook("true")};
  CommandResult r = RunContainer(c, id);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  // SigIgn is a hex mask; SIGPIPE (13) is bit 12.
  std::string mask = r.out.substr(r.out.find(':') + 1);
  uint64_t ignored = std::stoull(std::string(mask), nullptr, 16);
  EXPECT_EQ(ignored & (uint64_t{1} << (SIGPIPE - 1)), 0u) << r.out;
}

TEST_F(HooksTest, FailingPrestartHookFailsCreateAndLeavesNothing) {
  std::string id = NewId();
  json c = Config({"sleep", "30"});
  c["hooks"]["prestart"] = {ShellHook("exit 1")};
  WriteConfig(c);
  CommandResult r = Runtime({"create", "--bundle", bundle(), id});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("prestart hook #0 (/bin/sh)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("exited with status 1"), std::string::npos) << r.err;
  EXPECT_FALSE(PathExists(state_root() + "/" + id));
  for (const auto& [hierarchy, dir] : CgroupDirs(id)) EXPECT_FALSE(PathExists(dir)) << dir;
  CommandResult st = Runtime({"state", id});
  EXPECT_NE(st.err.find("does not exist"), std::string::npos) << st.Describe();
}

TEST_F(HooksTest, HookTimeoutFailsCreate) {
  std::string id = NewId();
  json c = Config({"sleep", "30"});
  c["hooks"]["createRuntime"] = {
      {{"path", "/bin/sleep"}, {"args", {"sleep", "10"}}, {"timeout", 1}}};
  WriteConfig(c);
  timespec a{}, b{};
  clock_gettime(CLOCK_MONOTONIC, &a);
  CommandResult r = Runtime({"create", "--bundle", bundle(), id});
  clock_gettime(CLOCK_MONOTONIC, &b);
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_NE(r.err.find("createRuntime hook #0 (/bin/sleep)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
  EXPECT_LT(b.tv_sec - a.tv_sec, 8) << "the hook was not stopped at its timeout";
  EXPECT_FALSE(PathExists(state_root() + "/" + id));
  for (const auto& [hierarchy, dir] : CgroupDirs(id)) EXPECT_FALSE(PathExists(dir)) << dir;
}

}  // namespace
}  // namespace moat::testing
