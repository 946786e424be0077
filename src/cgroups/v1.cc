// cgroup v1: one directory per mounted controller hierarchy (co-mounted controllers such as
// "cpu,cpuacct" share one). Named hierarchies (name=systemd) are never in the Layout and never
// touched.

#include <signal.h>

#include <algorithm>
#include <set>
#include <utility>

#include "base/log.h"
#include "base/strings.h"
#include "base/sys/process.h"
#include "cgroups/cgroupfs.h"
#include "cgroups/impl.h"
#include "cgroups/resources.h"
#include "cgroups/stats.h"

namespace moat::cgroups {

namespace {

constexpr auto kFreezeTimeout = std::chrono::seconds(5);
constexpr auto kDestroyTimeout = std::chrono::seconds(1);

struct Hierarchy {
  std::string mount;
  std::vector<std::string> controllers;
  std::string path;

  bool Has(const std::string& c) const {
    return std::find(controllers.begin(), controllers.end(), c) != controllers.end();
  }
  std::string Dir() const { return mount + path; }
};

class V1Manager final : public Manager {
 public:
  V1Manager(const Layout& layout, std::map<std::string, std::string> paths)
      : paths_(std::move(paths)) {
    // One Hierarchy per mount point, in the order of the first controller's name.
    for (const auto& [controller, mount] : layout.v1_mounts) {
      auto it = std::find_if(hierarchies_.begin(), hierarchies_.end(),
                             [&](const Hierarchy& h) { return h.mount == mount; });
      if (it == hierarchies_.end()) {
        hierarchies_.push_back({mount, {}, paths_[controller]});
        it = hierarchies_.end() - 1;
      }
      it->controllers.push_back(controller);
    }
  }

  Version version() const override { return Version::kV1; }

  Result<void> Create() override {
    for (const auto& h : hierarchies_) {
      bool cpuset = h.Has("cpuset");
      auto after_level = [cpuset](int fd, int parent_fd) -> Result<void> {
        if (!cpuset) return Ok();
        // A new cpuset cgroup starts with empty cpus and mems, and the kernel refuses tasks
        // in it (ENOSPC) until both are set: copy them down from the parent, level by level.
        for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
          MOAT_ASSIGN_OR_RETURN(auto mine, ReadOptionalFile(fd, file));
          if (mine && !TrimWhitespace(*mine).empty()) continue;
          MOAT_ASSIGN_OR_RETURN(auto parent, ReadOptionalFile(parent_fd, file));
          std::string value(TrimWhitespace(parent.value_or("")));
          if (value.empty()) continue;
          MOAT_TRY(WriteCgroupFile(fd, file, value));
        }
        return Ok();
      };
      auto no_op = [](int, const std::string&, bool) { return Ok(); };
      MOAT_TRY(CreateCgroupPath(h.mount, h.path, no_op, after_level));
    }
    return Ok();
  }

  Result<void> Apply(const oci::Resources& resources) override {
    CgroupState state;
    std::map<std::string, int> dir_of;  // controller -> index into fds
    std::vector<UniqueFd> fds;
    for (const auto& h : hierarchies_) {
      MOAT_ASSIGN_OR_RETURN(UniqueFd fd, OpenCgroupDir(h.mount, h.path));
      MOAT_ASSIGN_OR_RETURN(auto files, ListEntries(fd.get(), EntryType::kFiles));
      state.files.insert(files.begin(), files.end());
      for (const auto& c : h.controllers) {
        state.controllers.insert(c);
        dir_of[c] = static_cast<int>(fds.size());
      }
      fds.push_back(std::move(fd));
    }
    for (const auto& f : FilesReadForPlanV1()) {
      auto it = dir_of.find(f.controller);
      if (it == dir_of.end()) continue;
      MOAT_TRY(ReadFilesInto(fds[it->second].get(), {f.file}, &state.current));
    }
    MOAT_ASSIGN_OR_RETURN(auto writes, PlanV1(resources, state));
    for (const auto& w : writes) {
      auto it = dir_of.find(w.controller);
      MOAT_CHECK(it != dir_of.end());  // PlanV1 only plans for mounted controllers
      MOAT_TRY(WriteCgroupFile(fds[it->second].get(), w.file, w.value));
    }
    return Ok();
  }

  Result<void> AddProcess(pid_t pid) override {
    for (const auto& h : hierarchies_) {
      MOAT_ASSIGN_OR_RETURN(UniqueFd fd, OpenCgroupDir(h.mount, h.path));
      MOAT_TRY(std::move(WriteCgroupFile(fd.get(), "cgroup.procs", std::to_string(pid)))
                   .Context("add pid %d to %s", pid, h.Dir().c_str()));
    }
    return Ok();
  }

  Result<UniqueFd> OpenForClone() override {
    return Fail(ErrorKind::kUnsupported, "CLONE_INTO_CGROUP needs cgroup v2");
  }

  Result<void> Freeze() override {
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, OpenFreezer());
    const auto deadline = Clock::now() + kFreezeTimeout;
    for (int attempt = 0;; ++attempt) {
      // Writing FROZEN again retries tasks that could not be frozen yet (e.g. in vfork); the
      // state reads FREEZING until every task is in the refrigerator.
      MOAT_TRY(WriteCgroupFile(fd.get(), "freezer.state", "FROZEN"));
      MOAT_ASSIGN_OR_RETURN(std::string state, ReadState(fd.get()));
      if (state == "FROZEN") return Ok();
      if (Clock::now() >= deadline) break;
      PollSleep(attempt);
    }
    // Do not leave the container half frozen.
    auto thawed = WriteCgroupFile(fd.get(), "freezer.state", "THAWED");
    if (!thawed)
      MOAT_LOG(kWarning, "thaw %s after a failed freeze: %s", Dir("freezer").c_str(),
               thawed.error().message.c_str());
    return Fail(ErrorKind::kUnavailable, "freeze %s: still FREEZING after %lld s",
                Dir("freezer").c_str(), static_cast<long long>(kFreezeTimeout.count()));
  }

  Result<void> Thaw() override {
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, OpenFreezer());
    return WriteCgroupFile(fd.get(), "freezer.state", "THAWED");
  }

  Result<FreezerState> GetFreezerState() override {
    if (!Find("freezer")) return FreezerState::kThawed;  // cannot be frozen without a freezer
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, OpenFreezer());
    MOAT_ASSIGN_OR_RETURN(std::string state, ReadState(fd.get()));
    if (state == "FROZEN") return FreezerState::kFrozen;
    if (state == "FREEZING") return FreezerState::kFreezing;
    return FreezerState::kThawed;
  }

  Result<std::vector<pid_t>> Pids() override {
    // Any hierarchy holds every task; pids and memory are the ones containers always have.
    const Hierarchy* h = Find("pids");
    if (!h) h = Find("memory");
    if (!h) h = &hierarchies_.front();
    MOAT_ASSIGN_OR_RETURN(UniqueFd fd, OpenCgroupDir(h->mount, h->path));
    std::vector<pid_t> pids;
    MOAT_TRY(CollectPids(fd.get(), &pids));
    std::sort(pids.begin(), pids.end());
    pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
    return pids;
  }

  Result<void> SignalAll(int sig) override {
    // Freezing first stops forks racing the signal loop. A cgroup that was already frozen
    // (paused) stays frozen unless the signal is SIGKILL: a v1 frozen task dies only once
    // thawed.
    bool freezer = Find("freezer") != nullptr;
    bool froze = false;
    bool was_frozen = false;
    if (freezer) {
      MOAT_ASSIGN_OR_RETURN(FreezerState before, GetFreezerState());
      was_frozen = before == FreezerState::kFrozen;
      if (!was_frozen) {
        auto frozen = Freeze();
        // A task stuck in the kernel can keep the cgroup FREEZING: signal anyway.
        if (!frozen)
          MOAT_LOG(kWarning, "signal %d to %s without freezing: %s", sig, Path().c_str(),
                   frozen.error().message.c_str());
        froze = frozen.has_value();
      }
    }
    Result<void> signalled = SignalEach(sig);
    if (froze || (was_frozen && sig == SIGKILL)) MOAT_TRY(Thaw());
    return signalled;
  }

  Result<Stats> GetStats() override {
    FileContents files;
    std::map<const Hierarchy*, UniqueFd> fds;
    for (const auto& f : StatsFilesV1()) {
      const Hierarchy* h = Find(f.controller);
      if (!h) continue;
      UniqueFd& fd = fds[h];
      if (!fd) {
        MOAT_ASSIGN_OR_RETURN(fd, OpenCgroupDir(h->mount, h->path));
      }
      MOAT_TRY(ReadFilesInto(fd.get(), {f.file}, &files));
    }
    return StatsFromV1(files);
  }

  Result<void> Destroy() override {
    const auto deadline = Clock::now() + kDestroyTimeout;
    for (const auto& h : hierarchies_) MOAT_TRY(RemoveCgroupTree(h.mount, h.path, deadline));
    return Ok();
  }

  std::string Path() const override {
    for (const char* c : {"memory", "pids"}) {
      auto it = paths_.find(c);
      if (it != paths_.end()) return it->second;
    }
    return hierarchies_.empty() ? "" : hierarchies_.front().path;
  }

  std::map<std::string, std::string> Paths() const override { return paths_; }

 private:
  const Hierarchy* Find(const std::string& controller) const {
    for (const auto& h : hierarchies_)
      if (h.Has(controller)) return &h;
    return nullptr;
  }

  std::string Dir(const std::string& controller) const {
    const Hierarchy* h = Find(controller);
    return h ? h->Dir() : controller;
  }

  Result<UniqueFd> OpenFreezer() const {
    const Hierarchy* h = Find("freezer");
    if (!h) return Fail(ErrorKind::kUnsupported, "the freezer cgroup controller is not mounted");
    return OpenCgroupDir(h->mount, h->path);
  }

  static Result<std::string> ReadState(int fd) {
    MOAT_ASSIGN_OR_RETURN(auto state, ReadOptionalFile(fd, "freezer.state"));
    if (!state) return Fail(ErrorKind::kNotFound, "freezer.state: no such file");
    return std::string(TrimWhitespace(*state));
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

  std::map<std::string, std::string> paths_;
  std::vector<Hierarchy> hierarchies_;
};

}  // namespace

std::unique_ptr<Manager> NewV1Manager(const Layout& layout,
                                      std::map<std::string, std::string> paths) {
  return std::make_unique<V1Manager>(layout, std::move(paths));
}

}  // namespace moat::cgroups
