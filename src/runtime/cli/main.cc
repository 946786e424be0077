// moat-runtime: an OCI runtime with runc's command line.

#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "base/log.h"
#include "runtime/cli/commands.h"
#include "runtime/exe_seal.h"

namespace moat::runtime::cli {

int Report(const Error& error) {
  MOAT_LOG(kError, "%s", error.message.c_str());
  return 1;
}

namespace {

std::string DefaultRoot() {
  if (geteuid() == 0) return "/run/moat-runtime";
  const char* xdg = getenv("XDG_RUNTIME_DIR");
  if (xdg && *xdg) return std::string(xdg) + "/moat-runtime";
  return "/tmp/moat-runtime-" + std::to_string(geteuid());
}

// The subcommand of a runc-style command line: the first word that is neither a global option
// nor the value of one. Empty if there is none.
std::string_view SubcommandOf(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--root" || a == "--log" || a == "--log-format" || a == "--criu" ||
        a == "--rootless") {
      ++i;  // its value follows
      continue;
    }
    if (!a.empty() && a[0] == '-') continue;
    return a;
  }
  return {};
}

int Main(int argc, char** argv) {
  // Commands that put a process into a container (the monitor clones its container's init and
  // execs for as long as it lives) run from a read-only mount of this binary (exe_seal.h).
  // Checked here, before the command line is parsed, so that a re-execution costs the first
  // image as little as possible.
  if (std::string_view cmd = SubcommandOf(argc, argv);
      cmd == "create" || cmd == "run" || cmd == "exec" || cmd == "monitor") {
    if (auto s = EnsureReadOnlyExecutable(argv); !s) return Report(s.error());
  }
  Globals g;
  g.root = DefaultRoot();
  constexpr std::string_view kCommands[] = {
      "create", "start",  "run",    "state", "kill", "delete", "list",     "ls",     "pause",
      "resume", "ps",     "update", "events", "exec", "spec",  "features", "monitor"};
  if (std::string_view cmd = SubcommandOf(argc, argv);
      std::find(std::begin(kCommands), std::end(kCommands), cmd) != std::end(kCommands))
    g.only = cmd;
  CLI::App app{"moat-runtime: a secure-by-default OCI runtime with runc's command line",
               "moat-runtime"};
  app.require_subcommand(0, 1);
  app.set_version_flag("-v,--version",
                       "moat-runtime version " MOAT_VERSION "\nspec: 1.3.0\nlibseccomp: " MOAT_LIBSECCOMP_VERSION);
  app.add_option("--root", g.root, "directory for container state")->capture_default_str();
  app.add_option("--log", g.log_path, "log file (default stderr)");
  app.add_option("--log-format", g.log_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  app.add_flag("--debug", g.debug, "debug logging");
  app.add_flag("--systemd-cgroup", g.systemd_cgroup, "manage cgroups through systemd");
  // Accepted for runc compatibility; Moat has nothing to do for them.
  std::string criu;
  bool rootless_flag = false;
  app.add_option("--criu", criu)->group("");
  app.add_option("--rootless", rootless_flag)->group("");

  int exit_code = 0;
  AddLifecycleCommands(app, g, &exit_code);
  if (g.Wants("exec")) AddExecCommand(app, g, &exit_code);
  if (g.Wants("spec") || g.Wants("features")) AddInfoCommands(app, g, &exit_code);
  if (g.Wants("monitor")) AddMonitorCommand(app, g, &exit_code);
  app.parse_complete_callback([&] {
    log::Options lo;
    lo.path = g.log_path;
    lo.format = g.log_format == "json" ? log::Format::kJson : log::Format::kText;
    lo.min_level = g.debug ? log::Level::kDebug : log::Level::kWarning;
    lo.also_stderr_errors = true;
    log::Configure(lo);
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (app.get_subcommands().empty()) {
    fprintf(stderr, "%s", app.help().c_str());
    return 1;
  }
  return exit_code;
}

}  // namespace
}  // namespace moat::runtime::cli

int main(int argc, char** argv) {
  try {
    return moat::runtime::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    fprintf(stderr, "moat-runtime: internal error: %s\n", e.what());
    return 1;
  }
}
