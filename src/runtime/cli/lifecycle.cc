#include <unistd.h>

#include <cstdio>
#include <memory>

#include "base/log.h"
#include "base/sys/fs.h"
#include "oci/names.h"
#include "oci/spec_json.h"
#include "runtime/cli/commands.h"
#include "runtime/runtime_json.h"

namespace moat::runtime::cli {

namespace {

// Shared option storage for the subcommands (CLI11 binds to addresses that outlive parsing).
struct Options {
  std::string id;
  std::string bundle;
  std::string pid_file;
  std::string console_socket;
  int preserve_fds = 0;
  bool detach = false;
  bool keep = false;
  bool force = false;
  bool all = false;
  bool quiet = false;
  bool stats = false;
  int interval = 5;
  std::string format = "table";
  std::string signal = "SIGTERM";
  std::string resources;
  // update flags
  std::string memory, memory_reservation, memory_swap, cpuset_cpus, cpuset_mems;
  int64_t cpu_shares = -1, cpu_quota = 0, cpu_period = 0, pids_limit = 0, blkio_weight = -1;
  bool no_pivot = false, no_new_keyring = false;
};

void AddCreateFlags(CLI::App* c, Options* o) {
  c->add_option("-b,--bundle", o->bundle, "path to the bundle (default: current directory)");
  c->add_option("--pid-file", o->pid_file, "write the container process's pid here");
  c->add_option("--console-socket", o->console_socket,
                "AF_UNIX socket that receives the pty master when process.terminal is true");
  c->add_option("--preserve-fds", o->preserve_fds, "pass N more fds (from 3) to the container");
  c->add_flag("--no-pivot", o->no_pivot)->group("");
  c->add_flag("--no-new-keyring", o->no_new_keyring)->group("");
  c->add_option("id", o->id, "container id")->required();
}

// Parses sizes as runc does: plain bytes or with a k/m/g/t suffix (powers of 1024); -1 stays.
Result<int64_t> ParseBytes(const std::string& s, const char* flag) {
  if (s == "-1") return -1;
  std::string digits = s;
  int64_t mult = 1;
  if (!s.empty()) {
    char last = static_cast<char>(tolower(s.back()));
    if (last == 'b' && s.size() > 1) {
      digits = s.substr(0, s.size() - 1);
      last = static_cast<char>(tolower(digits.back()));
    }
    const char* units = "kmgt";
    for (int i = 0; units[i]; ++i) {
      if (last == units[i]) {
        mult = int64_t{1} << (10 * (i + 1));
        digits = digits.substr(0, digits.size() - 1);
      }
    }
  }
  auto v = ParseInt64(digits);
  if (!v || *v < 0)
    return Fail(ErrorKind::kInvalidArgument, "%s: invalid size \"%s\"", flag, s.c_str());
  return *v * mult;
}

Result<oci::Resources> ResourcesFromFlags(const Options& o) {
  oci::Resources r;
  if (!o.resources.empty()) {
    MOAT_ASSIGN_OR_RETURN(std::string text, o.resources == "-"
                                                ? sys::ReadFile("/dev/stdin")
                                                : sys::ReadFile(o.resources));
    MOAT_ASSIGN_OR_RETURN(r, std::move(oci::ParseResources(text)).Context("--resources"));
  }
  auto mem = [&]() -> oci::MemoryResources& {
    if (!r.memory) r.memory = oci::MemoryResources{};
    return *r.memory;
  };
  auto cpu = [&]() -> oci::CpuResources& {
    if (!r.cpu) r.cpu = oci::CpuResources{};
    return *r.cpu;
  };
  if (!o.memory.empty()) {
    MOAT_ASSIGN_OR_RETURN(mem().limit, ParseBytes(o.memory, "--memory"));
  }
  if (!o.memory_reservation.empty()) {
    MOAT_ASSIGN_OR_RETURN(mem().reservation,
                          ParseBytes(o.memory_reservation, "--memory-reservation"));
  }
  if (!o.memory_swap.empty()) {
    MOAT_ASSIGN_OR_RETURN(mem().swap, ParseBytes(o.memory_swap, "--memory-swap"));
  }
  if (o.cpu_shares >= 0) cpu().shares = static_cast<uint64_t>(o.cpu_shares);
  if (o.cpu_quota != 0) cpu().quota = o.cpu_quota;
  if (o.cpu_period > 0) cpu().period = static_cast<uint64_t>(o.cpu_period);
  if (!o.cpuset_cpus.empty()) cpu().cpus = o.cpuset_cpus;
  if (!o.cpuset_mems.empty()) cpu().mems = o.cpuset_mems;
  if (o.pids_limit != 0) r.pids_limit = o.pids_limit;
  if (o.blkio_weight >= 0) {
    r.block_io = r.block_io.value_or(oci::BlockIoResources{});
    r.block_io->weight = static_cast<uint16_t>(o.blkio_weight);
  }
  return r;
}

}  // namespace

void AddLifecycleCommands(CLI::App& app, const Globals& g, int* exit_code) {
  auto o = std::make_shared<Options>();
  auto run_result = [exit_code](const Result<void>& r) { *exit_code = r ? 0 : Report(r.error()); };

  if (g.Wants("create")) {
    CLI::App* create = app.add_subcommand("create", "create a container");
    AddCreateFlags(create, o.get());
    create->callback([&g, o, exit_code] {
      CreateOptions co{o->id, o->bundle, o->pid_file, o->console_socket, o->preserve_fds};
      auto r = Create(g.context(), co);
      *exit_code = r ? 0 : Report(r.error());
    });
  }

  if (g.Wants("start")) {
    CLI::App* start = app.add_subcommand("start", "start a created container");
    start->add_option("id", o->id)->required();
    start->callback([&g, o, run_result] { run_result(Start(g.context(), o->id)); });
  }

  if (g.Wants("run")) {
    CLI::App* run = app.add_subcommand("run", "create and start a container");
    AddCreateFlags(run, o.get());
    run->add_flag("-d,--detach", o->detach, "do not wait for the container to exit");
    run->add_flag("--keep", o->keep, "keep the container's state after it exits");
    run->callback([&g, o, exit_code] {
      Context ctx = g.context();
      CreateOptions co{o->id, o->bundle, o->pid_file, o->console_socket, o->preserve_fds};
      auto created = Create(ctx, co);
      if (!created) {
        *exit_code = Report(created.error());
        return;
      }
      if (auto s = Start(ctx, o->id); !s) {
        (void)Delete(ctx, o->id, Force::kYes);
        *exit_code = Report(s.error());
        return;
      }
      if (o->detach) {
        *exit_code = 0;
        return;
      }
      auto code = WaitForwardingSignals(created->pidfd.get());
      if (!o->keep) {
        if (auto d = Delete(ctx, o->id, Force::kYes); !d) Report(d.error());
      }
      *exit_code = code ? *code : Report(code.error());
    });
  }

  if (g.Wants("state")) {
    CLI::App* state = app.add_subcommand("state", "print a container's state as JSON");
    state->add_option("id", o->id)->required();
    state->callback([&g, o, exit_code] {
      auto c = LoadContainer(g.context(), o->id);
      if (!c) {
        *exit_code = Report(c.error());
        return;
      }
      printf("%s\n", StatusDocument(c->state, c->status).c_str());
      *exit_code = 0;
    });
  }

  if (g.Wants("kill")) {
    CLI::App* kill = app.add_subcommand("kill", "send a signal to a container's process");
    kill->add_flag("-a,--all", o->all, "signal every process in the container");
    kill->add_option("id", o->id)->required();
    kill->add_option("signal", o->signal, "name or number (default SIGTERM)");
    kill->callback([&g, o, exit_code, run_result] {
      auto sig = oci::SignalFromName(o->signal);
      if (!sig) {
        *exit_code = Report(MakeError(ErrorKind::kInvalidArgument, "unknown signal \"%s\"",
                                      o->signal.c_str()));
        return;
      }
      run_result(Kill(g.context(), o->id, *sig, o->all));
    });
  }

  if (g.Wants("delete")) {
    CLI::App* del = app.add_subcommand("delete", "delete a container");
    del->add_flag("-f,--force", o->force, "kill the container first if it is running");
    del->add_option("id", o->id)->required();
    del->callback([&g, o, run_result] {
      run_result(Delete(g.context(), o->id, o->force ? Force::kYes : Force::kNo));
    });
  }

  if (g.Wants("list") || g.Wants("ls")) {
    CLI::App* list = app.add_subcommand("list", "list containers");
    list->alias("ls");
    list->add_option("-f,--format", o->format)->check(CLI::IsMember({"table", "json"}));
    list->add_flag("-q,--quiet", o->quiet, "ids only");
    list->callback([&g, o, exit_code] {
      Context ctx = g.context();
      auto ids = ctx.store().List();
      if (!ids) {
        *exit_code = Report(ids.error());
        return;
      }
      std::vector<std::pair<ContainerState, Status>> all;
      for (const auto& id : *ids) {
        auto c = LoadContainer(ctx, id);
        if (c) all.emplace_back(c->state, c->status);
      }
      if (o->quiet) {
        for (const auto& [s, st] : all) printf("%s\n", s.id.c_str());
      } else if (o->format == "json") {
        printf("%s\n", ListDocument(all).c_str());
      } else {
        printf("%-20s %-8s %-10s %-40s %-32s %s\n", "ID", "PID", "STATUS", "BUNDLE", "CREATED",
               "OWNER");
        for (const auto& [s, st] : all)
          printf("%-20s %-8d %-10s %-40s %-32s %s\n", s.id.c_str(),
                 st == Status::kStopped ? 0 : s.pid, StatusName(st), s.bundle.c_str(),
                 s.created.c_str(), s.owner.empty() ? "root" : s.owner.c_str());
      }
      *exit_code = 0;
    });
  }

  if (g.Wants("pause")) {
    CLI::App* pause = app.add_subcommand("pause", "freeze every process of a container");
    pause->add_option("id", o->id)->required();
    pause->callback([&g, o, run_result] { run_result(Pause(g.context(), o->id)); });
  }
  if (g.Wants("resume")) {
    CLI::App* resume = app.add_subcommand("resume", "thaw a paused container");
    resume->add_option("id", o->id)->required();
    resume->callback([&g, o, run_result] { run_result(Resume(g.context(), o->id)); });
  }

  if (g.Wants("ps")) {
    CLI::App* ps = app.add_subcommand("ps", "list the processes of a container");
    ps->add_option("-f,--format", o->format)->check(CLI::IsMember({"table", "json"}));
    ps->add_option("id", o->id)->required();
    ps->callback([&g, o, exit_code] {
      auto pids = Processes(g.context(), o->id);
      if (!pids) {
        *exit_code = Report(pids.error());
        return;
      }
      if (o->format == "json") {
        printf("%s\n", PidsDocument(*pids).c_str());
      } else {
        printf("%-8s %s\n", "PID", "CMD");
        for (pid_t p : *pids) {
          auto cmd = sys::ReadFile(StrFormat("/proc/%d/cmdline", p));
          std::string c = cmd ? *cmd : "";
          for (char& ch : c)
            if (ch == '\0') ch = ' ';
          printf("%-8d %s\n", p, std::string(TrimWhitespace(c)).c_str());
        }
      }
      *exit_code = 0;
    });
  }

  if (g.Wants("update")) {
    CLI::App* update = app.add_subcommand("update", "change a container's resource limits");
    update->add_option("-r,--resources", o->resources, "JSON file of linux.resources ('-': stdin)");
    update->add_option("--memory", o->memory);
    update->add_option("--memory-reservation", o->memory_reservation);
    update->add_option("--memory-swap", o->memory_swap);
    update->add_option("--cpu-shares", o->cpu_shares);
    update->add_option("--cpu-quota", o->cpu_quota);
    update->add_option("--cpu-period", o->cpu_period);
    update->add_option("--cpuset-cpus", o->cpuset_cpus);
    update->add_option("--cpuset-mems", o->cpuset_mems);
    update->add_option("--pids-limit", o->pids_limit);
    update->add_option("--blkio-weight", o->blkio_weight);
    update->add_option("id", o->id)->required();
    update->callback([&g, o, exit_code, run_result] {
      auto r = ResourcesFromFlags(*o);
      if (!r) {
        *exit_code = Report(r.error());
        return;
      }
      run_result(Update(g.context(), o->id, *r));
    });
  }

  if (g.Wants("events")) {
    CLI::App* events = app.add_subcommand("events", "print a container's statistics and events");
    events->add_flag("--stats", o->stats, "print one statistics event and exit");
    events->add_option("--interval", o->interval, "seconds between statistics events");
    events->add_option("id", o->id)->required();
    events->callback([&g, o, exit_code] {
      Context ctx = g.context();
      while (true) {
        auto ev = StatsEvent(ctx, o->id);
        if (!ev) {
          *exit_code = Report(ev.error());
          return;
        }
        printf("%s\n", ev->c_str());
        fflush(stdout);
        if (o->stats) break;
        auto c = LoadContainer(ctx, o->id);
        if (!c || c->status == Status::kStopped) break;
        sleep(static_cast<unsigned>(std::max(1, o->interval)));
      }
      *exit_code = 0;
    });
  }
}

}  // namespace moat::runtime::cli
