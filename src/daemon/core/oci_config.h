#pragma once

// Turns a validated container spec and its image's config into the OCI config.json that
// moat-runtime runs. The result starts from Moat's default profile (profiles/default-spec.json:
// 11 capabilities, seccomp allowlist, no_new_privileges, masked paths) and only ever loosens it
// where the request asked for it explicitly (--cap-add, --privileged, seccomp=unconfined...).
// Pure: no file system access except what the caller passes in.

#include <string>
#include <vector>

#include "base/result.h"
#include "daemon/common/json.h"
#include "daemon/privsep/commands.h"
#include "image/store.h"

namespace moat::daemon::core {

struct ConfigInputs {
  const privsep::ContainerSpec* spec = nullptr;
  const image::ImageConfigView* image = nullptr;
  std::string id;
  std::string hostname;            // resolved (default: the id's first 12 characters)
  uint32_t uid = 0, gid = 0;       // resolved from spec.user / image user
  std::vector<uint32_t> additional_gids;
  std::string hosts_path, hostname_path, resolv_conf_path;  // files to bind-mount
  std::string init_path;           // --init: host path of the init binary ("" = none)
  // Named volumes resolved to host directories, in spec.mounts order ("" for non-volumes).
  std::vector<std::string> volume_dirs;
  std::string cgroups_path;
  // The network namespace to join ("" = the runtime makes one, unless the mode is host).
  std::string netns_path;
  // RLIMIT_NOFILE when the request sets none: the daemon's own hard limit, as dockerd's
  // containers inherit dockerd's (the runtime cannot raise it past that without
  // CAP_SYS_RESOURCE). 0: the default profile's.
  uint64_t default_nofile = 0;
  // The seccomp profile (OCI JSON text): Moat's default, or the request's custom profile. Not
  // applied with --privileged or seccomp=unconfined.
  std::string seccomp_json;
};

// The process args: entrypoint + cmd, each from the spec when given, else the image's.
// kInvalidArgument "No command specified" when both are empty.
Result<std::vector<std::string>> ProcessArgs(const privsep::ContainerSpec& spec,
                                             const image::ImageConfigView& image);

// Builds config.json (as a JSON value) from `default_spec` (the parsed default profile).
Result<Json> BuildOciConfig(const Json& default_spec, const ConfigInputs& in);

// An exec's OCI process object, based on the container's config.json process.
Result<Json> BuildExecProcess(const Json& container_process, const privsep::ExecSpec& exec,
                              uint32_t uid, uint32_t gid);

}  // namespace moat::daemon::core
