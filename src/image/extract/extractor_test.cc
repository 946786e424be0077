#include "image/extract/extractor.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "image/decompress.h"
#include "base/sys/fdio.h"
#include "base/sys/fileops.h"
#include "base/sys/io.h"
#include "base/sys/spawn.h"
#include "image/test_util.h"

namespace moat::image {
namespace {

using namespace testing;  // NOLINT

class ExtractorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path() + "/root";
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((tmp_.path() + "/outside").c_str(), 0755), 0);
    sentinel_ = tmp_.path() + "/outside/sentinel";
    WriteFileOrDie(sentinel_, "original");
  }

  // Extracts `blob` (written to a file, passed as fd) into root_.
  Result<ExtractResult> Extract(const std::string& blob, ExtractOptions opts = {}) {
    std::string path = tmp_.path() + "/blob";
    WriteFileOrDie(path, blob);
    auto in = sys::open(path, O_RDONLY);
    auto dir = sys::open(root_, O_RDONLY | O_DIRECTORY);
    MOAT_CHECK(in && dir);
    if (geteuid() != 0) {
      opts.ownership = Ownership::kIgnore;
      opts.xattr_namespace = "user";
    }
    return ExtractLayer(in->get(), dir->get(), opts);
  }

  void ExpectSentinelUnchanged() {
    EXPECT_EQ(ReadFileOrDie(sentinel_), "original");
    struct stat st;
    ASSERT_EQ(lstat(sentinel_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_nlink, 1u);
  }

  TempDir tmp_;
  std::string root_, sentinel_;
};

TEST_F(ExtractorTest, ExtractsFilesDirsSymlinksHardlinks) {
  TarEntry f = File("etc/conf", "hello", 0640);
  f.mtime = 1000;
  TarEntry d = Dir("etc", 0711);
  d.mtime = 2000;
  std::string tar = BuildTar({d, f, Symlink("etc/link", "conf"), Hardlink("etc/hard", "etc/conf"),
                              File("bin/tool", "#!", 04755)});
  auto r = Extract(tar);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->diff_id, Digest(tar));
  EXPECT_EQ(r->size, 7u);
  EXPECT_EQ(ReadFileOrDie(root_ + "/etc/conf"), "hello");
  EXPECT_EQ(ReadFileOrDie(root_ + "/etc/link"), "hello");
  struct stat st;
  ASSERT_EQ(stat((root_ + "/etc/conf").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(st.st_mtime, 1000);
  EXPECT_EQ(st.st_nlink, 2u);
  ASSERT_EQ(stat((root_ + "/etc").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0711u);
  EXPECT_EQ(st.st_mtime, 2000);
  ASSERT_EQ(stat((root_ + "/bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
}

TEST_F(ExtractorTest, GzipAndZstdGiveTheSameDiffId) {
  std::string tar = BuildTar({File("a", std::string(100000, 'x'))});
  for (const std::string& blob : {GzipCompress(tar), ZstdCompress(tar), tar}) {
    ASSERT_EQ(sys::RemoveAll(root_).has_value(), true);
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    auto r = Extract(blob);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->diff_id, Digest(tar));
    EXPECT_EQ(ReadFileOrDie(root_ + "/a"), std::string(100000, 'x'));
  }
}

TEST_F(ExtractorTest, CorruptGzipFails) {
  std::string gz = GzipCompress(BuildTar({File("a", std::string(100000, 'y'))}));
  gz[gz.size() / 2] ^= 0x55;
  auto r = Extract(gz);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
}

TEST_F(ExtractorTest, DotDotAndAbsolutePathsStayInside) {
  std::string tar = BuildTar({File("../outside/sentinel", "evil"),
                              File("../../../../../../" + tmp_.path() + "/outside/sentinel", "evil"),
                              File(tmp_.path() + "/outside/sentinel", "evil2"),
                              File("/etc/abs", "abs")});
  auto r = Extract(tar);
  ASSERT_TRUE(r) << r.error().message;
  ExpectSentinelUnchanged();
  // They landed inside the root instead.
  EXPECT_EQ(ReadFileOrDie(root_ + "/outside/sentinel"), "evil");
  EXPECT_EQ(ReadFileOrDie(root_ + tmp_.path() + "/outside/sentinel"), "evil2");
  EXPECT_EQ(ReadFileOrDie(root_ + "/etc/abs"), "abs");
}

TEST_F(ExtractorTest, SymlinkThenWriteThroughItStaysInside) {
  std::string outside = tmp_.path() + "/outside";
  // Absolute symlink: resolves to root/<outside>, which does not exist: refused.
  auto r = Extract(BuildTar({Symlink("escape", outside), File("escape/sentinel", "evil")}));
  EXPECT_FALSE(r);
  ExpectSentinelUnchanged();
  // Once that path exists inside the root, the write lands there.
  ASSERT_TRUE(sys::RemoveAll(root_).has_value());
  ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
  std::vector<TarEntry> entries;
  std::string p;
  for (const auto& c : StrSplit(outside.substr(1), '/')) {
    p += (p.empty() ? "" : "/") + c;
    entries.push_back(Dir(p));
  }
  entries.push_back(Symlink("escape", outside));
  entries.push_back(File("escape/sentinel", "evil"));
  entries.push_back(Dir("outside"));
  entries.push_back(Symlink("rel", "../../../outside"));
  entries.push_back(File("rel/sentinel", "evil2"));
  entries.push_back(Symlink("direct", outside + "/sentinel"));
  entries.push_back(File("direct", "evil-replace"));
  r = Extract(BuildTar(entries));
  ASSERT_TRUE(r) << r.error().message;
  ExpectSentinelUnchanged();
  EXPECT_EQ(ReadFileOrDie(root_ + outside + "/sentinel"), "evil");
  EXPECT_EQ(ReadFileOrDie(root_ + "/outside/sentinel"), "evil2");
  // A file entry over a symlink replaces the link, it does not write through it.
  struct stat st;
  ASSERT_EQ(lstat((root_ + "/direct").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(ExtractorTest, HardlinkToOutsideCannotReachIt) {
  std::string outside = tmp_.path() + "/outside";
  std::vector<std::vector<TarEntry>> cases = {
      {Hardlink("h1", "../outside/sentinel")},
      {Hardlink("h2", outside + "/sentinel")},
      {Symlink("s", outside), Hardlink("h3", "s/sentinel")},
      {Symlink("s", "../../../../../../.."), Hardlink("h4", "s" + outside + "/sentinel")},
  };
  for (const auto& c : cases) {
    ASSERT_TRUE(sys::RemoveAll(root_).has_value());
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    // The targets resolve inside the root, where they do not exist: the layer fails.
    auto r = Extract(BuildTar(c));
    EXPECT_FALSE(r) << c.back().name;
    ExpectSentinelUnchanged();
  }
}

TEST_F(ExtractorTest, WhiteoutsBecomeOverlayWhiteouts) {
  std::string tar = BuildTar({Dir("dir"), File("dir/.wh.gone", ""), Dir("opq"),
                              File("opq/.wh..wh..opq", ""), File("opq/kept", "k")});
  auto r = Extract(tar);
  ASSERT_TRUE(r) << r.error().message;
  struct stat st;
  ASSERT_EQ(lstat((root_ + "/dir/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_NE(lstat((root_ + "/dir/.wh.gone").c_str(), &st), 0);
  char val[8] = {};
  std::string xname = geteuid() == 0 ? "trusted.overlay.opaque" : "user.overlay.opaque";
  ASSERT_EQ(getxattr((root_ + "/opq").c_str(), xname.c_str(), val, sizeof val), 1)
      << strerror(errno);
  EXPECT_EQ(val[0], 'y');
  EXPECT_EQ(ReadFileOrDie(root_ + "/opq/kept"), "k");
}

TEST_F(ExtractorTest, KeepsOwnershipAndXattrsAsRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "chown needs root (euid " << geteuid() << ")";
  TarEntry f = File("owned", "x", 0600);
  f.uid = 1234;
  f.gid = 5678;
  f.xattrs = {{"user.test", "val"}};
  TarEntry l = Symlink("link", "owned");
  l.uid = 42;
  l.gid = 43;
  auto r = Extract(BuildTar({f, l}));
  ASSERT_TRUE(r) << r.error().message;
  struct stat st;
  ASSERT_EQ(lstat((root_ + "/owned").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  ASSERT_EQ(lstat((root_ + "/link").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 42u);
  char val[8] = {};
  EXPECT_EQ(getxattr((root_ + "/owned").c_str(), "user.test", val, sizeof val), 3);
  EXPECT_STREQ(val, "val");
}

TEST_F(ExtractorTest, Limits) {
  ExtractOptions o;
  o.limits.max_entries = 2;
  auto r = Extract(BuildTar({File("a", ""), File("b", ""), File("c", "")}), o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("more than 2 entries"), std::string::npos);

  ASSERT_TRUE(sys::RemoveAll(root_).has_value());
  ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
  o = {};
  o.limits.max_path_length = 10;
  r = Extract(BuildTar({File("a-very-long-name", "")}), o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("longer than 10"), std::string::npos);

  o = {};
  o.limits.max_bytes = 4096;
  r = Extract(BuildTar({File("big", std::string(100000, 'z'))}), o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("size limit"), std::string::npos);

  o = {};
  o.limits.max_ratio = 10;
  r = Extract(GzipCompress(BuildTar({File("bomb", std::string(64 << 20, '\0'))})), o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("compression ratio"), std::string::npos);
}

// Several MiB, read in many chunks by the layer reader thread: files span chunk boundaries,
// and the diff id covers the zero padding after the end-of-archive blocks.
TEST_F(ExtractorTest, MultiChunkLayer) {
  std::string big = Noise(5 * (1 << 20) + 12345, 1);
  std::vector<TarEntry> entries = {Dir("d"), File("d/small", "s")};
  entries.push_back(File("d/big", big));
  for (int i = 0; i < 50; ++i) entries.push_back(File(StrFormat("d/f%d", i), Noise(40000, i)));
  entries.push_back(File("d/last", Noise(1500000, 7)));
  std::string tar = BuildTar(entries) + std::string(3 * (1 << 20) + 512, '\0');
  for (const std::string& blob : {GzipCompress(tar), ZstdCompress(tar), tar}) {
    ASSERT_TRUE(sys::RemoveAll(root_).has_value());
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    auto r = Extract(blob);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->diff_id, Digest(tar));
    EXPECT_EQ(r->tar_bytes, tar.size());
    EXPECT_EQ(r->entries, entries.size());
    EXPECT_EQ(ReadFileOrDie(root_ + "/d/big"), big);
    EXPECT_EQ(ReadFileOrDie(root_ + "/d/small"), "s");
    EXPECT_EQ(ReadFileOrDie(root_ + "/d/f49"), Noise(40000, 49));
    EXPECT_EQ(ReadFileOrDie(root_ + "/d/last"), Noise(1500000, 7));
  }
  // A truncated stream fails with the reader's error, past the first chunks.
  std::string gz = GzipCompress(tar);
  ASSERT_TRUE(sys::RemoveAll(root_).has_value());
  ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
  auto r = Extract(gz.substr(0, gz.size() * 3 / 4));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(r.error().message.find("gzip stream truncated"), std::string::npos)
      << r.error().message;
}

// The parser fails on the first entry while the reader thread still has input: from a file
// (plenty of data ahead), and from a pipe whose writer stays open and idle (the reader blocks
// waiting for more and must be woken). Both return the entry's error promptly.
TEST_F(ExtractorTest, ParserFailsWhileReaderHasData) {
  ExtractOptions o;
  o.limits.max_path_length = 10;
  std::string tar = BuildTar({File("a-very-long-name", "x"), File("big", Noise(20 << 20, 3))});
  std::string gz = GzipCompress(tar);
  auto r = Extract(gz, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("longer than 10 bytes"), std::string::npos) << r.error().message;
  EXPECT_FALSE(sys::fstatat(AT_FDCWD, root_ + "/big", AT_SYMLINK_NOFOLLOW).has_value());

  auto pipe = sys::pipe2(O_NONBLOCK);
  ASSERT_TRUE(pipe);
  (void)fcntl(pipe->second.get(), F_SETPIPE_SZ, 1 << 20);
  // As much of the layer as the pipe takes; the writer end stays open.
  size_t off = 0;
  while (off < gz.size()) {
    ssize_t n = write(pipe->second.get(), gz.data() + off, std::min<size_t>(gz.size() - off, 4096));
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ASSERT_GT(off, 0u);
  ASSERT_LT(off, gz.size());
  ASSERT_EQ(fcntl(pipe->first.get(), F_SETFL, 0), 0);
  // Should the reader not be woken, close the writer after a while: the test then fails on
  // the elapsed time instead of hanging.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool timed_out = false;
  std::thread watchdog([&] {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(20), [&] { return done; })) {
      timed_out = true;
      pipe->second.reset();
    }
  });
  auto dir = sys::open(root_, O_RDONLY | O_DIRECTORY);
  ASSERT_TRUE(dir);
  if (geteuid() != 0) {
    o.ownership = Ownership::kIgnore;
    o.xattr_namespace = "user";
  }
  auto start = std::chrono::steady_clock::now();
  r = ExtractLayer(pipe->first.get(), dir->get(), o);
  auto elapsed = std::chrono::steady_clock::now() - start;
  {
    std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_one();
  watchdog.join();
  EXPECT_FALSE(timed_out);
  EXPECT_LT(elapsed, std::chrono::seconds(10));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("longer than 10 bytes"), std::string::npos) << r.error().message;
}

// The moat-extract binary: protocol on fds 0/1/3, and a kill -9 mid-layer.
TEST_F(ExtractorTest, BinaryProtocolAndKill) {
  std::string tar = BuildTar({File("f", "data")});
  auto dir = sys::open(root_, O_RDONLY | O_DIRECTORY);
  ASSERT_TRUE(dir);
  auto in = sys::pipe2(0);
  auto out = sys::pipe2(0);
  ASSERT_TRUE(in && out);
  auto pid = sys::Spawn(MOAT_EXTRACT_PATH, {"moat-extract", "--no-chown"},
                         {{in->first.get(), 0}, {out->second.get(), 1}, {dir->get(), 3}});
  ASSERT_TRUE(pid) << pid.error().message;
  in->first.reset();
  out->second.reset();
  // Half a layer, then SIGKILL: no reply, and the caller sees the signal.
  ASSERT_TRUE(sys::WriteAll(in->second.get(), tar.substr(0, 700)).has_value());
  ASSERT_EQ(kill(*pid, SIGKILL), 0);
  auto status = sys::waitpid(*pid);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFSIGNALED(*status));
  char buf[64];
  EXPECT_EQ(*sys::read(out->first.get(), buf, sizeof buf), 0u);

  // A full run replies with the diff id.
  auto in2 = sys::pipe2(0);
  auto out2 = sys::pipe2(0);
  pid = sys::Spawn(MOAT_EXTRACT_PATH, {"moat-extract", "--no-chown"},
                    {{in2->first.get(), 0}, {out2->second.get(), 1}, {dir->get(), 3}});
  ASSERT_TRUE(pid);
  in2->first.reset();
  out2->second.reset();
  ASSERT_TRUE(sys::WriteAll(in2->second.get(), tar).has_value());
  in2->second.reset();
  std::string reply;
  for (;;) {
    auto n = sys::read(out2->first.get(), buf, sizeof buf);
    if (!n || *n == 0) break;
    reply.append(buf, *n);
  }
  ASSERT_TRUE(sys::waitpid(*pid));
  EXPECT_TRUE(StartsWith(reply, "{\"diff_id\":\"" + Digest(tar) + "\",\"size\":4,\"entries\":1,"))
      << reply;
  EXPECT_NE(reply.find("\"confinement\":{"), std::string::npos) << reply;
}

}  // namespace
}  // namespace moat::image
