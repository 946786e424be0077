#include "runtime/user_ns.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace moat::runtime {
namespace {

oci::IdMapping M(uint32_t c, uint32_t h, uint32_t s) { return {c, h, s}; }

TEST(ChooseIdMapWriterTest, RootWritesEverythingItself) {
  EXPECT_EQ(ChooseIdMapWriter(0, 0, {M(0, 100000, 65536), M(65536, 5, 1)}), IdMapWriter::kDirect);
}

TEST(ChooseIdMapWriterTest, UnprivilegedOwnIdOnlyIsDirect) {
  EXPECT_EQ(ChooseIdMapWriter(1000, 1000, {M(0, 1000, 1)}), IdMapWriter::kDirect);
  EXPECT_EQ(ChooseIdMapWriter(1000, 1000, {M(5, 1000, 1)}), IdMapWriter::kDirect);
}

TEST(ChooseIdMapWriterTest, UnprivilegedAnythingElseNeedsTheHelper) {
  EXPECT_EQ(ChooseIdMapWriter(1000, 1000, {M(0, 1001, 1)}), IdMapWriter::kHelper);
  EXPECT_EQ(ChooseIdMapWriter(1000, 1000, {M(0, 1000, 2)}), IdMapWriter::kHelper);
  EXPECT_EQ(ChooseIdMapWriter(1000, 1000, {M(0, 1000, 1), M(1, 100000, 65536)}),
            IdMapWriter::kHelper);
  EXPECT_EQ(ChooseIdMapWriter(1000, 1000, {}), IdMapWriter::kHelper);
  // gid maps are judged against the egid, not the euid.
  EXPECT_EQ(ChooseIdMapWriter(1000, 2000, {M(0, 1000, 1)}), IdMapWriter::kHelper);
}

TEST(IdMapHelperArgvTest, ToolPidThenTriples) {
  EXPECT_EQ(
      IdMapHelperArgv("newuidmap", 42, {M(0, 1000, 1), M(1, 100000, 65536)}),
      (std::vector<std::string>{"newuidmap", "42", "0", "1000", "1", "1", "100000", "65536"}));
}

TEST(FindOnPathTest, FirstExecutableRegularFile) {
  char tmpl[] = "/tmp/moat-user-ns-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::string a = dir + "/a", b = dir + "/b";
  ASSERT_EQ(mkdir(a.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(b.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((a + "/tool").c_str(), 0755), 0);  // a directory is not a program
  std::ofstream(b + "/tool") << "#!/bin/sh\n";
  ASSERT_EQ(chmod((b + "/tool").c_str(), 0755), 0);
  auto found = FindOnPath("tool", a + ":" + b);
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(*found, b + "/tool");
  auto missing = FindOnPath("nothere", a + ":" + b);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  unlink((b + "/tool").c_str());
  rmdir((a + "/tool").c_str());
  rmdir(a.c_str());
  rmdir(b.c_str());
  rmdir(dir.c_str());
}

}  // namespace
}  // namespace moat::runtime
