// pull, push, login, logout: images from and to registries, credentials kept client-side as
// the docker CLI keeps them (a config.json with "auths", mode 0600, written atomically).

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>

#include "base/base64.h"
#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/tty.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/progress.h"

namespace moat::cli {

// ---- credentials ---------------------------------------------------------------------------

namespace {

constexpr char kDockerIndex[] = "https://index.docker.io/v1/";

std::string HomeDir() {
  if (const char* h = getenv("HOME"); h && *h) return h;
  if (struct passwd* pw = getpwuid(getuid())) return pw->pw_dir;
  return "/";
}

}  // namespace

std::string CredentialsPath() {
  if (const char* dir = getenv("MOAT_CONFIG"); dir && *dir) return std::string(dir) + "/config.json";
  return HomeDir() + "/.moat/config.json";
}

std::string RegistryKey(const std::string& server) {
  std::string s = server;
  for (const char* scheme : {"https://", "http://"}) {
    if (StartsWith(s, scheme)) s = s.substr(strlen(scheme));
  }
  while (!s.empty() && s.back() == '/') s.pop_back();
  if (size_t slash = s.find('/'); slash != std::string::npos) s.resize(slash);
  if (s.empty() || s == "docker.io" || s == "index.docker.io" || s == "registry-1.docker.io")
    return kDockerIndex;
  return s;
}

std::string RegistryOfImage(const std::string& image) {
  size_t slash = image.find('/');
  if (slash == std::string::npos) return kDockerIndex;
  std::string first = image.substr(0, slash);
  if (first.find('.') == std::string::npos && first.find(':') == std::string::npos &&
      first != "localhost")
    return kDockerIndex;
  return RegistryKey(first);
}

namespace {

Result<Json> ReadCredentialFile() {
  auto text = sys::ReadFile(CredentialsPath());
  if (!text) {
    if (text.error().sys_errno == ENOENT) return Json::object();
    return Fail(std::move(text).error());
  }
  MOAT_ASSIGN_OR_RETURN(Json j, ParseJson(*text));
  if (!j.is_object())
    return Fail(ErrorKind::kInvalidArgument, "%s: not a JSON object", CredentialsPath().c_str());
  return j;
}

Result<void> WriteCredentialFile(const Json& j) {
  std::string path = CredentialsPath();
  MOAT_TRY(sys::MkdirAll(path.substr(0, path.rfind('/')), 0700));
  return sys::WriteFileAtomic(path, j.dump(1, '\t') + "\n", 0600);
}

}  // namespace

// X-Registry-Auth for `registry`: the stored credentials, or "{}" (anonymous).
std::string RegistryAuthHeader(const std::string& registry) {
  Json out = Json::object();
  auto j = ReadCredentialFile();
  if (j) {
    const Json* auths = Member(*j, "auths");
    const Json* entry = auths ? Member(*auths, RegistryKey(registry)) : nullptr;
    if (entry) {
      std::string auth = GetString(*entry, "auth");
      if (auto plain = Base64Decode(auth); plain && plain->find(':') != std::string::npos) {
        size_t colon = plain->find(':');
        out["username"] = plain->substr(0, colon);
        out["password"] = plain->substr(colon + 1);
      }
      std::string token = GetString(*entry, "identitytoken");
      if (!token.empty()) out["identitytoken"] = token;
      out["serveraddress"] = RegistryKey(registry);
    }
  }
  return Base64Encode(out.dump(), Base64Alphabet::kUrl);
}

// ---- commands ---------------------------------------------------------------------------------

Result<void> PullImage(ApiClient* c, const std::string& image, const std::string& platform,
                       bool quiet, FILE* out) {
  std::string repo = image, tag;
  size_t at = image.find('@');
  size_t colon = image.rfind(':');
  if (at != std::string::npos) {
    repo = image.substr(0, at);
    tag = image.substr(at + 1);
  } else if (colon != std::string::npos && image.find('/', colon) == std::string::npos) {
    repo = image.substr(0, colon);
    tag = image.substr(colon + 1);
  } else {
    tag = "latest";
  }
  ProgressDisplay display(out, quiet);
  MOAT_TRY(c->Stream("POST",
                     "/images/create" + Query({{"fromImage", repo}, {"tag", tag}, {"platform", platform}}),
                     {}, [&](std::string_view d) { return display.Feed(d); },
                     {{"X-Registry-Auth", RegistryAuthHeader(RegistryOfImage(repo))}}));
  MOAT_TRY(display.Finish());
  if (quiet) fprintf(out, "%s\n", image.find('@') != std::string::npos || image.find(':') != std::string::npos
                                      ? image.c_str()
                                      : (image + ":latest").c_str());
  return Ok();
}

namespace {

struct PullOpts {
  std::string image, platform;
  bool quiet = false;
};

struct PushOpts {
  std::string image;
  bool quiet = false;
};

Result<void> Push(Context& ctx, const PushOpts& o) {
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  std::string repo = o.image, tag;
  size_t colon = o.image.rfind(':');
  if (colon != std::string::npos && o.image.find('/', colon) == std::string::npos) {
    repo = o.image.substr(0, colon);
    tag = o.image.substr(colon + 1);
  }
  if (o.image.find('@') != std::string::npos)
    return Fail(ErrorKind::kInvalidArgument, "push %s: a digest cannot be pushed; push a tag", o.image.c_str());
  if (tag.empty()) tag = "latest";
  ProgressDisplay display(stdout, o.quiet);
  MOAT_TRY(c->Stream("POST", "/images/" + repo + "/push" + Query({{"tag", tag}}), {},
                     [&](std::string_view d) { return display.Feed(d); },
                     {{"X-Registry-Auth", RegistryAuthHeader(RegistryOfImage(repo))}}));
  MOAT_TRY(display.Finish());
  if (o.quiet) printf("%s:%s\n", repo.c_str(), tag.c_str());
  else if (!display.digest().empty()) printf("%s: digest: %s\n", tag.c_str(), display.digest().c_str());
  return Ok();
}

struct LoginOpts {
  std::string server, username, password;
  bool password_stdin = false;
};

std::string ReadLineNoEcho(const char* prompt, bool echo) {
  fprintf(stderr, "%s", prompt);
  fflush(stderr);
  struct termios saved;
  bool restore = false;
  if (!echo && tcgetattr(0, &saved) == 0) {
    struct termios t = saved;
    t.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    restore = tcsetattr(0, TCSANOW, &t) == 0;
  }
  std::string line;
  std::getline(std::cin, line);
  if (restore) {
    tcsetattr(0, TCSANOW, &saved);
    fprintf(stderr, "\n");
  }
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
  return line;
}

Result<void> Login(Context& ctx, LoginOpts o) {
  std::string key = RegistryKey(o.server);
  if (o.password_stdin) {
    if (o.username.empty())
      return Fail(ErrorKind::kInvalidArgument, "Must provide --username with --password-stdin");
    if (!o.password.empty())
      return Fail(ErrorKind::kInvalidArgument, "--password and --password-stdin are mutually exclusive");
    std::string all((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    while (!all.empty() && (all.back() == '\n' || all.back() == '\r')) all.pop_back();
    o.password = all;
  } else if (!o.password.empty()) {
    fprintf(stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n");
  }
  if (o.username.empty()) {
    if (!sys::IsTerminal(0))
      return Fail(ErrorKind::kInvalidArgument, "Cannot perform an interactive login from a non TTY device");
    o.username = ReadLineNoEcho("Username: ", true);
  }
  if (o.password.empty()) {
    if (!sys::IsTerminal(0))
      return Fail(ErrorKind::kInvalidArgument, "Cannot perform an interactive login from a non TTY device");
    o.password = ReadLineNoEcho("Password: ", false);
  }
  if (o.username.empty()) return Fail(ErrorKind::kInvalidArgument, "Error: Non-null Username Required");
  if (o.password.empty()) return Fail(ErrorKind::kInvalidArgument, "Error: Non-null Password Required");
  MOAT_ASSIGN_OR_RETURN(ApiClient * c, ctx.Client());
  Json body = {{"username", o.username}, {"password", o.password}, {"serveraddress", key}};
  MOAT_ASSIGN_OR_RETURN(Json reply, c->CallJson("POST", "/auth", &body));
  MOAT_ASSIGN_OR_RETURN(Json file, ReadCredentialFile());
  if (!file.contains("auths") || !file["auths"].is_object()) file["auths"] = Json::object();
  Json entry = {{"auth", Base64Encode(o.username + ":" + o.password)}};
  std::string token = GetString(reply, "IdentityToken");
  if (!token.empty()) entry["identitytoken"] = token;
  file["auths"][key] = entry;
  MOAT_TRY(WriteCredentialFile(file));
  printf("%s\n", GetString(reply, "Status").empty() ? "Login Succeeded" : GetString(reply, "Status").c_str());
  return Ok();
}

Result<void> Logout(const std::string& server) {
  std::string key = RegistryKey(server);
  MOAT_ASSIGN_OR_RETURN(Json file, ReadCredentialFile());
  if (!file.contains("auths") || !file["auths"].is_object() || !file["auths"].contains(key)) {
    printf("Not logged in to %s\n", key.c_str());
    return Ok();
  }
  file["auths"].erase(key);
  MOAT_TRY(WriteCredentialFile(file));
  printf("Removing login credentials for %s\n", key.c_str());
  return Ok();
}

void AddPull(CLI::App* parent, Context& ctx, int* exit_code) {
  auto* cmd = parent->add_subcommand("pull", "Download an image from a registry");
  auto o = std::make_shared<PullOpts>();
  cmd->add_option("image", o->image, "NAME[:TAG|@DIGEST]")->required();
  cmd->add_option("--platform", o->platform, "os[/arch[/variant]] (default: the host's)");
  cmd->add_flag("-q,--quiet", o->quiet, "only print the image name");
  cmd->callback([&ctx, exit_code, o] {
    auto c = ctx.Client();
    if (!c) {
      *exit_code = ExitStatus(Fail(std::move(c).error()));
      return;
    }
    *exit_code = ExitStatus(PullImage(*c, o->image, o->platform, o->quiet, stdout));
  });
}

void AddPush(CLI::App* parent, Context& ctx, int* exit_code) {
  auto* cmd = parent->add_subcommand("push", "Upload an image to a registry");
  auto o = std::make_shared<PushOpts>();
  cmd->add_option("image", o->image, "NAME[:TAG]")->required();
  cmd->add_flag("-q,--quiet", o->quiet, "suppress the progress output");
  cmd->callback([&ctx, exit_code, o] { *exit_code = ExitStatus(Push(ctx, *o)); });
}

}  // namespace

void AddRegistryCommands(CLI::App& app, Context& ctx, int* exit_code) {
  AddPull(&app, ctx, exit_code);
  AddPush(&app, ctx, exit_code);
  if (CLI::App* image = app.get_subcommand_ptr("image").get()) {
    AddPull(image, ctx, exit_code);
    AddPush(image, ctx, exit_code);
  }
  {
    auto* cmd = app.add_subcommand("login", "Log in to a registry (credentials kept in ~/.moat/config.json, mode 0600)");
    auto o = std::make_shared<LoginOpts>();
    cmd->add_option("server", o->server, "registry (default: Docker Hub)");
    cmd->add_option("-u,--username", o->username, "user name");
    cmd->add_option("-p,--password", o->password, "password (prefer --password-stdin)");
    cmd->add_flag("--password-stdin", o->password_stdin, "read the password from stdin");
    cmd->callback([&ctx, exit_code, o] { *exit_code = ExitStatus(Login(ctx, *o)); });
  }
  {
    auto* cmd = app.add_subcommand("logout", "Remove the stored credentials of a registry");
    auto server = std::make_shared<std::string>();
    cmd->add_option("server", *server, "registry (default: Docker Hub)");
    cmd->callback([exit_code, server] { *exit_code = ExitStatus(Logout(*server)); });
  }
}

}  // namespace moat::cli
