#pragma once

// The cgroup v2 device controller: v2 has no devices.allow/deny files; instead an eBPF program
// of type BPF_PROG_TYPE_CGROUP_DEVICE, attached to the cgroup, decides every open(2) and
// mknod(2) of a device node by a process in it (Linux 4.15+).
//
// Semantics of the program built from linux.resources.devices (documented contract, tested
// by devices_bpf_test.cc with an in-test interpreter):
//   - default deny: an access that no rule matches is refused;
//   - each requested access bit (r, w, m) is decided on its own by the LAST rule in the list
//     that covers that bit and matches the device (type, major, minor; "a" and absent numbers
//     are wildcards); the access is allowed only if every requested bit is allowed.
// This is the v1 devices cgroup behaviour for the usual "deny all, then allow list" specs,
// and "last rule wins" for overlapping rules (where v1 itself only subtracts exact matches).

#include <linux/bpf.h>

#include <vector>

#include "base/result.h"
#include "cgroups/resources.h"
#include "oci/spec.h"

namespace moat::cgroups {

// Builds the program for `rules` (in spec order). Pure. kInvalidArgument for a malformed rule
// (see NormalizeDeviceRule) or a program too large for 16-bit jump offsets.
Result<std::vector<bpf_insn>> BuildDeviceProgram(const std::vector<oci::DeviceCgroupRule>& rules);

// Loads `insns` and attaches it to the cgroup directory `cgroup_fd` (remains owned by the
// caller) with BPF_F_ALLOW_MULTI, then detaches the device programs that were attached to that
// cgroup before (an earlier Apply). The new program is attached before the old ones go, so the
// cgroup is never unfiltered; in between, both apply (the kernel requires every program to
// allow). Needs CAP_SYS_ADMIN (or CAP_BPF + CAP_NET_ADMIN): kPermissionDenied otherwise.
// A verifier refusal is kInvalidArgument with the end of the verifier log in the message.
Result<void> InstallDeviceProgram(int cgroup_fd, const std::vector<bpf_insn>& insns);

}  // namespace moat::cgroups
