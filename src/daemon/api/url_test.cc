#include "daemon/api/url.h"

#include <gtest/gtest.h>

namespace moat::daemon::api {
namespace {

TEST(PercentDecodeTest, PathKeepsPlusQuerySpaces) {
  EXPECT_EQ(*PercentDecode("a%2Fb+c%3a", PlusIsSpace::kNo), "a/b+c:");
  EXPECT_EQ(*PercentDecode("a%2fb+c", PlusIsSpace::kYes), "a/b c");
  EXPECT_EQ(*PercentDecode("", PlusIsSpace::kYes), "");
}

TEST(PercentDecodeTest, RejectsMalformedEscapes) {
  EXPECT_FALSE(PercentDecode("%", PlusIsSpace::kNo).has_value());
  EXPECT_FALSE(PercentDecode("ab%2", PlusIsSpace::kNo).has_value());
  Result<std::string> bad = PercentDecode("x%zzy", PlusIsSpace::kNo);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(bad.error().message, "invalid URL escape \"%zz\"");
}

TEST(ParseQueryTest, GoSemantics) {
  auto q = ParseQuery("repo=docker.io%2Fmyorg%2Ftagged&tag=x&a=1&a=2&flag&&sp=a+b&e=");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->count("a"), 2u);
  EXPECT_EQ(q->find("repo")->second, "docker.io/myorg/tagged");
  EXPECT_EQ(q->find("tag")->second, "x");
  EXPECT_EQ(q->find("flag")->second, "");
  EXPECT_EQ(q->find("sp")->second, "a b");
  EXPECT_EQ(q->find("e")->second, "");
  EXPECT_EQ(q->size(), 7u);
  auto values = q->equal_range("a");
  EXPECT_EQ(values.first->second, "1");  // insertion order kept for equal keys
  EXPECT_EQ(std::next(values.first)->second, "2");
  EXPECT_FALSE(ParseQuery("a=%G1").has_value());
  EXPECT_TRUE(ParseQuery("")->empty());
}

TEST(VersionPrefixTest, Splits) {
  auto p = SplitVersionPrefix("/v1.41/containers/json");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->version, "1.41");
  EXPECT_EQ(p->rest, "/containers/json");
  EXPECT_FALSE(SplitVersionPrefix("/version").has_value());
  EXPECT_FALSE(SplitVersionPrefix("/v1.41").has_value());
  EXPECT_FALSE(SplitVersionPrefix("/v/x").has_value());
  EXPECT_FALSE(SplitVersionPrefix("/volumes/x").has_value());
  EXPECT_EQ(SplitVersionPrefix("/v1.47/_ping")->rest, "/_ping");
}

TEST(VersionPrefixTest, Window) {
  EXPECT_EQ(*CheckApiVersion("1.40"), 40);
  EXPECT_EQ(*CheckApiVersion("1.47"), 47);
  EXPECT_EQ(*CheckApiVersion("1.41"), 41);
  Result<int> new_ = CheckApiVersion("1.52");
  ASSERT_FALSE(new_.has_value());
  EXPECT_EQ(new_.error().message,
            "client version 1.52 is too new. Maximum supported API version is 1.47");
  Result<int> old = CheckApiVersion("1.12");
  ASSERT_FALSE(old.has_value());
  EXPECT_EQ(old.error().message,
            "client version 1.12 is too old. Minimum supported API version is 1.40, please "
            "upgrade your client to a newer version");
  EXPECT_FALSE(CheckApiVersion("1.4").has_value());  // 4 < 40: compared as numbers
  EXPECT_FALSE(CheckApiVersion("2.0").has_value());
  EXPECT_FALSE(CheckApiVersion("1.99999999999999999999999").has_value());
  EXPECT_FALSE(CheckApiVersion("1.47.1").has_value());
}

TEST(JsonQuoteTest, Escapes) {
  EXPECT_EQ(JsonQuote("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\u0001\"");
  EXPECT_EQ(JsonQuote(""), "\"\"");
}

}  // namespace
}  // namespace moat::daemon::api
