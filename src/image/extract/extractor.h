#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"
#include "image/extract/confine.h"

// Layer extraction, run inside the moat-extract process (never in the daemon core): untrusted
// gzip/zstd/tar bytes are parsed here. Every entry is created fd-relative under the target
// directory with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) resolution, so "..",
// absolute names, symlinks and hardlinks cannot reach outside it. The process is confined
// first (confine.h); this file is the second line of defence, and states the policy:
//  - "../" and absolute names are neutralised: they are taken relative to the layer root, as
//    if the root were "/" ("../../etc/x" is "etc/x"). An entry that resolves to the root
//    itself ("..", "/", "./") is only accepted as a directory (its metadata is the root's).
//  - Symlinks are created as given (they are data for the container); they are followed only
//    inside the root (RESOLVE_IN_ROOT), and a file entry over a symlink replaces the link.
//    An entry below a dangling symlink or a non-directory is refused.
//  - Hardlink targets resolve inside the root; linkat never follows a final symlink.
//  - Character and block devices are refused ("device node NAME ... refused") unless
//    ExtractOptions::devices is kAllow (moat-extract --allow-devices, which also keeps
//    CAP_MKNOD). FIFOs are created: they need no privilege and are inert files.
//  - setuid/setgid bits and security.capability are kept (see confine.h for why that is safe).
//  - Xattrs: see IsAllowedXattr in extractor.cc (user.* but user.overlay.*, and
//    security.capability); the others are skipped and counted.
namespace moat::image {

struct ExtractLimits {
  uint64_t max_entries = 1'000'000;
  uint64_t max_path_length = 4096;
  uint64_t max_bytes = 64ull << 30;      // uncompressed tar bytes
  uint64_t max_ratio = 1000;             // uncompressed / compressed
};

enum class Ownership { kKeep, kIgnore };  // kIgnore: do not chown (unprivileged)

struct ExtractOptions {
  ExtractLimits limits;
  Ownership ownership = Ownership::kKeep;
  // Overlay xattr namespace for opaque dirs: "trusted" (kernel overlay default) or "user"
  // (overlay's userxattr mount option, for rootless).
  std::string xattr_namespace = "trusted";
  DevicePolicy devices = DevicePolicy::kRefuse;
  // Sets the overlay opaque xattr (through the broker when confined). Null: fsetxattr directly.
  // Not owned.
  OpaqueBroker* broker = nullptr;
  // >= 0: the tar-split record of the layer (tar_split.h) is written to this fd (a regular
  // file, from offset 0; remains owned by the caller) when the layer can be rebuilt from its
  // tree: ExtractResult::tar_split says whether it was. Not owned.
  int tar_split_fd = -1;
};

struct ExtractResult {
  std::string diff_id;  // "sha256:<hex>" of the uncompressed tar
  uint64_t size = 0;    // bytes of regular file content
  uint64_t entries = 0;
  uint64_t tar_bytes = 0;
  uint64_t xattrs_skipped = 0;  // xattrs the policy does not apply (trusted.*, ...)
  // With ExtractOptions::tar_split_fd: whether the record was written; if not, why (a sparse
  // file, a file the layer itself replaced later, a stream the recorder could not follow):
  // the caller then keeps the layer's blob instead.
  bool tar_split = false;
  std::string tar_split_why;
};

// Reads a layer (plain tar, gzip or zstd) from `in_fd` and extracts it into the directory
// `root_fd`. Both fds remain owned by the caller. Reads `in_fd` to EOF (so the diff id covers
// the whole tar). Errors: kInvalidArgument for corrupt data or exceeded limits (the message
// names the limit and entry); file-system errors as returned by the syscall. On error the
// directory holds a partial tree: the caller discards it.
Result<ExtractResult> ExtractLayer(int in_fd, int root_fd, const ExtractOptions& options);

// The one-line JSON protocol between moat-extract and the store.
// With tar_split_fd set, adds "tar_split":true, or "tar_split":false and "tar_split_why".
// `confinement`, if not null, adds {"confinement":{"namespaces":B,"landlock":"abi N"|
// "unavailable"}}.
std::string FormatExtractResult(const ExtractResult& r,
                                const ConfineReport* confinement = nullptr);
std::string FormatExtractError(const std::string& message);

}  // namespace moat::image
