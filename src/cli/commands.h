#pragma once

// The moat CLI's command registry: one AddXxxCommands per command group (cmd_*.cc), each
// registering CLI11 subcommands whose callbacks store the process exit status in
// `*exit_code`. Everything runs on the main thread.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "cli/api_client.h"
#include "cli/json.h"

namespace moat::cli {

// State shared by all commands, built in main().
class Context {
 public:
  std::string host_flag;  // -H
  bool debug = false;

  // The connected, version-negotiated client (created on first use).
  Result<ApiClient*> Client();

 private:
  std::unique_ptr<ApiClient> client_;
};

// Prints `error` the way the docker CLI does (daemon errors verbatim, local errors as
// given) and returns `code`.
int ReportError(const Error& error, int code = 1);
// Exit status of a command body: 0, or the error reported with status 1.
int ExitStatus(const Result<void>& r);

// Table/JSON/template output shared by ps, images, volume ls, ...: `format` is "" (use
// `default_format`), "json", "table", "table TEMPLATE" or "TEMPLATE". `headers` maps field
// names to column titles. Prints to stdout.
Result<void> PrintFormatted(const std::string& format, const std::string& default_format,
                            const Json& headers, const std::vector<Json>& rows);

// URL query escaping of one component.
std::string QueryEscape(std::string_view s);
// "?a=1&b=2" from pairs with empty values skipped; "" when all are empty.
std::string Query(const std::vector<std::pair<std::string, std::string>>& params);
// The `filters` query value for repeated --filter k=v flags: {"k":{"v":true}}.
std::string FiltersJson(const std::vector<std::string>& filters);

// A --since/--until value: unix seconds (fraction allowed) as given, RFC 3339, or a Go
// duration ("10m", "1h30m") before now. Returns the unix-seconds string; "" for "".
Result<std::string> ParseTimeArg(const std::string& s, const char* flag);
// Prints `warning` and asks "Are you sure you want to continue? [y/N]" on stderr; reads stdin.
bool Confirm(const char* warning);

// Registries (cmd_registry.cc). Credentials live in CredentialsPath() ($MOAT_CONFIG/config.json,
// else ~/.moat/config.json; Docker's format: {"auths":{"localhost:5000":{"auth":"<b64 u:p>"}}}).
std::string CredentialsPath();
// "https://index.docker.io/v1/" for Docker Hub (any spelling), else the host[:port] of `server`.
std::string RegistryKey(const std::string& server);
// The registry key of an image name ("localhost:5000/x" -> "localhost:5000", "busybox" -> Hub).
std::string RegistryOfImage(const std::string& image);
// The X-Registry-Auth header value for `registry`: stored credentials, or "{}" encoded.
std::string RegistryAuthHeader(const std::string& registry);
// POST /images/create?fromImage=... with the stored credentials, progress rendered on `out`
// (per-layer bars on a terminal). `platform` may be empty.
Result<void> PullImage(ApiClient* c, const std::string& image, const std::string& platform,
                       bool quiet, FILE* out);

void AddSystemCommands(CLI::App& app, Context& ctx, int* exit_code);
void AddImageCommands(CLI::App& app, Context& ctx, int* exit_code);
void AddRunCommands(CLI::App& app, Context& ctx, int* exit_code);
void AddContainerCommands(CLI::App& app, Context& ctx, int* exit_code);
void AddVolumeCommands(CLI::App& app, Context& ctx, int* exit_code);
void AddNetworkCommands(CLI::App& app, Context& ctx, int* exit_code);
// pull, push, login, logout (call after AddImageCommands: pull/push are added under `image` too).
void AddRegistryCommands(CLI::App& app, Context& ctx, int* exit_code);

}  // namespace moat::cli
