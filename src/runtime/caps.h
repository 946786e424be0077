#pragma once

// The five capability sets (bounding, effective, permitted, inheritable, ambient).

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "oci/spec.h"

namespace moat::runtime {

struct CapPlan {
  bool configured = false;  // process.capabilities present; absent leaves the sets alone
  std::vector<int> bounding, effective, permitted, inheritable, ambient;
};

// Resolves names to numbers. Unknown names fail naming the field; capabilities this kernel
// does not know (above /proc/sys/kernel/cap_last_cap) are skipped, as runc does.
Result<CapPlan> PlanCapabilities(const std::optional<oci::Capabilities>& caps,
                                 const std::string& field, int last_cap);
// The highest capability number this kernel knows.
int LastCapability();

// Child half, step 1 (still fully privileged): drops from the bounding set what is not in it.
Result<void> DropBoundingSetInChild(const CapPlan& plan, int last_cap);
// Child half, step 2 (after the uid/gid switch with PR_SET_KEEPCAPS): sets E, P, I, ambient.
Result<void> ApplyCapabilitiesInChild(const CapPlan& plan);

}  // namespace moat::runtime
