// Privileged (root, real kernel): named network namespaces under a private temp directory.
#include "net/netns.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "net/netlink.h"

namespace moat::net {
namespace {

// A mkdtemp directory whose entries are treated as named namespaces on teardown: each is
// detached and unlinked, so a failed test leaves no mount and no file.
class NetnsDir {
 public:
  NetnsDir() {
    char tmpl[] = "/tmp/moat-netns-test-XXXXXX";
    MOAT_CHECK(mkdtemp(tmpl) != nullptr);
    path_ = tmpl;
  }
  ~NetnsDir() {
    if (DIR* d = opendir(path_.c_str())) {
      while (dirent* e = readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..") continue;
        std::string p = path_ + "/" + name;
        if (e->d_type == DT_DIR) {
          rmdir(p.c_str());
        } else {
          (void)RemoveNamedNetns(p);
        }
      }
      closedir(d);
    }
    rmdir(path_.c_str());
  }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

ino_t InodeOfFd(int fd) {
  struct stat st {};
  MOAT_CHECK(fstat(fd, &st) == 0);
  return st.st_ino;
}

ino_t ThreadNetnsInode() {
  struct stat st {};
  MOAT_CHECK(stat("/proc/thread-self/ns/net", &st) == 0);
  return st.st_ino;
}

// How many mounts sit on `path` (field 5 of /proc/self/mountinfo; our paths have no spaces).
int MountCount(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point;
    fields >> id >> parent >> dev >> root >> mount_point;
    if (mount_point == path) ++n;
  }
  return n;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

TEST(NetnsTest, CreateOpenRemove) {
  NetnsDir dir;
  std::string path = dir.Path("ns");
  ino_t own = ThreadNetnsInode();

  auto ns = CreateNamedNetns(path);
  ASSERT_TRUE(ns) << ns.error().message;
  EXPECT_EQ(ThreadNetnsInode(), own) << "the calling thread must be back in its namespace";
  EXPECT_NE(InodeOfFd(ns->get()), own) << "a new namespace";
  EXPECT_EQ(MountCount(path), 1);
  int fl = fcntl(ns->get(), F_GETFD);
  EXPECT_TRUE(fl & FD_CLOEXEC);

  auto opened = OpenNamedNetns(path);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(InodeOfFd(opened->get()), InodeOfFd(ns->get()));

  // Loopback is up in the new namespace.
  auto nl = Netlink::OpenIn(ns->get());
  ASSERT_TRUE(nl) << nl.error().message;
  auto lo = nl->GetLink("lo");
  ASSERT_TRUE(lo) << lo.error().message;
  EXPECT_TRUE(lo->up);

  ASSERT_TRUE(RemoveNamedNetns(path));
  EXPECT_EQ(MountCount(path), 0);
  EXPECT_FALSE(Exists(path));
  // Absent: still success.
  EXPECT_TRUE(RemoveNamedNetns(path));
  auto gone = OpenNamedNetns(path);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind, ErrorKind::kNotFound);
}

TEST(NetnsTest, CreateTwiceIsAlreadyExistsAndKeepsTheFirst) {
  NetnsDir dir;
  std::string path = dir.Path("ns");
  auto first = CreateNamedNetns(path);
  ASSERT_TRUE(first) << first.error().message;
  auto second = CreateNamedNetns(path);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().kind, ErrorKind::kAlreadyExists);
  EXPECT_NE(second.error().message.find(path), std::string::npos) << second.error().message;
  EXPECT_EQ(MountCount(path), 1);
  auto opened = OpenNamedNetns(path);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(InodeOfFd(opened->get()), InodeOfFd(first->get()));
}

TEST(NetnsTest, CreateInMissingDirectoryLeavesNothing) {
  NetnsDir dir;
  ino_t own = ThreadNetnsInode();
  std::string path = dir.Path("missing") + "/ns";
  auto ns = CreateNamedNetns(path);
  ASSERT_FALSE(ns);
  EXPECT_EQ(ns.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(ns.error().message.find(path), std::string::npos) << ns.error().message;
  EXPECT_EQ(ThreadNetnsInode(), own);
  EXPECT_EQ(MountCount(path), 0);
}

TEST(NetnsTest, OpenRejectsWhatIsNotANetworkNamespace) {
  NetnsDir dir;
  std::string file = dir.Path("plain");
  { std::ofstream(file) << "x"; }
  auto plain = OpenNamedNetns(file);
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(plain.error().message.find(file), std::string::npos) << plain.error().message;

  auto mntns = OpenNamedNetns("/proc/self/ns/mnt");
  ASSERT_FALSE(mntns);
  EXPECT_EQ(mntns.error().kind, ErrorKind::kInvalidArgument);

  auto absent = OpenNamedNetns(dir.Path("absent"));
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.error().kind, ErrorKind::kNotFound);
}

TEST(NetnsTest, RemoveOfAPlainFileUnlinksIt) {
  NetnsDir dir;
  std::string file = dir.Path("half-made");
  { std::ofstream(file) << ""; }
  ASSERT_TRUE(RemoveNamedNetns(file));
  EXPECT_FALSE(Exists(file));
}

TEST(NetnsTest, InNetnsRunsInsideAndReturns) {
  NetnsDir dir;
  auto ns = CreateNamedNetns(dir.Path("ns"));
  ASSERT_TRUE(ns) << ns.error().message;
  ino_t own = ThreadNetnsInode();
  ino_t inside = 0;
  auto r = InNetns(ns->get(), [&]() -> Result<void> {
    inside = ThreadNetnsInode();
    return Ok();
  });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(inside, InodeOfFd(ns->get()));
  EXPECT_EQ(ThreadNetnsInode(), own);

  // fn's failure comes back unchanged, and the thread still returns.
  auto failed = InNetns(
      ns->get(), []() -> Result<void> { return Fail(ErrorKind::kConflict, "inner failure"); });
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().kind, ErrorKind::kConflict);
  EXPECT_EQ(failed.error().message, "inner failure");
  EXPECT_EQ(ThreadNetnsInode(), own);

  // Not a network namespace: setns fails, fn does not run.
  UniqueFd mnt(open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(mnt.valid());
  bool ran = false;
  auto wrong = InNetns(mnt.get(), [&]() -> Result<void> {
    ran = true;
    return Ok();
  });
  EXPECT_FALSE(wrong);
  EXPECT_FALSE(ran);
  EXPECT_EQ(ThreadNetnsInode(), own);
}

// moatd is multi-threaded: creating a namespace on one thread moves no other thread.
TEST(NetnsTest, CreateFromASecondThreadMovesNoThread) {
  NetnsDir dir;
  ino_t main_before = ThreadNetnsInode();
  ino_t worker_before = 0, worker_after = 0, created = 0;
  std::string error;
  std::thread worker([&] {
    worker_before = ThreadNetnsInode();
    auto ns = CreateNamedNetns(dir.Path("ns"));
    worker_after = ThreadNetnsInode();
    if (!ns) {
      error = ns.error().message;
      return;
    }
    created = InodeOfFd(ns->get());
  });
  worker.join();
  ASSERT_TRUE(error.empty()) << error;
  EXPECT_EQ(worker_before, worker_after);
  EXPECT_EQ(ThreadNetnsInode(), main_before);
  EXPECT_NE(created, main_before);
  auto opened = OpenNamedNetns(dir.Path("ns"));
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(InodeOfFd(opened->get()), created);
}

}  // namespace
}  // namespace moat::net
