#pragma once

// Giving memory back after a one-off phase of a long-lived process.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>

namespace moat::sys {

struct ReleasedMemory {
  size_t image_bytes = 0;  // bytes of read-only segments unmapped (page-aligned ranges)
  bool heap_trimmed = false;
};

// Drops this process's mappings of the clean, read-only pages of its executable and shared
// objects (PT_LOAD segments without PF_W: code, read-only data), and returns free heap to the
// kernel (malloc_trim). For a process that ran a large amount of code once (a container
// monitor after the container started: parsing the bundle, setting up the namespaces) and now
// runs a small loop: its resident set shrinks to what the loop touches again, page by page,
// from the page cache (minor faults; the file's pages stay cached for other processes).
// Writable segments, including relocated read-only data (RELRO lies inside the writable
// PT_LOAD), the heap's live blocks and the stack are untouched, so no state is lost. Never
// fails: a range the kernel refuses is skipped.
ReleasedMemory ReleaseOneOffMemory();

// Calls ReleaseOneOffMemory when a server has been quiet for `quiet`: no request began or
// ended for that long, and one did since the last release. A daemon's idle resident set is
// then what its waiting threads touch, not everything its last requests ran; the next request
// maps what it needs again from the page cache. A thread of its own waits for the moment;
// the destructor stops it.
class QuietReleaser {
 public:
  explicit QuietReleaser(std::chrono::milliseconds quiet);
  ~QuietReleaser();
  QuietReleaser(const QuietReleaser&) = delete;
  QuietReleaser& operator=(const QuietReleaser&) = delete;

  // A request began or ended.
  void Activity();
  // Releases done so far (for tests and logs).
  int releases() const;

 private:
  void Run();

  const std::chrono::milliseconds quiet_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::chrono::steady_clock::time_point last_;
  bool pending_ = false;  // activity since the last release
  bool stop_ = false;
  int releases_ = 0;
  std::thread thread_;
};

}  // namespace moat::sys
