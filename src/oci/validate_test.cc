#include "oci/validate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "oci/spec_json.h"

namespace moat::oci {
namespace {

using ::testing::HasSubstr;

// A valid spec in the shape `runc spec --rootless` writes (user namespace with mappings).
constexpr const char kRunclikeConfig[] = R"json({
  "ociVersion": "1.0.2-dev",
  "process": {
    "terminal": false,
    "user": {"uid": 0, "gid": 0},
    "args": ["sh"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
    "noNewPrivileges": true
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "runc",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/sys", "type": "none", "source": "/sys",
     "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
  ],
  "linux": {
    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
    "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
    "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
                   {"type": "cgroup"}, {"type": "user"}],
    "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                    "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
    "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
  }
})json";

// A valid, fully-populated spec built in code; each test breaks one thing.
Spec ValidSpec() {
  Spec s;
  s.oci_version = "1.2.0";
  s.root = Root{"rootfs", false};
  s.hostname = "box";
  Process& p = s.process.emplace();
  p.args = {"/bin/sh", "-c", "true"};
  p.cwd = "/";
  p.env = {"PATH=/bin", "EMPTY="};
  p.user.umask = 022;
  p.capabilities = Capabilities{{"CAP_KILL", "CAP_CHOWN"}, {"CAP_KILL"}, {}, {"CAP_KILL"}, {}};
  p.rlimits = {Rlimit{"RLIMIT_NOFILE", 1024, 4096}, Rlimit{"RLIMIT_CORE", 0, 0}};
  p.oom_score_adj = -1000;
  p.scheduler = Scheduler{"SCHED_OTHER", 10, 0, {"SCHED_FLAG_RESET_ON_FORK"}, 0, 0, 0};
  p.io_priority = IoPriority{"IOPRIO_CLASS_BE", 7};
  s.mounts = {Mount{"/proc", "proc", "proc", {}, {}, {}}, Mount{"/data",
                                                                "none",
                                                                "/srv",
                                                                {"rbind", "idmap"},
                                                                {IdMapping{0, 1000, 10}},
                                                                {IdMapping{0, 1000, 10}}}};
  Hooks& h = s.hooks.emplace();
  h.prestart = {Hook{"/usr/bin/hook", {"hook"}, {"A=1"}, 5}};
  h.poststop = {Hook{"/usr/bin/cleanup", {}, {}, std::nullopt}};
  s.annotations["com.example"] = "x";
  Linux& l = s.linux.emplace();
  l.namespaces = {Namespace{"pid", ""},    Namespace{"network", ""}, Namespace{"ipc", ""},
                  Namespace{"uts", ""},    Namespace{"mount", ""},   Namespace{"user", ""},
                  Namespace{"cgroup", ""}, Namespace{"time", ""}};
  l.uid_mappings = {IdMapping{0, 100000, 65536}};
  l.gid_mappings = {IdMapping{0, 100000, 65536}};
  l.time_offsets["monotonic"] = TimeOffset{10, 5};
  l.devices = {Device{"c", "/dev/fuse", 10, 229, 0666u, 0u, 0u}};
  l.cgroups_path = "/moat/box";
  l.rootfs_propagation = "rprivate";
  l.sysctl = {{"net.ipv4.ip_forward", "1"},
              {"kernel.shmmax", "4096"},
              {"fs.mqueue.msg_max", "10"},
              {"net/ipv4/conf/eth0.100/forwarding", "1"}};
  l.masked_paths = {"/proc/kcore"};
  l.readonly_paths = {"/proc/sys"};
  l.personality = Personality{"LINUX32", {}};
  Resources& r = l.resources.emplace();
  r.devices = {DeviceCgroupRule{false, "", std::nullopt, std::nullopt, "rwm"},
               DeviceCgroupRule{true, "c", 10, 229, "rw"}};
  r.memory = MemoryResources{};
  r.memory->limit = -1;
  r.memory->swappiness = 100;
  r.cpu = CpuResources{};
  r.cpu->cpus = "0-3,7";
  r.hugepage_limits = {HugepageLimit{"2MB", 1 << 20}, HugepageLimit{"1GB", 0}};
  r.unified = {{"memory.high", "1G"}, {"io.max", "8:0 rbps=1\n8:16 wiops=2"}};
  Seccomp& sc = l.seccomp.emplace();
  sc.default_action = "SCMP_ACT_ERRNO";
  sc.default_errno_ret = 1;
  sc.architectures = {"SCMP_ARCH_X86_64"};
  sc.flags = {"SECCOMP_FILTER_FLAG_LOG"};
  sc.syscalls = {
      SeccompSyscall{{"read", "write"}, "SCMP_ACT_ALLOW", std::nullopt, {}},
      SeccompSyscall{{"socket"}, "SCMP_ACT_ERRNO", 97u, {SeccompArg{0, 16, 0, "SCMP_CMP_EQ"}}}};
  return s;
}

// Applies `mutate` to a valid spec and expects ValidateSpec to fail with exactly `message`.
void ExpectInvalid(const std::function<void(Spec&)>& mutate, const std::string& message) {
  Spec s = ValidSpec();
  mutate(s);
  Result<void> r = ValidateSpec(s);
  ASSERT_FALSE(r.has_value()) << "expected: " << message;
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(r.error().message, message);
}

TEST(ValidateSpecTest, AcceptsValidSpecs) {
  Result<void> r = ValidateSpec(ValidSpec());
  EXPECT_TRUE(r.has_value()) << r.error().message;

  Result<Spec> parsed = ParseSpec(kRunclikeConfig);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().message;
  Result<void> v = ValidateSpec(*parsed);
  EXPECT_TRUE(v.has_value()) << v.error().message;
  EXPECT_TRUE(RequireProcess(*parsed).has_value());
}

TEST(ValidateSpecTest, AcceptsSpecWithoutProcessOrLinux) {
  Spec s;
  s.oci_version = "1.0.0";
  s.root = Root{"/abs/rootfs", true};
  EXPECT_TRUE(ValidateSpec(s).has_value());
  Result<void> r = RequireProcess(s);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "process: required");
}

TEST(ValidateSpecTest, Version) {
  ExpectInvalid([](Spec& s) { s.oci_version.clear(); }, "ociVersion: required");
  ExpectInvalid([](Spec& s) { s.oci_version = "2.0"; }, "ociVersion: unsupported version \"2.0\"");
  ExpectInvalid([](Spec& s) { s.oci_version = "0.1.0"; },
                "ociVersion: unsupported version \"0.1.0\"");
  ExpectInvalid([](Spec& s) { s.oci_version = "latest"; },
                "ociVersion: unsupported version \"latest\"");
  ExpectInvalid([](Spec& s) { s.oci_version = "1"; }, "ociVersion: unsupported version \"1\"");
  for (const char* ok : {"1.0", "1.0.0", "1.0.2-dev", "1.1.0-rc.1", "1.3.0", "1.2.1+build"}) {
    Spec s = ValidSpec();
    s.oci_version = ok;
    EXPECT_TRUE(ValidateSpec(s).has_value()) << ok;
  }
}

TEST(ValidateSpecTest, Root) {
  ExpectInvalid([](Spec& s) { s.root.reset(); }, "root: required");
  ExpectInvalid([](Spec& s) { s.root->path.clear(); }, "root.path: required");
}

TEST(ValidateSpecTest, Mounts) {
  ExpectInvalid(
      [](Spec& s) {
        s.mounts.push_back(Mount{"tmp", "tmpfs", "tmpfs", {}, {}, {}});
      },
      "mounts[2].destination: must be an absolute path, got \"tmp\"");
  ExpectInvalid([](Spec& s) { s.mounts[0].destination = std::string("/proc\0x", 7); },
                "mounts[0].destination: contains a NUL byte");
  ExpectInvalid([](Spec& s) { s.mounts[1].gid_mappings.clear(); },
                "mounts[1]: uidMappings and gidMappings must be given together");
  ExpectInvalid([](Spec& s) { s.mounts[1].uid_mappings[0].size = 0; },
                "mounts[1].uidMappings[0].size: must be greater than zero");
}

TEST(ValidateSpecTest, MountIdMappings) {
  ExpectInvalid([](Spec& s) { s.mounts[1].uid_mappings.clear(); },
                "mounts[1]: uidMappings and gidMappings must be given together");
  ExpectInvalid([](Spec& s) { s.mounts[1].gid_mappings[0].size = 0; },
                "mounts[1].gidMappings[0].size: must be greater than zero");
  ExpectInvalid([](Spec& s) { s.mounts[1].uid_mappings[0] = IdMapping{4294967295u, 0, 2}; },
                "mounts[1].uidMappings[0]: id range overflows 32 bits");
  ExpectInvalid(
      [](Spec& s) {
        s.mounts[0].uid_mappings = {IdMapping{0, 1000, 1}};
        s.mounts[0].gid_mappings = {IdMapping{0, 1000, 1}};
      },
      "mounts[0].uidMappings: only bind mounts can be id-mapped (type \"proc\")");
  ExpectInvalid(
      [](Spec& s) { s.mounts[1].uid_mappings.push_back(IdMapping{5, 5000, 10}); },
      "mounts[1].uidMappings[1]: containerID range overlaps that of mounts[1].uidMappings[0]");
  ExpectInvalid(
      [](Spec& s) { s.mounts[1].gid_mappings.push_back(IdMapping{100, 1009, 1}); },
      "mounts[1].gidMappings[1]: hostID range overlaps that of mounts[1].gidMappings[0]");
  // Adjacent ranges and a "bind" type with no bind option are fine.
  Spec ok = ValidSpec();
  ok.mounts[1].uid_mappings.push_back(IdMapping{10, 1010, 5});
  ok.mounts[1].type = "bind";
  ok.mounts[1].options = {"idmap"};
  Result<void> r = ValidateSpec(ok);
  EXPECT_TRUE(r.has_value()) << r.error().message;
}

TEST(ValidateSpecTest, Process) {
  ExpectInvalid([](Spec& s) { s.process->args.clear(); }, "process.args: must not be empty");
  ExpectInvalid([](Spec& s) { s.process->args[0].clear(); }, "process.args[0]: must not be empty");
  ExpectInvalid([](Spec& s) { s.process->cwd = "tmp"; },
                "process.cwd: must be an absolute path, got \"tmp\"");
  ExpectInvalid([](Spec& s) { s.process->cwd.clear(); },
                "process.cwd: must be an absolute path, got \"\"");
  ExpectInvalid([](Spec& s) { s.process->env.push_back("NOEQUALS"); },
                "process.env[2]: expected NAME=VALUE, got \"NOEQUALS\"");
  ExpectInvalid([](Spec& s) { s.process->env.push_back("=x"); },
                "process.env[2]: expected NAME=VALUE, got \"=x\"");
  ExpectInvalid([](Spec& s) { s.process->args.push_back(std::string("a\0b", 3)); },
                "process.args[3]: contains a NUL byte");
  ExpectInvalid([](Spec& s) { s.process->user.umask = 01000; },
                "process.user.umask: must be at most 0777, got 01000");
  ExpectInvalid([](Spec& s) { s.process->oom_score_adj = 1001; },
                "process.oomScoreAdj: must be in [-1000, 1000], got 1001");
  ExpectInvalid([](Spec& s) { s.process->oom_score_adj = -1001; },
                "process.oomScoreAdj: must be in [-1000, 1000], got -1001");
}

TEST(ValidateSpecTest, Capabilities) {
  ExpectInvalid([](Spec& s) { s.process->capabilities->bounding[1] = "CAP_FOO"; },
                "process.capabilities.bounding[1]: unknown capability \"CAP_FOO\"");
  ExpectInvalid([](Spec& s) { s.process->capabilities->ambient.push_back("CAP_\x01"); },
                "process.capabilities.ambient[0]: unknown capability \"CAP_\\x01\"");
  ExpectInvalid(
      [](Spec& s) {
        s.process->capabilities->inheritable = {"CAP_KILL", "41"};
      },
      "process.capabilities.inheritable[1]: unknown capability \"41\"");
  // The lenient spellings CapabilityFromName accepts are valid.
  Spec s = ValidSpec();
  s.process->capabilities->permitted = {"sys_admin", "CAP_CHECKPOINT_RESTORE"};
  EXPECT_TRUE(ValidateSpec(s).has_value());
}

TEST(ValidateSpecTest, Rlimits) {
  ExpectInvalid(
      [](Spec& s) {
        s.process->rlimits.push_back(Rlimit{"RLIMIT_FOO", 1, 1});
      },
      "process.rlimits[2].type: unknown rlimit \"RLIMIT_FOO\"");
  ExpectInvalid(
      [](Spec& s) {
        s.process->rlimits.push_back(Rlimit{"RLIMIT_NOFILE", 1, 1});
      },
      "process.rlimits[2].type: duplicate rlimit \"RLIMIT_NOFILE\"");
  ExpectInvalid([](Spec& s) { s.process->rlimits[0].soft = 5000; },
                "process.rlimits[0]: soft limit 5000 exceeds hard limit 4096");
}

TEST(ValidateSpecTest, SchedulerAndIoPriority) {
  ExpectInvalid([](Spec& s) { s.process->scheduler->policy = "SCHED_FAST"; },
                "process.scheduler.policy: unknown policy \"SCHED_FAST\"");
  ExpectInvalid([](Spec& s) { s.process->scheduler->nice = 20; },
                "process.scheduler.nice: must be in [-20, 19], got 20");
  ExpectInvalid([](Spec& s) { s.process->scheduler->flags = {"SCHED_FLAG_X"}; },
                "process.scheduler.flags[0]: unknown flag \"SCHED_FLAG_X\"");
  ExpectInvalid([](Spec& s) { s.process->io_priority->io_class = "IOPRIO_CLASS_NONE"; },
                "process.ioPriority.class: unknown class \"IOPRIO_CLASS_NONE\"");
  ExpectInvalid([](Spec& s) { s.process->io_priority->priority = 8; },
                "process.ioPriority.priority: must be in [0, 7], got 8");
}

TEST(ValidateSpecTest, Hooks) {
  ExpectInvalid([](Spec& s) { s.hooks->prestart[0].path = "hook"; },
                "hooks.prestart[0].path: must be an absolute path, got \"hook\"");
  ExpectInvalid(
      [](Spec& s) {
        s.hooks->poststop.push_back(Hook{"/x", {}, {}, 0});
      },
      "hooks.poststop[1].timeout: must be greater than zero, got 0");
  ExpectInvalid(
      [](Spec& s) {
        s.hooks->create_runtime.push_back(Hook{"/x", {}, {}, -1});
      },
      "hooks.createRuntime[0].timeout: must be greater than zero, got -1");
  ExpectInvalid(
      [](Spec& s) {
        s.hooks->start_container.push_back(Hook{"/x", {}, {"E"}, {}});
      },
      "hooks.startContainer[0].env[0]: expected NAME=VALUE, got \"E\"");
  ExpectInvalid(
      [](Spec& s) {
        s.hooks->create_container.push_back(Hook{"", {}, {}, {}});
      },
      "hooks.createContainer[0].path: must be an absolute path, got \"\"");
  ExpectInvalid(
      [](Spec& s) {
        s.hooks->poststart.push_back(Hook{"x", {}, {}, {}});
      },
      "hooks.poststart[0].path: must be an absolute path, got \"x\"");
}

TEST(ValidateSpecTest, AnnotationsAndHostname) {
  ExpectInvalid([](Spec& s) { s.annotations[""] = "v"; }, "annotations: keys must not be empty");
  ExpectInvalid(
      [](Spec& s) {
        std::erase_if(s.linux->namespaces, [](const Namespace& n) { return n.type == "uts"; });
      },
      "hostname: requires a new uts namespace");
  ExpectInvalid([](Spec& s) { s.linux.reset(); }, "hostname: requires a new uts namespace");
  ExpectInvalid(
      [](Spec& s) {
        s.hostname.clear();
        s.domainname = "example.org";
        std::erase_if(s.linux->namespaces, [](const Namespace& n) { return n.type == "uts"; });
      },
      "domainname: requires a new uts namespace");
}

TEST(ValidateSpecTest, Namespaces) {
  ExpectInvalid([](Spec& s) { s.linux->namespaces[3].type = "foo"; },
                "linux.namespaces[3].type: unknown namespace \"foo\"");
  ExpectInvalid(
      [](Spec& s) {
        s.linux->namespaces.push_back(Namespace{"pid", ""});
      },
      "linux.namespaces[8].type: duplicate namespace \"pid\"");
  ExpectInvalid([](Spec& s) { s.linux->namespaces[1].path = "var/run/netns/x"; },
                "linux.namespaces[1].path: must be an absolute path, got \"var/run/netns/x\"");
  // Joining by absolute path is fine.
  Spec s = ValidSpec();
  s.linux->namespaces[1].path = "/var/run/netns/x";
  EXPECT_TRUE(ValidateSpec(s).has_value());
}

TEST(ValidateSpecTest, UserNamespaceMappings) {
  ExpectInvalid([](Spec& s) { s.linux->uid_mappings.clear(); },
                "linux.uidMappings: required with a new user namespace");
  ExpectInvalid([](Spec& s) { s.linux->gid_mappings.clear(); },
                "linux.gidMappings: required with a new user namespace");
  ExpectInvalid(
      [](Spec& s) {
        std::erase_if(s.linux->namespaces, [](const Namespace& n) { return n.type == "user"; });
      },
      "linux.uidMappings: requires a user namespace");
  ExpectInvalid(
      [](Spec& s) {
        std::erase_if(s.linux->namespaces, [](const Namespace& n) { return n.type == "user"; });
        s.linux->uid_mappings.clear();
      },
      "linux.gidMappings: requires a user namespace");
  ExpectInvalid(
      [](Spec& s) {
        s.linux->uid_mappings[0] = IdMapping{0, 4294967295u, 2};
      },
      "linux.uidMappings[0]: id range overflows 32 bits");
  ExpectInvalid([](Spec& s) { s.linux->gid_mappings[0].size = 0; },
                "linux.gidMappings[0].size: must be greater than zero");
  // A joined user namespace brings its own mappings.
  Spec s = ValidSpec();
  s.linux->namespaces[5].path = "/proc/42/ns/user";
  s.linux->uid_mappings.clear();
  s.linux->gid_mappings.clear();
  EXPECT_TRUE(ValidateSpec(s).has_value());
}

TEST(ValidateSpecTest, TimeOffsets) {
  ExpectInvalid([](Spec& s) { s.linux->time_offsets["realtime"] = TimeOffset{}; },
                "linux.timeOffsets: unknown clock \"realtime\"");
  ExpectInvalid(
      [](Spec& s) {
        s.linux->time_offsets["boottime"] = TimeOffset{0, 1000000000u};
      },
      "linux.timeOffsets.boottime.nanosecs: must be below 1000000000, got 1000000000");
  ExpectInvalid([](Spec& s) { s.linux->namespaces[7].path = "/proc/1/ns/time"; },
                "linux.timeOffsets: requires a new time namespace");
}

TEST(ValidateSpecTest, Devices) {
  ExpectInvalid([](Spec& s) { s.linux->devices[0].type = "x"; },
                "linux.devices[0].type: unknown device type \"x\"");
  ExpectInvalid(
      [](Spec& s) {
        s.linux->devices.push_back(Device{"b", "dev/sda", 8, 0, {}, {}, {}});
      },
      "linux.devices[1].path: must be an absolute path, got \"dev/sda\"");
  for (const char* type : {"c", "b", "u", "p"}) {
    Spec s = ValidSpec();
    s.linux->devices[0].type = type;
    EXPECT_TRUE(ValidateSpec(s).has_value()) << type;
  }
}

TEST(ValidateSpecTest, RootfsPropagation) {
  ExpectInvalid([](Spec& s) { s.linux->rootfs_propagation = "rshared2"; },
                "linux.rootfsPropagation: unknown propagation \"rshared2\"");
  for (const char* mode : {"shared", "slave", "private", "unbindable", "rshared", "rslave",
                           "rprivate", "runbindable"}) {
    Spec s = ValidSpec();
    s.linux->rootfs_propagation = mode;
    EXPECT_TRUE(ValidateSpec(s).has_value()) << mode;
  }
}

TEST(ValidateSpecTest, CgroupsPath) {
  ExpectInvalid([](Spec& s) { s.linux->cgroups_path = "/moat/../../escape"; },
                "linux.cgroupsPath: must not contain \"..\" components, got "
                "\"/moat/../../escape\"");
  ExpectInvalid([](Spec& s) { s.linux->cgroups_path = "system.slice:moat:.."; },
                "linux.cgroupsPath: must not contain \"..\" components, got "
                "\"system.slice:moat:..\"");
  Spec s = ValidSpec();
  s.linux->cgroups_path = "system.slice:moat:abc..def";
  EXPECT_TRUE(ValidateSpec(s).has_value());
}

TEST(ValidateSpecTest, Sysctl) {
  ExpectInvalid([](Spec& s) { s.linux->sysctl["vm.swappiness"] = "0"; },
                "linux.sysctl: \"vm.swappiness\" is not namespaced and cannot be set for a "
                "container");
  ExpectInvalid([](Spec& s) { s.linux->sysctl["kernel.panic"] = "1"; },
                "linux.sysctl: \"kernel.panic\" is not namespaced and cannot be set for a "
                "container");
  ExpectInvalid([](Spec& s) { s.linux->sysctl["net.ipv4..conf"] = "1"; },
                "linux.sysctl: invalid key \"net.ipv4..conf\"");
  ExpectInvalid([](Spec& s) { s.linux->sysctl["net/ipv4/../../kernel/panic"] = "1"; },
                "linux.sysctl: invalid key \"net/ipv4/../../kernel/panic\"");
  ExpectInvalid(
      [](Spec& s) {
        std::erase_if(s.linux->namespaces, [](const Namespace& n) { return n.type == "network"; });
      },
      "linux.sysctl: \"net.ipv4.ip_forward\" requires a new network namespace");
  ExpectInvalid(
      [](Spec& s) {
        std::erase_if(s.linux->namespaces, [](const Namespace& n) { return n.type == "ipc"; });
      },
      "linux.sysctl: \"fs.mqueue.msg_max\" requires a new ipc namespace");
  ExpectInvalid(
      [](Spec& s) {
        s.hostname.clear();
        s.linux->sysctl["kernel.domainname"] = "x";
        std::erase_if(s.linux->namespaces, [](const Namespace& n) { return n.type == "uts"; });
      },
      "linux.sysctl: \"kernel.domainname\" requires a new uts namespace");
  for (const char* key : {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                          "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                          "kernel.shm_rmid_forced", "kernel.hostname", "net.core.somaxconn"}) {
    Spec s = ValidSpec();
    s.linux->sysctl[key] = "1";
    EXPECT_TRUE(ValidateSpec(s).has_value()) << key;
  }
}

TEST(ValidateSpecTest, MaskedAndReadonlyPaths) {
  ExpectInvalid([](Spec& s) { s.linux->masked_paths.push_back("proc/kcore"); },
                "linux.maskedPaths[1]: must be an absolute path, got \"proc/kcore\"");
  ExpectInvalid(
      [](Spec& s) {
        s.linux->readonly_paths = {"/proc/bus", ""};
      },
      "linux.readonlyPaths[1]: must be an absolute path, got \"\"");
}

TEST(ValidateSpecTest, Personality) {
  ExpectInvalid([](Spec& s) { s.linux->personality->domain = "BSD"; },
                "linux.personality.domain: unknown domain \"BSD\"");
  ExpectInvalid([](Spec& s) { s.linux->personality->flags = {"ADDR_NO_RANDOMIZE"}; },
                "linux.personality.flags[0]: unsupported flag \"ADDR_NO_RANDOMIZE\"");
}

TEST(ValidateSpecTest, DeviceCgroupRules) {
  ExpectInvalid([](Spec& s) { s.linux->resources->devices[1].access = "rwx"; },
                "linux.resources.devices[1].access: invalid access \"rwx\", expected letters "
                "from \"rwm\"");
  ExpectInvalid([](Spec& s) { s.linux->resources->devices[1].type = "p"; },
                "linux.resources.devices[1].type: unknown device type \"p\"");
}

TEST(ValidateSpecTest, Resources) {
  ExpectInvalid([](Spec& s) { s.linux->resources->memory->limit = -2; },
                "linux.resources.memory.limit: must be -1 (unlimited) or a byte count, got -2");
  ExpectInvalid([](Spec& s) { s.linux->resources->memory->swappiness = 101; },
                "linux.resources.memory.swappiness: must be at most 100, got 101");
  ExpectInvalid([](Spec& s) { s.linux->resources->cpu->cpus = "0-3\n"; },
                "linux.resources.cpu.cpus: invalid CPU list \"0-3\\x0a\"");
  ExpectInvalid([](Spec& s) { s.linux->resources->cpu->mems = "3-1"; },
                "linux.resources.cpu.mems: invalid memory node list \"3-1\"");
  ExpectInvalid([](Spec& s) { s.linux->resources->hugepage_limits[0].page_size = "2MB/../x"; },
                "linux.resources.hugepageLimits[0].pageSize: invalid page size \"2MB/../x\"");
  ExpectInvalid([](Spec& s) { s.linux->resources->unified["../../cgroup.procs"] = "1"; },
                "linux.resources.unified[\"../../cgroup.procs\"]: invalid cgroup file name");
  ExpectInvalid([](Spec& s) { s.linux->resources->unified["cgroup"] = "1"; },
                "linux.resources.unified[\"cgroup\"]: invalid cgroup file name");
  ExpectInvalid(
      [](Spec& s) {
        s.linux->resources->network_priorities.push_back(NetworkPriority{"eth0 5\neth1", 1});
      },
      "linux.resources.network.priorities[0].name: invalid interface name \"eth0 5\\x0aeth1\"");
  ExpectInvalid(
      [](Spec& s) {
        s.linux->resources->block_io = BlockIoResources{};
        s.linux->resources->block_io->weight_device.push_back(WeightDevice{8, 0, {}, {}});
      },
      "linux.resources.blockIO.weightDevice[0]: needs weight or leafWeight");
  ExpectInvalid(
      [](Spec& s) {
        s.linux->resources->rdma["mlx/../x"] = RdmaLimit{1u, {}};
      },
      "linux.resources.rdma[\"mlx/../x\"]: invalid device name");
}

TEST(ValidateResourcesTest, UsesPrefix) {
  Resources r;
  r.memory = MemoryResources{};
  r.memory->swappiness = 200;
  Result<void> v = ValidateResources(r, "resources");
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().message, "resources.memory.swappiness: must be at most 100, got 200");
  EXPECT_TRUE(ValidateResources(Resources{}, "resources").has_value());
}

TEST(ValidateSpecTest, Seccomp) {
  ExpectInvalid([](Spec& s) { s.linux->seccomp->default_action.clear(); },
                "linux.seccomp.defaultAction: required");
  ExpectInvalid([](Spec& s) { s.linux->seccomp->default_action = "SCMP_ACT_MAYBE"; },
                "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_MAYBE\"");
  ExpectInvalid([](Spec& s) { s.linux->seccomp->syscalls[1].action = "ALLOW"; },
                "linux.seccomp.syscalls[1].action: unknown action \"ALLOW\"");
  ExpectInvalid([](Spec& s) { s.linux->seccomp->syscalls[1].args[0].op = "SCMP_CMP_XOR"; },
                "linux.seccomp.syscalls[1].args[0].op: unknown operator \"SCMP_CMP_XOR\"");
  ExpectInvalid([](Spec& s) { s.linux->seccomp->syscalls[1].args[0].index = 6; },
                "linux.seccomp.syscalls[1].args[0].index: must be in [0, 5], got 6");
  ExpectInvalid([](Spec& s) { s.linux->seccomp->syscalls[0].names.clear(); },
                "linux.seccomp.syscalls[0].names: must not be empty");
  ExpectInvalid([](Spec& s) { s.linux->seccomp->syscalls[0].errno_ret = 1; },
                "linux.seccomp.syscalls[0].errnoRet: not allowed with action \"SCMP_ACT_ALLOW\"");
  ExpectInvalid([](Spec& s) { s.linux->seccomp->default_action = "SCMP_ACT_KILL_PROCESS"; },
                "linux.seccomp.defaultErrnoRet: not allowed with action \"SCMP_ACT_KILL_PROCESS\"");
  ExpectInvalid([](Spec& s) { s.linux->seccomp->architectures.push_back("SCMP_ARCH_Z80"); },
                "linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_Z80\"");
  ExpectInvalid([](Spec& s) { s.linux->seccomp->flags = {"SECCOMP_FILTER_FLAG_NEW_LISTENER"}; },
                "linux.seccomp.flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_NEW_LISTENER\"");
  ExpectInvalid([](Spec& s) { s.linux->seccomp->syscalls[0].action = "SCMP_ACT_NOTIFY"; },
                "linux.seccomp.listenerPath: required when SCMP_ACT_NOTIFY is used");
  ExpectInvalid(
      [](Spec& s) {
        s.linux->seccomp->syscalls[0].action = "SCMP_ACT_NOTIFY";
        s.linux->seccomp->syscalls[0].names.push_back("recvfrom");
        s.linux->seccomp->listener_path = "/run/agent.sock";
      },
      "linux.seccomp.syscalls[0].names[2]: SCMP_ACT_NOTIFY on recvfrom would hang the runtime's "
      "handover of the listener (it calls recvfrom before the agent has the fd)");
  ExpectInvalid([](Spec& s) { s.linux->seccomp->listener_metadata = "x"; },
                "linux.seccomp.listenerMetadata: requires listenerPath");
  ExpectInvalid(
      [](Spec& s) {
        s.linux->seccomp->default_action = "SCMP_ACT_NOTIFY";
        s.linux->seccomp->default_errno_ret.reset();
        s.linux->seccomp->listener_path = "/run/agent.sock";
      },
      "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action");
  // Every action in the spec's list is accepted; syscall names are not checked here.
  for (const char* action :
       {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"}) {
    Spec s = ValidSpec();
    s.linux->seccomp->listener_path = "/run/agent.sock";
    s.linux->seccomp->syscalls[0].action = action;
    s.linux->seccomp->syscalls[0].names = {"no_such_syscall_yet"};
    EXPECT_TRUE(ValidateSpec(s).has_value()) << action;
  }
}

TEST(ValidateSeccompTest, UsesPrefix) {
  Seccomp sc;
  Result<void> r = ValidateSeccomp(sc, "seccomp");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "seccomp.defaultAction: required");
}

TEST(ValidateSpecTest, Linux13Additions) {
  ExpectInvalid([](Spec& s) { s.linux->net_devices["eth0/.."] = NetDevice{}; },
                "linux.netDevices[\"eth0/..\"]: invalid interface name");
  ExpectInvalid([](Spec& s) { s.linux->net_devices["eth0"] = NetDevice{"a-very-long-name-0"}; },
                "linux.netDevices[\"eth0\"].name: invalid interface name "
                "\"a-very-long-name-0\"");
  ExpectInvalid(
      [](Spec& s) {
        s.linux->net_devices["eth0"] = NetDevice{};
        std::erase_if(s.linux->namespaces, [](const Namespace& n) { return n.type == "network"; });
      },
      "linux.netDevices: requires a new network namespace");
  ExpectInvalid(
      [](Spec& s) {
        s.linux->intel_rdt = IntelRdt{"../x", "", "", {}, false};
      },
      "linux.intelRdt.closID: invalid name \"../x\"");
  ExpectInvalid(
      [](Spec& s) {
        s.linux->intel_rdt = IntelRdt{"", "", "L3:0=1", {}, false};
      },
      "linux.intelRdt.memBwSchema: must start with \"MB:\" and be one line, got "
      "\"L3:0=1\"");
  ExpectInvalid(
      [](Spec& s) {
        s.linux->memory_policy = MemoryPolicy{"MPOL_ANY", "", {}};
      },
      "linux.memoryPolicy.mode: unknown mode \"MPOL_ANY\"");
  ExpectInvalid(
      [](Spec& s) {
        s.linux->memory_policy = MemoryPolicy{"MPOL_BIND", "0", {"MPOL_F_X"}};
      },
      "linux.memoryPolicy.flags[0]: unknown flag \"MPOL_F_X\"");
  Spec s = ValidSpec();
  s.linux->net_devices["eth1"] = NetDevice{"ctr%d"};
  s.linux->intel_rdt = IntelRdt{"/", "L3:0=7f0", "MB:0=20", {"L2:0=f"}, true};
  s.linux->memory_policy = MemoryPolicy{"MPOL_INTERLEAVE", "0-3,7", {"MPOL_F_STATIC_NODES"}};
  Result<void> r = ValidateSpec(s);
  EXPECT_TRUE(r.has_value()) << r.error().message;
}

TEST(ValidateProcessTest, UsesPrefixForExecProcess) {
  Result<Process> p = ParseProcess(R"({"args": [], "cwd": "/"})");
  ASSERT_TRUE(p.has_value());
  Result<void> r = ValidateProcess(*p, "process");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message, "process.args: must not be empty");

  p->args = {"ls"};
  p->cwd = "relative";
  r = ValidateProcess(*p, "exec");
  ASSERT_FALSE(r.has_value());
  EXPECT_THAT(r.error().message, HasSubstr("exec.cwd: must be an absolute path"));
}

}  // namespace
}  // namespace moat::oci
