#include "oci/spec_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <limits>
#include <string>

#include "base/sys/fs.h"

namespace moat::oci {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// A config in the shape `runc spec` writes, extended with resources, seccomp, hooks and the
// 1.1-1.3 additions, written for these tests.
constexpr const char kFullConfig[] = R"json({
  "ociVersion": "1.2.0",
  "process": {
    "terminal": true,
    "consoleSize": {"height": 24, "width": 80},
    "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 10]},
    "args": ["sh", "-c", "echo hi"],
    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
    "cwd": "/",
    "capabilities": {
      "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "inheritable": [],
      "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
      "ambient": ["CAP_NET_BIND_SERVICE"]
    },
    "rlimits": [
      {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
      {"type": "RLIMIT_CORE", "hard": 18446744073709551615, "soft": 18446744073709551615}
    ],
    "noNewPrivileges": true,
    "apparmorProfile": "moat-default",
    "oomScoreAdj": -500,
    "scheduler": {"policy": "SCHED_BATCH", "nice": 5},
    "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2",
    "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
    "execCPUAffinity": {"initial": "7", "final": "0-3,7"}
  },
  "root": {"path": "rootfs", "readonly": true},
  "hostname": "box",
  "domainname": "example.org",
  "mounts": [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
     "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
    {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
     "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
    {"destination": "/sys", "type": "sysfs", "source": "sysfs",
     "options": ["nosuid", "noexec", "nodev", "ro"]},
    {"destination": "/data", "type": "none", "source": "/srv/data", "options": ["rbind", "idmap"],
     "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
     "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}]}
  ],
  "hooks": {
    "prestart": [{"path": "/usr/bin/fix-mounts", "args": ["fix-mounts", "a"], "env": ["K=v"]}],
    "createRuntime": [{"path": "/usr/bin/setup-network"}],
    "createContainer": [{"path": "/usr/bin/mount-hook", "timeout": 10}],
    "startContainer": [{"path": "/usr/bin/refresh-ldcache"}],
    "poststart": [{"path": "/usr/bin/notify-start", "timeout": 5}],
    "poststop": [{"path": "/usr/sbin/cleanup.sh", "args": ["cleanup.sh", "-f"]}]
  },
  "annotations": {"com.example.key": "value", "org.opencontainers.image.stopSignal": "SIGINT"},
  "linux": {
    "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
    "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 32000}],
    "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "4096"},
    "resources": {
      "devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rw"}
      ],
      "memory": {"limit": -1, "reservation": 536870912, "swap": 9223372036854775807,
                 "kernel": -1, "kernelTCP": -1, "swappiness": 0, "disableOOMKiller": false,
                 "useHierarchy": true, "checkBeforeUpdate": true},
      "cpu": {"shares": 1024, "quota": -1, "burst": 1000, "period": 100000,
              "realtimeRuntime": 950000, "realtimePeriod": 1000000, "cpus": "2-3",
              "mems": "0", "idle": 1},
      "pids": {"limit": -1},
      "blockIO": {
        "weight": 10, "leafWeight": 10,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 700}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 18446744073709551615}]
      },
      "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}],
      "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
      "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
      "unified": {"io.max": "259:0 rbps=2097152 wiops=120", "memory.high": "1G"}
    },
    "cgroupsPath": "/moat/box",
    "namespaces": [
      {"type": "pid"}, {"type": "network", "path": "/var/run/netns/box"}, {"type": "ipc"},
      {"type": "uts"}, {"type": "mount"}, {"type": "user"}, {"type": "cgroup"}, {"type": "time"}
    ],
    "timeOffsets": {"monotonic": {"secs": -3600, "nanosecs": 500}, "boottime": {"secs": 7}},
    "devices": [
      {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438,
       "uid": 0, "gid": 0},
      {"path": "/dev/myfifo", "type": "p"}
    ],
    "netDevices": {"eth1": {"name": "ctr1"}},
    "seccomp": {
      "defaultAction": "SCMP_ACT_ERRNO",
      "defaultErrnoRet": 1,
      "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
      "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
      "syscalls": [
        {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
         "args": [{"index": 1, "value": 18446744073709551615, "valueTwo": 18446744073709551615,
                   "op": "SCMP_CMP_NE"}]}
      ]
    },
    "rootfsPropagation": "rslave",
    "maskedPaths": ["/proc/acpi", "/proc/kcore", "/sys/firmware"],
    "readonlyPaths": ["/proc/bus", "/proc/sys"],
    "mountLabel": "system_u:object_r:container_file_t:s0:c1,c2",
    "intelRdt": {"closID": "guaranteed_group", "schemata": ["L3:0=7f0;1=1f"],
                 "enableMonitoring": true},
    "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "2-3", "flags": ["MPOL_F_STATIC_NODES"]},
    "personality": {"domain": "LINUX"}
  }
})json";

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();

// A config with one value swapped in; `value` is raw JSON text.
std::string ConfigWithProcessField(const std::string& key, const std::string& value) {
  return R"({"ociVersion": "1.0.0", "process": {"cwd": "/", ")" + key + "\": " + value + "}}";
}

std::string ParseError(std::string_view json) {
  Result<Spec> r = ParseSpec(json);
  if (r.has_value()) return "<parsed>";
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  return r.error().message;
}

TEST(ParseSpecTest, FullConfig) {
  Result<Spec> r = ParseSpec(kFullConfig);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  const Spec& s = *r;
  EXPECT_EQ(s.oci_version, "1.2.0");
  ASSERT_TRUE(s.root.has_value());
  EXPECT_EQ(s.root->path, "rootfs");
  EXPECT_TRUE(s.root->readonly);
  EXPECT_EQ(s.hostname, "box");
  EXPECT_EQ(s.domainname, "example.org");

  ASSERT_TRUE(s.process.has_value());
  const Process& p = *s.process;
  EXPECT_TRUE(p.terminal);
  ASSERT_TRUE(p.console_size.has_value());
  EXPECT_EQ(p.console_size->height, 24u);
  EXPECT_EQ(p.console_size->width, 80u);
  EXPECT_EQ(p.user.uid, 1000u);
  EXPECT_EQ(p.user.gid, 1000u);
  EXPECT_EQ(p.user.umask, 18u);
  EXPECT_EQ(p.user.additional_gids, (std::vector<uint32_t>{5, 10}));
  EXPECT_EQ(p.args, (std::vector<std::string>{"sh", "-c", "echo hi"}));
  ASSERT_EQ(p.env.size(), 2u);
  EXPECT_EQ(p.env[1], "TERM=xterm");
  EXPECT_EQ(p.cwd, "/");
  ASSERT_TRUE(p.capabilities.has_value());
  EXPECT_EQ(p.capabilities->bounding.size(), 3u);
  EXPECT_TRUE(p.capabilities->inheritable.empty());
  EXPECT_EQ(p.capabilities->ambient, (std::vector<std::string>{"CAP_NET_BIND_SERVICE"}));
  ASSERT_EQ(p.rlimits.size(), 2u);
  EXPECT_EQ(p.rlimits[0].type, "RLIMIT_NOFILE");
  EXPECT_EQ(p.rlimits[0].soft, 1024u);
  EXPECT_EQ(p.rlimits[1].soft, kU64Max);
  EXPECT_EQ(p.rlimits[1].hard, kU64Max);
  EXPECT_TRUE(p.no_new_privileges);
  EXPECT_EQ(p.apparmor_profile, "moat-default");
  EXPECT_EQ(p.oom_score_adj, -500);
  ASSERT_TRUE(p.scheduler.has_value());
  EXPECT_EQ(p.scheduler->policy, "SCHED_BATCH");
  EXPECT_EQ(p.scheduler->nice, 5);
  EXPECT_EQ(p.selinux_label, "system_u:system_r:container_t:s0:c1,c2");
  ASSERT_TRUE(p.io_priority.has_value());
  EXPECT_EQ(p.io_priority->io_class, "IOPRIO_CLASS_BE");
  EXPECT_EQ(p.io_priority->priority, 4);
  ASSERT_TRUE(p.exec_cpu_affinity.has_value());
  EXPECT_EQ(p.exec_cpu_affinity->initial_cpus, "7");
  EXPECT_EQ(p.exec_cpu_affinity->final_cpus, "0-3,7");

  ASSERT_EQ(s.mounts.size(), 5u);
  EXPECT_EQ(s.mounts[0].destination, "/proc");
  EXPECT_EQ(s.mounts[0].type, "proc");
  EXPECT_EQ(s.mounts[0].source, "proc");
  EXPECT_TRUE(s.mounts[0].options.empty());
  EXPECT_EQ(s.mounts[1].options.size(), 4u);
  ASSERT_EQ(s.mounts[4].uid_mappings.size(), 1u);
  EXPECT_EQ(s.mounts[4].uid_mappings[0].host_id, 100000u);
  EXPECT_EQ(s.mounts[4].gid_mappings[0].size, 65536u);

  ASSERT_TRUE(s.hooks.has_value());
  ASSERT_EQ(s.hooks->prestart.size(), 1u);
  EXPECT_EQ(s.hooks->prestart[0].path, "/usr/bin/fix-mounts");
  EXPECT_EQ(s.hooks->prestart[0].args, (std::vector<std::string>{"fix-mounts", "a"}));
  EXPECT_EQ(s.hooks->prestart[0].env, (std::vector<std::string>{"K=v"}));
  EXPECT_FALSE(s.hooks->prestart[0].timeout.has_value());
  EXPECT_EQ(s.hooks->create_runtime.size(), 1u);
  EXPECT_EQ(s.hooks->create_container[0].timeout, 10);
  EXPECT_EQ(s.hooks->start_container.size(), 1u);
  EXPECT_EQ(s.hooks->poststart[0].timeout, 5);
  EXPECT_EQ(s.hooks->poststop[0].args.size(), 2u);
  EXPECT_EQ(s.annotations.at("com.example.key"), "value");

  ASSERT_TRUE(s.linux.has_value());
  const Linux& l = *s.linux;
  ASSERT_EQ(l.uid_mappings.size(), 1u);
  EXPECT_EQ(l.uid_mappings[0].container_id, 0u);
  EXPECT_EQ(l.uid_mappings[0].host_id, 1000u);
  EXPECT_EQ(l.uid_mappings[0].size, 32000u);
  EXPECT_EQ(l.gid_mappings.size(), 1u);
  EXPECT_EQ(l.sysctl.at("net.ipv4.ip_forward"), "1");
  EXPECT_EQ(l.cgroups_path, "/moat/box");
  ASSERT_EQ(l.namespaces.size(), 8u);
  EXPECT_EQ(l.namespaces[1].type, "network");
  EXPECT_EQ(l.namespaces[1].path, "/var/run/netns/box");
  EXPECT_EQ(l.namespaces[7].type, "time");
  EXPECT_EQ(l.time_offsets.at("monotonic").secs, -3600);
  EXPECT_EQ(l.time_offsets.at("monotonic").nanosecs, 500u);
  EXPECT_EQ(l.time_offsets.at("boottime").secs, 7);
  ASSERT_EQ(l.devices.size(), 2u);
  EXPECT_EQ(l.devices[0].type, "c");
  EXPECT_EQ(l.devices[0].major, 10);
  EXPECT_EQ(l.devices[0].minor, 229);
  EXPECT_EQ(l.devices[0].file_mode, 438u);
  EXPECT_EQ(l.devices[0].uid, 0u);
  EXPECT_EQ(l.devices[1].type, "p");
  EXPECT_FALSE(l.devices[1].file_mode.has_value());
  EXPECT_EQ(l.net_devices.at("eth1").name, "ctr1");
  EXPECT_EQ(l.rootfs_propagation, "rslave");
  EXPECT_EQ(l.masked_paths.size(), 3u);
  EXPECT_EQ(l.readonly_paths.size(), 2u);
  EXPECT_EQ(l.mount_label, "system_u:object_r:container_file_t:s0:c1,c2");
  ASSERT_TRUE(l.intel_rdt.has_value());
  EXPECT_EQ(l.intel_rdt->clos_id, "guaranteed_group");
  EXPECT_TRUE(l.intel_rdt->enable_monitoring);
  ASSERT_TRUE(l.memory_policy.has_value());
  EXPECT_EQ(l.memory_policy->mode, "MPOL_INTERLEAVE");
  EXPECT_EQ(l.memory_policy->nodes, "2-3");
  ASSERT_TRUE(l.personality.has_value());
  EXPECT_EQ(l.personality->domain, "LINUX");

  ASSERT_TRUE(l.resources.has_value());
  const Resources& res = *l.resources;
  ASSERT_EQ(res.devices.size(), 2u);
  EXPECT_FALSE(res.devices[0].allow);
  EXPECT_TRUE(res.devices[0].type.empty());
  EXPECT_FALSE(res.devices[0].major.has_value());
  EXPECT_EQ(res.devices[0].access, "rwm");
  EXPECT_TRUE(res.devices[1].allow);
  EXPECT_EQ(res.devices[1].major, 10);
  ASSERT_TRUE(res.memory.has_value());
  EXPECT_EQ(res.memory->limit, -1);
  EXPECT_EQ(res.memory->reservation, 536870912);
  EXPECT_EQ(res.memory->swap, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(res.memory->swappiness, 0u);
  EXPECT_EQ(res.memory->disable_oom_killer, false);
  EXPECT_EQ(res.memory->use_hierarchy, true);
  EXPECT_EQ(res.memory->check_before_update, true);
  ASSERT_TRUE(res.cpu.has_value());
  EXPECT_EQ(res.cpu->shares, 1024u);
  EXPECT_EQ(res.cpu->quota, -1);
  EXPECT_EQ(res.cpu->burst, 1000u);
  EXPECT_EQ(res.cpu->realtime_runtime, 950000);
  EXPECT_EQ(res.cpu->cpus, "2-3");
  EXPECT_EQ(res.cpu->mems, "0");
  EXPECT_EQ(res.cpu->idle, 1);
  EXPECT_EQ(res.pids_limit, -1);
  ASSERT_TRUE(res.block_io.has_value());
  EXPECT_EQ(res.block_io->weight, 10);
  EXPECT_EQ(res.block_io->weight_device[0].leaf_weight, 300);
  EXPECT_EQ(res.block_io->throttle_read_bps_device[0].rate, 600u);
  EXPECT_EQ(res.block_io->throttle_write_bps_device[0].rate, 700u);
  EXPECT_EQ(res.block_io->throttle_read_iops_device[0].minor, 16);
  EXPECT_EQ(res.block_io->throttle_write_iops_device[0].rate, kU64Max);
  ASSERT_EQ(res.hugepage_limits.size(), 1u);
  EXPECT_EQ(res.hugepage_limits[0].page_size, "2MB");
  EXPECT_EQ(res.network_class_id, 1048577u);
  ASSERT_EQ(res.network_priorities.size(), 1u);
  EXPECT_EQ(res.network_priorities[0].name, "eth0");
  EXPECT_EQ(res.rdma.at("mlx5_1").hca_handles, 3u);
  EXPECT_EQ(res.unified.at("memory.high"), "1G");

  ASSERT_TRUE(l.seccomp.has_value());
  const Seccomp& sc = *l.seccomp;
  EXPECT_EQ(sc.default_action, "SCMP_ACT_ERRNO");
  EXPECT_EQ(sc.default_errno_ret, 1u);
  EXPECT_EQ(sc.architectures.size(), 3u);
  EXPECT_EQ(sc.flags, (std::vector<std::string>{"SECCOMP_FILTER_FLAG_SPEC_ALLOW"}));
  ASSERT_EQ(sc.syscalls.size(), 4u);
  EXPECT_EQ(sc.syscalls[0].names.size(), 3u);
  EXPECT_EQ(sc.syscalls[1].args[0].value, 4294967295u);
  EXPECT_EQ(sc.syscalls[2].args[0].op, "SCMP_CMP_MASKED_EQ");
  EXPECT_EQ(sc.syscalls[3].errno_ret, 38u);
  EXPECT_EQ(sc.syscalls[3].args[0].index, 1u);
  EXPECT_EQ(sc.syscalls[3].args[0].value, kU64Max);
  EXPECT_EQ(sc.syscalls[3].args[0].value_two, kU64Max);
}

TEST(ParseSpecTest, MinimalConfigLeavesOptionalsAbsent) {
  Result<Spec> r = ParseSpec(R"({"ociVersion": "1.0.0", "root": {"path": "rootfs"}})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_FALSE(r->process.has_value());
  EXPECT_FALSE(r->hooks.has_value());
  EXPECT_FALSE(r->linux.has_value());
  EXPECT_FALSE(r->root->readonly);
}

TEST(ParseSpecTest, UnknownKeysAreIgnored) {
  Result<Spec> r = ParseSpec(R"({
    "ociVersion": "1.3.0",
    "vm": {"hypervisor": {"path": "/usr/bin/qemu"}},
    "windows": {"layerFolders": ["C:\\x"]},
    "process": {"cwd": "/", "args": ["a"], "futureField": [1, {"x": null}]},
    "linux": {"futureThing": 1, "resources": {"futureController": {"a": 1}}}
  })");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->process->args, (std::vector<std::string>{"a"}));
  EXPECT_TRUE(r->linux->resources.has_value());
}

TEST(ParseSpecTest, NullMeansAbsent) {
  Result<Spec> r = ParseSpec(R"({"ociVersion": "1.0.0", "mounts": null, "hooks": null,
      "process": {"cwd": "/", "env": null, "oomScoreAdj": null},
      "linux": {"resources": {"memory": {"limit": null}}}})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_TRUE(r->mounts.empty());
  EXPECT_FALSE(r->hooks.has_value());
  EXPECT_FALSE(r->process->oom_score_adj.has_value());
  EXPECT_FALSE(r->linux->resources->memory->limit.has_value());
}

TEST(ParseSpecTest, IntegerRanges) {
  // int64 extremes and -1 for memory; uint64 max for rlimits and seccomp values.
  Result<Spec> r = ParseSpec(R"({"ociVersion": "1.0.0", "linux": {"resources": {
      "memory": {"limit": -1, "swap": -9223372036854775808, "reservation": 9223372036854775807},
      "pids": {"limit": 0}}}})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->linux->resources->memory->limit, -1);
  EXPECT_EQ(r->linux->resources->memory->swap, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(r->linux->resources->memory->reservation, std::numeric_limits<int64_t>::max());
  EXPECT_EQ(r->linux->resources->pids_limit, 0);

  EXPECT_EQ(ParseError(R"({"linux": {"resources": {"memory": {"limit": 9223372036854775808}}}})"),
            "config.json: linux.resources.memory.limit: 9223372036854775808 is out of range for "
            "int64");
  EXPECT_EQ(ParseError(R"({"linux": {"resources": {"memory": {"limit": -9223372036854775809}}}})"),
            "config.json: linux.resources.memory.limit: integer out of range for int64");
  EXPECT_EQ(ParseError(ConfigWithProcessField(
                "rlimits", R"([{"type": "RLIMIT_AS", "soft": 18446744073709551616, "hard": 1}])")),
            "config.json: process.rlimits[0].soft: integer out of range for uint64");
  EXPECT_EQ(ParseError(ConfigWithProcessField("user", R"({"uid": 4294967296, "gid": 0})")),
            "config.json: process.user.uid: 4294967296 is out of range for uint32");
  EXPECT_EQ(ParseError(ConfigWithProcessField("user", R"({"uid": -1, "gid": 0})")),
            "config.json: process.user.uid: expected an unsigned integer, got -1");
  EXPECT_EQ(ParseError(R"({"linux": {"resources": {"memory": {"swappiness": -1}}}})"),
            "config.json: linux.resources.memory.swappiness: expected an unsigned integer, got -1");
  EXPECT_EQ(ParseError(R"({"linux": {"resources": {"blockIO": {"weight": 65536}}}})"),
            "config.json: linux.resources.blockIO.weight: 65536 is out of range for uint16");
  EXPECT_EQ(ParseError(ConfigWithProcessField("oomScoreAdj", "2147483648")),
            "config.json: process.oomScoreAdj: 2147483648 is out of range for int32");
}

TEST(ParseSpecTest, TypeErrorsNameTheFieldPath) {
  EXPECT_EQ(ParseError(ConfigWithProcessField("capabilities",
                                              R"({"bounding": ["CAP_KILL", "CAP_CHOWN", 7]})")),
            "config.json: process.capabilities.bounding[2]: expected a string");
  EXPECT_EQ(ParseError(R"({"linux": {"resources": {"memory": {"limit": "1G"}}}})"),
            "config.json: linux.resources.memory.limit: expected an integer");
  EXPECT_EQ(ParseError(R"({"linux": {"resources": {"memory": {"limit": 1.5}}}})"),
            "config.json: linux.resources.memory.limit: expected an integer");
  EXPECT_EQ(ParseError(R"({"linux": {"resources": {"memory": {"limit": 1e3}}}})"),
            "config.json: linux.resources.memory.limit: expected an integer");
  EXPECT_EQ(ParseError(R"({"ociVersion": 1})"), "config.json: ociVersion: expected a string");
  EXPECT_EQ(ParseError(R"({"root": {"path": "r", "readonly": "yes"}})"),
            "config.json: root.readonly: expected a boolean");
  EXPECT_EQ(ParseError(R"({"mounts": {}})"), "config.json: mounts: expected an array");
  EXPECT_EQ(ParseError(R"({"mounts": [{"destination": "/a"}, "x"]})"),
            "config.json: mounts[1]: expected an object");
  EXPECT_EQ(ParseError(R"({"process": []})"), "config.json: process: expected an object");
  EXPECT_EQ(ParseError(R"({"annotations": {"a": "b", "c.d": 1}})"),
            "config.json: annotations[\"c.d\"]: expected a string");
  EXPECT_EQ(ParseError(R"({"linux": {"sysctl": {"net.core.somaxconn": 256}}})"),
            "config.json: linux.sysctl[\"net.core.somaxconn\"]: expected a string");
  EXPECT_EQ(ParseError(R"({"linux": {"timeOffsets": {"monotonic": {"secs": "1"}}}})"),
            "config.json: linux.timeOffsets[\"monotonic\"].secs: expected an integer");
  EXPECT_EQ(ParseError(R"({"linux": {"seccomp": {"syscalls": [{"names": ["a"]},
              {"names": ["b"], "args": [{"index": 0, "value": true}]}]}}})"),
            "config.json: linux.seccomp.syscalls[1].args[0].value: expected an integer");
  EXPECT_EQ(ParseError(R"({"hooks": {"poststop": [{"path": "/x", "timeout": "5"}]}})"),
            "config.json: hooks.poststop[0].timeout: expected an integer");
  EXPECT_EQ(ParseError(R"({"linux": {"resources": {"pids": {"limit": "max"}}}})"),
            "config.json: linux.resources.pids.limit: expected an integer");
  EXPECT_EQ(ParseError(R"({"linux": {"resources": {"network": {"classID": -1}}}})"),
            "config.json: linux.resources.network.classID: expected an unsigned integer, got -1");
  EXPECT_EQ(ParseError("[]"), "config.json: expected an object");
  EXPECT_EQ(ParseError("\"config\""), "config.json: expected an object");
}

TEST(ParseSpecTest, RequiredNumericFields) {
  EXPECT_EQ(ParseError(ConfigWithProcessField("rlimits", R"([{"type": "RLIMIT_NOFILE",
                                                              "soft": 1}])")),
            "config.json: process.rlimits[0].hard: required");
  EXPECT_EQ(ParseError(R"({"linux": {"uidMappings": [{"containerID": 0, "hostID": 1}]}})"),
            "config.json: linux.uidMappings[0].size: required");
  EXPECT_EQ(ParseError(ConfigWithProcessField("user", R"({"uid": 5})")),
            "config.json: process.user.gid: required");
  EXPECT_EQ(ParseError(R"({"linux": {"devices": [{"type": "c", "path": "/dev/x", "major": 1}]}})"),
            "config.json: linux.devices[0].minor: required");
  EXPECT_EQ(ParseError(R"({"linux": {"resources": {"devices": [{"access": "rwm"}]}}})"),
            "config.json: linux.resources.devices[0].allow: required");
  EXPECT_EQ(ParseError(R"({"linux": {"seccomp": {"syscalls": [{"names": ["a"],
              "args": [{"value": 1, "op": "SCMP_CMP_EQ"}]}]}}})"),
            "config.json: linux.seccomp.syscalls[0].args[0].index: required");
  // A fifo needs no device numbers.
  EXPECT_EQ(ParseError(R"({"linux": {"devices": [{"type": "p", "path": "/dev/f"}]}})"), "<parsed>");
}

TEST(ParseSpecTest, InvalidJsonReportsPosition) {
  std::string msg = ParseError("{\n  \"ociVersion\": \"1.0.0\",\n    x\n}");
  EXPECT_THAT(msg, StartsWith("config.json: invalid JSON at line 3, column 5: "));
  EXPECT_THAT(msg, HasSubstr("syntax error"));
  EXPECT_THAT(msg, Not(HasSubstr("json.exception")));

  EXPECT_THAT(ParseError(""), StartsWith("config.json: invalid JSON at line 1, column 1: "));
  EXPECT_THAT(ParseError("{\"a\": [1, 2,}"),
              StartsWith("config.json: invalid JSON at line 1, column 13: "));
  EXPECT_THAT(ParseError("{\"ociVersion\": \"1.0.0\"} trailing"),
              StartsWith("config.json: invalid JSON at line 1, column "));
  EXPECT_THAT(ParseError("{\"ociVersion\": \"1.0.0\""),
              StartsWith("config.json: invalid JSON at line 1, column "));
  EXPECT_EQ(ParseError("{\"x\": 1e400}"),
            "config.json: invalid JSON: number overflow parsing '1e400'");
}

TEST(ParseSpecTest, InvalidUtf8IsRejectedWithPrintableMessage) {
  std::string msg = ParseError("{\"hostname\": \"a\xff\xfe\"}");
  EXPECT_THAT(msg, StartsWith("config.json: invalid JSON at line 1, column "));
  for (char c : msg) {
    EXPECT_TRUE(static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f)
        << msg;
  }
}

TEST(ParseSpecTest, DuplicateKeysAreRejected) {
  EXPECT_EQ(ParseError(R"({"ociVersion": "1.0.0", "ociVersion": "1.1.0"})"),
            "config.json: ociVersion: duplicate key");
  EXPECT_EQ(ParseError(R"({"mounts": [{"destination": "/a"},
                                      {"destination": "/b", "type": "x", "destination": "/c"}]})"),
            "config.json: mounts[1].destination: duplicate key");
  EXPECT_EQ(ParseError(R"({"process": {"user": {"uid": 0, "gid": 0, "uid": 0}}})"),
            "config.json: process.user.uid: duplicate key");
  // The same key in sibling objects is fine.
  EXPECT_EQ(ParseError(R"({"mounts": [{"destination": "/a"}, {"destination": "/b"}]})"),
            "<parsed>");
}

TEST(ParseSpecTest, DeepNestingIsRejected) {
  std::string deep = std::string(200, '[') + std::string(200, ']');
  std::string msg = ParseError("{\"annotations\": {}, \"x\": " + deep + "}");
  EXPECT_THAT(msg, HasSubstr("nesting deeper than 64 levels"));
}

// Prefixes and single-byte mutations of a real config either decode (and then round-trip) or
// fail with kInvalidArgument; nothing throws or crashes. Strides keep this fast under ASan.
TEST(ParseSpecTest, SurvivesTruncationAndMutation) {
  const std::string full = kFullConfig;
  for (size_t len = 0; len < full.size(); len += 11) {
    Result<Spec> r = ParseSpec(std::string_view(full).substr(0, len));
    ASSERT_FALSE(r.has_value()) << len;
    ASSERT_EQ(r.error().kind, ErrorKind::kInvalidArgument) << len;
  }
  const char kReplacements[] = {'"', '}', '1', '\0', '\xff'};
  size_t parsed = 0;
  for (size_t pos = 0; pos < full.size(); pos += 23) {
    for (char c : kReplacements) {
      std::string mutated = full;
      mutated[pos] = c;
      Result<Spec> r = ParseSpec(mutated);
      if (!r.has_value()) {
        ASSERT_EQ(r.error().kind, ErrorKind::kInvalidArgument) << pos;
        continue;
      }
      ++parsed;
      Result<Spec> again = ParseSpec(SpecToJson(*r));
      ASSERT_TRUE(again.has_value()) << pos << ": " << again.error().message;
      ASSERT_TRUE(*again == *r) << pos;
    }
  }
  EXPECT_GT(parsed, 0u);
}

TEST(SpecToJsonTest, MinimalSpecIsExact) {
  Spec s;
  s.oci_version = "1.2.0";
  s.root = Root{"rootfs", false};
  EXPECT_EQ(SpecToJson(s),
            "{\n"
            "  \"ociVersion\": \"1.2.0\",\n"
            "  \"root\": {\n"
            "    \"path\": \"rootfs\"\n"
            "  }\n"
            "}\n");
}

TEST(SpecToJsonTest, OmitsUnsetOptionalFields) {
  Spec s;
  s.oci_version = "1.0.0";
  s.process.emplace();
  s.process->cwd = "/";
  s.process->args = {"sh"};
  s.linux.emplace();
  s.linux->resources.emplace();
  std::string out = SpecToJson(s);
  for (const char* absent :
       {"terminal", "consoleSize", "env", "capabilities", "rlimits", "noNewPrivileges",
        "oomScoreAdj", "hooks", "mounts", "hostname", "annotations", "namespaces", "seccomp",
        "memory", "pids", "umask", "root"}) {
    EXPECT_THAT(out, Not(HasSubstr(std::string("\"") + absent + "\""))) << absent;
  }
  // Required members are always written.
  EXPECT_THAT(out, HasSubstr("\"uid\": 0"));
  EXPECT_THAT(out, HasSubstr("\"cwd\": \"/\""));
  EXPECT_THAT(out, HasSubstr("\"resources\": {}"));
}

TEST(SpecToJsonTest, RoundTripsFullConfig) {
  Result<Spec> first = ParseSpec(kFullConfig);
  ASSERT_TRUE(first.has_value()) << first.error().message;
  std::string text = SpecToJson(*first);
  Result<Spec> second = ParseSpec(text);
  ASSERT_TRUE(second.has_value()) << second.error().message << "\n" << text;
  EXPECT_TRUE(*first == *second) << text;
  // Encoding is deterministic: a second pass gives the same bytes.
  EXPECT_EQ(SpecToJson(*second), text);
  // Keys use the spec's spelling.
  for (const char* key : {"ociVersion",
                          "noNewPrivileges",
                          "additionalGids",
                          "consoleSize",
                          "oomScoreAdj",
                          "apparmorProfile",
                          "selinuxLabel",
                          "ioPriority",
                          "execCPUAffinity",
                          "createRuntime",
                          "startContainer",
                          "uidMappings",
                          "containerID",
                          "hostID",
                          "cgroupsPath",
                          "kernelTCP",
                          "disableOOMKiller",
                          "realtimeRuntime",
                          "blockIO",
                          "leafWeight",
                          "throttleWriteIOPSDevice",
                          "hugepageLimits",
                          "pageSize",
                          "classID",
                          "defaultErrnoRet",
                          "errnoRet",
                          "valueTwo",
                          "rootfsPropagation",
                          "maskedPaths",
                          "readonlyPaths",
                          "mountLabel",
                          "timeOffsets",
                          "nanosecs",
                          "fileMode",
                          "netDevices",
                          "intelRdt",
                          "closID",
                          "enableMonitoring",
                          "memoryPolicy",
                          "hcaHandles",
                          "checkBeforeUpdate",
                          "useHierarchy"}) {
    EXPECT_THAT(text, HasSubstr(std::string("\"") + key + "\"")) << key;
  }
  EXPECT_THAT(text, HasSubstr("\"limit\": -1"));
  EXPECT_THAT(text, HasSubstr("18446744073709551615"));
  // Two-space indentation like `runc spec`.
  EXPECT_THAT(text, StartsWith("{\n  \"ociVersion\": \"1.2.0\",\n  \"process\": {\n    "));
}

TEST(SpecToJsonTest, RoundTripsSpecBuiltInCode) {
  Spec s;
  s.oci_version = "1.3.0";
  s.root = Root{"/var/lib/moat/rootfs", true};
  s.hostname = "h";
  Process& p = s.process.emplace();
  p.args = {"/bin/true"};
  p.cwd = "/work";
  p.user.uid = 4294967295u;
  p.user.umask = 0;
  p.console_size = ConsoleSize{0, 0};
  p.oom_score_adj = 0;
  p.scheduler = Scheduler{"SCHED_DEADLINE", -3, 0, {"SCHED_FLAG_RECLAIM"}, 1, 2, kU64Max};
  p.io_priority = IoPriority{"IOPRIO_CLASS_IDLE", 0};
  p.capabilities.emplace();
  p.exec_cpu_affinity = ExecCpuAffinity{"", "1"};
  Linux& l = s.linux.emplace();
  l.devices.push_back(Device{"p", "/dev/fifo", 0, 0, 0644u, std::nullopt, 7u});
  l.devices.push_back(Device{"u", "/dev/u", -1, -1, std::nullopt, std::nullopt, std::nullopt});
  l.time_offsets["boottime"] = TimeOffset{std::numeric_limits<int64_t>::min(), 999999999u};
  l.net_devices["eth0"] = NetDevice{};
  l.intel_rdt = IntelRdt{"/", "L3:0=1", "MB:0=20", {}, false};
  l.memory_policy = MemoryPolicy{"MPOL_LOCAL", "", {}};
  Resources& r = l.resources.emplace();
  r.pids_limit = 5;
  r.network_priorities.push_back(NetworkPriority{"lo", 0});
  r.rdma["dev"] = RdmaLimit{std::nullopt, 0u};
  r.memory.emplace();
  r.memory->disable_oom_killer = false;
  r.devices.push_back(DeviceCgroupRule{true, "", 0, std::nullopt, ""});
  Seccomp& sc = l.seccomp.emplace();
  sc.default_action = "SCMP_ACT_ALLOW";
  sc.default_errno_ret = 0;
  sc.listener_path = "/run/agent.sock";
  sc.listener_metadata = "meta";
  sc.syscalls.push_back(SeccompSyscall{{"a"}, "SCMP_ACT_NOTIFY", std::nullopt, {}});
  s.hooks.emplace();
  s.annotations[""] = "";
  s.annotations["k"] = "";

  std::string text = SpecToJson(s);
  Result<Spec> back = ParseSpec(text);
  ASSERT_TRUE(back.has_value()) << back.error().message << "\n" << text;
  EXPECT_TRUE(*back == s) << text;
}

TEST(SpecToJsonTest, InvalidUtf8IsReplacedNotThrown) {
  Spec s;
  s.oci_version = "1.0.0";
  s.hostname = "bad\xff";
  std::string text = SpecToJson(s);
  EXPECT_THAT(text, HasSubstr("\"hostname\": \"bad\xEF\xBF\xBD\""));
  EXPECT_TRUE(ParseSpec(text).has_value());
}

TEST(ParseProcessTest, DecodesAndPrefixesErrors) {
  Result<Process> r = ParseProcess(R"({"args": ["ls", "-l"], "cwd": "/tmp", "terminal": true,
                                       "env": ["A=b"], "user": {"uid": 1, "gid": 2}})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->args, (std::vector<std::string>{"ls", "-l"}));
  EXPECT_EQ(r->user.gid, 2u);
  EXPECT_TRUE(r->terminal);

  Result<Process> bad = ParseProcess(R"({"args": [1]})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(bad.error().message, "process.json: args[0]: expected a string");

  Result<Process> not_json = ParseProcess("{");
  ASSERT_FALSE(not_json.has_value());
  EXPECT_THAT(not_json.error().message, StartsWith("process.json: invalid JSON at line 1"));

  Result<Process> round = ParseProcess(ProcessToJson(*r));
  ASSERT_TRUE(round.has_value()) << round.error().message;
  EXPECT_TRUE(*round == *r);
}

TEST(ParseResourcesTest, DecodesAndPrefixesErrors) {
  Result<Resources> r = ParseResources(R"({"memory": {"limit": -1, "swap": 1073741824},
      "pids": {"limit": 100}, "cpu": {"quota": 50000, "period": 100000},
      "unified": {"memory.high": "max"}})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->memory->limit, -1);
  EXPECT_EQ(r->pids_limit, 100);
  EXPECT_EQ(r->cpu->quota, 50000);
  EXPECT_EQ(r->unified.at("memory.high"), "max");

  Result<Resources> bad = ParseResources(R"({"memory": {"limit": "1G"}})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message, "resources: memory.limit: expected an integer");

  Result<Resources> round = ParseResources(ResourcesToJson(*r));
  ASSERT_TRUE(round.has_value()) << round.error().message;
  EXPECT_TRUE(*round == *r);
}

TEST(ParseSeccompTest, DecodesAndRoundTrips) {
  Result<Seccomp> r = ParseSeccomp(R"({
    "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                  "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"}]}]})");
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->syscalls[0].args[0].value, 40u);
  Result<Seccomp> round = ParseSeccomp(SeccompToJson(*r));
  ASSERT_TRUE(round.has_value()) << round.error().message;
  EXPECT_TRUE(*round == *r);

  Result<Seccomp> bad = ParseSeccomp(R"({"syscalls": [{"names": "read"}]})");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message, "seccomp: syscalls[0].names: expected an array");
}

class LoadSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/moat-oci-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    if (!dir_.empty()) (void)sys::RemoveAll(dir_);
  }
  std::string dir_;
};

TEST_F(LoadSpecTest, ReadsConfigJson) {
  ASSERT_TRUE(sys::WriteFileAtomic(dir_ + "/config.json", kFullConfig).has_value());
  Result<Spec> r = LoadSpec(dir_);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->hostname, "box");
}

TEST_F(LoadSpecTest, MissingFileIsNotFound) {
  Result<Spec> r = LoadSpec(dir_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kNotFound);
  EXPECT_THAT(r.error().message, HasSubstr(dir_ + "/config.json"));
}

TEST_F(LoadSpecTest, BadContentIsInvalidArgument) {
  ASSERT_TRUE(sys::WriteFileAtomic(dir_ + "/config.json", "{\"root\": 1}").has_value());
  Result<Spec> r = LoadSpec(dir_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_EQ(r.error().message, "config.json: root: expected an object");
}

}  // namespace
}  // namespace moat::oci
