#include "runtime/mounts.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include "base/sys/fs.h"
#include "base/sys/linux_compat.h"

namespace moat::runtime {
namespace {

oci::Mount M(std::string dest, std::string type, std::vector<std::string> opts,
             std::string source = "none") {
  oci::Mount m;
  m.destination = std::move(dest);
  m.type = std::move(type);
  m.source = std::move(source);
  m.options = std::move(opts);
  return m;
}

TEST(PlanMountTest, FsMountFlagsAndData) {
  auto op = PlanMount(M("/dev", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
                      "/b", "mounts[1]");
  ASSERT_TRUE(op.has_value()) << op.error().message;
  EXPECT_EQ(op->flags, static_cast<unsigned long>(MS_NOSUID | MS_STRICTATIME));
  EXPECT_EQ(op->data, "mode=755,size=65536k");
  EXPECT_FALSE(op->bind);
}

TEST(PlanMountTest, BindWithReadonlyBecomesMountAttributes) {
  auto op = PlanMount(M("/data", "none", {"rbind", "ro", "nosuid", "rslave"}, "/tmp"), "/b",
                      "mounts[0]");
  ASSERT_TRUE(op.has_value()) << op.error().message;
  EXPECT_TRUE(op->bind);
  EXPECT_TRUE(op->recursive);
  EXPECT_EQ(op->attr_set, static_cast<uint64_t>(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID));
  EXPECT_EQ(op->propagation, static_cast<unsigned long>(MS_SLAVE | MS_REC));
  EXPECT_TRUE(op->source_is_dir);
}

TEST(PlanMountTest, RelativeBindSourceIsUnderTheBundle) {
  auto op = PlanMount(M("/x", "bind", {}, "nonexistent-dir"), "/nonexistent-bundle", "mounts[4]");
  ASSERT_FALSE(op.has_value());
  EXPECT_NE(op.error().message.find("mounts[4].source: /nonexistent-bundle/nonexistent-dir"),
            std::string::npos)
      << op.error().message;
}

TEST(PlanMountTest, RecursiveReadonlyOption) {
  auto op = PlanMount(M("/d", "bind", {"rro"}, "/tmp"), "/b", "mounts[0]");
  ASSERT_TRUE(op.has_value());
  EXPECT_TRUE(op->attr_recursive);
  EXPECT_EQ(op->attr_set, static_cast<uint64_t>(MOUNT_ATTR_RDONLY));
}

TEST(PlanMountTest, NonBindNeedsAType) {
  auto op = PlanMount(M("/d", "", {"nosuid"}), "/b", "mounts[2]");
  ASSERT_FALSE(op.has_value());
  EXPECT_NE(op.error().message.find("mounts[2].type"), std::string::npos);
}

TEST(PropagationTest, Names) {
  EXPECT_EQ(*PropagationFlags(""), static_cast<unsigned long>(MS_REC | MS_SLAVE));
  EXPECT_EQ(*PropagationFlags("rprivate"), static_cast<unsigned long>(MS_REC | MS_PRIVATE));
  auto bad = PropagationFlags("sideways");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("linux.rootfsPropagation"), std::string::npos);
}

TEST(MkdirAllInRootTest, SymlinksCannotLeaveTheRoot) {
  char tmpl[] = "/tmp/moat-mkroot-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  struct Cleanup {
    std::string dir;
    ~Cleanup() { (void)sys::RemoveAll(dir); }
  } cleanup{dir};
  std::string outside = dir + "/outside";
  ASSERT_TRUE(sys::MkdirAll(dir + "/root", 0755).has_value());
  ASSERT_TRUE(sys::MkdirAll(outside, 0755).has_value());
  // An image that points /evil at an absolute host path.
  ASSERT_TRUE(sys::symlinkat(outside, AT_FDCWD, dir + "/root/evil").has_value());
  auto root = sys::open(dir + "/root", O_PATH | O_DIRECTORY);
  ASSERT_TRUE(root.has_value());
  auto fd = MkdirAllInRoot(root->get(), "/evil/created/file", false);
  ASSERT_TRUE(fd.has_value()) << fd.error().message;
  // The symlink was followed inside the root: root/<outside path>/created/file.
  EXPECT_EQ(access((dir + "/root" + outside + "/created/file").c_str(), F_OK), 0);
  EXPECT_NE(access((outside + "/created").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace moat::runtime
