// network create, ls, inspect, rm, connect, disconnect, prune: docker's `network` commands
// on the Engine API /networks endpoints. Bodies come from network_opts.h.

#include <algorithm>
#include <cstdio>

#include "base/strings.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/network_opts.h"

namespace moat::cli {
namespace {

// One value per flag occurrence, repeatable (docker's StringSlice flags).
template <typename T>
CLI::Option* Multi(CLI::App* cmd, const char* name, T& target, const char* help) {
  return cmd->add_option(name, target, help)->allow_extra_args(false);
}

std::string NetworkPath(const std::string& name) { return "/networks/" + name; }

void AddCreate(CLI::App* network, Context& ctx, int* exit_code) {
  auto* cmd = network->add_subcommand("create", "Create a network");
  struct Opts {
    NetworkCreateFlags flags;
    std::string name;
  };
  auto o = std::make_shared<Opts>();
  NetworkCreateFlags& f = o->flags;
  cmd->add_option("-d,--driver", f.driver, "driver to manage the network");
  Multi(cmd, "-o,--opt", f.opts, "set driver specific options");
  Multi(cmd, "--label", f.labels, "set metadata on a network");
  Multi(cmd, "--subnet", f.subnets, "subnet in CIDR format that represents a network segment");
  Multi(cmd, "--gateway", f.gateways, "IPv4 or IPv6 gateway for the master subnet");
  Multi(cmd, "--ip-range", f.ip_ranges, "allocate container ip from a sub-range");
  Multi(cmd, "--aux-address", f.aux_addresses,
        "auxiliary IPv4 or IPv6 addresses used by network driver");
  cmd->add_option("--ipam-driver", f.ipam_driver, "IP address management driver");
  Multi(cmd, "--ipam-opt", f.ipam_opts, "set IPAM driver specific options");
  cmd->add_option("--scope", f.scope, "control the network's scope");
  cmd->add_flag("--internal", f.internal, "restrict external access to the network");
  cmd->add_flag("--attachable", f.attachable, "enable manual container attachment");
  cmd->add_flag("--ipv6", f.ipv6, "enable IPv6 networking");
  cmd->add_option("name", o->name, "NETWORK")->required();
  cmd->callback([&ctx, exit_code, o] {
    auto run = [&]() -> Result<void> {
      MOAT_ASSIGN_OR_RETURN(Json body, BuildNetworkCreateBody(o->name, o->flags));
      MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
      MOAT_ASSIGN_OR_RETURN(Json r, c->CallJson("POST", "/networks/create", &body));
      printf("%s\n", GetString(r, "Id").c_str());
      return Ok();
    };
    *exit_code = ExitStatus(run());
  });
}

void AddList(CLI::App* network, Context& ctx, int* exit_code) {
  auto* cmd = network->add_subcommand("ls", "List networks");
  cmd->alias("list");
  struct Opts {
    bool quiet = false, no_trunc = false;
    std::vector<std::string> filters;
    std::string format;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_flag("-q,--quiet", o->quiet, "only display network IDs");
  cmd->add_flag("--no-trunc", o->no_trunc, "do not truncate the output");
  Multi(cmd, "-f,--filter", o->filters, "provide filter values (e.g. driver=bridge)");
  cmd->add_option("--format", o->format, "table, json or a Go template");
  cmd->callback([&ctx, exit_code, o] {
    auto run = [&]() -> Result<void> {
      MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
      MOAT_ASSIGN_OR_RETURN(
          Json r, c->CallJson("GET", "/networks" + Query({{"filters", FiltersJson(o->filters)}})));
      std::vector<Json> nets;
      if (r.is_array()) nets.assign(r.begin(), r.end());
      // docker lists networks in natural name order.
      std::stable_sort(nets.begin(), nets.end(), [](const Json& a, const Json& b) {
        return NaturalLess(GetString(a, "Name"), GetString(b, "Name"));
      });
      std::vector<Json> rows;
      for (const auto& n : nets) rows.push_back(NetworkListRow(n, o->no_trunc));
      Json headers;
      headers["ID"] = "NETWORK ID";
      headers["CreatedAt"] = "CREATED AT";
      headers["IPv6"] = "IPV6";
      std::string format = o->quiet ? "{{.ID}}" : o->format;
      return PrintFormatted(format, "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", headers,
                            rows);
    };
    *exit_code = ExitStatus(run());
  });
}

void AddInspect(CLI::App* network, Context& ctx, int* exit_code) {
  auto* cmd =
      network->add_subcommand("inspect", "Display detailed information on one or more networks");
  struct Opts {
    std::string format;
    bool verbose = false;
    std::vector<std::string> names;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("-f,--format", o->format, "format output using a Go template or json");
  cmd->add_flag("-v,--verbose", o->verbose, "verbose output for diagnostics");
  cmd->add_option("network", o->names, "NETWORK [NETWORK...]")->required();
  cmd->callback([&ctx, exit_code, o] {
    std::optional<Template> tmpl;
    if (!o->format.empty() && o->format != "json") {
      auto t = Template::Parse(o->format);
      // docker: a bad template is a usage error (status 64).
      if (!t.has_value()) {
        *exit_code = ReportError(t.error(), 64);
        return;
      }
      tmpl = std::move(*t);
    }
    auto client = ctx.Client();
    if (!client.has_value()) {
      *exit_code = ReportError(client.error());
      return;
    }
    // As docker's inspect: everything found is printed first, then one line per failure.
    std::vector<std::string> errors;
    Json all = Json::array();
    for (const auto& n : o->names) {
      auto r = (*client)->CallJson("GET",
                                   NetworkPath(n) + Query({{"verbose", o->verbose ? "true" : ""}}));
      if (!r.has_value()) {
        errors.push_back(r.error().kind == ErrorKind::kNotFound ? "Error: No such network: " + n
                                                                : r.error().message);
        continue;
      }
      if (tmpl)
        printf("%s\n", tmpl->Render(*r).c_str());
      else
        all.push_back(*r);
    }
    if (!tmpl) printf("%s\n", Dump(all, 4).c_str());
    for (const auto& e : errors) fprintf(stderr, "%s\n", e.c_str());
    *exit_code = errors.empty() ? 0 : 1;
  });
}

void AddRemove(CLI::App* network, Context& ctx, int* exit_code) {
  auto* cmd = network->add_subcommand("rm", "Remove one or more networks");
  cmd->alias("remove");
  struct Opts {
    bool force = false;
    std::vector<std::string> names;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_flag("-f,--force", o->force, "do not error if the network does not exist");
  cmd->add_option("network", o->names, "NETWORK [NETWORK...]")->required();
  cmd->callback([&ctx, exit_code, o] {
    auto client = ctx.Client();
    if (!client.has_value()) {
      *exit_code = ReportError(client.error());
      return;
    }
    int status = 0;
    for (const auto& n : o->names) {
      auto r = (*client)->CallOk("DELETE", NetworkPath(n));
      if (r.has_value()) {
        printf("%s\n", n.c_str());
      } else if (!(o->force && r.error().kind == ErrorKind::kNotFound)) {
        status = ReportError(r.error());
      }
    }
    *exit_code = status;
  });
}

void AddConnect(CLI::App* network, Context& ctx, int* exit_code) {
  auto* cmd = network->add_subcommand("connect", "Connect a container to a network");
  struct Opts {
    NetworkConnectFlags flags;
    std::vector<std::string> args;
  };
  auto o = std::make_shared<Opts>();
  NetworkConnectFlags& f = o->flags;
  Multi(cmd, "--alias", f.aliases, "add network-scoped alias for the container");
  cmd->add_option("--ip", f.ip, "IPv4 address (e.g., 172.30.100.104)");
  cmd->add_option("--ip6", f.ip6, "IPv6 address (e.g., 2001:db8::33)");
  Multi(cmd, "--link", f.links, "add link to another container");
  Multi(cmd, "--link-local-ip", f.link_local_ips, "add a link-local address for the container");
  Multi(cmd, "--driver-opt", f.driver_opts, "driver options for the network");
  cmd->add_option("args", o->args, "NETWORK CONTAINER")->expected(2)->required();
  cmd->callback([&ctx, exit_code, o] {
    auto run = [&]() -> Result<void> {
      MOAT_ASSIGN_OR_RETURN(Json body, BuildNetworkConnectBody(o->args[1], o->flags));
      MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
      return c->CallOk("POST", NetworkPath(o->args[0]) + "/connect", &body);
    };
    *exit_code = ExitStatus(run());
  });
}

void AddDisconnect(CLI::App* network, Context& ctx, int* exit_code) {
  auto* cmd = network->add_subcommand("disconnect", "Disconnect a container from a network");
  struct Opts {
    bool force = false;
    std::vector<std::string> args;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_flag("-f,--force", o->force, "force the container to disconnect from a network");
  cmd->add_option("args", o->args, "NETWORK CONTAINER")->expected(2)->required();
  cmd->callback([&ctx, exit_code, o] {
    auto run = [&]() -> Result<void> {
      Json body = BuildNetworkDisconnectBody(o->args[1], o->force);
      MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
      return c->CallOk("POST", NetworkPath(o->args[0]) + "/disconnect", &body);
    };
    *exit_code = ExitStatus(run());
  });
}

void AddPrune(CLI::App* network, Context& ctx, int* exit_code) {
  auto* cmd = network->add_subcommand("prune", "Remove all unused networks");
  struct Opts {
    bool force = false;
    std::vector<std::string> filters;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_flag("-f,--force", o->force, "do not prompt for confirmation");
  Multi(cmd, "--filter", o->filters, "provide filter values (e.g. until=<timestamp>)");
  cmd->callback([&ctx, exit_code, o] {
    if (!o->force &&
        !Confirm(
            "WARNING! This will remove all custom networks not used by at least one container."))
      return;
    auto run = [&]() -> Result<void> {
      MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
      MOAT_ASSIGN_OR_RETURN(
          Json r,
          c->CallJson("POST", "/networks/prune" + Query({{"filters", FiltersJson(o->filters)}})));
      auto names = GetStrings(r, "NetworksDeleted");
      // docker prints the list and then an empty line (Println of a "\n"-terminated text).
      if (!names.empty()) printf("Deleted Networks:\n%s\n\n", StrJoin(names, "\n").c_str());
      return Ok();
    };
    *exit_code = ExitStatus(run());
  });
}

}  // namespace

void AddNetworkCommands(CLI::App& app, Context& ctx, int* exit_code) {
  auto* network = app.add_subcommand("network", "Manage networks");
  network->require_subcommand(1);
  AddCreate(network, ctx, exit_code);
  AddList(network, ctx, exit_code);
  AddInspect(network, ctx, exit_code);
  AddRemove(network, ctx, exit_code);
  AddConnect(network, ctx, exit_code);
  AddDisconnect(network, ctx, exit_code);
  AddPrune(network, ctx, exit_code);
}

}  // namespace moat::cli
