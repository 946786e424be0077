#include "base/result.h"

#include <gtest/gtest.h>

namespace moat {
namespace {

Result<int> Half(int x) {
  if (x % 2) return Fail(ErrorKind::kInvalidArgument, "%d is odd", x);
  return x / 2;
}

Result<int> Quarter(int x) {
  MOAT_ASSIGN_OR_RETURN(int h, Half(x));
  MOAT_ASSIGN_OR_RETURN(int q, std::move(Half(h)).Context("halving %d", h));
  return q;
}

TEST(ResultTest, PropagatesValueAndErrorWithContext) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(r.error().message, "halving 3: 3 is odd");
}

TEST(ResultTest, FromErrnoMapsKindAndText) {
  Error e = Error::FromErrno(ENOENT, "open /x");
  EXPECT_EQ(e.kind, ErrorKind::kNotFound);
  EXPECT_EQ(e.sys_errno, ENOENT);
  EXPECT_EQ(e.message, "open /x: No such file or directory");
  EXPECT_EQ(Error::FromErrno(EACCES, "x").kind, ErrorKind::kPermissionDenied);
}

Result<void> Step(bool ok) {
  if (!ok) return Fail(ErrorKind::kConflict, "busy");
  return Ok();
}

Result<void> Steps(bool a, bool b) {
  MOAT_TRY(Step(a));
  MOAT_TRY(std::move(Step(b)).Context("second"));
  return Ok();
}

TEST(ResultTest, VoidResult) {
  EXPECT_TRUE(Steps(true, true).has_value());
  auto r = Steps(true, false);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "second: busy");
}

TEST(StringsTest, ParseIsStrict) {
  EXPECT_EQ(ParseInt64("-12"), -12);
  EXPECT_FALSE(ParseInt64("12x"));
  EXPECT_FALSE(ParseInt64(""));
  EXPECT_FALSE(ParseUint64("-1"));
  EXPECT_EQ(StrSplit("a::b", ':').size(), 3u);
  EXPECT_EQ(StrJoin({"a", "b"}, ","), "a,b");
}

}  // namespace
}  // namespace moat
