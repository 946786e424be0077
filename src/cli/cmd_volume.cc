// volume create, ls, rm, inspect, prune.

#include <cstdio>

#include "cli/commands.h"
#include "cli/format.h"

namespace moat::cli {

void AddVolumeCommands(CLI::App& app, Context& ctx, int* exit_code) {
  auto* volume = app.add_subcommand("volume", "Manage volumes");
  volume->require_subcommand(1);
  {
    auto* cmd = volume->add_subcommand("create", "Create a volume");
    struct Opts {
      std::string driver = "local", name;
      std::vector<std::string> opts, labels;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("-d,--driver", o->driver, "specify volume driver name");
    cmd->add_option("-o,--opt", o->opts, "set driver specific options")->allow_extra_args(false);
    cmd->add_option("--label", o->labels, "set metadata for a volume")->allow_extra_args(false);
    cmd->add_option("name", o->name, "VOLUME");
    cmd->callback([&ctx, exit_code, o] {
      Json body;
      body["Name"] = o->name;
      body["Driver"] = o->driver;
      body["DriverOpts"] = Json::object();
      body["Labels"] = Json::object();
      for (const auto& kv : o->opts) {
        size_t eq = kv.find('=');
        body["DriverOpts"][kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
      }
      for (const auto& kv : o->labels) {
        size_t eq = kv.find('=');
        body["Labels"][kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
      }
      auto client = ctx.Client();
      if (!client.has_value()) {
        *exit_code = ReportError(client.error());
        return;
      }
      auto r = (*client)->CallJson("POST", "/volumes/create", &body);
      if (!r.has_value()) {
        *exit_code = ReportError(r.error());
        return;
      }
      printf("%s\n", GetString(*r, "Name").c_str());
      *exit_code = 0;
    });
  }
  {
    auto* cmd = volume->add_subcommand("ls", "List volumes");
    cmd->alias("list");
    struct Opts {
      bool quiet = false;
      std::vector<std::string> filters;
      std::string format;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_flag("-q,--quiet", o->quiet, "only display volume names");
    cmd->add_option("-f,--filter", o->filters, "provide filter values (e.g. dangling=true)")
        ->allow_extra_args(false);
    cmd->add_option("--format", o->format, "table, json or a Go template");
    cmd->callback([&ctx, exit_code, o] {
      auto run = [&]() -> Result<void> {
        MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
        MOAT_ASSIGN_OR_RETURN(Json r, c->CallJson("GET", "/volumes" + Query({{"filters", FiltersJson(o->filters)}})));
        std::vector<Json> rows;
        if (const Json* vols = Member(r, "Volumes"); vols && vols->is_array()) {
          for (const auto& v : *vols) {
            if (o->quiet) {
              printf("%s\n", GetString(v, "Name").c_str());
              continue;
            }
            Json row;
            row["Driver"] = GetString(v, "Driver");
            std::vector<std::string> labels;
            if (const Json* l = Member(v, "Labels"); l && l->is_object())
              for (auto it = l->begin(); it != l->end(); ++it) labels.push_back(it.key() + "=" + GoPrint(*it));
            row["Labels"] = StrJoin(labels, ",");
            row["Mountpoint"] = GetString(v, "Mountpoint");
            row["Name"] = GetString(v, "Name");
            row["Scope"] = GetString(v, "Scope", "local");
            row["Size"] = "N/A";
            rows.push_back(row);
          }
        }
        for (const auto& w : GetStrings(r, "Warnings")) fprintf(stderr, "WARNING: %s\n", w.c_str());
        if (o->quiet) return Ok();
        Json headers;
        headers["Driver"] = "DRIVER";
        headers["Name"] = "VOLUME NAME";
        return PrintFormatted(o->format, "table {{.Driver}}\t{{.Name}}", headers, rows);
      };
      *exit_code = ExitStatus(run());
    });
  }
  {
    auto* cmd = volume->add_subcommand("rm", "Remove one or more volumes");
    cmd->alias("remove");
    struct Opts {
      bool force = false;
      std::vector<std::string> names;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_flag("-f,--force", o->force, "force the removal of one or more volumes");
    cmd->add_option("volume", o->names, "VOLUME [VOLUME...]")->required();
    cmd->callback([&ctx, exit_code, o] {
      auto client = ctx.Client();
      if (!client.has_value()) {
        *exit_code = ReportError(client.error());
        return;
      }
      int status = 0;
      for (const auto& n : o->names) {
        auto r = (*client)->CallOk("DELETE", "/volumes/" + n + Query({{"force", o->force ? "1" : ""}}));
        if (!r.has_value()) status = ReportError(r.error());
        else printf("%s\n", n.c_str());
      }
      *exit_code = status;
    });
  }
  {
    auto* cmd = volume->add_subcommand("inspect", "Display detailed information on one or more volumes");
    struct Opts {
      std::string format;
      std::vector<std::string> names;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_option("-f,--format", o->format, "format output using a Go template or json");
    cmd->add_option("volume", o->names, "VOLUME [VOLUME...]")->required();
    cmd->callback([&ctx, exit_code, o] {
      auto client = ctx.Client();
      if (!client.has_value()) {
        *exit_code = ReportError(client.error());
        return;
      }
      std::optional<Template> tmpl;
      if (!o->format.empty() && o->format != "json") {
        auto t = Template::Parse(o->format);
        if (!t.has_value()) {
          *exit_code = ReportError(t.error());
          return;
        }
        tmpl = std::move(*t);
      }
      int status = 0;
      Json all = Json::array();
      for (const auto& n : o->names) {
        auto r = (*client)->CallJson("GET", "/volumes/" + n);
        if (!r.has_value()) {
          status = ReportError(r.error());
          continue;
        }
        if (tmpl) printf("%s\n", tmpl->Render(*r).c_str());
        else if (o->format == "json") printf("%s\n", Dump(*r).c_str());
        else all.push_back(*r);
      }
      if (!tmpl && o->format != "json") printf("%s\n", Dump(all, 4).c_str());
      *exit_code = status;
    });
  }
  {
    auto* cmd = volume->add_subcommand("prune", "Remove unused local volumes");
    struct Opts {
      bool force = false, all = false;
      std::vector<std::string> filters;
    };
    auto o = std::make_shared<Opts>();
    cmd->add_flag("-f,--force", o->force, "do not prompt for confirmation");
    cmd->add_flag("-a,--all", o->all, "remove all unused volumes, not just anonymous ones");
    cmd->add_option("--filter", o->filters, "provide filter values (e.g. label=<label>)")
        ->allow_extra_args(false);
    cmd->callback([&ctx, exit_code, o] {
      if (!o->force && !Confirm("WARNING! This will remove anonymous local volumes not used by at least one container."))
        return;
      auto client = ctx.Client();
      if (!client.has_value()) {
        *exit_code = ReportError(client.error());
        return;
      }
      std::vector<std::string> f = o->filters;
      // API >= 1.42 prunes only anonymous volumes unless all=true.
      if (o->all) f.push_back("all=true");
      auto r = (*client)->CallJson("POST", "/volumes/prune" + Query({{"filters", FiltersJson(f)}}));
      if (!r.has_value()) {
        *exit_code = ReportError(r.error());
        return;
      }
      auto names = GetStrings(*r, "VolumesDeleted");
      if (!names.empty()) {
        printf("Deleted Volumes:\n");
        for (const auto& n : names) printf("%s\n", n.c_str());
        printf("\n");
      }
      printf("Total reclaimed space: %s\n",
             HumanSize(static_cast<double>(GetInt(*r, "SpaceReclaimed"))).c_str());
    });
  }
}

}  // namespace moat::cli
