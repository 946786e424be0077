// MakeManager / OpenManager: cgroupsPath resolution and the choice between v1 and v2.

#include "cgroups/manager.h"

#include <algorithm>
#include <utility>

#include "base/strings.h"
#include "cgroups/cgroupfs.h"
#include "cgroups/impl.h"

namespace moat::cgroups {

namespace {

struct ParsedPath {
  bool absolute = false;
  std::string path;  // normalised, "/a/b"
};

Result<ParsedPath> ParseCgroupsPath(const std::string& raw) {
  if (raw.find_first_of(std::string("\n\0", 2)) != std::string::npos)
    return Fail(ErrorKind::kInvalidArgument, "cgroupsPath contains a newline or NUL byte");
  ParsedPath out;
  out.absolute = StartsWith(raw, "/");
  // runc and crun with --systemd-cgroup take "slice:prefix:name"; moat drives cgroupfs only.
  if (!out.absolute && std::count(raw.begin(), raw.end(), ':') == 2)
    return Fail(ErrorKind::kInvalidArgument,
                "cgroupsPath \"%s\" uses the systemd slice:prefix:name syntax, which needs "
                "--systemd-cgroup; moat manages cgroupfs directly and does not support "
                "--systemd-cgroup: use a path such as \"/moat/<id>\"",
                raw.c_str());
  std::vector<std::string> parts;
  for (const auto& p : StrSplit(raw, '/')) {
    if (p.empty() || p == ".") continue;
    if (p == "..")
      return Fail(ErrorKind::kInvalidArgument, "cgroupsPath \"%s\" has a \"..\" component",
                  raw.c_str());
    parts.push_back(p);
  }
  if (parts.empty())
    return Fail(ErrorKind::kInvalidArgument, "cgroupsPath \"%s\" names the root of the hierarchy",
                raw.c_str());
  out.path = "/" + StrJoin(parts, "/");
  return out;
}

std::string SelfPath(const Layout& layout, const std::string& key) {
  auto it = layout.self.find(key);
  return it == layout.self.end() || it->second.empty() ? "/" : it->second;
}

// Stands in for a manager whose recorded path is invalid: every operation reports why.
class InvalidManager final : public Manager {
 public:
  InvalidManager(Version v, Error e) : version_(v), error_(std::move(e)) {}
  Version version() const override { return version_; }
  Result<void> Create() override { return Fail(error_); }
  Result<void> Apply(const oci::Resources&) override { return Fail(error_); }
  Result<void> AddProcess(pid_t) override { return Fail(error_); }
  Result<UniqueFd> OpenForClone() override { return Fail(error_); }
  Result<void> Freeze() override { return Fail(error_); }
  Result<void> Thaw() override { return Fail(error_); }
  Result<FreezerState> GetFreezerState() override { return Fail(error_); }
  Result<std::vector<pid_t>> Pids() override { return Fail(error_); }
  Result<void> SignalAll(int) override { return Fail(error_); }
  Result<Stats> GetStats() override { return Fail(error_); }
  Result<void> Destroy() override { return Fail(error_); }
  std::string Path() const override { return ""; }
  std::map<std::string, std::string> Paths() const override { return {}; }

 private:
  Version version_;
  Error error_;
};

std::unique_ptr<Manager> Invalid(const Layout& layout, Error e) {
  e.Prefix("recorded cgroup path");
  return std::make_unique<InvalidManager>(layout.version, std::move(e));
}

// Validates one recorded path: it must be absolute.
Result<std::string> RecordedPath(const std::string& p) {
  if (!StartsWith(p, "/"))
    return Fail(ErrorKind::kInvalidArgument, "\"%s\" is not absolute", p.c_str());
  MOAT_ASSIGN_OR_RETURN(ParsedPath parsed, ParseCgroupsPath(p));
  return parsed.path;
}

}  // namespace

Result<std::unique_ptr<Manager>> MakeManager(const Layout& layout, const std::string& cgroups_path,
                                             const std::string& container_id) {
  std::string raw = cgroups_path;
  if (raw.empty()) {
    if (container_id.empty() || container_id.find('/') != std::string::npos ||
        container_id == "." || container_id == "..")
      return Fail(ErrorKind::kInvalidArgument, "container id \"%s\" cannot name a cgroup",
                  container_id.c_str());
    raw = "moat/" + container_id;
  }
  MOAT_ASSIGN_OR_RETURN(ParsedPath parsed, ParseCgroupsPath(raw));
  auto resolve = [&](const std::string& key) {
    return parsed.absolute ? parsed.path : JoinCgroupPath(SelfPath(layout, key), parsed.path);
  };
  if (layout.version == Version::kV2) {
    if (layout.unified_root.empty())
      return Fail(ErrorKind::kInvalidArgument, "cgroup v2 layout without a unified_root");
    return NewV2Manager(layout, resolve(""));
  }
  if (layout.v1_mounts.empty())
    return Fail(ErrorKind::kInvalidArgument, "cgroup v1 layout without any controller mount");
  std::map<std::string, std::string> paths;
  for (const auto& [controller, mount] : layout.v1_mounts) paths[controller] = resolve(controller);
  return NewV1Manager(layout, std::move(paths));
}

std::unique_ptr<Manager> OpenManager(const Layout& layout, const std::string& absolute_path) {
  auto path = RecordedPath(absolute_path);
  if (!path) return Invalid(layout, std::move(path).error());
  if (layout.version == Version::kV2) return NewV2Manager(layout, *path);
  std::map<std::string, std::string> paths;
  for (const auto& [controller, mount] : layout.v1_mounts) paths[controller] = *path;
  return NewV1Manager(layout, std::move(paths));
}

std::unique_ptr<Manager> OpenManager(const Layout& layout,
                                     const std::map<std::string, std::string>& paths) {
  std::map<std::string, std::string> checked;
  for (const auto& [key, p] : paths) {
    auto path = RecordedPath(p);
    if (!path) return Invalid(layout, std::move(path).error());
    checked[key] = *path;
  }
  if (layout.version == Version::kV2) {
    auto it = checked.find("");
    if (it == checked.end())
      return Invalid(layout, MakeError(ErrorKind::kInvalidArgument, "no cgroup v2 path"));
    return NewV2Manager(layout, it->second);
  }
  if (checked.empty())
    return Invalid(layout, MakeError(ErrorKind::kInvalidArgument, "no cgroup v1 path"));
  std::string fallback = checked.count("memory") ? checked["memory"] : checked.begin()->second;
  std::map<std::string, std::string> v1;
  for (const auto& [controller, mount] : layout.v1_mounts) {
    auto it = checked.find(controller);
    v1[controller] = it != checked.end() ? it->second : fallback;
  }
  return NewV1Manager(layout, std::move(v1));
}

}  // namespace moat::cgroups
