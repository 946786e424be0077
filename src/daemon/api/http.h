#pragma once

// The API front's HTTP/1.1 server: Docker Engine API transport on an already-listening socket.
// One thread per connection with blocking I/O (clients keep few connections open; a hijacked
// attach holds its thread for its lifetime). Parsing is Boost.Beast's; this layer adds the
// Docker conventions: the /vX.Y/ prefix and version window, the headers dockerd sends on every
// response, errors as {"message": ...}, streaming (chunked) responses flushed as written, and
// connection hijacking (101 UPGRADED) for attach and exec.
//
// Runs in the unprivileged front: it never opens a path; every fd comes from its caller.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/api/tls.h"

namespace moat::daemon::api {

// API versions this server speaks: 1.40 ... 1.47. A bare path (no /vX.Y/) means the newest.
inline constexpr int kMinApiMinor = 40;
inline constexpr int kMaxApiMinor = 47;

struct Request {
  std::string method;      // "GET", "HEAD", "POST", "PUT", "DELETE"
  std::string path;        // percent-decoded, without the query and without "/v1.NN"
  int api_minor = kMaxApiMinor;
  std::map<std::string, std::string> params;  // from the route pattern ({id}, {name*})
  std::multimap<std::string, std::string> query;  // percent-decoded
  std::map<std::string, std::string> headers;     // names lower-cased
  std::string body;        // the whole body for BodyMode::kBuffered routes, else empty
  bool upgrade_tcp = false;  // "Connection: Upgrade" and "Upgrade: tcp"
  // Peer credentials of the client connection (SO_PEERCRED), read by the server at accept.
  // Over TLS (TCP) there are none: pid 0, uid and gid -1, and peer_cn names the client.
  pid_t peer_pid = 0;
  uid_t peer_uid = static_cast<uid_t>(-1);
  gid_t peer_gid = static_cast<gid_t>(-1);
  // kTls: the client came over TCP and presented a certificate that verified against the
  // listener's CA; peer_cn is its subject commonName ("" when it has none).
  enum class Transport { kUnix, kTls };
  Transport transport = Transport::kUnix;
  std::string peer_cn;
  // The client's connection socket: remains owned by the server and is valid only while the
  // handler runs. For passing to the core with SCM_RIGHTS (it reads SO_PEERCRED itself), and
  // for poll(POLLRDHUP) by a handler that waits (e.g. /wait) to notice a client that went away
  // or a Server::Stop() (which shuts the socket down). Handlers never read or write it. Over
  // TLS it is the TCP socket (the core's SO_PEERCRED reads uid/gid -1 there; TLS records flow
  // on it, so it must not be read either).
  int client_fd = -1;

  // The first value of a query parameter, or nullopt.
  std::optional<std::string> Query(const std::string& key) const;
  // dockerd's rule: absent -> fallback; "", "0", "no", "false", "none" (any case) -> false;
  // anything else -> true.
  bool QueryBool(const std::string& key, bool fallback = false) const;
  // Header value (name lower-case) or "".
  std::string Header(const std::string& name) const;
};

// A hijacked connection: the HTTP layer has sent its status line and headers and lets go.
// Server::Stop() shuts the socket down (the dup sees EOF/EPIPE) as long as the handler that
// hijacked has not returned; once it returns, the server closes its own copy and forgets it.
// Hijacking routes should be BodyMode::kBuffered, so `pending` holds only bytes sent after the
// request's body.
struct Hijacked {
  UniqueFd fd;             // the client socket (a dup; the server closes its own copy)
  std::string pending;     // bytes the client sent after the request, already read
};

// How a handler answers. Exactly one of the answer families is used per request:
//   Json/Error/Empty/Raw: a complete response (Content-Length);
//   StartStream + Write... + EndStream: chunked, headers flushed at once;
//   Hijack: the connection leaves HTTP.
// Not thread-safe: used by the connection's own thread only.
class Responder {
 public:
  virtual ~Responder() = default;
  virtual void Json(int status, std::string body) = 0;
  // {"message": message} with Content-Type application/json.
  virtual void Error(int status, const std::string& message) = 0;
  // No body (204, 304, 201 without body...).
  virtual void Empty(int status) = 0;
  virtual void Raw(int status, const std::string& content_type, std::string body,
                   const std::map<std::string, std::string>& extra_headers = {}) = 0;

  // Chunked streaming: StartStream sends the status line and headers at once; each Write
  // sends one chunk (an empty Write sends nothing); EndStream sends the last chunk. Write fails
  // (kUnavailable) once the client has gone away. A stream the handler leaves open is ended
  // by the server. HTTP/1.0 clients get the raw body and the connection closes at the end.
  // The complete answers above send nothing after the first answer (a handler bug).
  virtual Result<void> StartStream(int status, const std::string& content_type,
                                   const std::map<std::string, std::string>& extra_headers = {}) = 0;
  virtual Result<void> Write(std::string_view data) = 0;
  virtual Result<void> EndStream() = 0;

  // Hijack: "101 UPGRADED" with Connection/Upgrade: tcp when the request asked to upgrade,
  // else "200 OK"; Content-Type as given. The connection is not reused afterwards.
  virtual Result<Hijacked> Hijack(const std::string& content_type) = 0;

  // Streamed request bodies (BodyMode::kStreamed routes): reads the next body bytes
  // (de-chunked), blocking; returns 0 at the end of the body (or when len is 0). Fails with
  // kUnavailable when the client goes away mid-body. What the handler leaves unread is read
  // and dropped after it returns (up to max_body bytes; past that the connection is closed).
  virtual Result<size_t> ReadBody(char* buf, size_t len) = 0;

  // True once any answer has started.
  virtual bool answered() const = 0;
};

using Handler = std::function<void(Request&, Responder&)>;

enum class BodyMode {
  kBuffered,  // the body is read into Request::body, at most ServerOptions::max_body bytes (413)
  kStreamed,  // the handler reads the body with Responder::ReadBody
};

struct ServerOptions {
  size_t max_body = 4 << 20;           // buffered bodies
  size_t max_header = 64 << 10;        // request line + headers (431 past it)
  int max_connections = 512;           // beyond: answered 503 and closed
  std::string server_header = "Moat/0.1.0 (linux)";  // Server: header on every response
  int tls_handshake_timeout_ms = 10000;  // a TLS client that has not finished by then is dropped
  // After this long without a connection opening or closing, the process gives its one-off
  // memory back (sys::QuietReleaser: code pages and free heap); 0: never.
  int release_quiet_ms = 0;
};

// A listening socket to serve (remains owned by the caller). With `tls`, every accepted
// connection must complete a TLS handshake with a verified client certificate first (tls.h);
// its plaintext is then relayed through an AF_UNIX socketpair by a thread of its own, so
// handlers, streams and hijacked connections see an ordinary socket.
struct Listener {
  int fd = -1;
  std::shared_ptr<const tls::Context> tls;
};

class Router {
 public:
  // Patterns: literal segments, "{id}" (one segment) and "{name*}" (greedy: one or more
  // segments, for image names with slashes, e.g. "/images/{name*}/json"). Routes are tried in
  // registration order; the first match wins. Unknown path -> 404 {"message":"page not found"};
  // known path with another method -> 405.
  void Add(const std::string& method, const std::string& pattern, BodyMode body, Handler handler);

  struct Match {
    const Handler* handler = nullptr;
    BodyMode body = BodyMode::kBuffered;
    std::map<std::string, std::string> params;
    bool path_known = false;  // some route matched the path (for 405)
  };
  Match Find(const std::string& method, const std::string& path) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    BodyMode body;
    Handler handler;
  };
  std::vector<Route> routes_;
};

// Serves HTTP on `listen_fd` (a listening SOCK_STREAM socket, remains owned by the caller) until
// Stop() is called. /_ping (GET and HEAD) is answered by the server itself; every other request
// goes through the router. Requests for /vX.Y/ outside the window get 400 with dockerd's text
// ("client version 1.52 is too new. Maximum supported API version is 1.47").
class Server {
 public:
  Server(ServerOptions options, Router router);
  ~Server();
  // Blocks in poll/accept; returns after Stop() once every connection thread has finished, or
  // an error if poll/accept fail for another reason (open connections are shut down then too).
  // Stop() shuts down every connection's socket, so threads blocked on the client return at
  // once; a handler blocked on something else delays Serve's return until it finishes (poll
  // Request::client_fd to notice). Call Serve at most once; after Stop() it returns at once.
  // Per connection: SO_PEERCRED once, then requests until the client closes, "Connection:
  // close", HTTP/1.0 without keep-alive, a hijack, or an error that leaves the stream unusable.
  Result<void> Serve(int listen_fd);
  // The same on several listening sockets at once (unix and TLS); at least one.
  Result<void> Serve(const std::vector<Listener>& listeners);
  // Makes Serve return: stops accepting, shuts down open connections. Thread-safe and
  // async-signal-safe (one write to an eventfd); may be called before Serve.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moat::daemon::api
