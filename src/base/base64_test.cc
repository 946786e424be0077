#include "base/base64.h"
#include "base/strings.h"

#include <gtest/gtest.h>

namespace moat {
namespace {

TEST(Base64Test, Rfc4648Vectors) {
  const std::pair<const char*, const char*> cases[] = {
      {"", ""},           {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, enc] : cases) {
    EXPECT_EQ(Base64Encode(plain), enc);
    EXPECT_EQ(Base64Decode(enc), plain) << enc;
  }
}

TEST(Base64Test, UrlAlphabetAndMissingPadding) {
  std::string bytes = "\xfb\xff\xbf";  // "+/+/" in the standard alphabet
  EXPECT_EQ(Base64Encode(bytes), "+/+/");
  EXPECT_EQ(Base64Encode(bytes, Base64Alphabet::kUrl), "-_-_");
  EXPECT_EQ(Base64Decode("-_-_"), bytes);
  EXPECT_EQ(Base64Decode("+/+/"), bytes);
  EXPECT_EQ(Base64Decode("Zm8"), "fo");
  EXPECT_EQ(Base64Decode("Zg"), "f");
  EXPECT_EQ(Base64Decode("  Zm9v\n"), "foo");
  // What the docker CLI sends for an empty auth config: {} -> e30=
  EXPECT_EQ(Base64Decode("e30="), "{}");
}

TEST(Base64Test, RejectsGarbage) {
  EXPECT_FALSE(Base64Decode("Zm9v!"));
  EXPECT_FALSE(Base64Decode("Z"));         // one char cannot be base64
  EXPECT_FALSE(Base64Decode("Zm=9"));      // '=' inside
  EXPECT_FALSE(Base64Decode("Zg="));       // wrong padding length
  EXPECT_FALSE(Base64Decode("+_+_"));      // alphabets mixed
  EXPECT_FALSE(Base64Decode("Zh=="));      // non-zero leftover bits
  EXPECT_FALSE(Base64Decode("Zm9v===="));  // too much padding
}

}  // namespace
}  // namespace moat

namespace moat {
namespace {

TEST(Utf8Test, WellFormedOnly) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\xb3"));
  EXPECT_FALSE(IsValidUtf8("s\xfe-\xbf"));       // 0xfe is never UTF-8
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\x80"));              // lone continuation
}

}  // namespace
}  // namespace moat
