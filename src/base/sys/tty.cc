#include "base/sys/tty.h"

#include <unistd.h>

#include <cerrno>

namespace moat::sys {

bool IsTerminal(int fd) { return ::isatty(fd) == 1; }

Result<struct termios> tcgetattr(int fd) {
  struct termios t {};
  if (::tcgetattr(fd, &t) != 0) return FailErrno("tcgetattr fd %d", fd);
  return t;
}

Result<void> tcsetattr(int fd, int action, const struct termios& t) {
  int rc;
  do rc = ::tcsetattr(fd, action, &t);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) return FailErrno("tcsetattr fd %d", fd);
  return Ok();
}

Result<struct winsize> GetWindowSize(int fd) {
  struct winsize ws {};
  if (::ioctl(fd, TIOCGWINSZ, &ws) != 0) return FailErrno("ioctl TIOCGWINSZ fd %d", fd);
  return ws;
}

}  // namespace moat::sys
