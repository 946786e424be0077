// moatd: the Moat engine's daemon. The process starts as root, takes the lock on its data root,
// creates the listening socket, and forks the API front (unprivileged, sandboxed) before any
// thread exists; the parent becomes the privileged core.

#include <fcntl.h>
#include <grp.h>
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
#include "base/sys/socket.h"
#include "cgroups/manager.h"
#include "daemon/api/http.h"
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

struct Options {
  std::string host = "unix:///run/moat/moat.sock";
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

// daemon.json: {"hosts":["unix:///..."],"data-root":..,"exec-root":..,"group":..,
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
        k != "icc" && k != "mtu") {
      return Fail(ErrorKind::kInvalidArgument, "%s: unknown key \"%s\"", path.c_str(), k.c_str());
    }
  }
  std::vector<std::string> hosts;
  MOAT_TRY(GetStringList(j, "hosts", &hosts, "hosts"));
  if (!hosts.empty() && app.count("--host") == 0) o->host = hosts[0];
  if (app.count("--data-root") == 0) MOAT_TRY(GetString(j, "data-root", &o->data_root, "data-root"));
  if (app.count("--exec-root") == 0) MOAT_TRY(GetString(j, "exec-root", &o->exec_root, "exec-root"));
  if (app.count("--group") == 0) MOAT_TRY(GetString(j, "group", &o->group, "group"));
  if (app.count("--api-user") == 0) MOAT_TRY(GetString(j, "api-user", &o->api_user, "api-user"));
  if (app.count("--log-level") == 0) MOAT_TRY(GetString(j, "log-level", &o->log_level, "log-level"));
  if (app.count("--bridge") == 0) MOAT_TRY(GetString(j, "bridge", &o->bridge, "bridge"));
  if (app.count("--bip") == 0) MOAT_TRY(GetString(j, "bip", &o->bip, "bip"));
  MOAT_TRY(GetBool(j, "icc", &o->icc, "icc"));
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

Result<std::string> SocketPath(const std::string& host) {
  if (!StartsWith(host, "unix://")) {
    return Fail(ErrorKind::kUnsupported, "-H %s: only unix:// sockets are supported (TCP needs TLS client certificates, not built yet)", host.c_str());
  }
  std::string path = host.substr(7);
  if (path.empty() || path[0] != '/') return Fail(ErrorKind::kInvalidArgument, "-H %s: the socket path must be absolute", host.c_str());
  return path;
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

[[noreturn]] void RunFront(const front::SandboxPlan& plan, int listen_fd, UniqueFd channel, bool selftest,
                           const std::string& data_root) {
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
  api::Server server(so, front::MakeRouter(&core, front::FrontInfo{MOAT_VERSION}));
  auto r = server.Serve(listen_fd);
  if (!r) MOAT_LOG(kError, "api front: %s", r.error().message.c_str());
  _exit(r ? 0 : 1);
}

int Main(int argc, char** argv) {
  // One malloc arena per thread (glibc's default, up to 8 per core) keeps the memory of a burst
  // of request threads long after: two arenas hold the daemon near its idle size.
  mallopt(M_ARENA_MAX, 2);
  Options o;
  CLI::App app{"moatd: the Moat container engine's daemon (Docker Engine API on a UNIX socket)"};
  app.add_option("-H,--host", o.host, "Socket to listen on (unix:///path)");
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
  auto sock_path = SocketPath(o.host);
  if (!sock_path) return fail(sock_path.error());
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
    if (pid == 0) RunFront(*plan, -1, std::move(pair->second), true, o.data_root);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  }

  auto listener = Listen(*sock_path, o.group);
  if (!listener) return fail(listener.error());
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
    RunFront(*plan, listener->get(), std::move(pair->second), false, o.data_root);
  }
  pair->second.reset();
  listener->reset();  // the front owns the only copy in use

  image::StoreOptions so;
  so.extractor_path = FindTool(o.extractor, "moat-extract", MOAT_EXTRACT_BUILD_PATH);
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
  core::Engine engine({MOAT_VERSION, o.data_root, o.exec_root, daemon_id}, store->get(), &containers, &events,
                      &networks);
  malloc_trim(0);
  int channel = pair->first.get();
  std::thread([&engine, channel] {
    auto r = engine.Serve(channel);
    if (!r) MOAT_LOG(kError, "core: %s", r.error().message.c_str());
    // The front is gone: the daemon stops (containers keep running under their monitors).
    kill(getpid(), SIGTERM);
  }).detach();
  MOAT_LOG(kInfo, "moatd %s listening on %s (data root %s, front pid %d, uid %u)", MOAT_VERSION,
           sock_path->c_str(), o.data_root.c_str(), front_pid, plan->uid);
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
  ::unlink(sock_path->c_str());
  RemoveEmptyCgroupParent(paths.cgroup_parent);
  _exit(0);  // request threads may still be blocked on waits: they end with the process
}

}  // namespace
}  // namespace moat::daemon

int main(int argc, char** argv) { return moat::daemon::Main(argc, argv); }
