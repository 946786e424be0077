#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "base/sys/fdio.h"
#include "base/sys/fs.h"
#include "base/sys/io.h"
#include "daemon/core/container_fs_util.h"

namespace moat::daemon::core::fs {
namespace {

TEST(GoFileModeTest, TypesAndSpecialBits) {
  EXPECT_EQ(GoFileMode(S_IFREG | 0644), 0644u);
  EXPECT_EQ(GoFileMode(S_IFDIR | 0755), (1u << 31) | 0755u);
  EXPECT_EQ(GoFileMode(S_IFLNK | 0777), (1u << 27) | 0777u);
  EXPECT_EQ(GoFileMode(S_IFREG | S_ISUID | 0755), (1u << 23) | 0755u);
  EXPECT_EQ(GoFileMode(S_IFDIR | S_ISGID | 0755), (1u << 31) | (1u << 22) | 0755u);
  EXPECT_EQ(GoFileMode(S_IFDIR | S_ISVTX | 0777), (1u << 31) | (1u << 20) | 0777u);
  EXPECT_EQ(GoFileMode(S_IFCHR | 0666), (1u << 26) | (1u << 21) | 0666u);
  EXPECT_EQ(GoFileMode(S_IFIFO | 0600), (1u << 25) | 0600u);
}

TEST(ContainerPathTest, CleansAndNamesTheTopEntry) {
  auto p = ParseContainerPath("/etc/../etc/./hostname");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->clean, "/etc/hostname");
  EXPECT_EQ(p->parent, "/etc");
  EXPECT_EQ(p->base, "hostname");
  EXPECT_EQ(p->tar_name, "hostname");
  EXPECT_FALSE(p->follow_last);

  p = ParseContainerPath("/tmp/dir/");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->clean, "/tmp/dir");
  EXPECT_EQ(p->tar_name, "dir");
  EXPECT_TRUE(p->follow_last);

  p = ParseContainerPath("/tmp/dir/.");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->clean, "/tmp/dir");
  EXPECT_EQ(p->tar_name, ".");
  EXPECT_TRUE(p->follow_last);

  p = ParseContainerPath("../../..");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->clean, "/");
  EXPECT_EQ(p->base, "");

  EXPECT_FALSE(ParseContainerPath(""));
  EXPECT_FALSE(ParseContainerPath(std::string("/a\0b", 4)));
}

TEST(ContainerPathTest, LinkTargetIsAContainerPath) {
  EXPECT_EQ(LinkTargetPath("/x/link", "/etc/shadow"), "/etc/shadow");
  EXPECT_EQ(LinkTargetPath("/x/link", "../../../etc/shadow"), "/etc/shadow");
  EXPECT_EQ(LinkTargetPath("/x/link", "y"), "/x/y");
}

TEST(PathStatJsonTest, Fields) {
  struct stat st {};
  st.st_mode = S_IFLNK | 0777;
  st.st_size = 11;
  st.st_mtim.tv_sec = 0;
  Json j = PathStatJson("link", st, "/etc/shadow");
  EXPECT_EQ(j["name"], "link");
  EXPECT_EQ(j["size"], 11);
  EXPECT_EQ(j["mode"], (1u << 27) | 0777u);
  EXPECT_EQ(j["linkTarget"], "/etc/shadow");
  EXPECT_TRUE(j["mtime"].is_string());
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/moat-fs-test-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { (void)sys::RemoveAll(path_); }
  const std::string& path() const { return path_; }
  UniqueFd Open() const { return std::move(*sys::open(path_, O_RDONLY | O_DIRECTORY)); }
  void Write(const std::string& rel, const std::string& data) const {
    ASSERT_TRUE(sys::WriteFile(path_ + "/" + rel, data) ||
                sys::WriteFileAtomic(path_ + "/" + rel, data));
  }
  void Mkdir(const std::string& rel) const {
    ASSERT_EQ(mkdir((path_ + "/" + rel).c_str(), 0755), 0);
  }

 private:
  std::string path_;
};

TEST(ComputeChangesTest, AddedModifiedAndOpaque) {
  TempDir lower, upper;
  lower.Mkdir("etc");
  lower.Write("etc/passwd", "root");
  lower.Mkdir("var");
  lower.Write("var/old", "x");
  upper.Mkdir("etc");
  upper.Write("etc/passwd", "root2");
  upper.Write("etc/new", "n");
  upper.Mkdir("srv");
  upper.Write("srv/a", "a");
  UniqueFd u = upper.Open(), l = lower.Open();
  auto ch = ComputeChanges(u.get(), {l.get()});
  ASSERT_TRUE(ch) << ch.error().message;
  std::vector<Change> want = {
      {"/etc", 0}, {"/etc/new", 1}, {"/etc/passwd", 0}, {"/srv", 1}, {"/srv/a", 1}};
  EXPECT_EQ(*ch, want);
}

TEST(ComputeChangesTest, SymlinkInLowerIsNotFollowed) {
  // /a is a symlink to /etc in the lower layer: "a/passwd" does not exist below (the overlay
  // does not follow it either), so an upper a/passwd is not "modified".
  TempDir lower, upper;
  lower.Mkdir("etc");
  lower.Write("etc/passwd", "root");
  ASSERT_EQ(symlink("etc", (lower.path() + "/a").c_str()), 0);
  upper.Mkdir("a");
  upper.Write("a/passwd", "x");
  UniqueFd u = upper.Open(), l = lower.Open();
  auto ch = ComputeChanges(u.get(), {l.get()});
  ASSERT_TRUE(ch);
  ASSERT_EQ(ch->size(), 2u);
  EXPECT_EQ((*ch)[1], (Change{"/a/passwd", 1}));
}

// Reads a tar written by TarStream and lists "type name [-> target]" lines with `tar tv`-like
// information from the raw headers (ustar names; PAX only for long names, not used here).
std::vector<std::string> ListTar(const std::string& data) {
  std::vector<std::string> out;
  size_t off = 0;
  while (off + 512 <= data.size()) {
    const char* h = data.data() + off;
    if (h[0] == 0) break;
    std::string name(h, strnlen(h, 100));
    std::string prefix(h + 345, strnlen(h + 345, 155));
    if (!prefix.empty()) name = prefix + "/" + name;
    char type = h[156];
    std::string link(h + 157, strnlen(h + 157, 100));
    size_t size = strtoull(std::string(h + 124, 12).c_str(), nullptr, 8);
    if (type == 'x') {  // PAX header: skip it and the entry it describes is next
      off += 512 + (size + 511) / 512 * 512;
      continue;
    }
    std::string line = std::string(1, type) + " " + name;
    if (type == '1' || type == '2') line += " -> " + link;
    if (type == '0') line += " " + std::to_string(size) + " " + data.substr(off + 512, size);
    out.push_back(line);
    off += 512 + (size + 511) / 512 * 512;
  }
  return out;
}

std::string TarOf(const std::function<Result<void>(TarStream&)>& fill, Whiteouts w) {
  auto pipe = sys::pipe2(0);
  EXPECT_TRUE(pipe);
  std::string data;
  std::thread reader([&] {
    char buf[4096];
    for (;;) {
      auto n = sys::read(pipe->first.get(), buf, sizeof buf);
      if (!n || *n == 0) break;
      data.append(buf, *n);
    }
  });
  {
    UniqueFd w_end = std::move(pipe->second);
    TarStream tar(w_end.get(), w);
    auto r = fill(tar);
    EXPECT_TRUE(r) << r.error().message;
    auto f = tar.Finish();
    EXPECT_TRUE(f) << f.error().message;
  }
  reader.join();
  return data;
}

TEST(TarStreamTest, DirectoryWithFilesSymlinksAndHardlinks) {
  TempDir t;
  t.Mkdir("d");
  t.Write("d/f", "hello");
  ASSERT_EQ(symlink("/etc/shadow", (t.path() + "/d/l").c_str()), 0);
  ASSERT_EQ(link((t.path() + "/d/f").c_str(), (t.path() + "/d/h").c_str()), 0);
  UniqueFd root = t.Open();
  std::string data =
      TarOf([&](TarStream& tar) { return tar.AddAt(root.get(), "d", "d"); }, Whiteouts::kAsIs);
  std::vector<std::string> want = {"5 d/", "0 d/f 5 hello", "1 d/h -> d/f", "2 d/l -> /etc/shadow"};
  EXPECT_EQ(ListTar(data), want);
}

TEST(TarStreamTest, SymlinkAtTheTopIsNotFollowed) {
  TempDir t;
  ASSERT_EQ(symlink("/etc/passwd", (t.path() + "/l").c_str()), 0);
  UniqueFd root = t.Open();
  std::string data =
      TarOf([&](TarStream& tar) { return tar.AddAt(root.get(), "l", "l"); }, Whiteouts::kAsIs);
  std::vector<std::string> want = {"2 l -> /etc/passwd"};
  EXPECT_EQ(ListTar(data), want);
}

TEST(TarStreamTest, WholeDirWithoutTopEntry) {
  TempDir t;
  t.Write("a", "1");
  t.Mkdir("b");
  UniqueFd root = t.Open();
  std::string data =
      TarOf([&](TarStream& tar) { return tar.AddDir(root.get(), ""); }, Whiteouts::kToOci);
  std::vector<std::string> want = {"0 a 1 1", "5 b/"};
  EXPECT_EQ(ListTar(data), want);
}

TEST(TarStreamTest, WhiteoutsBecomeOciWhiteouts) {
  TempDir t;
  if (mknod((t.path() + "/gone").c_str(), S_IFCHR | 0600, 0) != 0)
    GTEST_SKIP() << "mknod of a whiteout needs CAP_MKNOD";
  UniqueFd root = t.Open();
  std::string data =
      TarOf([&](TarStream& tar) { return tar.AddDir(root.get(), ""); }, Whiteouts::kToOci);
  std::vector<std::string> want = {"0 .wh.gone 0 "};
  EXPECT_EQ(ListTar(data), want);
  TempDir lower;
  lower.Write("gone", "x");
  UniqueFd l = lower.Open();
  auto ch = ComputeChanges(root.get(), {l.get()});
  ASSERT_TRUE(ch);
  std::vector<Change> want_changes = {{"/gone", 2}};
  EXPECT_EQ(*ch, want_changes);
}

TEST(CommitConfigTest, ContainerSettingsOverridesAndChanges) {
  Json image = {{"Cmd", {"sh"}}, {"Env", {"PATH=/bin", "A=1"}}, {"WorkingDir", "/"}};
  privsep::ContainerSpec spec;
  spec.cmd = std::vector<std::string>{"top"};
  spec.env = {"A=2", "B=3"};
  spec.labels = {{"l", "v"}};
  Json overrides = {{"User", "nobody"}};
  auto cfg = CommitConfig(
      image, spec, overrides,
      {"ENV C=4", "WORKDIR /srv", "EXPOSE 80", "LABEL x=\"y z\"", "ENTRYPOINT [\"/bin/echo\"]"});
  ASSERT_TRUE(cfg) << cfg.error().message;
  EXPECT_EQ((*cfg)["Cmd"], Json({"top"}));
  EXPECT_EQ((*cfg)["Env"], Json({"PATH=/bin", "A=2", "B=3", "C=4"}));
  EXPECT_EQ((*cfg)["WorkingDir"], "/srv");
  EXPECT_EQ((*cfg)["User"], "nobody");
  EXPECT_EQ((*cfg)["Labels"]["l"], "v");
  EXPECT_EQ((*cfg)["Labels"]["x"], "y z");
  EXPECT_TRUE((*cfg)["ExposedPorts"].contains("80/tcp"));
  EXPECT_EQ((*cfg)["Entrypoint"], Json({"/bin/echo"}));

  auto shell = CommitConfig(nullptr, privsep::ContainerSpec{}, nullptr, {"CMD echo hi"});
  ASSERT_TRUE(shell);
  EXPECT_EQ((*shell)["Cmd"], Json({"/bin/sh", "-c", "echo hi"}));

  EXPECT_FALSE(CommitConfig(nullptr, privsep::ContainerSpec{}, nullptr, {"RUN rm -rf /"}));
  EXPECT_FALSE(CommitConfig(nullptr, privsep::ContainerSpec{}, nullptr, {"CMD [1, 2]"}));
}

}  // namespace
}  // namespace moat::daemon::core::fs
