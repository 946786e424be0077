#include "runtime/exe_seal.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/strings.h"
#include "base/sys/fileops.h"
#include "base/sys/fs.h"
#include "base/sys/mount.h"
#include "base/sys/process.h"

// The linker defines it at the ELF header of the executable: with the first PT_LOAD at offset 0
// it is where the image is loaded.
extern "C" const ElfW(Ehdr) __ehdr_start;  // NOLINT(bugprone-reserved-identifier)

namespace moat::runtime {
namespace {

// A mapping of the executable, from /proc/self/maps.
struct ImageMapping {
  uintptr_t start = 0;
  uintptr_t end = 0;
  int prot = 0;
  off_t offset = 0;
  bool preserve = false;  // its contents differ from the file's (relocated, written)
};

// The address range of the executable's writable PT_LOAD (RELRO, .data, the start of .bss):
// its pages hold relocated and written data that a fresh mapping of the file would lose.
std::pair<uintptr_t, uintptr_t> WritableSegmentRange() {
  const auto* base = reinterpret_cast<const unsigned char*>(&__ehdr_start);
  const auto* phdr = reinterpret_cast<const ElfW(Phdr)*>(base + __ehdr_start.e_phoff);
  uintptr_t first_vaddr = UINTPTR_MAX;
  for (int i = 0; i < __ehdr_start.e_phnum; i++)
    if (phdr[i].p_type == PT_LOAD && phdr[i].p_vaddr < first_vaddr) first_vaddr = phdr[i].p_vaddr;
  uintptr_t bias = reinterpret_cast<uintptr_t>(base) - first_vaddr;
  uintptr_t lo = UINTPTR_MAX, hi = 0;
  for (int i = 0; i < __ehdr_start.e_phnum; i++) {
    if (phdr[i].p_type != PT_LOAD || !(phdr[i].p_flags & PF_W)) continue;
    lo = std::min<uintptr_t>(lo, bias + phdr[i].p_vaddr);
    hi = std::max<uintptr_t>(hi, bias + phdr[i].p_vaddr + phdr[i].p_memsz);
  }
  return {lo, hi};
}

// Every mapping of the file `st` names (dev, inode), as /proc/self/maps lists them.
Result<std::vector<ImageMapping>> MappingsOf(const struct stat& st) {
  MOAT_ASSIGN_OR_RETURN(std::string maps, sys::ReadFile("/proc/self/maps"));
  auto [w_lo, w_hi] = WritableSegmentRange();
  std::vector<ImageMapping> out;
  for (const std::string& l : StrSplit(maps, '\n')) {
    uintptr_t start = 0, end = 0;
    char perms[5] = {};
    unsigned long long offset = 0, inode = 0;
    unsigned major_no = 0, minor_no = 0;
    if (sscanf(l.c_str(), "%" SCNxPTR "-%" SCNxPTR " %4s %llx %x:%x %llu", &start, &end, perms,
               &offset, &major_no, &minor_no, &inode) != 7)
      continue;
    if (inode != st.st_ino || makedev(major_no, minor_no) != st.st_dev) continue;
    ImageMapping m;
    m.start = start;
    m.end = end;
    m.prot = (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) |
             (perms[2] == 'x' ? PROT_EXEC : 0);
    m.offset = static_cast<off_t>(offset);
    if (perms[3] != 'p')
      return Fail(ErrorKind::kInternal, "runtime binary mapped shared at %" PRIxPTR, start);
    m.preserve = (m.prot & PROT_WRITE) || (start < w_hi && end > w_lo);
    out.push_back(m);
  }
  if (out.empty())
    return Fail(ErrorKind::kInternal, "no mapping of the runtime binary in /proc/self/maps");
  return out;
}

// Points /proc/self/exe at `fd` with PR_SET_MM_MAP, which needs CAP_SYS_ADMIN (or
// CAP_CHECKPOINT_RESTORE) in our user namespace, as open_tree did; PR_SET_MM_EXE_FILE would
// need CAP_SYS_RESOURCE in the initial one, which some hosts withhold even from root. The map
// must restate the process's layout: it is read back from /proc/self/stat and brk(0) as it is,
// so nothing but the exe file changes. The kernel refuses (EBUSY) while any mapping of the old
// path remains.
Result<void> SetExeFile(int fd) {
  MOAT_ASSIGN_OR_RETURN(std::vector<std::string> f, sys::ProcStatFields(0));
  if (f.size() < 51)
    return Fail(ErrorKind::kInternal, "short /proc/self/stat (%zu fields)", f.size());
  auto field = [&](size_t n) -> uint64_t { return strtoull(f[n - 1].c_str(), nullptr, 10); };
  struct prctl_mm_map map {};
  map.start_code = field(26);
  map.end_code = field(27);
  map.start_stack = field(28);
  map.start_data = field(45);
  map.end_data = field(46);
  map.start_brk = field(47);
  map.arg_start = field(48);
  map.arg_end = field(49);
  map.env_start = field(50);
  map.env_end = field(51);
  map.brk = static_cast<uint64_t>(syscall(SYS_brk, 0));
  map.exe_fd = static_cast<uint32_t>(fd);
  if (prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof map, 0) != 0)
    return FailErrno("prctl(PR_SET_MM_MAP) with the read-only binary");
  return Ok();
}

// Replaces every mapping of the executable by the same range of `fd` (the same file through
// another mount), then makes `fd` the process's /proc/self/exe (SetExeFile). Between a preserved
// mapping's copy and its move into place nothing but the two syscalls runs: the copy is complete.
// Preconditions: single-threaded, no signal handler installed (main() before anything else).
Result<void> MoveImageTo(int fd, const std::vector<ImageMapping>& mappings) {
  for (const ImageMapping& m : mappings) {
    size_t len = m.end - m.start;
    // A preserved range becomes anonymous memory holding its current bytes; the others map
    // the same bytes of the file again, through `fd`.
    void* fresh =
        m.preserve ? mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                   : mmap(nullptr, len, m.prot, MAP_PRIVATE, fd, m.offset);
    if (fresh == MAP_FAILED)
      return FailErrno("map %s of the runtime binary at offset %lld",
                       m.preserve ? "a copy" : "a range", static_cast<long long>(m.offset));
    if (m.preserve) {
      memcpy(fresh, reinterpret_cast<const void*>(m.start), len);
      if (m.prot != (PROT_READ | PROT_WRITE) && mprotect(fresh, len, m.prot) != 0) {
        Error e = Error::FromErrno(errno, "protect the copy of the runtime's data");
        munmap(fresh, len);
        return Fail(std::move(e));
      }
    }
    // Atomically: the old mapping goes, the new one takes its place (same bytes).
    if (mremap(fresh, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, reinterpret_cast<void*>(m.start)) ==
        MAP_FAILED) {
      Error e = Error::FromErrno(errno, "move the runtime binary's mapping into place");
      munmap(fresh, len);
      return Fail(std::move(e));
    }
  }
  return SetExeFile(fd);
}

}  // namespace

Result<void> EnsureReadOnlyExecutable(char* const argv[]) {
  // One open of the magic link, then everything through the fd: no second path walk.
  MOAT_ASSIGN_OR_RETURN(UniqueFd exe, sys::open("/proc/self/exe", O_PATH | O_CLOEXEC));
  // statfs reports the mount's flags (ST_RDONLY for MNT_READONLY too) since Linux 2.6.36.
  MOAT_ASSIGN_OR_RETURN(
      struct statvfs vfs,
      std::move(sys::fstatvfs(exe.get())).Context("runtime binary /proc/self/exe"));
  // Also the exit of a re-executed process: the detached mount below is read-only.
  if (vfs.f_flag & ST_RDONLY) return Ok();

  // A detached bind mount of the binary alone: in no mount namespace's tree, so nothing is
  // mounted, propagated or left behind; it lives as long as a process maps or executes it.
  auto ro = sys::ReadOnlyBindMount(exe.get(), "");
  if (!ro && ro.error().sys_errno == EPERM) {
    // Rootless: open_tree needs CAP_SYS_ADMIN over our mount namespace. The binary belongs to
    // root and the container's ids map to this user, who cannot write it.
    MOAT_LOG(kDebug,
             "runtime binary stays on a writable mount: open_tree needs CAP_SYS_ADMIN in the "
             "mount namespace (rootless); the container's ids cannot write a root-owned binary");
    return Ok();
  }
  if (!ro && ro.error().sys_errno == ENOSYS) {
    MOAT_LOG(kWarning, "runtime binary stays on a writable mount: %s (Linux < 5.12)",
             ro.error().message.c_str());
    return Ok();
  }
  if (!ro) {
    Error e = std::move(ro).error();
    e.Prefix("seal runtime binary");
    return Fail(std::move(e));
  }

  // Without a second execve (a whole process start, ~4 ms on a VM where page faults are dear):
  // the image's mappings move to the read-only mount (same inode, same bytes), then so does
  // /proc/self/exe, which the kernel allows once no mapping of the old path is left.
  auto moved = [&]() -> Result<void> {
    MOAT_ASSIGN_OR_RETURN(
        UniqueFd file, sys::open(StrFormat("/proc/self/fd/%d", ro->get()), O_RDONLY | O_CLOEXEC));
    MOAT_ASSIGN_OR_RETURN(struct stat st, sys::fstat(file.get()));
    MOAT_ASSIGN_OR_RETURN(std::vector<ImageMapping> mappings, MappingsOf(st));
    // On success /proc/self/exe is `file`, on the read-only mount (the kernel's PR_SET_MM_MAP).
    return MoveImageTo(file.get(), mappings);
  }();
  if (moved) {
    MOAT_LOG(kDebug, "runtime image moved to a read-only mount of its binary");
    return Ok();
  }
  // Any mapping already moved maps the same bytes; the re-execution below starts over.
  MOAT_LOG(kDebug, "re-executing instead of moving the image: %s", moved.error().message.c_str());
  // The fd is close-on-exec: the new image holds the mount through its exe reference only.
  return std::move(sys::execveat(ro->get(), "", argv, environ, AT_EMPTY_PATH))
      .Context("seal runtime binary");
}

}  // namespace moat::runtime
