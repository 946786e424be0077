// version, info, events, system (info, df, prune).

#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>

#include "base/strings.h"
#include "cli/commands.h"
#include "cli/format.h"

namespace moat::cli {
namespace {

void Line(std::string* out, int indent, const std::string& key, const std::string& value) {
  *out += std::string(static_cast<size_t>(indent), ' ') + key + ":";
  if (!value.empty()) {
    // Values start at column 20, as in the docker CLI's version/info output.
    size_t used = static_cast<size_t>(indent) + key.size() + 1;
    size_t pad = used < 20 ? 20 - used : 1;
    *out += std::string(pad, ' ') + value;
  }
  *out += "\n";
}

// `docker info` prints "key: value" without alignment.
void InfoLine(std::string* out, int indent, const std::string& key, const std::string& value) {
  *out += std::string(static_cast<size_t>(indent), ' ') + key + ":" +
          (value.empty() ? "" : " " + value) + "\n";
}

std::string Arch() {
  struct utsname u {};
  uname(&u);
  std::string m = u.machine;
  if (m == "x86_64") return "amd64";
  if (m == "aarch64") return "arm64";
  return m;
}

Result<void> RenderTemplate(const std::string& format, const Json& data) {
  if (format == "json") {
    printf("%s\n", Dump(data).c_str());
    return Ok();
  }
  MOAT_ASSIGN_OR_RETURN(Template t, Template::Parse(format));
  printf("%s\n", t.Render(data).c_str());
  return Ok();
}

Result<void> Version(Context& ctx, const std::string& format) {
  Json client;
  client["Version"] = MOAT_VERSION;
  client["ApiVersion"] = kClientApiVersion;
  client["Os"] = "linux";
  client["Arch"] = Arch();
  auto c = ctx.Client();
  Json server;
  Error server_error;
  bool have_server = false;
  if (c.has_value()) {
    client["ApiVersion"] = (*c)->api_version();
    auto v = (*c)->CallJson("GET", "/version");
    if (v.has_value()) {
      server = *v;
      have_server = true;
    } else {
      server_error = v.error();
    }
  } else {
    server_error = c.error();
  }
  if (!format.empty()) {
    Json all;
    all["Client"] = client;
    all["Server"] = have_server ? server : Json();
    MOAT_TRY(RenderTemplate(format, all));
    if (!have_server) return Fail(server_error);
    return Ok();
  }
  std::string out = "Client:\n";
  Line(&out, 1, "Version", MOAT_VERSION);
  std::string api = GetString(client, "ApiVersion");
  if (api != kClientApiVersion) api += StrFormat(" (downgraded from %s)", kClientApiVersion);
  Line(&out, 1, "API version", api);
  Line(&out, 1, "OS/Arch", "linux/" + Arch());
  if (have_server) {
    out += "\nServer:";
    std::string platform = GetString(LookupPath(server, "Platform") ? *LookupPath(server, "Platform") : Json(), "Name");
    out += platform.empty() ? "\n" : " " + platform + "\n";
    const Json* comps = Member(server, "Components");
    if (comps != nullptr && comps->is_array() && !comps->empty()) {
      for (const auto& comp : *comps) {
        out += " " + GetString(comp, "Name") + ":\n";
        Line(&out, 2, "Version", GetString(comp, "Version"));
        const Json* details = Member(comp, "Details");
        if (details && details->is_object()) {
          for (auto it = details->begin(); it != details->end(); ++it) {
            std::string k = it.key();
            if (k == "ApiVersion") {
              Line(&out, 2, "API version",
                   GoPrint(*it) + " (minimum version " + GetString(*details, "MinAPIVersion") + ")");
            } else if (k == "MinAPIVersion") {
              continue;
            } else {
              Line(&out, 2, k, GoPrint(*it));
            }
          }
        }
      }
    } else {
      out += " Engine:\n";
      Line(&out, 2, "Version", GetString(server, "Version"));
      Line(&out, 2, "API version",
           GetString(server, "ApiVersion") + " (minimum version " +
               GetString(server, "MinAPIVersion") + ")");
      Line(&out, 2, "OS/Arch", GetString(server, "Os") + "/" + GetString(server, "Arch"));
    }
  }
  fputs(out.c_str(), stdout);
  if (!have_server) return Fail(server_error);
  return Ok();
}

Result<void> Info(Context& ctx, const std::string& format) {
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  MOAT_ASSIGN_OR_RETURN(Json info, c->CallJson("GET", "/info"));
  if (!format.empty()) return RenderTemplate(format, info);
  std::string out = "Client:\n";
  InfoLine(&out, 1, "Version", MOAT_VERSION);
  InfoLine(&out, 1, "Context", "default");
  InfoLine(&out, 1, "Debug Mode", ctx.debug ? "true" : "false");
  out += "\nServer:\n";
  auto num = [&](const char* k) { return std::to_string(GetInt(info, k)); };
  InfoLine(&out, 1, "Containers", num("Containers"));
  InfoLine(&out, 2, "Running", num("ContainersRunning"));
  InfoLine(&out, 2, "Paused", num("ContainersPaused"));
  InfoLine(&out, 2, "Stopped", num("ContainersStopped"));
  InfoLine(&out, 1, "Images", num("Images"));
  InfoLine(&out, 1, "Server Version", GetString(info, "ServerVersion"));
  InfoLine(&out, 1, "Storage Driver", GetString(info, "Driver"));
  if (const Json* ds = Member(info, "DriverStatus"); ds && ds->is_array())
    for (const auto& kv : *ds)
      if (kv.is_array() && kv.size() == 2) InfoLine(&out, 2, GoPrint(kv[0]), GoPrint(kv[1]));
  InfoLine(&out, 1, "Logging Driver", GetString(info, "LoggingDriver"));
  InfoLine(&out, 1, "Cgroup Driver", GetString(info, "CgroupDriver"));
  InfoLine(&out, 1, "Cgroup Version", GetString(info, "CgroupVersion"));
  std::vector<std::string> runtimes;
  if (const Json* r = Member(info, "Runtimes"); r && r->is_object())
    for (auto it = r->begin(); it != r->end(); ++it) runtimes.push_back(it.key());
  InfoLine(&out, 1, "Runtimes", StrJoin(runtimes, " "));
  InfoLine(&out, 1, "Default Runtime", GetString(info, "DefaultRuntime"));
  InfoLine(&out, 1, "Init Binary", GetString(info, "InitBinary"));
  auto secopts = GetStrings(info, "SecurityOptions");
  InfoLine(&out, 1, "Security Options", "");
  for (const auto& s : secopts) {
    // "name=seccomp,profile=default" -> " seccomp\n  Profile: default"
    auto parts = StrSplit(s, ',');
    for (size_t i = 0; i < parts.size(); ++i) {
      size_t eq = parts[i].find('=');
      std::string k = parts[i].substr(0, eq), v = eq == std::string::npos ? "" : parts[i].substr(eq + 1);
      if (i == 0) out += "  " + v + "\n";
      else {
        if (!k.empty()) k[0] = static_cast<char>(toupper(static_cast<unsigned char>(k[0])));
        InfoLine(&out, 3, k, v);
      }
    }
  }
  InfoLine(&out, 1, "Kernel Version", GetString(info, "KernelVersion"));
  InfoLine(&out, 1, "Operating System", GetString(info, "OperatingSystem"));
  InfoLine(&out, 1, "OSType", GetString(info, "OSType"));
  InfoLine(&out, 1, "Architecture", GetString(info, "Architecture"));
  InfoLine(&out, 1, "CPUs", num("NCPU"));
  InfoLine(&out, 1, "Total Memory", BytesSize(static_cast<double>(GetInt(info, "MemTotal"))));
  InfoLine(&out, 1, "Name", GetString(info, "Name"));
  InfoLine(&out, 1, "ID", GetString(info, "ID"));
  InfoLine(&out, 1, "Docker Root Dir", GetString(info, "DockerRootDir"));
  InfoLine(&out, 1, "Debug Mode", GetBool(info, "Debug") ? "true" : "false");
  InfoLine(&out, 1, "Experimental", GetBool(info, "ExperimentalBuild") ? "true" : "false");
  InfoLine(&out, 1, "Live Restore Enabled", GetBool(info, "LiveRestoreEnabled") ? "true" : "false");
  fputs(out.c_str(), stdout);
  for (const auto& w : GetStrings(info, "Warnings")) fprintf(stderr, "%s\n", w.c_str());
  return Ok();
}

Result<void> Events(Context& ctx, const std::string& since, const std::string& until,
                    const std::vector<std::string>& filters, const std::string& format) {
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  MOAT_ASSIGN_OR_RETURN(std::string s, ParseTimeArg(since, "--since"));
  MOAT_ASSIGN_OR_RETURN(std::string u, ParseTimeArg(until, "--until"));
  std::optional<Template> tmpl;
  if (!format.empty() && format != "json") {
    MOAT_ASSIGN_OR_RETURN(Template t, Template::Parse(format));
    tmpl = std::move(t);
  }
  std::string pending;
  auto print = [&](const Json& ev) {
    if (format == "json") {
      printf("%s\n", Dump(ev).c_str());
    } else if (tmpl) {
      printf("%s\n", tmpl->Render(ev).c_str());
    } else {
      int64_t nanos = GetInt(ev, "timeNano", GetInt(ev, "time") * 1000000000LL);
      time_t secs = static_cast<time_t>(nanos / 1000000000LL);
      struct tm tm {};
      localtime_r(&secs, &tm);
      char ts[64], tz[16];
      strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
      strftime(tz, sizeof tz, "%z", &tm);
      std::string zone = tz;
      if (zone.size() == 5) zone.insert(3, ":");
      const Json* actor = Member(ev, "Actor");
      std::string id = actor ? GetString(*actor, "ID") : GetString(ev, "id");
      std::vector<std::string> attrs;
      if (actor)
        if (const Json* a = Member(*actor, "Attributes"); a && a->is_object())
          for (auto it = a->begin(); it != a->end(); ++it)
            attrs.push_back(it.key() + "=" + GoPrint(*it));
      std::sort(attrs.begin(), attrs.end());
      printf("%s.%09lld%s %s %s %s%s\n", ts, static_cast<long long>(nanos % 1000000000LL),
             zone.c_str(), GetString(ev, "Type").c_str(), GetString(ev, "Action").c_str(),
             id.c_str(), attrs.empty() ? "" : (" (" + StrJoin(attrs, ", ") + ")").c_str());
    }
    fflush(stdout);
  };
  return c->Stream("GET",
                   "/events" + Query({{"since", s}, {"until", u}, {"filters", FiltersJson(filters)}}),
                   {}, [&](std::string_view d) -> Result<void> {
                     pending.append(d);
                     size_t nl;
                     while ((nl = pending.find('\n')) != std::string::npos) {
                       std::string line = pending.substr(0, nl);
                       pending.erase(0, nl + 1);
                       if (TrimWhitespace(line).empty()) continue;
                       MOAT_ASSIGN_OR_RETURN(Json ev, ParseJson(line));
                       print(ev);
                     }
                     return Ok();
                   });
}

Result<void> SystemDf(Context& ctx, const std::string& format) {
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  MOAT_ASSIGN_OR_RETURN(Json df, c->CallJson("GET", "/system/df"));
  std::vector<Json> rows;
  auto add = [&](const char* type, const char* key, const char* size_key, const char* active_test) {
    const Json* list = Member(df, key);
    int64_t total = 0, active = 0;
    double size = 0, reclaim = 0;
    if (list && list->is_array()) {
      for (const auto& e : *list) {
        ++total;
        double s = 0;
        if (std::string(size_key) == "UsageData.Size") {
          const Json* ud = Member(e, "UsageData");
          s = ud ? GetDouble(*ud, "Size") : 0;
        } else {
          s = GetDouble(e, size_key);
        }
        bool is_active = false;
        if (std::string(active_test) == "Containers") is_active = GetInt(e, "Containers") > 0;
        else if (std::string(active_test) == "State") is_active = GetString(e, "State") == "running";
        else if (const Json* ud = Member(e, "UsageData")) is_active = GetInt(*ud, "RefCount") > 0;
        size += s;
        if (is_active) ++active;
        else reclaim += s;
      }
    }
    Json r;
    r["Type"] = type;
    r["TotalCount"] = std::to_string(total);
    r["Active"] = std::to_string(active);
    r["Size"] = HumanSize(size);
    r["Reclaimable"] = size > 0 ? StrFormat("%s (%d%%)", HumanSize(reclaim).c_str(),
                                            static_cast<int>(reclaim * 100 / size))
                                : HumanSize(reclaim);
    rows.push_back(r);
  };
  add("Images", "Images", "Size", "Containers");
  add("Containers", "Containers", "SizeRw", "State");
  add("Local Volumes", "Volumes", "UsageData.Size", "RefCount");
  Json headers;
  headers["Type"] = "TYPE";
  headers["TotalCount"] = "TOTAL";
  headers["Active"] = "ACTIVE";
  headers["Size"] = "SIZE";
  headers["Reclaimable"] = "RECLAIMABLE";
  return PrintFormatted(format,
                        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
                        headers, rows);
}

Result<void> SystemPrune(Context& ctx, bool all, bool volumes, bool force) {
  std::string warning =
      "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at "
      "least one container\n";
  if (volumes) warning += "  - all anonymous volumes not used by at least one container\n";
  warning += all ? "  - all images without at least one container associated to them\n"
                 : "  - all dangling images\n";
  if (!force && !Confirm(warning.c_str())) return Ok();
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  int64_t reclaimed = 0;
  auto report = [&](const Json& r, const char* key, const char* title) {
    auto ids = GetStrings(r, key);
    if (!ids.empty()) {
      printf("%s:\n", title);
      for (const auto& id : ids) printf("%s\n", id.c_str());
      printf("\n");
    }
    reclaimed += GetInt(r, "SpaceReclaimed");
  };
  MOAT_ASSIGN_OR_RETURN(Json cr, c->CallJson("POST", "/containers/prune"));
  report(cr, "ContainersDeleted", "Deleted Containers");
  auto nr = c->CallJson("POST", "/networks/prune");
  if (nr.has_value()) report(*nr, "NetworksDeleted", "Deleted Networks");
  if (volumes) {
    MOAT_ASSIGN_OR_RETURN(Json vr, c->CallJson("POST", "/volumes/prune"));
    report(vr, "VolumesDeleted", "Deleted Volumes");
  }
  std::string filt = all ? R"({"dangling":{"false":true}})" : R"({"dangling":{"true":true}})";
  MOAT_ASSIGN_OR_RETURN(Json ir, c->CallJson("POST", "/images/prune" + Query({{"filters", filt}})));
  if (const Json* del = Member(ir, "ImagesDeleted"); del && del->is_array() && !del->empty()) {
    printf("Deleted Images:\n");
    for (const auto& d : *del) {
      if (!GetString(d, "Untagged").empty()) printf("untagged: %s\n", GetString(d, "Untagged").c_str());
      if (!GetString(d, "Deleted").empty()) printf("deleted: %s\n", GetString(d, "Deleted").c_str());
    }
    printf("\n");
  }
  reclaimed += GetInt(ir, "SpaceReclaimed");
  printf("Total reclaimed space: %s\n", HumanSize(static_cast<double>(reclaimed)).c_str());
  return Ok();
}

}  // namespace

void AddSystemCommands(CLI::App& app, Context& ctx, int* exit_code) {
  {
    auto* cmd = app.add_subcommand("version", "Show the moat version information");
    auto format = std::make_shared<std::string>();
    cmd->add_option("-f,--format", *format, "Go template or json");
    cmd->callback([&ctx, exit_code, format] { *exit_code = ExitStatus(Version(ctx, *format)); });
  }
  auto add_info = [&](CLI::App* parent) {
    auto* cmd = parent->add_subcommand("info", "Display system-wide information");
    auto format = std::make_shared<std::string>();
    cmd->add_option("-f,--format", *format, "Go template or json");
    cmd->callback([&ctx, exit_code, format] { *exit_code = ExitStatus(Info(ctx, *format)); });
  };
  add_info(&app);
  auto add_events = [&](CLI::App* parent) {
    auto* cmd = parent->add_subcommand("events", "Get real time events from the server");
    struct Opts {
      std::string since, until, format;
      std::vector<std::string> filters;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("--since", o->since, "show events since timestamp or duration (10m)");
    cmd->add_option("--until", o->until, "stream events until this timestamp");
    cmd->add_option("-f,--filter", o->filters, "filter output (type=container, event=start, ...)")->allow_extra_args(false);
    cmd->add_option("--format", o->format, "Go template or json");
    cmd->callback([&ctx, exit_code, o] {
      *exit_code = ExitStatus(Events(ctx, o->since, o->until, o->filters, o->format));
    });
  };
  add_events(&app);
  auto* system = app.add_subcommand("system", "Manage moat");
  system->require_subcommand(1);
  add_info(system);
  add_events(system);
  {
    auto* cmd = system->add_subcommand("df", "Show disk usage");
    auto format = std::make_shared<std::string>();
    cmd->add_option("--format", *format, "Go template or json");
    cmd->callback([&ctx, exit_code, format] { *exit_code = ExitStatus(SystemDf(ctx, *format)); });
  }
  {
    auto* cmd = system->add_subcommand("prune", "Remove unused data");
    struct Opts {
      bool all = false, volumes = false, force = false;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_flag("-a,--all", o->all, "remove all unused images, not just dangling ones");
    cmd->add_flag("--volumes", o->volumes, "prune anonymous volumes");
    cmd->add_flag("-f,--force", o->force, "do not prompt for confirmation");
    cmd->callback([&ctx, exit_code, o] {
      *exit_code = ExitStatus(SystemPrune(ctx, o->all, o->volumes, o->force));
    });
  }
}

}  // namespace moat::cli
