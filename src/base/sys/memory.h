#pragma once

// Giving memory back after a one-off phase of a long-lived process.

#include <cstddef>

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

}  // namespace moat::sys
