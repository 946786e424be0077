#pragma once

// The pure and fd-relative parts of the container file-system operations (container_fs.cc):
// Go file modes, container path handling, the tar writer, the overlay diff and the commit
// config. Nothing here resolves a path by string: every lookup is one component relative to a
// directory fd, or openat2 confined to a root. Thread-compatible (no shared state).

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "daemon/common/json.h"
#include "daemon/privsep/commands.h"

namespace moat::daemon::core::fs {

// Go's os.FileMode bits for a stat mode: permissions, plus ModeDir 1<<31, ModeSymlink 1<<27,
// ModeDevice 1<<26, ModeNamedPipe 1<<25, ModeSocket 1<<24, ModeSetuid 1<<23, ModeSetgid 1<<22,
// ModeCharDevice 1<<21, ModeSticky 1<<20.
uint32_t GoFileMode(mode_t mode);

// Docker's container path stat: {"name","size","mode","mtime","linkTarget"}.
Json PathStatJson(const std::string& name, const struct stat& st, const std::string& link_target);

// A container path as `docker cp` sends it, split for resolution.
struct ContainerPath {
  std::string clean;         // lexically cleaned absolute path ("/a/b"), "/" for the root
  std::string parent;        // cleaned parent ("/a"), "/" for the root
  std::string base;          // last component of `clean` ("b"), "" for the root
  std::string tar_name;      // the top entry's name in a tar: Go's filepath.Base of the raw path,
                             // "." for "/dir/." (docker cp copies the contents then)
  bool follow_last = false;  // the raw path ends in "/" or "/.": the last symlink is followed
};
// Parses `raw` (relative paths are taken from the root). kInvalidArgument if empty or with NUL.
Result<ContainerPath> ParseContainerPath(const std::string& raw);

// The container path a symlink at `link_path` (a cleaned absolute path) with `target` points
// to, lexically (as Docker's linkTarget).
std::string LinkTargetPath(const std::string& link_path, const std::string& target);

// How overlay whiteouts (character device 0/0) and opaque directories (xattr
// {trusted,user}.overlay.opaque = "y") are written.
enum class Whiteouts {
  kAsIs,   // as they are (export, docker cp)
  kToOci,  // as OCI layer whiteouts: ".wh.NAME" and "DIR/.wh..wh..opq" (commit)
};

// Writes a tar (PAX) to `out_fd`. Both fds remain owned by the caller. Only regular files,
// directories, symlinks, devices and fifos are written; hardlinked files become hardlink
// entries. Errors of `out_fd` (the reader went away: EPIPE) end the stream with an error.
class TarStream {
 public:
  TarStream(int out_fd, Whiteouts whiteouts);
  ~TarStream();
  TarStream(const TarStream&) = delete;
  TarStream& operator=(const TarStream&) = delete;

  // Writes the entry `name` of the directory `parent_fd` (not following a symlink there) as
  // `tar_name`, and everything below it if it is a directory.
  Result<void> AddAt(int parent_fd, const std::string& name, const std::string& tar_name);
  // Writes the directory open on `dir_fd` as `tar_name` ("" : no entry for the directory
  // itself, its children at the top level: export, commit) and everything below it.
  Result<void> AddDir(int dir_fd, const std::string& tar_name);
  // Writes the end of the archive.
  Result<void> Finish();

  struct Impl;

 private:
  Impl* impl_;
};

// One entry of GET /containers/{id}/changes.
struct Change {
  std::string path;  // "/etc/passwd"
  int kind = 0;      // 0 modified, 1 added, 2 deleted
  bool operator==(const Change&) const = default;
};
// The changes recorded in an overlay upper directory `upper_fd` over the lower layers
// `lower_fds` (TOP first). All fds remain owned by the caller. An upper entry that is a
// whiteout is deleted; one that exists in a lower layer (and is not whited out above it) is
// modified, else added; directories on the way to a change are in the upper dir too, and so
// are listed (modified when they exist below). Sorted by path.
Result<std::vector<Change>> ComputeChanges(int upper_fd, const std::vector<int>& lower_fds);

// The "config" object of a committed image: the image's config (`image_config`, an object or
// null), with the container's Cmd, Entrypoint, Env (merged by name), WorkingDir, User, Labels
// and ExposedPorts, then `overrides` (the commit body: Cmd, Entrypoint, Env, WorkingDir, User,
// Labels, ExposedPorts), then Dockerfile-style `changes` (CMD, ENTRYPOINT, ENV, WORKDIR, USER,
// LABEL, EXPOSE, VOLUME, STOPSIGNAL). kInvalidArgument for a bad change.
Result<Json> CommitConfig(const Json& image_config, const privsep::ContainerSpec& spec,
                          const Json& overrides, const std::vector<std::string>& changes);

}  // namespace moat::daemon::core::fs
