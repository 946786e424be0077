#pragma once

// The fixture of the privileged runtime tests: they drive the real `moat-runtime` binary as a
// runc user would, on real containers, and check the effect on the host.
//
// Per test binary (the first SetUpTestSuite; removed at exit): one busybox rootfs in a unique temp
// dir under /tmp (shared read-only by the tests), a state root /run/moat-it-<pid>, the output of
// `moat-runtime spec`. The process makes itself a child subreaper: PID 1 here does not reap
// orphans, and the container processes that `create`/`run -d` leave behind are reparented to us.
// Per test (SetUp/TearDown): a scratch dir holding the bundle; container ids "it-<pid>-<n>";
// TearDown `delete --force`s every id the test used, reaps, and fails the test if anything
// leaked (a state dir, a cgroup, a mount, a process), cleaning the leak up after reporting it.

#include <gtest/gtest.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/command.h"

namespace moat::testing {

using nlohmann::json;

// The file's contents, or "" when it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);
// Writes (creates or truncates) the file; returns false with errno set on failure.
bool WriteFile(const std::string& path, const std::string& data, mode_t mode = 0644);
bool PathExists(const std::string& path);
std::string Trim(const std::string& s);
// Lines of `text`, without the trailing empty one.
std::vector<std::string> Lines(const std::string& text);
// The whitespace-separated words of `s`.
std::vector<std::string> Words(const std::string& s);
// True when this process is in the initial user namespace (its uid_map is the identity over
// all ids).
bool InInitialUserNamespace();
// The inode of a path (following symlinks), 0 when it cannot be stat'ed.
ino_t InodeOf(const std::string& path);
// One "Key:\tvalue" field of /proc/<pid>/status (or of a text in that format).
std::string StatusField(const std::string& status_text, const std::string& key);

// /proc/<pid>/cmdline with the NULs as spaces ("" when gone).
std::string CmdlineOf(pid_t pid);
// True when the process no longer exists or is a zombie.
bool ProcessGone(pid_t pid);

// Removes a directory tree without following symlinks. Refuses (returns false) when a mount
// lies in it: a leaked bind mount must not lead the removal onto the host.
bool RemoveTree(const std::string& path);

// Mount points of the mounts (/proc/self/mountinfo) whose mount point or root contains `needle`.
std::vector<std::string> MountsMentioning(const std::string& needle);

// Where this process's cgroup hierarchies are: for each mounted hierarchy (v1 controller or
// the cgroup2 mount, key "unified"), the host directory of the caller's own cgroup.
std::map<std::string, std::string> OwnCgroupDirs();

// True on a pure cgroup v2 host: /sys/fs/cgroup is the cgroup2 mount itself (statfs magic
// CGROUP2_SUPER_MAGIC, or its cgroup.controllers exists). False on v1 and hybrid hosts.
bool IsCgroupV2Unified();

// The value of `key` in a flat-keyed cgroup file's text ("key value" lines: memory.events,
// pids.events, cpu.stat, cgroup.events...); `fallback` when the key is absent.
uint64_t KeyedValue(const std::string& text, const std::string& key, uint64_t fallback = 0);

class RuntimeTest : public ::testing::Test {
 public:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

 protected:
  void SetUp() override;
  void TearDown() override;

  static std::string RuntimePath();
  // The shared busybox rootfs (absolute; /proc /dev /sys /tmp /etc exist in it).
  static const std::string& rootfs() { return rootfs_; }
  static const std::string& state_root() { return state_root_; }
  static const std::string& work_dir() { return work_dir_; }
  // This test's scratch directory and its bundle directory (scratch()/bundle).
  const std::string& scratch() const { return scratch_; }
  const std::string& bundle() const { return bundle_; }

  // A fresh container id ("it-<pid>-<n>"), torn down by TearDown whatever happens.
  std::string NewId();

  // `moat-runtime --root <state root> ARGS...`.
  CommandResult Runtime(const std::vector<std::string>& args, const CommandOptions& options = {});
  std::unique_ptr<Command> StartRuntime(const std::vector<std::string>& args,
                                        const CommandOptions& options = {});

  // `moat-runtime spec` output with root.path = the shared rootfs (read-only) and the given
  // process.args.
  json Config(const std::vector<std::string>& args = {"sh"}) const;
  static void AddTmpfs(json& config, const std::string& destination);
  static void AddBind(json& config, const std::string& source, const std::string& destination);
  // Writes bundle()/config.json.
  void WriteConfig(const json& config) const;
  void WriteConfigText(const std::string& text) const;

  // `run --bundle <bundle> ID` of `config`.
  CommandResult RunContainer(const json& config, const std::string& id,
                             const std::vector<std::string>& extra_flags = {},
                             const CommandOptions& options = {});
  // Writes `config` and `create`s then `start`s it; expects both to succeed. Returns the
  // state's pid (0 on failure, with a test failure recorded).
  pid_t CreateAndStart(const json& config, const std::string& id);

  // `state ID` parsed; a null json (and a test failure) when it fails or is not JSON.
  json State(const std::string& id);
  std::string Status(const std::string& id);
  // `events --stats ID` parsed ("data" member); null json and a failure on error.
  json Stats(const std::string& id);

  // The host directories of the container's cgroup: one per hierarchy (v1 controller name, or
  // "unified"), for the runtime's default relative cgroupsPath "moat/<id>".
  std::map<std::string, std::string> CgroupDirs(const std::string& id) const;
  // Those the runtime creates: the v1 ones on a v1 or hybrid host, else the cgroup2 one.
  std::map<std::string, std::string> ManagedCgroupDirs(const std::string& id) const;

  // Polls `pred` every 20 ms for up to `timeout_ms`.
  template <typename Pred>
  static bool WaitFor(Pred pred, int timeout_ms = 5000) {
    for (int waited = 0;; waited += 20) {
      if (pred()) return true;
      if (waited >= timeout_ms) return false;
      SleepMs(20);
    }
  }
  static void SleepMs(int ms);

 private:
  void CheckNothingLeaked();
  static void RemoveSuiteFiles();

  static std::string suite_error_;
  static std::string work_dir_;
  static std::string rootfs_;
  // The runtime's default parent cgroup ("moat", under our own in each hierarchy): removed at
  // exit when empty, so that the tests leave no cgroup behind.
  static std::vector<std::string> cgroup_parents_;
  static std::string state_root_;
  static json default_spec_;
  static int test_counter_;
  static int id_counter_;

  std::string scratch_;
  std::string bundle_;
  std::vector<std::string> ids_;
};

}  // namespace moat::testing
