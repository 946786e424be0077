#pragma once

// Confinement of moat-extract, applied in main() before the first byte of the layer is read.
// The store spawns moat-extract as root from moatd's core with fd 0 = layer bytes, fd 1 = the
// reply pipe, fd 3 = the target directory. After EnterConfinement() returns, the process:
//
//  - has closed every fd but 0, 1 and 3 (fd 2 is reopened on /dev/null so that nothing a
//    library prints lands in a layer file that happens to get number 2);
//  - lives in new mount (private propagation), network, IPC and UTS namespaces, chrooted into
//    the target: "/" is the layer directory and nothing else of the host is reachable by path;
//  - keeps uid 0 but only the capabilities that file ownership needs, in the bounding,
//    permitted and effective sets (inheritable and ambient empty), see ExtractorCapabilities():
//      CAP_CHOWN        chown to the tar's uid/gid (only with Ownership::kKeep)
//      CAP_DAC_OVERRIDE create entries in directories the layer made 0555 or gave to another uid
//      CAP_FOWNER       chmod/utimens/xattrs on files just chowned to another uid
//      CAP_FSETID       keep the setgid bit on files whose group is not ours (kKeep only)
//      CAP_SETFCAP      keep security.capability xattrs (file capabilities such as ping's)
//      CAP_MKNOD        only with DevicePolicy::kAllow
//    Overlay whiteouts (char 0:0) need no CAP_MKNOD since Linux 5.8;
//  - has no_new_privs, is not dumpable and dies with its parent (PR_SET_PDEATHSIG);
//  - rlimits: RLIMIT_NOFILE 256, RLIMIT_NPROC 0, RLIMIT_CORE 0, RLIMIT_AS 8 GiB (not under
//    AddressSanitizer, which reserves terabytes). RLIMIT_NPROC does not bind uid 0 (the kernel
//    exempts INIT_USER): the seccomp filter is what forbids fork. For other uids it also
//    refuses threads (EAGAIN), and the extractor then reads the layer on its one thread;
//  - Landlock (when the kernel has it): every file-system right the ABI knows is handled and
//    only the target directory gets rights, all but EXECUTE, IOCTL_DEV and MAKE_SOCK (and
//    MAKE_BLOCK without kAllow). ABI >= 4: no TCP bind/connect; ABI >= 6: no signals to, and
//    no abstract unix sockets of, processes outside the domain. Without Landlock the report
//    says "unavailable" and extraction goes on (chroot, namespaces and seccomp still hold);
//  - a seccomp allowlist (ExtractorSeccompProfile(), default EPERM): file creation relative
//    to fds, reads and writes, memory without PROT_EXEC, exit, and threads: clone only with
//    CLONE_THREAD and no namespace flag (the layer reader thread, created after confinement
//    so that it inherits all of it), clone3 fails with ENOSYS (its flags are out of seccomp's
//    reach; glibc then uses clone). No execve, socket, fork/vfork/clone of a process, mount,
//    ptrace, open_by_handle_at, chroot, unshare/setns, capset, prctl, ioctl.
//
// setuid/setgid files and file capabilities are KEPT, as Docker keeps them: images ship su,
// passwd and ping legitimately. They are inert on the host: the store's directory is 0700 and
// layers are only ever used as overlay lower dirs of containers, which run with
// no_new_privs by default and a bounded capability set. The extractor itself never executes
// anything: seccomp denies execve/execveat and mmap/mprotect with PROT_EXEC (so not even a
// planted shared object can be dlopen'ed, e.g. by glibc's iconv reading gconv-modules from
// the chroot), and Landlock withholds EXECUTE.
//
// Xattrs from the tar: user.* (except user.overlay.*) and security.capability are applied;
// every other name (trusted.*, including trusted.overlay.* which overlayfs would obey,
// security.selinux, system.*) is skipped and counted in the reply.
//
// Opaque directories need trusted.overlay.opaque, and trusted.* needs CAP_SYS_ADMIN. Rather
// than keep it, the extractor forks a broker before it drops privileges (OpaqueBroker): the
// broker keeps CAP_SYS_ADMIN alone, under its own seccomp filter that allows only receiving
// fds and fsetxattr, and does one thing: set trusted.overlay.opaque=y on a directory fd the
// extractor sends. The extractor can only send fds it can open, which are inside its root.
//
// When not run as root (rootless stores, unit tests) the namespaces, chroot and capability
// steps are skipped ("namespaces": false in the report) and the rest still applies: Landlock
// limits writes to the target, seccomp, no_new_privs, rlimits.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "oci/spec.h"
#include "seccomp/compiler.h"

namespace moat::image {

enum class DevicePolicy { kRefuse, kAllow };
enum class KeepOwnership { kNo, kYes };
enum class NeedBroker { kNo, kYes };

// What the process needs; decided from moat-extract's flags.
struct ConfineOptions {
  KeepOwnership ownership = KeepOwnership::kYes;
  DevicePolicy devices = DevicePolicy::kRefuse;
  // Fork the opaque-xattr broker (only for the "trusted" xattr namespace as root).
  NeedBroker broker = NeedBroker::kNo;
  // An fd the process writes its tar-split record to (moat-extract --tar-split: fd 4): kept
  // open through confinement, like the target. -1: none.
  int output_fd = -1;
};

// Everything prepared before entering (libseccomp allocates), for EnterConfinement().
struct ConfinePlan {
  ConfineOptions options;
  std::vector<int> caps;  // the capability numbers kept
  seccomp::Program extractor_program;
  seccomp::Program broker_program;
};

// What EnterConfinement() achieved, for the reply and logs.
struct ConfineReport {
  bool namespaces = false;  // new mnt/net/ipc/uts namespaces and chroot (root only)
  int landlock_abi = 0;     // 0: unavailable
};

// The capabilities kept for `options`, sorted.
std::vector<int> ExtractorCapabilities(const ConfineOptions& options);

// The seccomp allowlists, as values for tests (default action EPERM).
oci::Seccomp ExtractorSeccompProfile(const ConfineOptions& options);
oci::Seccomp BrokerSeccompProfile();

// Compiles the filters. Errors of seccomp::Compile.
Result<ConfinePlan> PlanConfinement(const ConfineOptions& options);

// Sends directory fds to the broker process; a default-constructed broker sets the xattr
// itself (unconfined callers, tests). Not thread-safe. The broker exits when this is destroyed.
class OpaqueBroker {
 public:
  OpaqueBroker() = default;
  OpaqueBroker(UniqueFd sock, pid_t pid) : sock_(std::move(sock)), pid_(pid) {}
  OpaqueBroker(OpaqueBroker&& o) noexcept : sock_(std::move(o.sock_)), pid_(o.pid_) { o.pid_ = -1; }
  OpaqueBroker& operator=(OpaqueBroker&&) = delete;
  ~OpaqueBroker();
  // Sets `xattr_namespace`.overlay.opaque = "y" on the directory `dir_fd` (remains owned by the
  // caller). Through the broker only "trusted" is possible. Errors name the xattr and errno.
  Result<void> MarkOpaque(int dir_fd, const std::string& xattr_namespace);
  pid_t pid() const { return pid_; }

 private:
  UniqueFd sock_;
  pid_t pid_ = -1;
};

// Confines the calling process as the header comment describes. `target_fd` is the target
// directory (fd 3 in moat-extract; it stays open). The caller must be single-threaded and must
// not have read any untrusted input yet. Every fd except 0, 1, `target_fd`, options.output_fd
// (and the broker's socket) is closed. If plan.options.broker is kYes, `broker` is not null and the caller is
// root, forks the broker first and returns it in `*broker`. Errors name the step; the process
// must then exit without reading its input.
Result<ConfineReport> EnterConfinement(const ConfinePlan& plan, int target_fd,
                                       std::unique_ptr<OpaqueBroker>* broker);

// Landlock's ABI version on this kernel, 0 if unavailable. Makes one syscall.
int LandlockAbi();

}  // namespace moat::image
