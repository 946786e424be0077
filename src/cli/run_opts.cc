#include "cli/run_opts.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <tuple>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "cli/network_opts.h"

namespace moat::cli {
namespace {

std::string LowerCopy(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return out;
}

// "k=v" -> (k, v); "k" -> (k, "").
std::pair<std::string, std::string> SplitKv(std::string_view s) {
  size_t eq = s.find('=');
  if (eq == std::string_view::npos) return {std::string(s), ""};
  return {std::string(s.substr(0, eq)), std::string(s.substr(eq + 1))};
}

bool ParseBoolWord(std::string_view v, bool* out) {
  std::string l = LowerCopy(v);
  if (l == "" || l == "1" || l == "true") *out = true;
  else if (l == "0" || l == "false") *out = false;
  else return false;
  return true;
}

// go-connections nat.ParsePortRange: "80" or "8000-8010", each a uint16.
Result<std::pair<uint64_t, uint64_t>> GoPortRange(std::string_view s) {
  if (s.empty()) return Fail(ErrorKind::kInvalidArgument, "Empty string specified for ports.");
  auto parse = [](std::string_view p) -> std::optional<uint64_t> {
    if (p.empty() || !isdigit(static_cast<unsigned char>(p[0]))) return std::nullopt;
    auto v = ParseUint64(p);
    if (!v || *v > 65535) return std::nullopt;
    return v;
  };
  size_t dash = s.find('-');
  auto a = parse(s.substr(0, dash));
  if (!a)
    return Fail(ErrorKind::kInvalidArgument, "strconv.ParseUint: parsing \"%.*s\": invalid syntax",
                static_cast<int>(dash == std::string_view::npos ? s.size() : dash), s.data());
  if (dash == std::string_view::npos) return std::make_pair(*a, *a);
  std::string_view rest = s.substr(dash + 1);
  auto b = parse(rest.substr(0, rest.find('-')));
  if (!b)
    return Fail(ErrorKind::kInvalidArgument, "strconv.ParseUint: parsing \"%.*s\": invalid syntax",
                static_cast<int>(rest.size()), rest.data());
  if (*b < *a)
    return Fail(ErrorKind::kInvalidArgument, "Invalid range specified for the Port: %.*s",
                static_cast<int>(s.size()), s.data());
  return std::make_pair(*a, *b);
}

// nat.SplitProtoPort: "80/udp" -> ("udp", "80"), "80" and "80/" -> ("tcp", "80"), "" and
// "/udp" -> ("", "").
std::pair<std::string, std::string> SplitProtoPort(std::string_view raw) {
  auto parts = StrSplit(raw, '/');
  if (raw.empty() || parts[0].empty()) return {"", ""};
  if (parts.size() == 1) return {"tcp", std::string(raw)};
  if (parts[1].empty()) return {"tcp", parts[0]};
  return {parts[1], parts[0]};
}

}  // namespace

Result<int64_t> ParseMemoryBytes(std::string_view s) {
  std::string str(TrimWhitespace(s));
  size_t i = 0;
  while (i < str.size() && (isdigit(static_cast<unsigned char>(str[i])) || str[i] == '.')) ++i;
  std::string num = str.substr(0, i);
  std::string unit = LowerCopy(str.substr(i));
  char* end = nullptr;
  double value = num.empty() ? -1 : strtod(num.c_str(), &end);
  if (num.empty() || end == nullptr || *end != '\0' || value < 0)
    return Fail(ErrorKind::kInvalidArgument, "invalid size: '%s' (use e.g. 64m, 1.5g, 512k)",
                str.c_str());
  if (unit.size() == 2 && unit[1] == 'b') unit.resize(1);
  if (unit.size() == 3 && unit.substr(1) == "ib") unit.resize(1);
  double mult = 1;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k") mult = 1024.0;
  else if (unit == "m") mult = 1024.0 * 1024;
  else if (unit == "g") mult = 1024.0 * 1024 * 1024;
  else if (unit == "t") mult = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "p") mult = 1024.0 * 1024 * 1024 * 1024 * 1024;
  else
    return Fail(ErrorKind::kInvalidArgument, "invalid size: '%s' (unknown unit %s)", str.c_str(),
                unit.c_str());
  return static_cast<int64_t>(value * mult);
}

Result<int64_t> ParseNanoCpus(std::string_view s) {
  std::string str(TrimWhitespace(s));
  size_t dot = str.find('.');
  std::string whole = str.substr(0, dot);
  std::string frac = dot == std::string::npos ? "" : str.substr(dot + 1);
  auto w = whole.empty() ? std::optional<int64_t>(0) : ParseInt64(whole);
  bool frac_ok = frac.size() <= 9;
  for (char c : frac) frac_ok = frac_ok && isdigit(static_cast<unsigned char>(c));
  if (!w || *w < 0 || !frac_ok || (whole.empty() && frac.empty()) || *w > 1000000)
    return Fail(ErrorKind::kInvalidArgument,
                "invalid value %s for --cpus: a decimal number of CPUs such as 1.5", str.c_str());
  frac.append(9 - frac.size(), '0');
  return *w * 1000000000 + *ParseInt64(frac);
}

Result<Json> ParseUlimit(std::string_view s) {
  auto [name, value] = SplitKv(s);
  if (name.empty() || value.empty())
    return Fail(ErrorKind::kInvalidArgument,
                "invalid ulimit argument: %.*s (use NAME=SOFT[:HARD], e.g. nofile=1024:2048)",
                static_cast<int>(s.size()), s.data());
  size_t colon = value.find(':');
  auto soft = ParseInt64(value.substr(0, colon));
  auto hard = colon == std::string::npos ? soft : ParseInt64(value.substr(colon + 1));
  if (!soft || !hard)
    return Fail(ErrorKind::kInvalidArgument, "invalid ulimit argument: %.*s: bad number",
                static_cast<int>(s.size()), s.data());
  if (*soft > *hard)
    return Fail(ErrorKind::kInvalidArgument,
                "ulimit soft limit must be less than or equal to hard limit: %lld > %lld",
                static_cast<long long>(*soft), static_cast<long long>(*hard));
  Json j;
  j["Name"] = name;
  j["Hard"] = *hard;
  j["Soft"] = *soft;
  return j;
}

Result<Json> ParseRestartPolicy(std::string_view s) {
  Json j;
  if (s.empty()) {
    j["Name"] = "no";
    return j;
  }
  size_t colon = s.find(':');
  std::string name(s.substr(0, colon));
  int64_t count = 0;
  if (colon != std::string_view::npos) {
    auto c = ParseInt64(s.substr(colon + 1));
    if (!c || *c < 0 || name != "on-failure")
      return Fail(ErrorKind::kInvalidArgument,
                  "invalid restart policy %.*s: a retry count is only valid as on-failure:N",
                  static_cast<int>(s.size()), s.data());
    count = *c;
  }
  if (name != "no" && name != "always" && name != "unless-stopped" && name != "on-failure")
    return Fail(ErrorKind::kInvalidArgument,
                "invalid restart policy %s: use no, always, unless-stopped or on-failure[:N]",
                name.c_str());
  j["Name"] = name;
  if (name == "on-failure") j["MaximumRetryCount"] = count;
  return j;
}

Result<Json> ParseMount(std::string_view s) {
  Json m;
  std::string type = "volume";
  std::string source, target;
  bool readonly = false;
  Json bind_opts, volume_opts, tmpfs_opts;
  for (const std::string& field : StrSplit(s, ',')) {
    auto [key, value] = SplitKv(field);
    std::string k = LowerCopy(key);
    bool has_value = field.find('=') != std::string::npos;
    if (k == "type") {
      type = value;
    } else if (k == "source" || k == "src") {
      source = value;
    } else if (k == "target" || k == "destination" || k == "dst") {
      target = value;
    } else if (k == "readonly" || k == "ro") {
      if (!has_value) readonly = true;
      else if (!ParseBoolWord(value, &readonly))
        return Fail(ErrorKind::kInvalidArgument, "invalid value for %s: %s", k.c_str(),
                    value.c_str());
    } else if (k == "bind-propagation") {
      bind_opts["Propagation"] = value;
    } else if (k == "bind-nonrecursive") {
      bool b = true;
      if (has_value && !ParseBoolWord(value, &b))
        return Fail(ErrorKind::kInvalidArgument, "invalid value for %s: %s", k.c_str(),
                    value.c_str());
      bind_opts["NonRecursive"] = b;
    } else if (k == "volume-nocopy") {
      bool b = true;
      if (has_value && !ParseBoolWord(value, &b))
        return Fail(ErrorKind::kInvalidArgument, "invalid value for %s: %s", k.c_str(),
                    value.c_str());
      volume_opts["NoCopy"] = b;
    } else if (k == "volume-label") {
      auto [lk, lv] = SplitKv(value);
      volume_opts["Labels"][lk] = lv;
    } else if (k == "volume-driver") {
      volume_opts["DriverConfig"]["Name"] = value;
    } else if (k == "volume-opt") {
      auto [ok, ov] = SplitKv(value);
      volume_opts["DriverConfig"]["Options"][ok] = ov;
    } else if (k == "tmpfs-size") {
      MOAT_ASSIGN_OR_RETURN(int64_t size, ParseMemoryBytes(value));
      tmpfs_opts["SizeBytes"] = size;
    } else if (k == "tmpfs-mode") {
      char* end = nullptr;
      long mode = strtol(value.c_str(), &end, 8);
      if (value.empty() || *end != '\0' || mode < 0)
        return Fail(ErrorKind::kInvalidArgument, "invalid tmpfs-mode %s: an octal mode such as 1777",
                    value.c_str());
      tmpfs_opts["Mode"] = mode;
    } else if (k == "consistency") {
      m["Consistency"] = value;
    } else {
      return Fail(ErrorKind::kInvalidArgument, "unexpected key '%s' in '%.*s'", key.c_str(),
                  static_cast<int>(s.size()), s.data());
    }
  }
  if (type != "bind" && type != "volume" && type != "tmpfs")
    return Fail(ErrorKind::kInvalidArgument, "invalid mount type %s: use bind, volume or tmpfs",
                type.c_str());
  if (target.empty())
    return Fail(ErrorKind::kInvalidArgument, "target is required in --mount %.*s",
                static_cast<int>(s.size()), s.data());
  if (type == "bind" && source.empty())
    return Fail(ErrorKind::kInvalidArgument, "source is required for a bind mount");
  if (type == "tmpfs" && !source.empty())
    return Fail(ErrorKind::kInvalidArgument, "source is not allowed for a tmpfs mount");
  m["Type"] = type;
  if (!source.empty()) m["Source"] = source;
  m["Target"] = target;
  if (readonly) m["ReadOnly"] = true;
  if (!bind_opts.is_null()) {
    if (type != "bind")
      return Fail(ErrorKind::kInvalidArgument, "bind options are only valid with type=bind");
    m["BindOptions"] = bind_opts;
  }
  if (!volume_opts.is_null()) {
    if (type != "volume")
      return Fail(ErrorKind::kInvalidArgument, "volume options are only valid with type=volume");
    m["VolumeOptions"] = volume_opts;
  }
  if (!tmpfs_opts.is_null()) {
    if (type != "tmpfs")
      return Fail(ErrorKind::kInvalidArgument, "tmpfs options are only valid with type=tmpfs");
    m["TmpfsOptions"] = tmpfs_opts;
  }
  return m;
}

Result<Json> ParseDevice(std::string_view s) {
  auto parts = StrSplit(s, ':');
  auto is_perms = [](const std::string& p) {
    if (p.empty() || p.size() > 3) return false;
    for (char c : p)
      if (c != 'r' && c != 'w' && c != 'm') return false;
    return true;
  };
  std::string host, container, perms = "rwm";
  if (parts.size() == 1) {
    host = container = parts[0];
  } else if (parts.size() == 2) {
    host = parts[0];
    if (is_perms(parts[1])) {
      container = host;
      perms = parts[1];
    } else {
      container = parts[1];
    }
  } else if (parts.size() == 3 && is_perms(parts[2])) {
    host = parts[0];
    container = parts[1];
    perms = parts[2];
  } else {
    return Fail(ErrorKind::kInvalidArgument,
                "invalid device specification %.*s: use HOST[:CONTAINER][:rwm]",
                static_cast<int>(s.size()), s.data());
  }
  if (host.empty() || container.empty() || container[0] != '/')
    return Fail(ErrorKind::kInvalidArgument, "invalid device specification %.*s",
                static_cast<int>(s.size()), s.data());
  Json d;
  d["PathOnHost"] = host;
  d["PathInContainer"] = container;
  d["CgroupPermissions"] = perms;
  return d;
}

Result<void> ParsePublish(std::string_view s, Json* exposed, Json* bindings) {
  std::string raw(s);
  if (raw.find('=') != std::string::npos) {
    // docker's convertToStandardNotation: the long form becomes "published:target/protocol".
    std::string published, target, protocol = "tcp";
    for (const std::string& param : StrSplit(raw, ',')) {
      auto parts = StrSplit(param, '=');
      if (parts.size() < 2)
        return Fail(ErrorKind::kInvalidArgument,
                    "invalid publish opts format (should be name=value but got '%s')",
                    param.c_str());
      if (parts[0] == "published")
        published = parts[1];
      else if (parts[0] == "target")
        target = parts[1];
      else if (parts[0] == "protocol")
        protocol = parts[1];
    }
    raw = published + ":" + target + "/" + protocol;
  }
  // nat.ParsePortSpec: split on ':' (the last part is the container port, the one before
  // it the host port, everything earlier the host IP), then the proto off the container port.
  auto parts = StrSplit(raw, ':');
  size_t n = parts.size();
  std::string raw_ip, host_port, container_port = parts[n - 1];
  if (n == 2) {
    host_port = parts[0];
  } else if (n >= 3) {
    host_port = parts[n - 2];
    raw_ip = StrJoin(std::vector<std::string>(parts.begin(), parts.end() - 2), ":");
  }
  std::string proto;
  std::tie(proto, container_port) = SplitProtoPort(container_port);
  std::string ip = raw_ip;
  if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') {
    ip = ip.substr(1, ip.size() - 2);
  } else if (ip.find(':') != std::string::npos) {
    // Go's net.SplitHostPort(rawIP + ":") wants an IPv6 address in brackets.
    return Fail(ErrorKind::kInvalidArgument,
                "Invalid ip address %s: address %s:: too many colons in address", raw_ip.c_str(),
                raw_ip.c_str());
  }
  if (!ip.empty() && !NormalizeIp(ip))
    return Fail(ErrorKind::kInvalidArgument, "Invalid ip address: %s", ip.c_str());
  if (container_port.empty())
    return Fail(ErrorKind::kInvalidArgument, "No port specified: %s<empty>", raw.c_str());
  auto cr = GoPortRange(container_port);
  if (!cr.has_value())
    return Fail(ErrorKind::kInvalidArgument, "Invalid containerPort: %s", container_port.c_str());
  std::pair<uint64_t, uint64_t> hr{0, 0};
  if (!host_port.empty()) {
    auto h = GoPortRange(host_port);
    if (!h.has_value())
      return Fail(ErrorKind::kInvalidArgument, "Invalid hostPort: %s", host_port.c_str());
    hr = *h;
    // A host range for one container port is the range the daemon picks a free port from.
    if (cr->second - cr->first != hr.second - hr.first && cr->first != cr->second)
      return Fail(ErrorKind::kInvalidArgument,
                  "Invalid ranges specified for container and host Ports: %s and %s",
                  container_port.c_str(), host_port.c_str());
  }
  std::string lproto = LowerCopy(proto);
  if (lproto != "tcp" && lproto != "udp" && lproto != "sctp")
    return Fail(ErrorKind::kInvalidArgument, "Invalid proto: %s", proto.c_str());
  for (uint64_t i = 0; i <= cr->second - cr->first; ++i) {
    std::string key = std::to_string(cr->first + i) + "/" + lproto;
    std::string hp;
    if (!host_port.empty()) {
      hp = std::to_string(hr.first + i);
      if (cr->first == cr->second && hr.first != hr.second) hp += "-" + std::to_string(hr.second);
    }
    (*exposed)[key] = Json::object();
    Json b;
    b["HostIp"] = ip;
    b["HostPort"] = hp;
    (*bindings)[key].push_back(b);
  }
  return Ok();
}

Result<void> ParseExpose(std::string_view s, Json* exposed) {
  std::string e(s);
  if (e.find(':') != std::string::npos)
    return Fail(ErrorKind::kInvalidArgument, "invalid port format for --expose: %s", e.c_str());
  auto [proto, port] = SplitProtoPort(e);
  auto range = GoPortRange(port);
  if (!range.has_value())
    return Fail(ErrorKind::kInvalidArgument, "invalid range format for --expose: %s, error: %s",
                e.c_str(), range.error().message.c_str());
  for (uint64_t p = range->first; p <= range->second; ++p)
    (*exposed)[std::to_string(p) + "/" + proto] = Json::object();
  return Ok();
}

Result<std::string> ParseExtraHost(std::string_view s) {
  std::string v(s);
  size_t sep = v.find('=');
  if (sep == std::string::npos) sep = v.find(':');
  std::string host = sep == std::string::npos ? "" : v.substr(0, sep);
  if (host.empty() || host.find(':') != std::string::npos)
    return Fail(ErrorKind::kInvalidArgument,
                "invalid argument \"%s\" for \"--add-host\" flag: bad format for add-host: \"%s\"",
                v.c_str(), v.c_str());
  std::string ip = v.substr(sep + 1);
  if (ip != "host-gateway") {
    if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
    if (!NormalizeIp(ip))
      return Fail(ErrorKind::kInvalidArgument,
                  "invalid argument \"%s\" for \"--add-host\" flag: invalid IP address in "
                  "add-host: \"%s\"",
                  v.c_str(), ip.c_str());
  }
  return host + ":" + ip;
}

namespace {

// docker's parseNetworkOpts for the one --network: the legacy flags go to its endpoint, and
// an endpoint with nothing set is left out ("the daemon will still create it").
Result<Json> BuildEndpointsConfig(const RunFlags& f) {
  const std::string& net = f.network;
  if (TrimWhitespace(net).empty())
    return Fail(ErrorKind::kInvalidArgument, "no name set for network");
  bool user_defined = IsUserDefinedNetwork(net);
  if (!f.network_aliases.empty() && !user_defined)
    return Fail(ErrorKind::kInvalidArgument,
                "network-scoped aliases are only supported for user-defined networks");
  Json ep = Json::object();
  bool set = false;
  Json ipam;
  if (!f.ip.empty()) ipam["IPv4Address"] = f.ip;
  if (!f.ip6.empty()) ipam["IPv6Address"] = f.ip6;
  if (!f.link_local_ips.empty()) ipam["LinkLocalIPs"] = f.link_local_ips;
  ep["IPAMConfig"] = ipam;
  set = set || !ipam.is_null();
  // On a user-defined network --link is an endpoint alias; on the default bridge it is only
  // the legacy HostConfig.Links (docker CLI >= 20.10.x).
  bool endpoint_links = user_defined && !f.links.empty();
  ep["Links"] = endpoint_links ? Json(f.links) : Json();
  ep["Aliases"] = f.network_aliases.empty() ? Json() : Json(f.network_aliases);
  ep["MacAddress"] = f.mac_address;
  ep["DriverOpts"] = Json();
  set = set || endpoint_links || !f.network_aliases.empty() || !f.mac_address.empty();
  Json endpoints = Json::object();
  if (set) endpoints[net] = ep;
  return endpoints;
}

}  // namespace

Result<Json> BuildCreateBody(const RunFlags& f, const std::string& image,
                             const std::vector<std::string>& args,
                             std::optional<std::pair<int, int>> console_size) {
  Json body;
  Json host;
  body["Hostname"] = f.hostname;
  body["Domainname"] = "";
  body["User"] = f.user;
  bool attach_stdin = f.interactive, attach_stdout = true, attach_stderr = true;
  if (f.detach) {
    attach_stdin = attach_stdout = attach_stderr = false;
  } else if (!f.attach.empty()) {
    attach_stdin = attach_stdout = attach_stderr = false;
    for (const auto& a : f.attach) {
      std::string l = LowerCopy(a);
      if (l == "stdin") attach_stdin = true;
      else if (l == "stdout") attach_stdout = true;
      else if (l == "stderr") attach_stderr = true;
      else
        return Fail(ErrorKind::kInvalidArgument,
                    "invalid argument \"%s\" for \"-a, --attach\": valid streams are STDIN, "
                    "STDOUT and STDERR",
                    a.c_str());
    }
  }
  body["AttachStdin"] = attach_stdin;
  body["AttachStdout"] = attach_stdout;
  body["AttachStderr"] = attach_stderr;
  Json exposed = Json::object(), bindings = Json::object();
  for (const auto& p : f.publish) MOAT_TRY(ParsePublish(p, &exposed, &bindings));
  for (const auto& e : f.expose) MOAT_TRY(ParseExpose(e, &exposed));
  if (!exposed.empty()) body["ExposedPorts"] = exposed;
  body["Tty"] = f.tty;
  body["OpenStdin"] = f.interactive;
  body["StdinOnce"] = f.interactive && attach_stdin && !f.detach;
  Json env = Json::array();
  for (const auto& file : f.env_files) {
    MOAT_ASSIGN_OR_RETURN(std::string text, sys::ReadFile(file).Context("--env-file"));
    for (const std::string& raw : StrSplit(text, '\n')) {
      std::string line(TrimWhitespace(raw));
      if (line.empty() || line[0] == '#') continue;
      if (line.find('=') == std::string::npos) {
        const char* v = getenv(line.c_str());
        if (v == nullptr) continue;
        line += std::string("=") + v;
      }
      env.push_back(line);
    }
  }
  for (const auto& e : f.env) {
    if (e.empty() || e[0] == '=')
      return Fail(ErrorKind::kInvalidArgument, "invalid environment variable: %s", e.c_str());
    if (e.find('=') == std::string::npos) {
      // docker passes NAME=value from the client's environment, and drops unset names.
      const char* v = getenv(e.c_str());
      if (v != nullptr) env.push_back(e + "=" + v);
      continue;
    }
    env.push_back(e);
  }
  body["Env"] = env.empty() ? Json() : env;
  body["Cmd"] = args.empty() ? Json() : Json(args);
  body["Image"] = image;
  Json volumes = Json::object();
  Json binds = Json::array();
  for (const auto& v : f.volumes) {
    // "/path" alone is an anonymous volume; anything with a ':' target is a bind or a named
    // volume, which the daemon tells apart by the absolute source.
    auto parts = StrSplit(v, ':');
    if (parts.size() == 1) {
      if (v.empty() || v[0] != '/')
        return Fail(ErrorKind::kInvalidArgument,
                    "invalid volume specification: '%s': the container path must be absolute",
                    v.c_str());
      volumes[v] = Json::object();
    } else if (parts.size() <= 3 && !parts[0].empty() && !parts[1].empty() &&
               parts[1][0] == '/') {
      binds.push_back(v);
    } else {
      return Fail(ErrorKind::kInvalidArgument,
                  "invalid volume specification: '%s': use SOURCE:/container/path[:ro]",
                  v.c_str());
    }
  }
  body["Volumes"] = volumes.empty() ? Json() : volumes;
  body["WorkingDir"] = f.workdir;
  if (f.entrypoint) body["Entrypoint"] = Json::array({*f.entrypoint});
  else body["Entrypoint"] = Json();
  body["OnBuild"] = Json();
  Json labels = Json::object();
  for (const auto& l : f.labels) {
    auto [k, v] = SplitKv(l);
    if (k.empty()) return Fail(ErrorKind::kInvalidArgument, "invalid label '%s'", l.c_str());
    labels[k] = v;
  }
  body["Labels"] = labels;
  if (!f.mac_address.empty()) {
    if (!IsValidMac(TrimWhitespace(f.mac_address)))
      return Fail(ErrorKind::kInvalidArgument, "%s is not a valid mac address",
                  f.mac_address.c_str());
    // Container-wide for API < 1.44 (moatd speaks 1.41); newer daemons read the endpoint's.
    body["MacAddress"] = f.mac_address;
  }
  if (!f.stop_signal.empty()) body["StopSignal"] = f.stop_signal;
  if (f.stop_timeout) body["StopTimeout"] = *f.stop_timeout;

  host["Binds"] = binds.empty() ? Json() : binds;
  host["ContainerIDFile"] = "";
  Json log_config;
  log_config["Type"] = f.log_driver;
  log_config["Config"] = Json::object();
  for (const auto& o : f.log_opts) {
    auto [k, v] = SplitKv(o);
    log_config["Config"][k] = v;
  }
  host["LogConfig"] = log_config;
  host["NetworkMode"] = f.network;
  host["PortBindings"] = bindings;
  for (const auto& l : f.links)
    MOAT_TRY(ValidateLink(l).Context("invalid argument \"%s\" for \"--link\" flag", l.c_str()));
  host["Links"] = f.links.empty() ? Json() : Json(f.links);
  MOAT_ASSIGN_OR_RETURN(Json restart, ParseRestartPolicy(f.restart));
  host["RestartPolicy"] = restart;
  if (f.rm && restart["Name"] != "no")
    return Fail(ErrorKind::kInvalidArgument,
                "conflicting options: cannot specify both --restart and --rm");
  host["AutoRemove"] = f.rm;
  host["VolumeDriver"] = "";
  host["VolumesFrom"] = Json();
  if (console_size && f.tty) host["ConsoleSize"] = {console_size->first, console_size->second};
  else host["ConsoleSize"] = {0, 0};
  host["CapAdd"] = f.cap_add.empty() ? Json() : Json(f.cap_add);
  host["CapDrop"] = f.cap_drop.empty() ? Json() : Json(f.cap_drop);
  host["CgroupnsMode"] = f.cgroupns;
  // docker never sends the DNS lists as null (moby#17779), ExtraHosts only when given.
  Json dns = Json::array();
  for (const auto& d : f.dns) {
    auto ip = NormalizeIp(d);
    if (!ip)
      return Fail(ErrorKind::kInvalidArgument,
                  "invalid argument \"%s\" for \"--dns\" flag: %s is not an ip address", d.c_str(),
                  d.c_str());
    dns.push_back(*ip);
  }
  host["Dns"] = dns;
  host["DnsOptions"] = f.dns_options.empty() ? Json::array() : Json(f.dns_options);
  Json dns_search = Json::array();
  for (const auto& d : f.dns_search) {
    if (!IsValidDnsSearch(d))
      return Fail(ErrorKind::kInvalidArgument,
                  "invalid argument \"%s\" for \"--dns-search\" flag: %s is not a valid domain",
                  d.c_str(), d.c_str());
    // ValidateDNSSearch keeps the domain without blanks or a trailing dot ("." stays).
    std::string domain(TrimWhitespace(d));
    if (domain.size() > 1 && domain.back() == '.') domain.pop_back();
    dns_search.push_back(domain);
  }
  host["DnsSearch"] = dns_search;
  Json extra_hosts = Json::array();
  for (const auto& h : f.add_hosts) {
    MOAT_ASSIGN_OR_RETURN(std::string entry, ParseExtraHost(h));
    extra_hosts.push_back(entry);
  }
  host["ExtraHosts"] = extra_hosts.empty() ? Json() : extra_hosts;
  host["GroupAdd"] = f.group_add.empty() ? Json() : Json(f.group_add);
  host["IpcMode"] = f.ipc;
  host["Cgroup"] = "";
  host["OomScoreAdj"] = 0;
  host["PidMode"] = f.pid;
  host["Privileged"] = f.privileged;
  host["PublishAllPorts"] = f.publish_all;
  host["ReadonlyRootfs"] = f.read_only;
  host["SecurityOpt"] = f.security_opt.empty() ? Json() : Json(f.security_opt);
  if (!f.tmpfs.empty()) {
    Json tmpfs = Json::object();
    for (const auto& t : f.tmpfs) {
      size_t colon = t.find(':');
      tmpfs[t.substr(0, colon)] = colon == std::string::npos ? "" : t.substr(colon + 1);
    }
    host["Tmpfs"] = tmpfs;
  }
  host["UTSMode"] = f.uts;
  host["UsernsMode"] = f.userns;
  int64_t shm = 0;
  if (!f.shm_size.empty()) {
    MOAT_ASSIGN_OR_RETURN(shm, ParseMemoryBytes(f.shm_size).Context("--shm-size"));
  }
  host["ShmSize"] = shm;
  Json sysctls = Json::object();
  for (const auto& s : f.sysctls) {
    auto [k, v] = SplitKv(s);
    if (k.empty() || s.find('=') == std::string::npos)
      return Fail(ErrorKind::kInvalidArgument, "invalid --sysctl %s: use NAME=VALUE", s.c_str());
    sysctls[k] = v;
  }
  if (!sysctls.empty()) host["Sysctls"] = sysctls;
  host["Init"] = f.init ? Json(true) : Json();
  // Resources.
  host["CpuShares"] = f.cpu_shares;
  int64_t memory = 0, swap = 0, reservation = 0, nano_cpus = 0;
  if (!f.memory.empty()) {
    MOAT_ASSIGN_OR_RETURN(memory, ParseMemoryBytes(f.memory).Context("--memory"));
  }
  if (f.memory_swap == "-1") {
    swap = -1;
  } else if (!f.memory_swap.empty()) {
    MOAT_ASSIGN_OR_RETURN(swap, ParseMemoryBytes(f.memory_swap).Context("--memory-swap"));
  }
  if (swap > 0 && memory == 0)
    return Fail(ErrorKind::kInvalidArgument,
                "you should always set the memory limit when using the memory swap limit "
                "(add --memory)");
  if (swap > 0 && swap < memory)
    return Fail(ErrorKind::kInvalidArgument,
                "minimum memoryswap limit should be larger than memory limit, see usage");
  if (!f.memory_reservation.empty()) {
    MOAT_ASSIGN_OR_RETURN(reservation,
                          ParseMemoryBytes(f.memory_reservation).Context("--memory-reservation"));
  }
  if (!f.cpus.empty()) {
    MOAT_ASSIGN_OR_RETURN(nano_cpus, ParseNanoCpus(f.cpus));
  }
  host["Memory"] = memory;
  host["NanoCpus"] = nano_cpus;
  host["CgroupParent"] = "";
  host["BlkioWeight"] = 0;
  host["CpuPeriod"] = 0;
  host["CpuQuota"] = 0;
  host["CpuRealtimePeriod"] = 0;
  host["CpuRealtimeRuntime"] = 0;
  host["CpusetCpus"] = f.cpuset_cpus;
  host["CpusetMems"] = f.cpuset_mems;
  Json devices = Json::array();
  for (const auto& d : f.devices) {
    MOAT_ASSIGN_OR_RETURN(Json dev, ParseDevice(d));
    devices.push_back(dev);
  }
  host["Devices"] = devices;
  host["DeviceCgroupRules"] = Json();
  host["DeviceRequests"] = Json();
  host["MemoryReservation"] = reservation;
  host["MemorySwap"] = swap;
  host["MemorySwappiness"] = Json();
  host["OomKillDisable"] = f.oom_kill_disable;
  host["PidsLimit"] = f.pids_limit ? Json(*f.pids_limit) : Json();
  Json ulimits = Json::array();
  for (const auto& u : f.ulimits) {
    MOAT_ASSIGN_OR_RETURN(Json ul, ParseUlimit(u));
    ulimits.push_back(ul);
  }
  host["Ulimits"] = ulimits.empty() ? Json() : ulimits;
  Json mounts = Json::array();
  for (const auto& m : f.mounts) {
    MOAT_ASSIGN_OR_RETURN(Json mount, ParseMount(m).Context("--mount"));
    mounts.push_back(mount);
  }
  if (!mounts.empty()) host["Mounts"] = mounts;
  host["MaskedPaths"] = Json();
  host["ReadonlyPaths"] = Json();
  body["HostConfig"] = host;
  MOAT_ASSIGN_OR_RETURN(Json endpoints, BuildEndpointsConfig(f));
  body["NetworkingConfig"]["EndpointsConfig"] = endpoints;
  return body;
}

int StartErrorExitCode(std::string_view message) {
  if (message.find("executable file not found") != std::string_view::npos ||
      message.find("no such file or directory") != std::string_view::npos)
    return 127;
  if (message.find("permission denied") != std::string_view::npos ||
      message.find("is a directory") != std::string_view::npos)
    return 126;
  return 125;
}

}  // namespace moat::cli
