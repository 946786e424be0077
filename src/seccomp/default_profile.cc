// DefaultProfile() from compiler.h.
#include "base/embedded.h"
#include "oci/spec_json.h"
#include "seccomp/compiler.h"

namespace moat::seccomp {

// Parsed on each call rather than kept in a static: no non-trivial globals (STYLE 8), and the
// runtime calls it at most once per start.
Result<oci::Seccomp> DefaultProfile() {
  return oci::ParseSeccomp(embedded::seccomp_default_json()).Context("default seccomp profile");
}

}  // namespace moat::seccomp
