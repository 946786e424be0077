// Fuzz target: config.json as moat-runtime reads it (src/runtime/launcher.cc Create):
// oci::ParseSpec, then oci::ValidateSpec and oci::RequireProcess (src/oci/spec_json.h,
// validate.h). The same bytes also go through the parsers of the documents that travel alone
// (ParseProcess for `exec --process`, ParseResources for `update --resources`, ParseSeccomp for
// profiles) and their validators. Checks the documented round trip: for a decoded spec s,
// ParseSpec(SpecToJson(s)) == s (nlohmann only accepts valid UTF-8, so every decoded string is).

#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "oci/spec_json.h"
#include "oci/validate.h"

using namespace moat::oci;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto spec = ParseSpec(text)) {
    if (ValidateSpec(*spec)) (void)RequireProcess(*spec);
    std::string once = SpecToJson(*spec);
    auto again = ParseSpec(once);
    if (!again)
      moat::fuzz::Violation("SpecToJson output does not parse", again.error().message + "\n" + once);
    if (!(*again == *spec))
      moat::fuzz::Violation("ParseSpec(SpecToJson(s)) != s",
                            once + "\n---- re-encoded ----\n" + SpecToJson(*again));
    if (spec->linux && spec->linux->resources)
      (void)ValidateResources(*spec->linux->resources, "linux.resources");
  }
  if (auto process = ParseProcess(text)) {
    (void)ValidateProcess(*process, "process");
    auto again = ParseProcess(ProcessToJson(*process));
    if (!again || !(*again == *process))
      moat::fuzz::Violation("ParseProcess(ProcessToJson(p)) != p", ProcessToJson(*process));
  }
  if (auto resources = ParseResources(text)) {
    (void)ValidateResources(*resources, "linux.resources");
    auto again = ParseResources(ResourcesToJson(*resources));
    if (!again || !(*again == *resources))
      moat::fuzz::Violation("ParseResources(ResourcesToJson(r)) != r",
                            ResourcesToJson(*resources));
  }
  if (auto seccomp = ParseSeccomp(text)) {
    (void)ValidateSeccomp(*seccomp, "linux.seccomp");
    auto again = ParseSeccomp(SeccompToJson(*seccomp));
    if (!again || !(*again == *seccomp))
      moat::fuzz::Violation("ParseSeccomp(SeccompToJson(s)) != s", SeccompToJson(*seccomp));
  }
  return 0;
}
