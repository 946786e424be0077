// moat-extract: extracts one image layer. Runs as its own process so it can be confined
// (namespaces, seccomp, Landlock) without affecting the daemon.
//
//   moat-extract [--no-chown] [--xattr-namespace=user] [--max-entries=N]
//                [--max-path-length=N] [--max-bytes=N] [--max-ratio=N]
//   fd 0: the layer bytes (plain tar, gzip or zstd), read to EOF
//   fd 1: receives one JSON line {"diff_id":"sha256:..","size":N} or {"error":".."}
//   fd 3: the target directory (an open directory fd; no path is ever given)
// Exit status 0 on success, 1 on failure.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "image/extract/extractor.h"

namespace {

bool ParseFlag(const char* arg, const char* name, uint64_t* out) {
  size_t n = strlen(name);
  if (strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  auto v = moat::ParseUint64(arg + n + 1);
  if (!v) return false;
  *out = *v;
  return true;
}

int Reply(const std::string& line, int code) {
  (void)moat::sys::WriteAll(1, line);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  umask(0);
  moat::image::ExtractOptions opts;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    if (strcmp(a, "--no-chown") == 0) {
      opts.ownership = moat::image::Ownership::kIgnore;
    } else if (strncmp(a, "--xattr-namespace=", 18) == 0) {
      opts.xattr_namespace = a + 18;
      if (opts.xattr_namespace != "user" && opts.xattr_namespace != "trusted")
        return Reply(moat::image::FormatExtractError("bad --xattr-namespace"), 2);
    } else if (ParseFlag(a, "--max-entries", &opts.limits.max_entries) ||
               ParseFlag(a, "--max-path-length", &opts.limits.max_path_length) ||
               ParseFlag(a, "--max-bytes", &opts.limits.max_bytes) ||
               ParseFlag(a, "--max-ratio", &opts.limits.max_ratio)) {
    } else {
      return Reply(moat::image::FormatExtractError(std::string("unknown argument ") + a), 2);
    }
  }
  struct stat st;
  if (fstat(3, &st) != 0 || !S_ISDIR(st.st_mode))
    return Reply(moat::image::FormatExtractError("fd 3 is not a directory"), 2);
  auto r = moat::image::ExtractLayer(0, 3, opts);
  if (!r) return Reply(moat::image::FormatExtractError(r.error().message), 1);
  return Reply(moat::image::FormatExtractResult(*r), 0);
}
