// moat: the everyday command line client of moatd's Engine API (docker-compatible).

#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "base/log.h"
#include "base/strings.h"
#include "base/sys/fdio.h"
#include "cli/commands.h"
#include "cli/format.h"

namespace moat::cli {
namespace {

int Main(int argc, char** argv) {
  // Writes to a socket the daemon closed must fail with EPIPE, not kill the client: the
  // daemon's answer is still read and reported. Blocked (single-threaded) rather than ignored.
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  (void)sys::sigprocmask(SIG_BLOCK, pipe_set, nullptr);

  Context ctx;
  CLI::App app{"moat: a client for the moatd container engine (Docker Engine API)", "moat"};
  app.require_subcommand(0, 1);
  app.set_version_flag("-v,--version", "moat version " MOAT_VERSION);
  app.add_option("-H,--host", ctx.host_flag,
                 "daemon socket (unix:///path, or tcp://host:port over TLS; default $MOAT_HOST, "
                 "unix:// $DOCKER_HOST (tcp:// with $DOCKER_TLS_VERIFY), unix:///run/moat/moat.sock)");
  // TLS for tcp:// daemons. TLS is always used and the daemon always verified there; the
  // files default to ca.pem/cert.pem/key.pem in $DOCKER_CERT_PATH or ~/.docker.
  bool tls = false, tlsverify = false;
  ClientTls tls_files;
  app.add_flag("--tls", tls, "use TLS (always on for tcp://; accepted for docker compatibility)");
  app.add_flag("--tlsverify", tlsverify, "use TLS and verify the daemon (always on for tcp://)");
  app.add_option("--tlscacert", tls_files.ca, "CA that signed the daemon's certificate (PEM)");
  app.add_option("--tlscert", tls_files.cert, "client certificate (PEM)");
  app.add_option("--tlskey", tls_files.key, "client private key (PEM)");
  app.add_flag("-D,--debug", ctx.debug, "debug output on stderr");
  int exit_code = 0;
  AddSystemCommands(app, ctx, &exit_code);
  AddImageCommands(app, ctx, &exit_code);
  AddRunCommands(app, ctx, &exit_code);
  AddContainerCommands(app, ctx, &exit_code);
  AddVolumeCommands(app, ctx, &exit_code);
  AddNetworkCommands(app, ctx, &exit_code);
  AddRegistryCommands(app, ctx, &exit_code);
  app.parse_complete_callback([&] {
    log::Options lo;
    lo.min_level = ctx.debug ? log::Level::kDebug : log::Level::kWarning;
    log::Configure(lo);
    // The TLS flags reach ApiClient through the environment it reads (ResolveTls), as
    // DOCKER_CERT_PATH does. DOCKER_TLS_VERIFY makes a tcp:// $DOCKER_HOST acceptable to
    // ResolveHost once Context::Client passes it. TODO(#3): pass them through Context instead.
    if (!tls_files.ca.empty()) setenv("MOAT_TLSCACERT", tls_files.ca.c_str(), 1);
    if (!tls_files.cert.empty()) setenv("MOAT_TLSCERT", tls_files.cert.c_str(), 1);
    if (!tls_files.key.empty()) setenv("MOAT_TLSKEY", tls_files.key.c_str(), 1);
    if (tlsverify) setenv("DOCKER_TLS_VERIFY", "1", 1);
    (void)tls;
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string sub;
    for (CLI::App* a = &app; a && !a->get_subcommands().empty();) {
      a = a->get_subcommands().front();
      sub += " " + a->get_name();
    }
    fprintf(stderr, "moat: %s\nSee 'moat%s --help'.\n", e.what(), sub.c_str());
    return 125;
  }
  if (app.get_subcommands().empty()) {
    fprintf(stdout, "%s", app.help().c_str());
    return 0;
  }
  return exit_code;
}

}  // namespace
}  // namespace moat::cli

int main(int argc, char** argv) {
  // The last-resort guard (STYLE 4): CLI11 and allocation may throw.
  try {
    return moat::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    fprintf(stderr, "moat: internal error: %s\n", e.what());
    return 1;
  }
}
