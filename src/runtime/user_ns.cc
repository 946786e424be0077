#include "runtime/user_ns.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/spawn.h"
#include "runtime/idmap.h"

namespace moat::runtime {

namespace {

// execvp(3)'s default when PATH is unset.
constexpr const char* kDefaultPath = "/bin:/usr/bin";

// Runs `argv` (argv[0] a name looked up on PATH) and fails with its output when it exits
// non-zero. The helpers print their complaint on stderr ("newuidmap: uid range [1-65537) ->
// [100000-165536) not allowed"); stdout goes to the same pipe so that nothing reaches ours.
Result<void> RunHelper(const std::vector<std::string>& argv) {
  const std::string& tool = argv[0];
  const char* path_env = getenv("PATH");
  MOAT_ASSIGN_OR_RETURN(
      std::string path,
      std::move(sys::FindOnPath(tool, path_env ? path_env : kDefaultPath))
          .Context("%s: not found on PATH (it comes with the uidmap package; rootless mappings "
                   "other than the caller's own id need it)",
                   tool.c_str()));
  // Bounded: the helpers print one line; a flood is not worth keeping.
  MOAT_ASSIGN_OR_RETURN(
      sys::CollectedRun run,
      std::move(sys::RunCollectingOutput(path, argv, -1, true, 4096)).Context("%s", tool.c_str()));
  if (run.Succeeded()) return Ok();
  std::string text(TrimWhitespace(run.output));
  if (text.empty())
    text = WIFEXITED(run.status) ? StrFormat("exited with status %d", WEXITSTATUS(run.status))
                                 : StrFormat("killed by signal %d", WTERMSIG(run.status));
  // The helpers prefix their messages with their own name already.
  if (text.rfind(tool + ":", 0) == 0)
    text = std::string(TrimWhitespace(text.substr(tool.size() + 1)));
  for (char& c : text)
    if (c == '\n') c = ' ';
  return Fail(ErrorKind::kPermissionDenied, "%s: %s", tool.c_str(), text.c_str());
}

}  // namespace

IdMapWriter ChooseIdMapWriter(uid_t euid, uint32_t own_id,
                              const std::vector<oci::IdMapping>& maps) {
  if (euid == 0) return IdMapWriter::kDirect;
  if (maps.size() == 1 && maps[0].size == 1 && maps[0].host_id == own_id)
    return IdMapWriter::kDirect;
  return IdMapWriter::kHelper;
}

IdMapPlan PlanIdMaps(const oci::Linux& linux) {
  IdMapPlan plan;
  uid_t euid = geteuid();
  if (euid == 0) return plan;
  plan.unprivileged = true;
  plan.uid = ChooseIdMapWriter(euid, euid, linux.uid_mappings);
  plan.gid = ChooseIdMapWriter(euid, getegid(), linux.gid_mappings);
  return plan;
}

std::vector<std::string> IdMapHelperArgv(const std::string& tool, pid_t pid,
                                         const std::vector<oci::IdMapping>& maps) {
  std::vector<std::string> argv = {tool, std::to_string(pid)};
  for (const auto& m : maps) {
    argv.push_back(std::to_string(m.container_id));
    argv.push_back(std::to_string(m.host_id));
    argv.push_back(std::to_string(m.size));
  }
  return argv;
}

Result<void> WriteIdMapsFromParent(pid_t pid, const oci::Linux& linux, const IdMapPlan& plan) {
  std::string dir = StrFormat("/proc/%d/", pid);
  if (plan.uid == IdMapWriter::kHelper) {
    MOAT_TRY(std::move(RunHelper(IdMapHelperArgv("newuidmap", pid, linux.uid_mappings)))
                 .Context("linux.uidMappings"));
  } else {
    MOAT_TRY(std::move(sys::WriteFile(dir + "uid_map", IdMapFileText(linux.uid_mappings)))
                 .Context("linux.uidMappings"));
  }
  if (plan.gid == IdMapWriter::kHelper) {
    // newgidmap writes "setgroups" itself: "deny" only when the mapping is nothing but the
    // caller's own gid (shadow's fix for CVE-2018-7169), so setgroups(2) stays usable with a
    // subgid range.
    MOAT_TRY(std::move(RunHelper(IdMapHelperArgv("newgidmap", pid, linux.gid_mappings)))
                 .Context("linux.gidMappings"));
  } else {
    // Unprivileged: the kernel accepts a gid_map write only after setgroups is denied
    // (user_namespaces(7), Linux 3.19).
    if (plan.unprivileged) MOAT_TRY(sys::WriteFile(dir + "setgroups", "deny"));
    MOAT_TRY(std::move(sys::WriteFile(dir + "gid_map", IdMapFileText(linux.gid_mappings)))
                 .Context("linux.gidMappings"));
  }
  return Ok();
}

}  // namespace moat::runtime
