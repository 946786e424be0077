#pragma once

// One function per runc subcommand; each returns the process exit code and logs its own
// error (the one place it is handled).

#include <CLI/CLI.hpp>

#include "runtime/launcher.h"

namespace moat::runtime::cli {

struct Globals {
  std::string root;
  std::string log_path;
  std::string log_format = "text";
  bool debug = false;
  bool systemd_cgroup = false;
  // The subcommand this command line names, when it is one of ours: only it is built (CLI11
  // builds every option of every subcommand it is given, ~0.13 ms of a start here). Empty:
  // all (no subcommand, an unknown one: help and errors list them all).
  std::string only;
  Context context() const { return Context{root, systemd_cgroup}; }
  bool Wants(std::string_view name) const { return only.empty() || only == name; }
};

// Registers each subcommand on `app`; the callback stores the exit code in *exit_code.
void AddLifecycleCommands(CLI::App& app, const Globals& g, int* exit_code);  // lifecycle.cc
void AddExecCommand(CLI::App& app, const Globals& g, int* exit_code);       // exec_cmd.cc
void AddInfoCommands(CLI::App& app, const Globals& g, int* exit_code);      // info.cc
void AddMonitorCommand(CLI::App& app, const Globals& g, int* exit_code);    // monitor_cmd.cc

// Logs `error` and returns 1.
int Report(const Error& error);

}  // namespace moat::runtime::cli
