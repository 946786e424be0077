#include "daemon/privsep/commands.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

#include "base/base64.h"
#include "base/strings.h"
#include "oci/names.h"

namespace moat::daemon::privsep {
namespace {

std::string ToUpper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool IsAbsoluteClean(const std::string& p) {
  if (p.empty() || p[0] != '/') return false;
  for (const auto& part : StrSplit(p, '/')) {
    if (part == "..") return false;
  }
  return p.find('\0') == std::string::npos;
}

// "src:dst[:opts]" from HostConfig.Binds.
Result<MountSpec> ParseBind(const std::string& bind, size_t index) {
  std::string field = "HostConfig.Binds[" + std::to_string(index) + "]";
  auto parts = StrSplit(bind, ':');
  if (parts.size() < 2 || parts.size() > 3) {
    return Fail(ErrorKind::kInvalidArgument, "invalid volume specification: '%s'", bind.c_str());
  }
  MountSpec m;
  m.from_bind_string = true;
  m.source = parts[0];
  m.target = parts[1];
  m.type = (!m.source.empty() && m.source[0] == '/') ? "bind" : "volume";
  if (parts.size() == 3) {
    for (const auto& opt : StrSplit(parts[2], ',')) {
      if (opt == "ro") {
        m.read_only = true;
      } else if (opt == "rw") {
        m.read_only = false;
      } else if (opt == "rprivate" || opt == "private" || opt == "rshared" || opt == "shared" ||
                 opt == "rslave" || opt == "slave") {
        m.propagation = opt;
      } else if (opt == "z" || opt == "Z" || opt == "nocopy" || opt == "consistent" ||
                 opt == "cached" || opt == "delegated") {
        // SELinux relabel and macOS hints: accepted, no effect here.
      } else {
        return Fail(ErrorKind::kInvalidArgument, "%s: invalid mode: %s", field.c_str(), opt.c_str());
      }
    }
  }
  return m;
}

Result<std::vector<ThrottleDevice>> GetThrottle(const Json& hc, const char* key) {
  std::vector<ThrottleDevice> out;
  if (!hc.contains(key) || hc[key].is_null()) return out;
  const Json& a = hc[key];
  std::string field = std::string("HostConfig.") + key;
  if (!a.is_array()) return Fail(ErrorKind::kInvalidArgument, "%s: expected array", field.c_str());
  for (size_t i = 0; i < a.size(); ++i) {
    std::string f = field + "[" + std::to_string(i) + "]";
    ThrottleDevice t;
    int64_t rate = 0;
    MOAT_TRY(GetString(a[i], "Path", &t.path, f + ".Path"));
    MOAT_TRY(GetInt(a[i], "Rate", &rate, f + ".Rate"));
    if (rate < 0) return Fail(ErrorKind::kInvalidArgument, "%s.Rate: negative", f.c_str());
    t.rate = static_cast<uint64_t>(rate);
    out.push_back(t);
  }
  return out;
}

Json ThrottleJson(const std::vector<ThrottleDevice>& v) {
  Json a = Json::array();
  for (const auto& t : v) a.push_back({{"Path", t.path}, {"Rate", t.rate}});
  return a;
}

Result<void> ParseSecurityOpt(const std::string& opt, ContainerSpec* spec) {
  std::string key = opt, value;
  size_t eq = opt.find_first_of("=:");
  if (eq != std::string::npos) {
    key = opt.substr(0, eq);
    value = opt.substr(eq + 1);
  }
  if (key == "no-new-privileges") {
    if (value.empty() || value == "true") {
      spec->no_new_privileges = true;
    } else if (value == "false") {
      spec->no_new_privileges = false;
    } else {
      return Fail(ErrorKind::kInvalidArgument, "invalid --security-opt: %s", opt.c_str());
    }
  } else if (key == "seccomp") {
    if (value.empty()) return Fail(ErrorKind::kInvalidArgument, "invalid --security-opt: %s", opt.c_str());
    spec->seccomp_profile = value;
  } else if (key == "apparmor") {
    spec->apparmor_profile = value;
  } else if (key == "label") {
    spec->selinux_label.push_back(value);
  } else {
    return Fail(ErrorKind::kInvalidArgument, "invalid --security-opt: %s", opt.c_str());
  }
  return {};
}

Result<uint16_t> ParsePortNumber(const std::string& text, const std::string& field) {
  if (text.empty() || text.size() > 5 || !std::all_of(text.begin(), text.end(), ::isdigit)) {
    return Fail(ErrorKind::kInvalidArgument, "%s: invalid port '%s'", field.c_str(), text.c_str());
  }
  unsigned long v = std::stoul(text);
  if (v == 0 || v > 65535) {
    return Fail(ErrorKind::kInvalidArgument, "%s: port '%s' is out of range (1-65535)", field.c_str(), text.c_str());
  }
  return static_cast<uint16_t>(v);
}

bool IsIpLiteral(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

Result<EndpointSpec> DecodeEndpointSpec(const Json& e, const std::string& field) {
  EndpointSpec ep;
  if (!e.is_object()) return Fail(ErrorKind::kInvalidArgument, "%s: expected an object", field.c_str());
  MOAT_TRY(GetStringList(e, "Aliases", &ep.aliases, field + ".Aliases"));
  MOAT_TRY(GetStringList(e, "Links", &ep.links, field + ".Links"));
  MOAT_TRY(GetString(e, "MacAddress", &ep.mac, field + ".MacAddress"));
  MOAT_ASSIGN_OR_RETURN(const Json* ipam, GetObject(e, "IPAMConfig", field + ".IPAMConfig"));
  if (ipam) {
    MOAT_TRY(GetString(*ipam, "IPv4Address", &ep.ipv4, field + ".IPAMConfig.IPv4Address"));
    MOAT_TRY(GetString(*ipam, "IPv6Address", &ep.ipv6, field + ".IPAMConfig.IPv6Address"));
  }
  return ep;
}

Json EncodeEndpointSpec(const EndpointSpec& e) {
  return {{"Aliases", e.aliases}, {"Links", e.links}, {"MacAddress", e.mac},
          {"IPAMConfig", {{"IPv4Address", e.ipv4}, {"IPv6Address", e.ipv6}}}};
}

std::string PrimaryNetwork(const ContainerSpec& s) {
  return s.network_mode == "default" ? "bridge" : s.network_mode;
}

Result<void> ValidateNetworkName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 255 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') ok = false;
  }
  if (!ok) {
    return Fail(ErrorKind::kInvalidArgument, "invalid network name \"%s\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                name.c_str());
  }
  return {};
}

Result<std::pair<uint16_t, std::string>> ParsePortProto(const std::string& text) {
  std::string port = text, proto = "tcp";
  if (size_t slash = text.find('/'); slash != std::string::npos) {
    port = text.substr(0, slash);
    proto = text.substr(slash + 1);
  }
  if (proto != "tcp" && proto != "udp" && proto != "sctp") {
    return Fail(ErrorKind::kInvalidArgument, "invalid protocol '%s' in port '%s'", proto.c_str(), text.c_str());
  }
  MOAT_ASSIGN_OR_RETURN(uint16_t p, ParsePortNumber(port, "port " + text));
  return std::pair{p, proto};
}

Result<std::vector<PortBinding>> DecodePortBindings(const Json& pb) {
  std::vector<PortBinding> out;
  if (pb.is_null()) return out;
  if (!pb.is_object()) return Fail(ErrorKind::kInvalidArgument, "HostConfig.PortBindings: expected an object");
  for (auto it = pb.begin(); it != pb.end(); ++it) {
    std::string field = "HostConfig.PortBindings[" + it.key() + "]";
    MOAT_ASSIGN_OR_RETURN(auto pp, ParsePortProto(it.key()));
    const Json& list = it.value();
    if (list.is_null()) continue;
    if (!list.is_array()) return Fail(ErrorKind::kInvalidArgument, "%s: expected an array", field.c_str());
    for (size_t i = 0; i < list.size(); ++i) {
      std::string f = field + "[" + std::to_string(i) + "]";
      PortBinding b;
      b.container_port = pp.first;
      b.proto = pp.second;
      std::string host_port;
      MOAT_TRY(GetString(list[i], "HostIp", &b.host_ip, f + ".HostIp"));
      MOAT_TRY(GetString(list[i], "HostPort", &host_port, f + ".HostPort"));
      if (!b.host_ip.empty() && !IsIpLiteral(b.host_ip)) {
        return Fail(ErrorKind::kInvalidArgument, "%s.HostIp: invalid IP address '%s'", f.c_str(), b.host_ip.c_str());
      }
      if (!host_port.empty()) {
        if (size_t dash = host_port.find('-'); dash != std::string::npos) {
          MOAT_ASSIGN_OR_RETURN(b.host_port, ParsePortNumber(host_port.substr(0, dash), f + ".HostPort"));
          MOAT_ASSIGN_OR_RETURN(b.host_port_end, ParsePortNumber(host_port.substr(dash + 1), f + ".HostPort"));
          if (b.host_port_end < b.host_port) {
            return Fail(ErrorKind::kInvalidArgument, "%s.HostPort: invalid range '%s'", f.c_str(), host_port.c_str());
          }
        } else {
          MOAT_ASSIGN_OR_RETURN(b.host_port, ParsePortNumber(host_port, f + ".HostPort"));
        }
      }
      out.push_back(b);
    }
  }
  return out;
}

Json EncodePortBindings(const std::vector<PortBinding>& ports) {
  Json pb = Json::object();
  for (const auto& b : ports) {
    std::string key = std::to_string(b.container_port) + "/" + b.proto;
    std::string hp = b.host_port ? std::to_string(b.host_port) : "";
    if (b.host_port_end) hp += "-" + std::to_string(b.host_port_end);
    if (!pb.contains(key)) pb[key] = Json::array();
    pb[key].push_back({{"HostIp", b.host_ip}, {"HostPort", hp}});
  }
  return pb;
}

Result<std::string> NormaliseContainerName(const std::string& in) {
  std::string name = in;
  if (!name.empty() && name[0] == '/') name.erase(0, 1);
  bool ok = name.size() >= 2 && name.size() <= 255 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') ok = false;
  }
  if (!ok) {
    return Fail(ErrorKind::kInvalidArgument,
                "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                in.c_str());
  }
  return name;
}

Result<int> ParseSignal(const std::string& s) {
  auto sig = oci::SignalFromName(s);
  if (!sig) return Fail(ErrorKind::kInvalidArgument, "Invalid signal: %s", s.c_str());
  return *sig;
}

Result<ContainerSpec> DecodeContainerSpec(const Json& body, const std::string& name) {
  if (!body.is_object()) return Fail(ErrorKind::kInvalidArgument, "request body: expected a JSON object");
  ContainerSpec s;
  if (!name.empty()) {
    MOAT_ASSIGN_OR_RETURN(s.name, NormaliseContainerName(name));
  }
  const Json& c = body;
  MOAT_TRY(GetString(c, "Image", &s.image, "Image"));
  MOAT_TRY(GetString(c, "Hostname", &s.hostname, "Hostname"));
  MOAT_TRY(GetString(c, "Domainname", &s.domainname, "Domainname"));
  MOAT_TRY(GetString(c, "User", &s.user, "User"));
  MOAT_TRY(GetString(c, "WorkingDir", &s.working_dir, "WorkingDir"));
  MOAT_TRY(GetStringList(c, "Env", &s.env, "Env"));
  MOAT_TRY(GetStrSlice(c, "Cmd", &s.cmd, "Cmd"));
  MOAT_TRY(GetStrSlice(c, "Entrypoint", &s.entrypoint, "Entrypoint"));
  MOAT_TRY(GetBool(c, "Tty", &s.tty, "Tty"));
  MOAT_TRY(GetBool(c, "OpenStdin", &s.open_stdin, "OpenStdin"));
  MOAT_TRY(GetBool(c, "StdinOnce", &s.stdin_once, "StdinOnce"));
  MOAT_TRY(GetBool(c, "AttachStdin", &s.attach_stdin, "AttachStdin"));
  MOAT_TRY(GetBool(c, "AttachStdout", &s.attach_stdout, "AttachStdout"));
  MOAT_TRY(GetBool(c, "AttachStderr", &s.attach_stderr, "AttachStderr"));
  MOAT_TRY(GetStringMap(c, "Labels", &s.labels, "Labels"));
  MOAT_TRY(GetString(c, "StopSignal", &s.stop_signal, "StopSignal"));
  if (c.contains("StopTimeout") && !c["StopTimeout"].is_null()) {
    int64_t t = 0;
    MOAT_TRY(GetInt(c, "StopTimeout", &t, "StopTimeout"));
    s.stop_timeout = t;
  }
  MOAT_ASSIGN_OR_RETURN(const Json* exposed, GetObject(c, "ExposedPorts", "ExposedPorts"));
  if (exposed) {
    for (auto it = exposed->begin(); it != exposed->end(); ++it) s.exposed_ports.push_back(it.key());
  }

  MOAT_ASSIGN_OR_RETURN(const Json* hcp, GetObject(c, "HostConfig", "HostConfig"));
  static const Json kEmpty = Json::object();
  const Json& hc = hcp ? *hcp : kEmpty;
  MOAT_TRY(GetBool(hc, "AutoRemove", &s.auto_remove, "HostConfig.AutoRemove"));
  MOAT_ASSIGN_OR_RETURN(const Json* rp, GetObject(hc, "RestartPolicy", "HostConfig.RestartPolicy"));
  if (rp) {
    MOAT_TRY(GetString(*rp, "Name", &s.restart_policy, "HostConfig.RestartPolicy.Name"));
    if (s.restart_policy.empty()) s.restart_policy = "no";
    MOAT_TRY(GetInt(*rp, "MaximumRetryCount", &s.restart_max_retries,
                    "HostConfig.RestartPolicy.MaximumRetryCount"));
  }
  MOAT_TRY(GetString(hc, "NetworkMode", &s.network_mode, "HostConfig.NetworkMode"));
  if (s.network_mode.empty()) s.network_mode = "default";
  MOAT_TRY(GetStringList(hc, "CapAdd", &s.cap_add, "HostConfig.CapAdd"));
  MOAT_TRY(GetStringList(hc, "CapDrop", &s.cap_drop, "HostConfig.CapDrop"));
  MOAT_TRY(GetBool(hc, "Privileged", &s.privileged, "HostConfig.Privileged"));
  MOAT_TRY(GetBool(hc, "ReadonlyRootfs", &s.read_only_rootfs, "HostConfig.ReadonlyRootfs"));
  MOAT_TRY(GetBool(hc, "Init", &s.init, "HostConfig.Init"));
  std::vector<std::string> secopts;
  MOAT_TRY(GetStringList(hc, "SecurityOpt", &secopts, "HostConfig.SecurityOpt"));
  // Moat's default is no_new_privileges on; the option can turn it off explicitly.
  for (const auto& o : secopts) MOAT_TRY(ParseSecurityOpt(o, &s));
  if (hc.contains("NoNewPrivileges") && hc["NoNewPrivileges"].is_boolean()) {
    s.no_new_privileges = hc["NoNewPrivileges"].get<bool>();
  }
  std::vector<std::string> binds;
  MOAT_TRY(GetStringList(hc, "Binds", &binds, "HostConfig.Binds"));
  for (size_t i = 0; i < binds.size(); ++i) {
    MOAT_ASSIGN_OR_RETURN(MountSpec m, ParseBind(binds[i], i));
    s.mounts.push_back(std::move(m));
  }
  if (hc.contains("Mounts") && !hc["Mounts"].is_null()) {
    const Json& ms = hc["Mounts"];
    if (!ms.is_array()) return Fail(ErrorKind::kInvalidArgument, "HostConfig.Mounts: expected array");
    for (size_t i = 0; i < ms.size(); ++i) {
      std::string f = "HostConfig.Mounts[" + std::to_string(i) + "]";
      MountSpec m;
      m.type.clear();
      MOAT_TRY(GetString(ms[i], "Type", &m.type, f + ".Type"));
      MOAT_TRY(GetString(ms[i], "Source", &m.source, f + ".Source"));
      MOAT_TRY(GetString(ms[i], "Target", &m.target, f + ".Target"));
      MOAT_TRY(GetBool(ms[i], "ReadOnly", &m.read_only, f + ".ReadOnly"));
      MOAT_ASSIGN_OR_RETURN(const Json* bo, GetObject(ms[i], "BindOptions", f + ".BindOptions"));
      if (bo) MOAT_TRY(GetString(*bo, "Propagation", &m.propagation, f + ".BindOptions.Propagation"));
      MOAT_ASSIGN_OR_RETURN(const Json* to, GetObject(ms[i], "TmpfsOptions", f + ".TmpfsOptions"));
      if (to) {
        int64_t mode = 0;
        MOAT_TRY(GetInt(*to, "SizeBytes", &m.tmpfs_size, f + ".TmpfsOptions.SizeBytes"));
        MOAT_TRY(GetInt(*to, "Mode", &mode, f + ".TmpfsOptions.Mode"));
        m.tmpfs_mode = static_cast<uint32_t>(mode);
      }
      s.mounts.push_back(std::move(m));
    }
  }
  std::map<std::string, std::string> tmpfs;
  MOAT_TRY(GetStringMap(hc, "Tmpfs", &tmpfs, "HostConfig.Tmpfs"));
  for (const auto& [target, opts] : tmpfs) {
    MountSpec m;
    m.type = "tmpfs";
    m.target = target;
    for (const auto& o : StrSplit(opts, ',')) {
      if (o == "ro") m.read_only = true;
      if (o.rfind("size=", 0) == 0) {
        // Sizes like "64m" are converted by the client for --mount; -\-tmpfs passes raw text.
        char* end = nullptr;
        long long v = strtoll(o.c_str() + 5, &end, 10);
        long long mult = 1;
        if (end && *end) {
          switch (std::tolower(static_cast<unsigned char>(*end))) {
            case 'k': mult = 1024; break;
            case 'm': mult = 1024 * 1024; break;
            case 'g': mult = 1024LL * 1024 * 1024; break;
            default: return Fail(ErrorKind::kInvalidArgument, "HostConfig.Tmpfs[%s]: bad size %s", target.c_str(), o.c_str());
          }
        }
        m.tmpfs_size = v * mult;
      }
    }
    s.mounts.push_back(std::move(m));
  }
  MOAT_TRY(GetInt(hc, "Memory", &s.memory, "HostConfig.Memory"));
  MOAT_TRY(GetInt(hc, "MemorySwap", &s.memory_swap, "HostConfig.MemorySwap"));
  MOAT_TRY(GetInt(hc, "MemoryReservation", &s.memory_reservation, "HostConfig.MemoryReservation"));
  MOAT_TRY(GetInt(hc, "NanoCpus", &s.nano_cpus, "HostConfig.NanoCpus"));
  MOAT_TRY(GetInt(hc, "CpuShares", &s.cpu_shares, "HostConfig.CpuShares"));
  MOAT_TRY(GetInt(hc, "CpuPeriod", &s.cpu_period, "HostConfig.CpuPeriod"));
  MOAT_TRY(GetInt(hc, "CpuQuota", &s.cpu_quota, "HostConfig.CpuQuota"));
  MOAT_TRY(GetString(hc, "CpusetCpus", &s.cpuset_cpus, "HostConfig.CpusetCpus"));
  MOAT_TRY(GetString(hc, "CpusetMems", &s.cpuset_mems, "HostConfig.CpusetMems"));
  if (hc.contains("PidsLimit") && !hc["PidsLimit"].is_null()) {
    int64_t p = 0;
    MOAT_TRY(GetInt(hc, "PidsLimit", &p, "HostConfig.PidsLimit"));
    if (p != 0) s.pids_limit = p;
  }
  MOAT_TRY(GetInt(hc, "BlkioWeight", &s.blkio_weight, "HostConfig.BlkioWeight"));
  MOAT_ASSIGN_OR_RETURN(s.read_bps, GetThrottle(hc, "BlkioDeviceReadBps"));
  MOAT_ASSIGN_OR_RETURN(s.write_bps, GetThrottle(hc, "BlkioDeviceWriteBps"));
  MOAT_ASSIGN_OR_RETURN(s.read_iops, GetThrottle(hc, "BlkioDeviceReadIOps"));
  MOAT_ASSIGN_OR_RETURN(s.write_iops, GetThrottle(hc, "BlkioDeviceWriteIOps"));
  if (hc.contains("Ulimits") && !hc["Ulimits"].is_null()) {
    const Json& u = hc["Ulimits"];
    if (!u.is_array()) return Fail(ErrorKind::kInvalidArgument, "HostConfig.Ulimits: expected array");
    for (size_t i = 0; i < u.size(); ++i) {
      std::string f = "HostConfig.Ulimits[" + std::to_string(i) + "]";
      Ulimit l;
      MOAT_TRY(GetString(u[i], "Name", &l.name, f + ".Name"));
      MOAT_TRY(GetInt(u[i], "Soft", &l.soft, f + ".Soft"));
      MOAT_TRY(GetInt(u[i], "Hard", &l.hard, f + ".Hard"));
      s.ulimits.push_back(l);
    }
  }
  MOAT_TRY(GetStringMap(hc, "Sysctls", &s.sysctls, "HostConfig.Sysctls"));
  if (hc.contains("Devices") && !hc["Devices"].is_null()) {
    const Json& d = hc["Devices"];
    if (!d.is_array()) return Fail(ErrorKind::kInvalidArgument, "HostConfig.Devices: expected array");
    for (size_t i = 0; i < d.size(); ++i) {
      std::string f = "HostConfig.Devices[" + std::to_string(i) + "]";
      DeviceMapping m;
      MOAT_TRY(GetString(d[i], "PathOnHost", &m.path_on_host, f + ".PathOnHost"));
      MOAT_TRY(GetString(d[i], "PathInContainer", &m.path_in_container, f + ".PathInContainer"));
      MOAT_TRY(GetString(d[i], "CgroupPermissions", &m.permissions, f + ".CgroupPermissions"));
      if (m.path_in_container.empty()) m.path_in_container = m.path_on_host;
      if (m.permissions.empty()) m.permissions = "rwm";
      s.devices.push_back(m);
    }
  }
  if (hc.contains("OomScoreAdj") && !hc["OomScoreAdj"].is_null()) {
    int64_t v = 0;
    MOAT_TRY(GetInt(hc, "OomScoreAdj", &v, "HostConfig.OomScoreAdj"));
    if (v != 0) s.oom_score_adj = v;
  }
  MOAT_TRY(GetInt(hc, "ShmSize", &s.shm_size, "HostConfig.ShmSize"));
  MOAT_TRY(GetStringList(hc, "GroupAdd", &s.group_add, "HostConfig.GroupAdd"));
  MOAT_ASSIGN_OR_RETURN(const Json* pb, GetObject(hc, "PortBindings", "HostConfig.PortBindings"));
  if (pb) {
    MOAT_ASSIGN_OR_RETURN(s.ports, DecodePortBindings(*pb));
  }
  MOAT_TRY(GetBool(hc, "PublishAllPorts", &s.publish_all, "HostConfig.PublishAllPorts"));
  MOAT_TRY(GetStringList(hc, "Dns", &s.dns, "HostConfig.Dns"));
  MOAT_TRY(GetStringList(hc, "DnsSearch", &s.dns_search, "HostConfig.DnsSearch"));
  MOAT_TRY(GetStringList(hc, "DnsOptions", &s.dns_options, "HostConfig.DnsOptions"));
  MOAT_TRY(GetStringList(hc, "ExtraHosts", &s.extra_hosts, "HostConfig.ExtraHosts"));
  MOAT_TRY(GetStringList(hc, "Links", &s.links, "HostConfig.Links"));
  MOAT_TRY(GetString(c, "MacAddress", &s.mac_address, "MacAddress"));
  MOAT_ASSIGN_OR_RETURN(const Json* nc, GetObject(c, "NetworkingConfig", "NetworkingConfig"));
  if (nc) {
    MOAT_ASSIGN_OR_RETURN(const Json* eps, GetObject(*nc, "EndpointsConfig", "NetworkingConfig.EndpointsConfig"));
    if (eps) {
      for (auto it = eps->begin(); it != eps->end(); ++it) {
        if (it.value().is_null()) {
          s.endpoints[it.key()] = EndpointSpec{};
          continue;
        }
        MOAT_ASSIGN_OR_RETURN(s.endpoints[it.key()],
                              DecodeEndpointSpec(it.value(), "NetworkingConfig.EndpointsConfig[" + it.key() + "]"));
      }
    }
  }
  MOAT_TRY(ValidateContainerSpec(s));
  return s;
}

Json EncodeContainerSpec(const ContainerSpec& s) {
  Json mounts = Json::array();
  for (const auto& m : s.mounts) {
    Json j = {{"Type", m.type}, {"Source", m.source}, {"Target", m.target}, {"ReadOnly", m.read_only}};
    if (!m.propagation.empty()) j["BindOptions"] = {{"Propagation", m.propagation}};
    if (m.type == "tmpfs") j["TmpfsOptions"] = {{"SizeBytes", m.tmpfs_size}, {"Mode", m.tmpfs_mode}};
    mounts.push_back(std::move(j));
  }
  Json ulimits = Json::array();
  for (const auto& u : s.ulimits) ulimits.push_back({{"Name", u.name}, {"Soft", u.soft}, {"Hard", u.hard}});
  Json devices = Json::array();
  for (const auto& d : s.devices) {
    devices.push_back({{"PathOnHost", d.path_on_host}, {"PathInContainer", d.path_in_container},
                       {"CgroupPermissions", d.permissions}});
  }
  Json secopt = Json::array();
  secopt.push_back(s.no_new_privileges ? "no-new-privileges=true" : "no-new-privileges=false");
  if (s.seccomp_profile) secopt.push_back("seccomp=" + *s.seccomp_profile);
  if (s.apparmor_profile) secopt.push_back("apparmor=" + *s.apparmor_profile);
  for (const auto& l : s.selinux_label) secopt.push_back("label=" + l);
  Json exposed = Json::object();
  for (const auto& p : s.exposed_ports) exposed[p] = Json::object();
  Json hc = {
      {"AutoRemove", s.auto_remove},
      {"RestartPolicy", {{"Name", s.restart_policy}, {"MaximumRetryCount", s.restart_max_retries}}},
      {"NetworkMode", s.network_mode},
      {"CapAdd", s.cap_add},
      {"CapDrop", s.cap_drop},
      {"Privileged", s.privileged},
      {"ReadonlyRootfs", s.read_only_rootfs},
      {"Init", s.init},
      {"SecurityOpt", secopt},
      {"Mounts", mounts},
      {"Memory", s.memory},
      {"MemorySwap", s.memory_swap},
      {"MemoryReservation", s.memory_reservation},
      {"NanoCpus", s.nano_cpus},
      {"CpuShares", s.cpu_shares},
      {"CpuPeriod", s.cpu_period},
      {"CpuQuota", s.cpu_quota},
      {"CpusetCpus", s.cpuset_cpus},
      {"CpusetMems", s.cpuset_mems},
      {"PidsLimit", s.pids_limit ? Json(*s.pids_limit) : Json(nullptr)},
      {"BlkioWeight", s.blkio_weight},
      {"BlkioDeviceReadBps", ThrottleJson(s.read_bps)},
      {"BlkioDeviceWriteBps", ThrottleJson(s.write_bps)},
      {"BlkioDeviceReadIOps", ThrottleJson(s.read_iops)},
      {"BlkioDeviceWriteIOps", ThrottleJson(s.write_iops)},
      {"Ulimits", ulimits},
      {"Sysctls", s.sysctls},
      {"Devices", devices},
      {"OomScoreAdj", s.oom_score_adj ? Json(*s.oom_score_adj) : Json(nullptr)},
      {"ShmSize", s.shm_size},
      {"GroupAdd", s.group_add},
      {"PortBindings", EncodePortBindings(s.ports)},
      {"PublishAllPorts", s.publish_all},
      {"Dns", s.dns},
      {"DnsSearch", s.dns_search},
      {"DnsOptions", s.dns_options},
      {"ExtraHosts", s.extra_hosts},
      {"Links", s.links},
  };
  Json eps = Json::object();
  for (const auto& [net, e] : s.endpoints) {
    eps[net] = EncodeEndpointSpec(e);
  }
  Json body = {
      {"Image", s.image},
      {"Hostname", s.hostname},
      {"Domainname", s.domainname},
      {"User", s.user},
      {"WorkingDir", s.working_dir},
      {"Env", s.env},
      {"Cmd", s.cmd ? Json(*s.cmd) : Json(nullptr)},
      {"Entrypoint", s.entrypoint ? Json(*s.entrypoint) : Json(nullptr)},
      {"Tty", s.tty},
      {"OpenStdin", s.open_stdin},
      {"StdinOnce", s.stdin_once},
      {"AttachStdin", s.attach_stdin},
      {"AttachStdout", s.attach_stdout},
      {"AttachStderr", s.attach_stderr},
      {"Labels", s.labels},
      {"StopSignal", s.stop_signal},
      {"StopTimeout", s.stop_timeout ? Json(*s.stop_timeout) : Json(nullptr)},
      {"ExposedPorts", exposed},
      {"MacAddress", s.mac_address},
      {"HostConfig", hc},
      {"NetworkingConfig", {{"EndpointsConfig", eps}}},
  };
  return body;
}

Result<void> ValidateContainerSpec(const ContainerSpec& s) {
  if (s.image.empty()) return Fail(ErrorKind::kInvalidArgument, "Config.Image: an image is required");
  if (!s.name.empty()) MOAT_TRY(NormaliseContainerName(s.name));
  for (const auto& e : s.env) {
    if (e.empty() || e[0] == '=' || e.find('\0') != std::string::npos) {
      return Fail(ErrorKind::kInvalidArgument, "Env: invalid environment variable: %s", e.c_str());
    }
  }
  if (!s.working_dir.empty() && s.working_dir[0] != '/') {
    return Fail(ErrorKind::kInvalidArgument,
                "the working directory '%s' is invalid, it needs to be an absolute path",
                s.working_dir.c_str());
  }
  if (s.hostname.size() > 64) return Fail(ErrorKind::kInvalidArgument, "Hostname: longer than 64 characters");
  if (!s.stop_signal.empty()) MOAT_TRY(ParseSignal(s.stop_signal));
  const std::string& rp = s.restart_policy;
  if (rp != "no" && rp != "always" && rp != "unless-stopped" && rp != "on-failure") {
    return Fail(ErrorKind::kInvalidArgument, "invalid restart policy: unknown policy '%s'", rp.c_str());
  }
  if (s.restart_max_retries < 0) {
    return Fail(ErrorKind::kInvalidArgument, "invalid restart policy: maximum retry count cannot be negative");
  }
  if (s.restart_max_retries > 0 && rp != "on-failure") {
    return Fail(ErrorKind::kInvalidArgument, "invalid restart policy: maximum retry count can only be used with 'on-failure'");
  }
  if (s.auto_remove && rp != "no") {
    return Fail(ErrorKind::kInvalidArgument, "can't create 'AutoRemove' container with restart policy");
  }
  const std::string& nm = s.network_mode;
  if (nm.rfind("container:", 0) == 0) {
    // A container's name, id or id prefix.
    std::string ref = nm.substr(10);
    if (!ref.empty() && ref[0] == '/') ref.erase(0, 1);
    MOAT_TRY(ValidateNetworkName(ref).Context("HostConfig.NetworkMode: container"));
  } else if (nm != "default") {
    MOAT_TRY(ValidateNetworkName(nm).Context("HostConfig.NetworkMode"));
  }
  bool own_stack = nm != "host" && nm != "none" && nm.rfind("container:", 0) != 0;
  if (!own_stack && (!s.ports.empty() || s.publish_all)) {
    return Fail(ErrorKind::kInvalidArgument, "conflicting options: port publishing and the %s network mode",
                nm.c_str());
  }
  if (nm.rfind("container:", 0) == 0 && (!s.dns.empty() || !s.extra_hosts.empty() || !s.mac_address.empty())) {
    return Fail(ErrorKind::kInvalidArgument,
                "conflicting options: dns, add-host or mac-address and the network mode (container:)");
  }
  for (const auto& h : s.extra_hosts) {
    size_t colon = h.find(':');
    if (colon == std::string::npos || colon == 0 ||
        (!IsIpLiteral(h.substr(colon + 1)) && h.substr(colon + 1) != "host-gateway")) {
      return Fail(ErrorKind::kInvalidArgument, "invalid IP address in add-host: \"%s\"", h.c_str());
    }
  }
  for (const auto& d : s.dns) {
    if (!IsIpLiteral(d)) return Fail(ErrorKind::kInvalidArgument, "%s is not an ip address", d.c_str());
  }
  for (const auto& [net, e] : s.endpoints) {
    MOAT_TRY(ValidateNetworkName(net).Context("NetworkingConfig.EndpointsConfig"));
    if (!e.ipv4.empty() && !IsIpLiteral(e.ipv4)) {
      return Fail(ErrorKind::kInvalidArgument, "invalid IPv4 address: %s", e.ipv4.c_str());
    }
    if (!e.ipv6.empty() && !IsIpLiteral(e.ipv6)) {
      return Fail(ErrorKind::kInvalidArgument, "invalid IPv6 address: %s", e.ipv6.c_str());
    }
  }
  for (const auto* list : {&s.cap_add, &s.cap_drop}) {
    for (const auto& c : *list) {
      if (c == "ALL" || c == "all") continue;
      if (!oci::CapabilityFromName(c)) {
        return Fail(ErrorKind::kInvalidArgument, "unknown capability: \"%s\"", c.c_str());
      }
    }
  }
  for (size_t i = 0; i < s.mounts.size(); ++i) {
    const auto& m = s.mounts[i];
    std::string f = "HostConfig.Mounts[" + std::to_string(i) + "]";
    if (m.type != "bind" && m.type != "volume" && m.type != "tmpfs") {
      return Fail(ErrorKind::kInvalidArgument, "%s.Type: mount type unknown: \"%s\"", f.c_str(), m.type.c_str());
    }
    if (!IsAbsoluteClean(m.target) || m.target == "/") {
      return Fail(ErrorKind::kInvalidArgument, "invalid mount config: mount path must be absolute: \"%s\"",
                  m.target.c_str());
    }
    if (m.type == "bind" && !IsAbsoluteClean(m.source)) {
      return Fail(ErrorKind::kInvalidArgument, "invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute",
                  m.source.c_str());
    }
    if (m.type == "volume" && !m.source.empty()) {
      MOAT_TRY(NormaliseContainerName(m.source + (m.source.size() < 2 ? "_" : ""))
                   .Context("invalid volume name \"%s\"", m.source.c_str()));
    }
    if (m.type == "tmpfs" && !m.source.empty()) {
      return Fail(ErrorKind::kInvalidArgument, "invalid mount config for type \"tmpfs\": source must not be specified");
    }
    const std::string& p = m.propagation;
    if (!p.empty() && p != "rprivate" && p != "private" && p != "rshared" && p != "shared" &&
        p != "rslave" && p != "slave") {
      return Fail(ErrorKind::kInvalidArgument, "%s: invalid propagation \"%s\"", f.c_str(), p.c_str());
    }
  }
  if (s.memory != 0 && s.memory < 6 * 1024 * 1024) {
    return Fail(ErrorKind::kInvalidArgument, "Minimum memory limit allowed is 6MB");
  }
  if (s.memory < 0 || s.memory_reservation < 0 || s.memory_swap < -1) {
    return Fail(ErrorKind::kInvalidArgument, "HostConfig.Memory: negative values are not allowed");
  }
  if (s.memory_swap > 0 && s.memory > 0 && s.memory_swap < s.memory) {
    return Fail(ErrorKind::kInvalidArgument,
                "Minimum memoryswap limit should be larger than memory limit, see usage");
  }
  if (s.memory_swap > 0 && s.memory == 0) {
    return Fail(ErrorKind::kInvalidArgument,
                "You should always set the Memory limit when using Memoryswap limit, see usage");
  }
  if (s.nano_cpus < 0 || s.cpu_shares < 0 || s.cpu_quota < 0 || s.cpu_period < 0) {
    return Fail(ErrorKind::kInvalidArgument, "HostConfig: negative CPU values are not allowed");
  }
  if (s.nano_cpus > 0 && (s.cpu_quota > 0 || s.cpu_period > 0)) {
    return Fail(ErrorKind::kConflict, "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set");
  }
  if (s.nano_cpus > 0 && s.nano_cpus < 10'000'000) {
    return Fail(ErrorKind::kInvalidArgument, "Range of CPUs is from 0.01 to the number of CPUs");
  }
  if (s.blkio_weight != 0 && (s.blkio_weight < 10 || s.blkio_weight > 1000)) {
    return Fail(ErrorKind::kInvalidArgument, "Range of blkio weight is from 10 to 1000");
  }
  for (const auto& u : s.ulimits) {
    if (!oci::RlimitFromName("RLIMIT_" + ToUpper(u.name))) {
      return Fail(ErrorKind::kInvalidArgument, "invalid ulimit type: %s", u.name.c_str());
    }
    if (u.soft > u.hard) {
      return Fail(ErrorKind::kInvalidArgument, "ulimit soft limit must be less than or equal to hard limit: %lld > %lld",
                  static_cast<long long>(u.soft), static_cast<long long>(u.hard));
    }
  }
  for (const auto& [k, v] : s.sysctls) {
    bool ns = k.rfind("net.", 0) == 0 || k.rfind("kernel.shm", 0) == 0 ||
              k.rfind("kernel.msg", 0) == 0 || k == "kernel.sem" || k.rfind("fs.mqueue.", 0) == 0 ||
              k == "kernel.domainname" || k == "kernel.hostname";
    if (!ns) {
      return Fail(ErrorKind::kInvalidArgument, "sysctl '%s' is not allowed: not namespaced", k.c_str());
    }
    if (k.rfind("net.", 0) == 0 && s.network_mode == "host") {
      return Fail(ErrorKind::kInvalidArgument, "sysctl '%s' is not allowed in host network namespace", k.c_str());
    }
  }
  for (const auto& d : s.devices) {
    if (!IsAbsoluteClean(d.path_on_host) || !IsAbsoluteClean(d.path_in_container)) {
      return Fail(ErrorKind::kInvalidArgument, "invalid device mapping: %s:%s", d.path_on_host.c_str(),
                  d.path_in_container.c_str());
    }
    for (char c : d.permissions) {
      if (c != 'r' && c != 'w' && c != 'm') {
        return Fail(ErrorKind::kInvalidArgument, "invalid device cgroup permissions: %s", d.permissions.c_str());
      }
    }
  }
  if (s.oom_score_adj && (*s.oom_score_adj < -1000 || *s.oom_score_adj > 1000)) {
    return Fail(ErrorKind::kInvalidArgument, "Invalid value %lld, range for oom score adj is [-1000, 1000]",
                static_cast<long long>(*s.oom_score_adj));
  }
  if (s.shm_size < 0) return Fail(ErrorKind::kInvalidArgument, "SHM size can not be less than 0");
  return {};
}

Result<ExecSpec> DecodeExecSpec(const Json& body) {
  if (!body.is_object()) return Fail(ErrorKind::kInvalidArgument, "request body: expected a JSON object");
  ExecSpec e;
  MOAT_TRY(GetStringList(body, "Cmd", &e.cmd, "Cmd"));
  MOAT_TRY(GetStringList(body, "Env", &e.env, "Env"));
  MOAT_TRY(GetString(body, "User", &e.user, "User"));
  MOAT_TRY(GetString(body, "WorkingDir", &e.working_dir, "WorkingDir"));
  MOAT_TRY(GetBool(body, "Tty", &e.tty, "Tty"));
  MOAT_TRY(GetBool(body, "AttachStdin", &e.attach_stdin, "AttachStdin"));
  MOAT_TRY(GetBool(body, "AttachStdout", &e.attach_stdout, "AttachStdout"));
  MOAT_TRY(GetBool(body, "AttachStderr", &e.attach_stderr, "AttachStderr"));
  MOAT_TRY(GetBool(body, "Privileged", &e.privileged, "Privileged"));
  MOAT_TRY(ValidateExecSpec(e));
  return e;
}

Json EncodeExecSpec(const ExecSpec& e) {
  return {{"Cmd", e.cmd},           {"Env", e.env},
          {"User", e.user},         {"WorkingDir", e.working_dir},
          {"Tty", e.tty},           {"AttachStdin", e.attach_stdin},
          {"AttachStdout", e.attach_stdout}, {"AttachStderr", e.attach_stderr},
          {"Privileged", e.privileged}};
}

Result<void> ValidateExecSpec(const ExecSpec& e) {
  if (e.cmd.empty()) return Fail(ErrorKind::kInvalidArgument, "No exec command specified");
  if (!e.working_dir.empty() && e.working_dir[0] != '/') {
    return Fail(ErrorKind::kInvalidArgument, "the working directory '%s' is invalid, it needs to be an absolute path",
                e.working_dir.c_str());
  }
  for (const auto& v : e.env) {
    if (v.empty() || v[0] == '=') return Fail(ErrorKind::kInvalidArgument, "Env: invalid environment variable: %s", v.c_str());
  }
  return {};
}

namespace {

Result<void> CheckAuthValue(const std::string& v, const char* field) {
  if (v.size() > 4096) return Fail(ErrorKind::kInvalidArgument, "registry auth: %s is too long", field);
  for (unsigned char c : v) {
    if (c < 0x20 || c == 0x7f)
      return Fail(ErrorKind::kInvalidArgument, "registry auth: %s holds a control character", field);
  }
  // JSON carries text: bytes that are not UTF-8 would reach the core changed (found by
  // fuzz/container_spec.cc).
  if (!IsValidUtf8(v)) return Fail(ErrorKind::kInvalidArgument, "registry auth: %s is not UTF-8", field);
  return Ok();
}

}  // namespace

Result<RegistryAuthSpec> DecodeRegistryAuth(const Json& body) {
  if (body.is_null()) return RegistryAuthSpec{};
  if (!body.is_object()) return Fail(ErrorKind::kInvalidArgument, "registry auth: not a JSON object");
  RegistryAuthSpec a;
  std::string auth, email;
  // Docker's clients vary in case ("Username" from old ones).
  auto get = [&](const char* lower, const char* upper, std::string* out) -> Result<void> {
    MOAT_TRY(GetString(body, lower, out, lower));
    if (out->empty()) MOAT_TRY(GetString(body, upper, out, lower));
    return CheckAuthValue(*out, lower);
  };
  MOAT_TRY(get("username", "Username", &a.username));
  MOAT_TRY(get("password", "Password", &a.password));
  MOAT_TRY(get("auth", "Auth", &auth));
  MOAT_TRY(get("email", "Email", &email));
  MOAT_TRY(get("identitytoken", "IdentityToken", &a.identity_token));
  MOAT_TRY(get("registrytoken", "RegistryToken", &a.registry_token));
  MOAT_TRY(get("serveraddress", "ServerAddress", &a.server_address));
  if (!auth.empty() && a.username.empty()) {
    auto decoded = Base64Decode(auth);
    if (!decoded) return Fail(ErrorKind::kInvalidArgument, "registry auth: auth is not base64");
    size_t colon = decoded->find(':');
    if (colon == std::string::npos)
      return Fail(ErrorKind::kInvalidArgument, "registry auth: auth is not \"user:password\"");
    a.username = decoded->substr(0, colon);
    a.password = decoded->substr(colon + 1);
    MOAT_TRY(CheckAuthValue(a.username, "auth"));
    MOAT_TRY(CheckAuthValue(a.password, "auth"));
  }
  return a;
}

Result<RegistryAuthSpec> DecodeRegistryAuthHeader(std::string_view header) {
  if (TrimWhitespace(header).empty()) return RegistryAuthSpec{};
  if (header.size() > 32768) return Fail(ErrorKind::kInvalidArgument, "X-Registry-Auth: too long");
  auto decoded = Base64Decode(header);
  if (!decoded) return Fail(ErrorKind::kInvalidArgument, "X-Registry-Auth: not base64");
  if (TrimWhitespace(*decoded).empty()) return RegistryAuthSpec{};
  auto j = ParseJson(*decoded);
  if (!j) return Fail(ErrorKind::kInvalidArgument, "X-Registry-Auth: not JSON: %s", j.error().message.c_str());
  return DecodeRegistryAuth(*j);
}

Json EncodeRegistryAuth(const RegistryAuthSpec& a) {
  return Json{{"username", a.username},           {"password", a.password},
              {"identitytoken", a.identity_token}, {"registrytoken", a.registry_token},
              {"serveraddress", a.server_address}};
}

Result<std::string> PullReference(const std::string& from_image, const std::string& tag) {
  if (from_image.empty()) return Fail(ErrorKind::kInvalidArgument, "fromImage: an image name is required");
  if (from_image.size() > 1024) return Fail(ErrorKind::kInvalidArgument, "fromImage: too long");
  std::string ref = from_image;
  if (!tag.empty()) {
    // A tag alongside a name that has one already: Docker takes the query's tag.
    size_t slash = ref.rfind('/');
    size_t colon = ref.rfind(':');
    if (ref.find('@') != std::string::npos)
      return Fail(ErrorKind::kInvalidArgument, "fromImage %s has a digest: no tag may be given", from_image.c_str());
    if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) ref.resize(colon);
    ref += (StartsWith(tag, "sha256:") ? "@" : ":") + tag;
  }
  for (unsigned char c : ref) {
    if (c <= 0x20 || c >= 0x7f) return Fail(ErrorKind::kInvalidArgument, "invalid reference format: %s", ref.c_str());
  }
  return ref;
}

Result<PlatformSpec> ParsePlatform(const std::string& text) {
  PlatformSpec p;
  if (text.empty()) return p;
  auto parts = StrSplit(text, '/');
  if (parts.size() > 3)
    return Fail(ErrorKind::kInvalidArgument, "invalid platform %s: expected os[/arch[/variant]]", text.c_str());
  for (auto& part : parts) {
    if (part.empty() || part.size() > 32)
      return Fail(ErrorKind::kInvalidArgument, "invalid platform %s: expected os[/arch[/variant]]", text.c_str());
    for (char& c : part) {
      if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-')
        return Fail(ErrorKind::kInvalidArgument, "invalid platform %s: bad character", text.c_str());
      c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
    }
  }
  p.os = parts[0];
  if (parts.size() > 1) p.architecture = parts[1];
  if (parts.size() > 2) p.variant = parts[2];
  if (p.os != "linux")
    return Fail(ErrorKind::kInvalidArgument, "invalid platform %s: Moat runs linux images only", text.c_str());
  return p;
}

}  // namespace moat::daemon::privsep
