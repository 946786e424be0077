#include "support/command.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

namespace moat::testing {

namespace {

// Pids of Commands not yet waited for: ReapExitedChildren must leave their status to Wait().
std::set<pid_t>& PendingCommands() {
  static std::set<pid_t> pending;
  return pending;
}

[[noreturn]] void Die(const char* what) {
  fprintf(stderr, "test harness: %s: %s\n", what, strerror(errno));
  abort();
}

void SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) Die("fcntl O_NONBLOCK");
}

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// Reads what is available; closes the fd at EOF or on error.
void Drain(int* fd, std::string* sink) {
  char buf[16384];
  while (*fd >= 0) {
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n > 0) {
      sink->append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    CloseFd(fd);
  }
}

std::string Abbreviate(const std::string& s) {
  constexpr size_t kMax = 4000;
  if (s.size() <= kMax) return s;
  return s.substr(0, kMax) + "...[" + std::to_string(s.size() - kMax) + " more bytes]";
}

}  // namespace

std::string CommandResult::Describe() const {
  std::string head = timed_out ? "timed out" : "exit " + std::to_string(exit_code);
  return head + "\n--- stdout ---\n" + Abbreviate(out) + "\n--- stderr ---\n" + Abbreviate(err);
}

Command::Command(const std::vector<std::string>& argv, const CommandOptions& options)
    : stdin_data_(options.stdin_data),
      deadline_(std::chrono::steady_clock::now() + options.timeout) {
  int out[2], err[2], in[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) Die("pipe2");
  if (!stdin_data_.empty() && pipe2(in, O_CLOEXEC) != 0) Die("pipe2");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) Die("fork");
  if (pid_ == 0) {
    // Only async-signal-safe calls from here to execv.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGPIPE, SIG_DFL);
    int in_fd = in[0] >= 0 ? in[0] : open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (in_fd < 0 || dup2(in_fd, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) _exit(126);
    execv(args[0], args.data());
    _exit(127);
  }
  PendingCommands().insert(pid_);
  close(out[1]);
  close(err[1]);
  out_fd_ = out[0];
  err_fd_ = err[0];
  SetNonBlocking(out_fd_);
  SetNonBlocking(err_fd_);
  if (in[0] >= 0) {
    close(in[0]);
    in_fd_ = in[1];
    SetNonBlocking(in_fd_);
  }
  pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  if (pidfd_ < 0) Die("pidfd_open");
}

Command::~Command() {
  if (!done_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    PendingCommands().erase(pid_);
  }
  CloseFd(&out_fd_);
  CloseFd(&err_fd_);
  CloseFd(&in_fd_);
  CloseFd(&pidfd_);
}

void Command::Pump(int timeout_ms) {
  pollfd fds[4];
  int n = 0;
  fds[n++] = {pidfd_, POLLIN, 0};
  if (out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
  if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
  if (in_fd_ >= 0) fds[n++] = {in_fd_, POLLOUT, 0};
  int rc = poll(fds, static_cast<nfds_t>(n), timeout_ms);
  if (rc < 0 && errno != EINTR) Die("poll");
  Drain(&out_fd_, &result_.out);
  Drain(&err_fd_, &result_.err);
  if (in_fd_ >= 0) {
    while (stdin_written_ < stdin_data_.size()) {
      ssize_t w =
          write(in_fd_, stdin_data_.data() + stdin_written_, stdin_data_.size() - stdin_written_);
      if (w > 0) {
        stdin_written_ += static_cast<size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EAGAIN) break;
      stdin_written_ = stdin_data_.size();  // EPIPE: the program does not read its input
    }
    if (stdin_written_ == stdin_data_.size()) CloseFd(&in_fd_);
  }
}

CommandResult Command::Wait() {
  if (done_) return result_;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline_ - std::chrono::steady_clock::now())
                    .count();
    pollfd p{pidfd_, POLLIN, 0};
    if (poll(&p, 1, 0) == 1) break;  // exited
    if (left <= 0) {
      result_.timed_out = true;
      kill(pid_, SIGKILL);
      break;
    }
    Pump(static_cast<int>(std::min<long>(left, 200)));
  }
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0) {
    if (errno != EINTR) Die("waitpid");
  }
  PendingCommands().erase(pid_);
  done_ = true;
  // What the program wrote before exiting is in the pipes; a grandchild still holding them
  // must not keep us waiting, so read only what is there now.
  Drain(&out_fd_, &result_.out);
  Drain(&err_fd_, &result_.err);
  CloseFd(&out_fd_);
  CloseFd(&err_fd_);
  CloseFd(&in_fd_);
  if (result_.timed_out) {
    result_.exit_code = -1;
  } else if (WIFEXITED(status)) {
    result_.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result_.exit_code = 128 + WTERMSIG(status);
  }
  return result_;
}

CommandResult RunCommand(const std::vector<std::string>& argv, const CommandOptions& options) {
  Command c(argv, options);
  return c.Wait();
}

namespace {

struct Child {
  pid_t pid;
  char state;
};

// The children of this process from /proc/<pid>/stat, with their state letter.
std::vector<Child> ChildrenOfSelf() {
  std::vector<Child> out;
  DIR* proc = opendir("/proc");
  if (!proc) return out;
  pid_t self = getpid();
  while (dirent* e = readdir(proc)) {
    pid_t pid = static_cast<pid_t>(atoi(e->d_name));
    if (pid <= 0) continue;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE* f = fopen(path, "re");
    if (!f) continue;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    // pid (comm) state ppid ...: comm may hold spaces and parentheses.
    char* close_paren = strrchr(buf, ')');
    if (!close_paren) continue;
    char state = 0;
    int ppid = 0;
    if (sscanf(close_paren + 1, " %c %d", &state, &ppid) != 2) continue;
    if (ppid == self) out.push_back({pid, state});
  }
  closedir(proc);
  return out;
}

}  // namespace

int ReapExitedChildren() {
  int reaped = 0;
  for (const Child& c : ChildrenOfSelf()) {
    if (c.state != 'Z' || PendingCommands().count(c.pid)) continue;
    if (waitpid(c.pid, nullptr, WNOHANG) == c.pid) ++reaped;
  }
  return reaped;
}

std::vector<pid_t> LiveChildren() {
  std::vector<pid_t> out;
  for (const Child& c : ChildrenOfSelf())
    if (c.state != 'Z' && c.state != 'X') out.push_back(c.pid);
  return out;
}

}  // namespace moat::testing
