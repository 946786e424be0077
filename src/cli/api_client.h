#pragma once

// A synchronous client of the Engine API (Docker-compatible) on a UNIX stream socket, or over
// TCP with TLS and a client certificate (moatd serves TCP no other way). A TLS connection is
// relayed to an AF_UNIX socketpair by a thread of its own (daemon/api/tls.h), so everything
// below, hijacked streams included, works on an ordinary socket fd.
// api_client.cc is the only Boost.Beast user of the CLI. Not thread-safe: one caller thread.
// Every method returning Result fails with:
//   kUnavailable   the socket cannot be reached; the message is the user-facing
//                  "Cannot connect to the Moat daemon at ... Is moatd running?"
//   kInternal      the connection broke or the daemon spoke malformed HTTP
//   daemon errors  (CallJson/CallOk/CheckStatus) the kind follows the HTTP status (404
//                  kNotFound, 409 kConflict, 400 kInvalidArgument, 401/403 kPermissionDenied,
//                  else kInternal) and the message is "Error response from daemon: <message>".

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"
#include "cli/json.h"

namespace moat::cli {

inline constexpr const char* kDefaultHost = "unix:///run/moat/moat.sock";
// The newest API version this client speaks.
inline constexpr const char* kClientApiVersion = "1.47";

// Picks the daemon address: -H flag, else $MOAT_HOST, else $DOCKER_HOST when it is a unix://
// URI (or a tcp:// one with $DOCKER_TLS_VERIFY set), else kDefaultHost. Empty strings count as
// unset. Returns the "unix:///path" or "tcp://host:port" URI (port 2376 when none is given);
// kInvalidArgument for another scheme.
Result<std::string> ResolveHost(const std::string& flag, const char* moat_host_env,
                                const char* docker_host_env,
                                const char* docker_tls_verify_env = nullptr);

// The client's TLS files for tcp:// hosts (TLS is always used there, and the server is always
// verified: against `ca`, and its certificate must name the host).
struct ClientTls {
  std::string ca;
  std::string cert;
  std::string key;
};
// Flags over the environment: each of --tlscacert/--tlscert/--tlskey (`flags`, "" = unset),
// else $MOAT_TLSCACERT/$MOAT_TLSCERT/$MOAT_TLSKEY, else ca.pem/cert.pem/key.pem in
// $DOCKER_CERT_PATH, else in ~/.docker (as the docker CLI).
ClientTls ResolveTls(const ClientTls& flags);

// min(client, daemon) of two "1.NN" versions; the client's when `daemon` is empty or malformed
// below 1.24 is not special-cased (the daemon decides what it accepts).
std::string NegotiateVersion(std::string_view client, std::string_view daemon);

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // keys lowercased
  std::string body;

  std::string Header(const std::string& lower_name) const;
};

// The error a non-2xx response stands for (see the file comment). `body` is the daemon's
// {"message": ...} JSON or plain text.
Error DaemonError(int status, std::string_view body);

// A hijacked connection (attach, exec start): raw bytes both ways. `pending` holds output
// bytes the daemon sent right after the 101 headers, to be processed before reading `fd`.
struct Hijacked {
  UniqueFd fd;
  std::string pending;
};

// Called with successive pieces of a response body. Returning an error stops the transfer.
using BodySink = std::function<Result<void>(std::string_view)>;

// A request whose headers have come back but whose body has not (wait?condition=...).
class PendingResponse {
 public:
  virtual ~PendingResponse() = default;
  virtual int status() const = 0;
  // Blocks until the body is complete and returns it.
  virtual Result<std::string> ReadBody() = 0;
};

class ApiClient {
 public:
  // `host` is a unix:// or tcp:// URI as from ResolveHost. Connects lazily. For tcp://, the
  // TLS files are ResolveTls({}) (the environment; moat's --tls* flags set it).
  explicit ApiClient(std::string host);
  ApiClient(std::string host, ClientTls tls);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  const std::string& host() const { return host_; }
  // "1.NN" in use; kClientApiVersion before Negotiate().
  const std::string& api_version() const { return version_; }
  // The daemon's own Api-Version from the last ping ("" before).
  const std::string& daemon_api_version() const { return daemon_version_; }

  // HEAD /_ping (GET /_ping when HEAD answers other than 200/500) and version negotiation.
  Result<void> Negotiate();

  // One request on the keep-alive connection; `path` without the /v1.NN prefix
  // ("/containers/json?all=1"). Any HTTP status is a success here.
  Result<Response> Call(std::string_view method, std::string_view path,
                        std::string_view body = {},
                        std::string_view content_type = "application/json");
  // Call + status check + JSON body (null Json for an empty body).
  Result<Json> CallJson(std::string_view method, std::string_view path,
                        const Json* body = nullptr);
  // Call + status check, body ignored.
  Result<void> CallOk(std::string_view method, std::string_view path, const Json* body = nullptr);

  // A request on its own connection whose response body is passed to `sink` as it arrives
  // (chunked streams: logs -f, events, stats, save, load progress). A non-2xx status is
  // returned as the daemon error after reading the body. `headers` are sent as well
  // (X-Registry-Auth for pull/push).
  Result<void> Stream(std::string_view method, std::string_view path, std::string_view body,
                      const BodySink& sink,
                      const std::vector<std::pair<std::string, std::string>>& headers = {});
  // Sends the request body from `in_fd` (remains owned by the caller) chunked, then streams
  // the response to `sink` as Stream does. `progress` gets the byte count sent so far.
  Result<void> Upload(std::string_view method, std::string_view path, int in_fd,
                      std::string_view content_type, const BodySink& sink,
                      const std::function<void(uint64_t)>& progress);
  // Sends a request on its own connection and returns once the response headers arrived.
  Result<std::unique_ptr<PendingResponse>> Begin(std::string_view method, std::string_view path,
                                                 std::string_view body = {});
  // POST with "Connection: Upgrade, Upgrade: tcp"; requires 101 (or 200 from old daemons).
  Result<Hijacked> Hijack(std::string_view path, std::string_view body = {});

 private:
  struct Impl;
  std::string VersionedPath(std::string_view path) const;

  std::string host_;
  std::string socket_path_;  // unix://
  std::string tcp_host_;     // tcp:// host (no brackets) and port
  std::string tcp_port_;
  ClientTls tls_;
  std::string version_ = kClientApiVersion;
  std::string daemon_version_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moat::cli
