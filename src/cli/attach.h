#pragma once

// Copying between the local terminal/stdio and a hijacked Engine API connection, as the
// docker CLI does for run, start -a, attach and exec.

#include <termios.h>

#include <functional>
#include <optional>
#include <string>

#include "base/result.h"
#include "cli/api_client.h"

namespace moat::cli {

// Puts a terminal into raw mode and restores the saved mode when destroyed (every return
// path of the command). Move-only. `fd` remains owned by the caller and must outlive this.
class RawTerminal {
 public:
  // kInvalidArgument when `fd` is not a terminal.
  static Result<RawTerminal> Enter(int fd);
  RawTerminal(RawTerminal&& o) noexcept : fd_(o.fd_), saved_(o.saved_) { o.fd_ = -1; }
  RawTerminal& operator=(RawTerminal&&) = delete;
  ~RawTerminal();

 private:
  RawTerminal(int fd, const struct termios& saved) : fd_(fd), saved_(saved) {}
  int fd_;
  struct termios saved_;
};

struct PumpOptions {
  bool tty = false;          // raw bytes (true) or stdcopy frames (false) from the daemon
  bool send_stdin = false;   // copy our stdin to the connection, half-close at EOF
  bool detach_keys = false;  // ctrl-p ctrl-q on stdin detaches (only with a tty)
  int stdout_fd = 1;
  int stderr_fd = 2;
  int stdin_fd = 0;
  // Called on SIGWINCH (tty) with nothing; the caller sends the resize request.
  std::function<void()> on_resize;
  // Called with a signal number for SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 received
  // while pumping (signal proxying, docker's --sig-proxy). Unset: signals act as usual.
  std::function<void(int)> on_signal;
};

enum class PumpEnd { kEof, kDetached };

// Runs until the daemon closes the connection (kEof) or the user detaches. Signals named in
// PumpOptions are blocked for the duration and restored after. `conn` is consumed.
// Errors: kInternal for I/O failures, kInvalidArgument for a corrupt stdcopy stream.
Result<PumpEnd> PumpStreams(Hijacked conn, const PumpOptions& options);

// The local terminal size as {height, width}, or nullopt when `fd` is not a terminal.
std::optional<std::pair<int, int>> TerminalSize(int fd);

}  // namespace moat::cli
