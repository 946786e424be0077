#include "base/sys/process.h"

#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <string>

namespace moat {
namespace {

TEST(ProcStatFieldsTest, NumberedAsInProcFive) {
  // A command name with a space and parentheses must not shift the fields after it.
  char old_name[17] = {};
  ASSERT_EQ(prctl(PR_GET_NAME, old_name), 0);
  ASSERT_EQ(prctl(PR_SET_NAME, "a) (b c"), 0);
  auto self = sys::ProcStatFields(0);
  auto by_pid = sys::ProcStatFields(getpid());
  prctl(PR_SET_NAME, old_name);
  ASSERT_TRUE(self) << self.error().message;
  ASSERT_TRUE(by_pid) << by_pid.error().message;
  ASSERT_GE(self->size(), 52u);
  EXPECT_EQ((*self)[0], std::to_string(getpid()));  // field 1: pid
  EXPECT_EQ((*self)[1], "a) (b c");                  // field 2: comm
  EXPECT_EQ((*self)[2], "R");                        // field 3: state (running: reading)
  EXPECT_EQ((*self)[3], std::to_string(getppid()));  // field 4: ppid
  EXPECT_EQ((*by_pid)[21], (*self)[21]);             // field 22: start time
  auto gone = sys::ProcStatFields(0x7ffffff0);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind, ErrorKind::kNotFound);
}

}  // namespace
}  // namespace moat
