#include "cli/stdcopy.h"

#include <gtest/gtest.h>

namespace moat::cli {
namespace {

struct Collected {
  std::string out, err;
};

StdcopyDemuxer Demuxer(Collected* c) {
  return StdcopyDemuxer([c](StdStream s, std::string_view d) -> Result<void> {
    (s == StdStream::kStdout ? c->out : c->err).append(d);
    return Ok();
  });
}

TEST(StdcopyTest, DemultiplexesFrames) {
  Collected c;
  auto d = Demuxer(&c);
  std::string stream = StdcopyFrame(StdStream::kStdout, "out\n") +
                       StdcopyFrame(StdStream::kStderr, "err\n") +
                       StdcopyFrame(StdStream::kStdout, "more");
  ASSERT_TRUE(d.Feed(stream).has_value());
  EXPECT_EQ(c.out, "out\nmore");
  EXPECT_EQ(c.err, "err\n");
  EXPECT_TRUE(d.AtFrameBoundary());
}

TEST(StdcopyTest, ByteByByteSplitsGiveTheSameResult) {
  Collected c;
  auto d = Demuxer(&c);
  std::string stream = StdcopyFrame(StdStream::kStderr, std::string(300, 'e')) +
                       StdcopyFrame(StdStream::kStdout, "x") + StdcopyFrame(StdStream::kStdout, "");
  for (char ch : stream) ASSERT_TRUE(d.Feed(std::string_view(&ch, 1)).has_value());
  EXPECT_EQ(c.err, std::string(300, 'e'));
  EXPECT_EQ(c.out, "x");
  EXPECT_TRUE(d.AtFrameBoundary());
}

TEST(StdcopyTest, HalfFrameIsNotABoundary) {
  Collected c;
  auto d = Demuxer(&c);
  std::string frame = StdcopyFrame(StdStream::kStdout, "hello");
  ASSERT_TRUE(d.Feed(frame.substr(0, 10)).has_value());
  EXPECT_EQ(c.out, "he");
  EXPECT_FALSE(d.AtFrameBoundary());
}

TEST(StdcopyTest, UnframedInputIsAnError) {
  Collected c;
  auto d = Demuxer(&c);
  auto r = d.Feed("hello world, raw tty bytes");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
}

TEST(StdcopyTest, LargeSizeIsBigEndian) {
  std::string frame = StdcopyFrame(StdStream::kStdout, std::string(0x010203, 'a'));
  EXPECT_EQ(static_cast<uint8_t>(frame[5]), 0x01);
  EXPECT_EQ(static_cast<uint8_t>(frame[6]), 0x02);
  EXPECT_EQ(static_cast<uint8_t>(frame[7]), 0x03);
}

}  // namespace
}  // namespace moat::cli
