// DetectLayout: which cgroup hierarchies are mounted where, and where the caller sits in them.

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "cgroups/manager.h"

namespace moat::cgroups {

namespace {

// The v1 controllers moat manages. Named hierarchies (name=systemd) carry no controller and
// belong to the init system.
bool IsV1Controller(const std::string& name) {
  static constexpr const char* kControllers[] = {
      "cpu",      "cpuacct", "cpuset",     "memory",  "devices", "freezer", "net_cls",
      "net_prio", "blkio",   "perf_event", "hugetlb", "pids",    "rdma",    "misc",
  };
  for (const char* c : kControllers)
    if (name == c) return true;
  return false;
}

// mountinfo escapes space, tab, newline and backslash as \ooo (fs/proc_namespace.c).
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
        s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string StripTrailingSlash(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

struct CgroupMount {
  std::string fstype;  // "cgroup" or "cgroup2"
  std::string root;    // the mount's root inside the hierarchy (mountinfo field 4)
  std::string mount_point;
  std::vector<std::string> controllers;  // v1 only
};

std::vector<CgroupMount> ParseMountinfo(const std::string& text) {
  std::vector<CgroupMount> out;
  for (const auto& line : StrSplit(text, '\n')) {
    // id parent maj:min root mount-point options [optional...] - fstype source super-options
    std::vector<std::string> f;
    for (auto& x : StrSplit(line, ' '))
      if (!x.empty()) f.push_back(std::move(x));
    size_t dash = 0;
    for (size_t i = 6; i < f.size(); ++i) {
      if (f[i] == "-") {
        dash = i;
        break;
      }
    }
    if (dash == 0 || dash + 3 > f.size()) continue;
    const std::string& fstype = f[dash + 1];
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    CgroupMount m;
    m.fstype = fstype;
    m.root = StripTrailingSlash(Unescape(f[3]));
    m.mount_point = StripTrailingSlash(Unescape(f[4]));
    if (fstype == "cgroup" && dash + 3 < f.size()) {
      for (auto& opt : StrSplit(f[dash + 3], ','))
        if (IsV1Controller(opt)) m.controllers.push_back(opt);
      if (m.controllers.empty()) continue;  // name=systemd and other named hierarchies
    }
    out.push_back(std::move(m));
  }
  return out;
}

// /proc/self/cgroup path -> path under the mount point whose root is `root`. A process outside
// the mounted sub-tree (possible across cgroup namespaces) is treated as sitting at the mount
// point.
std::string UnderMount(const std::string& path, const std::string& root) {
  if (root.empty() || root == "/") return path.empty() ? "/" : path;
  if (path == root) return "/";
  if (StartsWith(path, root + "/")) return path.substr(root.size());
  return "/";
}

}  // namespace

Result<Layout> DetectLayout(const std::string& proc_root) {
  std::string mountinfo_path = proc_root + "/self/mountinfo";
  std::string cgroup_path = proc_root + "/self/cgroup";
  MOAT_ASSIGN_OR_RETURN(std::string mountinfo, sys::ReadFile(mountinfo_path));
  MOAT_ASSIGN_OR_RETURN(std::string self_cgroup, sys::ReadFile(cgroup_path));

  Layout layout;
  std::map<std::string, std::string> roots;  // controller ("" for v2) -> mount root
  bool have_unified = false;
  for (const auto& m : ParseMountinfo(mountinfo)) {
    if (m.fstype == "cgroup2") {
      // The first cgroup2 mount is the host's; later ones are usually bind mounts of it.
      if (!have_unified) {
        layout.unified_root = m.mount_point;
        roots[""] = m.root;
        have_unified = true;
      }
      continue;
    }
    for (const auto& c : m.controllers) {
      if (layout.v1_mounts.count(c)) continue;
      layout.v1_mounts[c] = m.mount_point;
      roots[c] = m.root;
    }
  }
  if (layout.v1_mounts.empty() && !have_unified)
    return Fail(ErrorKind::kUnsupported, "no cgroup hierarchy is mounted (read %s)",
                mountinfo_path.c_str());
  layout.version = layout.v1_mounts.empty() ? Version::kV2 : Version::kV1;

  // hierarchy-id:controller-list:path; the path may itself contain ':'.
  for (const auto& line : StrSplit(self_cgroup, '\n')) {
    size_t first = line.find(':');
    if (first == std::string::npos) continue;
    size_t second = line.find(':', first + 1);
    if (second == std::string::npos) continue;
    std::string controllers = line.substr(first + 1, second - first - 1);
    std::string path = StripTrailingSlash(line.substr(second + 1));
    if (controllers.empty()) {
      if (have_unified) layout.self[""] = UnderMount(path, roots[""]);
      continue;
    }
    for (const auto& c : StrSplit(controllers, ','))
      if (layout.v1_mounts.count(c)) layout.self[c] = UnderMount(path, roots[c]);
  }
  return layout;
}

}  // namespace moat::cgroups
