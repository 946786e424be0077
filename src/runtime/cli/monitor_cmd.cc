// `moat-runtime monitor`: starts the per-container monitor that moatd talks to (see
// runtime/monitor/monitor.h), and returns once the container is created.

#include <memory>

#include "runtime/cli/commands.h"
#include "runtime/monitor/monitor.h"

namespace moat::runtime::cli {

void AddMonitorCommand(CLI::App& app, const Globals& g, int* exit_code) {
  auto o = std::make_shared<monitor::MonitorOptions>();
  CLI::App* c =
      app.add_subcommand("monitor", "create a container under a long-lived monitor (for moatd)");
  c->add_option("-b,--bundle", o->bundle, "path to the bundle")->required();
  c->add_option("--dir", o->dir, "directory for the monitor's sockets and status")->required();
  c->add_option("--log-path", o->log.path, "the container's json-file log")->required();
  c->add_option("--log-max-size", o->log.max_size, "rotate the log at this size (0: never)")
      ->capture_default_str();
  c->add_option("--log-max-files", o->log.max_files, "log files kept, the current one included")
      ->capture_default_str();
  c->add_flag("--tty", o->tty, "the container's stdio is a pty");
  c->add_flag("--stdin", o->open_stdin, "keep a stdin open for the container");
  c->add_flag("--stdin-once", o->stdin_once, "close stdin when the first attach closes it");
  c->add_option("id", o->id, "container id")->required();
  c->callback([&g, o, exit_code] {
    auto r = monitor::Launch(g.context(), *o);
    *exit_code = r ? 0 : Report(r.error());
  });
}

}  // namespace moat::runtime::cli
