#pragma once

// The two Manager implementations (v1.cc, v2.cc), constructed only by manager.cc. Paths are
// validated and normalised by the caller.

#include <map>
#include <memory>
#include <string>

#include "cgroups/manager.h"

namespace moat::cgroups {

// `paths`: controller -> absolute cgroup path, one entry for each controller of
// layout.v1_mounts.
std::unique_ptr<Manager> NewV1Manager(const Layout& layout,
                                      std::map<std::string, std::string> paths);

// `path`: the absolute cgroup path under layout.unified_root.
std::unique_ptr<Manager> NewV2Manager(const Layout& layout, std::string path);

}  // namespace moat::cgroups
