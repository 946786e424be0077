#include "image/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "base/sys/fs.h"
#include "image/decompress.h"
#include "image/digest.h"
#include "image/test_util.h"

namespace moat::image {
namespace {

using namespace testing;  // NOLINT

int CountEntries(const std::string& dir) {
  int n = 0;
  if (DIR* d = opendir(dir.c_str())) {
    while (struct dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
  }
  return n;
}

class StoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> OpenStore(const std::string& extractor = MOAT_EXTRACT_PATH,
                                   const std::string& boot_id = "", int sync_delay_ms = 3000) {
    StoreOptions o;
    o.extractor_path = extractor;
    o.no_chown = geteuid() != 0;
    o.boot_id = boot_id;
    o.sync_delay_ms = sync_delay_ms;
    auto s = Store::Open(tmp_.path() + "/store", o);
    MOAT_CHECK(s.has_value());
    return std::move(*s);
  }

  Result<LoadResult> LoadBytes(Store& s, const std::string& bytes) {
    std::string path = tmp_.path() + "/in.tar";
    WriteFileOrDie(path, bytes);
    return LoadFile(s, path);
  }
  Result<LoadResult> LoadFile(Store& s, const std::string& path) {
    auto fd = sys::open(path, O_RDONLY);
    MOAT_CHECK(fd.has_value());
    return s.Load(fd->get(), [&](const std::string& line) { progress_.push_back(line); });
  }

  TempDir tmp_;
  std::vector<std::string> progress_;
};

TEST_F(StoreTest, LoadsBundledDockerArchiveAndOciLayoutWithTheSameId) {
  auto s = OpenStore();
  auto r = LoadFile(*s, MOAT_BUNDLED_IMAGE);
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->tags, std::vector<std::string>{"busybox:latest"});
  ASSERT_EQ(r->ids.size(), 1u);
  EXPECT_NE(std::find(progress_.begin(), progress_.end(), "Loaded image: busybox:latest"),
            progress_.end());
  auto im = s->Resolve("busybox");
  ASSERT_TRUE(im) << im.error().message;
  EXPECT_EQ(im->id, r->ids[0]);
  EXPECT_EQ(im->config.cmd, std::vector<std::string>{"sh"});
  ASSERT_EQ(im->config.env.size(), 1u);
  EXPECT_EQ(im->config.env[0],
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  ASSERT_EQ(im->layer_dirs.size(), 1u);
  struct stat st;
  EXPECT_EQ(stat((im->layer_dirs[0] + "/bin/busybox").c_str(), &st), 0);
  EXPECT_EQ(lstat((im->layer_dirs[0] + "/bin/sh").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_GT(im->size, 100000);

  // The OCI layout variant: same image, loaded into a second store.
  TempDir other;
  StoreOptions o;
  o.extractor_path = MOAT_EXTRACT_PATH;
  o.no_chown = geteuid() != 0;
  auto s2 = Store::Open(other.path(), o);
  ASSERT_TRUE(s2);
  auto fd = sys::open(MOAT_BUNDLED_OCI_IMAGE, O_RDONLY);
  ASSERT_TRUE(fd);
  auto r2 = (*s2)->Load(fd->get(), nullptr);
  ASSERT_TRUE(r2) << r2.error().message;
  EXPECT_EQ(r2->ids, r->ids);
  EXPECT_EQ(r2->tags, std::vector<std::string>{"busybox:latest"});
}

TEST_F(StoreTest, ResolveTagIdPrefixAndErrors) {
  auto s = OpenStore();
  std::string layer = BuildTar({File("x", "1")});
  auto r = LoadBytes(*s, OciLayoutTar({MakeImage({layer}, "a", "docker.io/library/app:v1")}));
  ASSERT_TRUE(r) << r.error().message;
  std::string id = r->ids[0];
  for (std::string name : {std::string("app:v1"), std::string("docker.io/library/app:v1"), id,
                           id.substr(7), id.substr(7, 12), id.substr(7, 1), id.substr(0, 12)}) {
    auto im = s->Resolve(name);
    ASSERT_TRUE(im) << name << ": " << im.error().message;
    EXPECT_EQ(im->id, id);
    EXPECT_EQ(im->tags, std::vector<std::string>{"app:v1"});
  }
  auto nf = s->Resolve("app");
  ASSERT_FALSE(nf);
  EXPECT_EQ(nf.error().kind, ErrorKind::kNotFound);
  EXPECT_EQ(nf.error().message, "No such image: app:latest");
  auto m = s->Resolve("app@" + s->Resolve("app:v1")->manifest_digest);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->id, id);
}

TEST_F(StoreTest, CorruptedBlobIsRefusedNamingIt) {
  auto s = OpenStore();
  std::string layer = BuildTar({File("x", "1")});
  TestImage im = MakeImage({layer}, "a", "app:v1");
  std::string tar = OciLayoutTar({im});
  // Flip a byte of the layer blob inside the archive (its content is unique in the tar).
  size_t pos = tar.find(layer.substr(0, 100));
  ASSERT_NE(pos, std::string::npos);
  tar[pos + 512] ^= 1;  // inside the layer's first file data block
  auto r = LoadBytes(*s, tar);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(r.error().message.find(Digest(layer).substr(7)), std::string::npos)
      << r.error().message;
  EXPECT_EQ(CountEntries(tmp_.path() + "/store/layers"), 0);
  EXPECT_EQ(CountEntries(tmp_.path() + "/store/images"), 0);
  EXPECT_EQ(CountEntries(tmp_.path() + "/store/tmp"), 0);

  // A docker archive whose layer does not match the config's diff id.
  TestImage bad = MakeImage({layer}, "a", "app:v2");
  bad.layer_blobs[0] = BuildTar({File("x", "2")});
  r = LoadBytes(*s, DockerArchiveTar({bad}));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("does not match"), std::string::npos) << r.error().message;
  EXPECT_EQ(CountEntries(tmp_.path() + "/store/layers"), 0);
}

TEST_F(StoreTest, SharedLayersTagRemoveInUseAndGc) {
  auto s = OpenStore();
  std::string base = BuildTar({File("base", "b")});
  std::string top = BuildTar({File("top", "t")});
  auto r = LoadBytes(*s, DockerArchiveTar({MakeImage({base}, "one", "one:latest"),
                                           MakeImage({base, top}, "two", "two:latest", "")}));
  ASSERT_TRUE(r) << r.error().message;
  ASSERT_EQ(r->ids.size(), 2u);
  // base is shared: 2 layer dirs for 3 layer references.
  EXPECT_EQ(CountEntries(tmp_.path() + "/store/layers"), 2);
  auto one = s->Resolve("one");
  auto two = s->Resolve("two");
  ASSERT_TRUE(one && two);
  EXPECT_EQ(one->layer_dirs[0], two->layer_dirs[0]);
  ASSERT_EQ(two->layer_dirs.size(), 2u);
  EXPECT_EQ(ReadFileOrDie(two->layer_dirs[1] + "/top"), "t");

  ASSERT_TRUE(s->Tag("one", *ParseReference("alias:1")).has_value());
  EXPECT_EQ(s->Resolve("alias:1")->id, one->id);
  EXPECT_EQ(s->Resolve("one")->tags, (std::vector<std::string>{"alias:1", "one:latest"}));

  // By id with two tags: needs force.
  auto no_use = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  auto rm = s->Remove(one->id, false, no_use);
  ASSERT_FALSE(rm);
  EXPECT_EQ(rm.error().kind, ErrorKind::kConflict);
  // Untag one of two tags: image stays.
  rm = s->Remove("alias:1", false, no_use);
  ASSERT_TRUE(rm) << rm.error().message;
  ASSERT_EQ(rm->size(), 1u);
  EXPECT_EQ((*rm)[0], std::make_pair(std::string("Untagged"), std::string("alias:1")));
  // Last tag while a container uses it: conflict naming the container.
  auto used = [&](const std::string& id) -> std::optional<std::string> {
    if (id == one->id) return std::string("c0ffee0123456789");
    return std::nullopt;
  };
  rm = s->Remove("one", false, used);
  ASSERT_FALSE(rm);
  EXPECT_EQ(rm.error().kind, ErrorKind::kConflict);
  EXPECT_NE(rm.error().message.find("container c0ffee012345 is using its referenced image"),
            std::string::npos)
      << rm.error().message;
  rm = s->Remove("one", false, no_use);
  ASSERT_TRUE(rm) << rm.error().message;
  ASSERT_EQ(rm->size(), 2u);
  EXPECT_EQ((*rm)[0].first, "Untagged");
  EXPECT_EQ((*rm)[1], std::make_pair(std::string("Deleted"), one->id));
  EXPECT_FALSE(s->Resolve(one->id));

  // GC: the shared base layer stays (two uses it); one's config and manifest go.
  auto gc = s->CollectGarbage();
  ASSERT_TRUE(gc) << gc.error().message;
  EXPECT_TRUE(gc->layers_removed.empty());
  EXPECT_EQ(gc->blobs_removed.size(), 2u);
  EXPECT_EQ(CountEntries(tmp_.path() + "/store/layers"), 2);
  EXPECT_EQ(ReadFileOrDie(two->layer_dirs[0] + "/base"), "b");
  rm = s->Remove("two", false, no_use);
  ASSERT_TRUE(rm);
  gc = s->CollectGarbage();
  ASSERT_TRUE(gc);
  EXPECT_EQ(gc->layers_removed.size(), 2u);
  EXPECT_EQ(CountEntries(tmp_.path() + "/store/layers"), 0);
  EXPECT_EQ(CountEntries(tmp_.path() + "/store/blobs/sha256"), 0);

  // State survives reopening.
  s.reset();
  s = OpenStore();
  EXPECT_FALSE(s->Resolve("two"));
}

TEST_F(StoreTest, SaveThenLoadRoundTrip) {
  auto s = OpenStore();
  std::string base = BuildTar({File("base", "b")});
  auto r = LoadBytes(*s, OciLayoutTar({MakeImage({base}, "one", "one:latest", "gzip"),
                                       MakeImage({base, BuildTar({File("z", "z")})}, "two",
                                                 "myorg/two:3", "zstd")}));
  ASSERT_TRUE(r) << r.error().message;
  std::string out = tmp_.path() + "/saved.tar";
  {
    auto fd = sys::open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_TRUE(fd);
    auto sv = s->Save({"one", "myorg/two:3"}, fd->get());
    ASSERT_TRUE(sv) << sv.error().message;
  }
  TempDir other;
  StoreOptions o;
  o.extractor_path = MOAT_EXTRACT_PATH;
  o.no_chown = geteuid() != 0;
  auto s2 = Store::Open(other.path(), o);
  ASSERT_TRUE(s2);
  auto fd = sys::open(out, O_RDONLY);
  auto r2 = (*s2)->Load(fd->get(), nullptr);
  ASSERT_TRUE(r2) << r2.error().message;
  std::vector<std::string> a = r->ids, b = r2->ids;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, b);
  std::vector<std::string> tags = r2->tags;
  std::sort(tags.begin(), tags.end());
  EXPECT_EQ(tags, (std::vector<std::string>{"myorg/two:3", "one:latest"}));
  // The layers were stored without their blobs: the archive has them uncompressed, under a
  // manifest made for it (as Docker's save does), so the ids and diff ids stay and the manifest
  // digest is new.
  auto two = s->Resolve("myorg/two:3"), two2 = (*s2)->Resolve("myorg/two:3");
  ASSERT_TRUE(two && two2);
  EXPECT_EQ(two2->diff_ids, two->diff_ids);
  EXPECT_NE(two2->manifest_digest, two->manifest_digest);
  for (const auto& d : two->diff_ids)
    EXPECT_EQ(access((tmp_.path() + "/store/blobs/sha256/" + d.substr(7)).c_str(), F_OK), -1);
  // Saved again from the second store: the same bytes (the layers rebuilt exactly once more).
  std::string again = tmp_.path() + "/saved-again.tar";
  {
    auto fd2 = sys::open(again, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_TRUE(fd2);
    ASSERT_TRUE((*s2)->Save({"one", "myorg/two:3"}, fd2->get()));
  }
  EXPECT_EQ(*sys::ReadFile(again), *sys::ReadFile(out));
}

// A pulled or loaded layer keeps only its tree and a small tar-split record, not its blob;
// save rebuilds the exact tar (its sha256 is the diff id); a layer whose tree changed cannot be
// saved, with an error naming it, and the archive is not passed off as good.
TEST_F(StoreTest, LayersKeepATarSplitRecordInsteadOfTheirBlob) {
  auto s = OpenStore();
  std::string layer = BuildTar({Dir("etc"), File("etc/conf", Noise(70000, 7)),
                                File("etc/empty", ""), Symlink("etc/link", "conf"),
                                Hardlink("etc/hard", "etc/conf"),
                                File(std::string(150, 'n') + "/long-named-file", "long")});
  TestImage img = MakeImage({layer}, "x", "split:1", "gzip");
  auto r = LoadBytes(*s, OciLayoutTar({img}));
  ASSERT_TRUE(r) << r.error().message;
  auto im = s->Resolve("split:1");
  ASSERT_TRUE(im);
  std::string layer_dir = im->layer_dirs[0].substr(0, im->layer_dirs[0].size() - 5);
  struct stat st;
  ASSERT_EQ(stat((layer_dir + "/tar-split").c_str(), &st), 0);
  EXPECT_LT(st.st_size, 4096) << "a record of a few headers";
  std::string blob_hex = Digest(img.layer_blobs[0]).substr(7);
  EXPECT_EQ(access((tmp_.path() + "/store/blobs/sha256/" + blob_hex).c_str(), F_OK), -1)
      << "the compressed blob was kept";
  std::string out = tmp_.path() + "/saved.tar";
  {
    auto fd = sys::open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT_TRUE(s->Save({"split:1"}, fd->get()));
  }
  // The archive holds the layer's tar byte for byte.
  TempDir x;
  ASSERT_EQ(system(("tar -xf " + out + " -C " + x.path()).c_str()), 0);
  auto rebuilt = sys::ReadFile(x.path() + "/blobs/sha256/" + img.diff_ids[0].substr(7));
  ASSERT_TRUE(rebuilt) << rebuilt.error().message;
  EXPECT_TRUE(*rebuilt == layer) << "rebuilt " << rebuilt->size() << " bytes, tar " << layer.size();

  // The tree changed under the store (it never does by itself): save fails, naming the layer.
  WriteFileOrDie(im->layer_dirs[0] + "/etc/conf", Noise(70000, 8));
  auto fd = sys::open(tmp_.path() + "/bad.tar", O_WRONLY | O_CREAT | O_TRUNC, 0600);
  auto sv = s->Save({"split:1"}, fd->get());
  ASSERT_FALSE(sv);
  EXPECT_NE(sv.error().message.find(img.diff_ids[0]), std::string::npos) << sv.error().message;
  EXPECT_NE(sv.error().message.find("tree changed"), std::string::npos) << sv.error().message;
}

// A layer that replaces one of its own files cannot be rebuilt from its tree (the first
// content is gone): the store keeps its blob, and save writes that blob as it came.
TEST_F(StoreTest, LayerThatOverwritesItsOwnFileKeepsItsBlob) {
  auto s = OpenStore();
  std::string layer = BuildTar({File("f", "first version"), File("f", "second")});
  TestImage img = MakeImage({layer}, "x", "twice:1", "gzip");
  ASSERT_TRUE(LoadBytes(*s, OciLayoutTar({img})));
  auto im = s->Resolve("twice:1");
  ASSERT_TRUE(im);
  std::string layer_dir = im->layer_dirs[0].substr(0, im->layer_dirs[0].size() - 5);
  EXPECT_EQ(access((layer_dir + "/tar-split").c_str(), F_OK), -1);
  std::string blob_hex = Digest(img.layer_blobs[0]).substr(7);
  EXPECT_EQ(access((tmp_.path() + "/store/blobs/sha256/" + blob_hex).c_str(), F_OK), 0);
  std::string out = tmp_.path() + "/saved.tar";
  auto fd = sys::open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_TRUE(s->Save({"twice:1"}, fd->get()));
  TempDir x;
  ASSERT_EQ(system(("tar -xf " + out + " -C " + x.path()).c_str()), 0);
  EXPECT_EQ(*sys::ReadFile(x.path() + "/blobs/sha256/" + blob_hex), img.layer_blobs[0]);
}

TEST_F(StoreTest, ImportCompressedRootfs) {
  auto s = OpenStore();
  std::string tar = BuildTar({File("bin/x", "x", 0755)});
  std::string path = tmp_.path() + "/rootfs.tar.gz";
  WriteFileOrDie(path, GzipCompress(tar));
  auto fd = sys::open(path, O_RDONLY);
  ImportOptions io;
  io.changes = {"CMD [\"/bin/x\"]", "ENV K=v", "WORKDIR /w"};
  io.created = 1700000000;
  auto im = s->Import(fd->get(), *ParseReference("imported:1"), io);
  ASSERT_TRUE(im) << im.error().message;
  EXPECT_EQ(im->tags, std::vector<std::string>{"imported:1"});
  EXPECT_EQ(im->diff_ids, std::vector<std::string>{Digest(tar)});
  EXPECT_EQ(im->config.cmd, std::vector<std::string>{"/bin/x"});
  EXPECT_EQ(im->config.env, std::vector<std::string>{"K=v"});
  EXPECT_EQ(im->config.working_dir, "/w");
  EXPECT_EQ(im->created, 1700000000);
  EXPECT_EQ(ReadFileOrDie(im->layer_dirs[0] + "/bin/x"), "x");
  std::string j = s->InspectJson(*im);
  EXPECT_NE(j.find("\"Id\":\"" + im->id + "\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"Cmd\":[\"/bin/x\"]"), std::string::npos) << j;
  std::string sj = s->SummaryJson(*im);
  EXPECT_NE(sj.find("\"RepoTags\":[\"imported:1\"]"), std::string::npos) << sj;
  EXPECT_NE(sj.find("\"Created\":1700000000"), std::string::npos) << sj;
  std::string hj = s->HistoryJson(*im);
  EXPECT_NE(hj.find("\"Id\":\"" + im->id + "\""), std::string::npos) << hj;
}

TEST_F(StoreTest, CommitImageAddsAVerifiedLayerOnTheParent) {
  auto s = OpenStore();
  std::string base = BuildTar({File("bin/x", "x", 0755), File("etc/gone", "g")});
  std::string base_path = tmp_.path() + "/base.tar";
  WriteFileOrDie(base_path, base);
  auto bfd = sys::open(base_path, O_RDONLY);
  auto parent = s->Import(bfd->get(), *ParseReference("base:1"), ImportOptions{});
  ASSERT_TRUE(parent) << parent.error().message;

  std::string layer = BuildTar({File("etc/new", "n"), File("etc/.wh.gone", "")});
  std::string layer_path = tmp_.path() + "/layer.tar";
  WriteFileOrDie(layer_path, layer);
  auto lfd = sys::open(layer_path, O_RDONLY);
  CommitOptions co;
  co.config_json = R"({"Cmd":["/bin/x","committed"],"Env":["A=1"]})";
  co.comment = "a comment";
  co.author = "me";
  co.created_by = "/bin/x";
  co.created = 1700000001;
  auto im = s->CommitImage(parent->id, lfd->get(), co, *ParseReference("committed:1"));
  ASSERT_TRUE(im) << im.error().message;
  EXPECT_EQ(im->tags, std::vector<std::string>{"committed:1"});
  ASSERT_EQ(im->diff_ids.size(), 2u);
  EXPECT_EQ(im->diff_ids[0], parent->diff_ids[0]);
  EXPECT_EQ(im->diff_ids[1], Digest(layer));
  EXPECT_EQ(im->layer_dirs[0], parent->layer_dirs[0]);
  EXPECT_EQ(ReadFileOrDie(im->layer_dirs[1] + "/etc/new"), "n");
  struct stat st;
  // The whiteout became the overlay's (a 0/0 character device) when root, or at least exists.
  ASSERT_EQ(lstat((im->layer_dirs[1] + "/etc/gone").c_str(), &st), 0);
  if (geteuid() == 0) {
    EXPECT_TRUE(S_ISCHR(st.st_mode));
  }
  EXPECT_EQ(im->config.cmd, (std::vector<std::string>{"/bin/x", "committed"}));
  EXPECT_EQ(im->config.env, std::vector<std::string>{"A=1"});
  EXPECT_EQ(im->author, "me");
  EXPECT_EQ(im->comment, "a comment");
  EXPECT_EQ(im->created, 1700000001);
  ASSERT_EQ(im->history.size(), parent->history.size() + 1);
  EXPECT_EQ(im->history.back().created_by, "/bin/x");
  EXPECT_NE(im->id, parent->id);

  // Unknown parent: nothing is made.
  auto lfd2 = sys::open(layer_path, O_RDONLY);
  auto bad = s->CommitImage("sha256:" + std::string(64, '0'), lfd2->get(), co, std::nullopt);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, ErrorKind::kNotFound);
}

TEST_F(StoreTest, ExtractIntoADirectoryStaysInside) {
  auto s = OpenStore();
  std::string dest = tmp_.path() + "/dest";
  ASSERT_EQ(mkdir(dest.c_str(), 0755), 0);
  std::string tar = BuildTar({File("a/f", "data"), Symlink("l", "/"), File("l/escape", "no")});
  std::string path = tmp_.path() + "/cp.tar";
  WriteFileOrDie(path, tar);
  auto fd = sys::open(path, O_RDONLY);
  auto dir = sys::open(dest, O_RDONLY | O_DIRECTORY);
  auto r = s->ExtractInto(fd->get(), dir->get(), Store::CopyOwnership::kRoot);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(ReadFileOrDie(dest + "/a/f"), "data");
  // "l" -> "/" resolves to the destination itself.
  EXPECT_EQ(ReadFileOrDie(dest + "/escape"), "no");
  EXPECT_NE(access("/escape", F_OK), 0);

  std::string bad_path = tmp_.path() + "/bad.tar";
  WriteFileOrDie(bad_path, "not a tar at all, definitely not");
  auto bfd = sys::open(bad_path, O_RDONLY);
  EXPECT_FALSE(s->ExtractInto(bfd->get(), dir->get(), Store::CopyOwnership::kRoot));
}

TEST_F(StoreTest, KilledExtractorLeavesNothingVisible) {
  // An extractor that reads a little of the layer and dies with SIGKILL mid-layer.
  std::string script = tmp_.path() + "/dying-extract";
  WriteFileOrDie(script, "#!/bin/sh\nhead -c 100 >/dev/null\nkill -9 $$\n");
  ASSERT_EQ(chmod(script.c_str(), 0755), 0);
  auto s = OpenStore(script);
  std::string layer = BuildTar({File("big", std::string(1 << 20, 'q'))});
  auto r = LoadBytes(*s, OciLayoutTar({MakeImage({layer}, "a", "dying:1")}));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("signal 9"), std::string::npos) << r.error().message;
  EXPECT_EQ(CountEntries(tmp_.path() + "/store/layers"), 0);
  EXPECT_EQ(CountEntries(tmp_.path() + "/store/images"), 0);
  EXPECT_FALSE(s->Resolve("dying:1"));
  // A crash of the whole daemon mid-extraction leaves temp dirs only; Open removes them.
  ASSERT_EQ(mkdir((tmp_.path() + "/store/tmp/layer-crashed").c_str(), 0700), 0);
  WriteFileOrDie(tmp_.path() + "/store/tmp/layer-crashed/partial", "p");
  s.reset();
  s = OpenStore();
  EXPECT_EQ(CountEntries(tmp_.path() + "/store/tmp"), 0);
  // And the real extractor loads the same archive afterwards.
  r = LoadBytes(*s, OciLayoutTar({MakeImage({layer}, "a", "dying:1")}));
  ASSERT_TRUE(r) << r.error().message;
}

// Write-behind: bulk data is listed in root/unsynced until the store has synced it; after a
// machine crash (another boot id) the listed blobs and layers, and the images that used them,
// are removed at Open; after a daemon crash (same boot) they are kept.
TEST_F(StoreTest, UnsyncedDataIsListedThenSyncedAndDroppedAfterAMachineCrash) {
  std::string root = tmp_.path() + "/store";
  std::string layer_dir;
  {
    auto s = OpenStore(MOAT_EXTRACT_PATH, "boot-a", /*sync_delay_ms=*/-1);
    auto r = LoadFile(*s, MOAT_BUNDLED_IMAGE);
    ASSERT_TRUE(r) << r.error().message;
    auto text = sys::ReadFile(root + "/unsynced");
    ASSERT_TRUE(text) << text.error().message;
    EXPECT_EQ(text->rfind("moat-unsynced 1\nboot boot-a\n", 0), 0u) << *text;
    EXPECT_NE(text->find("\nlayer "), std::string::npos) << *text;
    // The layer has a tar-split record: its blob was not kept, so it is not listed.
    EXPECT_EQ(text->find("\nblob "), std::string::npos) << *text;
    auto im = s->Resolve("busybox");
    ASSERT_TRUE(im);
    layer_dir = im->layer_dirs[0];
    // Keep a copy, as a machine crash would have left it, then let the store close (it syncs
    // and removes the list).
    WriteFileOrDie(tmp_.path() + "/unsynced.saved", *text);
  }
  EXPECT_EQ(access((root + "/unsynced").c_str(), F_OK), -1) << "closing did not sync";
  {
    // Same boot, list present (a daemon crash): nothing is lost.
    ASSERT_EQ(rename((tmp_.path() + "/unsynced.saved").c_str(), (root + "/unsynced").c_str()), 0);
    std::string saved = *sys::ReadFile(root + "/unsynced");
    auto s = OpenStore(MOAT_EXTRACT_PATH, "boot-a", -1);
    EXPECT_TRUE(s->Resolve("busybox"));
    ASSERT_TRUE(s->Sync());
    EXPECT_EQ(access((root + "/unsynced").c_str(), F_OK), -1);
    WriteFileOrDie(root + "/unsynced", saved);  // as if the machine had crashed before the sync
  }
  EXPECT_EQ(access((root + "/unsynced").c_str(), F_OK), 0) << "an empty close removed the list";
  {
    // Another boot: the listed layer and blob are gone, and so is the image; nothing else.
    auto s = OpenStore(MOAT_EXTRACT_PATH, "boot-b", -1);
    auto im = s->Resolve("busybox");
    ASSERT_FALSE(im);
    EXPECT_EQ(im.error().kind, ErrorKind::kNotFound);
    EXPECT_EQ(access(layer_dir.c_str(), F_OK), -1);
    EXPECT_EQ(access((root + "/unsynced").c_str(), F_OK), -1);
    EXPECT_EQ(CountEntries(root + "/images"), 0);
    EXPECT_EQ(CountEntries(root + "/tmp"), 0);
    auto list = s->List();
    ASSERT_TRUE(list);
    EXPECT_TRUE(list->empty());
    // Loading again works.
    ASSERT_TRUE(LoadFile(*s, MOAT_BUNDLED_IMAGE));
    EXPECT_TRUE(s->Resolve("busybox"));
  }
}

TEST_F(StoreTest, FlusherSyncsSoonAfterTheLastCommit) {
  std::string root = tmp_.path() + "/store";
  auto s = OpenStore(MOAT_EXTRACT_PATH, "", /*sync_delay_ms=*/20);
  ASSERT_TRUE(LoadFile(*s, MOAT_BUNDLED_IMAGE));
  bool gone = false;
  for (int i = 0; i < 500 && !gone; ++i) {
    gone = access((root + "/unsynced").c_str(), F_OK) != 0;
    if (!gone) usleep(10 * 1000);
  }
  EXPECT_TRUE(gone) << "root/unsynced still there 5 s after the load";
}

TEST_F(StoreTest, CorruptUnsyncedListIsAnError) {
  std::string root = tmp_.path() + "/store";
  { OpenStore(); }
  WriteFileOrDie(root + "/unsynced", "moat-unsynced 1\nboot x\nblob ../../etc\n");
  StoreOptions o;
  o.extractor_path = MOAT_EXTRACT_PATH;
  auto s = Store::Open(root, o);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("bad entry"), std::string::npos) << s.error().message;
}

}  // namespace
}  // namespace moat::image
