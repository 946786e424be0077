// Fuzz target: the privsep command decoding of moatd, src/daemon/privsep/commands.h. The front
// decodes a client's POST /containers/create body with ParseJson + DecodeContainerSpec (which
// validates), sends EncodeContainerSpec's form to the privileged core, and the core decodes and
// validates it again; exec bodies go through DecodeExecSpec the same way. The target runs that
// path and checks its contract: what the front accepts the core accepts too, and the encoded
// form is a fixpoint (Encode(Decode(Encode(s))) == Encode(s)). The same bytes go through the
// registry credentials decoding (POST /auth bodies and the X-Registry-Auth header).

#include <cstdint>
#include <string>
#include <string_view>

#include "base/base64.h"
#include "daemon/common/json.h"
#include "daemon/privsep/commands.h"
#include "fuzz_util.h"

using namespace moat::daemon;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  // X-Registry-Auth: the raw bytes, and the input as the header would carry it (base64 of the
  // JSON, both alphabets); whichever decodes must agree with the body form.
  (void)privsep::DecodeRegistryAuthHeader(text);
  auto header_auth = privsep::DecodeRegistryAuthHeader(moat::Base64Encode(
      text, size % 2 ? moat::Base64Alphabet::kUrl : moat::Base64Alphabet::kStandard));

  auto body = ParseJson(text);
  if (!body) return 0;

  if (auto auth = privsep::DecodeRegistryAuth(*body)) {
    if (header_auth && !(*header_auth == *auth))
      moat::fuzz::Violation("X-Registry-Auth and the /auth body decode differently",
                            std::string(text));
    std::string wire = Dump(privsep::EncodeRegistryAuth(*auth));
    auto at_core = ParseJson(wire);
    if (!at_core) moat::fuzz::Violation("the encoded credentials are not JSON", wire);
    auto again = privsep::DecodeRegistryAuth(*at_core);
    if (!again || !(*again == *auth))
      moat::fuzz::Violation("DecodeRegistryAuth(EncodeRegistryAuth(a)) != a", wire);
  }

  // The front: ?name= comes from the query; the fuzzer's first key chooses it sometimes.
  std::string name;
  if (body->is_object() && body->contains("Name") && (*body)["Name"].is_string())
    name = (*body)["Name"].get<std::string>();
  if (auto spec = privsep::DecodeContainerSpec(*body, name)) {
    // The core's side.
    std::string wire = Dump(privsep::EncodeContainerSpec(*spec));
    auto at_core = ParseJson(wire);
    if (!at_core) moat::fuzz::Violation("the encoded spec is not JSON", wire);
    auto again = privsep::DecodeContainerSpec(*at_core, spec->name);
    if (!again)
      moat::fuzz::Violation("the core refuses a spec the front accepted",
                            again.error().message + "\n" + wire);
    if (auto v = privsep::ValidateContainerSpec(*again); !v)
      moat::fuzz::Violation("the core's validation refuses a decoded spec", v.error().message);
    std::string wire2 = Dump(privsep::EncodeContainerSpec(*again));
    if (wire2 != wire)
      moat::fuzz::Violation("EncodeContainerSpec is not a fixpoint", wire + "\n" + wire2);
    (void)privsep::PrimaryNetwork(*again);
  }

  if (auto exec = privsep::DecodeExecSpec(*body)) {
    if (auto v = privsep::ValidateExecSpec(*exec)) {
      std::string wire = Dump(privsep::EncodeExecSpec(*exec));
      auto at_core = ParseJson(wire);
      if (!at_core) moat::fuzz::Violation("the encoded exec spec is not JSON", wire);
      auto again = privsep::DecodeExecSpec(*at_core);
      if (!again || !privsep::ValidateExecSpec(*again))
        moat::fuzz::Violation("the core refuses an exec spec the front accepted", wire);
      if (Dump(privsep::EncodeExecSpec(*again)) != wire)
        moat::fuzz::Violation("EncodeExecSpec is not a fixpoint", wire);
    }
  }
  return 0;
}
