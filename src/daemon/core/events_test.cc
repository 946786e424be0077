#include "daemon/core/events.h"

#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include <gtest/gtest.h>

namespace moat::daemon::core {
namespace {

// Reads `fd` until EOF or `limit`; the text and whether EOF came.
std::pair<std::string, bool> ReadUntilEof(int fd, std::chrono::milliseconds limit) {
  std::string out;
  auto end = std::chrono::steady_clock::now() + limit;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return {out, false};
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return {out, true};
    if (n > 0) out.append(buf, static_cast<size_t>(n));
  }
}

TEST(EventsTest, AStreamWithUntilEndsThenWithoutAnyEvent) {
  Events events;
  int64_t until = NowNano() + 300'000'000;  // 0.3 s from now
  auto fd = events.Subscribe(0, until, Json::object());
  ASSERT_TRUE(fd.has_value()) << fd.error().message;
  events.Publish(Event{"network", "create", "n1", {{"name", "a"}}, 0});
  auto [text, eof] = ReadUntilEof(fd->get(), std::chrono::seconds(3));
  EXPECT_TRUE(eof) << "the stream did not end at its until";
  EXPECT_NE(text.find("\"create\""), std::string::npos) << text;
  EXPECT_GE(NowNano(), until);
}

TEST(EventsTest, AStreamWithoutUntilStaysOpen) {
  Events events;
  auto fd = events.Subscribe(0, 0, Json::object());
  ASSERT_TRUE(fd.has_value());
  auto [text, eof] = ReadUntilEof(fd->get(), std::chrono::milliseconds(300));
  EXPECT_FALSE(eof);
}

TEST(EventsTest, TheEarliestUntilIsServedFirst) {
  Events events;
  auto late = events.Subscribe(0, NowNano() + 5'000'000'000, Json::object());
  auto soon = events.Subscribe(0, NowNano() + 200'000'000, Json::object());
  ASSERT_TRUE(late.has_value() && soon.has_value());
  auto [text, eof] = ReadUntilEof(soon->get(), std::chrono::seconds(3));
  EXPECT_TRUE(eof) << "the later until held the earlier one back";
}

}  // namespace
}  // namespace moat::daemon::core
