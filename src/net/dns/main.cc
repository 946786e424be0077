// moat-dns: the embedded DNS resolver (see protocol.h). Usage:
//   moat-dns --root EMPTY_DIR [--debug]     with the control channel on fd 3
// Started by moatd's core (as root) through dns::Resolver; it confines itself before reading
// anything from the channel.

#include <sys/socket.h>

#include <cstring>
#include <string>

#include "base/log.h"
#include "net/dns/protocol.h"
#include "net/dns/sandbox.h"
#include "net/dns/server.h"

namespace {

int Usage() {
  MOAT_LOG(kError, "usage: moat-dns --root EMPTY_DIR [--debug] (control channel on fd 3)");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace moat;
  std::string root;
  log::Options log_options;
  log_options.min_level = log::Level::kWarning;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--root") == 0 && i + 1 < argc) {
      root = argv[++i];
    } else if (strcmp(argv[i], "--debug") == 0) {
      log_options.min_level = log::Level::kDebug;
    } else {
      log::Configure(log_options);
      return Usage();
    }
  }
  log::Configure(log_options);
  if (root.empty()) return Usage();
  int type = 0;
  socklen_t len = sizeof type;
  if (getsockopt(net::dns::kControlFd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 ||
      type != SOCK_SEQPACKET) {
    MOAT_LOG(kError, "moat-dns: fd %d is not a SOCK_SEQPACKET socket", net::dns::kControlFd);
    return 2;
  }
  UniqueFd control(net::dns::kControlFd);
  auto plan = net::dns::PlanSandbox(root);
  if (!plan) {
    MOAT_LOG(kError, "moat-dns: %s", plan.error().message.c_str());
    return 1;
  }
  if (auto r = net::dns::EnterSandbox(*plan); !r) {
    MOAT_LOG(kError, "moat-dns: sandbox: %s", r.error().message.c_str());
    return 1;
  }
  auto server = net::dns::Server::Create(std::move(control));
  if (!server) {
    MOAT_LOG(kError, "moat-dns: %s", server.error().message.c_str());
    return 1;
  }
  if (auto r = (*server)->Run(); !r) {
    MOAT_LOG(kError, "moat-dns: %s", r.error().message.c_str());
    return 1;
  }
  return 0;
}
