// Invalid config.json: `create` fails with exit code 1 and an error naming the field, and
// leaves nothing behind (no state directory, no cgroup, no process, no mount).

#include <functional>
#include <string>
#include <vector>

#include "support/runtime_fixture.h"

namespace moat::testing {
namespace {

struct BadConfig {
  const char* name;
  // Edits the default config; unused when `raw` is set.
  std::function<void(json&)> edit;
  const char* raw;                    // config.json text instead of an edited config
  std::vector<const char*> expected;  // substrings of stderr
};

void PrintTo(const BadConfig& bad, std::ostream* os) { *os << bad.name; }

class BadConfigTest : public RuntimeTest, public ::testing::WithParamInterface<BadConfig> {};

TEST_P(BadConfigTest, CreateFailsNamingTheFieldAndLeavesNothing) {
  const BadConfig& bad = GetParam();
  if (std::string(bad.name) == "ApparmorProfileWithoutApparmor" &&
      Trim(ReadFileOrEmpty("/sys/module/apparmor/parameters/enabled")) == "Y")
    GTEST_SKIP() << "AppArmor is enabled on this host; this case needs a host without it";
  if (bad.raw) {
    WriteConfigText(bad.raw);
  } else {
    json c = Config({"sleep", "30"});
    bad.edit(c);
    WriteConfig(c);
  }
  std::string id = NewId();
  CommandResult r = Runtime({"create", "--bundle", bundle(), id});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  // "{mounts}" and "{namespaces}": the index of the entry the case appended.
  json defaults = Config();
  for (std::string want : bad.expected) {
    for (auto [key, list] : {std::pair<std::string, json>{"{mounts}", defaults["mounts"]},
                             {"{namespaces}", defaults["linux"]["namespaces"]}}) {
      size_t at = want.find(key);
      if (at != std::string::npos) want.replace(at, key.size(), std::to_string(list.size()));
    }
    EXPECT_NE(r.err.find(want), std::string::npos) << "want \"" << want << "\" in:\n" << r.err;
  }
  EXPECT_FALSE(PathExists(state_root() + "/" + id));
  for (const auto& [hierarchy, dir] : CgroupDirs(id)) EXPECT_FALSE(PathExists(dir)) << dir;
  CommandResult st = Runtime({"state", id});
  EXPECT_EQ(st.exit_code, 1);
  EXPECT_NE(st.err.find("does not exist"), std::string::npos) << st.err;
}

const BadConfig kBadConfigs[] = {
    {"InvalidJson", nullptr, "{\"ociVersion\": \"1.3.0\", \"process\": {", {"config.json"}},
    {"MissingRoot", [](json& c) { c.erase("root"); }, nullptr, {"root"}},
    {"UnknownNamespace",
     [](json& c) {
       c["linux"]["namespaces"].push_back({{"type", "bogus"}});
     },
     nullptr,
     {"linux.namespaces[{namespaces}].type", "bogus"}},
    {"RelativeCwd", [](json& c) { c["process"]["cwd"] = "tmp"; }, nullptr, {"process.cwd"}},
    {"UnknownCapability",
     [](json& c) { c["process"]["capabilities"]["bounding"].push_back("CAP_BOGUS"); },
     nullptr,
     {"process.capabilities.bounding", "CAP_BOGUS"}},
    {"UnknownRlimit",
     [](json& c) {
       c["process"]["rlimits"].push_back({{"type", "RLIMIT_BOGUS"}, {"soft", 1}, {"hard", 1}});
     },
     nullptr,
     {"process.rlimits[1]", "RLIMIT_BOGUS"}},
    {"SeccompUnknownSyscall",
     [](json& c) {
       c["linux"]["seccomp"] = {
           {"defaultAction", "SCMP_ACT_ALLOW"},
           {"syscalls",
            {{{"names", {"no_such_syscall"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 1}}}}};
     },
     nullptr,
     {"no_such_syscall"}},
    {"ApparmorProfileWithoutApparmor",
     [](json& c) { c["process"]["apparmorProfile"] = "moat-test-profile"; },
     nullptr,
     {"process.apparmorProfile", "AppArmor"}},
    {"RelativeMountDestination",
     [](json& c) {
       c["mounts"].push_back(
           {{"destination", "relative/dir"}, {"type", "tmpfs"}, {"source", "tmpfs"}});
     },
     nullptr,
     {"mounts[{mounts}].destination", "relative/dir"}},
};

INSTANTIATE_TEST_SUITE_P(Configs, BadConfigTest, ::testing::ValuesIn(kBadConfigs),
                         [](const ::testing::TestParamInfo<BadConfig>& param_info) {
                           return std::string(param_info.param.name);
                         });

}  // namespace
}  // namespace moat::testing
