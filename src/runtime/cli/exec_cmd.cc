#include <cstdio>
#include <memory>

#include "base/sys/fs.h"
#include "oci/names.h"
#include "oci/spec_json.h"
#include "runtime/cli/commands.h"

namespace moat::runtime::cli {

namespace {

struct ExecFlags {
  std::string process_file;
  bool tty = false;
  std::string cwd;
  std::vector<std::string> env;
  std::string user;
  std::vector<uint32_t> additional_gids;
  std::vector<std::string> caps;
  bool detach = false;
  std::string pid_file;
  std::string console_socket;
  bool no_new_privs = false;
  std::string apparmor;
  std::string process_label;
  int preserve_fds = 0;
};

// Without --process the container's own process is the template, as in runc: its env, user,
// capabilities and rlimits, with the command line's changes on top.
Result<oci::Process> BuildProcess(const Context& ctx, const ExecFlags& f, const std::string& id,
                                  const std::vector<std::string>& args) {
  if (!f.process_file.empty()) {
    MOAT_ASSIGN_OR_RETURN(std::string text, sys::ReadFile(f.process_file));
    MOAT_ASSIGN_OR_RETURN(oci::Process p, oci::ParseProcess(text));
    // Without "capabilities" the container's apply, as in runc: never the runtime's own (all
    // of root's), which would make the exec'd process more privileged than the container.
    if (!p.capabilities) {
      MOAT_ASSIGN_OR_RETURN(oci::Spec spec, ctx.store().LoadConfig(id));
      if (spec.process) p.capabilities = spec.process->capabilities;
    }
    return p;
  }
  if (args.empty())
    return Fail(ErrorKind::kInvalidArgument, "exec: give a command or --process FILE");
  MOAT_ASSIGN_OR_RETURN(oci::Spec spec, ctx.store().LoadConfig(id));
  oci::Process p = spec.process.value_or(oci::Process{});
  p.args = args;
  p.terminal = f.tty;
  if (!f.cwd.empty()) p.cwd = f.cwd;
  for (const auto& e : f.env) p.env.push_back(e);
  if (!f.user.empty()) {
    auto parts = StrSplit(f.user, ':');
    auto uid = ParseUint64(parts[0]);
    if (!uid) return Fail(ErrorKind::kInvalidArgument, "--user: expected uid[:gid], got \"%s\"", f.user.c_str());
    p.user.uid = static_cast<uint32_t>(*uid);
    if (parts.size() > 1) {
      auto gid = ParseUint64(parts[1]);
      if (!gid) return Fail(ErrorKind::kInvalidArgument, "--user: bad gid in \"%s\"", f.user.c_str());
      p.user.gid = static_cast<uint32_t>(*gid);
    }
  }
  for (uint32_t g : f.additional_gids) p.user.additional_gids.push_back(g);
  if (!f.caps.empty()) {
    if (!p.capabilities) p.capabilities = oci::Capabilities{};
    for (const auto& c : f.caps) {
      for (auto* set : {&p.capabilities->bounding, &p.capabilities->effective,
                        &p.capabilities->permitted}) {
        set->push_back(c);
      }
    }
  }
  if (f.no_new_privs) p.no_new_privileges = true;
  if (!f.apparmor.empty()) p.apparmor_profile = f.apparmor;
  if (!f.process_label.empty()) p.selinux_label = f.process_label;
  return p;
}

}  // namespace

void AddExecCommand(CLI::App& app, const Globals& g, int* exit_code) {
  auto f = std::make_shared<ExecFlags>();
  CLI::App* exec = app.add_subcommand("exec", "run a process in a running container");
  exec->add_option("-p,--process", f->process_file, "process.json to run");
  exec->add_flag("-t,--tty", f->tty, "allocate a pseudo-TTY");
  exec->add_option("--cwd", f->cwd, "working directory in the container");
  // One value per occurrence (repeat the flag for more), as in runc: a vector option would
  // otherwise swallow the container id and the command that follow it.
  exec->add_option("-e,--env", f->env, "environment variable KEY=VALUE")
      ->allow_extra_args(false);
  exec->add_option("-u,--user", f->user, "uid[:gid]");
  exec->add_option("-g,--additional-gids", f->additional_gids)->allow_extra_args(false);
  exec->add_option("-c,--cap", f->caps, "add a capability")->allow_extra_args(false);
  exec->add_flag("-d,--detach", f->detach, "do not wait for the process");
  exec->add_option("--pid-file", f->pid_file);
  exec->add_option("--console-socket", f->console_socket);
  exec->add_flag("--no-new-privs", f->no_new_privs);
  exec->add_option("--apparmor", f->apparmor);
  exec->add_option("--process-label", f->process_label);
  exec->add_option("--preserve-fds", f->preserve_fds);
  // "exec [flags] ID [COMMAND ARGS...]": everything from the id on is positional.
  exec->prefix_command();
  exec->callback([&g, f, exit_code, exec] {
    std::vector<std::string> rest = exec->remaining();
    if (rest.empty()) {
      *exit_code = Report(MakeError(ErrorKind::kInvalidArgument, "exec: a container id is required"));
      return;
    }
    std::string id = rest[0];
    std::vector<std::string> args(rest.begin() + 1, rest.end());
    if (!args.empty() && args[0] == "--") args.erase(args.begin());
    Context ctx = g.context();
    auto p = BuildProcess(ctx, *f, id, args);
    if (!p) {
      *exit_code = Report(p.error());
      return;
    }
    ExecOptions eo{id, std::move(*p), f->pid_file, f->console_socket, f->detach, f->preserve_fds};
    auto code = Exec(ctx, eo);
    *exit_code = code ? *code : Report(code.error());
  });
}

}  // namespace moat::runtime::cli
