#pragma once

// Turns an OCI seccomp section into a classic-BPF program, and installs one. Only compiler.cc
// talks to libseccomp. Compiling the default profile costs milliseconds, so CompileCached keeps
// the BPF in a cache directory keyed by a hash of the profile, the architecture and libseccomp's
// version.
//
// Semantics of a profile, where OCI leaves room (runc agrees unless noted):
//  - The native architecture is always in the filter; "architectures" adds more. A call made
//    with an architecture not in the filter gets libseccomp's bad-architecture action,
//    SECCOMP_RET_KILL_THREAD.
//  - A syscall name that libseccomp knows on no architecture is an error (runc only warns); a
//    name that exists on some architectures only (socketcall, arch_prctl, set_tls) applies
//    where it exists.
//  - Within one rule, args with different indexes must all match (AND); several args with the
//    same index are alternatives (OR). {a0==1, a0==2, a1==3} matches
//    (a0==1 && a1==3) || (a0==2 && a1==3). runc instead ORs every arg once any index repeats.
//  - A rule whose action equals the default action is dropped: it could not change a verdict.
//  - When one syscall has several unconditional rules, the first one wins (libseccomp).
//  - errnoRet is accepted only with SCMP_ACT_ERRNO (0..4095, default EPERM) and
//    SCMP_ACT_TRACE (0..65535, the value the tracer sees; default EPERM as in runc).
//  - When the default action denies (ERRNO, TRAP, KILL*), syscall numbers above the highest one
//    libseccomp knows for an architecture (up to that architecture's number 511) return ENOSYS
//    instead, so that C libraries fall back from syscalls newer than this libseccomp.

#include <linux/filter.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "oci/spec.h"

namespace moat::seccomp {

struct Program {
  // The filter in the kernel's format; at most BPF_MAXINSNS instructions, never empty.
  std::vector<sock_filter> instructions;
  // SECCOMP_FILTER_FLAG_* bits from the profile's "flags" (TSYNC, LOG, SPEC_ALLOW,
  // WAIT_KILLABLE_RECV). Install adds NEW_LISTENER itself.
  unsigned int flags = 0;
  // The profile uses SCMP_ACT_NOTIFY: the installer must pass a listener fd back.
  bool needs_listener = false;
};

// Compiles `profile` for the native architecture plus the profile's "architectures". Errors
// are kInvalidArgument and name the offending field: "linux.seccomp.syscalls[3].names[1]:
// unknown syscall \"foo\"", "linux.seccomp.defaultAction: unknown action \"X\"",
// "linux.seccomp.architectures[1]: ...", "linux.seccomp.flags[0]: unknown flag \"X\"",
// "linux.seccomp.syscalls[2].args[0].op: ...". A program longer than the kernel's limit is
// kInvalidArgument too; a libseccomp failure is kInternal. Thread-safe; allocates.
Result<Program> Compile(const oci::Seccomp& profile);

// What CompileCached did; for logs and tests.
enum class CacheOutcome {
  kHit,       // a valid entry was loaded; libseccomp compiled nothing
  kMiss,      // no entry: compiled and stored
  kReplaced,  // an entry failed validation (size, magic, key, checksum): compiled and stored
};

// Compile(), memoised on disk as `<cache_dir>/<sha256 hex>.bpf` (written atomically; the
// directory is created 0700 if missing). The key covers every field of the profile that affects
// the program, the native architecture, libseccomp's version and this compiler's version. An
// entry is used only if its size, magic, format version, embedded key and SHA-256 checksum all
// match; otherwise it is recompiled and rewritten. Failing to store an entry is logged as a
// warning, not returned. Fails with kPermissionDenied if `cache_dir` is not owned by the
// effective uid or is writable by group or others, since a planted entry would replace the
// filter; other errors as Compile(). `outcome`, if not null, receives what happened.
Result<Program> CompileCached(const oci::Seccomp& profile, const std::string& cache_dir,
                              CacheOutcome* outcome = nullptr);

// Installs `program` on the calling thread with seccomp(SECCOMP_SET_MODE_FILTER), adding
// SECCOMP_FILTER_FLAG_NEW_LISTENER when program.needs_listener (and TSYNC_ESRCH when TSYNC is
// also set, which the kernel requires). Needs no_new_privs or CAP_SYS_ADMIN. Returns the
// listener fd (owned by the caller) when the program needs one, else an invalid fd. Errors:
// kInvalidArgument for an empty or oversized program or one the kernel rejects,
// kPermissionDenied without no_new_privs/CAP_SYS_ADMIN, kConflict if TSYNC could not
// synchronise another thread. async-signal-safe and allocation-free unless it fails.
Result<UniqueFd> Install(const Program& program);

// Moat's default profile: profiles/seccomp-default.json, embedded at build time, parsed on
// each call. Fails only if the embedded document is malformed (kInvalidArgument).
Result<oci::Seccomp> DefaultProfile();

// libseccomp's architecture and syscall tables, for tests and diagnostics. All thread-safe.

// The native architecture in OCI spelling, e.g. "SCMP_ARCH_X86_64".
std::string NativeArchitecture();

// The compiler backend and its version, e.g. "libseccomp 2.5.4".
std::string BackendVersion();

// The AUDIT_ARCH_* value of an OCI architecture name ("SCMP_ARCH_X86" -> AUDIT_ARCH_I386);
// kInvalidArgument for an unknown name. Note that SCMP_ARCH_X32 shares AUDIT_ARCH_X86_64 and
// marks its syscall numbers with bit 30 instead.
Result<uint32_t> AuditArch(std::string_view oci_arch);

// The number of `name` on `oci_arch` as seccomp_data.nr carries it (x32 numbers include bit
// 30); nullopt if the syscall does not exist there or the architecture is unknown.
std::optional<uint32_t> SyscallNumber(std::string_view oci_arch, std::string_view name);

// Every (number, name) libseccomp knows for `oci_arch`, sorted by number; empty for an unknown
// architecture.
std::vector<std::pair<uint32_t, std::string>> SyscallTable(std::string_view oci_arch);

}  // namespace moat::seccomp
