// Docker-shaped JSON for containers: inspect (GET /containers/{id}/json), the list
// (GET /containers/json) with its filters, and top.

#include <spawn.h>
#include <sys/wait.h>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "daemon/core/container_internal.h"

namespace moat::daemon::core {
namespace {

std::string ShellQuoteJoin(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) {
    if (!out.empty()) out += " ";
    bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`") == std::string::npos;
    out += plain ? a : "'" + a + "'";
  }
  return out;
}

bool FilterHas(const Json& filters, const char* key) {
  return filters.is_object() && filters.contains(key);
}

std::vector<std::string> FilterValues(const Json& filters, const char* key) {
  std::vector<std::string> out;
  if (!FilterHas(filters, key)) return out;
  const Json& f = filters[key];
  if (f.is_object()) {
    for (auto it = f.begin(); it != f.end(); ++it) out.push_back(it.key());
  } else if (f.is_array()) {
    for (const auto& v : f) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

}  // namespace

Json Containers::InspectJsonLocked(const Container& c) {
  const auto& s = c.spec;
  Json spec_json = privsep::EncodeContainerSpec(s);
  Json hc = spec_json["HostConfig"];
  hc["Binds"] = Json::array();
  for (const auto& m : s.mounts) {
    if (m.from_bind_string) hc["Binds"].push_back(m.source + ":" + m.target + (m.read_only ? ":ro" : ""));
  }
  hc["LogConfig"] = {{"Type", "json-file"}, {"Config", Json::object()}};
  hc["Runtime"] = "moat";
  Json mounts = Json::array();
  for (const auto& m : s.mounts) {
    Json j = {{"Type", m.type}, {"Source", m.source}, {"Destination", m.target},
              {"Mode", m.read_only ? "ro" : ""}, {"RW", !m.read_only},
              {"Propagation", m.propagation.empty() && m.type == "bind" ? "rprivate" : m.propagation}};
    if (m.type == "volume") {
      j["Name"] = m.source;
      j["Driver"] = "local";
      j["Source"] = paths_.data_root + "/volumes/" + m.source + "/_data";
    }
    mounts.push_back(j);
  }
  Json config = spec_json;
  config.erase("HostConfig");
  config["Hostname"] = s.hostname.empty() ? c.id.substr(0, 12) : s.hostname;
  if (config["Cmd"].is_null() && c.args.size() > 0) config["Cmd"] = Json::array();
  std::string path = c.args.empty() ? "" : c.args[0];
  std::vector<std::string> args;
  if (c.args.size() > 1) args.assign(c.args.begin() + 1, c.args.end());
  std::string data = DataDir(c.id);
  Json state = {{"Status", c.status},
                {"Running", c.status == "running" || c.status == "paused"},
                {"Paused", c.status == "paused"},
                {"Restarting", c.status == "restarting"},
                {"OOMKilled", c.oom_killed},
                {"Dead", c.status == "dead"},
                {"Pid", c.pid},
                {"ExitCode", c.exit_code},
                {"Error", c.error},
                {"StartedAt", FormatTime(c.started_nano)},
                {"FinishedAt", FormatTime(c.finished_nano)}};
  Json exec_ids = Json::array();
  for (const auto& e : c.exec_ids) exec_ids.push_back(e);
  return {{"Id", c.id},
          {"Created", FormatTime(c.created_nano)},
          {"Path", path},
          {"Args", args},
          {"State", state},
          {"Image", c.image_id},
          {"ResolvConfPath", data + "/resolv.conf"},
          {"HostnamePath", data + "/hostname"},
          {"HostsPath", data + "/hosts"},
          {"LogPath", data + "/" + c.id + "-json.log"},
          {"Name", "/" + c.name},
          {"RestartCount", c.restart_count},
          {"Driver", "overlay2"},
          {"Platform", "linux"},
          {"MountLabel", ""},
          {"ProcessLabel", ""},
          {"AppArmorProfile", s.apparmor_profile.value_or("")},
          {"ExecIDs", exec_ids.empty() ? Json(nullptr) : exec_ids},
          {"HostConfig", hc},
          {"GraphDriver", {{"Name", "overlay2"}, {"Data", {{"UpperDir", data + "/upper"}, {"WorkDir", data + "/work"}, {"MergedDir", ExecDir(c.id) + "/bundle/rootfs"}}}}},
          {"Mounts", mounts},
          {"Config", config},
          {"NetworkSettings", NetworkSettingsLocked(c)}};
}

Json Containers::NetworkSettingsLocked(const Container& c) {
  const auto& s = c.spec;
  if (networks_) return networks_->SettingsJson(c.id, s);
  return {{"Bridge", ""}, {"SandboxID", ""}, {"HairpinMode", false}, {"Ports", Json::object()},
          {"SandboxKey", ""}, {"IPAddress", ""}, {"Gateway", ""}, {"MacAddress", ""},
          {"Networks", s.network_mode == "none" || s.network_mode == "host"
                           ? Json{{s.network_mode, {{"NetworkID", s.network_mode}, {"IPAddress", ""}}}}
                           : Json::object()}};
}

Json Containers::SummaryJsonLocked(const Container& c) {
  int64_t now = NowNano();
  std::string status;
  if (c.status == "running" || c.status == "paused") {
    status = "Up " + HumanDuration((now - c.started_nano) / 1'000'000'000);
    if (c.status == "paused") status += " (Paused)";
  } else if (c.status == "restarting") {
    status = "Restarting (" + std::to_string(c.exit_code) + ") " +
             HumanDuration((now - c.finished_nano) / 1'000'000'000) + " ago";
  } else if (c.status == "exited") {
    status = "Exited (" + std::to_string(c.exit_code) + ") " +
             HumanDuration((now - c.finished_nano) / 1'000'000'000) + " ago";
  } else {
    status = "Created";
  }
  Json mounts = Json::array();
  for (const auto& m : c.spec.mounts) {
    mounts.push_back({{"Type", m.type}, {"Source", m.source}, {"Destination", m.target}, {"RW", !m.read_only}});
  }
  Json settings = NetworkSettingsLocked(c);
  Json ports = Json::array();
  const Json port_map = settings.contains("Ports") && settings["Ports"].is_object() ? settings["Ports"] : Json::object();
  for (auto it = port_map.begin(); it != port_map.end(); ++it) {
    const std::string& key = it.key();
    const Json& list = it.value();
    auto pp = privsep::ParsePortProto(key);
    if (!pp) continue;
    if (!list.is_array()) {
      ports.push_back({{"PrivatePort", pp->first}, {"Type", pp->second}});
      continue;
    }
    for (const auto& b : list) {
      ports.push_back({{"IP", b.value("HostIp", "")}, {"PrivatePort", pp->first},
                       {"PublicPort", std::stoi(b.value("HostPort", "0"))}, {"Type", pp->second}});
    }
  }
  return {{"Id", c.id},
          {"Names", {"/" + c.name}},
          {"Image", c.spec.image},
          {"ImageID", c.image_id},
          {"Command", ShellQuoteJoin(c.args)},
          {"Created", c.created_nano / 1'000'000'000},
          {"Ports", ports},
          {"Labels", c.spec.labels},
          {"State", c.status},
          {"Status", status},
          {"HostConfig", {{"NetworkMode", c.spec.network_mode}}},
          {"NetworkSettings", {{"Networks", settings["Networks"]}}},
          {"Mounts", mounts}};
}

Result<Json> Containers::Inspect(const std::string& ref) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  std::lock_guard lock(mu_);
  return InspectJsonLocked(*c);
}

Result<Json> Containers::List(bool all, int64_t limit, const Json& filters) {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<Container>> list;
  for (const auto& [id, c] : by_id_) list.push_back(c);
  std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a->created_nano > b->created_nano; });
  auto statuses = FilterValues(filters, "status");
  auto names = FilterValues(filters, "name");
  auto ids = FilterValues(filters, "id");
  auto labels = FilterValues(filters, "label");
  auto exited = FilterValues(filters, "exited");
  auto ancestors = FilterValues(filters, "ancestor");
  if (!statuses.empty() || !exited.empty()) all = true;
  Json out = Json::array();
  for (const auto& c : list) {
    if (limit > 0 && static_cast<int64_t>(out.size()) >= limit) break;
    bool running = c->status == "running" || c->status == "paused" || c->status == "restarting";
    if (!all && limit <= 0 && !running) continue;
    if (!statuses.empty() && std::find(statuses.begin(), statuses.end(), c->status) == statuses.end()) continue;
    if (!exited.empty() && (c->status != "exited" ||
                            std::find(exited.begin(), exited.end(), std::to_string(c->exit_code)) == exited.end())) {
      continue;
    }
    if (!names.empty()) {
      bool match = false;
      for (const auto& n : names) {
        std::string want = n[0] == '/' ? n.substr(1) : n;
        if (c->name.find(want) != std::string::npos) match = true;
      }
      if (!match) continue;
    }
    if (!ids.empty()) {
      bool match = false;
      for (const auto& i : ids) {
        if (c->id.rfind(i, 0) == 0) match = true;
      }
      if (!match) continue;
    }
    if (!labels.empty()) {
      bool match = true;
      for (const auto& l : labels) {
        auto eq = l.find('=');
        std::string k = l.substr(0, eq);
        auto it = c->spec.labels.find(k);
        if (it == c->spec.labels.end() || (eq != std::string::npos && it->second != l.substr(eq + 1))) match = false;
      }
      if (!match) continue;
    }
    if (!ancestors.empty()) {
      bool match = false;
      for (const auto& a : ancestors) {
        if (a == c->spec.image || c->image_id == a || c->image_id == "sha256:" + a ||
            (a.size() >= 4 && c->image_id.find(a) == 7)) {
          match = true;
        }
      }
      if (!match) continue;
    }
    out.push_back(SummaryJsonLocked(*c));
  }
  return out;
}

Result<Json> Containers::Top(const std::string& ref, const std::string& ps_args) {
  MOAT_ASSIGN_OR_RETURN(auto c, Find(ref));
  {
    std::lock_guard lock(mu_);
    if (c->status != "running" && c->status != "paused") {
      return Fail(ErrorKind::kConflict, "Container %s is not running", c->id.c_str());
    }
  }
  // The container's pids from its cgroup (as the runtime recorded it), then /proc for each.
  (void)ps_args;
  MOAT_ASSIGN_OR_RETURN(auto cgroup_paths,
                        CgroupPathsFromState(paths_.exec_root + "/runtime/" + c->id + "/state.json"));
  std::vector<std::string> procs_files;
  for (const auto& [hierarchy, path] : cgroup_paths) {
    std::string mount = hierarchy.empty() ? "/sys/fs/cgroup" : "/sys/fs/cgroup/" + hierarchy;
    procs_files.push_back(mount + path + "/cgroup.procs");
  }
  std::set<std::string> pids;
  for (const auto& f : procs_files) {
    if (auto t = sys::ReadFile(f)) {
      for (const auto& line : StrSplit(*t, '\n')) {
        if (!line.empty()) pids.insert(line);
      }
      if (!pids.empty()) break;
    }
  }
  Json procs = Json::array();
  for (const auto& pid : pids) {
    std::string stat = sys::ReadFile("/proc/" + pid + "/status").value_or("");
    std::string uid = "0", ppid = "0";
    for (const auto& line : StrSplit(stat, '\n')) {
      if (line.rfind("Uid:", 0) == 0) uid = std::string(TrimWhitespace(line.substr(4)).substr(0, TrimWhitespace(line.substr(4)).find('\t')));
      if (line.rfind("PPid:", 0) == 0) ppid = std::string(TrimWhitespace(line.substr(5)));
    }
    std::string cmdline = sys::ReadFile("/proc/" + pid + "/cmdline").value_or("");
    for (char& ch : cmdline) {
      if (ch == '\0') ch = ' ';
    }
    procs.push_back({uid, pid, ppid, "0", "", "?", "00:00:00", std::string(TrimWhitespace(cmdline))});
  }
  return Json{{"Titles", {"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}}, {"Processes", procs}};
}

}  // namespace moat::daemon::core
