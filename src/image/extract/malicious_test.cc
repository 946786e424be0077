// Privileged tests of the confined extractor (ctest label "privileged"; they need root): the
// moat-extract binary against a battery of hostile layers, its /proc/PID/status while it
// extracts, and the seccomp filter and Landlock applied by EnterConfinement in forked children.
// Every case checks that a sentinel file next to the target is unchanged.

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include "base/strings.h"
#include "base/sys/fdio.h"
#include "base/sys/fs.h"
#include "base/sys/io.h"
#include "base/sys/spawn.h"
#include "image/decompress.h"
#include "image/extract/confine.h"
#include "image/extract/extractor.h"
#include "image/test_util.h"

namespace moat::image {
namespace {

using namespace testing;  // NOLINT

#define MOAT_REQUIRE_ROOT() \
  if (geteuid() != 0) GTEST_SKIP() << "needs root (euid " << geteuid() << ")"

// A tar with one device node (test_util's builder has no rdev).
std::string DeviceTar(const std::string& name, mode_t type, unsigned major, unsigned minor) {
  std::string out;
  struct archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open(
      a, &out, nullptr,
      [](struct archive*, void* c, const void* buf, size_t n) -> la_ssize_t {
        static_cast<std::string*>(c)->append(static_cast<const char*>(buf), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  struct archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, name.c_str());
  archive_entry_set_filetype(e, type);
  archive_entry_set_perm(e, 0666);
  archive_entry_set_rdevmajor(e, major);
  archive_entry_set_rdevminor(e, minor);
  EXPECT_EQ(archive_write_header(a, e), ARCHIVE_OK);
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

// Everything `fd` yields until EOF (or an error).
std::string ReadToEof(int fd) {
  std::string out;
  char buf[512];
  for (;;) {
    auto n = sys::read(fd, buf, sizeof buf);
    if (!n || *n == 0) return out;
    out.append(buf, *n);
  }
}

std::set<std::string> List(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) return names;
  while (struct dirent* e = readdir(d))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) names.insert(e->d_name);
  closedir(d);
  return names;
}

// Allocated bytes under `dir` (no symlinks followed).
uint64_t DiskUsage(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& n : List(dir)) {
    std::string p = dir + "/" + n;
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) continue;
    total += static_cast<uint64_t>(st.st_blocks) * 512;
    if (S_ISDIR(st.st_mode)) total += DiskUsage(p);
  }
  return total;
}

std::string StatusField(pid_t pid, const std::string& field) {
  auto s = sys::ReadFile(StrFormat("/proc/%d/status", pid));
  if (!s) return "";
  for (const auto& line : StrSplit(*s, '\n'))
    if (StartsWith(line, field + ":"))
      return std::string(TrimWhitespace(line.substr(field.size() + 1)));
  return "";
}

std::string NsLink(const std::string& pid, const std::string& ns) {
  auto l = sys::readlinkat(AT_FDCWD, "/proc/" + pid + "/ns/" + ns);
  return l ? *l : "?";
}

struct ExtractRun {
  int status = -1;
  std::string reply;
  bool ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

class MaliciousTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path() + "/root";
    outside_ = tmp_.path() + "/outside";
    sentinel_ = outside_ + "/sentinel";
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
    ASSERT_EQ(mkdir(outside_.c_str(), 0755), 0);
    WriteFileOrDie(sentinel_, "original");
    struct stat st;
    ASSERT_EQ(stat(sentinel_.c_str(), &st), 0);
    sentinel_mtime_ = st.st_mtim;
    ASSERT_EQ(mkdir((tmp_.path() + "/blobs").c_str(), 0700), 0);
  }

  void TearDown() override { ExpectOutsideUnchanged(); }

  void Reset() {
    ASSERT_TRUE(sys::RemoveAll(root_).has_value());
    ASSERT_EQ(mkdir(root_.c_str(), 0755), 0);
  }

  // moat-extract with `blob` on fd 0 (a file), the reply pipe on fd 1 and root_ on fd 3.
  ExtractRun Extract(const std::string& blob, std::vector<std::string> args = {}) {
    std::string path = StrFormat("%s/blobs/%d", tmp_.path().c_str(), blobs_++);
    WriteFileOrDie(path, blob);
    auto in = sys::open(path, O_RDONLY);
    auto dir = sys::open(root_, O_RDONLY | O_DIRECTORY);
    auto out = sys::pipe2(0);
    MOAT_CHECK(in && dir && out);
    args.insert(args.begin(), "moat-extract");
    ExtractRun run;
    auto pid = sys::Spawn(MOAT_EXTRACT_PATH, args,
                          {{in->get(), 0}, {out->second.get(), 1}, {dir->get(), 3}});
    MOAT_CHECK(pid);
    out->second.reset();
    char buf[4096];
    for (;;) {
      auto n = sys::read(out->first.get(), buf, sizeof buf);
      if (!n || *n == 0) break;
      run.reply.append(buf, *n);
    }
    run.status = *sys::waitpid(*pid);
    return run;
  }

  void ExpectRefused(const ExtractRun& r, const std::string& message) {
    EXPECT_FALSE(r.ok()) << r.reply;
    EXPECT_TRUE(WIFEXITED(r.status)) << "status " << r.status;
    EXPECT_NE(r.reply.find("\"error\""), std::string::npos) << r.reply;
    EXPECT_NE(r.reply.find(message), std::string::npos) << r.reply;
  }

  void ExpectOutsideUnchanged() {
    EXPECT_EQ(ReadFileOrDie(sentinel_), "original");
    struct stat st;
    ASSERT_EQ(lstat(sentinel_.c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_nlink, 1u);
    EXPECT_EQ(st.st_uid, 0u);
    EXPECT_EQ(st.st_mode & 07777, 0644u);
    EXPECT_EQ(st.st_mtim.tv_sec, sentinel_mtime_.tv_sec);
    EXPECT_EQ(st.st_mtim.tv_nsec, sentinel_mtime_.tv_nsec);
    EXPECT_EQ(List(outside_), std::set<std::string>({"sentinel"}));
    EXPECT_EQ(List(tmp_.path()), std::set<std::string>({"blobs", "outside", "root"}));
  }

  TempDir tmp_;
  std::string root_, outside_, sentinel_;
  struct timespec sentinel_mtime_ = {};
  int blobs_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The running extractor: capabilities, no_new_privs, seccomp, namespaces, root.

TEST_F(MaliciousTest, ProcStatusWhileExtracting) {
  MOAT_REQUIRE_ROOT();
  auto dir = sys::open(root_, O_RDONLY | O_DIRECTORY);
  auto in = sys::pipe2(0);
  auto out = sys::pipe2(0);
  ASSERT_TRUE(dir && in && out);
  auto pid = sys::Spawn(MOAT_EXTRACT_PATH, {"moat-extract"},
                        {{in->first.get(), 0}, {out->second.get(), 1}, {dir->get(), 3}});
  ASSERT_TRUE(pid) << pid.error().message;
  in->first.reset();
  out->second.reset();
  std::string tar =
      BuildTar({Dir("etc"), File("etc/hostname", "x\n"), Dir("o"), File("o/.wh..wh..opq", "")});
  // Half the layer: the extractor is now blocked reading fd 0, inside its confinement.
  ASSERT_TRUE(sys::WriteAll(in->second.get(), tar.substr(0, 1024)).has_value());
  for (int i = 0; i < 500 && StatusField(*pid, "Seccomp") != "2"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  // CAP_CHOWN(0) DAC_OVERRIDE(1) FOWNER(3) FSETID(4) SETFCAP(31).
  const std::string kCaps = "000000008000001b";
  EXPECT_EQ(StatusField(*pid, "CapEff"), kCaps);
  EXPECT_EQ(StatusField(*pid, "CapPrm"), kCaps);
  EXPECT_EQ(StatusField(*pid, "CapBnd"), kCaps);
  EXPECT_EQ(StatusField(*pid, "CapInh"), "0000000000000000");
  EXPECT_EQ(StatusField(*pid, "CapAmb"), "0000000000000000");
  EXPECT_EQ(StatusField(*pid, "NoNewPrivs"), "1");
  EXPECT_EQ(StatusField(*pid, "Seccomp"), "2");
  EXPECT_EQ(StatusField(*pid, "Uid"), "0\t0\t0\t0");
  // The layer reader thread, created after confinement (it reads fd 0, so it exists before
  // the first byte of the layer is parsed).
  for (int i = 0; i < 500 && StatusField(*pid, "Threads") != "2"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(StatusField(*pid, "Threads"), "2");
  std::string p = std::to_string(*pid);
  for (const char* ns : {"mnt", "net", "ipc", "uts"})
    EXPECT_NE(NsLink(p, ns), NsLink("self", ns)) << ns;
  EXPECT_EQ(NsLink(p, "pid"), NsLink("self", "pid"));
  // Chrooted into the target.
  auto proc_root = sys::readlinkat(AT_FDCWD, "/proc/" + p + "/root");
  ASSERT_TRUE(proc_root);
  EXPECT_EQ(*proc_root, root_);
  // Fds 0, 1, 2 (/dev/null) and 3 (the broker's socket is the 4th); the extraction may have
  // begun (its first entries' parent directory and file open): those are inside the target.
  auto fds = List("/proc/" + p + "/fd");
  for (const char* fd : {"0", "1", "2", "3", "4"}) EXPECT_TRUE(fds.count(fd)) << "fd " << fd;
  int eventfds = 0;
  for (const auto& fd : fds) {
    if (ParseInt64(fd).value_or(0) <= 4) continue;
    auto target = sys::readlinkat(AT_FDCWD, "/proc/" + p + "/fd/" + fd);
    ASSERT_TRUE(target);
    // The layer reader thread's cancel eventfd.
    if (*target == "anon_inode:[eventfd]" && ++eventfds == 1) continue;
    EXPECT_TRUE(StartsWith(*target, root_ + "/") || *target == root_)
        << "fd " << fd << " -> " << *target << " is outside the target";
  }
  auto null = sys::readlinkat(AT_FDCWD, "/proc/" + p + "/fd/2");
  ASSERT_TRUE(null);
  EXPECT_EQ(*null, "/dev/null");
  // The opaque-xattr broker: CAP_SYS_ADMIN only, its own filter.
  pid_t bpid = -1;
  for (const auto& n : List("/proc")) {
    auto v = ParseInt64(n);
    if (v && StatusField(static_cast<pid_t>(*v), "PPid") == p) bpid = static_cast<pid_t>(*v);
  }
  ASSERT_GT(bpid, 0) << "no broker child of " << p;
  // The broker confines itself after the fork, concurrently with the extractor: wait for it.
  for (int i = 0; i < 500 && StatusField(bpid, "Seccomp") != "2"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(StatusField(bpid, "CapEff"), "0000000000200000");
  EXPECT_EQ(StatusField(bpid, "CapBnd"), "0000000000200000");
  EXPECT_EQ(StatusField(bpid, "NoNewPrivs"), "1");
  EXPECT_EQ(StatusField(bpid, "Seccomp"), "2");
  EXPECT_EQ(List("/proc/" + std::to_string(bpid) + "/fd"),
            std::set<std::string>({"0", "1", "2", "5"}));

  ASSERT_TRUE(sys::WriteAll(in->second.get(), tar.substr(1024)).has_value());
  in->second.reset();
  std::string reply = ReadToEof(out->first.get());
  auto status = sys::waitpid(*pid);
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << reply;
  EXPECT_NE(reply.find("\"diff_id\":\"" + Digest(tar) + "\""), std::string::npos) << reply;
  EXPECT_NE(reply.find("\"namespaces\":true"), std::string::npos) << reply;
  std::string landlock = LandlockAbi() >= 2 ? StrFormat("abi %d", LandlockAbi()) : "unavailable";
  EXPECT_NE(reply.find("\"landlock\":\"" + landlock + "\""), std::string::npos) << reply;
  EXPECT_EQ(ReadFileOrDie(root_ + "/etc/hostname"), "x\n");
  char val[4] = {};
  EXPECT_EQ(getxattr((root_ + "/o").c_str(), "trusted.overlay.opaque", val, sizeof val), 1);
  EXPECT_EQ(val[0], 'y');
  // The broker was reaped by the extractor: no zombie left behind.
  EXPECT_NE(kill(bpid, 0), 0);
}

TEST_F(MaliciousTest, CapabilitiesFollowTheFlags) {
  MOAT_REQUIRE_ROOT();
  ConfineOptions o;
  o.ownership = KeepOwnership::kNo;
  EXPECT_EQ(ExtractorCapabilities(o),
            std::vector<int>({CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_SETFCAP}));
  o.devices = DevicePolicy::kAllow;
  EXPECT_EQ(ExtractorCapabilities(o),
            std::vector<int>({CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_MKNOD, CAP_SETFCAP}));
}

// EnterConfinement in a forked child, then syscalls an exploit would want. The child exits 0
// if each fails as it must, else with the number of the first check that did not.
int ConfinedChild(const std::string& target, bool drop_root, const std::string& outside) {
  if (drop_root) {
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) return 90;
  }
  auto fd = sys::open(target, O_RDONLY | O_DIRECTORY);
  if (!fd) return 91;
  auto plan = PlanConfinement({});
  if (!plan) return 92;
  auto report = EnterConfinement(*plan, fd->get(), nullptr);
  if (!report) return 93;
  if (report->namespaces == drop_root) return 94;
  auto eperm = [](long rc) { return rc < 0 && errno == EPERM; };
  char* argv[] = {const_cast<char*>("true"), nullptr};
  if (!eperm(execve("/bin/true", argv, environ))) return 1;
  if (!eperm(execve("/proc/self/exe", argv, environ))) return 2;
  if (!eperm(socket(AF_INET, SOCK_STREAM, 0))) return 3;
  if (!eperm(socket(AF_UNIX, SOCK_STREAM, 0))) return 4;
  if (!eperm(fork())) return 5;
  // clone makes threads only: without CLONE_THREAD (a new process) it is refused, and so is
  // CLONE_THREAD with a namespace flag (the kernel itself would say EINVAL for CLONE_NEWUSER).
  // Should a check fail the clone, the child leaves at once.
  long rc = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
  if (rc == 0) _exit(12);
  if (!eperm(rc)) return 12;
  rc = syscall(SYS_clone, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_NEWUSER, 0, 0, 0, 0);
  if (rc == 0) _exit(13);
  if (!eperm(rc)) return 13;
  // clone3 hides its flags from seccomp: ENOSYS, so that glibc falls back to clone.
  struct {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
  } clone3_args = {};
  clone3_args.exit_signal = SIGCHLD;
  rc = syscall(SYS_clone3, &clone3_args, sizeof clone3_args);
  if (rc == 0) _exit(14);
  if (rc >= 0 || errno != ENOSYS) return 14;
  // A thread can be created (the layer reader); without root RLIMIT_NPROC 0 refuses it.
  pthread_t thread;
  static int thread_ran = 0;
  int prc = pthread_create(
      &thread, nullptr,
      [](void*) -> void* {
        thread_ran = 1;
        return nullptr;
      },
      nullptr);
  if (drop_root) {
    if (prc != EAGAIN) return 15;
  } else {
    if (prc != 0) return 15;
    if (pthread_join(thread, nullptr) != 0 || thread_ran != 1) return 16;
  }
  if (!eperm(mount("none", "/", "tmpfs", 0, nullptr))) return 6;
  if (!eperm(chroot("/"))) return 7;
  if (!eperm(unshare(CLONE_NEWUSER))) return 8;
  if (mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) !=
          MAP_FAILED ||
      errno != EPERM)
    return 9;
  if (!eperm(prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0))) return 10;
  if (!eperm(ioctl(0, FIONREAD, nullptr))) return 11;
  // Writing beneath the target works.
  int w = openat(AT_FDCWD, drop_root ? (target + "/ok").c_str() : "/ok",
                 O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (w < 0 || write(w, "ok", 2) != 2) return 20;
  close(w);
  if (drop_root) {
    // Not chrooted (no privilege for it): Landlock is what refuses the write outside,
    // although the directory is writable for this uid.
    int o = openat(AT_FDCWD, (outside + "/planted").c_str(), O_WRONLY | O_CREAT, 0644);
    if (o >= 0 || errno != EACCES) return 21;
    if (mkdirat(AT_FDCWD, (outside + "/dir").c_str(), 0755) == 0 || errno != EACCES) return 22;
  } else {
    // Chrooted: the host's files are not there.
    if (open("/etc/passwd", O_RDONLY) >= 0 || errno != ENOENT) return 23;
  }
  return 0;
}

TEST_F(MaliciousTest, SeccompFilterBlocksExploitSyscalls) {
  MOAT_REQUIRE_ROOT();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(ConfinedChild(root_, false, outside_));
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "check " << WEXITSTATUS(status) << " failed";
  EXPECT_EQ(sys::ReadFile(root_ + "/ok").value_or("missing"), "ok");
}

TEST_F(MaliciousTest, LandlockConfinesWritesWithoutRoot) {
  MOAT_REQUIRE_ROOT();
  if (LandlockAbi() < 2) GTEST_SKIP() << "no Landlock ABI >= 2 on this kernel";
  ASSERT_EQ(chmod(root_.c_str(), 0777), 0);
  ASSERT_EQ(chmod(outside_.c_str(), 0777), 0);
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0755), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(ConfinedChild(root_, true, outside_));
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "check " << WEXITSTATUS(status) << " failed";
  EXPECT_EQ(sys::ReadFile(root_ + "/ok").value_or("missing"), "ok");
  ASSERT_EQ(chmod(outside_.c_str(), 0755), 0);
}

// What confinement costs per layer: PlanConfinement (libseccomp compiles two filters) and
// EnterConfinement (namespaces, chroot, fork of the broker, caps, Landlock, seccomp), timed in
// forked children that report on their fd 1; medians of 15 runs are printed. The bound is
// loose (the machine may be loaded): it fails if confinement becomes a real fraction of a
// layer's extraction time.
TEST_F(MaliciousTest, ConfinementCostsAFewMilliseconds) {
  MOAT_REQUIRE_ROOT();
  std::vector<double> plan_ms, enter_ms;
  for (int i = 0; i < 15; ++i) {
    auto p = sys::pipe2(0);
    ASSERT_TRUE(p);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto now = [] { return std::chrono::steady_clock::now(); };
      if (dup2(p->second.get(), 1) < 0) _exit(1);
      auto fd = sys::open(root_, O_RDONLY | O_DIRECTORY);
      ConfineOptions o;
      o.broker = NeedBroker::kYes;
      auto t0 = now();
      auto plan = PlanConfinement(o);
      auto t1 = now();
      if (!fd || !plan) _exit(2);
      std::unique_ptr<OpaqueBroker> broker;
      auto report = EnterConfinement(*plan, fd->get(), &broker);
      auto t2 = now();
      if (!report) _exit(3);
      double times[2] = {std::chrono::duration<double, std::milli>(t1 - t0).count(),
                         std::chrono::duration<double, std::milli>(t2 - t1).count()};
      _exit(write(1, times, sizeof times) == sizeof times ? 0 : 4);
    }
    p->second.reset();
    double times[2] = {};
    auto n = sys::read(p->first.get(), times, sizeof times);
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    ASSERT_TRUE(n && *n == sizeof times);
    plan_ms.push_back(times[0]);
    enter_ms.push_back(times[1]);
  }
  std::sort(plan_ms.begin(), plan_ms.end());
  std::sort(enter_ms.begin(), enter_ms.end());
  double plan = plan_ms[plan_ms.size() / 2], enter = enter_ms[enter_ms.size() / 2];
  printf("confinement: plan %.2f ms (min %.2f), enter %.2f ms (min %.2f)\n", plan, plan_ms[0],
         enter, enter_ms[0]);
  RecordProperty("plan_ms", StrFormat("%.2f", plan));
  RecordProperty("enter_ms", StrFormat("%.2f", enter));
  EXPECT_LT(plan_ms[0] + enter_ms[0], 50.0);
}

// ---------------------------------------------------------------------------------------------
// The battery. Each layer is refused with a clear error or neutralised inside the target.

TEST_F(MaliciousTest, PathTraversalIsNeutralised) {
  MOAT_REQUIRE_ROOT();
  auto r = Extract(BuildTar({File("../../sentinel", "evil"), File("../outside/sentinel", "evil"),
                             File("a/../../../../outside/sentinel", "evil2")}));
  ASSERT_TRUE(r.ok()) << r.reply;
  EXPECT_EQ(ReadFileOrDie(root_ + "/sentinel"), "evil");
  EXPECT_EQ(ReadFileOrDie(root_ + "/outside/sentinel"), "evil2");
}

TEST_F(MaliciousTest, AbsolutePathIsNeutralised) {
  MOAT_REQUIRE_ROOT();
  auto r = Extract(BuildTar({File(sentinel_, "evil")}));
  ASSERT_TRUE(r.ok()) << r.reply;
  EXPECT_EQ(ReadFileOrDie(root_ + sentinel_), "evil");
}

TEST_F(MaliciousTest, SymlinkThenWriteThroughIt) {
  MOAT_REQUIRE_ROOT();
  // Absolute and relative links to the outside directory, then a file below them: the link
  // resolves inside the root, where that directory does not exist.
  ExpectRefused(Extract(BuildTar({Symlink("escape", outside_), File("escape/sentinel", "e")})),
                "not a directory");
  Reset();
  ExpectRefused(Extract(BuildTar({Symlink("rel", "../outside"), File("rel/sentinel", "e")})),
                "not a directory");
  Reset();
  // A link to the sentinel file itself, then a file of that name: the link is replaced.
  auto r = Extract(BuildTar({Symlink("direct", sentinel_), File("direct", "replaced")}));
  ASSERT_TRUE(r.ok()) << r.reply;
  struct stat st;
  ASSERT_EQ(lstat((root_ + "/direct").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(MaliciousTest, SymlinkInOneLayerWriteInTheNext) {
  MOAT_REQUIRE_ROOT();
  // Worst case for the store: both layers into the same directory.
  auto r = Extract(BuildTar({Symlink("escape", outside_), Symlink("up", "../../..")}));
  ASSERT_TRUE(r.ok()) << r.reply;
  ExpectRefused(Extract(BuildTar({File("escape/sentinel", "evil")})), "not a directory");
  // "up" climbs to the root of the target at most: the file lands inside.
  r = Extract(BuildTar({File("up" + sentinel_, "evil")}));
  ASSERT_TRUE(r.ok()) << r.reply;
  EXPECT_EQ(ReadFileOrDie(root_ + sentinel_), "evil");
}

TEST_F(MaliciousTest, HardlinkToAHostFile) {
  MOAT_REQUIRE_ROOT();
  for (const std::string& target : {sentinel_, std::string("../outside/sentinel"),
                                    std::string("../../../../../../../etc/passwd")}) {
    Reset();
    ExpectRefused(Extract(BuildTar({Hardlink("h", target)})), "hardlink h");
  }
}

TEST_F(MaliciousTest, DeviceNodesAreRefusedUnlessAllowed) {
  MOAT_REQUIRE_ROOT();
  ExpectRefused(Extract(DeviceTar("dev/mem", AE_IFCHR, 1, 1)),
                "device node dev/mem (char 1:1) refused");
  Reset();
  ExpectRefused(Extract(DeviceTar("dev/sda", AE_IFBLK, 8, 0)),
                "device node dev/sda (block 8:0) refused");
  Reset();
  auto r = Extract(DeviceTar("dev/null", AE_IFCHR, 1, 3), {"--allow-devices"});
  ASSERT_TRUE(r.ok()) << r.reply;
  struct stat st;
  ASSERT_EQ(lstat((root_ + "/dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
}

TEST_F(MaliciousTest, FifoIsCreated) {
  MOAT_REQUIRE_ROOT();
  TarEntry f;
  f.type = TarEntry::kFifo;
  f.name = "run/initctl";
  f.mode = 0600;
  auto r = Extract(BuildTar({f}));
  ASSERT_TRUE(r.ok()) << r.reply;
  struct stat st;
  ASSERT_EQ(lstat((root_ + "/run/initctl").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
}

TEST_F(MaliciousTest, SetuidFilesAreKeptButNeverRun) {
  MOAT_REQUIRE_ROOT();
  TarEntry su = File("bin/su", "#!/bin/sh\ntouch " + sentinel_ + "\n", 04755);
  TarEntry sg = File("bin/wall", "x", 02755);
  sg.gid = 5;
  auto r = Extract(BuildTar({su, sg}));
  ASSERT_TRUE(r.ok()) << r.reply;
  struct stat st;
  ASSERT_EQ(stat((root_ + "/bin/su").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  EXPECT_EQ(st.st_uid, 0u);
  ASSERT_EQ(stat((root_ + "/bin/wall").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 02755u);  // CAP_FSETID kept the bit for another group
  EXPECT_EQ(st.st_gid, 5u);
}

TEST_F(MaliciousTest, OverlayXattrsFromTheTarAreSkipped) {
  MOAT_REQUIRE_ROOT();
  TarEntry f = File("f", "x");
  f.xattrs = {{"trusted.overlay.redirect", "/etc"}, {"user.overlay.opaque", "y"}, {"user.ok", "1"}};
  auto r = Extract(BuildTar({f}));
  ASSERT_TRUE(r.ok()) << r.reply;
  // (libarchive reads a pax xattr under both its LIBARCHIVE. and SCHILY. keys)
  EXPECT_NE(r.reply.find("\"xattrs_skipped\":"), std::string::npos) << r.reply;
  char v[16];
  EXPECT_LT(getxattr((root_ + "/f").c_str(), "trusted.overlay.redirect", v, sizeof v), 0);
  EXPECT_LT(getxattr((root_ + "/f").c_str(), "user.overlay.opaque", v, sizeof v), 0);
  EXPECT_EQ(getxattr((root_ + "/f").c_str(), "user.ok", v, sizeof v), 1);
}

TEST_F(MaliciousTest, GzipBombStopsEarly) {
  MOAT_REQUIRE_ROOT();
  std::string tar = BuildTar({File("bomb", std::string(256 << 20, '\0'))});
  std::string gz = GzipCompress(tar);
  tar.clear();
  auto r = Extract(gz, {"--max-ratio=100"});
  ExpectRefused(r, "compression ratio limit of 100");
  // The ratio is checked after 16 MiB of output: far less than 256 MiB reached the disk.
  EXPECT_LT(DiskUsage(root_), 40ull << 20);
}

TEST_F(MaliciousTest, VeryLongPath) {
  MOAT_REQUIRE_ROOT();
  std::string name;
  while (name.size() < 5000) name += std::string(100, 'd') + "/";
  ExpectRefused(Extract(BuildTar({File(name + "f", "x")})), "longer than 4096 bytes");
  Reset();
  // One component longer than NAME_MAX, under the limit: the kernel's ENAMETOOLONG.
  ExpectRefused(Extract(BuildTar({File(std::string(300, 'n'), "x")})), "File name too long");
}

TEST_F(MaliciousTest, TooManyEntries) {
  MOAT_REQUIRE_ROOT();
  std::vector<TarEntry> entries;
  for (int i = 0; i < 200; ++i) entries.push_back(File(StrFormat("f%d", i), ""));
  ExpectRefused(Extract(BuildTar(entries), {"--max-entries=100"}), "more than 100 entries");
}

TEST_F(MaliciousTest, TruncatedStreams) {
  MOAT_REQUIRE_ROOT();
  std::string tar = BuildTar({File("a", std::string(200000, 'a')), File("b", "b")});
  ExpectRefused(Extract(tar.substr(0, tar.size() / 2)), "runcated");
  Reset();
  std::string gz = GzipCompress(tar);
  auto r = Extract(gz.substr(0, gz.size() / 2));
  EXPECT_FALSE(r.ok()) << r.reply;
  EXPECT_NE(r.reply.find("\"error\""), std::string::npos) << r.reply;
  Reset();
  std::string zst = ZstdCompress(tar);
  r = Extract(zst.substr(0, zst.size() - 10));
  EXPECT_FALSE(r.ok()) << r.reply;
  EXPECT_NE(r.reply.find("\"error\""), std::string::npos) << r.reply;
}

TEST_F(MaliciousTest, GarbageData) {
  MOAT_REQUIRE_ROOT();
  std::string junk;
  uint32_t x = 12345;
  for (int i = 0; i < 65536; ++i) {
    x = x * 1103515245 + 12345;
    junk += static_cast<char>(x >> 24);
  }
  auto r = Extract(junk);
  EXPECT_FALSE(r.ok()) << r.reply;
  EXPECT_NE(r.reply.find("\"error\""), std::string::npos) << r.reply;
  EXPECT_TRUE(List(root_).empty());
  Reset();
  // A gzip header followed by junk.
  r = Extract(std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10) + junk);
  EXPECT_FALSE(r.ok()) << r.reply;
  EXPECT_NE(r.reply.find("\"error\""), std::string::npos) << r.reply;
}

TEST_F(MaliciousTest, SymlinkLoop) {
  MOAT_REQUIRE_ROOT();
  ExpectRefused(Extract(BuildTar({Symlink("a", "b"), Symlink("b", "a"), File("a/x", "x")})),
                "Too many levels of symbolic links");
}

TEST_F(MaliciousTest, DirectoryReplacedBySymlink) {
  MOAT_REQUIRE_ROOT();
  ExpectRefused(Extract(BuildTar({Dir("d"), File("d/keep", "k"), Symlink("d", outside_),
                                  File("d/sentinel", "evil")})),
                "not a directory");
  Reset();
  // To a directory that exists inside: entries follow it, inside.
  auto r = Extract(BuildTar({Dir("real"), Dir("d"), Symlink("d", "/real"), File("d/x", "x")}));
  ASSERT_TRUE(r.ok()) << r.reply;
  EXPECT_EQ(ReadFileOrDie(root_ + "/real/x"), "x");
}

TEST_F(MaliciousTest, WhiteoutTricks) {
  MOAT_REQUIRE_ROOT();
  ExpectRefused(Extract(BuildTar({File(".wh..", "")})), "invalid whiteout");
  Reset();
  ExpectRefused(Extract(BuildTar({Dir("a"), File("a/.wh...", "")})), "invalid whiteout");
  Reset();
  // "../.wh.outside" and "../../outside/.wh.sentinel": neutralised to whiteouts in the root.
  auto r = Extract(BuildTar({File("../../outside/.wh.sentinel", ""), File("../.wh.outside", "")}));
  ASSERT_TRUE(r.ok()) << r.reply;
  struct stat st;
  ASSERT_EQ(lstat((root_ + "/outside").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}

TEST_F(MaliciousTest, EntryNamedDotDot) {
  MOAT_REQUIRE_ROOT();
  ExpectRefused(Extract(BuildTar({File("..", "x")})), "names the layer root");
  Reset();
  ExpectRefused(Extract(BuildTar({Symlink("..", "/etc")})), "names the layer root");
  Reset();
  // A directory named ".." is the root's own entry, like "./".
  auto r = Extract(BuildTar({Dir(".."), File("../f", "x")}));
  ASSERT_TRUE(r.ok()) << r.reply;
  EXPECT_EQ(ReadFileOrDie(root_ + "/f"), "x");
}

// A layer of many chunks through the confined binary: the reader thread under the seccomp
// filter, and the diff id over the padding after the end-of-archive blocks.
TEST_F(MaliciousTest, MultiChunkLayerExtractsConfined) {
  MOAT_REQUIRE_ROOT();
  std::string big = Noise(6 << 20, 5);
  std::string tar =
      BuildTar({Dir("d"), File("d/big", big), File("d/after", "a")}) + std::string(2 << 20, '\0');
  auto r = Extract(GzipCompress(tar));
  ASSERT_TRUE(r.ok()) << r.reply;
  EXPECT_NE(r.reply.find("\"diff_id\":\"" + Digest(tar) + "\""), std::string::npos) << r.reply;
  EXPECT_EQ(ReadFileOrDie(root_ + "/d/big"), big);
  EXPECT_EQ(ReadFileOrDie(root_ + "/d/after"), "a");
  Reset();
  // A bad entry first, megabytes behind it: the entry's error, and the process exits.
  tar = BuildTar({File(std::string(300, 'n'), "x"), File("big", big)});
  ExpectRefused(Extract(GzipCompress(tar)), "File name too long");
}

// Confined without root, RLIMIT_NPROC 0 refuses the reader thread (ConfinedChild): the layer
// is then read on the parsing thread, with the same result.
TEST_F(MaliciousTest, ExtractsWithoutTheReaderThread) {
  MOAT_REQUIRE_ROOT();
  ASSERT_EQ(chmod(root_.c_str(), 0777), 0);
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0755), 0);
  std::string big = Noise(3 << 20, 9);
  std::string tar = BuildTar({File("big", big), File("small", "s")}) + std::string(4096, '\0');
  std::string blob = tmp_.path() + "/blobs/serial";
  WriteFileOrDie(blob, GzipCompress(tar));
  auto in = sys::open(blob, O_RDONLY);
  auto dir = sys::open(root_, O_RDONLY | O_DIRECTORY);
  auto out = sys::pipe2(0);
  ASSERT_TRUE(in && dir && out);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (dup2(in->get(), 0) < 0 || dup2(out->second.get(), 1) < 0) _exit(90);
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(91);
    auto plan = PlanConfinement({});
    if (!plan) _exit(92);
    if (!EnterConfinement(*plan, dir->get(), nullptr)) _exit(93);
    ExtractOptions o;
    o.ownership = Ownership::kIgnore;
    o.xattr_namespace = "user";
    auto r = ExtractLayer(0, dir->get(), o);
    std::string reply = r ? r->diff_id : "error: " + r.error().message;
    _exit(sys::WriteAll(1, reply) ? 0 : 94);
  }
  out->second.reset();
  std::string reply = ReadToEof(out->first.get());
  int status;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(reply, Digest(tar));
  EXPECT_EQ(ReadFileOrDie(root_ + "/big"), big);
  EXPECT_EQ(ReadFileOrDie(root_ + "/small"), "s");
}

TEST_F(MaliciousTest, BundledLayerExtractsConfined) {
  MOAT_REQUIRE_ROOT();
  // The bundled busybox image's layer, straight from the docker-archive.
  std::string archive = ReadFileOrDie(MOAT_BUNDLED_IMAGE);
  struct archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  ASSERT_EQ(archive_read_open_memory(a, archive.data(), archive.size()), ARCHIVE_OK);
  std::string layer;
  struct archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    if (archive_entry_size(e) > static_cast<la_int64_t>(layer.size())) {
      layer.resize(archive_entry_size(e));
      ASSERT_EQ(archive_read_data(a, layer.data(), layer.size()),
                static_cast<la_ssize_t>(layer.size()));
    }
  }
  archive_read_free(a);
  auto r = Extract(GzipCompress(layer));
  ASSERT_TRUE(r.ok()) << r.reply;
  EXPECT_NE(r.reply.find(Digest(layer)), std::string::npos) << r.reply;
  struct stat st;
  ASSERT_EQ(lstat((root_ + "/bin/sh").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

}  // namespace
}  // namespace moat::image
