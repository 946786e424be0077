// Fuzz target: image references, moat::image::ParseReference (src/image/store.h), which sees
// names from API requests, docker-archive RepoTags and index annotations. Checks that a parsed
// reference is normalised: its String() parses back to the same reference, within the limits
// ParseReference enforces (repository at most 255 bytes, tag at most 128).

#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "image/store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto ref = moat::image::ParseReference(text);
  if (!ref) {
    if (ref.error().message.empty()) moat::fuzz::Violation("an error without a message", "");
    return 0;
  }
  if (ref->repo.empty() || ref->repo.size() > 255 || ref->tag.size() > 128 ||
      (ref->tag.empty() && ref->digest.empty()))
    moat::fuzz::Violation("a parsed reference breaks its limits", ref->String());
  std::string again_text = ref->String();
  auto again = moat::image::ParseReference(again_text);
  if (!again)
    moat::fuzz::Violation("Reference::String() does not parse",
                          std::string(text) + " -> " + again_text + ": " + again.error().message);
  if (!(*again == *ref))
    moat::fuzz::Violation("ParseReference is not idempotent",
                          std::string(text) + " -> " + again_text + " -> " + again->String());
  if (!ref->tag.empty() && ref->TagString() != ref->repo + ":" + ref->tag)
    moat::fuzz::Violation("TagString disagrees with repo and tag", ref->TagString());
  return 0;
}
