// Tests of tar_split.h: the recorder against tars from libarchive, GNU tar and hand-made
// headers (fed in odd-sized pieces), and AssembleTar against changed trees and hostile
// tar-split files. The tree is extracted by the test itself with libarchive (as moat-extract
// does), which also says which files have content, in stream order.
#include "image/tar_split.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>
#include <optional>
#include <thread>

#include "base/strings.h"
#include "base/sys/fileops.h"
#include "base/sys/fs.h"
#include "base/sys/io.h"
#include "base/sys/spawn.h"
#include "image/digest.h"
#include "image/test_util.h"

namespace moat::image {
namespace {

using namespace testing;  // NOLINT: moat::image::testing

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// The first offset where `a` and `b` differ, for failure messages (a tar is too big to print).
std::string FirstDifference(const std::string& a, const std::string& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  return StrFormat("sizes %zu and %zu, first difference at offset %zu", a.size(), b.size(), i);
}

// ---------------------------------------------------------------------------------------------
// Extracting a tar into a directory with libarchive: the regular files with content in stream
// order, with their paths relative to the root (what moat-extract hands to Finish).

struct Extracted {
  std::vector<std::string> paths;
  std::vector<uint64_t> sizes;
};

std::string Normalize(std::string p) {
  while (StartsWith(p, "./")) p.erase(0, 2);
  while (!p.empty() && p.back() == '/') p.pop_back();
  return p;
}

void EnsureParent(const std::string& root, const std::string& rel) {
  size_t slash = rel.rfind('/');
  if (slash != std::string::npos) MOAT_CHECK(sys::MkdirAll(root + "/" + rel.substr(0, slash), 0755));
}

Extracted ExtractForTest(const std::string& tar, const std::string& root) {
  MOAT_CHECK(sys::MkdirAll(root, 0755));
  Extracted out;
  if (tar.empty()) return out;  // libarchive refuses an empty stream
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_format_gnutar(a);
  MOAT_CHECK(archive_read_open_memory(a, tar.data(), tar.size()) == ARCHIVE_OK);
  struct archive_entry* e;
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
    std::string rel = Normalize(archive_entry_pathname(e));
    if (rel.empty() || rel == ".") continue;
    std::string path = root + "/" + rel;
    EnsureParent(root, rel);
    if (const char* target = archive_entry_hardlink(e)) {
      MOAT_CHECK(link((root + "/" + Normalize(target)).c_str(), path.c_str()) == 0);
      continue;
    }
    switch (archive_entry_filetype(e)) {
      case AE_IFDIR:
        MOAT_CHECK(sys::MkdirAll(path, 0755));
        break;
      case AE_IFLNK:
        MOAT_CHECK(symlink(archive_entry_symlink(e), path.c_str()) == 0);
        break;
      case AE_IFREG: {
        std::string data;
        char buf[65536];
        la_ssize_t n;
        while ((n = archive_read_data(a, buf, sizeof buf)) > 0) data.append(buf, n);
        MOAT_CHECK(n == 0);
        WriteFileOrDie(path, data);
        if (!data.empty()) {
          out.paths.push_back(rel);
          out.sizes.push_back(data.size());
        }
        break;
      }
      default:
        break;  // devices and FIFOs: not needed here
    }
  }
  MOAT_CHECK(rc == ARCHIVE_EOF);
  archive_read_free(a);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Recording and assembling.

void FeedInPieces(TarSplitRecorder* r, const std::string& tar, size_t piece) {
  for (size_t off = 0; off < tar.size(); off += piece)
    r->Feed(tar.data() + off, std::min(piece, tar.size() - off));
}

UniqueFd NewFile(const std::string& path) {
  auto fd = sys::open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  MOAT_CHECK(fd);
  return std::move(*fd);
}

UniqueFd OpenDir(const std::string& path) {
  auto fd = sys::open(path, O_RDONLY | O_DIRECTORY);
  MOAT_CHECK(fd);
  return std::move(*fd);
}

// Records `tar` into `split_path` with Finish(paths); the recorder's error if Finish fails.
Result<void> Record(const std::string& tar, const std::string& split_path,
                    const std::vector<std::string>& paths, size_t piece = 4096) {
  UniqueFd fd = NewFile(split_path);
  TarSplitRecorder rec(fd.get());
  FeedInPieces(&rec, tar, piece);
  return rec.Finish(paths);
}

struct Assembled {
  Result<void> result;
  std::string bytes;  // what the sink received
};

Assembled Assemble(const std::string& split_path, const std::string& root,
                   const std::string& diff_id) {
  auto split = sys::open(split_path, O_RDONLY);
  MOAT_CHECK(split);
  UniqueFd dir = OpenDir(root);
  Assembled out{Ok(), {}};
  out.result = AssembleTar(split->get(), dir.get(), diff_id, [&](std::string_view d) {
    out.bytes.append(d);
    return Result<void>(Ok());
  });
  return out;
}

// Extracts `tar`, records it fed in pieces of several sizes, and checks each recording
// assembles to the same bytes; the size of the last tar-split file in `*split_size`.
void ExpectRoundTrip(const std::string& tar,
                     std::vector<size_t> pieces = {1, 7, 511, 512, 513, 4096, 1 << 20},
                     uint64_t* split_size = nullptr) {
  TempDir tmp;
  std::string root = tmp.path() + "/root";
  Extracted ex = ExtractForTest(tar, root);
  for (size_t piece : pieces) {
    SCOPED_TRACE(StrFormat("fed in pieces of %zu bytes", piece));
    std::string split_path = tmp.path() + StrFormat("/split-%zu", piece);
    {
      UniqueFd fd = NewFile(split_path);
      TarSplitRecorder rec(fd.get());
      FeedInPieces(&rec, tar, piece);
      EXPECT_TRUE(rec.usable()) << rec.why_not();
      EXPECT_EQ(rec.file_sizes(), ex.sizes);
      auto fin = rec.Finish(ex.paths);
      ASSERT_TRUE(fin) << fin.error().message;
      auto info = ReadTarSplitInfo(fd.get());
      ASSERT_TRUE(info) << info.error().message;
      EXPECT_EQ(info->tar_bytes, tar.size());
      EXPECT_EQ(info->files, ex.paths.size());
      auto st = sys::fstat(fd.get());
      MOAT_CHECK(st);
      if (split_size) *split_size = st->st_size;
    }
    Assembled got = Assemble(split_path, root, Digest(tar));
    EXPECT_TRUE(got.result) << got.result.error().message;
    EXPECT_TRUE(got.bytes == tar) << FirstDifference(got.bytes, tar);
  }
}

// ---------------------------------------------------------------------------------------------
// Hand-made tar headers.

void PutOctal(std::string* h, size_t off, size_t len, uint64_t v) {
  std::string s = StrFormat("%0*llo", static_cast<int>(len - 1), static_cast<unsigned long long>(v));
  memcpy(h->data() + off, s.data(), len - 1);
  (*h)[off + len - 1] = '\0';
}

// Recomputes the checksum of the header at `off` in `tar`.
void FixChecksum(std::string* tar, size_t off) {
  memset(tar->data() + off + 148, ' ', 8);
  unsigned sum = 0;
  for (size_t i = 0; i < 512; ++i) sum += static_cast<unsigned char>((*tar)[off + i]);
  std::string s = StrFormat("%06o", sum);
  memcpy(tar->data() + off + 148, s.data(), 6);
  (*tar)[off + 154] = '\0';
  (*tar)[off + 155] = ' ';
}

// A ustar header of `name` (< 100 bytes) with typeflag `type` and size field `size`.
std::string Header(const std::string& name, char type, uint64_t size,
                   const std::string& link = "") {
  std::string h(512, '\0');
  memcpy(h.data(), name.data(), name.size());
  PutOctal(&h, 100, 8, type == '5' ? 0755 : 0644);
  PutOctal(&h, 108, 8, 0);
  PutOctal(&h, 116, 8, 0);
  PutOctal(&h, 124, 12, size);
  PutOctal(&h, 136, 12, 0);
  h[156] = type;
  memcpy(h.data() + 157, link.data(), link.size());
  memcpy(h.data() + 257, "ustar\0" "00", 8);
  FixChecksum(&h, 0);
  return h;
}

std::string Pad(std::string data) {
  data.resize((data.size() + 511) / 512 * 512, '\0');
  return data;
}

// A PAX record "<len> key=value\n".
std::string PaxRecord(const std::string& key, const std::string& value) {
  size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
  size_t len = body + std::to_string(body).size();
  if (std::to_string(len).size() != std::to_string(body).size()) ++len;
  return std::to_string(len) + " " + key + "=" + value + "\n";
}

// A PAX extended header (typeflag `type`, 'x' or 'g') with `records`, padded.
std::string PaxHeader(char type, const std::string& records) {
  return Header("PaxHeaders/x", type, records.size()) + Pad(records);
}

const std::string kEnd(1024, '\0');

// ---------------------------------------------------------------------------------------------
// GNU tar.

class GnuTar {
 public:
  GnuTar() {
    const char* path = getenv("PATH");
    auto found = sys::FindOnPath("tar", path ? path : "/usr/bin:/bin");
    if (found) {
      auto run = sys::RunCollectingOutput(*found, {"tar", "--version"}, -1, true);
      if (run && run->Succeeded() && Contains(run->output, "GNU tar")) path_ = *found;
    }
  }
  bool available() const { return !path_.empty(); }

  // `tar -c <args> -f <tmp> -C dir .`, the archive's bytes.
  std::string Create(const std::string& dir, const std::vector<std::string>& args) {
    std::string out = dir + ".tar";
    std::vector<std::string> argv = {"tar", "-c", "--mtime=@1700000000", "--sort=name"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"-f", out, "-C", dir, "."});
    auto run = sys::RunCollectingOutput(path_, argv, -1, true);
    MOAT_CHECK(run);
    EXPECT_TRUE(run->Succeeded()) << run->output;
    std::string data = ReadFileOrDie(out);
    MOAT_CHECK(unlink(out.c_str()) == 0);
    return data;
  }

 private:
  std::string path_;
};

#define REQUIRE_GNU_TAR(t) \
  if (!(t).available()) GTEST_SKIP() << "no GNU tar on PATH"

// A source tree with long names (> 100 and > 255 bytes), a long symlink target, a hardlink,
// files of 0, 1, 511, 512, 513 and 70000 bytes, and nested directories. Short names only when
// `long_names` is false (ustar, v7).
void MakeSourceTree(const std::string& dir, bool long_names) {
  MOAT_CHECK(sys::MkdirAll(dir + "/sub/deeper", 0755));
  WriteFileOrDie(dir + "/empty", "");
  WriteFileOrDie(dir + "/one", "1");
  WriteFileOrDie(dir + "/n511", Noise(511, 1));
  WriteFileOrDie(dir + "/n512", Noise(512, 2));
  WriteFileOrDie(dir + "/n513", Noise(513, 3));
  WriteFileOrDie(dir + "/sub/deeper/big", Noise(70000, 4));
  WriteFileOrDie(dir + "/sub/text", "hello\n");
  MOAT_CHECK(link((dir + "/n513").c_str(), (dir + "/sub/hard").c_str()) == 0);
  MOAT_CHECK(symlink("../n512", (dir + "/sub/sym").c_str()) == 0);
  if (!long_names) return;
  std::string d1 = std::string(120, 'd');
  std::string f1 = std::string(150, 'f');
  MOAT_CHECK(sys::MkdirAll(dir + "/" + d1, 0755));
  WriteFileOrDie(dir + "/" + d1 + "/" + f1, Noise(1000, 5));
  MOAT_CHECK(link((dir + "/" + d1 + "/" + f1).c_str(), (dir + "/" + d1 + "/hard-" + f1).c_str()) ==
             0);
  MOAT_CHECK(symlink((d1 + "/" + f1).c_str(), (dir + "/sym-long").c_str()) == 0);
}

// ---------------------------------------------------------------------------------------------
// Round trips.

TEST(TarSplitRoundTrip, LibarchivePax) {
  std::string long_name = std::string(140, 'p') + "/" + std::string(130, 'q');
  TarEntry with_xattr = File("x/attr", "with an xattr");
  with_xattr.xattrs = {{"user.moat", "value"}};
  TarEntry big_uid = File("x/uid", "big uid");
  big_uid.uid = 4000000000;
  ExpectRoundTrip(BuildTar({
      Dir("x"), File("x/empty", ""), File("x/one", "1"), File("x/n511", Noise(511, 1)),
      File("x/n512", Noise(512, 2)), File("x/n513", Noise(513, 3)),
      File("x/big", Noise(200000, 4)), Symlink("x/sym", "n512"), Hardlink("x/hard", "x/n513"),
      File(long_name, Noise(700, 6)), Symlink("x/symlong", long_name), with_xattr, big_uid,
      Dir("x/emptydir"),
  }));
}

TEST(TarSplitRoundTrip, EmptyArchives) {
  ExpectRoundTrip(BuildTar({}));
  ExpectRoundTrip(BuildTar({Dir("d"), File("d/e", ""), Symlink("d/s", "e")}));
  ExpectRoundTrip("");
  // Entries without end-of-archive blocks.
  ExpectRoundTrip(Header("f", '0', 3) + Pad("abc"));
}

TEST(TarSplitRoundTrip, GnuTarFormats) {
  GnuTar tar;
  REQUIRE_GNU_TAR(tar);
  struct Case {
    std::string format;
    bool long_names;
  };
  for (const Case& c : std::vector<Case>{{"gnu", true}, {"oldgnu", true}, {"pax", true},
                                        {"posix", true}, {"ustar", false}, {"v7", false}}) {
    SCOPED_TRACE("--format=" + c.format);
    TempDir tmp;
    MakeSourceTree(tmp.path() + "/src", c.long_names);
    std::string data = tar.Create(tmp.path() + "/src", {"--format=" + c.format});
    // GNU tar writes 10240-byte records: the end-of-archive blocks are followed by zeros.
    EXPECT_EQ(data.size() % 10240, 0u);
    if (c.format == "gnu") {
      EXPECT_TRUE(Contains(data, "././@LongLink"));  // 'L' / 'K' records
    }
    ExpectRoundTrip(data, {1, 513, 4096});
  }
}

TEST(TarSplitRoundTrip, GnuTarBigIdsAndLongNames) {
  GnuTar tar;
  REQUIRE_GNU_TAR(tar);
  for (std::string format : {"pax", "gnu"}) {
    SCOPED_TRACE("--format=" + format);
    TempDir tmp;
    MakeSourceTree(tmp.path() + "/src", true);
    // uid / gid beyond ustar's 8 octal digits: PAX "uid" records, or GNU base-256 fields.
    std::string data = tar.Create(tmp.path() + "/src", {"--format=" + format,
                                                        "--owner=moat:4000000000",
                                                        "--group=moat:4000000001"});
    if (format == "pax") {
      EXPECT_TRUE(Contains(data, " uid=4000000000\n"));
    }
    ExpectRoundTrip(data, {7, 511, 1 << 20});
  }
}

TEST(TarSplitRoundTrip, JunkAfterTheEnd) {
  std::string base = BuildTar({File("a", Noise(600, 1)), File("b", "bee")});
  ExpectRoundTrip(base + std::string(10240 - base.size() % 10240, '\0'));
  ExpectRoundTrip(base + "junk after the archive \x01\x02\x03");
  ExpectRoundTrip(base + Noise(100000, 9));
  // A single zero block ends the archive for libarchive and for the recorder alike.
  std::string one_zero = base.substr(0, base.size() - 512) + Noise(777, 10);
  ExpectRoundTrip(one_zero);
}

TEST(TarSplitRoundTrip, NonZeroPadding) {
  std::string data = BuildTar({File("a", Noise(100, 1)), File("b", "x"), File("c", "")});
  // pax_restricted writes plain ustar headers for short names: "a" is the first header.
  ASSERT_EQ(data.compare(0, 2, std::string("a\0", 2)), 0);
  // Content of "a" at 512..612, padding 612..1024: fill it with non-zero bytes.
  for (size_t i = 612; i < 1024; ++i) data[i] = static_cast<char>('P' + i % 7);
  // Same for "b" (header at 1024, content 1536, padding 1537..2048).
  ASSERT_EQ(data[1536], 'x');
  for (size_t i = 1537; i < 2048; ++i) data[i] = '\xff';
  ExpectRoundTrip(data);
}

TEST(TarSplitRoundTrip, HandMadeHeaders) {
  // A PAX "size" overrides the header's size field (here 0).
  std::string pax_size = PaxHeader('x', PaxRecord("size", "600")) + Header("f", '0', 0) +
                         Pad(Noise(600, 1)) + kEnd;
  ExpectRoundTrip(pax_size);

  // GNU base-256 size field.
  std::string b256 = Header("g", '0', 0);
  memset(b256.data() + 124, 0, 12);
  b256[124] = '\x80';
  b256[134] = 0x03;
  b256[135] = '\xe8';  // 1000
  FixChecksum(&b256, 0);
  ExpectRoundTrip(b256 + Pad(Noise(1000, 2)) + kEnd);

  // Octal fields with leading spaces and a space terminator.
  std::string spaced = Header("h", '0', 0);
  memcpy(spaced.data() + 124, "       1750 ", 12);
  FixChecksum(&spaced, 0);
  ExpectRoundTrip(spaced + Pad(Noise(1000, 3)) + kEnd);

  // A contiguous file ('7') is a regular file; a GNU long name before it.
  std::string name = std::string(140, 'n') + "/" + std::string(150, 'm');
  std::string gnu = Header("././@LongLink", 'L', name.size() + 1) + Pad(name + '\0') +
                    Header("short", '7', 5) + Pad("seven") + kEnd;
  ExpectRoundTrip(gnu);

  // A hardlink whose size field is not 0: it has no data (as for Go's archive/tar).
  std::string target = Header("t", '0', 4) + Pad("tttt");
  std::string hard = Header("l", '1', 4, "t");
  ExpectRoundTrip(target + hard + kEnd);
}

// An entry type libarchive extracts as a regular file (POSIX: unknown types are regular files)
// but the recorder keeps as raw bytes: moat-extract must pair by the recorder's file_sizes(),
// and the round trip holds with the recorder's view.
TEST(TarSplitRoundTrip, UnknownTypeflagIsKeptRaw) {
  std::string data = Header("z", 'Z', 5) + Pad("zzzzz") + Header("f", '0', 3) + Pad("eff") + kEnd;
  TempDir tmp;
  Extracted ex = ExtractForTest(data, tmp.path() + "/root");
  EXPECT_EQ(ex.paths, (std::vector<std::string>{"z", "f"}));  // libarchive's view
  std::string split = tmp.path() + "/split";
  UniqueFd fd = NewFile(split);
  TarSplitRecorder rec(fd.get());
  rec.Feed(data.data(), data.size());
  ASSERT_TRUE(rec.usable());
  EXPECT_EQ(rec.file_sizes(), std::vector<uint64_t>{3});
  auto fin = rec.Finish({"f"});
  ASSERT_TRUE(fin) << fin.error().message;
  Assembled got = Assemble(split, tmp.path() + "/root", Digest(data));
  EXPECT_TRUE(got.result) << got.result.error().message;
  EXPECT_TRUE(got.bytes == data);
}

// ---------------------------------------------------------------------------------------------
// The recorder gives up.

void ExpectGivesUp(const std::string& data, const std::string& why, size_t piece = 4096) {
  SCOPED_TRACE(why);
  TempDir tmp;
  UniqueFd fd = NewFile(tmp.path() + "/split");
  TarSplitRecorder rec(fd.get());
  FeedInPieces(&rec, data, piece);
  EXPECT_FALSE(rec.usable());
  EXPECT_TRUE(Contains(rec.why_not(), why)) << rec.why_not();
  auto fin = rec.Finish(std::vector<std::string>(rec.file_sizes().size(), "x"));
  ASSERT_FALSE(fin);
  EXPECT_EQ(fin.error().kind, ErrorKind::kUnsupported);
  EXPECT_TRUE(Contains(fin.error().message, why)) << fin.error().message;
}

TEST(TarSplitRecorderGivesUp, GnuSparseFromGnuTar) {
  GnuTar tar;
  REQUIRE_GNU_TAR(tar);
  for (std::string format : {"gnu", "pax"}) {
    SCOPED_TRACE("--format=" + format);
    TempDir tmp;
    std::string src = tmp.path() + "/src";
    MOAT_CHECK(sys::MkdirAll(src, 0755));
    WriteFileOrDie(src + "/before", "before");
    {
      UniqueFd f = NewFile(src + "/holey");
      MOAT_CHECK(sys::pwrite(f.get(), "data at the end", 15, 4 << 20));
    }
    std::string data = tar.Create(src, {"--format=" + format, "--sparse"});
    if (format == "gnu") {
      ExpectGivesUp(data, "sparse file");
    } else {
      ExpectGivesUp(data, "sparse file", 511);
    }
  }
}

TEST(TarSplitRecorderGivesUp, HandMade) {
  // Typeflag 'S' (old GNU sparse).
  ExpectGivesUp(Header("s", 'S', 0) + kEnd, "sparse file");
  // GNU.sparse.* PAX keys.
  ExpectGivesUp(PaxHeader('x', PaxRecord("GNU.sparse.major", "1")) + Header("s", '0', 0) + kEnd,
                "sparse file", 1);
  // A bad checksum, in the first and in a later header.
  std::string bad = Header("f", '0', 0);
  bad[0] = 'g';
  ExpectGivesUp(bad + kEnd, "checksum mismatch at offset 0");
  std::string later = BuildTar({File("a", "aaa"), File("b", "bbb")});
  later[1024] = 'c';
  ExpectGivesUp(later, "checksum mismatch at offset 1024", 7);
  // A global PAX size, a malformed PAX header, a PAX header over 1 MiB.
  ExpectGivesUp(PaxHeader('g', PaxRecord("size", "5")) + kEnd, "global PAX size");
  ExpectGivesUp(PaxHeader('x', "12 nonsense\n") + Header("f", '0', 0) + kEnd, "PAX");
  ExpectGivesUp(PaxHeader('x', PaxRecord("size", "-1")) + Header("f", '0', 0) + kEnd,
                "bad PAX size");
  ExpectGivesUp(PaxHeader('x', PaxRecord("comment", std::string(1 << 20, 'c'))) + kEnd,
                "PAX header too large");
  // A malformed size field.
  std::string size = Header("f", '0', 0);
  memcpy(size.data() + 124, "12x45678901\0", 12);
  FixChecksum(&size, 0);
  ExpectGivesUp(size + kEnd, "bad tar size field");
}

TEST(TarSplitRecorderGivesUp, StreamEndsInsideAFile) {
  std::string data = Header("f", '0', 1000) + Noise(700, 1);
  TempDir tmp;
  UniqueFd fd = NewFile(tmp.path() + "/split");
  TarSplitRecorder rec(fd.get());
  FeedInPieces(&rec, data, 511);
  EXPECT_EQ(rec.file_sizes(), std::vector<uint64_t>{1000});
  auto fin = rec.Finish({"f"});
  ASSERT_FALSE(fin);
  EXPECT_EQ(fin.error().kind, ErrorKind::kUnsupported);
  EXPECT_TRUE(Contains(fin.error().message, "the stream ends inside a file"))
      << fin.error().message;
  EXPECT_FALSE(rec.usable());
}

TEST(TarSplitRecorderGivesUp, FinishWithTheWrongNumberOfPaths) {
  std::string data = BuildTar({File("a", "aaa"), File("b", "bbb"), File("c", "")});
  TempDir tmp;
  for (const std::vector<std::string>& paths :
       std::vector<std::vector<std::string>>{{}, {"a"}, {"a", "b", "c"}}) {
    UniqueFd fd = NewFile(tmp.path() + "/split");
    TarSplitRecorder rec(fd.get());
    rec.Feed(data.data(), data.size());
    ASSERT_TRUE(rec.usable());
    EXPECT_EQ(rec.file_sizes(), (std::vector<uint64_t>{3, 3}));
    auto fin = rec.Finish(paths);
    ASSERT_FALSE(fin);
    EXPECT_EQ(fin.error().kind, ErrorKind::kUnsupported);
    EXPECT_TRUE(Contains(fin.error().message, StrFormat("2 files in the stream, %zu given",
                                                        paths.size())))
        << fin.error().message;
  }
}

TEST(TarSplitRecorderGivesUp, WriteError) {
  std::string data = BuildTar({File("a", Noise(300000, 1))});
  UniqueFd fd = OpenDir("/");  // writes fail with EBADF-like errors: not writable
  TarSplitRecorder rec(fd.get());
  FeedInPieces(&rec, data, 4096);
  auto fin = rec.Finish({"a"});
  EXPECT_FALSE(fin);
}

// ---------------------------------------------------------------------------------------------
// AssembleTar refuses.

constexpr char kMarker[] = "OUTSIDE-MARKER!";

// A tree with a recorded layer and, beside the root, an "outside" directory with files of the
// same sizes as the layer's, filled with kMarker.
class TarSplitAssembleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tar_ = BuildTar({Dir("dir"), File("a.txt", Noise(600, 1)), File("dir/b.bin", Noise(10000, 2)),
                     File("c", Noise(513, 3)), Symlink("s", "a.txt"), File("e", "")});
    root_ = tmp_.path() + "/root";
    Extracted ex = ExtractForTest(tar_, root_);
    ASSERT_EQ(ex.paths, (std::vector<std::string>{"a.txt", "dir/b.bin", "c"}));
    split_ = tmp_.path() + "/split";
    auto r = Record(tar_, split_, ex.paths);
    ASSERT_TRUE(r) << r.error().message;
    split_bytes_ = ReadFileOrDie(split_);
    outside_ = tmp_.path() + "/outside";
    MOAT_CHECK(sys::MkdirAll(outside_ + "/dir", 0755));
    WriteFileOrDie(outside_ + "/a.txt", Marked(600));
    WriteFileOrDie(outside_ + "/dir/b.bin", Marked(10000));
    WriteFileOrDie(outside_ + "/c", Marked(513));
  }

  static std::string Marked(size_t n) {
    std::string s;
    while (s.size() < n) s += kMarker;
    s.resize(n);
    return s;
  }

  // Assembles `split` (default: the recorded file) and checks that it fails with a message
  // holding `want` and that the sink saw no byte from outside the tree.
  void ExpectRefused(const std::string& want, const std::optional<std::string>& split = {},
                     const std::string& diff_id = "") {
    if (split) WriteFileOrDie(split_, *split);
    Assembled got = Assemble(split_, root_, diff_id.empty() ? Digest(tar_) : diff_id);
    ASSERT_FALSE(got.result) << "assembled " << got.bytes.size() << " bytes";
    EXPECT_EQ(got.result.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_TRUE(Contains(got.result.error().message, want)) << got.result.error().message;
    // The sink may have seen part of the (changed) stream, never a byte from outside the tree.
    EXPECT_FALSE(Contains(got.bytes, std::string(kMarker).substr(0, 8)));
    EXPECT_TRUE(got.bytes.size() <= tar_.size());
  }

  TempDir tmp_;
  std::string tar_, root_, split_, split_bytes_, outside_;
};

TEST_F(TarSplitAssembleTest, Unchanged) {
  Assembled got = Assemble(split_, root_, Digest(tar_));
  ASSERT_TRUE(got.result) << got.result.error().message;
  EXPECT_TRUE(got.bytes == tar_);
  // A second assembly from the same fds gives the same (pread: no shared offset).
  Assembled again = Assemble(split_, root_, Digest(tar_));
  EXPECT_TRUE(again.result && again.bytes == tar_);
}

TEST_F(TarSplitAssembleTest, FileContentChanged) {
  std::string b = ReadFileOrDie(root_ + "/dir/b.bin");
  b[5000] ^= 1;
  WriteFileOrDie(root_ + "/dir/b.bin", b);
  ExpectRefused("the tree changed");
}

TEST_F(TarSplitAssembleTest, FileSizeChanged) {
  WriteFileOrDie(root_ + "/c", Noise(514, 3));
  ExpectRefused("layer file c is not the regular file of 513 bytes");
  WriteFileOrDie(root_ + "/c", Noise(512, 3));
  ExpectRefused("layer file c is not the regular file of 513 bytes");
}

TEST_F(TarSplitAssembleTest, FileMissing) {
  ASSERT_EQ(unlink((root_ + "/a.txt").c_str()), 0);
  ExpectRefused("layer file a.txt");
}

TEST_F(TarSplitAssembleTest, FileIsASymlinkOutOfTheTree) {
  for (const std::string& target :
       std::vector<std::string>{outside_ + "/a.txt", "../outside/a.txt"}) {
    SCOPED_TRACE(target);
    ASSERT_EQ(unlink((root_ + "/a.txt").c_str()), 0);
    ASSERT_EQ(symlink(target.c_str(), (root_ + "/a.txt").c_str()), 0);
    ExpectRefused("layer file a.txt");
  }
}

TEST_F(TarSplitAssembleTest, DirectoryIsASymlinkOutOfTheTree) {
  ASSERT_TRUE(sys::RemoveAll(root_ + "/dir"));
  for (const std::string& target :
       std::vector<std::string>{outside_ + "/dir", "../outside/dir", "../../outside/dir"}) {
    SCOPED_TRACE(target);
    (void)unlink((root_ + "/dir").c_str());
    ASSERT_EQ(symlink(target.c_str(), (root_ + "/dir").c_str()), 0);
    ExpectRefused("layer file dir/b.bin");
  }
}

TEST_F(TarSplitAssembleTest, FileIsAFifo) {
  ASSERT_EQ(unlink((root_ + "/c").c_str()), 0);
  std::string fifo = root_ + "/c";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  auto done = std::async(std::launch::async, [&] { return Assemble(split_, root_, Digest(tar_)); });
  if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "AssembleTar blocks on a FIFO";
    // Unblock it: a writer for the open, then EOF for the read.
    int w = open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (w >= 0) close(w);
  }
  Assembled got = done.get();
  ASSERT_FALSE(got.result);
  EXPECT_TRUE(Contains(got.result.error().message, "layer file c is not the regular file"))
      << got.result.error().message;
}

TEST_F(TarSplitAssembleTest, FileIsADirectory) {
  ASSERT_EQ(unlink((root_ + "/c").c_str()), 0);
  ASSERT_EQ(mkdir((root_ + "/c").c_str(), 0755), 0);
  ExpectRefused("layer file c is not the regular file");
}

TEST_F(TarSplitAssembleTest, BadPathsInTheTable) {
  // Paths Finish takes as given (moat-extract is not trusted): AssembleTar must refuse them.
  for (const std::string& bad : std::vector<std::string>{"../outside/a.txt", "/tmp/x", outside_ + "/a.txt", "./a.txt",
                          "dir/../a.txt", "dir//b.bin", "a.txt/", "", std::string("a\0b", 3),
                          std::string(5000, 'l')}) {
    SCOPED_TRACE(bad);
    auto r = Record(tar_, split_, {bad, "dir/b.bin", "c"});
    ASSERT_TRUE(r) << r.error().message;
    // A path over 4096 bytes is refused as a malformed entry, the others as bad paths.
    ExpectRefused("file table entry 0");
  }
}

TEST_F(TarSplitAssembleTest, WrongDiffId) {
  ExpectRefused("the rebuilt layer is " + Digest(tar_) + ", not " + Digest("other"), {},
                Digest("other"));
  for (const std::string& bad : std::vector<std::string>{"sha512:" + std::string(128, 'a'),
                                                         "sha256:XYZ", "", "sha256:"}) {
    SCOPED_TRACE(bad);
    auto split = sys::open(split_, O_RDONLY);
    UniqueFd dir = OpenDir(root_);
    bool called = false;
    auto r = AssembleTar(split->get(), dir.get(), bad, [&](std::string_view) {
      called = true;
      return Result<void>(Ok());
    });
    EXPECT_FALSE(r);
  }
}

TEST_F(TarSplitAssembleTest, SinkErrorIsReturned) {
  auto split = sys::open(split_, O_RDONLY);
  UniqueFd dir = OpenDir(root_);
  int calls = 0;
  auto r = AssembleTar(split->get(), dir.get(), Digest(tar_), [&](std::string_view) {
    ++calls;
    return Result<void>(Fail(ErrorKind::kUnavailable, "the sink is full"));
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_TRUE(Contains(r.error().message, "the sink is full"));
  EXPECT_EQ(calls, 1);
}

TEST_F(TarSplitAssembleTest, NotASplitFile) {
  ExpectRefused("not a tar-split file (too short)", std::string(""));
  ExpectRefused("not a tar-split file (too short)", std::string(31, 'M'));
  ExpectRefused("not a tar-split file (bad trailer)", Noise(4096, 7));
  ExpectRefused("not a tar-split file (bad trailer)", tar_);
  // A pipe and a directory as the split fd.
  auto pipe = sys::pipe2(0);
  ASSERT_TRUE(pipe);
  UniqueFd dir = OpenDir(root_);
  for (int fd : {pipe->first.get(), dir.get()}) {
    auto r = AssembleTar(fd, dir.get(), Digest(tar_),
                         [](std::string_view) { return Result<void>(Ok()); });
    ASSERT_FALSE(r);
    EXPECT_TRUE(Contains(r.error().message, "not a tar-split file")) << r.error().message;
    EXPECT_FALSE(ReadTarSplitInfo(fd));
  }
}

TEST_F(TarSplitAssembleTest, TruncatedAtEveryLength) {
  for (size_t n = 0; n < split_bytes_.size(); ++n) {
    SCOPED_TRACE(StrFormat("%zu of %zu bytes", n, split_bytes_.size()));
    ExpectRefused("tar-split: ", split_bytes_.substr(0, n));
    if (HasFailure()) break;
  }
}

// Little-endian u64 fields of the trailer.
uint64_t TrailerField(const std::string& split, int i) {
  uint64_t v = 0;
  for (int b = 7; b >= 0; --b)
    v = (v << 8) | static_cast<unsigned char>(split[split.size() - 32 + 8 + 8 * i + b]);
  return v;
}
std::string WithTrailerField(std::string split, int i, uint64_t v) {
  for (int b = 0; b < 8; ++b)
    split[split.size() - 32 + 8 + 8 * i + b] = static_cast<char>((v >> (8 * b)) & 0xff);
  return split;
}

TEST_F(TarSplitAssembleTest, CorruptedTrailer) {
  const std::string& s = split_bytes_;
  uint64_t table = TrailerField(s, 0), bytes = TrailerField(s, 1), files = TrailerField(s, 2);
  ASSERT_EQ(bytes, tar_.size());
  ASSERT_EQ(files, 3u);
  std::string magic = s;
  magic[magic.size() - 32] = 'X';
  ExpectRefused("bad trailer", magic);
  ExpectRefused("table offset out of range", WithTrailerField(s, 0, s.size() - 31));
  ExpectRefused("table offset out of range", WithTrailerField(s, 0, ~0ull));
  ExpectRefused("tar-split: ", WithTrailerField(s, 0, table - 1));
  ExpectRefused("tar-split: ", WithTrailerField(s, 0, table + 1));
  ExpectRefused("tar-split: ", WithTrailerField(s, 0, 0));
  // The table is read one entry per file record: an empty one fails at the first record.
  ExpectRefused("file record 0 does not match", WithTrailerField(s, 0, s.size() - 32));
  ExpectRefused("tar-split: ", WithTrailerField(s, 1, bytes - 1));
  ExpectRefused("rebuilt", WithTrailerField(s, 1, bytes + 1));
  // A tar of 100 bytes: the first raw record is already longer.
  ExpectRefused("bad raw record length", WithTrailerField(s, 1, 100));
  ExpectRefused("3 files in the table, 4 expected", WithTrailerField(s, 2, files + 1));
  ExpectRefused("more files in the table than 2", WithTrailerField(s, 2, files - 1));
  ExpectRefused("3 files in the table", WithTrailerField(s, 2, ~0ull));
  // Bytes inserted before the trailer.
  ExpectRefused("tar-split: ", s.substr(0, s.size() - 32) + "garbage" + s.substr(s.size() - 32));
}

// Flipping any bit of the file never gives a different stream, nor bytes from outside.
TEST_F(TarSplitAssembleTest, EveryByteFlipped) {
  for (size_t i = 0; i < split_bytes_.size(); ++i) {
    for (unsigned char x : {0x01, 0x80, 0xff}) {
      std::string s = split_bytes_;
      s[i] = static_cast<char>(s[i] ^ x);
      WriteFileOrDie(split_, s);
      Assembled got = Assemble(split_, root_, Digest(tar_));
      if (got.result) {
        EXPECT_TRUE(got.bytes == tar_) << "byte " << i << " ^ " << unsigned(x);
      } else {
        EXPECT_TRUE(StartsWith(got.result.error().message, "tar-split: "))
            << got.result.error().message;
        EXPECT_LE(got.bytes.size(), tar_.size());
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Hand-written split files: zstd frames of raw / RLE blocks (RFC 8878), no compressor needed.

// One zstd frame holding `data` in raw blocks of at most `block` bytes.
std::string ZstdRawFrame(const std::string& data, size_t block = 128 << 10) {
  std::string f = "\x28\xb5\x2f\xfd";
  f += '\x00';                 // frame header descriptor: no checksum, no content size
  f += static_cast<char>(0x38);  // window descriptor: 2^(10+7) = 128 KiB
  size_t off = 0;
  do {
    size_t n = std::min(block, data.size() - off);
    bool last = off + n == data.size();
    uint32_t h = (last ? 1 : 0) | (0 << 1) | static_cast<uint32_t>(n << 3);
    f += static_cast<char>(h & 0xff);
    f += static_cast<char>((h >> 8) & 0xff);
    f += static_cast<char>((h >> 16) & 0xff);
    f.append(data, off, n);
    off += n;
  } while (off < data.size());
  return f;
}

// One zstd frame of `blocks` RLE blocks, each `n` bytes of `byte`.
std::string ZstdRleFrame(char byte, size_t n, size_t blocks) {
  std::string f = "\x28\xb5\x2f\xfd";
  f += '\x00';
  f += static_cast<char>(0x38);
  for (size_t i = 0; i < blocks; ++i) {
    uint32_t h = (i + 1 == blocks ? 1 : 0) | (1 << 1) | static_cast<uint32_t>(n << 3);
    f += static_cast<char>(h & 0xff);
    f += static_cast<char>((h >> 8) & 0xff);
    f += static_cast<char>((h >> 16) & 0xff);
    f += byte;
  }
  return f;
}

// One zstd frame of the given blocks: {data, 0} is a raw block of `data`, {"c", n} an RLE block
// of n bytes 'c'.
std::string ZstdFrame(const std::vector<std::pair<std::string, size_t>>& blocks) {
  std::string f = "\x28\xb5\x2f\xfd";
  f += '\x00';
  f += static_cast<char>(0x38);
  for (size_t i = 0; i < blocks.size(); ++i) {
    const auto& [data, rle] = blocks[i];
    size_t n = rle ? rle : data.size();
    uint32_t h = (i + 1 == blocks.size() ? 1 : 0) | ((rle ? 1 : 0) << 1) |
                 static_cast<uint32_t>(n << 3);
    f += static_cast<char>(h & 0xff);
    f += static_cast<char>((h >> 8) & 0xff);
    f += static_cast<char>((h >> 16) & 0xff);
    f += rle ? data.substr(0, 1) : data;
  }
  return f;
}

std::string Varint(uint64_t v) {
  std::string s;
  while (v >= 0x80) {
    s += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  s += static_cast<char>(v);
  return s;
}

std::string SplitFile(const std::string& records_frames, const std::string& table_frames,
                      uint64_t tar_bytes, uint64_t files) {
  std::string s = records_frames + table_frames + "MOATTS01";
  for (uint64_t v : {static_cast<uint64_t>(records_frames.size()), tar_bytes, files})
    for (int b = 0; b < 8; ++b) s += static_cast<char>((v >> (8 * b)) & 0xff);
  return s;
}

std::string TableEntryBytes(uint64_t size, const std::string& path) {
  return Varint(size) + Varint(path.size()) + path;
}

TEST_F(TarSplitAssembleTest, HandWrittenFiles) {
  // The tar's raw bytes around the three files' contents, found by searching for them.
  std::string fa = ReadFileOrDie(root_ + "/a.txt"), fb = ReadFileOrDie(root_ + "/dir/b.bin"),
              fc = ReadFileOrDie(root_ + "/c");
  size_t pa = tar_.find(fa), pb = tar_.find(fb), pc = tar_.find(fc);
  ASSERT_TRUE(pa != std::string::npos && pb != std::string::npos && pc != std::string::npos);
  auto raw = [&](size_t from, size_t to) {
    return "R" + Varint(to - from) + tar_.substr(from, to - from);
  };
  std::string records = raw(0, pa) + "F" + Varint(fa.size()) + raw(pa + fa.size(), pb) + "F" +
                        Varint(fb.size()) + raw(pb + fb.size(), pc) + "F" + Varint(fc.size()) +
                        raw(pc + fc.size(), tar_.size()) + "E";
  std::string table = TableEntryBytes(600, "a.txt") + TableEntryBytes(10000, "dir/b.bin") +
                      TableEntryBytes(513, "c");
  // The hand-written file assembles (the helpers are right), also in 1-byte blocks.
  for (size_t block : {size_t{1}, size_t{100}, size_t{128} << 10}) {
    SCOPED_TRACE(block);
    WriteFileOrDie(split_, SplitFile(ZstdRawFrame(records, block), ZstdRawFrame(table, block),
                                     tar_.size(), 3));
    Assembled got = Assemble(split_, root_, Digest(tar_));
    ASSERT_TRUE(got.result) << got.result.error().message;
    EXPECT_TRUE(got.bytes == tar_);
  }
  auto file = [&](const std::string& recs, const std::string& tab, uint64_t files = 3) {
    return SplitFile(ZstdRawFrame(recs), ZstdRawFrame(tab), tar_.size(), files);
  };
  ExpectRefused("unknown record type 0x58", file("X" + records, table));
  ExpectRefused("data after the end record",
                SplitFile(ZstdRawFrame(records) + ZstdRawFrame("R\x01x"), ZstdRawFrame(table),
                          tar_.size(), 3));
  ExpectRefused("records end early", file(records + "R\x01x", table));
  ExpectRefused("records end early", file(records.substr(0, records.size() - 1), table));
  ExpectRefused("records end early", file(records.substr(0, 3), table));
  ExpectRefused("malformed record length", file("R" + std::string(11, '\xff') + records, table));
  ExpectRefused("bad raw record length", file(std::string("R\0", 2) + records, table));
  ExpectRefused("bad raw record length", file("R" + Varint(~0ull) + records, table));
  ExpectRefused("more than the recorded", file(records.substr(0, records.size() - 1) + "R\x01xE",
                                               table));
  ExpectRefused("file record 3 does not match",
                file(records.substr(0, records.size() - 1) + "F\x01" + "E", table));
  ExpectRefused("file record 0 does not match", file("F" + Varint(601) + records, table));
  ExpectRefused("the file table ends inside entry 3", file(records, table + "\x05"));
  ExpectRefused("the file table ends inside entry 3", file(records, table + "\x05\x10" + "abc"));
  ExpectRefused("bad path", file(records, table + TableEntryBytes(0, "..")));
  ExpectRefused("more files in the table than 3", file(records, table + TableEntryBytes(0, "e")));
  std::string two_files = raw(0, pa) + "F" + Varint(fa.size()) + raw(pa + fa.size(), pb) + "F" +
                          Varint(fb.size()) + "E";
  ExpectRefused("2 of 3 files used", file(two_files, table));
  // A block of the reserved type 3.
  ExpectRefused("corrupt zstd data",
                SplitFile(std::string("\x28\xb5\x2f\xfd\x00\x38\x07\x00\x00", 9),
                          ZstdRawFrame(table), tar_.size(), 3));
  ExpectRefused("truncated zstd frame",
                SplitFile(ZstdRawFrame(records).substr(0, 100), ZstdRawFrame(table), tar_.size(),
                          3));
}

// A frame whose last block is decoded while the previous piece's output buffer is full: all
// of its input is consumed, part of its output is still inside the decoder (zstd returns a
// non-zero hint). Here: a 100-byte block then a 128 KiB block, both RLE (a few input bytes).
TEST(TarSplitAssembleBounds, FrameEndingWithOutputStillBuffered) {
  TempDir tmp;
  std::string tar(100 + (128 << 10), 'a');
  std::string records = ZstdFrame({{"R" + Varint(tar.size()), 0}, {"a", 100}, {"a", 128 << 10},
                                   {"E", 0}});
  std::string split = tmp.path() + "/split";
  WriteFileOrDie(split, SplitFile(records, ZstdFrame({{"", 0}}), tar.size(), 0));
  MOAT_CHECK(sys::MkdirAll(tmp.path() + "/root", 0755));
  Assembled got = Assemble(split, tmp.path() + "/root", Digest(tar));
  EXPECT_TRUE(got.result) << got.result.error().message;
  EXPECT_TRUE(got.bytes == tar) << FirstDifference(got.bytes, tar);
}

// The recorder's zstd frames decode in pieces of at most ZSTD_DStreamOutSize() (128 KiB):
// records and tables larger than that, compressible or not, must assemble.
TEST(TarSplitRoundTrip, RecordsLargerThanAZstdBlock) {
  for (size_t junk : {size_t{100000}, size_t{131072}, size_t{300000}, size_t{1} << 20}) {
    SCOPED_TRACE(junk);
    std::string base = BuildTar({File("a", "aaaa")});
    ExpectRoundTrip(base + Noise(junk, 11), {1 << 20});
    ExpectRoundTrip(base + std::string(junk, 'z'), {1 << 20});
  }
}

// ~2,000 small files: the tar-split file is a small fraction of the tar.
TEST(TarSplitRoundTrip, ManySmallFilesStaySmall) {
  std::vector<TarEntry> entries;
  size_t content = 0;
  for (int d = 0; d < 40; ++d) {
    entries.push_back(Dir(StrFormat("usr/share/pkg%02d", d)));
    for (int f = 0; f < 50; ++f) {
      std::string data = Noise(50 + (d * 50 + f) % 700, d * 50 + f);
      content += data.size();
      entries.push_back(File(StrFormat("usr/share/pkg%02d/file-%04d.txt", d, f), data));
    }
  }
  std::string tar = BuildTar(entries);
  uint64_t split = 0;
  ExpectRoundTrip(tar, {4096}, &split);
  double ratio = static_cast<double>(split) / static_cast<double>(tar.size());
  // Measured: 2,000 files in 40 directories, a 2,382,336-byte tar: 30,489 bytes of
  // tar-split (1.28% of the tar).
  EXPECT_LT(ratio, 0.10) << split << " bytes of tar-split for " << tar.size() << " of tar ("
                         << content << " of content)";
  std::printf("tar-split of %zu files: %llu bytes for a %zu-byte tar (%.2f%%)\n", entries.size(),
              static_cast<unsigned long long>(split), tar.size(), 100 * ratio);
}

// A tiny file whose table decompresses to ~256 MiB of 3-byte entries (size 1, path "\x01"):
// AssembleTar must refuse it without holding more than a bounded amount of memory. Run in a
// child under RLIMIT_AS = 1 GiB (an unbounded std::vector of entries needs ~3.5 GiB there and
// ends in std::bad_alloc -> abort).
TEST(TarSplitAssembleBounds, TableBombStaysBounded) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "RLIMIT_AS does not mix with AddressSanitizer's shadow memory";
#else
  TempDir tmp;
  std::string split = tmp.path() + "/split";
  std::string records = ZstdRawFrame("E");
  // 2046 RLE blocks of 128 KiB of 0x01: 268,173,312 bytes, 89,391,104 entries, < 256 MiB.
  std::string table = ZstdRleFrame('\x01', 128 << 10, 2046);
  WriteFileOrDie(split, SplitFile(records, table, 1 << 20, 1));
  MOAT_CHECK(sys::MkdirAll(tmp.path() + "/root", 0755));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    struct rlimit rl = {1ull << 30, 1ull << 30};
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(3);
    // Test code: the child must not fall back into gtest's handler (it would run the remaining
    // tests a second time); an allocation failure is what this test looks for.
    try {
      Assembled got = Assemble(split, tmp.path() + "/root", Digest(""));
      _exit(got.result ? 1 : 0);
    } catch (const std::bad_alloc&) {
      _exit(2);
    }
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << (WIFEXITED(status) && WEXITSTATUS(status) == 2
              ? std::string("std::bad_alloc under a 1 GiB address-space limit: the whole table "
                            "is held in memory as entries")
              : StrFormat("wait status 0x%x", status));
#endif
}

}  // namespace
}  // namespace moat::image
