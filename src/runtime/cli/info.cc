#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "base/embedded.h"
#include "base/sys/fs.h"
#include "oci/spec_json.h"
#include "runtime/caps.h"
#include "runtime/cli/commands.h"
#include "runtime/runtime_json.h"
#include "seccomp/compiler.h"

namespace moat::runtime::cli {

namespace {

// Moat's default spec: profiles/default-spec.json with the default seccomp profile. --rootless
// adapts it for an unprivileged user as runc does: a user namespace mapping the caller, no
// network namespace, no gid=5 on devpts, /sys bound from the host, no cgroup limits.
Result<oci::Spec> DefaultSpec(bool rootless) {
  MOAT_ASSIGN_OR_RETURN(oci::Spec spec, oci::ParseSpec(embedded::default_spec_json()));
  MOAT_ASSIGN_OR_RETURN(oci::Seccomp sc, seccomp::DefaultProfile());
  if (!spec.linux) spec.linux = oci::Linux{};
  spec.linux->seccomp = std::move(sc);
  if (!rootless) return spec;
  auto& l = *spec.linux;
  std::erase_if(l.namespaces, [](const oci::Namespace& n) { return n.type == "network"; });
  // net.* sysctls need a network namespace of the container's own (validation refuses them
  // otherwise: they would be the host's).
  std::erase_if(l.sysctl, [](const auto& kv) { return kv.first.rfind("net.", 0) == 0; });
  l.namespaces.push_back({"user", ""});
  l.uid_mappings = {{0, static_cast<uint32_t>(getuid()), 1}};
  l.gid_mappings = {{0, static_cast<uint32_t>(getgid()), 1}};
  l.resources.reset();
  for (auto& m : spec.mounts) {
    if (m.type == "devpts") std::erase(m.options, "gid=5");
    if (m.type == "sysfs") {
      m.type = "none";
      m.source = "/sys";
      m.options = {"rbind", "nosuid", "noexec", "nodev", "ro"};
    }
  }
  return spec;
}

}  // namespace

void AddInfoCommands(CLI::App& app, const Globals&, int* exit_code) {
  auto bundle = std::make_shared<std::string>();
  auto rootless = std::make_shared<bool>(false);
  CLI::App* spec = app.add_subcommand("spec", "write a config.json with Moat's secure defaults");
  spec->add_option("-b,--bundle", *bundle, "directory to write config.json into");
  spec->add_flag("--rootless", *rootless, "a spec for an unprivileged user");
  spec->callback([bundle, rootless, exit_code] {
    auto s = DefaultSpec(*rootless);
    if (!s) {
      *exit_code = Report(s.error());
      return;
    }
    std::string path = (bundle->empty() ? std::string(".") : *bundle) + "/config.json";
    if (access(path.c_str(), F_OK) == 0) {
      *exit_code = Report(MakeError(ErrorKind::kAlreadyExists, "%s already exists: remove it first",
                                    path.c_str()));
      return;
    }
    auto w = sys::WriteFileAtomic(path, oci::SpecToJson(*s) + "\n", 0644);
    *exit_code = w ? 0 : Report(w.error());
  });

  CLI::App* features = app.add_subcommand("features", "print what this runtime supports (JSON)");
  features->callback([exit_code] {
    printf("%s\n", FeaturesDocument(LastCapability()).c_str());
    *exit_code = 0;
  });
}

}  // namespace moat::runtime::cli
