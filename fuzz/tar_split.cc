// Fuzz target: tar-split (src/image/tar_split.h). The first input byte picks the mode:
//   even: the rest is a tar-split file (written to a memfd) assembled by AssembleTar against a
//         fixed tree built once: two files, a directory, and symlinks (in place of a file, of a
//         directory, and as a directory component) pointing outside the tree to sentinel files
//         of the same sizes as the tree's files. No sentinel may be opened (inotify watches
//         them: a check on the sink's bytes alone could be fooled by the fuzzer writing the
//         marker into raw records), the sink never gets more bytes than the trailer announces,
//         and a success comes with exactly the bytes whose digest was asked for (a file that
//         fails only on its digest must succeed, with the same bytes, under the one it names).
//   odd:  the rest is a tar stream fed to TarSplitRecorder in pieces whose size comes from the
//         second byte; if it stays usable, Finish names the files "f0", "f1", ... and the recording
//         is assembled against a tree where those files hold zeros (a digest mismatch is the
//         expected outcome; an Ok must mean the bytes are the input stream).

#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "image/digest.h"
#include "image/tar_split.h"

namespace {

constexpr char kMarker[] = "SENTINEL-OUTSIDE";  // the sentinels' content

struct Workspace {
  std::string dir;   // /tmp/moat-fuzz-tarsplit.XXXXXX: root/, outside/
  int root_fd = -1;  // the fixed tree
  int mem_fd = -1;   // the tar-split file
  int rec_fd = -1;   // the recorder's output (mode 2)
  std::string stream_root;  // tree for mode 2 (files f0..fN made on demand)
  int stream_root_fd = -1;
  int inotify_fd = -1;  // IN_OPEN | IN_ACCESS on outside/ and outside/dir
};

Workspace* g_ws = nullptr;

void Die(const char* what) {
  std::perror(what);
  std::abort();
}

void WriteFile(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size()))
    Die(path.c_str());
  close(fd);
}

std::string Marked(size_t n) {
  std::string s;
  while (s.size() < n) s += kMarker;
  s.resize(n);
  return s;
}

void CleanupAtExit() {
  if (!g_ws) return;
  moat::fuzz::RemoveTreeAt(AT_FDCWD, g_ws->dir.c_str());
}

// Aborts if anything opened or read a sentinel since the last call.
void CheckSentinelsUntouched() {
  alignas(struct inotify_event) char buf[4096];
  ssize_t n = read(g_ws->inotify_fd, buf, sizeof buf);
  if (n < 0 && errno == EAGAIN) return;
  std::string names;
  for (ssize_t off = 0; off < n;) {
    auto* e = reinterpret_cast<struct inotify_event*>(buf + off);
    names += std::string(e->len ? e->name : "(dir)") + " ";
    off += sizeof(struct inotify_event) + e->len;
  }
  moat::fuzz::Violation("AssembleTar opened a file outside the tree", names);
}

constexpr size_t kKeep = 1 << 20;  // bytes of the assembled stream kept for the checks

// Runs AssembleTar on `split_fd` against `root_fd` and checks what the sink saw. Returns the
// error message ("" on success) and the stream's first kKeep bytes in `*got`.
std::string AssembleAndCheck(int split_fd, int root_fd, const std::string& diff_id,
                             const std::string* expected, std::string* got) {
  auto info = moat::image::ReadTarSplitInfo(split_fd);
  got->clear();
  uint64_t total = 0;
  auto r = moat::image::AssembleTar(split_fd, root_fd, diff_id, [&](std::string_view d) {
    if (d.empty()) moat::fuzz::Violation("the sink got an empty piece", "");
    total += d.size();
    if (got->size() < kKeep) got->append(d.substr(0, kKeep - got->size()));
    return moat::Result<void>(moat::Ok());
  });
  CheckSentinelsUntouched();
  if (info && total > info->tar_bytes)
    moat::fuzz::Violation("the sink got more than the trailer's tar bytes", "");
  if (r) {
    if (!info) moat::fuzz::Violation("AssembleTar succeeded without a trailer", "");
    if (total != info->tar_bytes)
      moat::fuzz::Violation("AssembleTar succeeded with fewer bytes than the trailer's", "");
    if (total <= kKeep && moat::image::Sha256Hex(*got) != diff_id.substr(7))
      moat::fuzz::Violation("AssembleTar succeeded with other bytes than the digest", "");
    if (expected && *got != *expected)
      moat::fuzz::Violation("AssembleTar succeeded with other bytes than recorded", "");
    return "";
  }
  if (r.error().message.empty()) moat::fuzz::Violation("AssembleTar failed without a message", "");
  return r.error().message;
}

void RunAssemble(const uint8_t* data, size_t size) {
  int mem = g_ws->mem_fd;
  if (ftruncate(mem, 0) != 0 ||
      (size && pwrite(mem, data, size, 0) != static_cast<ssize_t>(size)))
    std::abort();
  // First with a digest nothing but an empty stream has; a file that only fails on the digest
  // must then succeed, with the same bytes, under the digest it reported.
  std::string first, second;
  std::string err = AssembleAndCheck(mem, g_ws->root_fd, "sha256:" + moat::image::Sha256Hex(""),
                                     nullptr, &first);
  static const std::string kMismatch = "tar-split: the rebuilt layer is sha256:";
  if (err.compare(0, kMismatch.size(), kMismatch) != 0) return;
  std::string hex = err.substr(kMismatch.size(), 64);
  std::string again = AssembleAndCheck(mem, g_ws->root_fd, "sha256:" + hex, nullptr, &second);
  if (!again.empty())
    moat::fuzz::Violation("a file that failed only on its digest fails under that digest", again);
  if (first != second) moat::fuzz::Violation("two assemblies gave different bytes", "");
}

void RunRecord(const uint8_t* data, size_t size) {
  // Piece sizes: 1 + the low bits of the first byte, times a fixed odd step.
  size_t piece = size ? 1 + static_cast<size_t>(data[0]) * 37 : 1;
  std::string stream(reinterpret_cast<const char*>(data), size);
  int out = g_ws->rec_fd;
  if (ftruncate(out, 0) != 0 || lseek(out, 0, SEEK_SET) != 0) std::abort();
  moat::image::TarSplitRecorder rec(out);
  for (size_t off = 0; off < stream.size(); off += piece)
    rec.Feed(stream.data() + off, std::min(piece, stream.size() - off));
  std::vector<std::string> paths;
  uint64_t total = 0;
  for (size_t i = 0; i < rec.file_sizes().size(); ++i) {
    total += rec.file_sizes()[i];
    paths.push_back("f" + std::to_string(i));
  }
  auto fin = rec.Finish(paths);
  if (!fin) {
    if (fin.error().message.empty()) moat::fuzz::Violation("Finish failed without a message", "");
    return;
  }
  // A file's size is counted at its header, before its content arrives: only a finished
  // recording (the stream did not end inside a file) has all of it.
  if (total > stream.size())
    moat::fuzz::Violation("the recorder counts more file bytes than it was fed", "");
  auto info = moat::image::ReadTarSplitInfo(out);
  if (!info || info->tar_bytes != stream.size() || info->files != paths.size())
    moat::fuzz::Violation("the recorded trailer does not match the stream", "");
  // The tree: f<i> of the recorded size, all zeros (the stream's own bytes are not known
  // here): a stream whose file contents are zeros assembles back to itself.
  for (size_t i = 0; i < paths.size(); ++i) {
    int fd = openat(g_ws->stream_root_fd, paths[i].c_str(),
                    O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(rec.file_sizes()[i])) != 0) std::abort();
    close(fd);
  }
  std::string got;
  AssembleAndCheck(out, g_ws->stream_root_fd, "sha256:" + moat::image::Sha256Hex(stream),
                   stream.size() <= kKeep ? &stream : nullptr, &got);
  for (const std::string& p : paths) unlinkat(g_ws->stream_root_fd, p.c_str(), 0);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_ws = new Workspace;
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/moat-fuzz-tarsplit.XXXXXX";
  if (!mkdtemp(templ.data())) Die("tar_split: mkdtemp");
  g_ws->dir = templ;
  std::atexit(CleanupAtExit);
  const std::string& d = g_ws->dir;
  // outside/: sentinels of the sizes of the tree's files.
  if (mkdir((d + "/outside").c_str(), 0755) != 0 || mkdir((d + "/outside/dir").c_str(), 0755) != 0)
    Die("tar_split: mkdir outside");
  WriteFile(d + "/outside/a", Marked(5));
  WriteFile(d + "/outside/b", Marked(600));
  WriteFile(d + "/outside/dir/c", Marked(513));
  WriteFile(d + "/outside/big", Marked(1 << 16));
  // root/: a (5 bytes), dir/c (513 bytes), and symlinks out.
  if (mkdir((d + "/root").c_str(), 0755) != 0 || mkdir((d + "/root/dir").c_str(), 0755) != 0)
    Die("tar_split: mkdir root");
  WriteFile(d + "/root/a", "aaaaa");
  WriteFile(d + "/root/dir/c", std::string(513, 'c'));
  if (symlink((d + "/outside/b").c_str(), (d + "/root/b").c_str()) != 0 ||
      symlink("../outside/big", (d + "/root/big").c_str()) != 0 ||
      symlink("../outside/dir", (d + "/root/out").c_str()) != 0 ||
      symlink((d + "/outside").c_str(), (d + "/root/abs").c_str()) != 0 ||
      mkfifo((d + "/root/fifo").c_str(), 0644) != 0)
    Die("tar_split: symlinks");
  g_ws->root_fd = open((d + "/root").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mkdir((d + "/stream").c_str(), 0755) != 0) Die("tar_split: mkdir stream");
  g_ws->stream_root_fd = open((d + "/stream").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  g_ws->mem_fd = memfd_create("moat-fuzz-tarsplit", MFD_CLOEXEC);
  g_ws->rec_fd = memfd_create("moat-fuzz-tarsplit-rec", MFD_CLOEXEC);
  g_ws->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (g_ws->root_fd < 0 || g_ws->stream_root_fd < 0 || g_ws->mem_fd < 0 || g_ws->rec_fd < 0 ||
      g_ws->inotify_fd < 0 ||
      inotify_add_watch(g_ws->inotify_fd, (d + "/outside").c_str(), IN_OPEN | IN_ACCESS) < 0 ||
      inotify_add_watch(g_ws->inotify_fd, (d + "/outside/dir").c_str(), IN_OPEN | IN_ACCESS) < 0)
    Die("tar_split: workspace");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  if (data[0] & 1) {
    RunRecord(data + 1, size - 1);
  } else {
    RunAssemble(data + 1, size - 1);
  }
  return 0;
}
