#include "base/sys/fs.h"


#include <gtest/gtest.h>
#include <linux/openat2.h>
#include <unistd.h>

#include <cstdlib>

namespace moat::sys {
namespace {

class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moat-fs-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { ASSERT_TRUE(RemoveAll(dir_).has_value()); }
  std::string dir_;
};

TEST_F(FsTest, AtomicWriteReplacesWholeFile) {
  std::string p = dir_ + "/f";
  ASSERT_TRUE(WriteFileAtomic(p, "first version").has_value());
  ASSERT_TRUE(WriteFileAtomic(p, "2").has_value());
  EXPECT_EQ(*ReadFile(p), "2");
  // No temp file is left beside it.
  EXPECT_EQ(access((p + ".tmp-" + std::to_string(getpid())).c_str(), F_OK), -1);
}

TEST_F(FsTest, MkdirAllAndRemoveAll) {
  ASSERT_TRUE(MkdirAll(dir_ + "/a/b/c", 0755).has_value());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/a/b/c/x", "x").has_value());
  ASSERT_TRUE(symlinkat("/etc/passwd", AT_FDCWD, dir_ + "/a/link").has_value());
  ASSERT_TRUE(RemoveAll(dir_ + "/a").has_value());
  EXPECT_EQ(access((dir_ + "/a").c_str(), F_OK), -1);
  EXPECT_EQ(access("/etc/passwd", F_OK), 0);  // the symlink's target survives
}

TEST_F(FsTest, OpenAt2InRootCannotEscape) {
  ASSERT_TRUE(MkdirAll(dir_ + "/root/etc", 0755).has_value());
  ASSERT_TRUE(symlinkat("/etc", AT_FDCWD, dir_ + "/root/escape").has_value());
  auto root = open(dir_ + "/root", O_PATH | O_DIRECTORY);
  ASSERT_TRUE(root.has_value());
  // "/escape/passwd" resolves inside the root: root/etc/passwd, which does not exist.
  auto fd = openat2(root->get(), "escape/passwd", O_RDONLY, 0, RESOLVE_IN_ROOT);
  ASSERT_FALSE(fd.has_value());
  EXPECT_EQ(fd.error().kind, ErrorKind::kNotFound);
  auto up = openat2(root->get(), "../../../etc/passwd", O_RDONLY, 0, RESOLVE_IN_ROOT);
  EXPECT_FALSE(up.has_value());
}

TEST_F(FsTest, ReadMissingFileNamesThePath) {
  auto r = ReadFile(dir_ + "/missing");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find(dir_ + "/missing"), std::string::npos);
}

}  // namespace
}  // namespace moat::sys
