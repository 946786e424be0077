#include "base/sys/spawn.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "base/sys/io.h"

namespace moat {
namespace {

TEST(FindOnPathTest, FirstExecutableRegularFile) {
  char tmpl[] = "/tmp/moat-spawn-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::string a = dir + "/a", b = dir + "/b";
  ASSERT_EQ(mkdir(a.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(b.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((a + "/tool").c_str(), 0755), 0);  // a directory is not a program
  std::ofstream(b + "/tool") << "#!/bin/sh\n";
  ASSERT_EQ(chmod((b + "/tool").c_str(), 0755), 0);
  auto found = sys::FindOnPath("tool", a + ":" + b);
  ASSERT_TRUE(found) << found.error().message;
  EXPECT_EQ(*found, b + "/tool");
  auto missing = sys::FindOnPath("nothere", a + ":" + b);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  unlink((b + "/tool").c_str());
  rmdir((a + "/tool").c_str());
  rmdir(a.c_str());
  rmdir(b.c_str());
  rmdir(dir.c_str());
}

TEST(RunCollectingOutputTest, StatusAndOutputOfTheProgram) {
  // stderr always, stdout only when asked.
  auto both =
      sys::RunCollectingOutput("/bin/sh", {"sh", "-c", "echo out; echo err >&2; exit 3"}, -1, true);
  ASSERT_TRUE(both) << both.error().message;
  EXPECT_FALSE(both->Succeeded());
  EXPECT_EQ(WEXITSTATUS(both->status), 3);
  EXPECT_EQ(both->output, "out\nerr\n");
  auto err_only =
      sys::RunCollectingOutput("/bin/sh", {"sh", "-c", "echo out; echo err >&2"}, -1, false);
  ASSERT_TRUE(err_only) << err_only.error().message;
  EXPECT_TRUE(err_only->Succeeded());
  EXPECT_EQ(err_only->output, "err\n");
  // The given stdin; output cut at the limit.
  auto in = sys::pipe2(0);
  ASSERT_TRUE(in);
  ASSERT_EQ(write(in->second.get(), "abcdef", 6), 6);
  in->second.reset();
  auto cat =
      sys::RunCollectingOutput("/bin/sh", {"sh", "-c", "cat >&2"}, in->first.get(), false, 4);
  ASSERT_TRUE(cat) << cat.error().message;
  EXPECT_EQ(cat->output, "abcd");
  auto missing = sys::RunCollectingOutput("/nonexistent/tool", {"tool"}, -1, false);
  EXPECT_FALSE(missing);
}

}  // namespace
}  // namespace moat
