// Managers on a fake cgroupfs: plain directories and files in a temp dir, pre-created with the
// files the kernel would show. Writes to a regular file do not truncate (cgroupfs semantics:
// open O_WRONLY, one write), so every file written here starts empty and is written once.

#include "cgroups/manager.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "base/sys/fs.h"

namespace moat::cgroups {
namespace {

class FakeCgroupfs : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moat-cgroups-fake-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(sys::RemoveAll(root_).has_value()); }

  void Dir(const std::string& rel) { ASSERT_TRUE(sys::MkdirAll(root_ + "/" + rel, 0755)); }
  void File(const std::string& rel, const std::string& content = "") {
    ASSERT_TRUE(sys::WriteFileAtomic(root_ + "/" + rel, content));
  }
  std::string Read(const std::string& rel) {
    auto r = sys::ReadFile(root_ + "/" + rel);
    return r ? *r : "<" + r.error().message + ">";
  }
  bool Exists(const std::string& rel) { return access((root_ + "/" + rel).c_str(), F_OK) == 0; }

  Layout V1(std::vector<std::string> controllers) {
    Layout l;
    l.version = Version::kV1;
    for (const auto& c : controllers) {
      Dir(c);
      l.v1_mounts[c] = root_ + "/" + c;
    }
    return l;
  }
  Layout V2() {
    Layout l;
    l.version = Version::kV2;
    Dir("unified");
    l.unified_root = root_ + "/unified";
    return l;
  }

  std::unique_ptr<Manager> Make(const Layout& l, const std::string& path,
                                const std::string& id = "c1") {
    auto m = MakeManager(l, path, id);
    EXPECT_TRUE(m.has_value()) << (m ? "" : m.error().message);
    return m ? std::move(*m) : nullptr;
  }

  std::string root_;
};

TEST_F(FakeCgroupfs, RelativePathsFollowTheCallersCgroupPerHierarchy) {
  Layout l = V1({"memory", "cpu", "pids"});
  l.self["memory"] = "/process_api/abc";
  l.self["cpu"] = "/";
  auto m = Make(l, "moat-test/x");
  ASSERT_TRUE(m);
  auto paths = m->Paths();
  EXPECT_EQ(paths["memory"], "/process_api/abc/moat-test/x");
  EXPECT_EQ(paths["cpu"], "/moat-test/x");
  EXPECT_EQ(paths["pids"], "/moat-test/x");  // no self entry: the mount point
  EXPECT_EQ(m->Path(), "/process_api/abc/moat-test/x");
  EXPECT_EQ(m->version(), Version::kV1);
}

TEST_F(FakeCgroupfs, AbsoluteAndDefaultPaths) {
  Layout l = V1({"memory", "cpu"});
  l.self["memory"] = "/process_api/abc";
  auto m = Make(l, "/moat//a/./b/");
  EXPECT_EQ(m->Paths()["memory"], "/moat/a/b");
  EXPECT_EQ(m->Paths()["cpu"], "/moat/a/b");
  m = Make(l, "", "ctr1");
  EXPECT_EQ(m->Paths()["memory"], "/process_api/abc/moat/ctr1");
  EXPECT_EQ(m->Paths()["cpu"], "/moat/ctr1");

  Layout v2 = V2();
  v2.self[""] = "/user.slice/u";
  m = Make(v2, "", "ctr1");
  EXPECT_EQ(m->Path(), "/user.slice/u/moat/ctr1");
  EXPECT_EQ(m->Paths(), (std::map<std::string, std::string>{{"", "/user.slice/u/moat/ctr1"}}));
  m = Make(v2, "/x/y");
  EXPECT_EQ(m->Path(), "/x/y");
}

TEST_F(FakeCgroupfs, RejectsBadPaths) {
  Layout l = V2();
  for (const char* p : {"../x", "/a/../b", "a/..", "/", "//", "."}) {
    auto m = MakeManager(l, p, "c1");
    ASSERT_FALSE(m) << p;
    EXPECT_EQ(m.error().kind, ErrorKind::kInvalidArgument) << p;
  }
  auto m = MakeManager(l, "system.slice:moat:c1", "c1");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(m.error().message.find("--systemd-cgroup"), std::string::npos);
  EXPECT_FALSE(MakeManager(l, "", "../x"));
  EXPECT_FALSE(MakeManager(l, "", ""));
  // Colons are fine in a plain cgroup name.
  EXPECT_TRUE(MakeManager(l, "/a:b:c", "c1"));
  EXPECT_TRUE(MakeManager(l, "a:b", "c1"));
}

TEST_F(FakeCgroupfs, OpenManagerFromRecordedPaths) {
  Layout l = V1({"memory", "cpu", "cpuacct"});
  // cpu and cpuacct co-mounted.
  l.v1_mounts["cpuacct"] = l.v1_mounts["cpu"];
  auto m = OpenManager(l, "/moat/c1");
  EXPECT_EQ(m->Paths()["cpuacct"], "/moat/c1");
  EXPECT_EQ(m->Path(), "/moat/c1");

  m = OpenManager(
      l, std::map<std::string, std::string>{{"memory", "/p/moat/c1"}, {"cpu", "/moat/c1"}});
  EXPECT_EQ(m->Paths()["memory"], "/p/moat/c1");
  EXPECT_EQ(m->Paths()["cpu"], "/moat/c1");
  EXPECT_EQ(m->Paths()["cpuacct"], "/p/moat/c1");  // missing entry: the memory one

  auto bad = OpenManager(l, "moat/../../etc");
  auto r = bad->Create();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  bad = OpenManager(l, "/");
  EXPECT_FALSE(bad->Destroy());
}

TEST_F(FakeCgroupfs, V1CreateCopiesCpusetDownAndApplyWrites) {
  Layout l = V1({"cpuset", "memory", "cpu", "pids"});
  File("cpuset/cpuset.cpus", "0-3\n");
  File("cpuset/cpuset.mems", "0\n");
  // Existing empty levels, as the kernel would create them.
  for (const char* d : {"cpuset/moat", "cpuset/moat/c1"}) {
    Dir(d);
    File(std::string(d) + "/cpuset.cpus");
    File(std::string(d) + "/cpuset.mems");
  }
  auto m = Make(l, "/moat/c1");
  ASSERT_TRUE(m->Create()) << "create";
  EXPECT_EQ(Read("cpuset/moat/cpuset.cpus"), "0-3");
  EXPECT_EQ(Read("cpuset/moat/c1/cpuset.mems"), "0");
  EXPECT_TRUE(Exists("memory/moat/c1"));
  EXPECT_TRUE(Exists("pids/moat/c1"));

  for (const char* f :
       {"memory/moat/c1/memory.limit_in_bytes", "memory/moat/c1/memory.memsw.limit_in_bytes",
        "cpu/moat/c1/cpu.shares", "cpu/moat/c1/cpu.cfs_quota_us", "cpu/moat/c1/cpu.cfs_period_us",
        "pids/moat/c1/pids.max"})
    File(f);
  File("memory/moat/c1/memory.usage_in_bytes", "4096\n");
  oci::Resources r;
  r.memory.emplace();
  r.memory->limit = 64 << 20;
  r.memory->swap = 128 << 20;
  r.cpu.emplace();
  r.cpu->shares = 512;
  r.cpu->quota = 50000;
  r.cpu->period = 100000;
  r.pids_limit = 20;
  auto applied = m->Apply(r);
  ASSERT_TRUE(applied) << applied.error().message;
  EXPECT_EQ(Read("memory/moat/c1/memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(Read("memory/moat/c1/memory.memsw.limit_in_bytes"), "134217728");
  EXPECT_EQ(Read("cpu/moat/c1/cpu.shares"), "512");
  EXPECT_EQ(Read("cpu/moat/c1/cpu.cfs_quota_us"), "50000");
  EXPECT_EQ(Read("cpu/moat/c1/cpu.cfs_period_us"), "100000");
  EXPECT_EQ(Read("pids/moat/c1/pids.max"), "20");
}

TEST_F(FakeCgroupfs, V1CreateFailureRollsBack) {
  Layout l = V1({"memory", "cpuset"});
  File("cpuset/cpuset.cpus", "0-3\n");
  File("cpuset/cpuset.mems", "0\n");
  // A fake cpuset level without files: copying cpuset.cpus down fails (no such file), and
  // the levels this Create made are removed again.
  auto m = Make(l, "/moat/c1");
  auto r = m->Create();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("cpuset.cpus"), std::string::npos) << r.error().message;
  EXPECT_FALSE(Exists("cpuset/moat"));
}

TEST_F(FakeCgroupfs, WriteErrorsNameTheFileAndValue) {
  Layout l = V1({"pids"});
  Dir("pids/moat/c1");  // no pids.max in it
  auto m = Make(l, "/moat/c1");
  oci::Resources r;
  r.pids_limit = 0;
  auto e = m->Apply(r);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message, "pids.max: open for write \"max\": No such file or directory");
  EXPECT_EQ(e.error().kind, ErrorKind::kNotFound);
}

TEST_F(FakeCgroupfs, V1PidsAreRecursiveAndDestroyStaysBelowThePath) {
  Layout l = V1({"pids", "memory"});
  auto m = Make(l, "/moat/c1");
  ASSERT_TRUE(m->Create());
  Dir("pids/moat/sibling");
  Dir("pids/moat/c1/sub/deeper");
  Dir("memory/moat/c1/sub");
  File("pids/moat/c1/cgroup.procs", "10\n12\n");
  File("pids/moat/c1/sub/cgroup.procs", "11\n");
  File("memory/moat/c1/cgroup.procs", "99\n");  // pids is preferred
  auto pids = m->Pids();
  ASSERT_TRUE(pids);
  EXPECT_EQ(*pids, (std::vector<pid_t>{10, 11, 12}));

  // cgroupfs lets rmdir remove a directory with its control files; a fake one does not.
  ASSERT_TRUE(sys::unlinkat(AT_FDCWD, root_ + "/pids/moat/c1/cgroup.procs", 0));
  ASSERT_TRUE(sys::unlinkat(AT_FDCWD, root_ + "/pids/moat/c1/sub/cgroup.procs", 0));
  ASSERT_TRUE(sys::unlinkat(AT_FDCWD, root_ + "/memory/moat/c1/cgroup.procs", 0));
  auto d = m->Destroy();
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_FALSE(Exists("pids/moat/c1"));
  EXPECT_FALSE(Exists("memory/moat/c1"));
  EXPECT_TRUE(Exists("pids/moat"));  // never above the container's own path
  EXPECT_TRUE(Exists("pids/moat/sibling"));
  EXPECT_TRUE(m->Destroy());  // already gone: success
}

TEST_F(FakeCgroupfs, V1UnmountedControllerAndFreezer) {
  Layout l = V1({"memory"});
  auto m = Make(l, "/moat/c1");
  ASSERT_TRUE(m->Create());
  oci::Resources r;
  r.pids_limit = 5;
  auto e = m->Apply(r);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().kind, ErrorKind::kUnsupported);
  EXPECT_EQ(m->Freeze().error().kind, ErrorKind::kUnsupported);
  EXPECT_EQ(*m->GetFreezerState(), FreezerState::kThawed);
  EXPECT_EQ(m->OpenForClone().error().kind, ErrorKind::kUnsupported);
}

TEST_F(FakeCgroupfs, V1StatsFromFiles) {
  Layout l = V1({"memory", "pids", "cpuacct"});
  Dir("memory/c");
  Dir("pids/c");
  Dir("cpuacct/c");
  File("memory/c/memory.limit_in_bytes", "67108864\n");
  File("memory/c/memory.usage_in_bytes", "4096\n");
  File("pids/c/pids.current", "1\n");
  File("pids/c/pids.max", "20\n");
  File("cpuacct/c/cpuacct.usage", "1000\n");
  auto m = OpenManager(l, "/c");
  auto s = m->GetStats();
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->memory_limit, 67108864u);
  EXPECT_EQ(s->memory_usage, 4096u);
  EXPECT_EQ(s->pids_current, 1u);
  EXPECT_EQ(s->pids_limit, 20u);
  EXPECT_EQ(s->cpu_usage_ns, 1000u);
}

TEST_F(FakeCgroupfs, V2CreateEnablesControllersInAncestorsOnly) {
  Layout l = V2();
  l.v2_controllers = {"memory"};  // one write per file: see the note at the top
  File("unified/cgroup.controllers", "cpu io memory pids\n");
  File("unified/cgroup.subtree_control");
  Dir("unified/moat");
  File("unified/moat/cgroup.controllers", "memory\n");
  File("unified/moat/cgroup.subtree_control");
  Dir("unified/moat/c1");
  File("unified/moat/c1/cgroup.controllers", "memory\n");
  File("unified/moat/c1/cgroup.subtree_control");
  auto m = Make(l, "/moat/c1");
  auto r = m->Create();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(Read("unified/cgroup.subtree_control"), "+memory");
  EXPECT_EQ(Read("unified/moat/cgroup.subtree_control"), "+memory");
  EXPECT_EQ(Read("unified/moat/c1/cgroup.subtree_control"), "");  // the leaf keeps none
}

TEST_F(FakeCgroupfs, V2RootRefusalIsSkippedOtherLevelsFail) {
  Layout l = V2();
  l.v2_controllers = {"memory"};
  File("unified/cgroup.controllers", "memory\n");
  // A dangling symlink: reads as absent, and opening it for writing fails (ENOENT).
  ASSERT_TRUE(sys::symlinkat("missing", AT_FDCWD, root_ + "/unified/cgroup.subtree_control"));
  auto m = Make(l, "/c1");
  ASSERT_TRUE(m->Create());
  EXPECT_TRUE(Exists("unified/c1"));

  File("unified/c1/cgroup.controllers", "memory\n");
  ASSERT_TRUE(sys::symlinkat("missing", AT_FDCWD, root_ + "/unified/c1/cgroup.subtree_control"));
  m = Make(l, "/c1/c2");
  auto r = m->Create();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("cgroup.subtree_control: open for write \"+memory\""),
            std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("/unified/c1"), std::string::npos) << r.error().message;
  EXPECT_FALSE(Exists("unified/c1/c2"));

  // Even a read error at the root is not fatal.
  ASSERT_TRUE(sys::unlinkat(AT_FDCWD, root_ + "/unified/cgroup.subtree_control", 0));
  Dir("unified/cgroup.subtree_control");
  m = Make(l, "/c3");
  ASSERT_TRUE(m->Create());
}

TEST_F(FakeCgroupfs, V2ApplyWritesPlan) {
  Layout l = V2();
  l.v2_controllers.clear();
  Dir("unified/c1");
  File("unified/c1/cgroup.controllers", "cpu memory pids\n");
  for (const char* f :
       {"memory.max", "memory.swap.max", "memory.oom.group", "cpu.max", "cpu.weight", "pids.max"})
    File(std::string("unified/c1/") + f);
  File("unified/c1/memory.current", "4096\n");
  auto m = Make(l, "/c1");
  ASSERT_TRUE(m->Create());
  oci::Resources r;
  r.memory.emplace();
  r.memory->limit = 64 << 20;
  r.memory->swap = 96 << 20;
  r.cpu.emplace();
  r.cpu->shares = 1024;
  r.cpu->quota = 50000;
  r.cpu->period = 100000;
  r.pids_limit = -1;
  auto applied = m->Apply(r);
  ASSERT_TRUE(applied) << applied.error().message;
  EXPECT_EQ(Read("unified/c1/memory.max"), "67108864");
  EXPECT_EQ(Read("unified/c1/memory.swap.max"), "33554432");
  EXPECT_EQ(Read("unified/c1/memory.oom.group"), "1");
  EXPECT_EQ(Read("unified/c1/cpu.weight"), "39");
  EXPECT_EQ(Read("unified/c1/cpu.max"), "50000 100000");
  EXPECT_EQ(Read("unified/c1/pids.max"), "max");

  // A spec error is found before anything is written.
  oci::Resources bad;
  bad.pids_limit = 7;
  bad.unified["../x"] = "1";
  File("unified/c1/pids.max");
  EXPECT_FALSE(m->Apply(bad));
  EXPECT_EQ(Read("unified/c1/pids.max"), "");
}

TEST_F(FakeCgroupfs, V2FreezeStatsAndKill) {
  Layout l = V2();
  l.v2_controllers.clear();
  Dir("unified/c1");
  File("unified/c1/cgroup.freeze");
  File("unified/c1/cgroup.events", "populated 1\nfrozen 1\n");
  File("unified/c1/cgroup.kill");
  File("unified/c1/memory.current", "4096\n");
  File("unified/c1/memory.max", "max\n");
  File("unified/c1/pids.current", "3\n");
  auto m = Make(l, "/c1");
  ASSERT_TRUE(m->Freeze());
  EXPECT_EQ(Read("unified/c1/cgroup.freeze"), "1");
  EXPECT_EQ(*m->GetFreezerState(), FreezerState::kFrozen);
  auto s = m->GetStats();
  ASSERT_TRUE(s);
  EXPECT_EQ(s->memory_usage, 4096u);
  EXPECT_EQ(s->memory_limit, 0u);
  EXPECT_EQ(s->pids_current, 3u);
  ASSERT_TRUE(m->SignalAll(SIGKILL));
  EXPECT_EQ(Read("unified/c1/cgroup.kill"), "1");
  auto fd = m->OpenForClone();
  ASSERT_TRUE(fd);
  EXPECT_TRUE(fd->valid());
}

}  // namespace
}  // namespace moat::cgroups
