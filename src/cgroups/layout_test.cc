#include <gtest/gtest.h>
#include <stdlib.h>

#include <string>

#include "base/sys/fs.h"
#include "cgroups/manager.h"

namespace moat::cgroups {
namespace {

class LayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moat-cgroups-layout-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    proc_ = tmpl;
    ASSERT_TRUE(sys::MkdirAll(proc_ + "/self", 0755));
  }
  void TearDown() override { ASSERT_TRUE(sys::RemoveAll(proc_)); }

  Layout Detect(const std::string& mountinfo, const std::string& cgroup) {
    EXPECT_TRUE(sys::WriteFileAtomic(proc_ + "/self/mountinfo", mountinfo));
    EXPECT_TRUE(sys::WriteFileAtomic(proc_ + "/self/cgroup", cgroup));
    auto l = DetectLayout(proc_);
    EXPECT_TRUE(l.has_value()) << (l ? "" : l.error().message);
    return l ? *l : Layout{};
  }

  std::string proc_;
};

// This machine: v1 controllers each on its own hierarchy, name=systemd, cgroup2 "unified".
constexpr char kHybridMountinfo[] =
    "22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "35 30 0:32 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n"
    "36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
constexpr char kHybridCgroup[] =
    "9:name=systemd:/\n8:pids:/\n7:blkio:/\n6:freezer:/\n5:devices:/\n"
    "4:memory:/process_api/12d26df19693c4c25e1426275fe165c3\n3:cpuset:/\n2:cpuacct:/\n"
    "1:cpu:/\n0::/\n";

TEST_F(LayoutTest, HybridLikeThisMachine) {
  Layout l = Detect(kHybridMountinfo, kHybridCgroup);
  EXPECT_EQ(l.version, Version::kV1);
  EXPECT_EQ(l.v1_mounts.size(), 8u);
  EXPECT_EQ(l.v1_mounts["memory"], "/sys/fs/cgroup/memory");
  EXPECT_EQ(l.v1_mounts["cpuacct"], "/sys/fs/cgroup/cpuacct");
  EXPECT_EQ(l.v1_mounts.count("systemd"), 0u);
  EXPECT_EQ(l.v1_mounts.count("name=systemd"), 0u);
  EXPECT_EQ(l.unified_root, "/sys/fs/cgroup/unified");
  EXPECT_EQ(l.self["memory"], "/process_api/12d26df19693c4c25e1426275fe165c3");
  EXPECT_EQ(l.self["cpu"], "/");
  EXPECT_EQ(l.self[""], "/");
  EXPECT_EQ(l.self.count("name=systemd"), 0u);
}

TEST_F(LayoutTest, PureV2) {
  Layout l = Detect(
      "25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
      "rw,nsdelegate,memory_recursiveprot\n",
      "0::/user.slice/user-1000.slice/session-2.scope\n");
  EXPECT_EQ(l.version, Version::kV2);
  EXPECT_EQ(l.unified_root, "/sys/fs/cgroup");
  EXPECT_TRUE(l.v1_mounts.empty());
  EXPECT_EQ(l.self[""], "/user.slice/user-1000.slice/session-2.scope");
}

TEST_F(LayoutTest, V1OnlyWithCoMounts) {
  Layout l = Detect(
      "30 22 0:27 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
      "31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "32 30 0:29 / /sys/fs/cgroup/net_cls,net_prio rw - cgroup cgroup rw,net_cls,net_prio\n"
      "33 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "34 30 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n",
      "5:name=systemd:/system.slice/x.service\n4:memory:/system.slice/x.service\n"
      "3:net_cls,net_prio:/\n2:cpu,cpuacct:/system.slice\n");
  EXPECT_EQ(l.version, Version::kV1);
  EXPECT_TRUE(l.unified_root.empty());
  EXPECT_EQ(l.v1_mounts["cpu"], "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(l.v1_mounts["cpuacct"], "/sys/fs/cgroup/cpu,cpuacct");
  EXPECT_EQ(l.v1_mounts["net_prio"], "/sys/fs/cgroup/net_cls,net_prio");
  EXPECT_EQ(l.self["cpu"], "/system.slice");
  EXPECT_EQ(l.self["cpuacct"], "/system.slice");
  EXPECT_EQ(l.self["memory"], "/system.slice/x.service");
}

TEST_F(LayoutTest, MountRootAndEscapes) {
  // A bind-mounted sub-tree (mount root /docker/abc) and a mount point with a space.
  Layout l = Detect("40 30 0:37 /docker/abc /sys/fs/cgroup\\040x rw - cgroup2 cgroup2 rw\n",
                    "0::/docker/abc/inner\n");
  EXPECT_EQ(l.version, Version::kV2);
  EXPECT_EQ(l.unified_root, "/sys/fs/cgroup x");
  EXPECT_EQ(l.self[""], "/inner");
  // The caller outside the mounted sub-tree: treated as at the mount point.
  l = Detect("40 30 0:37 /docker/abc /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/other\n");
  EXPECT_EQ(l.self[""], "/");
}

TEST_F(LayoutTest, OptionalFieldsAndPathsWithColons) {
  Layout l = Detect("40 30 0:37 / /sys/fs/cgroup rw shared:9 master:2 - cgroup2 cgroup2 rw\n",
                    "0::/a:b:c\n");
  EXPECT_EQ(l.unified_root, "/sys/fs/cgroup");
  EXPECT_EQ(l.self[""], "/a:b:c");
}

TEST_F(LayoutTest, NoCgroupsMounted) {
  ASSERT_TRUE(
      sys::WriteFileAtomic(proc_ + "/self/mountinfo", "22 1 0:21 / /sys rw - sysfs sysfs rw\n"));
  ASSERT_TRUE(sys::WriteFileAtomic(proc_ + "/self/cgroup", "0::/\n"));
  auto l = DetectLayout(proc_);
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().kind, ErrorKind::kUnsupported);
}

TEST(LayoutLiveTest, DetectsThisHost) {
  auto l = DetectLayout();
  ASSERT_TRUE(l.has_value()) << l.error().message;
  if (l->version == Version::kV1) {
    EXPECT_FALSE(l->v1_mounts.empty());
  } else {
    EXPECT_FALSE(l->unified_root.empty());
  }
}

}  // namespace
}  // namespace moat::cgroups
