#include "runtime/monitor/log_writer.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/sys/fs.h"

namespace moat::runtime::monitor {
namespace {

class LogWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/moat-log-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/c.log";
  }
  void TearDown() override { (void)sys::RemoveAll(dir_); }
  std::string Read(const std::string& p) {
    auto r = sys::ReadFile(p);
    return r ? *r : "<missing>";
  }
  static Clock FixedClock() {
    return [] { return std::string("T"); };
  }
  std::string dir_, path_;
};

TEST_F(LogWriterTest, SplitsAtNewlinesAndKeepsPartialLines) {
  auto log = JsonFileLog::Open({path_, 0, 1}, FixedClock());
  ASSERT_TRUE(log) << log.error().message;
  ASSERT_TRUE((*log)->Write(Stream::kStdout, "a\nb"));
  ASSERT_TRUE((*log)->Write(Stream::kStderr, "e\n"));
  EXPECT_EQ(Read(path_),
            "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"T\"}\n"
            "{\"log\":\"e\\n\",\"stream\":\"stderr\",\"time\":\"T\"}\n");
  ASSERT_TRUE((*log)->Write(Stream::kStdout, "c\n"));
  ASSERT_TRUE((*log)->Write(Stream::kStdout, "tail"));
  ASSERT_TRUE((*log)->Flush());
  EXPECT_EQ(Read(path_),
            "{\"log\":\"a\\n\",\"stream\":\"stdout\",\"time\":\"T\"}\n"
            "{\"log\":\"e\\n\",\"stream\":\"stderr\",\"time\":\"T\"}\n"
            "{\"log\":\"bc\\n\",\"stream\":\"stdout\",\"time\":\"T\"}\n"
            "{\"log\":\"tail\",\"stream\":\"stdout\",\"time\":\"T\"}\n");
}

TEST_F(LogWriterTest, LongPartialLineIsFlushedAtTheLimit) {
  auto log = JsonFileLog::Open({path_, 0, 1}, FixedClock());
  ASSERT_TRUE(log);
  std::string big(kMaxPartialLine, 'x');
  ASSERT_TRUE((*log)->Write(Stream::kStdout, big));
  EXPECT_EQ(Read(path_), "{\"log\":\"" + big + "\",\"stream\":\"stdout\",\"time\":\"T\"}\n");
}

TEST_F(LogWriterTest, EscapesAndReplacesInvalidUtf8) {
  auto log = JsonFileLog::Open({path_, 0, 1}, FixedClock());
  ASSERT_TRUE(log);
  ASSERT_TRUE((*log)->Write(Stream::kStdout, std::string("q\"\t\x01\xff\n")));
  EXPECT_EQ(Read(path_),
            "{\"log\":\"q\\\"\\t\\u0001\xef\xbf\xbd\\n\",\"stream\":\"stdout\",\"time\":\"T\"}\n");
}

TEST_F(LogWriterTest, RotatesKeepingMaxFiles) {
  // Each record of one char + "\n" is 46 bytes: two fit in 100, a third rotates.
  auto log = JsonFileLog::Open({path_, 100, 3}, FixedClock());
  ASSERT_TRUE(log);
  for (char c : std::string("abcdefg"))
    ASSERT_TRUE((*log)->Write(Stream::kStdout, std::string{c, '\n'}));
  auto rec = [](char c) {
    return std::string("{\"log\":\"") + c + "\\n\",\"stream\":\"stdout\",\"time\":\"T\"}\n";
  };
  EXPECT_EQ(Read(path_), rec('g'));
  EXPECT_EQ(Read(path_ + ".1"), rec('e') + rec('f'));
  EXPECT_EQ(Read(path_ + ".2"), rec('c') + rec('d'));
  EXPECT_EQ(Read(path_ + ".3"), "<missing>");
}

TEST_F(LogWriterTest, OneFileIsTruncatedInPlace) {
  auto log = JsonFileLog::Open({path_, 60, 1}, FixedClock());
  ASSERT_TRUE(log);
  ASSERT_TRUE((*log)->Write(Stream::kStdout, "a\nb\n"));
  EXPECT_EQ(Read(path_), "{\"log\":\"b\\n\",\"stream\":\"stdout\",\"time\":\"T\"}\n");
  EXPECT_EQ(Read(path_ + ".1"), "<missing>");
}

TEST_F(LogWriterTest, RefusesBadOptions) {
  EXPECT_FALSE(JsonFileLog::Open({path_, 0, 0}, FixedClock()));
  EXPECT_FALSE(JsonFileLog::Open({path_, -1, 1}, FixedClock()));
  EXPECT_FALSE(JsonFileLog::Open({dir_ + "/no/such/dir/log", 0, 1}, FixedClock()));
}

TEST(RealClockTest, Rfc3339Nano) {
  std::string t = RealClockNow();
  ASSERT_EQ(t.size(), 30u) << t;
  EXPECT_EQ(t[4], '-');
  EXPECT_EQ(t[10], 'T');
  EXPECT_EQ(t[19], '.');
  EXPECT_EQ(t.back(), 'Z');
}

}  // namespace
}  // namespace moat::runtime::monitor
