#include <dirent.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "base/sys/fs.h"
#include "seccomp/compiler.h"
#include "seccomp/test_support.h"

namespace moat::seccomp {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::SizeIs;

bool SameProgram(const Program& a, const Program& b) {
  return a.flags == b.flags && a.needs_listener == b.needs_listener &&
         a.instructions.size() == b.instructions.size() &&
         std::memcmp(a.instructions.data(), b.instructions.data(),
                     a.instructions.size() * sizeof(sock_filter)) == 0;
}

class CacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moat-seccomp-cache-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    dir_ = root_ + "/cache";
  }
  void TearDown() override { ASSERT_TRUE(sys::RemoveAll(root_)); }

  // The one entry in the cache directory.
  std::string EntryPath() {
    std::vector<std::string> names;
    UniqueFd d = std::move(*sys::open(dir_, O_RDONLY | O_DIRECTORY));
    DIR* dir = fdopendir(d.release());
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') names.push_back(e->d_name);
    }
    closedir(dir);
    EXPECT_THAT(names, SizeIs(1));
    return names.empty() ? "" : dir_ + "/" + names[0];
  }

  std::string root_;
  std::string dir_;
};

oci::Seccomp SampleProfile() {
  oci::Seccomp p = Profile("SCMP_ACT_ERRNO", {Rule({"read", "write", "close"}, "SCMP_ACT_ALLOW"),
                                              Rule({"clone3"}, "SCMP_ACT_ERRNO", 38)});
  p.flags = {"SECCOMP_FILTER_FLAG_LOG"};
  return p;
}

TEST_F(CacheTest, SecondCallHitsTheCache) {
  CacheOutcome outcome;
  auto first = CompileCached(SampleProfile(), dir_, &outcome);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(outcome, CacheOutcome::kMiss);
  auto second = CompileCached(SampleProfile(), dir_, &outcome);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(outcome, CacheOutcome::kHit);
  EXPECT_TRUE(SameProgram(*first, *second));
  EXPECT_TRUE(SameProgram(*first, *Compile(SampleProfile())));
  EXPECT_EQ(second->flags, 2u);
  EXPECT_EQ(Verdict(*second, "clone3"), SECCOMP_RET_ERRNO | 38);

  const std::string path = EntryPath();
  EXPECT_THAT(path, EndsWith(".bpf"));
  struct stat st = *sys::fstatat(AT_FDCWD, path, 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  st = *sys::fstatat(AT_FDCWD, dir_, 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(CacheTest, DifferentProfilesGetDifferentEntries) {
  CacheOutcome outcome;
  ASSERT_TRUE(CompileCached(SampleProfile(), dir_, &outcome));
  oci::Seccomp other = SampleProfile();
  other.syscalls[1].errno_ret = 39;
  auto program = CompileCached(other, dir_, &outcome);
  ASSERT_TRUE(program);
  EXPECT_EQ(outcome, CacheOutcome::kMiss);
  EXPECT_EQ(Verdict(*program, "clone3"), SECCOMP_RET_ERRNO | 39);
  // An arg differing only in valueTwo is a different profile too.
  oci::Seccomp masked = SampleProfile();
  masked.syscalls.push_back(
      Rule({"socket"}, "SCMP_ACT_ALLOW", std::nullopt, {Arg(0, 0xff, "SCMP_CMP_MASKED_EQ", 1)}));
  ASSERT_TRUE(CompileCached(masked, dir_, &outcome));
  EXPECT_EQ(outcome, CacheOutcome::kMiss);
  masked.syscalls.back().args[0].value_two = 2;
  ASSERT_TRUE(CompileCached(masked, dir_, &outcome));
  EXPECT_EQ(outcome, CacheOutcome::kMiss);
}

TEST_F(CacheTest, CorruptEntriesAreRecompiled) {
  CacheOutcome outcome;
  auto good = CompileCached(SampleProfile(), dir_, &outcome);
  ASSERT_TRUE(good);
  const std::string path = EntryPath();
  const std::string original = *sys::ReadFile(path);

  std::vector<std::pair<std::string, std::string>> corruptions = {
      {"empty", ""},
      {"truncated", original.substr(0, original.size() - 9)},
      {"extended", original + std::string(8, '\0')},
      {"bad magic", "X" + original.substr(1)},
  };
  // One flipped bit in the middle of the instructions: only the checksum notices.
  std::string flipped = original;
  flipped[original.size() / 2] ^= 0x01;
  corruptions.emplace_back("flipped bit", flipped);
  // A valid entry of another profile renamed over this one: the embedded key differs.
  oci::Seccomp other = SampleProfile();
  other.default_errno_ret = 5;
  ASSERT_TRUE(CompileCached(other, root_ + "/other", &outcome));
  std::string other_dir = root_ + "/other";
  std::swap(dir_, other_dir);
  std::string other_entry = *sys::ReadFile(EntryPath());
  std::swap(dir_, other_dir);
  corruptions.emplace_back("other profile's entry", other_entry);

  for (const auto& [what, bytes] : corruptions) {
    SCOPED_TRACE(what);
    ASSERT_TRUE(sys::WriteFileAtomic(path, bytes, 0600));
    auto program = CompileCached(SampleProfile(), dir_, &outcome);
    ASSERT_TRUE(program) << program.error().message;
    EXPECT_EQ(outcome, CacheOutcome::kReplaced);
    EXPECT_TRUE(SameProgram(*program, *good));
    EXPECT_EQ(*sys::ReadFile(path), original);
    ASSERT_TRUE(CompileCached(SampleProfile(), dir_, &outcome));
    EXPECT_EQ(outcome, CacheOutcome::kHit);
  }
}

TEST_F(CacheTest, RefusesADirectoryOthersCanWrite) {
  ASSERT_TRUE(sys::MkdirAll(dir_, 0700));
  ASSERT_EQ(chmod(dir_.c_str(), 0777), 0);
  auto program = CompileCached(SampleProfile(), dir_);
  ASSERT_FALSE(program);
  EXPECT_EQ(program.error().kind, ErrorKind::kPermissionDenied);
  EXPECT_THAT(program.error().message, HasSubstr(dir_));
}

TEST_F(CacheTest, CompileErrorsPassThrough) {
  auto program = CompileCached(Profile("SCMP_ACT_ERRNO", {Rule({"foo"}, "SCMP_ACT_ALLOW")}), dir_);
  ASSERT_FALSE(program);
  EXPECT_THAT(program.error().message, HasSubstr("unknown syscall \"foo\""));
}

TEST_F(CacheTest, EntryThatCannotBeStoredStillCompiles) {
  // Learn the entry's name, then put a directory in its place: reading it fails (EISDIR) and
  // renaming a file over it fails too, whoever runs the test.
  ASSERT_TRUE(CompileCached(SampleProfile(), dir_));
  const std::string path = EntryPath();
  ASSERT_TRUE(sys::RemoveAll(path));
  ASSERT_TRUE(sys::MkdirAll(path, 0700));
  CacheOutcome outcome;
  auto program = CompileCached(SampleProfile(), dir_, &outcome);
  ASSERT_TRUE(program) << program.error().message;
  EXPECT_EQ(outcome, CacheOutcome::kReplaced);
  EXPECT_EQ(Verdict(*program, "read"), SECCOMP_RET_ALLOW);
}

}  // namespace
}  // namespace moat::seccomp
