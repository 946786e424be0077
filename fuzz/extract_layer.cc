// Fuzz target: the layer reader, moat::image::ExtractLayer (src/image/extract/extractor.h), on
// hostile tar / gzip / zstd bytes. Each input is written to a memfd and extracted into a fresh
// directory; afterwards the harness checks that nothing outside that directory changed (a
// sentinel file beside it keeps its content and its link count, and the parent directory holds
// only what the harness put there), then removes the tree.
//
// Runs unprivileged, as ExtractLayer does for rootless stores: Ownership::kIgnore, the "user"
// xattr namespace, and, when started as root, the process drops to 65534:65534 first so device
// nodes, chown and trusted.* xattrs fail as they would for an unprivileged user (and an escape
// could not touch root's files).

#include <grp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "fuzz_util.h"
#include "image/extract/extractor.h"

namespace {

constexpr char kSentinelText[] = "moat fuzz sentinel\n";

struct Workspace {
  std::string dir;    // /tmp/moat-fuzz-extract.XXXXXX, the parent of every extraction
  int dir_fd = -1;
  int mem_fd = -1;    // the layer bytes
};

Workspace* g_ws = nullptr;

void DropRoot() {
  if (geteuid() != 0) return;
  if (setgroups(0, nullptr) != 0 || setresgid(65534, 65534, 65534) != 0 ||
      setresuid(65534, 65534, 65534) != 0) {
    std::perror("extract_layer: dropping root to 65534");
    std::abort();
  }
}

void CleanupAtExit() {
  if (!g_ws) return;
  close(g_ws->dir_fd);
  moat::fuzz::RemoveTreeAt(AT_FDCWD, g_ws->dir.c_str());
}

std::string ListParent() {
  std::string out;
  DIR* d = opendir(g_ws->dir.c_str());
  if (!d) return "(unreadable)";
  while (struct dirent* e = readdir(d)) out += std::string(e->d_name) + " ";
  closedir(d);
  return out;
}

// Nothing outside the extraction root changed.
void CheckOutside() {
  struct stat st;
  if (fstatat(g_ws->dir_fd, "sentinel", &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
      st.st_nlink != 1 || st.st_size != static_cast<off_t>(sizeof kSentinelText - 1))
    moat::fuzz::Violation("the sentinel beside the extraction root changed",
                          "parent holds: " + ListParent());
  char buf[sizeof kSentinelText] = {};
  int fd = openat(g_ws->dir_fd, "sentinel", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 || pread(fd, buf, sizeof buf, 0) != static_cast<ssize_t>(sizeof kSentinelText - 1) ||
      std::string(buf) != kSentinelText)
    moat::fuzz::Violation("the sentinel's content changed", buf);
  close(fd);
  std::set<std::string> names;
  DIR* d = opendir(g_ws->dir.c_str());
  while (struct dirent* e = d ? readdir(d) : nullptr) names.insert(e->d_name);
  if (d) closedir(d);
  std::set<std::string> expected = {".", "..", "sentinel", "root"};
  if (names != expected)
    moat::fuzz::Violation("an entry appeared beside the extraction root",
                          "parent holds: " + ListParent());
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  DropRoot();
  g_ws = new Workspace;
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/moat-fuzz-extract.XXXXXX";
  if (!mkdtemp(templ.data())) {
    std::perror("extract_layer: mkdtemp");
    std::abort();
  }
  g_ws->dir = templ;
  g_ws->dir_fd = open(templ.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int s = openat(g_ws->dir_fd, "sentinel", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (g_ws->dir_fd < 0 || s < 0 ||
      write(s, kSentinelText, sizeof kSentinelText - 1) != sizeof kSentinelText - 1) {
    std::perror("extract_layer: workspace");
    std::abort();
  }
  close(s);
  g_ws->mem_fd = memfd_create("moat-fuzz-layer", MFD_CLOEXEC);
  if (g_ws->mem_fd < 0) {
    std::perror("extract_layer: memfd_create");
    std::abort();
  }
  std::atexit(CleanupAtExit);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int mem = g_ws->mem_fd;
  if (ftruncate(mem, 0) != 0 || pwrite(mem, data, size, 0) != static_cast<ssize_t>(size) ||
      lseek(mem, 0, SEEK_SET) != 0)
    std::abort();
  if (mkdirat(g_ws->dir_fd, "root", 0755) != 0) std::abort();
  int root = openat(g_ws->dir_fd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) std::abort();

  moat::image::ExtractOptions options;
  options.ownership = moat::image::Ownership::kIgnore;
  options.xattr_namespace = "user";
  // Small limits keep each run short and reach the limit checks with small inputs.
  options.limits.max_entries = 2000;
  options.limits.max_path_length = 1024;
  options.limits.max_bytes = 8 << 20;
  options.limits.max_ratio = 1000;
  auto result = moat::image::ExtractLayer(mem, root, options);
  if (result) {
    if (result->diff_id.size() != 7 + 64 || result->entries > options.limits.max_entries)
      moat::fuzz::Violation("ExtractLayer succeeded with an impossible result",
                            moat::image::FormatExtractResult(*result));
  } else if (result.error().message.empty()) {
    moat::fuzz::Violation("ExtractLayer failed without a message", "");
  }
  // The extractor keeps no reference to either fd.
  close(root);
  CheckOutside();
  if (!moat::fuzz::RemoveTreeAt(g_ws->dir_fd, "root"))
    moat::fuzz::Violation("the extracted tree could not be removed", ListParent());
  return 0;
}
