#include "base/sys/socket.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace moat::sys {
namespace {

TEST(RecvWithFdsTest, LargeBoundOnSeqpacketGetsTheMessageAndItsFds) {
  auto pair = socketpair(SOCK_SEQPACKET);
  ASSERT_TRUE(pair);
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  UniqueFd r(p[0]), w(p[1]);
  std::string big(100'000, 'x');
  ASSERT_TRUE(SendWithFds(pair->first.get(), "small", {r.get()}));
  ASSERT_TRUE(SendWithFds(pair->first.get(), big, {}));
  auto m = RecvWithFds(pair->second.get(), 4 << 20, 4);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->data, "small");
  // Sized by the message, not by the 4 MiB bound.
  EXPECT_LT(m->data.capacity(), 4096u);
  ASSERT_EQ(m->fds.size(), 1u);
  ASSERT_EQ(::write(w.get(), "y", 1), 1);
  char c = 0;
  EXPECT_EQ(::read(m->fds[0].get(), &c, 1), 1);
  EXPECT_EQ(c, 'y');
  auto m2 = RecvWithFds(pair->second.get(), 4 << 20, 4);
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->data, big);
  // A message longer than the bound is cut to it, as before.
  ASSERT_TRUE(SendWithFds(pair->first.get(), big, {}));
  auto m3 = RecvWithFds(pair->second.get(), 70'000, 0);
  ASSERT_TRUE(m3);
  EXPECT_EQ(m3->data.size(), 70'000u);
  pair->first.reset();
  auto eof = RecvWithFds(pair->second.get(), 4 << 20, 4);
  ASSERT_TRUE(eof);
  EXPECT_TRUE(eof->data.empty());
  EXPECT_TRUE(eof->fds.empty());
}

TEST(RecvWithFdsTest, StreamSocketsAreNotPeekedAway) {
  auto pair = socketpair(SOCK_STREAM);
  ASSERT_TRUE(pair);
  ASSERT_TRUE(SendWithFds(pair->first.get(), "stream bytes", {}));
  auto m = RecvWithFds(pair->second.get(), 1 << 20, 0);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->data, "stream bytes");
}

}  // namespace
}  // namespace moat::sys
