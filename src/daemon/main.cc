// moatd: the Moat engine's daemon. The process starts as root, takes the lock on its data root,
// creates the listening socket, and forks the API front (unprivileged, sandboxed) before any
// thread exists; the parent becomes the privileged core.

#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <malloc.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <set>
#include <string>
#include <thread>

#include "base/embedded.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/mount.h"
#include "base/sys/inet.h"
#include "base/sys/socket.h"
#include "cgroups/manager.h"
#include "daemon/api/http.h"
#include "daemon/api/tls.h"
#include "daemon/common/json.h"
#include "daemon/core/container_internal.h"
#include "daemon/core/containers.h"
#include "daemon/core/engine.h"
#include "daemon/core/events.h"
#include "daemon/front/core_client.h"
#include "daemon/front/routes.h"
#include "daemon/front/sandbox.h"
#include "daemon/privsep/wire.h"
#include "image/store.h"

namespace moat::embedded {
std::string_view default_spec_json();
std::string_view daemon_seccomp_default_json();
}  // namespace moat::embedded

namespace moat::daemon {
namespace {

constexpr const char* kDefaultHost = "unix:///run/moat/moat.sock";
// dockerd's port for the API over TLS, used when a tcp:// address names none.
constexpr const char* kDefaultTlsPort = "2376";

struct Options {
  std::vector<std::string> hosts;  // -H, repeatable; kDefaultHost when none
  // TLS for tcp:// hosts (dockerd's flags). Moat has no --tls without --tlsverify: TCP is served
  // only to clients with a certificate signed by tlscacert.
  bool tls = false;
  bool tlsverify = false;
  std::string tlscacert;
  std::string tlscert;
  std::string tlskey;
  std::string data_root = "/var/lib/moat";
  std::string exec_root = "/run/moat";
  std::string config_file = "/etc/moat/daemon.json";
  std::string group = "moat";
  std::string api_user = "moat-api";
  std::string runtime;
  std::string extractor;
  std::string log_level = "info";
  std::string log_format = "text";
  int64_t log_max_size = 0;
  int log_max_files = 1;
  bool front_selftest = false;
  // Networking (daemon.json "bridge", "bip", "default-address-pools", "icc", "mtu").
  std::string bridge = "moat0";
  std::string bip;
  std::vector<std::pair<std::string, int>> pools;
  bool icc = true;
  int mtu = 1500;
  std::string dns;
  // Registries (daemon.json "insecure-registries", "registry-certs-dir").
  std::vector<std::string> insecure_registries;
  std::string registry_certs_dir = "/etc/moat/certs.d";
};

std::string SelfDir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<size_t>(n));
  return p.substr(0, p.rfind('/'));
}

std::string FindTool(const std::string& flag, const char* name, const char* build_path) {
  if (!flag.empty()) return flag;
  std::string sibling = SelfDir() + "/" + name;
  if (::access(sibling.c_str(), X_OK) == 0) return sibling;
  return build_path;
}

// daemon.json: {"hosts":["unix:///...","tcp://127.0.0.1:2376"],"tls":..,"tlsverify":..,
// "tlscacert":..,"tlscert":..,"tlskey":..,"data-root":..,"exec-root":..,"group":..,
// "log-level":..,"log-opts":{"max-size":"10m","max-file":"3"}}. Flags given on the command
// line win.
Result<void> ApplyConfigFile(const std::string& path, Options* o, const CLI::App& app) {
  auto text = sys::ReadFile(path);
  if (!text) {
    if (text.error().kind == ErrorKind::kNotFound) return {};
    return Fail(text.error());
  }
  MOAT_ASSIGN_OR_RETURN(Json j, ParseJson(*text));
  if (!j.is_object()) return Fail(ErrorKind::kInvalidArgument, "%s: expected a JSON object", path.c_str());
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k != "hosts" && k != "data-root" && k != "exec-root" && k != "group" && k != "log-level" &&
        k != "log-opts" && k != "api-user" && k != "bridge" && k != "bip" && k != "default-address-pools" &&
        k != "icc" && k != "mtu" && k != "tls" && k != "tlsverify" && k != "tlscacert" &&
        k != "tlscert" && k != "tlskey" && k != "insecure-registries" && k != "registry-certs-dir") {
      return Fail(ErrorKind::kInvalidArgument, "%s: unknown key \"%s\"", path.c_str(), k.c_str());
    }
  }
  std::vector<std::string> hosts;
  MOAT_TRY(GetStringList(j, "hosts", &hosts, "hosts"));
  if (!hosts.empty() && app.count("--host") == 0) o->hosts = hosts;
  if (app.count("--tls") == 0) MOAT_TRY(GetBool(j, "tls", &o->tls, "tls"));
  if (app.count("--tlsverify") == 0) MOAT_TRY(GetBool(j, "tlsverify", &o->tlsverify, "tlsverify"));
  if (app.count("--tlscacert") == 0) MOAT_TRY(GetString(j, "tlscacert", &o->tlscacert, "tlscacert"));
  if (app.count("--tlscert") == 0) MOAT_TRY(GetString(j, "tlscert", &o->tlscert, "tlscert"));
  if (app.count("--tlskey") == 0) MOAT_TRY(GetString(j, "tlskey", &o->tlskey, "tlskey"));
  if (app.count("--data-root") == 0) MOAT_TRY(GetString(j, "data-root", &o->data_root, "data-root"));
  if (app.count("--exec-root") == 0) MOAT_TRY(GetString(j, "exec-root", &o->exec_root, "exec-root"));
  if (app.count("--group") == 0) MOAT_TRY(GetString(j, "group", &o->group, "group"));
  if (app.count("--api-user") == 0) MOAT_TRY(GetString(j, "api-user", &o->api_user, "api-user"));
  if (app.count("--log-level") == 0) MOAT_TRY(GetString(j, "log-level", &o->log_level, "log-level"));
  if (app.count("--bridge") == 0) MOAT_TRY(GetString(j, "bridge", &o->bridge, "bridge"));
  if (app.count("--bip") == 0) MOAT_TRY(GetString(j, "bip", &o->bip, "bip"));
  MOAT_TRY(GetBool(j, "icc", &o->icc, "icc"));
  if (app.count("--insecure-registry") == 0)
    MOAT_TRY(GetStringList(j, "insecure-registries", &o->insecure_registries, "insecure-registries"));
  if (app.count("--registry-certs-dir") == 0)
    MOAT_TRY(GetString(j, "registry-certs-dir", &o->registry_certs_dir, "registry-certs-dir"));
  int64_t mtu = o->mtu;
  MOAT_TRY(GetInt(j, "mtu", &mtu, "mtu"));
  o->mtu = static_cast<int>(mtu);
  if (j.contains("default-address-pools")) {
    const Json& pools = j["default-address-pools"];
    if (!pools.is_array()) return Fail(ErrorKind::kInvalidArgument, "%s: default-address-pools: expected an array", path.c_str());
    for (const auto& p : pools) {
      if (!p.is_object() || !p.contains("base") || !p["base"].is_string() || !p.contains("size") ||
          !p["size"].is_number_integer()) {
        return Fail(ErrorKind::kInvalidArgument, "%s: default-address-pools: entries are {\"base\":\"CIDR\",\"size\":N}",
                    path.c_str());
      }
      o->pools.emplace_back(p["base"].get<std::string>(), p["size"].get<int>());
    }
  }
  std::map<std::string, std::string> log_opts;
  MOAT_TRY(GetStringMap(j, "log-opts", &log_opts, "log-opts"));
  if (auto it = log_opts.find("max-size"); it != log_opts.end()) {
    char* end = nullptr;
    double v = strtod(it->second.c_str(), &end);
    int64_t mult = 1;
    if (end && (*end == 'k' || *end == 'K')) mult = 1000;
    if (end && (*end == 'm' || *end == 'M')) mult = 1000 * 1000;
    if (end && (*end == 'g' || *end == 'G')) mult = 1000 * 1000 * 1000;
    o->log_max_size = static_cast<int64_t>(v * static_cast<double>(mult));
  }
  if (auto it = log_opts.find("max-file"); it != log_opts.end()) o->log_max_files = std::atoi(it->second.c_str());
  return {};
}

// The containers' parent cgroup ("moat" under moatd's own cgroup, made by moat-runtime) goes
// with the daemon when no container is left in it: rmdir removes only an empty directory, so
// containers kept running across a restart keep theirs.
void RemoveEmptyCgroupParent(const std::string& parent) {
  auto layout = cgroups::DetectLayout();
  if (!layout) return;
  std::set<std::string> dirs;
  auto self = [&](const std::string& key) {
    auto it = layout->self.find(key);
    return it == layout->self.end() ? std::string("/") : it->second;
  };
  for (const auto& [controller, mount] : layout->v1_mounts) dirs.insert(mount + self(controller) + "/" + parent);
  if (!layout->unified_root.empty()) dirs.insert(layout->unified_root + self("") + "/" + parent);
  for (const auto& d : dirs) ::rmdir(d.c_str());
}

// One -H address: a unix socket path, or a TCP host and port.
struct HostAddr {
  std::string uri;
  std::string unix_path;  // unix://PATH
  std::string tcp_host;   // tcp://HOST:PORT ("" host: every address)
  std::string tcp_port;
  bool is_tcp() const { return unix_path.empty(); }
};

Result<HostAddr> ParseHost(const std::string& host) {
  HostAddr a;
  a.uri = host;
  if (StartsWith(host, "unix://")) {
    a.unix_path = host.substr(7);
    if (a.unix_path.empty() || a.unix_path[0] != '/')
      return Fail(ErrorKind::kInvalidArgument, "-H %s: the socket path must be absolute", host.c_str());
    return a;
  }
  if (!StartsWith(host, "tcp://"))
    return Fail(ErrorKind::kUnsupported, "-H %s: expected unix:///path or tcp://host:port", host.c_str());
  std::string rest = host.substr(6);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos)
    return Fail(ErrorKind::kInvalidArgument, "-H %s: a tcp:// address has no path", host.c_str());
  if (!rest.empty() && rest[0] == '[') {  // [v6]:port
    size_t close = rest.find(']');
    if (close == std::string::npos) return Fail(ErrorKind::kInvalidArgument, "-H %s: unclosed [", host.c_str());
    a.tcp_host = rest.substr(1, close - 1);
    std::string tail = rest.substr(close + 1);
    if (!tail.empty() && tail[0] != ':') return Fail(ErrorKind::kInvalidArgument, "-H %s: expected :port after ]", host.c_str());
    a.tcp_port = tail.empty() ? "" : tail.substr(1);
  } else {
    size_t colon = rest.rfind(':');
    a.tcp_host = rest.substr(0, colon);
    a.tcp_port = colon == std::string::npos ? "" : rest.substr(colon + 1);
  }
  if (a.tcp_port.empty()) a.tcp_port = kDefaultTlsPort;
  auto port = ParseInt64(a.tcp_port);
  if (!port || *port < 1 || *port > 65535)
    return Fail(ErrorKind::kInvalidArgument, "-H %s: invalid port \"%s\"", host.c_str(), a.tcp_port.c_str());
  return a;
}

// Moat's rule for tcp:// listeners (docs/engine.md): TLS with client certificates, always.
// Fills in dockerd's default file names ($DOCKER_CERT_PATH or ~/.docker, then ca.pem,
// cert.pem, key.pem) for those not given, as dockerd does.
Result<tls::Files> TlsFilesFor(Options* o, const std::string& first_tcp) {
  const char* why =
      "moatd serves the API over TCP only with TLS and client certificates (a TCP socket "
      "without them gives root to anyone who can reach the port)";
  if (!o->tlsverify) {
    return Fail(ErrorKind::kInvalidArgument, "-H %s needs --tlsverify with --tlscacert, --tlscert and --tlskey: %s%s",
                first_tcp.c_str(), why,
                o->tls ? "; --tls alone (no client verification) is not supported" : "");
  }
  std::string dir;
  if (const char* p = getenv("DOCKER_CERT_PATH"); p && *p) {
    dir = p;
  } else if (const char* home = getenv("HOME"); home && *home) {
    dir = std::string(home) + "/.docker";
  }
  auto fill = [&](std::string* f, const char* name) {
    if (f->empty() && !dir.empty() && ::access((dir + "/" + name).c_str(), R_OK) == 0) *f = dir + "/" + name;
  };
  fill(&o->tlscacert, "ca.pem");
  fill(&o->tlscert, "cert.pem");
  fill(&o->tlskey, "key.pem");
  for (auto [flag, value] : {std::pair{"--tlscacert", &o->tlscacert}, {"--tlscert", &o->tlscert}, {"--tlskey", &o->tlskey}}) {
    if (value->empty())
      return Fail(ErrorKind::kInvalidArgument, "-H %s with --tlsverify needs %s (none given and no default file): %s",
                  first_tcp.c_str(), flag, why);
  }
  // The key is read once, by root, before the front is confined; a key others can read is
  // already exposed.
  struct stat st {};
  if (::stat(o->tlskey.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
    MOAT_LOG(kWarning, "TLS key %s is readable by group or others (mode %03o): chmod 600 it", o->tlskey.c_str(),
             st.st_mode & 0777);
  }
  return tls::Files{o->tlscacert, o->tlscert, o->tlskey};
}

// A listening TCP socket on host:port ("" host: every address, IPv6 and IPv4).
Result<UniqueFd> ListenTcp(const HostAddr& a) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(a.tcp_host.empty() ? nullptr : a.tcp_host.c_str(), a.tcp_port.c_str(), &hints, &res);
  if (rc != 0) return Fail(ErrorKind::kInvalidArgument, "-H %s: %s", a.uri.c_str(), gai_strerror(rc));
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(res, freeaddrinfo);
  // With no host, prefer the IPv6 wildcard (dual-stack) over 0.0.0.0.
  const addrinfo* pick = res;
  if (a.tcp_host.empty())
    for (const addrinfo* p = res; p; p = p->ai_next)
      if (p->ai_family == AF_INET6) pick = p;
  MOAT_ASSIGN_OR_RETURN(UniqueFd fd, sys::socket(pick->ai_family, SOCK_STREAM, 0));
  MOAT_TRY(sys::setsockopt_int(fd.get(), SOL_SOCKET, SO_REUSEADDR, 1));
  if (pick->ai_family == AF_INET6) (void)sys::setsockopt_int(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, 0);
  if (auto b = sys::bind(fd.get(), pick->ai_addr, pick->ai_addrlen); !b) {
    Error e = b.error();
    e.message = "-H " + a.uri + ": " + e.message;
    return Fail(std::move(e));
  }
  MOAT_TRY(sys::listen(fd.get(), 512));
  return fd;
}

// The data root's lock: held for the daemon's life; a second daemon on the same root fails.
Result<UniqueFd> TakeLock(const std::string& data_root) {
  std::string path = data_root + "/moatd.lock";
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) return FailErrno("open %s", path.c_str());
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    std::string pid = sys::ReadFile(path).value_or("?");
    return Fail(ErrorKind::kConflict, "another moatd (pid %s) is using %s", std::string(TrimWhitespace(pid)).c_str(),
                data_root.c_str());
  }
  if (ftruncate(fd.get(), 0) == 0) {
    std::string pid = std::to_string(getpid()) + "\n";
    (void)!::write(fd.get(), pid.data(), pid.size());
  }
  return fd;
}

Result<UniqueFd> Listen(const std::string& path, const std::string& group_name) {
  MOAT_TRY(sys::MkdirAll(path.substr(0, path.rfind('/')), 0755));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return Fail(ErrorKind::kInvalidArgument, "socket path too long: %s", path.c_str());
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return FailErrno("socket");
  // The lock is held: a socket file left here belongs to a dead daemon.
  ::unlink(path.c_str());
  // Bound with a umask that leaves it private until its mode and group are set.
  mode_t old = umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  umask(old);
  if (rc != 0) return FailErrno("bind %s", path.c_str());
  gid_t gid = 0;
  if (const struct group* g = getgrnam(group_name.c_str())) gid = g->gr_gid;
  if (::chown(path.c_str(), 0, gid) != 0) return FailErrno("chown %s", path.c_str());
  // 0660 root:moat when the group exists, else root only (0600).
  if (::chmod(path.c_str(), gid != 0 ? 0660 : 0600) != 0) return FailErrno("chmod %s", path.c_str());
  if (::listen(fd.get(), 512) != 0) return FailErrno("listen %s", path.c_str());
  return fd;
}

// The front and the core give their one-off memory back (the code and data their last requests
// ran, free heap: sys::QuietReleaser) after this long without a request. The next request maps
// the pages it needs again from the page cache.
constexpr int kReleaseQuietMs = 200;

// `listeners` hold the listening fds (owned by the caller) and, for tcp://, the TLS context
// loaded before the fork: the front cannot open the certificate files once confined.
[[noreturn]] void RunFront(const front::SandboxPlan& plan, const std::vector<api::Listener>& listeners,
                           UniqueFd channel, bool selftest, const std::string& data_root) {
  // The log's local time: /etc/localtime is read now, while it can be (the sandbox's empty root
  // and seccomp would refuse the open at the first log line, e.g. a refused TLS client).
  tzset();
  if (auto s = EnterSandbox(plan); !s) {
    MOAT_LOG(kError, "api front: sandbox: %s", s.error().message.c_str());
    _exit(1);
  }
  if (selftest) {
    // What the sandbox leaves: report it, for tests (moatd --front-selftest).
    int fd = ::open((data_root + "/moatd.lock").c_str(), O_RDONLY);
    int open_errno = fd < 0 ? errno : 0;
    char* argv[] = {const_cast<char*>("/bin/sh"), nullptr};
    execve("/bin/sh", argv, environ);
    int exec_errno = errno;
    std::string status = sys::ReadFile("/proc/self/status").value_or("(no /proc in the front's root)");
    printf("open %s/moatd.lock: %s\nexecve /bin/sh: %s\nuid %u gid %u\n", data_root.c_str(),
           open_errno ? strerror(open_errno) : "opened", strerror(exec_errno), getuid(), getgid());
    (void)status;
    fflush(stdout);
    _exit(0);
  }
  // What the parent's start-up allocated (the seccomp compiler's tables among it) is not needed
  // here: give it back before serving.
  malloc_trim(0);
  front::CoreClient core(std::move(channel));
  api::ServerOptions so;
  so.server_header = "Moat/" MOAT_VERSION " (linux)";
  so.release_quiet_ms = kReleaseQuietMs;
  api::Server server(so, front::MakeRouter(&core, front::FrontInfo{MOAT_VERSION}));
  auto r = server.Serve(listeners);
  if (!r) MOAT_LOG(kError, "api front: %s", r.error().message.c_str());
  _exit(r ? 0 : 1);
}

int Main(int argc, char** argv) {
  // One malloc arena per thread (glibc's default, up to 8 per core) keeps the memory of a burst
  // of request threads long after: two arenas hold the daemon near its idle size.
  mallopt(M_ARENA_MAX, 2);
  Options o;
  CLI::App app{"moatd: the Moat container engine's daemon (Docker Engine API on a UNIX socket, and over TCP with TLS client certificates)"};
  app.add_option("-H,--host", o.hosts,
                 "Socket to listen on, repeatable: unix:///path, or tcp://host:port (needs --tlsverify); "
                 "default unix:///run/moat/moat.sock");
  app.add_flag("--tls", o.tls, "Use TLS (implied by --tlsverify; Moat requires --tlsverify for tcp://)");
  app.add_flag("--tlsverify", o.tlsverify, "Use TLS and require client certificates signed by --tlscacert");
  app.add_option("--tlscacert", o.tlscacert, "CA certificate (PEM) that signs client certificates (default ~/.docker/ca.pem)");
  app.add_option("--tlscert", o.tlscert, "Server certificate (PEM; default ~/.docker/cert.pem)");
  app.add_option("--tlskey", o.tlskey, "Server private key (PEM, unencrypted; default ~/.docker/key.pem)");
  app.add_option("--data-root", o.data_root, "Persistent state (containers, images, volumes)");
  app.add_option("--exec-root", o.exec_root, "State that dies with the machine (sockets, monitors)");
  app.add_option("--config-file", o.config_file, "Daemon configuration (JSON)");
  app.add_option("-G,--group", o.group, "Group that may use the socket (0660); root only if it does not exist");
  app.add_option("--api-user", o.api_user, "Unprivileged user of the API front");
  app.add_option("--runtime", o.runtime, "Path of moat-runtime");
  app.add_option("--extractor", o.extractor, "Path of moat-extract");
  app.add_option("-l,--log-level", o.log_level, "debug|info|warn|error");
  app.add_option("-b,--bridge", o.bridge, "Interface of the default bridge network (\"none\": no default bridge)");
  app.add_option("--bip", o.bip, "The default bridge's gateway address and prefix (CIDR)");
  app.add_option("--dns-resolver", o.dns, "Path of moat-dns");
  app.add_option("--insecure-registry", o.insecure_registries,
                 "Registry (host[:port] or CIDR) that may be reached over plain HTTP; repeatable");
  app.add_option("--registry-certs-dir", o.registry_certs_dir,
                 "Per-registry CAs and client certificates: DIR/<host:port>/ca.crt, client.cert, client.key");
  app.add_option("--log-format", o.log_format, "text|json");
  app.add_flag("--front-selftest", o.front_selftest, "Confine a front as moatd does, report what it can do, exit");
  app.set_version_flag("-v,--version", "moatd version " MOAT_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  log::Options lo;
  lo.format = o.log_format == "json" ? log::Format::kJson : log::Format::kText;
  lo.min_level = o.log_level == "debug" ? log::Level::kDebug
                 : o.log_level == "warn" ? log::Level::kWarning
                 : o.log_level == "error" ? log::Level::kError
                                          : log::Level::kInfo;
  log::Configure(lo);
  if (auto c = ApplyConfigFile(o.config_file, &o, app); !c) {
    fprintf(stderr, "moatd: %s\n", c.error().message.c_str());
    return 1;
  }
  if (geteuid() != 0) {
    fprintf(stderr, "moatd: must run as root (rootless moatd is not built yet)\n");
    return 1;
  }
  auto fail = [](const Error& e) {
    fprintf(stderr, "moatd: %s\n", e.message.c_str());
    return 1;
  };
  if (o.hosts.empty()) o.hosts.push_back(kDefaultHost);
  std::vector<HostAddr> addrs;
  std::string first_tcp;
  for (const std::string& h : o.hosts) {
    auto a = ParseHost(h);
    if (!a) return fail(a.error());
    if (a->is_tcp() && first_tcp.empty()) first_tcp = h;
    addrs.push_back(std::move(*a));
  }
  // Checked before anything is created: a refused configuration leaves nothing behind.
  std::shared_ptr<const tls::Context> tls_ctx;
  if (!first_tcp.empty()) {
    auto files = TlsFilesFor(&o, first_tcp);
    if (!files) return fail(files.error());
    auto ctx = tls::Context::Load(tls::Role::kServer, *files);
    if (!ctx) return fail(ctx.error());
    tls_ctx = std::move(*ctx);
  } else if (o.tlsverify || o.tls) {
    MOAT_LOG(kWarning, "--tls/--tlsverify have no effect without a tcp:// host");
  }
  for (const auto& d : {o.data_root, o.exec_root}) {
    if (auto m = sys::MkdirAll(d, 0711); !m) return fail(m.error());
  }
  auto lock = TakeLock(o.data_root);
  if (!lock) return fail(lock.error());
  auto plan = front::PlanSandbox(o.api_user, o.exec_root + "/front-root");
  if (!plan) return fail(plan.error());

  if (o.front_selftest) {
    auto pair = sys::socketpair(SOCK_SEQPACKET);
    if (!pair) return fail(pair.error());
    pid_t pid = fork();
    if (pid == 0) RunFront(*plan, {}, std::move(pair->second), true, o.data_root);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  }

  std::vector<UniqueFd> listen_fds;
  std::vector<api::Listener> listeners;
  for (const HostAddr& a : addrs) {
    auto l = a.is_tcp() ? ListenTcp(a) : Listen(a.unix_path, o.group);
    if (!l) return fail(l.error());
    listeners.push_back({l->get(), a.is_tcp() ? tls_ctx : nullptr});
    listen_fds.push_back(std::move(*l));
  }
  auto pair = sys::socketpair(SOCK_SEQPACKET);
  if (!pair) return fail(pair.error());
  privsep::RaiseBuffers(pair->first.get());
  privsep::RaiseBuffers(pair->second.get());

  // Signals are taken by sigwait in the core's main thread; the mask is inherited by its threads.
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&sigs, s);
  sigprocmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // Fork the front now: no thread exists yet.
  pid_t front_pid = fork();
  if (front_pid < 0) return fail(Error::FromErrno(errno, "fork"));
  if (front_pid == 0) {
    pair->first.reset();
    lock->reset();
    sigprocmask(SIG_UNBLOCK, &sigs, nullptr);
    signal(SIGPIPE, SIG_IGN);
    RunFront(*plan, listeners, std::move(pair->second), false, o.data_root);
  }
  pair->second.reset();
  listen_fds.clear();  // the front owns the only copies in use
  // The TLS key lives in the front only: OpenSSL clears the key material as it frees it here.
  listeners.clear();
  tls_ctx.reset();

  image::StoreOptions so;
  so.extractor_path = FindTool(o.extractor, "moat-extract", MOAT_EXTRACT_BUILD_PATH);
  so.insecure_registries = o.insecure_registries;
  so.certs_dir = o.registry_certs_dir;
  auto store = image::Store::Open(o.data_root + "/image", so);
  if (!store) {
    kill(front_pid, SIGKILL);
    return fail(store.error());
  }
  core::Events events;
  core::Paths paths;
  paths.data_root = o.data_root;
  paths.exec_root = o.exec_root;
  paths.runtime_binary = FindTool(o.runtime, "moat-runtime", MOAT_RUNTIME_BUILD_PATH);
  // Monitors start from a read-only detached mount of moat-runtime (CVE-2019-5736 class; see
  // runtime/exe_seal.h), made once here, so that each need not re-execute itself. The fd is
  // close-on-exec: a spawn executes it through /proc/self/fd before it is closed.
  auto sealed_runtime = sys::ReadOnlyBindMount(AT_FDCWD, paths.runtime_binary);
  if (sealed_runtime) {
    paths.runtime_exec = "/proc/self/fd/" + std::to_string(sealed_runtime->get());
  } else {
    MOAT_LOG(kWarning, "moat-runtime: read-only mount of %s: %s (monitors seal themselves)",
             paths.runtime_binary.c_str(), sealed_runtime.error().message.c_str());
  }
  paths.log_max_size = o.log_max_size;
  paths.log_max_files = o.log_max_files;
  auto default_spec = ParseJson(embedded::default_spec_json());
  if (!default_spec) return fail(default_spec.error());
  core::NetworkOptions no;
  no.bridge_name = o.bridge;
  no.bip = o.bip;
  no.icc = o.icc;
  no.mtu = o.mtu;
  no.dns_binary = FindTool(o.dns, "moat-dns", MOAT_DNS_BUILD_PATH);
  if (!o.pools.empty()) {
    no.pools.clear();
    for (const auto& [base, size] : o.pools) {
      auto pool = net::MakePool(base, size);
      if (!pool) {
        kill(front_pid, SIGKILL);
        return fail(pool.error());
      }
      no.pools.push_back(*pool);
    }
  }
  core::Networks networks(no, o.data_root, o.exec_root, &events);
  if (auto r = networks.Init(); !r) {
    kill(front_pid, SIGKILL);
    return fail(r.error());
  }
  core::Containers containers(paths, store->get(), &events, *default_spec,
                              std::string(embedded::daemon_seccomp_default_json()), &networks);
  if (auto r = containers.Restore(); !r) {
    kill(front_pid, SIGKILL);
    return fail(r.error());
  }
  std::string daemon_id = sys::ReadFile(o.data_root + "/engine-id").value_or("");
  if (daemon_id.empty()) {
    daemon_id = core::RandomId().substr(0, 36);
    (void)sys::WriteFileAtomic(o.data_root + "/engine-id", daemon_id, 0600);
  }
  core::Engine engine({MOAT_VERSION, o.data_root, o.exec_root, daemon_id, kReleaseQuietMs}, store->get(),
                      &containers, &events, &networks);
  malloc_trim(0);
  int channel = pair->first.get();
  std::thread([&engine, channel] {
    auto r = engine.Serve(channel);
    if (!r) MOAT_LOG(kError, "core: %s", r.error().message.c_str());
    // The front is gone: the daemon stops (containers keep running under their monitors).
    kill(getpid(), SIGTERM);
  }).detach();
  std::string hosts_text;
  for (const HostAddr& a : addrs) hosts_text += (hosts_text.empty() ? "" : " ") + a.uri + (a.is_tcp() ? " (TLS, client certificates required)" : "");
  MOAT_LOG(kInfo, "moatd %s listening on %s (data root %s, front pid %d, uid %u)", MOAT_VERSION,
           hosts_text.c_str(), o.data_root.c_str(), front_pid, plan->uid);
  for (;;) {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig == SIGCHLD) {
      // Only the front is reaped here: the core's other children (monitor launchers, the
      // extractor) are waited for by the threads that started them.
      int status;
      if (waitpid(front_pid, &status, WNOHANG) == front_pid) {
        MOAT_LOG(kError, "the API front exited; stopping (running containers are kept)");
        break;
      }
      continue;
    }
    MOAT_LOG(kInfo, "signal %d: shutting down; running containers are kept", sig);
    break;
  }
  kill(front_pid, SIGKILL);
  waitpid(front_pid, nullptr, 0);
  for (const HostAddr& a : addrs)
    if (!a.is_tcp()) ::unlink(a.unix_path.c_str());
  RemoveEmptyCgroupParent(paths.cgroup_parent);
  _exit(0);  // request threads may still be blocked on waits: they end with the process
}

}  // namespace
}  // namespace moat::daemon

int main(int argc, char** argv) { return moat::daemon::Main(argc, argv); }
