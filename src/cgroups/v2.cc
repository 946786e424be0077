// cgroup v2: one directory in the unified hierarchy. Controllers reach it only when every
// ancestor lists them in cgroup.subtree_control; devices are an eBPF program (devices_bpf.h).

#include <fcntl.h>
#include <signal.h>

#include <algorithm>
#include <set>
#include <utility>

#include "base/log.h"
#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/process.h"
#include "cgroups/cgroupfs.h"
#include "cgroups/devices_bpf.h"
#include "cgroups/impl.h"
#include "cgroups/resources.h"
#include "cgroups/stats.h"

namespace moat::cgroups {

namespace {

constexpr auto kFreezeTimeout = std::chrono::seconds(5);
constexpr auto kDestroyTimeout = std::chrono::seconds(1);

std::set<std::string> Words(const std::optional<std::string>& text) {
  std::set<std::string> out;
  if (!text) return out;
  for (auto& w : StrSplit(std::string(TrimWhitespace(*text)), ' '))
    if (!w.empty()) out.insert(std::move(w));
  return out;
}

class V2Manager final : public Manager {
 public:
  V2Manager(const Layout& layout, std::string path)
      : root_(layout.unified_root), path_(std::move(path)), controllers_(layout.v2_controllers) {}

  Version version() const override { return Version::kV2; }

  Result<void> Create() override {
    auto enable_at = [this](int parent_fd, const std::string& parent_path) -> Result<void> {
      MOAT_ASSIGN_OR_RETURN(auto available_text, ReadOptionalFile(parent_fd, "cgroup.controllers"));
      MOAT_ASSIGN_OR_RETURN(auto enabled_text,
                            ReadOptionalFile(parent_fd, "cgroup.subtree_control"));
      std::set<std::string> available = Words(available_text);
      std::set<std::string> enabled = Words(enabled_text);
      for (const auto& c : controllers_) {
        if (!available.count(c) || enabled.count(c)) continue;
        // One controller per write: a single refused one (cpuset in a threaded subtree, say)
        // names itself in the error.
        MOAT_TRY(std::move(WriteCgroupFile(parent_fd, "cgroup.subtree_control", "+" + c))
                     .Context("enable controllers in %s%s", root_.c_str(), parent_path.c_str()));
      }
      return Ok();
    };
    auto enable = [&](int parent_fd, const std::string& parent_path,
                      bool is_mount_root) -> Result<void> {
      if (controllers_.empty()) return Ok();
      auto r = enable_at(parent_fd, parent_path);
      // The mount root may belong to a container engine or be read-only (a delegated
      // sub-tree): what it already enables is what the container gets.
      if (!r && is_mount_root) {
        MOAT_LOG(kDebug, "leaving %s/cgroup.subtree_control as it is: %s", root_.c_str(),
                 r.error().message.c_str());
        return Ok();
      }
      return r;
    };
    auto no_op = [](int, int) { return Ok(); };
    return CreateCgroupPath(root_, path_, enable, no_op);
  }

  Result<void> Apply(const oci::Resources& resources) override {
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, Open());
    CgroupState state;
    MOAT_ASSIGN_OR_RETURN(auto controllers, ReadOptionalFile(fd.get(), "cgroup.controllers"));
    state.controllers = Words(controllers);
    MOAT_ASSIGN_OR_RETURN(auto files, ListEntries(fd.get(), EntryType::kFiles));
    state.files.insert(files.begin(), files.end());
    std::vector<std::string> current;
    for (const auto& f : FilesReadForPlanV2()) current.push_back(f.file);
    MOAT_TRY(ReadFilesInto(fd.get(), current, &state.current));

    // Plan and build everything before the first write, so that a spec error leaves the
    // cgroup untouched.
    MOAT_ASSIGN_OR_RETURN(auto writes, PlanV2(resources, state));
    std::vector<bpf_insn> program;
    if (!resources.devices.empty()) {
      MOAT_ASSIGN_OR_RETURN(program, BuildDeviceProgram(resources.devices));
    }
    for (const auto& w : writes) MOAT_TRY(WriteCgroupFile(fd.get(), w.file, w.value));
    if (!program.empty())
      MOAT_TRY(std::move(InstallDeviceProgram(fd.get(), program)).Context("%s", Dir().c_str()));
    return Ok();
  }

  Result<void> AddProcess(pid_t pid) override {
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, Open());
    return std::move(WriteCgroupFile(fd.get(), "cgroup.procs", std::to_string(pid)))
        .Context("add pid %d to %s", pid, Dir().c_str());
  }

  Result<UniqueFd> OpenForClone() override { return Open(); }

  Result<void> Freeze() override {
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, Open());
    MOAT_TRY(RequireFreezer(fd.get()));
    MOAT_TRY(WriteCgroupFile(fd.get(), "cgroup.freeze", "1"));
    // The kernel freezes asynchronously and reports completion as "frozen 1" in cgroup.events.
    auto waited = WaitFrozen(fd.get(), 1);
    if (waited) return Ok();
    auto thawed = WriteCgroupFile(fd.get(), "cgroup.freeze", "0");
    if (!thawed)
      MOAT_LOG(kWarning, "thaw %s after a failed freeze: %s", Dir().c_str(),
               thawed.error().message.c_str());
    return waited;
  }

  Result<void> Thaw() override {
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, Open());
    MOAT_TRY(RequireFreezer(fd.get()));
    MOAT_TRY(WriteCgroupFile(fd.get(), "cgroup.freeze", "0"));
    return WaitFrozen(fd.get(), 0);
  }

  Result<FreezerState> GetFreezerState() override {
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, Open());
    MOAT_ASSIGN_OR_RETURN(auto freeze, ReadOptionalFile(fd.get(), "cgroup.freeze"));
    if (!freeze || TrimWhitespace(*freeze) != "1") return FreezerState::kThawed;
    MOAT_ASSIGN_OR_RETURN(uint64_t frozen, Frozen(fd.get()));
    return frozen == 1 ? FreezerState::kFrozen : FreezerState::kFreezing;
  }

  Result<std::vector<pid_t>> Pids() override {
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, Open());
    std::vector<pid_t> pids;
    MOAT_TRY(CollectPids(fd.get(), &pids));
    std::sort(pids.begin(), pids.end());
    pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
    return pids;
  }

  Result<void> SignalAll(int sig) override {
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, Open());
    if (sig == SIGKILL) {
      // cgroup.kill (Linux 5.14) kills the whole subtree in the kernel, forks included.
      MOAT_ASSIGN_OR_RETURN(bool has_kill, Exists(fd.get(), "cgroup.kill"));
      if (has_kill) return WriteCgroupFile(fd.get(), "cgroup.kill", "1");
    }
    // Otherwise freeze so that no fork escapes the loop; a cgroup that was already frozen
    // stays frozen (v2 frozen tasks still die of SIGKILL).
    MOAT_ASSIGN_OR_RETURN(bool freezer, Exists(fd.get(), "cgroup.freeze"));
    bool froze = false;
    if (freezer) {
      MOAT_ASSIGN_OR_RETURN(FreezerState before, GetFreezerState());
      if (before != FreezerState::kFrozen) {
        auto frozen = Freeze();
        if (!frozen)
          MOAT_LOG(kWarning, "signal %d to %s without freezing: %s", sig, Dir().c_str(),
                   frozen.error().message.c_str());
        froze = frozen.has_value();
      }
    }
    Result<void> signalled = SignalEach(sig);
    if (froze) MOAT_TRY(Thaw());
    return signalled;
  }

  Result<Stats> GetStats() override {
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, Open());
    FileContents files;
    std::vector<std::string> names;
    for (const auto& f : StatsFilesV2()) names.push_back(f.file);
    MOAT_TRY(ReadFilesInto(fd.get(), names, &files));
    return StatsFromV2(files);
  }

  Result<void> Destroy() override {
    return RemoveCgroupTree(root_, path_, Clock::now() + kDestroyTimeout);
  }

  std::string Path() const override { return path_; }
  std::map<std::string, std::string> Paths() const override { return {{"", path_}}; }

 private:
  std::string Dir() const { return root_ + path_; }
  Result<UniqueFd> Open() const { return OpenCgroupDir(root_, path_); }

  static Result<bool> Exists(int fd, const std::string& file) {
    auto st = sys::fstatat(fd, file, AT_SYMLINK_NOFOLLOW);
    if (st) return true;
    if (st.error().sys_errno == ENOENT) return false;
    return Fail(std::move(st).error());
  }

  Result<void> RequireFreezer(int fd) const {
    MOAT_ASSIGN_OR_RETURN(bool has, Exists(fd, "cgroup.freeze"));
    if (!has)
      return Fail(ErrorKind::kUnsupported, "%s: no cgroup.freeze (the v2 freezer needs Linux 5.2)",
                  Dir().c_str());
    return Ok();
  }

  static Result<uint64_t> Frozen(int fd) {
    MOAT_ASSIGN_OR_RETURN(auto events, ReadOptionalFile(fd, "cgroup.events"));
    auto kv = ParseFlatKeyed(events.value_or(""));
    auto it = kv.find("frozen");
    return it == kv.end() ? 0 : it->second;
  }

  Result<void> WaitFrozen(int fd, uint64_t want) const {
    // Short sleeps rather than inotify on cgroup.events: freezing usually completes within
    // a few milliseconds, and the loop stays bounded either way.
    const auto deadline = Clock::now() + kFreezeTimeout;
    for (int attempt = 0;; ++attempt) {
      MOAT_ASSIGN_OR_RETURN(uint64_t frozen, Frozen(fd));
      if (frozen == want) return Ok();
      if (Clock::now() >= deadline) break;
      PollSleep(attempt);
    }
    return Fail(ErrorKind::kUnavailable, "%s: cgroup.events still not \"frozen %llu\" after %lld s",
                Dir().c_str(), static_cast<unsigned long long>(want),
                static_cast<long long>(kFreezeTimeout.count()));
  }

  Result<void> SignalEach(int sig) {
    MOAT_ASSIGN_OR_RETURN(std::vector<pid_t> pids, Pids());
    for (pid_t pid : pids) {
      auto r = sys::kill(pid, sig);
      if (!r && r.error().sys_errno != ESRCH)  // ESRCH: exited meanwhile
        return Fail(std::move(r).Context("signal %d", sig).error());
    }
    return Ok();
  }

  std::string root_;
  std::string path_;
  std::vector<std::string> controllers_;
};

}  // namespace

std::unique_ptr<Manager> NewV2Manager(const Layout& layout, std::string path) {
  return std::make_unique<V2Manager>(layout, std::move(path));
}

}  // namespace moat::cgroups
