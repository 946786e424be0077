#include "runtime/state_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "base/sys/fs.h"

namespace moat::runtime {
namespace {

TEST(ValidateIdTest, RuncCharacterSet) {
  EXPECT_TRUE(ValidateId("abc-1_2+3.x").has_value());
  EXPECT_FALSE(ValidateId("").has_value());
  EXPECT_FALSE(ValidateId("../x").has_value());
  EXPECT_FALSE(ValidateId("a/b").has_value());
  EXPECT_FALSE(ValidateId(".hidden").has_value());
  EXPECT_FALSE(ValidateId(std::string(2000, 'a')).has_value());
}

TEST(StateRootOwnerTest, OthersRootsAndWritableOnesAreRefusedUnlessRoot) {
  struct stat st {};
  st.st_mode = S_IFDIR | 0700;
  st.st_uid = 1000;
  EXPECT_TRUE(CheckStateRootOwner("/tmp/r", st, 1000).has_value());
  auto other = CheckStateRootOwner("/tmp/r", st, 1001);
  ASSERT_FALSE(other.has_value());
  EXPECT_EQ(other.error().kind, ErrorKind::kPermissionDenied);
  EXPECT_NE(other.error().message.find("belongs to uid 1000"), std::string::npos)
      << other.error().message;
  st.st_mode = S_IFDIR | 0777;
  auto writable = CheckStateRootOwner("/tmp/r", st, 1000);
  ASSERT_FALSE(writable.has_value());
  EXPECT_NE(writable.error().message.find("writable by others"), std::string::npos);
  st.st_mode = S_IFLNK | 0777;
  EXPECT_FALSE(CheckStateRootOwner("/tmp/r", st, 1000).has_value());
  // Root keeps state wherever it is told to.
  st.st_mode = S_IFDIR | 0777;
  st.st_uid = 1000;
  EXPECT_TRUE(CheckStateRootOwner("/tmp/r", st, 0).has_value());
}

TEST(StateStoreTest, SaveLoadAndDerivedStatus) {
  char tmpl[] = "/tmp/moat-state-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  StateStore store(tmpl);
  ASSERT_TRUE(store.CreateDir("c1").has_value());
  auto again = store.CreateDir("c1");
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().kind, ErrorKind::kAlreadyExists);

  ContainerState s;
  s.id = "c1";
  s.pid = getpid();
  s.pid_start_time = *ProcessStartTime(getpid());
  s.bundle = "/b";
  s.rootfs = "/b/rootfs";
  s.created = "2026-01-01T00:00:00Z";
  s.annotations["k"] = "v";
  ASSERT_TRUE(store.Save(s).has_value());
  auto loaded = store.Load("c1");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->annotations.at("k"), "v");
  EXPECT_EQ(DeriveStatus(store, *loaded, [] { return false; }), Status::kRunning);
  EXPECT_EQ(DeriveStatus(store, *loaded, [] { return true; }), Status::kPaused);
  loaded->pid_start_time += 1;  // a reused pid
  EXPECT_EQ(DeriveStatus(store, *loaded, [] { return false; }), Status::kStopped);

  auto missing = store.Load("nope");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message, "container nope does not exist");
  auto missing_config = store.LoadConfig("nope");
  ASSERT_FALSE(missing_config.has_value());
  EXPECT_EQ(missing_config.error().message, "container nope does not exist");
  ASSERT_TRUE(store.Remove("c1").has_value());
  EXPECT_EQ(store.List()->size(), 0u);
  ASSERT_TRUE(sys::RemoveAll(tmpl).has_value());
}

}  // namespace
}  // namespace moat::runtime
