#include "runtime/caps.h"

#include <sys/capability.h>
#include <sys/prctl.h>

#include <algorithm>

#include "base/sys/fs.h"
#include "base/sys/process.h"
#include "oci/names.h"

namespace moat::runtime {

int LastCapability() {
  auto text = sys::ReadFile("/proc/sys/kernel/cap_last_cap");
  if (text) {
    if (auto v = ParseInt64(TrimWhitespace(*text))) return static_cast<int>(*v);
  }
  return CAP_LAST_CAP;
}

Result<CapPlan> PlanCapabilities(const std::optional<oci::Capabilities>& caps,
                                 const std::string& field, int last_cap) {
  CapPlan plan;
  if (!caps) return plan;
  plan.configured = true;
  auto resolve = [&](const std::vector<std::string>& names, const char* set,
                     std::vector<int>* out) -> Result<void> {
    for (size_t i = 0; i < names.size(); ++i) {
      auto cap = oci::CapabilityFromName(names[i]);
      if (!cap)
        return Fail(ErrorKind::kInvalidArgument, "%s.%s[%zu]: unknown capability \"%s\"",
                    field.c_str(), set, i, names[i].c_str());
      if (*cap > last_cap) continue;
      if (std::find(out->begin(), out->end(), *cap) == out->end()) out->push_back(*cap);
    }
    return Ok();
  };
  MOAT_TRY(resolve(caps->bounding, "bounding", &plan.bounding));
  MOAT_TRY(resolve(caps->effective, "effective", &plan.effective));
  MOAT_TRY(resolve(caps->permitted, "permitted", &plan.permitted));
  MOAT_TRY(resolve(caps->inheritable, "inheritable", &plan.inheritable));
  MOAT_TRY(resolve(caps->ambient, "ambient", &plan.ambient));
  return plan;
}

Result<void> DropBoundingSetInChild(const CapPlan& plan, int last_cap) {
  if (!plan.configured) return Ok();
  for (int cap = 0; cap <= last_cap; ++cap) {
    if (std::find(plan.bounding.begin(), plan.bounding.end(), cap) != plan.bounding.end())
      continue;
    MOAT_TRY(std::move(sys::prctl(PR_CAPBSET_DROP, static_cast<unsigned long>(cap)))
                 .Context("drop %s from the bounding set",
                          std::string(oci::CapabilityName(cap)).c_str()));
  }
  return Ok();
}

Result<void> ApplyCapabilitiesInChild(const CapPlan& plan) {
  if (!plan.configured) return Ok();
  cap_t c = cap_init();
  if (!c) return FailErrno("cap_init");
  auto set = [&](const std::vector<int>& caps, cap_flag_t flag) {
    if (caps.empty()) return 0;
    std::vector<cap_value_t> values(caps.begin(), caps.end());
    return cap_set_flag(c, flag, static_cast<int>(values.size()), values.data(), CAP_SET);
  };
  if (set(plan.effective, CAP_EFFECTIVE) != 0 || set(plan.permitted, CAP_PERMITTED) != 0 ||
      set(plan.inheritable, CAP_INHERITABLE) != 0) {
    cap_free(c);
    return FailErrno("cap_set_flag");
  }
  int rc = cap_set_proc(c);
  int err = errno;
  cap_free(c);
  if (rc != 0) return Fail(Error::FromErrno(err, "capset"));
  MOAT_TRY(sys::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL));
  for (int cap : plan.ambient) {
    MOAT_TRY(std::move(sys::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE,
                                  static_cast<unsigned long>(cap)))
                 .Context("raise ambient %s", std::string(oci::CapabilityName(cap)).c_str()));
  }
  return Ok();
}

}  // namespace moat::runtime
