#include "runtime/user_ns.h"

#include <gtest/gtest.h>


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

}  // namespace
}  // namespace moat::runtime
