#pragma once

// Helpers shared by the fuzz targets (fuzz/*.cc only; never linked into Moat itself). Plain libc:
// the harness is test code that must not depend on the code under test for its own checks.

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace moat::fuzz {

// An invariant of the code under test does not hold: report and abort, so that libFuzzer keeps
// the input as a crash artifact.
[[noreturn]] inline void Violation(const char* what, const std::string& detail) {
  std::fprintf(stderr, "FUZZ INVARIANT VIOLATED: %s\n%s\n", what, detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// rm -rf of `name` under `parent_fd` without following symlinks; directories are made searchable
// and writable first (layers may hold mode-000 directories). Returns false if anything is left.
inline bool RemoveTreeAt(int parent_fd, const char* name) {
  struct stat st;
  if (fstatat(parent_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT;
  if (!S_ISDIR(st.st_mode)) return unlinkat(parent_fd, name, 0) == 0;
  (void)fchmodat(parent_fd, name, 0700, 0);
  int fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  DIR* dir = fdopendir(fd);
  if (!dir) {
    close(fd);
    return false;
  }
  std::vector<std::string> names;
  while (struct dirent* e = readdir(dir)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0)
      names.push_back(e->d_name);
  }
  bool ok = true;
  for (const std::string& n : names) ok = RemoveTreeAt(::dirfd(dir), n.c_str()) && ok;
  closedir(dir);
  return unlinkat(parent_fd, name, AT_REMOVEDIR) == 0 && ok;
}

}  // namespace moat::fuzz
