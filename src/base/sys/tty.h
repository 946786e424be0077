#pragma once

// Terminal queries and modes. Every fd remains owned by the caller.

#include <sys/ioctl.h>
#include <termios.h>

#include "base/result.h"

namespace moat::sys {

// isatty(3) without the errno: true when `fd` is a terminal.
bool IsTerminal(int fd);
Result<struct termios> tcgetattr(int fd);
Result<void> tcsetattr(int fd, int action, const struct termios& t);
// ioctl(TIOCGWINSZ).
Result<struct winsize> GetWindowSize(int fd);

}  // namespace moat::sys
