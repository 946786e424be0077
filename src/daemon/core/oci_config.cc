#include "daemon/core/oci_config.h"

#include <set>

#include "base/strings.h"
#include "oci/names.h"

namespace moat::daemon::core {
namespace {

std::string CapName(const std::string& c) {
  std::string up;
  for (char ch : c) up += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (up.rfind("CAP_", 0) != 0) up = "CAP_" + up;
  return up;
}

// Merges "K=V" lists: later entries replace earlier ones with the same key.
std::vector<std::string> MergeEnv(const std::vector<std::string>& base,
                                  const std::vector<std::string>& over) {
  std::vector<std::string> out;
  auto key = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  for (const auto* list : {&base, &over}) {
    for (const auto& kv : *list) {
      bool replaced = false;
      for (auto& e : out) {
        if (key(e) == key(kv)) {
          e = kv;
          replaced = true;
        }
      }
      if (!replaced) out.push_back(kv);
    }
  }
  return out;
}

bool HasEnv(const std::vector<std::string>& env, const std::string& k) {
  for (const auto& e : env) {
    if (e.rfind(k + "=", 0) == 0) return true;
  }
  return false;
}

Json Throttles(const std::vector<privsep::ThrottleDevice>& v) {
  Json a = Json::array();
  for (const auto& t : v) {
    // The runtime wants major:minor; the core resolved paths to "major:minor" before calling.
    auto parts = StrSplit(t.path, ':');
    if (parts.size() != 2) continue;
    a.push_back({{"major", std::stoll(parts[0])}, {"minor", std::stoll(parts[1])}, {"rate", t.rate}});
  }
  return a;
}

}  // namespace

Result<std::vector<std::string>> ProcessArgs(const privsep::ContainerSpec& spec,
                                             const image::ImageConfigView& image) {
  std::vector<std::string> args;
  if (spec.entrypoint) {
    args = *spec.entrypoint;
    if (spec.cmd) args.insert(args.end(), spec.cmd->begin(), spec.cmd->end());
  } else {
    args = image.entrypoint;
    const auto& cmd = spec.cmd ? *spec.cmd : image.cmd;
    args.insert(args.end(), cmd.begin(), cmd.end());
  }
  if (args.empty() || args[0].empty()) {
    return Fail(ErrorKind::kInvalidArgument, "no command specified");
  }
  return args;
}

Result<Json> BuildOciConfig(const Json& default_spec, const ConfigInputs& in) {
  const privsep::ContainerSpec& s = *in.spec;
  const image::ImageConfigView& img = *in.image;
  Json c = default_spec;
  Json& p = c["process"];
  MOAT_ASSIGN_OR_RETURN(std::vector<std::string> args, ProcessArgs(s, img));
  if (!in.init_path.empty()) {
    args.insert(args.begin(), {"/sbin/moat-init", "--"});
  }
  p["args"] = args;
  std::vector<std::string> env = MergeEnv(img.env, s.env);
  if (!HasEnv(env, "PATH")) env.insert(env.begin(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  env.insert(env.begin(), "HOSTNAME=" + in.hostname);
  if (s.tty && !HasEnv(env, "TERM")) env.push_back("TERM=xterm");
  p["env"] = env;
  std::string cwd = !s.working_dir.empty() ? s.working_dir : (!img.working_dir.empty() ? img.working_dir : "/");
  p["cwd"] = cwd;
  p["terminal"] = s.tty;
  if (s.tty) p["consoleSize"] = {{"height", 24}, {"width", 80}};
  p["user"] = {{"uid", in.uid}, {"gid", in.gid}};
  if (!in.additional_gids.empty()) p["user"]["additionalGids"] = in.additional_gids;
  p["noNewPrivileges"] = s.no_new_privileges && !s.privileged;

  // Capabilities: the default set, or all with --privileged; then add, then drop (docker's
  // order: drop ALL then add is expressed as cap_drop ALL + cap_add X).
  std::set<std::string> caps;
  if (s.privileged) {
    for (int i = 0; i <= oci::LastCapability(); ++i) caps.insert(std::string(oci::CapabilityName(i)));
  } else {
    for (const auto& cap : p["capabilities"]["bounding"]) caps.insert(cap.get<std::string>());
  }
  bool drop_all = false;
  for (const auto& d : s.cap_drop) {
    if (d == "ALL" || d == "all") drop_all = true;
  }
  if (drop_all) caps.clear();
  for (const auto& d : s.cap_drop) caps.erase(CapName(d));
  for (const auto& a : s.cap_add) {
    if (a == "ALL" || a == "all") {
      for (int i = 0; i <= oci::LastCapability(); ++i) caps.insert(std::string(oci::CapabilityName(i)));
    } else {
      caps.insert(CapName(a));
    }
  }
  Json caplist(std::vector<std::string>(caps.begin(), caps.end()));
  p["capabilities"] = {{"bounding", caplist}, {"effective", caplist}, {"permitted", caplist}};
  if (in.uid != 0) p["capabilities"]["effective"] = Json::array();

  Json rlimits = Json::array();
  bool nofile_set = false;
  for (const auto& u : s.ulimits) {
    std::string type = "RLIMIT_";
    for (char ch : u.name) type += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    if (type == "RLIMIT_NOFILE") nofile_set = true;
    rlimits.push_back({{"type", type}, {"soft", u.soft}, {"hard", u.hard}});
  }
  if (!nofile_set && in.default_nofile > 0) {
    rlimits.push_back({{"type", "RLIMIT_NOFILE"}, {"soft", in.default_nofile}, {"hard", in.default_nofile}});
  }
  p["rlimits"] = rlimits;
  if (s.oom_score_adj) p["oomScoreAdj"] = *s.oom_score_adj;
  if (s.apparmor_profile && *s.apparmor_profile != "unconfined" && !s.apparmor_profile->empty()) {
    p["apparmorProfile"] = *s.apparmor_profile;
  }

  c["root"] = {{"path", "rootfs"}, {"readonly", s.read_only_rootfs}};
  c["hostname"] = in.hostname;
  if (!s.domainname.empty()) c["domainname"] = s.domainname;

  Json& mounts = c["mounts"];
  if (s.privileged) {
    for (auto& m : mounts) {
      if (m["destination"] == "/sys" || m["destination"] == "/sys/fs/cgroup") {
        Json opts = Json::array();
        for (const auto& o : m["options"]) {
          if (o != "ro") opts.push_back(o);
        }
        opts.push_back("rw");
        m["options"] = opts;
      }
    }
  }
  if (s.shm_size > 0) {
    for (auto& m : mounts) {
      if (m["destination"] == "/dev/shm") {
        m["options"] = {"nosuid", "noexec", "nodev", "mode=1777",
                        "size=" + std::to_string(s.shm_size / 1024) + "k"};
      }
    }
  }
  auto bind = [&](const std::string& src, const std::string& dst, bool ro) {
    Json opts = {"rbind", "nosuid", "nodev", "noexec"};
    opts.push_back(ro ? "ro" : "rw");
    mounts.push_back({{"destination", dst}, {"type", "bind"}, {"source", src}, {"options", opts}});
  };
  if (!in.hosts_path.empty()) bind(in.hosts_path, "/etc/hosts", false);
  if (!in.hostname_path.empty()) bind(in.hostname_path, "/etc/hostname", false);
  if (!in.resolv_conf_path.empty()) bind(in.resolv_conf_path, "/etc/resolv.conf", false);
  if (!in.init_path.empty()) {
    mounts.push_back({{"destination", "/sbin/moat-init"}, {"type", "bind"}, {"source", in.init_path},
                      {"options", {"bind", "ro", "nosuid", "nodev"}}});
  }
  for (size_t i = 0; i < s.mounts.size(); ++i) {
    const auto& m = s.mounts[i];
    if (m.type == "tmpfs") {
      Json opts = {"nosuid", "nodev", "noexec"};
      opts.push_back(m.read_only ? "ro" : "rw");
      if (m.tmpfs_size > 0) opts.push_back("size=" + std::to_string(m.tmpfs_size));
      char mode[32];
      snprintf(mode, sizeof mode, "mode=%o", m.tmpfs_mode ? m.tmpfs_mode : 01777);
      opts.push_back(mode);
      mounts.push_back({{"destination", m.target}, {"type", "tmpfs"}, {"source", "tmpfs"}, {"options", opts}});
      continue;
    }
    std::string src = m.type == "volume" ? in.volume_dirs.at(i) : m.source;
    Json opts = {"rbind"};
    opts.push_back(m.read_only ? "ro" : "rw");
    opts.push_back(m.propagation.empty() ? "rprivate" : m.propagation);
    mounts.push_back({{"destination", m.target}, {"type", "bind"}, {"source", src}, {"options", opts}});
  }

  Json& linux = c["linux"];
  Json& res = linux["resources"];
  if (s.privileged) {
    res["devices"] = Json::array({{{"allow", true}, {"access", "rwm"}}});
    linux.erase("maskedPaths");
    linux.erase("readonlyPaths");
  }
  for (const auto& d : s.devices) {
    // The core resolved the host device into type/major/minor in path_on_host's place:
    // "c 1:3" (see Containers::ResolveDevices).
    auto parts = StrSplit(d.path_on_host, ' ');
    if (parts.size() != 2) continue;
    auto mm = StrSplit(parts[1], ':');
    if (mm.size() != 2) continue;
    int64_t major = std::stoll(mm[0]), minor = std::stoll(mm[1]);
    linux["devices"].push_back({{"path", d.path_in_container}, {"type", parts[0]}, {"major", major},
                                {"minor", minor}, {"fileMode", 0666}, {"uid", 0}, {"gid", 0}});
    res["devices"].push_back({{"allow", true}, {"type", parts[0]}, {"major", major}, {"minor", minor},
                              {"access", d.permissions}});
  }
  if (s.memory > 0 || s.memory_swap != 0 || s.memory_reservation > 0) {
    Json mem = Json::object();
    if (s.memory > 0) mem["limit"] = s.memory;
    if (s.memory_reservation > 0) mem["reservation"] = s.memory_reservation;
    if (s.memory_swap > 0) mem["swap"] = s.memory_swap;
    if (s.memory_swap == -1) mem["swap"] = -1;
    if (s.memory > 0 && s.memory_swap == 0) mem["swap"] = s.memory * 2;  // docker's default
    res["memory"] = mem;
  }
  Json cpu = Json::object();
  if (s.cpu_shares > 0) cpu["shares"] = s.cpu_shares;
  if (s.nano_cpus > 0) {
    cpu["period"] = 100000;
    cpu["quota"] = s.nano_cpus / 10000;
  }
  if (s.cpu_quota > 0) cpu["quota"] = s.cpu_quota;
  if (s.cpu_period > 0) cpu["period"] = s.cpu_period;
  if (!s.cpuset_cpus.empty()) cpu["cpus"] = s.cpuset_cpus;
  if (!s.cpuset_mems.empty()) cpu["mems"] = s.cpuset_mems;
  if (!cpu.empty()) res["cpu"] = cpu;
  if (s.pids_limit) res["pids"] = {{"limit", *s.pids_limit}};
  Json blkio = Json::object();
  if (s.blkio_weight > 0) blkio["weight"] = s.blkio_weight;
  if (!s.read_bps.empty()) blkio["throttleReadBpsDevice"] = Throttles(s.read_bps);
  if (!s.write_bps.empty()) blkio["throttleWriteBpsDevice"] = Throttles(s.write_bps);
  if (!s.read_iops.empty()) blkio["throttleReadIOPSDevice"] = Throttles(s.read_iops);
  if (!s.write_iops.empty()) blkio["throttleWriteIOPSDevice"] = Throttles(s.write_iops);
  if (!blkio.empty()) res["blockIO"] = blkio;

  if (s.network_mode == "host") {
    Json ns = Json::array();
    for (const auto& n : linux["namespaces"]) {
      if (n["type"] != "network") ns.push_back(n);
    }
    linux["namespaces"] = ns;
    linux["sysctl"].erase("net.ipv4.ping_group_range");
  }
  if (!in.netns_path.empty() && s.network_mode != "host") {
    for (auto& n : linux["namespaces"]) {
      if (n["type"] == "network") n["path"] = in.netns_path;
    }
  }
  for (const auto& [k, v] : s.sysctls) linux["sysctl"][k] = v;
  linux["cgroupsPath"] = in.cgroups_path;

  bool unconfined = s.privileged || (s.seccomp_profile && *s.seccomp_profile == "unconfined");
  if (!unconfined && !in.seccomp_json.empty()) {
    MOAT_ASSIGN_OR_RETURN(Json prof, ParseJson(in.seccomp_json));
    linux["seccomp"] = prof;
  } else if (unconfined) {
    linux.erase("seccomp");
  }
  return c;
}

Result<Json> BuildExecProcess(const Json& container_process, const privsep::ExecSpec& exec,
                              uint32_t uid, uint32_t gid) {
  Json p = container_process;
  p["args"] = exec.cmd;
  std::vector<std::string> env;
  for (const auto& e : p["env"]) env.push_back(e.get<std::string>());
  p["env"] = MergeEnv(env, exec.env);
  if (!exec.working_dir.empty()) p["cwd"] = exec.working_dir;
  p["terminal"] = exec.tty;
  p.erase("consoleSize");
  if (!exec.user.empty()) p["user"] = {{"uid", uid}, {"gid", gid}};
  return p;
}

}  // namespace moat::daemon::core
