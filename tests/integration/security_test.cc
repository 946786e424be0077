// What the container's process can and cannot do: capabilities, no_new_privs, seccomp, masked
// and read-only paths, the read-only rootfs, user namespaces, and the CVE classes the runtime
// defends against (symlinked mount targets, leaked fds, a dumpable runtime in the container, a
// runtime binary overwritten through /proc/<pid>/exe).

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <set>
#include <string>

#include "support/runtime_fixture.h"

namespace moat::testing {
namespace {

using SecurityTest = RuntimeTest;

constexpr const char* kDefaultCaps = "00000000800405fb";
constexpr const char* kNoCaps = "0000000000000000";

// A busybox rootfs of its own in `dir` (busybox hard-linked from the shared rootfs).
void BuildRootfs(const std::string& shared, const std::string& dir) {
  for (const char* d : {"", "/bin", "/dev", "/proc", "/sys", "/tmp", "/etc", "/root"})
    ASSERT_EQ(mkdir((dir + d).c_str(), 0755), 0) << dir << d << ": " << strerror(errno);
  ASSERT_EQ(link((shared + "/bin/busybox").c_str(), (dir + "/bin/busybox").c_str()), 0)
      << strerror(errno);
  for (const char* applet : {"sh", "ls", "cat", "touch", "grep", "echo", "mount", "stat"})
    ASSERT_EQ(symlink("busybox", (dir + "/bin/" + applet).c_str()), 0) << strerror(errno);
}

// A copy of the runtime binary in `dir`, which the tests below attack or inspect instead of the
// build's: a failure cannot corrupt the binary the other tests run.
std::string CopyRuntime(const std::string& from, const std::string& dir) {
  std::string bytes = ReadFileOrEmpty(from);
  EXPECT_FALSE(bytes.empty()) << from;
  std::string copy = dir + "/moat-runtime";
  EXPECT_TRUE(WriteFile(copy, bytes, 0755)) << copy << ": " << strerror(errno);
  return copy;
}

// The pid of the first process whose command line is `cmdline` (NULs as spaces), 0 if none.
pid_t FindProcess(const std::string& cmdline) {
  DIR* d = opendir("/proc");
  if (!d) return 0;
  pid_t found = 0;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end) continue;
    if (CmdlineOf(static_cast<pid_t>(pid)) == cmdline) {
      found = static_cast<pid_t>(pid);
      break;
    }
  }
  closedir(d);
  return found;
}

std::string ReadLink(const std::string& path) {
  char buf[PATH_MAX];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf);
  return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

TEST_F(SecurityTest, DefaultSpecCapabilitiesNoNewPrivsAndSeccomp) {
  std::string id = NewId();
  CommandResult r = RunContainer(Config({"cat", "/proc/self/status"}), id);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(StatusField(r.out, "CapEff"), kDefaultCaps);
  EXPECT_EQ(StatusField(r.out, "CapPrm"), kDefaultCaps);
  EXPECT_EQ(StatusField(r.out, "CapBnd"), kDefaultCaps);
  EXPECT_EQ(StatusField(r.out, "CapInh"), kNoCaps);
  EXPECT_EQ(StatusField(r.out, "CapAmb"), kNoCaps);
  EXPECT_EQ(StatusField(r.out, "NoNewPrivs"), "1");
  EXPECT_EQ(StatusField(r.out, "Seccomp"), "2");
}

TEST_F(SecurityTest, AmbientAndInheritableCapabilitiesAreApplied) {
  std::string id = NewId();
  json c = Config({"cat", "/proc/self/status"});
  for (const char* set : {"bounding", "effective", "permitted", "inheritable", "ambient"})
    c["process"]["capabilities"][set].push_back("CAP_NET_RAW");
  CommandResult r = RunContainer(c, id);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  // CAP_NET_RAW is bit 13: 0x800405fb | 0x2000.
  EXPECT_EQ(StatusField(r.out, "CapEff"), "00000000800425fb");
  EXPECT_EQ(StatusField(r.out, "CapPrm"), "00000000800425fb");
  EXPECT_EQ(StatusField(r.out, "CapBnd"), "00000000800425fb");
  EXPECT_EQ(StatusField(r.out, "CapInh"), "0000000000002000");
  EXPECT_EQ(StatusField(r.out, "CapAmb"), "0000000000002000");
}

TEST_F(SecurityTest, SeccompRuleWithErrnoDeniesMkdir) {
  std::string id = NewId();
  json c = Config({"sh", "-c",
                   "mkdir /tmp/x; echo mkdir=$?; test -d /tmp/x && echo created; "
                   "touch /tmp/y && echo touched"});
  AddTmpfs(c, "/tmp");
  c["linux"]["seccomp"] = {
      {"defaultAction", "SCMP_ACT_ALLOW"},
      {"syscalls",
       {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 95}}}}};
  CommandResult r = RunContainer(c, id);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("mkdir=1\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("created"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("Operation not supported"), std::string::npos) << r.err;  // EOPNOTSUPP
  // Only the listed syscalls are denied.
  EXPECT_NE(r.out.find("touched"), std::string::npos) << r.out;
}

TEST_F(SecurityTest, DefaultSeccompProfileDeniesUnshare) {
  // Control: without seccomp, an unprivileged user namespace can be created in the container
  // (no capability is needed for CLONE_NEWUSER), so a refusal below is seccomp's doing.
  std::string control_id = NewId();
  json control = Config({"unshare", "-U", "true"});
  control["linux"].erase("seccomp");
  CommandResult allowed = RunContainer(control, control_id);
  ASSERT_EQ(allowed.exit_code, 0) << "unshare -U without seccomp: " << allowed.Describe();

  std::string id = NewId();
  CommandResult r = RunContainer(Config({"unshare", "-U", "true"}), id);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("unshare"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Operation not permitted"), std::string::npos) << r.err;
}

TEST_F(SecurityTest, MaskedAndReadonlyPathsAndReadonlyRootfs) {
  // /proc/kcore exists only with CONFIG_PROC_KCORE; test every masked /proc file the host has,
  // proving on the host that it is not empty there.
  std::string script;
  std::vector<std::string> masked_files;
  for (const char* f : {"/proc/kcore", "/proc/timer_list", "/proc/keys", "/proc/sched_debug"}) {
    if (!PathExists(f)) continue;
    if (std::string(f) != "/proc/kcore" && ReadFileOrEmpty(f).empty()) continue;
    masked_files.push_back(f);
    script += std::string("echo ") + f + "=$(wc -c < " + f + "); ";
  }
  ASSERT_FALSE(masked_files.empty()) << "none of the masked /proc files exists on this host";
  ASSERT_FALSE(ReadFileOrEmpty("/proc/timer_list").empty());
  script +=
      "echo firmware=$(ls -A /sys/firmware | wc -l); "
      "echo x > /proc/sys/kernel/domainname; echo domainname=$?; "
      "touch /x; echo root=$?; "
      "touch /tmp/ok && echo tmp=ok";
  std::string id = NewId();
  json c = Config({"sh", "-c", script});
  AddTmpfs(c, "/tmp");
  CommandResult r = RunContainer(c, id);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  for (const auto& f : masked_files)
    EXPECT_NE(r.out.find(f + "=0\n"), std::string::npos) << f << " is not masked:\n" << r.out;
  // The host has entries there (acpi, memmap...): empty inside means masked.
  ASSERT_FALSE(RunCommand({"/bin/ls", "-A", "/sys/firmware"}).out.empty());
  EXPECT_NE(r.out.find("firmware=0\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("domainname=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("root=1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tmp=ok\n"), std::string::npos) << r.out;
  // Both refusals are EROFS.
  size_t first = r.err.find("Read-only file system");
  ASSERT_NE(first, std::string::npos) << r.err;
  EXPECT_NE(r.err.find("Read-only file system", first + 1), std::string::npos) << r.err;
  EXPECT_FALSE(PathExists(rootfs() + "/x"));
  EXPECT_FALSE(PathExists(rootfs() + "/tmp/ok"));
}

TEST_F(SecurityTest, UserNamespaceMapsRootToAnUnprivilegedHostUser) {
  ASSERT_TRUE(PathExists("/proc/self/ns/user"));
  auto userns_config = [&](std::vector<std::string> args) {
    json c = Config(std::move(args));
    c["linux"]["namespaces"].push_back({{"type", "user"}});
    c["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
    c["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
    // The default range "0 2147483647" names gids this namespace does not map: the kernel
    // refuses it (EINVAL). Keep the sysctl, within the mapped range.
    c["linux"]["sysctl"]["net.ipv4.ping_group_range"] = "0 65535";
    return c;
  };
  std::string id = NewId();
  CommandResult r = RunContainer(userns_config({"sh", "-c", "id -u; cat /proc/self/uid_map"}), id);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  auto lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  EXPECT_EQ(lines[0], "0");
  // uid_map pads its columns: compare the words.
  auto words = Words(lines[1]);
  EXPECT_EQ(words, (std::vector<std::string>{"0", "100000", "65536"})) << lines[1];

  // On the host the container's root is uid 100000.
  std::string id2 = NewId();
  WriteConfig(userns_config({"sleep", "30"}));
  CommandResult created = Runtime({"create", "--bundle", bundle(), id2});
  ASSERT_EQ(created.exit_code, 0) << created.Describe();
  pid_t pid = State(id2).value("pid", 0);
  ASSERT_GT(pid, 0);
  std::string proc = "/proc/" + std::to_string(pid);
  // Before start the process runs the runtime's code, non-dumpable: its /proc files belong to
  // the host's root, not to the container's root (CVE-2019-5736 class). (/proc/<pid> itself
  // always shows the euid; the files in it follow dumpability.)
  struct stat st {};
  ASSERT_EQ(stat((proc + "/environ").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 0u) << "the runtime's process in the container is dumpable";
  ASSERT_EQ(Runtime({"start", id2}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return CmdlineOf(pid) == "sleep 30"; }));
  std::string status = ReadFileOrEmpty(proc + "/status");
  EXPECT_EQ(StatusField(status, "Uid"), "100000\t100000\t100000\t100000");
  EXPECT_EQ(StatusField(status, "Gid"), "100000\t100000\t100000\t100000");
  // After exec the user's program is dumpable again: /proc shows its own (mapped) owner.
  ASSERT_EQ(stat((proc + "/environ").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 100000u);
}

// CVE-2021-30465 class: a symlink in the image must not redirect a mount onto the host.
TEST_F(SecurityTest, SymlinkInRootfsCannotRedirectAMountToTheHost) {
  std::string evil_rootfs = scratch() + "/evil-rootfs";
  std::string host_dir = scratch() + "/host-target";
  ASSERT_NO_FATAL_FAILURE(BuildRootfs(rootfs(), evil_rootfs));
  ASSERT_EQ(mkdir(host_dir.c_str(), 0755), 0);
  ASSERT_EQ(symlink(host_dir.c_str(), (evil_rootfs + "/evil").c_str()), 0);

  std::string id = NewId();
  json c =
      Config({"sh", "-c",
              "grep ' " + host_dir + "/x ' /proc/self/mountinfo; touch /evil/x/f && echo wrote"});
  c["root"]["path"] = evil_rootfs;
  AddTmpfs(c, "/evil/x");
  CommandResult r = RunContainer(c, id);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  // Inside, the tmpfs is where the symlink leads within the rootfs, and it is usable.
  EXPECT_NE(r.out.find(" tmpfs "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wrote"), std::string::npos) << r.out;
  // On the host, nothing was created or mounted in the directory the symlink names...
  EXPECT_FALSE(PathExists(host_dir + "/x"));
  EXPECT_TRUE(MountsMentioning(host_dir).empty());
  // ...the mount point was made inside the rootfs instead.
  EXPECT_TRUE(PathExists(evil_rootfs + host_dir + "/x")) << evil_rootfs + host_dir + "/x";
}

// CVE-2024-21626 class: no fd of the runtime's caller reaches the container's program.
TEST_F(SecurityTest, InheritedFdsDoNotReachTheContainer) {
  int host_fd = open("/etc/hostname", O_RDONLY);  // deliberately without O_CLOEXEC
  ASSERT_GE(host_fd, 0);
  ASSERT_EQ(dup2(host_fd, 7), 7);
  close(host_fd);
  struct FdGuard {
    ~FdGuard() { close(7); }
  } guard;
  ASSERT_EQ(fcntl(7, F_GETFD) & FD_CLOEXEC, 0);

  std::string id = NewId();
  CommandResult r = RunContainer(Config({"ls", "/proc/self/fd"}), id);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::set<std::string> fds;
  for (const auto& l : Lines(r.out)) fds.insert(Trim(l));
  // 0 1 2, plus the directory fd `ls` itself opens (3).
  EXPECT_TRUE(fds == (std::set<std::string>{"0", "1", "2"}) ||
              fds == (std::set<std::string>{"0", "1", "2", "3"}))
      << r.out;
  EXPECT_EQ(fds.count("7"), 0u);

  // The same through exec, which enters a running container from our process tree.
  std::string id2 = NewId();
  ASSERT_GT(CreateAndStart(Config({"sleep", "30"}), id2), 0);
  CommandResult e = Runtime({"exec", id2, "ls", "/proc/self/fd"});
  ASSERT_EQ(e.exit_code, 0) << e.Describe();
  std::set<std::string> exec_fds;
  for (const auto& l : Lines(e.out)) exec_fds.insert(Trim(l));
  EXPECT_TRUE(exec_fds == (std::set<std::string>{"0", "1", "2"}) ||
              exec_fds == (std::set<std::string>{"0", "1", "2", "3"}))
      << e.out;
}

// CVE-2019-5736: the container's program is a script "#!/proc/self/exe", so the runtime's clone
// that executes it runs the host's runtime binary in the container; another container process
// holds /proc/<pid>/exe open and, once that process is gone, reopens it for writing. The
// runtime must be running from a read-only mount of its binary by then: the write fails with
// EROFS and the binary is unchanged. Aimed at a copy of the runtime (see CopyRuntime).
TEST_F(SecurityTest, RuntimeBinaryCannotBeOverwrittenThroughProcSelfExe) {
  std::string runtime = CopyRuntime(RuntimePath(), scratch());
  const std::string original = ReadFileOrEmpty(runtime);
  ASSERT_FALSE(original.empty());
  struct statvfs vfs {};
  ASSERT_EQ(statvfs(runtime.c_str(), &vfs), 0) << strerror(errno);
  ASSERT_FALSE(vfs.f_flag & ST_RDONLY) << "the copy must start on a writable mount";

  std::string evil_rootfs = scratch() + "/evil-rootfs";
  ASSERT_NO_FATAL_FAILURE(BuildRootfs(rootfs(), evil_rootfs));
  for (const char* applet : {"sleep", "kill", "printf"})
    ASSERT_EQ(symlink("busybox", (evil_rootfs + "/bin/" + applet).c_str()), 0) << strerror(errno);
  // The interpreter line's argument makes the runtime, once running in the container as
  // "update /evil -r /tmp/fifo", block opening the FIFO: the attacker needs no race to find it.
  ASSERT_TRUE(WriteFile(evil_rootfs + "/evil", "#!/proc/self/exe update\n", 0755));
  ASSERT_EQ(mkfifo((evil_rootfs + "/tmp/fifo").c_str(), 0600), 0) << strerror(errno);
  const std::string attacker =
      "pid=; i=0; "
      "while [ -z \"$pid\" ] && [ $i -lt 1000 ]; do "
      "  for d in /proc/[0-9]*; do "
      "    [ \"$(cat $d/comm 2>/dev/null)\" = evil ] && pid=${d#/proc/}; "
      "  done; i=$((i+1)); sleep 0.01; "
      "done; "
      "[ -n \"$pid\" ] || { echo nopid > /tmp/result; exit 1; }; "
      "exec 3</proc/$pid/exe || { echo noopen > /tmp/result; exit 1; }; "
      "stat -L -c %i /proc/self/fd/3 > /tmp/inode; "
      "kill -9 $pid; "
      // ETXTBSY while a process still executes the binary (the host's `exec`): retry.
      "i=0; while [ $i -lt 1000 ]; do "
      "  if ( printf PWNED >>/proc/self/fd/3 ) 2>/tmp/err; then echo write=ok > /tmp/result; "
      "exit 0; fi; "
      "  grep -q busy /tmp/err || break; i=$((i+1)); sleep 0.01; "
      "done; "
      "echo \"write=fail $(cat /tmp/err)\" > /tmp/result";

  std::string id = NewId();
  json c = Config({"sh", "-c", attacker});
  c["root"]["path"] = evil_rootfs;
  c["root"]["readonly"] = false;
  WriteConfig(c);
  auto run = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {runtime, "--root", state_root()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, CommandOptions{std::chrono::milliseconds(30000), ""});
  };
  CommandResult created = run({"create", "--bundle", bundle(), id});
  ASSERT_EQ(created.exit_code, 0) << created.Describe();
  CommandResult started = run({"start", id});
  ASSERT_EQ(started.exit_code, 0) << started.Describe();

  CommandResult exec = run({"exec", id, "/evil", "-r", "/tmp/fifo"});
  EXPECT_FALSE(exec.timed_out) << exec.Describe();
  ASSERT_TRUE(WaitFor([&] { return PathExists(evil_rootfs + "/tmp/result"); }, 15000))
      << "the attacker did not finish; exec: " << exec.Describe();
  std::string result = ReadFileOrEmpty(evil_rootfs + "/tmp/result");
  // The attack is real: the container held the host's binary itself (same inode)...
  ASSERT_EQ(Trim(ReadFileOrEmpty(evil_rootfs + "/tmp/inode")), std::to_string(InodeOf(runtime)))
      << result;
  // ...and could not write it.
  EXPECT_EQ(result.rfind("write=fail", 0), 0u) << result;
  EXPECT_NE(result.find("Read-only file system"), std::string::npos) << result;
  EXPECT_TRUE(ReadFileOrEmpty(runtime) == original) << "the runtime binary was modified";
}

// While a command that enters a container runs, its binary is on a read-only mount; and a
// binary already on a read-only mount is not re-executed (its exe still names its path, where
// the re-executed one names the root of a detached mount).
TEST_F(SecurityTest, RuntimeRunsFromAReadOnlyMountOfItsBinary) {
  std::string dir = scratch() + "/bin";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << strerror(errno);
  std::string runtime = CopyRuntime(RuntimePath(), dir);
  std::string id = NewId();
  ASSERT_GT(CreateAndStart(Config({"sleep", "30"}), id), 0);

  struct Case {
    const char* name;
    std::vector<std::string> argv;
    bool already_read_only;
  };
  const std::string sleep_args = "sleep 29";
  std::vector<Case> cases = {
      {"writable mount", {runtime, "--root", state_root(), "exec", id, "sleep", "29"}, false},
      // In a mount namespace of its own, the copy's directory bind-mounted read-only.
      {"read-only mount",
       {"/usr/bin/unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
        "mount --bind \"$0\" \"$0\" && mount -o remount,bind,ro \"$0\" && exec \"$@\"", dir,
        runtime, "--root", state_root(), "exec", id, "sleep", "29"},
       true},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.name);
    auto cmd = std::make_unique<Command>(k.argv);
    // The exec'd process runs: the runtime is past its seal and waits for it.
    pid_t inner = 0;
    ASSERT_TRUE(WaitFor([&] { return (inner = FindProcess(sleep_args)) != 0; }))
        << cmd->Wait().Describe();
    std::string exe = "/proc/" + std::to_string(cmd->pid()) + "/exe";
    struct statvfs vfs {};
    ASSERT_EQ(statvfs(exe.c_str(), &vfs), 0) << exe << ": " << strerror(errno);
    EXPECT_TRUE(vfs.f_flag & ST_RDONLY) << "the runtime runs from a writable mount";
    if (k.already_read_only)
      EXPECT_EQ(ReadLink(exe), runtime) << "re-executed although already read-only";
    else
      EXPECT_NE(ReadLink(exe), runtime) << "not re-executed from a detached mount";
    kill(inner, SIGKILL);
    CommandResult r = cmd->Wait();
    EXPECT_FALSE(r.timed_out) << r.Describe();
  }
}

}  // namespace
}  // namespace moat::testing
