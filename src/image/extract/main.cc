// moat-extract: extracts one image layer. Runs as its own process so that it can confine
// itself (confine.h: namespaces, chroot into the target, capabilities, Landlock, seccomp,
// rlimits) before it reads a byte of the layer, without affecting the daemon.
//
//   moat-extract [--no-chown] [--xattr-namespace=user] [--allow-devices] [--max-entries=N]
//                [--max-path-length=N] [--max-bytes=N] [--max-ratio=N] [--tar-split]
//   fd 0: the layer bytes (plain tar, gzip or zstd), read to EOF
//   fd 1: receives one JSON line {"diff_id":"sha256:..","size":N,"entries":N,
//         ["xattrs_skipped":N,] "confinement":{"namespaces":true,"landlock":"abi 7"}}
//         or {"error":".."}
//   fd 3: the target directory (an open directory fd; no path is ever given)
//   fd 4: with --tar-split, an empty regular file opened for writing: receives the layer's
//         tar-split record (image/tar_split.h) when the layer can be rebuilt from its tree
//   Any other fd is closed; fd 2 is replaced by /dev/null (errors travel in the reply).
// Exit status 0 on success, 1 on failure, 2 for bad arguments or a failed confinement.
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <memory>
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
    } else if (strcmp(a, "--tar-split") == 0) {
      opts.tar_split_fd = 4;
    } else if (strcmp(a, "--allow-devices") == 0) {
      opts.devices = moat::image::DevicePolicy::kAllow;
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
  if (opts.tar_split_fd >= 0 && (fstat(opts.tar_split_fd, &st) != 0 || !S_ISREG(st.st_mode)))
    return Reply(moat::image::FormatExtractError("fd 4 is not a regular file"), 2);
  moat::image::ConfineOptions confine;
  confine.output_fd = opts.tar_split_fd;
  confine.ownership = opts.ownership == moat::image::Ownership::kKeep
                          ? moat::image::KeepOwnership::kYes
                          : moat::image::KeepOwnership::kNo;
  confine.devices = opts.devices;
  confine.broker = opts.xattr_namespace == "trusted" && geteuid() == 0
                       ? moat::image::NeedBroker::kYes
                       : moat::image::NeedBroker::kNo;
  auto plan = moat::image::PlanConfinement(confine);
  if (!plan) return Reply(moat::image::FormatExtractError("confine: " + plan.error().message), 2);
  std::unique_ptr<moat::image::OpaqueBroker> broker;
  auto report = moat::image::EnterConfinement(*plan, 3, &broker);
  if (!report)
    return Reply(moat::image::FormatExtractError("confine: " + report.error().message), 2);
  opts.broker = broker.get();
  auto r = moat::image::ExtractLayer(0, 3, opts);
  if (!r) return Reply(moat::image::FormatExtractError(r.error().message), 1);
  return Reply(moat::image::FormatExtractResult(*r, &*report), 0);
}
