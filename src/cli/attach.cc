#include "cli/attach.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include "base/sys/fs.h"
#include "base/sys/fdio.h"
#include "base/sys/socket_io.h"
#include "base/sys/tty.h"
#include "cli/stdcopy.h"

namespace moat::cli {
namespace {

constexpr char kCtrlP = 0x10;
constexpr char kCtrlQ = 0x11;

}  // namespace

Result<RawTerminal> RawTerminal::Enter(int fd) {
  if (!sys::IsTerminal(fd))
    return Fail(ErrorKind::kInvalidArgument, "fd %d is not a terminal", fd);
  MOAT_ASSIGN_OR_RETURN(struct termios saved, sys::tcgetattr(fd));
  struct termios raw = saved;
  cfmakeraw(&raw);
  // Keep output post-processing off too: the container's pty already turned \n into \r\n.
  MOAT_TRY(sys::tcsetattr(fd, TCSANOW, raw));
  return RawTerminal(fd, saved);
}

RawTerminal::~RawTerminal() {
  if (fd_ >= 0) {
    // Nothing useful to do if the terminal went away meanwhile.
    (void)sys::tcsetattr(fd_, TCSANOW, saved_);
  }
}

std::optional<std::pair<int, int>> TerminalSize(int fd) {
  if (!sys::IsTerminal(fd)) return std::nullopt;
  auto ws = sys::GetWindowSize(fd);
  if (!ws.has_value() || ws->ws_row == 0 || ws->ws_col == 0) return std::nullopt;
  return std::make_pair(static_cast<int>(ws->ws_row), static_cast<int>(ws->ws_col));
}

Result<PumpEnd> PumpStreams(Hijacked conn, const PumpOptions& o) {
  // Signals go through a signalfd in the poll loop, so handlers never run in the middle of
  // a write and the proxying needs no async-signal-safe code.
  sigset_t mask;
  sigemptyset(&mask);
  if (o.tty && o.on_resize) sigaddset(&mask, SIGWINCH);
  if (o.on_signal)
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) sigaddset(&mask, s);
  sigset_t old_mask;
  MOAT_TRY(sys::sigprocmask(SIG_BLOCK, mask, &old_mask));
  struct RestoreMask {
    sigset_t m;
    ~RestoreMask() { (void)sys::sigprocmask(SIG_SETMASK, m, nullptr); }
  } restore{old_mask};
  MOAT_ASSIGN_OR_RETURN(UniqueFd sfd, sys::signalfd(mask));

  StdcopyDemuxer demux([&](StdStream s, std::string_view d) -> Result<void> {
    int fd = s == StdStream::kStdout ? o.stdout_fd : o.stderr_fd;
    return sys::WriteAll(fd, d);
  });
  auto output = [&](std::string_view d) -> Result<void> {
    if (d.empty()) return Ok();
    if (o.tty) return sys::WriteAll(o.stdout_fd, d);
    return demux.Feed(d);
  };
  MOAT_TRY(output(conn.pending));

  bool stdin_open = o.send_stdin;
  bool held_ctrl_p = false;
  std::vector<char> buf(32 * 1024);
  for (;;) {
    struct pollfd fds[3] = {{conn.fd.get(), POLLIN, 0},
                            {sfd.get(), POLLIN, 0},
                            {stdin_open ? o.stdin_fd : -1, POLLIN, 0}};
    MOAT_ASSIGN_OR_RETURN(int ready, sys::poll(fds, 3, -1));
    if (ready == 0) continue;
    if (fds[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      auto n = sys::read(sfd.get(), &si, sizeof si);
      if (n.has_value() && *n == sizeof si) {
        if (si.ssi_signo == SIGWINCH) {
          if (o.on_resize) o.on_resize();
        } else if (o.on_signal) {
          o.on_signal(static_cast<int>(si.ssi_signo));
        }
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      MOAT_ASSIGN_OR_RETURN(size_t n, sys::read(conn.fd.get(), buf.data(), buf.size()));
      if (n == 0) return PumpEnd::kEof;
      MOAT_TRY(output(std::string_view(buf.data(), n)));
    }
    if (stdin_open && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      auto r = sys::read(o.stdin_fd, buf.data(), buf.size());
      size_t n = r.has_value() ? *r : 0;
      if (n == 0) {
        // EOF on our stdin: half-close, so the daemon closes the container's stdin but keeps
        // sending output.
        stdin_open = false;
        if (held_ctrl_p) MOAT_TRY(sys::WriteAll(conn.fd.get(), std::string(1, kCtrlP)));
        (void)sys::shutdown(conn.fd.get(), SHUT_WR);
        continue;
      }
      std::string data(buf.data(), n);
      if (o.detach_keys) {
        std::string out;
        for (char c : data) {
          if (held_ctrl_p) {
            held_ctrl_p = false;
            if (c == kCtrlQ) {
              MOAT_TRY(sys::WriteAll(conn.fd.get(), out));
              return PumpEnd::kDetached;
            }
            out += kCtrlP;
          }
          if (c == kCtrlP) held_ctrl_p = true;
          else out += c;
        }
        data = std::move(out);
      }
      // A container that exited closes our write side: its output is still read above.
      if (!data.empty() && !sys::WriteAll(conn.fd.get(), data).has_value()) stdin_open = false;
    }
  }
}

}  // namespace moat::cli
