// ps, logs, rm, stop, kill, restart, pause, unpause, rename, top, stats, inspect, export,
// diff, update, commit, cp (tar streams), port.

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/tty.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/network_opts.h"
#include "cli/run_opts.h"
#include "cli/stdcopy.h"

namespace moat::cli {
namespace {

// Go's strconv.Quote for the printable ASCII the API sends.
std::string GoQuote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '\t') {
      out += "\\t";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string LocalTime(int64_t t) {
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  localtime_r(&tt, &tm);
  char buf[80];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %z %Z", &tm);
  return buf;
}

struct PsOpts {
  bool all = false, quiet = false, no_trunc = false, latest = false, size = false;
  int64_t last = -1;
  std::vector<std::string> filters;
  std::string format;
};

Result<void> Ps(Context& ctx, const PsOpts& o) {
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  int64_t limit = o.latest ? 1 : o.last;
  bool all = o.all || limit > 0;
  MOAT_ASSIGN_OR_RETURN(
      Json list,
      c->CallJson("GET", "/containers/json" +
                             Query({{"all", all ? "1" : ""},
                                    {"limit", limit > 0 ? std::to_string(limit) : ""},
                                    {"size", o.size ? "1" : ""},
                                    {"filters", FiltersJson(o.filters)}})));
  int64_t now = static_cast<int64_t>(time(nullptr));
  std::vector<Json> rows;
  if (list.is_array()) {
    for (const auto& ct : list) {
      std::string id = GetString(ct, "Id");
      if (o.quiet) {
        printf("%s\n", o.no_trunc ? id.c_str() : ShortId(id).c_str());
        continue;
      }
      Json r;
      std::string cmd = GetString(ct, "Command");
      r["Command"] = GoQuote(o.no_trunc ? cmd : Ellipsis(cmd, 20));
      int64_t created = GetInt(ct, "Created");
      r["CreatedAt"] = LocalTime(created);
      r["ID"] = o.no_trunc ? id : ShortId(id);
      std::string image = GetString(ct, "Image");
      if (!o.no_trunc && (StartsWith(image, "sha256:") || image.size() == 64)) image = ShortId(image);
      r["Image"] = image;
      std::vector<std::string> labels;
      if (const Json* l = Member(ct, "Labels"); l && l->is_object())
        for (auto it = l->begin(); it != l->end(); ++it) labels.push_back(it.key() + "=" + GoPrint(*it));
      r["Labels"] = StrJoin(labels, ",");
      r["LocalVolumes"] = "0";
      std::vector<std::string> mounts;
      if (const Json* m = Member(ct, "Mounts"); m && m->is_array())
        for (const auto& mt : *m) {
          std::string n = GetString(mt, "Name");
          if (n.empty()) n = GetString(mt, "Source");
          mounts.push_back(o.no_trunc || n.size() <= 15 ? n : Ellipsis(n, 15));
        }
      r["Mounts"] = StrJoin(mounts, ",");
      std::vector<std::string> names;
      for (auto n : GetStrings(ct, "Names")) {
        if (!n.empty() && n[0] == '/') n.erase(0, 1);
        // Legacy link names ("other/alias") are shown only with --no-trunc.
        if (o.no_trunc || n.find('/') == std::string::npos) names.push_back(n);
      }
      r["Names"] = StrJoin(names, ",");
      std::vector<std::string> nets;
      if (const Json* ns = Member(ct, "NetworkSettings"))
        if (const Json* nn = Member(*ns, "Networks"); nn && nn->is_object())
          for (auto it = nn->begin(); it != nn->end(); ++it) nets.push_back(it.key());
      r["Networks"] = StrJoin(nets, ",");
      r["Ports"] = DisplayablePorts(Member(ct, "Ports"));
      r["RunningFor"] = HumanDuration(now - created) + " ago";
      std::string size;
      if (o.size || GetInt(ct, "SizeRw", -1) >= 0) {
        size = HumanSize(static_cast<double>(GetInt(ct, "SizeRw")));
        if (GetInt(ct, "SizeRootFs") > 0)
          size += " (virtual " + HumanSize(static_cast<double>(GetInt(ct, "SizeRootFs"))) + ")";
      }
      r["Size"] = size;
      r["State"] = GetString(ct, "State");
      r["Status"] = GetString(ct, "Status");
      rows.push_back(r);
    }
  }
  if (o.quiet) return Ok();
  Json headers;
  headers["ID"] = "CONTAINER ID";
  headers["RunningFor"] = "CREATED";
  headers["CreatedAt"] = "CREATED AT";
  std::string def =
      "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
  if (o.size) def += "\t{{.Size}}";
  return PrintFormatted(o.format, def, headers, rows);
}

struct LogsOpts {
  bool follow = false, timestamps = false, details = false;
  std::string tail = "all", since, until, id;
};

Result<void> Logs(Context& ctx, const LogsOpts& o) {
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  MOAT_ASSIGN_OR_RETURN(Json info, c->CallJson("GET", "/containers/" + o.id + "/json"));
  const Json* config = Member(info, "Config");
  bool tty = config && GetBool(*config, "Tty");
  MOAT_ASSIGN_OR_RETURN(std::string since, ParseTimeArg(o.since, "--since"));
  MOAT_ASSIGN_OR_RETURN(std::string until, ParseTimeArg(o.until, "--until"));
  std::string path = "/containers/" + GetString(info, "Id") + "/logs" +
                     Query({{"follow", o.follow ? "1" : ""},
                            {"stderr", "1"},
                            {"stdout", "1"},
                            {"since", since},
                            {"until", until},
                            {"tail", o.tail},
                            {"timestamps", o.timestamps ? "1" : ""},
                            {"details", o.details ? "1" : ""}});
  StdcopyDemuxer demux([](StdStream s, std::string_view d) -> Result<void> {
    return sys::WriteAll(s == StdStream::kStderr || s == StdStream::kSystemErr ? 2 : 1, d);
  });
  return c->Stream("GET", path, {}, [&](std::string_view d) -> Result<void> {
    if (tty) return sys::WriteAll(1, d);
    return demux.Feed(d);
  });
}

// Runs `op` per container, printing the name on success and every error; status 1 if any
// failed (docker's behaviour for rm/stop/kill/...).
int ForEach(Context& ctx, const std::vector<std::string>& ids,
            const std::function<Result<void>(ApiClient*, const std::string&)>& op) {
  auto client = ctx.Client();
  if (!client.has_value()) return ReportError(client.error());
  int status = 0;
  for (const auto& id : ids) {
    auto r = op(*client, id);
    if (!r.has_value()) {
      status = ReportError(r.error());
      continue;
    }
    printf("%s\n", id.c_str());
    fflush(stdout);
  }
  return status;
}

Result<void> Expect2xx(ApiClient* c, std::string_view method, const std::string& path,
                       const Json* body = nullptr) {
  std::string text = body ? Dump(*body) : "";
  MOAT_ASSIGN_OR_RETURN(Response r, c->Call(method, path, text));
  // 304: already in the requested state (start/stop), which is success for the user.
  if ((r.status >= 200 && r.status < 300) || r.status == 304) return Ok();
  return Fail(DaemonError(r.status, r.body));
}

Result<void> Top(Context& ctx, const std::string& id, const std::vector<std::string>& ps_args) {
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  MOAT_ASSIGN_OR_RETURN(Json top, c->CallJson("GET", "/containers/" + id + "/top" +
                                                         Query({{"ps_args", StrJoin(ps_args, " ")}})));
  std::vector<std::string> lines;
  lines.push_back(StrJoin(GetStrings(top, "Titles"), "\t"));
  if (const Json* procs = Member(top, "Processes"); procs && procs->is_array())
    for (const auto& p : *procs) {
      std::vector<std::string> cells;
      if (p.is_array())
        for (const auto& cell : p) cells.push_back(GoPrint(cell));
      lines.push_back(StrJoin(cells, "\t"));
    }
  fputs(TabWrite(lines).c_str(), stdout);
  return Ok();
}

// One `docker stats` row from a stats JSON object.
Json StatsRow(const Json& s, const std::string& id, const std::string& name) {
  Json r;
  r["ID"] = ShortId(id);
  r["Container"] = ShortId(id);
  r["Name"] = name;
  const Json* cpu = Member(s, "cpu_stats");
  const Json* pre = Member(s, "precpu_stats");
  double cpu_percent = 0;
  if (cpu && pre) {
    const Json* cu = Member(*cpu, "cpu_usage");
    const Json* pu = Member(*pre, "cpu_usage");
    double cpu_delta = (cu ? GetDouble(*cu, "total_usage") : 0) - (pu ? GetDouble(*pu, "total_usage") : 0);
    double sys_delta = GetDouble(*cpu, "system_cpu_usage") - GetDouble(*pre, "system_cpu_usage");
    double ncpu = static_cast<double>(GetInt(*cpu, "online_cpus"));
    if (ncpu == 0 && cu) ncpu = static_cast<double>(GetStrings(*cu, "percpu_usage").size());
    if (const Json* per = cu ? Member(*cu, "percpu_usage") : nullptr; ncpu == 0 && per && per->is_array())
      ncpu = static_cast<double>(per->size());
    if (sys_delta > 0 && cpu_delta > 0) cpu_percent = cpu_delta / sys_delta * ncpu * 100.0;
  }
  r["CPUPerc"] = StrFormat("%.2f%%", cpu_percent);
  const Json* mem = Member(s, "memory_stats");
  double usage = 0, limit = 0;
  if (mem) {
    usage = GetDouble(*mem, "usage");
    limit = GetDouble(*mem, "limit");
    // As the docker CLI: cgroup v1 subtracts total_inactive_file, v2 inactive_file.
    if (const Json* st = Member(*mem, "stats")) {
      double inactive = GetDouble(*st, "total_inactive_file", GetDouble(*st, "inactive_file"));
      if (inactive < usage) usage -= inactive;
    }
  }
  r["MemUsage"] = BytesSize(usage) + " / " + BytesSize(limit);
  r["MemPerc"] = StrFormat("%.2f%%", limit > 0 ? usage / limit * 100.0 : 0.0);
  double rx = 0, tx = 0;
  if (const Json* nets = Member(s, "networks"); nets && nets->is_object())
    for (const auto& n : *nets) {
      rx += GetDouble(n, "rx_bytes");
      tx += GetDouble(n, "tx_bytes");
    }
  r["NetIO"] = HumanSize(rx) + " / " + HumanSize(tx);
  double blk_r = 0, blk_w = 0;
  if (const Json* blk = Member(s, "blkio_stats"))
    if (const Json* io = Member(*blk, "io_service_bytes_recursive"); io && io->is_array())
      for (const auto& e : *io) {
        std::string op = GetString(e, "op");
        if (op == "Read" || op == "read") blk_r += GetDouble(e, "value");
        if (op == "Write" || op == "write") blk_w += GetDouble(e, "value");
      }
  r["BlockIO"] = HumanSize(blk_r) + " / " + HumanSize(blk_w);
  const Json* pids = Member(s, "pids_stats");
  r["PIDs"] = std::to_string(pids ? GetInt(*pids, "current") : 0);
  return r;
}

Result<void> Stats(Context& ctx, std::vector<std::string> ids, bool all, bool no_stream,
                   const std::string& format, bool no_trunc) {
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  bool listed = ids.empty();
  Json headers;
  headers["ID"] = "CONTAINER ID";
  headers["Name"] = "NAME";
  headers["CPUPerc"] = "CPU %";
  headers["MemUsage"] = "MEM USAGE / LIMIT";
  headers["MemPerc"] = "MEM %";
  headers["NetIO"] = "NET I/O";
  headers["BlockIO"] = "BLOCK I/O";
  headers["PIDs"] = "PIDS";
  const std::string def =
      "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
  bool live = !no_stream && sys::IsTerminal(1);
  for (;;) {
    if (listed) {
      ids.clear();
      MOAT_ASSIGN_OR_RETURN(Json list, c->CallJson("GET", std::string("/containers/json") + (all ? "?all=1" : "")));
      if (list.is_array())
        for (const auto& ct : list) ids.push_back(GetString(ct, "Id"));
    }
    std::vector<Json> rows;
    for (const auto& id : ids) {
      // stream=0 returns one sample whose precpu_stats is about a second older.
      auto s = c->CallJson("GET", "/containers/" + id + "/stats?stream=0");
      if (!s.has_value()) {
        if (!listed) return Fail(s.error());
        continue;
      }
      std::string name = GetString(*s, "name");
      if (!name.empty() && name[0] == '/') name.erase(0, 1);
      Json row = StatsRow(*s, GetString(*s, "id", id), name);
      if (no_trunc) row["ID"] = GetString(*s, "id", id);
      rows.push_back(row);
    }
    if (live) fputs("\033[2J\033[H", stdout);
    MOAT_TRY(PrintFormatted(format, def, headers, rows));
    fflush(stdout);
    if (no_stream) return Ok();
    if (rows.empty()) sleep(1);
  }
}

// Untyped inspect tries each object kind in turn, as the docker CLI does.
Result<Json> InspectOne(ApiClient* c, const std::string& name, const std::string& type) {
  struct Kind {
    const char* type;
    std::string path;
  };
  std::vector<Kind> kinds = {{"container", "/containers/" + name + "/json"},
                             {"image", "/images/" + name + "/json"},
                             {"volume", "/volumes/" + name},
                             {"network", "/networks/" + name}};
  for (const auto& k : kinds) {
    if (!type.empty() && type != k.type) continue;
    MOAT_ASSIGN_OR_RETURN(Response r, c->Call("GET", k.path));
    if (r.status == 404) {
      if (!type.empty()) return Fail(DaemonError(r.status, r.body));
      continue;
    }
    if (r.status < 200 || r.status >= 300) return Fail(DaemonError(r.status, r.body));
    return ParseJson(r.body);
  }
  return Fail(ErrorKind::kNotFound, "Error: No such object: %s", name.c_str());
}

int Inspect(Context& ctx, const std::vector<std::string>& names, const std::string& format,
            const std::string& type) {
  if (!type.empty() && type != "container" && type != "image" && type != "volume" &&
      type != "network")
    return ReportError(MakeError(ErrorKind::kInvalidArgument,
                                 "\"%s\" is not a valid value for --type: use container, image, "
                                 "volume or network",
                                 type.c_str()));
  std::optional<Template> tmpl;
  if (!format.empty() && format != "json") {
    auto t = Template::Parse(format);
    if (!t.has_value()) return ReportError(t.error());
    tmpl = std::move(*t);
  }
  auto client = ctx.Client();
  if (!client.has_value()) return ReportError(client.error());
  int status = 0;
  Json all = Json::array();
  for (const auto& n : names) {
    auto j = InspectOne(*client, n, type);
    if (!j.has_value()) {
      status = 1;
      fprintf(stderr, "%s\n", j.error().message.c_str());
      continue;
    }
    if (tmpl) printf("%s\n", tmpl->Render(*j).c_str());
    else if (format == "json") printf("%s\n", Dump(*j).c_str());
    else all.push_back(*j);
  }
  if (!tmpl && format != "json") printf("%s\n", Dump(all, 4).c_str());
  return status;
}

Result<void> Export(Context& ctx, const std::string& id, const std::string& output) {
  UniqueFd owned;
  int fd = 1;
  if (!output.empty()) {
    MOAT_ASSIGN_OR_RETURN(owned, sys::open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    fd = owned.get();
  } else if (sys::IsTerminal(1)) {
    return Fail(ErrorKind::kInvalidArgument,
                "cowardly refusing to save to a terminal. Use the -o flag or redirect");
  }
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  return c->Stream("GET", "/containers/" + id + "/export", {},
                   [&](std::string_view d) { return sys::WriteAll(fd, d); });
}

Result<void> Diff(Context& ctx, const std::string& id) {
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  MOAT_ASSIGN_OR_RETURN(Json changes, c->CallJson("GET", "/containers/" + id + "/changes"));
  if (changes.is_array())
    for (const auto& ch : changes) {
      int64_t kind = GetInt(ch, "Kind");
      printf("%c %s\n", kind == 0 ? 'C' : kind == 1 ? 'A' : 'D', GetString(ch, "Path").c_str());
    }
  return Ok();
}

// docker cp with a tar stream on one side: `cp C:SRC -` writes the archive to stdout,
// `cp - C:DEST` extracts an archive from stdin into DEST.
Result<void> Cp(Context& ctx, const std::string& src, const std::string& dst, bool archive) {
  auto split = [](const std::string& s) -> std::pair<std::string, std::string> {
    size_t colon = s.find(':');
    if (colon == std::string::npos || s[0] == '/' || s[0] == '.') return {"", s};
    return {s.substr(0, colon), s.substr(colon + 1)};
  };
  auto [sc, sp] = split(src);
  auto [dc, dp] = split(dst);
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  if (!sc.empty() && dst == "-") {
    if (sys::IsTerminal(1))
      return Fail(ErrorKind::kInvalidArgument, "cowardly refusing to write a tar archive to a terminal");
    return c->Stream("GET", "/containers/" + sc + "/archive" + Query({{"path", sp}}), {},
                     [](std::string_view d) { return sys::WriteAll(1, d); });
  }
  if (src == "-" && !dc.empty()) {
    return c->Upload("PUT", "/containers/" + dc + "/archive" + Query({{"path", dp}, {"noOverwriteDirNonDir", "true"},
                                                                         {"copyUIDGID", archive ? "true" : ""}}),
                     0, "application/x-tar", [](std::string_view) -> Result<void> { return Ok(); },
                     nullptr);
  }
  return Fail(ErrorKind::kUnsupported,
              "moat cp currently copies tar streams only: use `moat cp CONTAINER:PATH - > out.tar` "
              "or `moat cp - CONTAINER:DIR < in.tar` (for files: `tar -C dir -c . | moat cp - C:DIR`)");
}

Result<void> Port(Context& ctx, const std::string& id, const std::string& private_port) {
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  MOAT_ASSIGN_OR_RETURN(Json info, c->CallJson("GET", "/containers/" + id + "/json"));
  const Json* ns = Member(info, "NetworkSettings");
  MOAT_ASSIGN_OR_RETURN(auto lines, PortLines(ns ? Member(*ns, "Ports") : nullptr, private_port, id));
  for (const auto& l : lines) printf("%s\n", l.c_str());
  return Ok();
}

struct UpdateOpts {
  std::string memory, memory_swap, memory_reservation, cpus, cpuset_cpus, cpuset_mems, restart;
  int64_t cpu_shares = 0, pids_limit = 0;
  CLI::Option* cpu_shares_opt = nullptr;
  CLI::Option* pids_opt = nullptr;
  std::vector<std::string> ids;
};

Result<Json> UpdateBody(const UpdateOpts& o) {
  Json b = Json::object();
  if (!o.memory.empty()) {
    MOAT_ASSIGN_OR_RETURN(int64_t m, ParseMemoryBytes(o.memory).Context("--memory"));
    b["Memory"] = m;
  }
  if (o.memory_swap == "-1") {
    b["MemorySwap"] = -1;
  } else if (!o.memory_swap.empty()) {
    MOAT_ASSIGN_OR_RETURN(int64_t m, ParseMemoryBytes(o.memory_swap).Context("--memory-swap"));
    b["MemorySwap"] = m;
  }
  if (!o.memory_reservation.empty()) {
    MOAT_ASSIGN_OR_RETURN(int64_t m, ParseMemoryBytes(o.memory_reservation).Context("--memory-reservation"));
    b["MemoryReservation"] = m;
  }
  if (!o.cpus.empty()) {
    MOAT_ASSIGN_OR_RETURN(int64_t n, ParseNanoCpus(o.cpus));
    b["NanoCpus"] = n;
  }
  if (o.cpu_shares_opt->count() > 0) b["CpuShares"] = o.cpu_shares;
  if (o.pids_opt->count() > 0) b["PidsLimit"] = o.pids_limit;
  if (!o.cpuset_cpus.empty()) b["CpusetCpus"] = o.cpuset_cpus;
  if (!o.cpuset_mems.empty()) b["CpusetMems"] = o.cpuset_mems;
  if (!o.restart.empty()) {
    MOAT_ASSIGN_OR_RETURN(Json rp, ParseRestartPolicy(o.restart));
    b["RestartPolicy"] = rp;
  }
  return b;
}

template <typename T>
CLI::Option* Multi(CLI::App* cmd, const char* name, T& target, const char* help) {
  return cmd->add_option(name, target, help)->allow_extra_args(false);
}

void AddContainerCmds(CLI::App* p, Context& ctx, int* exit_code, bool top_level) {
  {
    auto* cmd = p->add_subcommand(top_level ? "ps" : "ls", "List containers");
    if (!top_level) cmd->alias("ps")->alias("list");
    auto o = std::make_shared<PsOpts>();
    cmd->add_flag("-a,--all", o->all, "show all containers (default shows just running)");
    cmd->add_flag("-q,--quiet", o->quiet, "only display container IDs");
    cmd->add_flag("--no-trunc", o->no_trunc, "don't truncate output");
    cmd->add_flag("-l,--latest", o->latest, "show the latest created container (includes all states)");
    cmd->add_option("-n,--last", o->last, "show n last created containers (includes all states)");
    cmd->add_flag("-s,--size", o->size, "display total file sizes");
    Multi(cmd, "-f,--filter", o->filters, "filter output based on conditions provided");
    cmd->add_option("--format", o->format, "table, json or a Go template");
    cmd->callback([&ctx, exit_code, o] { *exit_code = ExitStatus(Ps(ctx, *o)); });
  }
  {
    auto* cmd = p->add_subcommand("logs", "Fetch the logs of a container");
    auto o = std::make_shared<LogsOpts>();
    cmd->add_flag("-f,--follow", o->follow, "follow log output");
    cmd->add_flag("-t,--timestamps", o->timestamps, "show timestamps");
    cmd->add_flag("--details", o->details, "show extra details provided to logs");
    cmd->add_option("-n,--tail", o->tail, "number of lines to show from the end of the logs");
    cmd->add_option("--since", o->since, "show logs since timestamp or relative (42m)");
    cmd->add_option("--until", o->until, "show logs before a timestamp or relative (42m)");
    cmd->add_option("container", o->id, "CONTAINER")->required();
    cmd->callback([&ctx, exit_code, o] { *exit_code = ExitStatus(Logs(ctx, *o)); });
  }
  {
    auto* cmd = p->add_subcommand(top_level ? "rm" : "rm", "Remove one or more containers");
    struct Opts {
      bool force = false, volumes = false, link = false;
      std::vector<std::string> ids;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_flag("-f,--force", o->force, "force the removal of a running container (uses SIGKILL)");
    cmd->add_flag("-v,--volumes", o->volumes, "remove anonymous volumes associated with the container");
    cmd->add_flag("-l,--link", o->link, "remove the specified link");
    cmd->add_option("container", o->ids, "CONTAINER [CONTAINER...]")->required();
    cmd->callback([&ctx, exit_code, o] {
      *exit_code = ForEach(ctx, o->ids, [&](ApiClient* c, const std::string& id) {
        return c->CallOk("DELETE", "/containers/" + id + Query({{"force", o->force ? "1" : ""},
                                                                {"v", o->volumes ? "1" : ""},
                                                                {"link", o->link ? "1" : ""}}));
      });
    });
  }
  for (const char* verb : {"stop", "restart"}) {
    auto* cmd = p->add_subcommand(verb, std::string(verb) == "stop" ? "Stop one or more running containers"
                                                                    : "Restart one or more containers");
    struct Opts {
      int64_t t = 0;
      std::string signal;
      CLI::Option* t_opt = nullptr;
      std::vector<std::string> ids;
    };
    auto o = std::make_shared<Opts>();
    o->t_opt = cmd->add_option("-t,--time", o->t, "seconds to wait before killing the container");
    cmd->add_option("-s,--signal", o->signal, "signal to send to the container");
    cmd->add_option("container", o->ids, "CONTAINER [CONTAINER...]")->required();
    std::string v = verb;
    cmd->callback([&ctx, exit_code, o, v] {
      *exit_code = ForEach(ctx, o->ids, [&](ApiClient* c, const std::string& id) {
        return Expect2xx(c, "POST", "/containers/" + id + "/" + v +
                                        Query({{"t", o->t_opt->count() ? std::to_string(o->t) : ""},
                                               {"signal", o->signal}}));
      });
    });
  }
  {
    auto* cmd = p->add_subcommand("kill", "Kill one or more running containers");
    struct Opts {
      std::string signal;
      std::vector<std::string> ids;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("-s,--signal", o->signal, "signal to send to the container (default KILL)");
    cmd->add_option("container", o->ids, "CONTAINER [CONTAINER...]")->required();
    cmd->callback([&ctx, exit_code, o] {
      *exit_code = ForEach(ctx, o->ids, [&](ApiClient* c, const std::string& id) {
        return Expect2xx(c, "POST", "/containers/" + id + "/kill" + Query({{"signal", o->signal}}));
      });
    });
  }
  for (const char* verb : {"pause", "unpause"}) {
    auto* cmd = p->add_subcommand(verb, std::string(verb) == "pause"
                                            ? "Pause all processes within one or more containers"
                                            : "Unpause all processes within one or more containers");
    auto ids = std::make_shared<std::vector<std::string>>();
    cmd->add_option("container", *ids, "CONTAINER [CONTAINER...]")->required();
    std::string v = verb;
    cmd->callback([&ctx, exit_code, ids, v] {
      *exit_code = ForEach(ctx, *ids, [&](ApiClient* c, const std::string& id) {
        return Expect2xx(c, "POST", "/containers/" + id + "/" + v);
      });
    });
  }
  {
    auto* cmd = p->add_subcommand("rename", "Rename a container");
    auto names = std::make_shared<std::vector<std::string>>();
    cmd->add_option("names", *names, "CONTAINER NEW_NAME")->expected(2)->required();
    cmd->callback([&ctx, exit_code, names] {
      auto client = ctx.Client();
      if (!client.has_value()) {
        *exit_code = ReportError(client.error());
        return;
      }
      *exit_code = ExitStatus((*client)->CallOk(
          "POST", "/containers/" + (*names)[0] + "/rename" + Query({{"name", (*names)[1]}})));
    });
  }
  {
    auto* cmd = p->add_subcommand("top", "Display the running processes of a container");
    cmd->prefix_command();
    cmd->callback([&ctx, exit_code, cmd] {
      auto rest = cmd->remaining();
      if (rest.empty()) {
        *exit_code = ReportError(MakeError(ErrorKind::kInvalidArgument,
                                           "\"moat top\" requires at least 1 argument: CONTAINER [ps OPTIONS]"));
        return;
      }
      *exit_code = ExitStatus(Top(ctx, rest[0], std::vector<std::string>(rest.begin() + 1, rest.end())));
    });
  }
  {
    auto* cmd = p->add_subcommand("stats", "Display a live stream of container(s) resource usage statistics");
    struct Opts {
      bool all = false, no_stream = false, no_trunc = false;
      std::string format;
      std::vector<std::string> ids;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_flag("-a,--all", o->all, "show all containers (default shows just running)");
    cmd->add_flag("--no-stream", o->no_stream, "disable streaming stats and only pull the first result");
    cmd->add_flag("--no-trunc", o->no_trunc, "do not truncate output");
    cmd->add_option("--format", o->format, "table, json or a Go template");
    cmd->add_option("container", o->ids, "CONTAINER...");
    cmd->callback([&ctx, exit_code, o] {
      *exit_code = ExitStatus(Stats(ctx, o->ids, o->all, o->no_stream, o->format, o->no_trunc));
    });
  }
  if (top_level) {
    auto* cmd = p->add_subcommand("inspect", "Return low-level information on Moat objects");
    struct Opts {
      std::string format, type;
      bool size = false;
      std::vector<std::string> names;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("-f,--format", o->format, "format output using a Go template or json");
    cmd->add_option("--type", o->type, "only inspect objects of the given type");
    cmd->add_flag("-s,--size", o->size, "display total file sizes if the type is container");
    cmd->add_option("name", o->names, "NAME|ID [NAME|ID...]")->required();
    cmd->callback([&ctx, exit_code, o] { *exit_code = Inspect(ctx, o->names, o->format, o->type); });
  } else {
    auto* cmd = p->add_subcommand("inspect", "Display detailed information on one or more containers");
    struct Opts {
      std::string format;
      bool size = false;
      std::vector<std::string> names;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("-f,--format", o->format, "format output using a Go template or json");
    cmd->add_flag("-s,--size", o->size, "display total file sizes");
    cmd->add_option("name", o->names, "CONTAINER [CONTAINER...]")->required();
    cmd->callback([&ctx, exit_code, o] { *exit_code = Inspect(ctx, o->names, o->format, "container"); });
  }
  {
    auto* cmd = p->add_subcommand("export", "Export a container's filesystem as a tar archive");
    struct Opts {
      std::string output, id;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("-o,--output", o->output, "write to a file, instead of STDOUT");
    cmd->add_option("container", o->id, "CONTAINER")->required();
    cmd->callback([&ctx, exit_code, o] { *exit_code = ExitStatus(Export(ctx, o->id, o->output)); });
  }
  {
    auto* cmd = p->add_subcommand("diff", "Inspect changes to files or directories on a container's filesystem");
    auto id = std::make_shared<std::string>();
    cmd->add_option("container", *id, "CONTAINER")->required();
    cmd->callback([&ctx, exit_code, id] { *exit_code = ExitStatus(Diff(ctx, *id)); });
  }
  {
    auto* cmd = p->add_subcommand("cp", "Copy files/folders between a container and the local filesystem (tar streams)");
    auto args = std::make_shared<std::vector<std::string>>();
    auto archive = std::make_shared<bool>(false);
    cmd->add_option("paths", *args, "SRC DEST")->expected(2)->required();
    cmd->add_flag("-a,--archive", *archive, "keep the archive's uid/gid (else files are owned by root)");
    cmd->callback([&ctx, exit_code, args, archive] {
      *exit_code = ExitStatus(Cp(ctx, (*args)[0], (*args)[1], *archive));
    });
  }
  {
    auto* cmd = p->add_subcommand("port", "List port mappings or a specific mapping for the container");
    auto args = std::make_shared<std::vector<std::string>>();
    cmd->add_option("args", *args, "CONTAINER [PRIVATE_PORT[/PROTO]]")->expected(1, 2)->required();
    cmd->callback([&ctx, exit_code, args] {
      *exit_code = ExitStatus(Port(ctx, (*args)[0], args->size() > 1 ? (*args)[1] : ""));
    });
  }
  {
    auto* cmd = p->add_subcommand("update", "Update configuration of one or more containers");
    auto o = std::make_shared<UpdateOpts>();
    cmd->add_option("-m,--memory", o->memory, "memory limit");
    cmd->add_option("--memory-swap", o->memory_swap, "swap limit equal to memory plus swap: -1 for unlimited");
    cmd->add_option("--memory-reservation", o->memory_reservation, "memory soft limit");
    cmd->add_option("--cpus", o->cpus, "number of CPUs");
    o->cpu_shares_opt = cmd->add_option("-c,--cpu-shares", o->cpu_shares, "CPU shares (relative weight)");
    cmd->add_option("--cpuset-cpus", o->cpuset_cpus, "CPUs in which to allow execution");
    cmd->add_option("--cpuset-mems", o->cpuset_mems, "MEMs in which to allow execution");
    o->pids_opt = cmd->add_option("--pids-limit", o->pids_limit, "tune container pids limit (-1 for unlimited)");
    cmd->add_option("--restart", o->restart, "restart policy to apply when a container exits");
    cmd->add_option("container", o->ids, "CONTAINER [CONTAINER...]")->required();
    cmd->callback([&ctx, exit_code, o] {
      auto body = UpdateBody(*o);
      if (!body.has_value()) {
        *exit_code = ReportError(body.error());
        return;
      }
      *exit_code = ForEach(ctx, o->ids, [&](ApiClient* c, const std::string& id) -> Result<void> {
        MOAT_ASSIGN_OR_RETURN(Json r, c->CallJson("POST", "/containers/" + id + "/update", &*body));
        for (const auto& w : GetStrings(r, "Warnings")) fprintf(stderr, "WARNING: %s\n", w.c_str());
        return Ok();
      });
    });
  }
  {
    auto* cmd = p->add_subcommand("commit", "Create a new image from a container's changes");
    struct Opts {
      std::string author, message;
      std::vector<std::string> changes, args;
      bool pause = true;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("-a,--author", o->author, "author");
    cmd->add_option("-m,--message", o->message, "commit message");
    Multi(cmd, "-c,--change", o->changes, "apply Dockerfile instruction to the created image");
    cmd->add_option("-p,--pause", o->pause, "pause container during commit");
    cmd->add_option("args", o->args, "CONTAINER [REPOSITORY[:TAG]]")->expected(1, 2)->required();
    cmd->callback([&ctx, exit_code, o] {
      auto client = ctx.Client();
      if (!client.has_value()) {
        *exit_code = ReportError(client.error());
        return;
      }
      std::string repo, tag;
      if (o->args.size() > 1) {
        repo = o->args[1];
        size_t colon = repo.rfind(':');
        if (colon != std::string::npos && repo.find('/', colon) == std::string::npos) {
          tag = repo.substr(colon + 1);
          repo.resize(colon);
        }
      }
      std::string q = Query({{"container", o->args[0]}, {"repo", repo}, {"tag", tag},
                             {"author", o->author}, {"comment", o->message},
                             {"pause", o->pause ? "1" : "0"}});
      for (const auto& ch : o->changes) q += "&changes=" + QueryEscape(ch);
      Json empty = Json::object();
      auto r = (*client)->CallJson("POST", "/commit" + q, &empty);
      if (!r.has_value()) {
        *exit_code = ReportError(r.error());
        return;
      }
      printf("%s\n", GetString(*r, "Id").c_str());
      *exit_code = 0;
    });
  }
  {
    auto* cmd = p->add_subcommand("prune", "Remove all stopped containers");
    if (top_level) cmd->group("");  // only `container prune` is a command in docker
    struct Opts {
      bool force = false;
      std::vector<std::string> filters;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_flag("-f,--force", o->force, "do not prompt for confirmation");
    Multi(cmd, "--filter", o->filters, "provide filter values (e.g. until=<timestamp>)");
    cmd->callback([&ctx, exit_code, o] {
      if (!o->force && !Confirm("WARNING! This will remove all stopped containers.")) return;
      auto client = ctx.Client();
      if (!client.has_value()) {
        *exit_code = ReportError(client.error());
        return;
      }
      auto r = (*client)->CallJson("POST", "/containers/prune" + Query({{"filters", FiltersJson(o->filters)}}));
      if (!r.has_value()) {
        *exit_code = ReportError(r.error());
        return;
      }
      auto ids = GetStrings(*r, "ContainersDeleted");
      if (!ids.empty()) {
        printf("Deleted Containers:\n");
        for (const auto& id : ids) printf("%s\n", id.c_str());
        printf("\n");
      }
      printf("Total reclaimed space: %s\n", HumanSize(static_cast<double>(GetInt(*r, "SpaceReclaimed"))).c_str());
    });
  }
}

}  // namespace

void AddContainerCommands(CLI::App& app, Context& ctx, int* exit_code) {
  AddContainerCmds(&app, ctx, exit_code, true);
  CLI::App* container = app.get_subcommand("container");
  AddContainerCmds(container, ctx, exit_code, false);
}

}  // namespace moat::cli
