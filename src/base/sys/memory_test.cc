#include "base/sys/memory.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

namespace moat::sys {
namespace {

long StatusKib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::atol(line.c_str() + field.size() + 1);
  return -1;
}

struct Shape {
  virtual ~Shape() = default;
  virtual int Sides() const = 0;
};
struct Square : Shape {
  int Sides() const override { return 4; }
};

const char kTable[] = "read-only data that must survive";
int counter = 41;  // writable data

TEST(ReleaseOneOffMemory, DropsCodePagesAndKeepsState) {
  long before = StatusKib("RssFile");
  ASSERT_GT(before, 0);
  std::unique_ptr<Shape> s = std::make_unique<Square>();
  ++counter;
  ReleasedMemory m = ReleaseOneOffMemory();
  long after = StatusKib("RssFile");
  EXPECT_GT(m.image_bytes, 0u);
  // gtest and the libraries touched far more code than reading a file needs again.
  EXPECT_LT(after, before) << "RssFile " << before << " -> " << after << " KiB";
  // Nothing was lost: writable data, relocated vtables (RELRO), read-only data, code.
  EXPECT_EQ(counter, 42);
  EXPECT_EQ(s->Sides(), 4);
  EXPECT_EQ(std::string(kTable), "read-only data that must survive");
  EXPECT_EQ(ReleaseOneOffMemory().image_bytes, m.image_bytes);
}

// Polls `done` for up to 10 s (a loaded CI machine): true once it holds.
template <typename F>
bool Eventually(F done) {
  for (int i = 0; i < 1000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

TEST(QuietReleaser, ReleasesOnceAfterTheQuietAndNotWhileBusy) {
  // A long quiet, so that activity every few milliseconds holds it off on any machine.
  QuietReleaser r(std::chrono::milliseconds(2000));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(r.releases(), 0) << "released before any activity";
  for (int i = 0; i < 50; ++i) {
    r.Activity();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(r.releases(), 0) << "released while requests kept coming";
  EXPECT_TRUE(Eventually([&] { return r.releases() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(r.releases(), 1) << "released again without activity";
}

TEST(QuietReleaser, DropsCodePagesWhenQuiet) {
  // gtest's code, mapped again since any earlier release, is what goes.
  long before = StatusKib("RssFile");
  QuietReleaser r(std::chrono::milliseconds(50));
  r.Activity();
  ASSERT_TRUE(Eventually([&] { return r.releases() == 1; }));
  long after = StatusKib("RssFile");
  EXPECT_LT(after, before) << "RssFile " << before << " -> " << after << " KiB";
  std::unique_ptr<Shape> s = std::make_unique<Square>();
  EXPECT_EQ(s->Sides(), 4);
}

TEST(QuietReleaser, StopsWhileWaiting) {
  // The destructor ends the thread in the middle of a quiet period (no hang, no release).
  auto r = std::make_unique<QuietReleaser>(std::chrono::hours(1));
  r->Activity();
  EXPECT_EQ(r->releases(), 0);
  r.reset();
}

}  // namespace
}  // namespace moat::sys
