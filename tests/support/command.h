#pragma once

// Runs a program the way a shell user would: fork/exec with its stdout and stderr captured
// through pipes, bounded by a timeout that kills only that child. Test-only code: failures to
// set up (pipe, fork) abort the test binary, they are not outside input.

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace moat::testing {

struct CommandResult {
  // The exit status; 128 + N when the program was killed by signal N (the shell convention);
  // -1 when it timed out (it was then killed with SIGKILL and reaped).
  int exit_code = -1;
  bool timed_out = false;
  std::string out;
  std::string err;
  // "exit 1, stdout: ..., stderr: ..." for assertion messages.
  std::string Describe() const;
};

struct CommandOptions {
  std::chrono::milliseconds timeout{30000};
  // Written to the program's stdin, then stdin is closed. Empty: stdin is /dev/null.
  std::string stdin_data;
};

// A started program. The destructor kills (SIGKILL) and reaps it unless Wait() returned,
// whatever the test did. Only the started pid is ever signalled. Not copyable.
class Command {
 public:
  explicit Command(const std::vector<std::string>& argv, const CommandOptions& options = {});
  ~Command();
  Command(const Command&) = delete;
  Command& operator=(const Command&) = delete;

  pid_t pid() const { return pid_; }
  // Waits for the program to exit (reading its output meanwhile) until the timeout given at
  // construction, measured from the start. Output still buffered in the pipes when it exits is
  // read too; a grandchild that keeps the pipes open (a detached container) does not block.
  CommandResult Wait();

 private:
  void Pump(int timeout_ms);
  pid_t pid_ = -1;
  int pidfd_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  int in_fd_ = -1;
  std::string stdin_data_;
  size_t stdin_written_ = 0;
  std::chrono::steady_clock::time_point deadline_;
  CommandResult result_;
  bool done_ = false;
};

// Command(argv, options).Wait().
CommandResult RunCommand(const std::vector<std::string>& argv, const CommandOptions& options = {});

// Reaps every child that has already exited (our own children and the orphans this process
// inherited as a child subreaper). Returns how many were reaped.
int ReapExitedChildren();

// Pids of the live (not zombie) children of this process.
std::vector<pid_t> LiveChildren();

}  // namespace moat::testing
