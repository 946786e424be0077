#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

// One wrapper per file-system syscall. Every fd returned is O_CLOEXEC. `dirfd` parameters
// remain owned by the caller.
namespace moat::sys {

Result<UniqueFd> open(const std::string& path, int flags, mode_t mode = 0);
Result<UniqueFd> openat(int dirfd, const std::string& path, int flags, mode_t mode = 0);
// openat2(2) with the given resolve flags (RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, ...).
Result<UniqueFd> openat2(int dirfd, const std::string& path, uint64_t flags, uint64_t mode,
                         uint64_t resolve);
Result<void> mkdirat(int dirfd, const std::string& path, mode_t mode);
Result<void> mknodat(int dirfd, const std::string& path, mode_t mode, dev_t dev);
Result<void> symlinkat(const std::string& target, int dirfd, const std::string& linkpath);
Result<void> unlinkat(int dirfd, const std::string& path, int flags);
Result<void> renameat(int olddirfd, const std::string& oldpath, int newdirfd,
                      const std::string& newpath);
Result<void> fchownat(int dirfd, const std::string& path, uid_t uid, gid_t gid, int flags);
Result<void> fchmod(int fd, mode_t mode);
Result<void> fchdir(int fd);
Result<void> chdir(const std::string& path);
Result<void> mkfifoat(int dirfd, const std::string& path, mode_t mode);
Result<struct stat> fstatat(int dirfd, const std::string& path, int flags);
Result<struct stat> fstat(int fd);
Result<std::string> readlinkat(int dirfd, const std::string& path);
Result<void> fsync(int fd);

// Whole-file helpers built on the wrappers above.
Result<std::string> ReadFile(const std::string& path);
Result<std::string> ReadFileAt(int dirfd, const std::string& path);
// Writes all of `data` to `fd` (remains owned by the caller), retrying short writes.
Result<void> WriteAll(int fd, std::string_view data);
// Opens dirfd/path O_WRONLY (no create, no truncate) and writes `data`: for /proc and cgroupfs.
Result<void> WriteFileAt(int dirfd, const std::string& path, std::string_view data);
Result<void> WriteFile(const std::string& path, std::string_view data);
// Whether an atomic write must also survive a crash of the machine. State under /run dies with
// the machine anyway: it needs the rename (readers never see half a file), not the fsyncs.
enum class Durability { kDurable, kUntilReboot };

// Writes a temp file beside `path` and renames it over `path`; kDurable also fsyncs the file
// before the rename and the directory after it.
Result<void> WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode = 0644,
                             Durability durability = Durability::kDurable);
// mkdir -p; existing directories are fine.
Result<void> MkdirAll(const std::string& path, mode_t mode);
// rm -rf of a tree that contains no mount points; stays on one file system.
Result<void> RemoveAll(const std::string& path);

}  // namespace moat::sys
