#pragma once

// `moat-runtime monitor`: one long-lived process per container, like conmon or
// containerd-shim. It is the parent of the container's init (so it reaps it and records the
// exit code), owns the container's stdio, writes its json-file log, serves ctl.sock and
// attach.sock in `dir`, and outlives the daemon that started it.

#include <string>

#include "base/result.h"
#include "runtime/launcher.h"
#include "runtime/monitor/log_writer.h"

namespace moat::runtime::monitor {

struct MonitorOptions {
  std::string id;
  std::string bundle;
  std::string dir;  // exists; the monitor's sockets, monitor.pid and status.json go here
  LogOptions log;
  bool tty = false;         // stdio through a pty (process.terminal must be true)
  bool open_stdin = false;  // the container gets a stdin pipe (else /dev/null)
  bool stdin_once = false;  // close that stdin when the first attached writer half-closes
};

// Forks the monitor (new session, stdio on /dev/null, cwd /) and returns once it has created
// the container (its init waits for "start"), listens on its sockets and wrote monitor.pid.
// On failure the monitor has exited and left nothing: no runtime state, cgroup, process or
// socket; the error is the runtime's (for example kNotFound "exec: \"x\": executable file not
// found in $PATH"). The caller must be single-threaded.
Result<void> Launch(const Context& ctx, const MonitorOptions& options);

}  // namespace moat::runtime::monitor
