// run, create, start, attach, exec, wait: the commands that create processes and stream
// their I/O, following the docker CLI's request sequences (DOCKER-API-NOTES.md section 6).

#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "base/strings.h"
#include "base/sys/tty.h"
#include "cli/attach.h"
#include "cli/commands.h"
#include "cli/run_opts.h"

namespace moat::cli {
namespace {

struct RunCmd {
  RunFlags flags;
  CLI::Option* entrypoint_opt = nullptr;
  CLI::Option* stop_timeout_opt = nullptr;
  CLI::Option* pids_limit_opt = nullptr;
  std::string entrypoint;
  int64_t stop_timeout = 0;
  int64_t pids_limit = 0;
  bool sig_proxy = true;
  std::string detach_keys;
};

// One value per flag occurrence, repeatable (docker's StringSlice flags).
template <typename T>
CLI::Option* Multi(CLI::App* cmd, const char* name, T& target, const char* help) {
  return cmd->add_option(name, target, help)->allow_extra_args(false);
}

void AddRunFlags(CLI::App* cmd, RunCmd* r, bool is_run) {
  RunFlags& f = r->flags;
  // docker uses -h for --hostname.
  cmd->set_help_flag("--help", "print usage");
  cmd->prefix_command();
  if (is_run) {
    cmd->add_flag("-d,--detach", f.detach, "run container in background and print container ID");
    cmd->add_flag("--rm", f.rm, "automatically remove the container when it exits");
    cmd->add_option("--sig-proxy", r->sig_proxy, "proxy received signals to the process");
    cmd->add_option("--detach-keys", r->detach_keys, "override the key sequence for detaching");
  } else {
    cmd->add_flag("--rm", f.rm, "automatically remove the container when it exits");
  }
  Multi(cmd, "-e,--env", f.env, "set environment variables");
  Multi(cmd, "--env-file", f.env_files, "read in a file of environment variables");
  cmd->add_option("-w,--workdir", f.workdir, "working directory inside the container");
  cmd->add_option("-u,--user", f.user, "username or UID (format: <name|uid>[:<group|gid>])");
  r->entrypoint_opt = cmd->add_option("--entrypoint", r->entrypoint,
                                      "overwrite the default ENTRYPOINT of the image");
  cmd->add_option("--name", f.name, "assign a name to the container");
  cmd->add_option("-h,--hostname", f.hostname, "container host name");
  cmd->add_flag("-i,--interactive", f.interactive, "keep STDIN open even if not attached");
  cmd->add_flag("-t,--tty", f.tty, "allocate a pseudo-TTY");
  cmd->add_flag("--init", f.init, "run an init inside the container that forwards signals and reaps processes");
  cmd->add_option("--restart", f.restart, "restart policy: no, always, unless-stopped, on-failure[:N]");
  Multi(cmd, "-l,--label", f.labels, "set meta data on a container");
  cmd->add_option("--stop-signal", f.stop_signal, "signal to stop the container");
  r->stop_timeout_opt = cmd->add_option("--stop-timeout", r->stop_timeout, "timeout (in seconds) to stop a container");
  Multi(cmd, "-a,--attach", f.attach, "attach to STDIN, STDOUT or STDERR");
  cmd->add_option("--pull", f.pull, "pull image before running: always, missing, never")
      ->check(CLI::IsMember({"always", "missing", "never"}));
  cmd->add_option("--platform", f.platform, "set platform if server is multi-platform capable");
  Multi(cmd, "-v,--volume", f.volumes, "bind mount a volume");
  Multi(cmd, "--mount", f.mounts, "attach a filesystem mount to the container");
  Multi(cmd, "--tmpfs", f.tmpfs, "mount a tmpfs directory");
  cmd->add_flag("--read-only", f.read_only, "mount the container's root filesystem as read only");
  Multi(cmd, "--cap-add", f.cap_add, "add Linux capabilities");
  Multi(cmd, "--cap-drop", f.cap_drop, "drop Linux capabilities");
  cmd->add_flag("--privileged", f.privileged, "give extended privileges to this container");
  Multi(cmd, "--security-opt", f.security_opt, "security options");
  Multi(cmd, "--group-add", f.group_add, "add additional groups to join");
  cmd->add_option("-m,--memory", f.memory, "memory limit");
  cmd->add_option("--memory-swap", f.memory_swap, "swap limit equal to memory plus swap: -1 for unlimited");
  cmd->add_option("--memory-reservation", f.memory_reservation, "memory soft limit");
  cmd->add_option("--cpus", f.cpus, "number of CPUs");
  cmd->add_option("-c,--cpu-shares", f.cpu_shares, "CPU shares (relative weight)");
  cmd->add_option("--cpuset-cpus", f.cpuset_cpus, "CPUs in which to allow execution (0-3, 0,1)");
  cmd->add_option("--cpuset-mems", f.cpuset_mems, "MEMs in which to allow execution (0-3, 0,1)");
  r->pids_limit_opt = cmd->add_option("--pids-limit", r->pids_limit, "tune container pids limit (-1 for unlimited)");
  Multi(cmd, "--ulimit", f.ulimits, "ulimit options");
  Multi(cmd, "--sysctl", f.sysctls, "sysctl options");
  Multi(cmd, "--device", f.devices, "add a host device to the container");
  cmd->add_option("--shm-size", f.shm_size, "size of /dev/shm");
  cmd->add_flag("--oom-kill-disable", f.oom_kill_disable, "disable OOM Killer");
  cmd->add_option("--network,--net", f.network,
                  "connect a container to a network (none, host, bridge, NAME)");
  Multi(cmd, "--network-alias,--net-alias", f.network_aliases,
        "add network-scoped alias for the container");
  cmd->add_option("--ip", f.ip, "IPv4 address (e.g., 172.30.100.104)");
  cmd->add_option("--ip6", f.ip6, "IPv6 address (e.g., 2001:db8::33)");
  Multi(cmd, "--link-local-ip", f.link_local_ips, "container IPv4/IPv6 link-local addresses");
  cmd->add_option("--mac-address", f.mac_address,
                  "container MAC address (e.g., 92:d0:c6:0a:29:33)");
  Multi(cmd, "--link", f.links, "add link to another container");
  Multi(cmd, "-p,--publish", f.publish, "publish a container's port(s) to the host");
  cmd->add_flag("-P,--publish-all", f.publish_all, "publish all exposed ports to random ports");
  Multi(cmd, "--expose", f.expose, "expose a port or a range of ports");
  Multi(cmd, "--dns", f.dns, "set custom DNS servers");
  Multi(cmd, "--dns-search", f.dns_search, "set custom DNS search domains");
  Multi(cmd, "--dns-option,--dns-opt", f.dns_options, "set DNS options");
  Multi(cmd, "--add-host", f.add_hosts, "add a custom host-to-IP mapping (host:ip)");
  cmd->add_option("--ipc", f.ipc, "IPC mode to use");
  cmd->add_option("--pid", f.pid, "PID namespace to use");
  cmd->add_option("--uts", f.uts, "UTS namespace to use");
  cmd->add_option("--userns", f.userns, "user namespace to use");
  cmd->add_option("--cgroupns", f.cgroupns, "cgroup namespace to use (host|private)");
  cmd->add_option("--log-driver", f.log_driver, "logging driver for the container");
  Multi(cmd, "--log-opt", f.log_opts, "log driver options");
}

void FinishFlags(RunCmd* r) {
  if (r->entrypoint_opt->count() > 0) r->flags.entrypoint = r->entrypoint;
  if (r->stop_timeout_opt->count() > 0) r->flags.stop_timeout = r->stop_timeout;
  if (r->pids_limit_opt->count() > 0) r->flags.pids_limit = r->pids_limit;
}

// Pulls `image` for run/create: progress on stderr (stdout is the container's).
Result<void> Pull(ApiClient* c, const std::string& image, const std::string& platform) {
  return PullImage(c, image, platform, false, stderr);
}

// POST /containers/create, pulling the image first when the daemon does not have it.
// Returns the container id; errors are reported by the caller with status 125.
Result<std::string> CreateContainer(ApiClient* c, const RunFlags& f, const std::string& image,
                                    const Json& body) {
  std::string path = "/containers/create" + Query({{"name", f.name}, {"platform", f.platform}});
  std::string text = Dump(body);
  if (f.pull == "always") MOAT_TRY(Pull(c, image, f.platform));
  MOAT_ASSIGN_OR_RETURN(Response r, c->Call("POST", path, text));
  if (r.status == 404 && f.pull != "never" && r.body.find("image") != std::string::npos) {
    fprintf(stderr, "Unable to find image '%s' locally\n", image.c_str());
    MOAT_TRY(Pull(c, image, f.platform));
    MOAT_ASSIGN_OR_RETURN(r, c->Call("POST", path, text));
  }
  if (r.status != 201 && r.status != 200) return Fail(DaemonError(r.status, r.body));
  MOAT_ASSIGN_OR_RETURN(Json j, ParseJson(r.body));
  for (const auto& w : GetStrings(j, "Warnings")) fprintf(stderr, "WARNING: %s\n", w.c_str());
  std::string id = GetString(j, "Id");
  if (id.empty()) return Fail(ErrorKind::kInternal, "daemon returned no container id");
  return id;
}

void Resize(ApiClient* c, const std::string& prefix) {
  auto size = TerminalSize(1);
  if (!size) size = TerminalSize(0);
  if (!size) return;
  // Best effort, as the docker CLI: a process that already exited cannot be resized.
  (void)c->Call("POST", prefix + "/resize" + Query({{"h", std::to_string(size->first)},
                                                    {"w", std::to_string(size->second)}}));
}

struct StreamPlan {
  bool tty = false;
  bool in = false, out = true, err = true;
  bool sig_proxy = true;
};

// Hijacks `attach_path`, runs `start` (may be empty), then copies streams until the daemon
// closes the connection or the user detaches. Raw mode while a local tty is attached.
Result<PumpEnd> AttachAndPump(ApiClient* c, const std::string& attach_path,
                              std::string_view attach_body, const StreamPlan& plan,
                              const std::string& resize_prefix,
                              const std::function<Result<void>()>& start,
                              const std::string& kill_prefix) {
  MOAT_ASSIGN_OR_RETURN(Hijacked conn, c->Hijack(attach_path, attach_body));
  std::optional<RawTerminal> raw;
  if (plan.tty && plan.in && sys::IsTerminal(0)) {
    MOAT_ASSIGN_OR_RETURN(RawTerminal t, RawTerminal::Enter(0));
    raw.emplace(std::move(t));
  }
  if (start) MOAT_TRY(start());
  if (plan.tty) Resize(c, resize_prefix);
  PumpOptions o;
  o.tty = plan.tty;
  o.send_stdin = plan.in;
  o.detach_keys = plan.tty && plan.in;
  if (plan.tty) o.on_resize = [&] { Resize(c, resize_prefix); };
  if (!plan.tty && plan.sig_proxy && !kill_prefix.empty())
    o.on_signal = [&](int sig) {
      (void)c->Call("POST", kill_prefix + "/kill?signal=" + std::to_string(sig));
    };
  return PumpStreams(std::move(conn), o);
}

int WaitStatus(std::unique_ptr<PendingResponse>& wait) {
  if (wait->status() < 200 || wait->status() >= 300) {
    auto body = wait->ReadBody();
    return ReportError(DaemonError(wait->status(), body.has_value() ? *body : ""), 125);
  }
  auto body = wait->ReadBody();
  if (!body.has_value()) return ReportError(body.error(), 125);
  auto j = ParseJson(*body);
  if (!j.has_value()) return ReportError(j.error(), 125);
  if (const Json* e = Member(*j, "Error"); e && e->is_object() && !GetString(*e, "Message").empty())
    fprintf(stderr, "%s\n", GetString(*e, "Message").c_str());
  return static_cast<int>(GetInt(*j, "StatusCode", 125));
}

int Run(Context& ctx, RunCmd* r, const std::vector<std::string>& rest, bool create_only) {
  FinishFlags(r);
  RunFlags& f = r->flags;
  if (rest.empty())
    return ReportError(MakeError(ErrorKind::kInvalidArgument,
                                 "\"moat %s\" requires at least 1 argument: an IMAGE\n"
                                 "Usage:  moat %s [OPTIONS] IMAGE [COMMAND] [ARG...]",
                                 create_only ? "create" : "run", create_only ? "create" : "run"),
                       125);
  std::string image = rest[0];
  std::vector<std::string> args(rest.begin() + 1, rest.end());
  if (!create_only && !f.detach && f.tty && f.interactive && !sys::IsTerminal(0))
    return ReportError(MakeError(ErrorKind::kInvalidArgument,
                                 "the input device is not a TTY: drop -t, or run from a terminal"),
                       1);
  auto console = f.tty ? TerminalSize(1) : std::nullopt;
  if (create_only) f.detach = false;
  auto body = BuildCreateBody(f, image, args, console);
  if (!body.has_value()) return ReportError(body.error(), 125);
  auto client = ctx.Client();
  if (!client.has_value()) return ReportError(client.error(), 125);
  ApiClient* c = *client;
  auto id = CreateContainer(c, f, image, *body);
  if (!id.has_value()) return ReportError(id.error(), 125);
  if (create_only) {
    printf("%s\n", id->c_str());
    return 0;
  }
  std::string prefix = "/containers/" + *id;
  auto start = [&]() -> Result<void> { return c->CallOk("POST", prefix + "/start"); };
  if (f.detach) {
    auto s = start();
    if (!s.has_value()) {
      if (f.rm) (void)c->Call("DELETE", prefix + "?force=1");
      return ReportError(s.error(), StartErrorExitCode(s.error().message));
    }
    printf("%s\n", id->c_str());
    return 0;
  }
  // The wait goes first so that a quick exit (and --rm removal) is not missed.
  auto wait = c->Begin("POST", prefix + "/wait?condition=" + std::string(f.rm ? "removed" : "next-exit"));
  if (!wait.has_value()) return ReportError(wait.error(), 125);
  StreamPlan plan;
  plan.tty = f.tty;
  plan.in = GetBool(*body, "AttachStdin");
  plan.out = GetBool(*body, "AttachStdout");
  plan.err = GetBool(*body, "AttachStderr");
  plan.sig_proxy = r->sig_proxy;
  std::string q = Query({{"stream", "1"},
                         {"stdin", plan.in ? "1" : ""},
                         {"stdout", plan.out ? "1" : ""},
                         {"stderr", plan.err ? "1" : ""}});
  bool start_failed = false;
  Error start_error;
  auto pumped = AttachAndPump(
      c, prefix + "/attach" + q, {}, plan, prefix,
      [&]() -> Result<void> {
        auto s = start();
        if (!s.has_value()) {
          start_failed = true;
          start_error = s.error();
        }
        return s;
      },
      prefix);
  if (start_failed) {
    // A container that never started is not auto-removed by the daemon; --rm promised it.
    if (f.rm) (void)c->Call("DELETE", prefix + "?force=1");
    return ReportError(start_error, StartErrorExitCode(start_error.message));
  }
  if (!pumped.has_value()) return ReportError(pumped.error(), 125);
  if (*pumped == PumpEnd::kDetached) {
    fprintf(stderr, "\r\nread escape sequence\r\n");
    return 0;
  }
  return WaitStatus(*wait);
}

Result<Json> Inspect(ApiClient* c, const std::string& id) {
  return c->CallJson("GET", "/containers/" + id + "/json");
}

int Start(Context& ctx, const std::vector<std::string>& ids, bool attach, bool interactive) {
  auto client = ctx.Client();
  if (!client.has_value()) return ReportError(client.error());
  ApiClient* c = *client;
  if (!attach && !interactive) {
    int status = 0;
    for (const auto& id : ids) {
      auto r = c->Call("POST", "/containers/" + id + "/start");
      if (!r.has_value()) return ReportError(r.error());
      if (r->status >= 300 && r->status != 304) {
        status = ReportError(DaemonError(r->status, r->body));
        continue;
      }
      printf("%s\n", id.c_str());
    }
    if (status != 0) fprintf(stderr, "Error: failed to start containers: %s\n", StrJoin(ids, ", ").c_str());
    return status;
  }
  if (ids.size() != 1)
    return ReportError(MakeError(ErrorKind::kInvalidArgument,
                                 "you cannot start and attach multiple containers at once"));
  auto info = Inspect(c, ids[0]);
  if (!info.has_value()) return ReportError(info.error());
  const Json* config = Member(*info, "Config");
  StreamPlan plan;
  plan.tty = config && GetBool(*config, "Tty");
  plan.in = interactive && config && GetBool(*config, "OpenStdin");
  std::string prefix = "/containers/" + GetString(*info, "Id");
  auto wait = c->Begin("POST", prefix + "/wait?condition=next-exit");
  if (!wait.has_value()) return ReportError(wait.error());
  std::string q = Query({{"stream", "1"}, {"stdin", plan.in ? "1" : ""}, {"stdout", "1"}, {"stderr", "1"}});
  auto pumped = AttachAndPump(
      c, prefix + "/attach" + q, {}, plan, prefix,
      [&]() -> Result<void> {
        auto r = c->Call("POST", prefix + "/start");
        if (!r.has_value()) return Fail(r.error());
        if (r->status >= 300 && r->status != 304) return Fail(DaemonError(r->status, r->body));
        return Ok();
      },
      prefix);
  if (!pumped.has_value()) return ReportError(pumped.error());
  if (*pumped == PumpEnd::kDetached) return 0;
  return WaitStatus(*wait);
}

int Attach(Context& ctx, const std::string& id, bool no_stdin, bool sig_proxy) {
  auto client = ctx.Client();
  if (!client.has_value()) return ReportError(client.error());
  ApiClient* c = *client;
  auto info = Inspect(c, id);
  if (!info.has_value()) return ReportError(info.error());
  const Json* state = Member(*info, "State");
  if (!state || !GetBool(*state, "Running"))
    return ReportError(MakeError(ErrorKind::kConflict,
                                 "You cannot attach to a stopped container, start it first"));
  if (GetBool(*state, "Paused"))
    return ReportError(MakeError(ErrorKind::kConflict,
                                 "You cannot attach to a paused container, unpause it first"));
  const Json* config = Member(*info, "Config");
  StreamPlan plan;
  plan.tty = config && GetBool(*config, "Tty");
  plan.in = !no_stdin && config && GetBool(*config, "OpenStdin");
  plan.sig_proxy = sig_proxy;
  std::string prefix = "/containers/" + GetString(*info, "Id");
  auto wait = c->Begin("POST", prefix + "/wait?condition=next-exit");
  if (!wait.has_value()) return ReportError(wait.error());
  std::string q = Query({{"stream", "1"}, {"stdin", plan.in ? "1" : ""}, {"stdout", "1"}, {"stderr", "1"}});
  auto pumped = AttachAndPump(c, prefix + "/attach" + q, {}, plan, prefix, nullptr, prefix);
  if (!pumped.has_value()) return ReportError(pumped.error());
  if (*pumped == PumpEnd::kDetached) return 0;
  return WaitStatus(*wait);
}

struct ExecOpts {
  bool interactive = false, tty = false, detach = false, privileged = false;
  std::vector<std::string> env, env_files;
  std::string workdir, user, detach_keys;
};

int Exec(Context& ctx, const ExecOpts& o, const std::vector<std::string>& rest) {
  if (rest.size() < 2)
    return ReportError(MakeError(ErrorKind::kInvalidArgument,
                                 "\"moat exec\" requires at least 2 arguments\n"
                                 "Usage:  moat exec [OPTIONS] CONTAINER COMMAND [ARG...]"),
                       1);
  if (o.tty && o.interactive && !o.detach && !sys::IsTerminal(0))
    return ReportError(MakeError(ErrorKind::kInvalidArgument,
                                 "the input device is not a TTY: drop -t, or run from a terminal"));
  auto client = ctx.Client();
  if (!client.has_value()) return ReportError(client.error());
  ApiClient* c = *client;
  auto info = Inspect(c, rest[0]);
  if (!info.has_value()) return ReportError(info.error());
  Json body;
  body["User"] = o.user;
  body["Privileged"] = o.privileged;
  body["Tty"] = o.tty;
  body["AttachStdin"] = o.interactive && !o.detach;
  body["AttachStderr"] = !o.detach;
  body["AttachStdout"] = !o.detach;
  body["Detach"] = o.detach;
  body["DetachKeys"] = o.detach_keys;
  Json env = Json::array();
  for (const auto& e : o.env) {
    if (e.find('=') != std::string::npos) env.push_back(e);
    else if (const char* v = getenv(e.c_str())) env.push_back(e + "=" + v);
  }
  body["Env"] = env.empty() ? Json() : env;
  body["WorkingDir"] = o.workdir;
  body["Cmd"] = std::vector<std::string>(rest.begin() + 1, rest.end());
  if (o.tty)
    if (auto size = TerminalSize(1)) body["ConsoleSize"] = {size->first, size->second};
  auto created = c->CallJson("POST", "/containers/" + rest[0] + "/exec", &body);
  if (!created.has_value()) return ReportError(created.error());
  std::string eid = GetString(*created, "Id");
  std::string eprefix = "/exec/" + eid;
  Json start;
  start["Detach"] = o.detach;
  start["Tty"] = o.tty;
  if (o.detach) {
    auto s = c->CallOk("POST", eprefix + "/start", &start);
    return s.has_value() ? 0 : ReportError(s.error());
  }
  StreamPlan plan;
  plan.tty = o.tty;
  plan.in = o.interactive;
  plan.sig_proxy = false;
  auto pumped = AttachAndPump(c, eprefix + "/start", Dump(start), plan, eprefix, nullptr, "");
  if (!pumped.has_value()) {
    // A start error comes back as the hijack's answer: report it with the run-style status.
    return ReportError(pumped.error(), StartErrorExitCode(pumped.error().message) == 125
                                           ? 1
                                           : StartErrorExitCode(pumped.error().message));
  }
  if (*pumped == PumpEnd::kDetached) return 0;
  auto ej = c->CallJson("GET", eprefix + "/json");
  if (!ej.has_value()) return ReportError(ej.error());
  return static_cast<int>(GetInt(*ej, "ExitCode", 126));
}

int Wait(Context& ctx, const std::vector<std::string>& ids) {
  auto client = ctx.Client();
  if (!client.has_value()) return ReportError(client.error());
  int status = 0;
  for (const auto& id : ids) {
    auto r = (*client)->CallJson("POST", "/containers/" + id + "/wait");
    if (!r.has_value()) {
      status = ReportError(r.error());
      continue;
    }
    printf("%lld\n", static_cast<long long>(GetInt(*r, "StatusCode")));
    fflush(stdout);
  }
  return status;
}

void AddRunLike(CLI::App* parent, const char* name, const char* help, bool create_only,
                Context& ctx, int* exit_code) {
  auto* cmd = parent->add_subcommand(name, help);
  auto r = std::make_shared<RunCmd>();
  AddRunFlags(cmd, r.get(), !create_only);
  cmd->callback([&ctx, exit_code, r, cmd, create_only] {
    *exit_code = Run(ctx, r.get(), cmd->remaining(), create_only);
  });
}

void AddExecCmd(CLI::App* parent, Context& ctx, int* exit_code) {
  auto* cmd = parent->add_subcommand("exec", "Execute a command in a running container");
  cmd->prefix_command();
  auto o = std::make_shared<ExecOpts>();
  cmd->add_flag("-i,--interactive", o->interactive, "keep STDIN open even if not attached");
  cmd->add_flag("-t,--tty", o->tty, "allocate a pseudo-TTY");
  cmd->add_flag("-d,--detach", o->detach, "detached mode: run command in the background");
  cmd->add_flag("--privileged", o->privileged, "give extended privileges to the command");
  Multi(cmd, "-e,--env", o->env, "set environment variables");
  cmd->add_option("-w,--workdir", o->workdir, "working directory inside the container");
  cmd->add_option("-u,--user", o->user, "username or UID (format: <name|uid>[:<group|gid>])");
  cmd->add_option("--detach-keys", o->detach_keys, "override the key sequence for detaching");
  cmd->callback([&ctx, exit_code, o, cmd] { *exit_code = Exec(ctx, *o, cmd->remaining()); });
}

}  // namespace

void AddRunCommands(CLI::App& app, Context& ctx, int* exit_code) {
  AddRunLike(&app, "run", "Create and run a new container from an image", false, ctx, exit_code);
  AddRunLike(&app, "create", "Create a new container", true, ctx, exit_code);
  AddExecCmd(&app, ctx, exit_code);
  auto* container = app.add_subcommand("container", "Manage containers");
  container->require_subcommand(1);
  AddRunLike(container, "run", "Create and run a new container from an image", false, ctx, exit_code);
  AddRunLike(container, "create", "Create a new container", true, ctx, exit_code);
  AddExecCmd(container, ctx, exit_code);
  for (CLI::App* parent : {&app, container}) {
    {
      auto* cmd = parent->add_subcommand("start", "Start one or more stopped containers");
      struct Opts {
        bool attach = false, interactive = false;
        std::vector<std::string> ids;
      };
      auto o = std::make_shared<Opts>();
      cmd->add_flag("-a,--attach", o->attach, "attach STDOUT/STDERR and forward signals");
      cmd->add_flag("-i,--interactive", o->interactive, "attach container's STDIN");
      cmd->add_option("container", o->ids, "CONTAINER [CONTAINER...]")->required();
      cmd->callback([&ctx, exit_code, o] {
        *exit_code = Start(ctx, o->ids, o->attach, o->interactive);
      });
    }
    {
      auto* cmd = parent->add_subcommand("attach", "Attach local standard input, output, and error streams to a running container");
      struct Opts {
        bool no_stdin = false, sig_proxy = true;
        std::string id, detach_keys;
      };
      auto o = std::make_shared<Opts>();
      cmd->add_flag("--no-stdin", o->no_stdin, "do not attach STDIN");
      cmd->add_option("--sig-proxy", o->sig_proxy, "proxy all received signals to the process");
      cmd->add_option("--detach-keys", o->detach_keys, "override the key sequence for detaching");
      cmd->add_option("container", o->id, "CONTAINER")->required();
      cmd->callback([&ctx, exit_code, o] {
        *exit_code = Attach(ctx, o->id, o->no_stdin, o->sig_proxy);
      });
    }
    {
      auto* cmd = parent->add_subcommand("wait", "Block until one or more containers stop, then print their exit codes");
      auto ids = std::make_shared<std::vector<std::string>>();
      cmd->add_option("container", *ids, "CONTAINER [CONTAINER...]")->required();
      cmd->callback([&ctx, exit_code, ids] { *exit_code = Wait(ctx, *ids); });
    }
  }
}

}  // namespace moat::cli
