#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

// Test fixtures for the image library: temp dirs and tars built in memory.
namespace moat::image::testing {

// A temp directory removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct TarEntry {
  enum Type { kFile, kDir, kSymlink, kHardlink, kChar, kFifo } type = kFile;
  std::string name;
  std::string data;      // file content
  std::string link;      // symlink / hardlink target
  mode_t mode = 0644;
  int64_t uid = 0, gid = 0;
  int64_t mtime = 0;
  std::vector<std::pair<std::string, std::string>> xattrs;
};

TarEntry File(std::string name, std::string data, mode_t mode = 0644);
TarEntry Dir(std::string name, mode_t mode = 0755);
TarEntry Symlink(std::string name, std::string target);
TarEntry Hardlink(std::string name, std::string target);

// A pax tar of `entries`, built with libarchive.
std::string BuildTar(const std::vector<TarEntry>& entries);
// `n` pseudo-random bytes from `seed` (a linear congruential generator): data that gzip does
// not shrink much, so that a layer of it stays under the compression-ratio limit.
std::string Noise(size_t n, uint32_t seed);

std::string Digest(const std::string& data);  // "sha256:<hex>"

// An image built in memory: layer blobs (maybe compressed) and their diff ids.
struct TestImage {
  std::vector<std::string> layer_blobs;  // as stored in the archive
  std::vector<std::string> diff_ids;
  std::string config;                    // config JSON
  std::string tag;                       // "name:tag" or ""
};
// `layers` are uncompressed tars; compress: "", "gzip" or "zstd" for all layers.
TestImage MakeImage(const std::vector<std::string>& layers, const std::string& cmd,
                    const std::string& tag, const std::string& compress = "");
// An OCI image layout tar with all `images`.
std::string OciLayoutTar(const std::vector<TestImage>& images);
// A docker-archive (legacy layout: <id>/layer.tar, <config>.json) tar.
std::string DockerArchiveTar(const std::vector<TestImage>& images);

void WriteFileOrDie(const std::string& path, const std::string& data);
std::string ReadFileOrDie(const std::string& path);

}  // namespace moat::image::testing
