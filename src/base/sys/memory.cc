#include "base/sys/memory.h"

#include <link.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

namespace moat::sys {

namespace {

int DropReadOnlySegments(struct dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<ReleasedMemory*>(data);
  // The vDSO is the kernel's: leave it.
  if (info->dlpi_name && strstr(info->dlpi_name, "linux-vdso")) return 0;
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) || ph.p_memsz == 0) continue;
    // Only whole pages inside the segment: a page shared with a writable neighbour is kept.
    uintptr_t start = (info->dlpi_addr + ph.p_vaddr + page - 1) & ~(page - 1);
    uintptr_t end = (info->dlpi_addr + ph.p_vaddr + ph.p_memsz) & ~(page - 1);
    if (end <= start) continue;
    if (madvise(reinterpret_cast<void*>(start), end - start, MADV_DONTNEED) == 0)
      out->image_bytes += end - start;
  }
  return 0;
}

}  // namespace

ReleasedMemory ReleaseOneOffMemory() {
  ReleasedMemory out;
  out.heap_trimmed = malloc_trim(0) != 0;
  dl_iterate_phdr(DropReadOnlySegments, &out);
  return out;
}

QuietReleaser::QuietReleaser(std::chrono::milliseconds quiet)
    : quiet_(quiet), thread_([this] { Run(); }) {}

QuietReleaser::~QuietReleaser() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void QuietReleaser::Activity() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_ = std::chrono::steady_clock::now();
    if (pending_) return;  // the thread is already counting
    pending_ = true;
  }
  cv_.notify_all();
}

int QuietReleaser::releases() const {
  std::lock_guard<std::mutex> lock(mu_);
  return releases_;
}

void QuietReleaser::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || pending_; });
    if (stop_) return;
    // Sleep until `quiet_` after the latest activity; an activity meanwhile moves that point.
    if (cv_.wait_until(lock, last_ + quiet_, [this] { return stop_; })) return;
    if (std::chrono::steady_clock::now() < last_ + quiet_) continue;
    pending_ = false;
    lock.unlock();
    ReleaseOneOffMemory();
    lock.lock();
    ++releases_;
  }
}

}  // namespace moat::sys
