#pragma once

// Planning: oci::Resources -> the ordered cgroupfs writes that apply them, for cgroup v1 and v2.
// Pure functions (no I/O): the manager gathers a CgroupState, calls Plan*, and performs the
// writes in the returned order. Unit-tested without a kernel.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "oci/spec.h"

namespace moat::cgroups {

// One write to a cgroup file. v1: `controller` names the hierarchy whose directory holds
// `file` ("memory", "cpu", ...). v2: `controller` is informational ("memory", or "" for core
// and unified files); every file is in the one directory.
struct CgroupWrite {
  std::string controller;
  std::string file;
  std::string value;

  bool operator==(const CgroupWrite&) const = default;
};

// A file of a cgroup, with the controller whose hierarchy holds it (v1; informational on v2).
struct CgroupFile {
  std::string controller;
  std::string file;
};

// What the planner needs to know about the target cgroup, read by the caller beforehand.
struct CgroupState {
  // v1: the controllers whose hierarchy is mounted. v2: the controllers enabled for the
  // cgroup (its cgroup.controllers).
  std::set<std::string> controllers;
  // Names of the files present in the cgroup's directory (v1: the union over hierarchies).
  std::set<std::string> files;
  // Current contents of the files listed by FilesReadForPlan(), trimmed; absent if unreadable.
  std::map<std::string, std::string> current;
};

// The files whose current values the planner compares against (to order writes and to honour
// checkBeforeUpdate). Paired with the controller that holds each file (v1).
std::vector<CgroupFile> FilesReadForPlanV1();
std::vector<CgroupFile> FilesReadForPlanV2();

// The writes that apply `resources` on cgroup v1, in order. Device rules become
// "devices.deny a" followed by one write per rule (see DeviceRuleV1). Unset fields produce no
// write. kInvalidArgument for values the kernel would refuse or that cannot be expressed
// (a unified map, swap below the memory limit, a malformed hugepage size ...); kUnsupported
// when a requested limit's controller is not mounted or the kernel lacks swap accounting.
Result<std::vector<CgroupWrite>> PlanV1(const oci::Resources& resources, const CgroupState& state);

// The writes that apply `resources` on cgroup v2, in order; unified keys come last so they
// override. Device rules are NOT part of the plan (v2 has no device files: see devices_bpf.h).
// Errors as for PlanV1; kUnsupported for settings v2 cannot express (realtime, net_cls/prio).
Result<std::vector<CgroupWrite>> PlanV2(const oci::Resources& resources, const CgroupState& state);

// cpu.shares (2..262144, clamped) -> cpu.weight (1..10000).
uint64_t SharesToWeight(uint64_t shares);
// blkio.weight (10..1000, clamped) -> io.weight (1..10000).
uint64_t BlkioWeightToIoWeight(uint64_t weight);

// The v1 devices.allow/devices.deny lines for one rule: "c 1:3 rwm", "b 8:* r", or "a" for an
// all-device all-access rule. A type "a" rule that names a device or a partial access becomes
// one line per type ("c 1:3 rw", "b 1:3 rw"): the kernel would read a bare "a ..." as "all
// devices". Empty access means "rwm"; major/minor -1 or absent mean "*". kInvalidArgument for
// a bad type, access letter, or negative number.
Result<std::vector<std::string>> DeviceRuleV1(const oci::DeviceCgroupRule& rule);

// A device rule in normal form, shared by the v1 line writer and the v2 eBPF builder.
struct DeviceRule {
  // Bits of `access`; the values of the kernel's BPF_DEVCG_ACC_*.
  static constexpr uint32_t kMknod = 1;
  static constexpr uint32_t kRead = 2;
  static constexpr uint32_t kWrite = 4;
  static constexpr uint32_t kAll = kMknod | kRead | kWrite;

  bool allow = false;
  char type = 'a';     // 'a' (char and block), 'c' or 'b'
  int64_t major = -1;  // -1: any
  int64_t minor = -1;  // -1: any
  uint32_t access = kAll;
};

// Checks and normalises an OCI rule: type "" or "a" -> 'a'; major/minor absent or -1 -> -1;
// access "" -> rwm. kInvalidArgument for another type, a letter outside "rwm", or a negative
// or out-of-range (> 0x7fffffff) number.
Result<DeviceRule> NormalizeDeviceRule(const oci::DeviceCgroupRule& rule);

// Validates a hugepage size as used in file names ("2MB", "1GB", "64KB").
bool IsValidHugepageSize(const std::string& size);

// A unified key must be a plain file name of the cgroup directory.
Result<void> ValidateUnifiedKey(const std::string& key);

}  // namespace moat::cgroups
