#include "runtime/cgroup_mount.h"

#include <gtest/gtest.h>

namespace moat::runtime {
namespace {

TEST(PlanCgroupMountTest, HybridHostListsEveryHierarchy) {
  const std::string mountinfo =
      "25 30 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
      "26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw\n"
      "27 25 0:24 / /sys/fs/cgroup/systemd rw shared:11 - cgroup cgroup rw,xattr,name=systemd\n"
      "31 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw shared:15 - cgroup cgroup rw,cpu,cpuacct\n"
      "32 25 0:29 / /sys/fs/cgroup/memory rw shared:16 - cgroup cgroup rw,memory\n"
      "40 30 0:29 /sub /mnt/bound rw - cgroup cgroup rw,memory\n"
      "41 30 0:29 / /mnt/elsewhere rw - cgroup cgroup rw,memory\n"
      "42 25 0:29 / /sys/fs/cgroup/memory rw shared:16 - cgroup cgroup rw,memory\n";
  CgroupMountPlan plan = PlanCgroupMount(mountinfo);
  EXPECT_FALSE(plan.unified);
  ASSERT_EQ(plan.hierarchies.size(), 4u);
  EXPECT_EQ(plan.hierarchies[0].name, "unified");
  EXPECT_EQ(plan.hierarchies[0].fstype, "cgroup2");
  EXPECT_EQ(plan.hierarchies[1].options, "xattr,name=systemd");
  EXPECT_EQ(plan.hierarchies[2].name, "cpu,cpuacct");
  EXPECT_EQ(plan.hierarchies[2].options, "cpu,cpuacct");
  EXPECT_EQ(plan.hierarchies[3].name, "memory");
}

TEST(PlanCgroupMountTest, PureV2) {
  CgroupMountPlan plan = PlanCgroupMount(
      "25 30 0:22 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n");
  EXPECT_TRUE(plan.unified);
  EXPECT_TRUE(plan.hierarchies.empty());
}

}  // namespace
}  // namespace moat::runtime
