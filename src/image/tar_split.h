#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

// Tar-split: how a layer's exact tar stream is rebuilt from its extracted tree, so that the
// store need not keep the compressed blob beside the tree (it would write ~1.4x the bytes of a
// pull or load) and can still `save` the layer byte for byte (its sha256 is the diff id the
// image config names) and `push` it (recompressed).
//
// While moat-extract reads a layer, a TarSplitRecorder sees every uncompressed byte and keeps
// every byte that is not regular-file content (headers, PAX and GNU long-name records, padding,
// the end-of-archive blocks and anything after them) plus, for each regular file with content,
// its size. The extractor pairs those files with the ones it created (same order, same sizes)
// and hands their paths in the tree to Finish. Assembling interleaves the kept bytes with the
// files read back from the tree.
//
// The file (zstd frames, then a fixed trailer):
//   [records frame(s)] [table frame] [trailer: "MOATTS01", u64 table offset, u64 tar bytes,
//                                               u64 file count; little endian; 32 bytes]
// records (decompressed): 'R' varint(n) <n bytes> | 'F' varint(size) | 'E' (end)
// table (decompressed): per file, in the order of the 'F' records: varint(size) varint(len)
//                       <len bytes of path relative to the tree root>
//
// The file is written by the confined extractor and read by the daemon: Assemble treats it as
// hostile. Every length is bounded, paths are opened inside the tree only
// (openat2 RESOLVE_IN_ROOT, no final symlink, regular files of the recorded size), and the
// assembled stream must hash to the expected diff id: anything else is an error naming what
// was wrong, never bytes from outside the tree.
namespace moat::image {

// Walks the uncompressed tar stream. Not thread-safe (one feeding thread).
class TarSplitRecorder {
 public:
  // Writes to `out_fd` (remains owned by the caller; a regular file, written from offset 0).
  explicit TarSplitRecorder(int out_fd);
  ~TarSplitRecorder();
  TarSplitRecorder(const TarSplitRecorder&) = delete;
  TarSplitRecorder& operator=(const TarSplitRecorder&) = delete;

  // The next bytes of the uncompressed stream. Never fails: a stream the recorder cannot
  // follow (bad header checksum, sparse files, an oversized PAX record, a write error) makes it
  // give up (usable() turns false) and ignore the rest.
  void Feed(const char* data, size_t n);

  // Whether the recording can still be finished.
  bool usable() const;
  // Why not, when !usable().
  const std::string& why_not() const;
  // Sizes of the regular files with content, in stream order.
  const std::vector<uint64_t>& file_sizes() const;

  // Ends the recording: `paths[i]` is where the i-th file of file_sizes() lies in the tree
  // (relative, "a/b"). Writes the table and trailer. kUnsupported if !usable() or the
  // number of paths differs; write errors as they come.
  Result<void> Finish(const std::vector<std::string>& paths);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

struct TarSplitInfo {
  uint64_t tar_bytes = 0;
  uint64_t files = 0;
};

// Reads the trailer of the tar-split file `fd` (remains owned by the caller).
// kInvalidArgument if it is not one.
Result<TarSplitInfo> ReadTarSplitInfo(int fd);

// Rebuilds the tar stream from the tar-split file `split_fd` and the tree `root_fd` (both remain
// owned by the caller), giving it to `sink` in pieces, and checks that its sha256 is
// `diff_id` ("sha256:<hex>"). The sink has seen every byte when this returns Ok; on error it may
// have seen part of a stream that is not the layer (a changed file, corrupt bytes): the caller
// must discard what it got. Memory stays bounded whatever the file claims (the table is read
// one entry at a time); no file of the tree is opened but regular files (a device node or FIFO
// is only ever resolved to an O_PATH fd). kInvalidArgument naming the problem for a malformed file, a missing or
// changed file in the tree, or a digest mismatch; the sink's own errors as it returns them.
Result<void> AssembleTar(int split_fd, int root_fd, const std::string& diff_id,
                         const std::function<Result<void>(std::string_view)>& sink);

}  // namespace moat::image
