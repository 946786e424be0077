#pragma once

#include <string_view>

// Files of the repository compiled into the binaries (see cmake/Embed.cmake).
namespace moat::embedded {
std::string_view seccomp_default_json();  // profiles/seccomp-default.json
std::string_view default_spec_json();     // profiles/default-spec.json
}  // namespace moat::embedded
