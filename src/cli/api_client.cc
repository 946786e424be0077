// The CLI's only Boost.Beast/Asio user. Beast is called through its error_code overloads,
// which do not throw; the rare throwing paths (allocation) end at main()'s guard.

#include "cli/api_client.h"

#include <netdb.h>
#include <sys/socket.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdio>
#include <limits>
#include <thread>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/fdio.h"
#include "base/sys/inet.h"
#include "base/sys/socket.h"
#include "base/sys/socket_io.h"
#include "daemon/api/tls.h"

namespace moat::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Socket = asio::local::stream_protocol::socket;

// The docker CLI sends this Host; it carries no meaning on a unix socket.
constexpr const char* kHostHeader = "api.moat.localhost";
constexpr const char* kUserAgent = "moat-cli/0.1";
// Beast 1.74 compares the content length against an empty optional limit as if the limit
// were smaller than everything (`len_ > body_limit_`), so "no limit" is the largest value.
constexpr uint64_t kNoBodyLimit = std::numeric_limits<uint64_t>::max();

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return out;
}

std::optional<std::pair<int, int>> ParseVersion(std::string_view v) {
  size_t dot = v.find('.');
  if (dot == std::string_view::npos) return std::nullopt;
  auto major = ParseInt64(v.substr(0, dot));
  auto minor = ParseInt64(v.substr(dot + 1));
  if (!major || !minor) return std::nullopt;
  return std::make_pair(static_cast<int>(*major), static_cast<int>(*minor));
}

Error ConnectError(const std::string& host) {
  return MakeError(ErrorKind::kUnavailable,
                   "Cannot connect to the Moat daemon at %s. Is moatd running? "
                   "(start it with `moatd`, or point -H/MOAT_HOST at its socket)",
                   host.c_str());
}

Error IoError(const char* what, const beast::error_code& ec) {
  return MakeError(ErrorKind::kInternal, "%s: %s", what, ec.message().c_str());
}

template <typename Fields>
void CopyHeaders(const Fields& fields, Response* out) {
  for (const auto& f : fields)
    out->headers[Lower(std::string_view(f.name_string().data(), f.name_string().size()))] =
        std::string(f.value());
}

http::request<http::string_body> MakeRequest(std::string_view method, const std::string& target,
                                             std::string_view body,
                                             std::string_view content_type) {
  http::request<http::string_body> req;
  req.method_string(beast::string_view(method.data(), method.size()));
  req.target(target);
  req.version(11);
  req.set(http::field::host, kHostHeader);
  req.set(http::field::user_agent, kUserAgent);
  if (!body.empty() || method == "POST" || method == "PUT") {
    if (!body.empty()) req.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
    req.body() = std::string(body);
    req.prepare_payload();
  }
  return req;
}

// Reads a response body into `sink` piece by piece with read_some, so live streams
// (events, logs -f) are delivered as they arrive rather than when a buffer fills.
template <typename Parser>
Result<void> PumpBody(Socket& sock, beast::flat_buffer& buf, Parser& parser,
                      const BodySink& sink) {
  char tmp[64 * 1024];
  while (!parser.is_done()) {
    parser.get().body().data = tmp;
    parser.get().body().size = sizeof tmp;
    beast::error_code ec;
    http::read_some(sock, buf, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    size_t n = sizeof tmp - parser.get().body().size;
    if (n > 0) MOAT_TRY(sink(std::string_view(tmp, n)));
    if (ec == http::error::end_of_stream || ec == asio::error::eof) break;
    if (ec) return Fail(IoError("read response body", ec));
  }
  return Ok();
}

}  // namespace

std::string Response::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

namespace {

// "tcp://host:port" -> host (brackets removed) and port (2376 when absent).
Result<std::pair<std::string, std::string>> SplitTcp(const std::string& uri) {
  std::string rest = uri.substr(strlen("tcp://"));
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  std::string host, port;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos) return Fail(ErrorKind::kInvalidArgument, "daemon address %s: unclosed [", uri.c_str());
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return Fail(ErrorKind::kInvalidArgument, "daemon address %s: expected :port", uri.c_str());
      port = rest.substr(close + 2);
    }
  } else {
    size_t colon = rest.rfind(':');
    host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  if (port.empty()) port = "2376";
  auto n = ParseInt64(port);
  if (host.empty() || host.find('/') != std::string::npos || !n || *n < 1 || *n > 65535)
    return Fail(ErrorKind::kInvalidArgument, "daemon address %s: expected tcp://host:port", uri.c_str());
  return std::make_pair(host, port);
}

}  // namespace

Result<std::string> ResolveHost(const std::string& flag, const char* moat_host_env,
                                const char* docker_host_env, const char* docker_tls_verify_env) {
  std::string host;
  bool docker_tls = docker_tls_verify_env != nullptr && *docker_tls_verify_env != '\0';
  if (!flag.empty()) {
    host = flag;
  } else if (moat_host_env != nullptr && *moat_host_env != '\0') {
    host = moat_host_env;
  } else if (docker_host_env != nullptr &&
             (StartsWith(docker_host_env, "unix://") ||
              (docker_tls && StartsWith(docker_host_env, "tcp://")))) {
    host = docker_host_env;
  } else {
    host = kDefaultHost;
  }
  if (StartsWith(host, "tcp://")) {
    MOAT_ASSIGN_OR_RETURN(auto hp, SplitTcp(host));
    bool v6 = hp.first.find(':') != std::string::npos;
    return "tcp://" + (v6 ? "[" + hp.first + "]" : hp.first) + ":" + hp.second;
  }
  if (!StartsWith(host, "unix://") || host.size() <= strlen("unix://"))
    return Fail(ErrorKind::kInvalidArgument,
                "unsupported daemon address %s: moat speaks to unix:///path sockets and to "
                "tcp://host:port with TLS",
                host.c_str());
  return host;
}

ClientTls ResolveTls(const ClientTls& flags) {
  ClientTls out = flags;
  std::string dir;
  if (const char* p = getenv("DOCKER_CERT_PATH"); p && *p) {
    dir = p;
  } else if (const char* home = getenv("HOME"); home && *home) {
    dir = std::string(home) + "/.docker";
  }
  auto pick = [&](std::string* f, const char* env, const char* name) {
    if (!f->empty()) return;
    if (const char* v = getenv(env); v && *v) {
      *f = v;
    } else if (!dir.empty()) {
      *f = dir + "/" + name;
    }
  };
  pick(&out.ca, "MOAT_TLSCACERT", "ca.pem");
  pick(&out.cert, "MOAT_TLSCERT", "cert.pem");
  pick(&out.key, "MOAT_TLSKEY", "key.pem");
  return out;
}

std::string NegotiateVersion(std::string_view client, std::string_view daemon) {
  auto c = ParseVersion(client);
  auto d = ParseVersion(daemon);
  if (!d || !c) return std::string(client);
  return *d < *c ? std::string(daemon) : std::string(client);
}

Error DaemonError(int status, std::string_view body) {
  std::string message;
  if (auto j = ParseJson(body); j.has_value()) message = GetString(*j, "message");
  if (message.empty()) message = std::string(TrimWhitespace(body));
  if (message.empty()) message = StrFormat("HTTP status %d", status);
  ErrorKind kind = ErrorKind::kInternal;
  switch (status) {
    case 400: kind = ErrorKind::kInvalidArgument; break;
    case 401:
    case 403: kind = ErrorKind::kPermissionDenied; break;
    case 404: kind = ErrorKind::kNotFound; break;
    case 409: kind = ErrorKind::kConflict; break;
    case 501: kind = ErrorKind::kUnsupported; break;
    case 503: kind = ErrorKind::kUnavailable; break;
    default: break;
  }
  return Error{kind, 0, "Error response from daemon: " + message};
}

struct ApiClient::Impl {
  asio::io_context io;
  std::optional<Socket> keepalive;
  beast::flat_buffer keepalive_buf;
  const ApiClient* client = nullptr;
  std::shared_ptr<const tls::Context> tls;  // loaded on the first tcp:// connection

  Result<Socket> Connect() {
    UniqueFd fd;
    if (client->tcp_host_.empty()) {
      auto unix_fd = sys::ConnectUnix(client->socket_path_);
      if (!unix_fd.has_value()) return Fail(ConnectError(client->host_));
      fd = std::move(*unix_fd);
    } else {
      MOAT_ASSIGN_OR_RETURN(fd, ConnectTls());
    }
    Socket sock(io);
    beast::error_code ec;
    sock.assign(asio::local::stream_protocol(), fd.release(), ec);
    if (ec) return Fail(IoError("assign socket", ec));
    return sock;
  }

  // TCP connect, TLS handshake, and a relay thread between the TLS stream and one end of a
  // socketpair; returns the other end. The thread owns the TCP socket and ends when both
  // directions are done or the returned end is closed.
  Result<UniqueFd> ConnectTls() {
    const std::string& uri = client->host_;
    if (!tls) {
      const ClientTls& f = client->tls_;
      auto ctx = tls::Context::Load(tls::Role::kClient, {f.ca, f.cert, f.key});
      if (!ctx) {
        return Fail(ErrorKind::kInvalidArgument,
                    "%s: moat needs a CA, a client certificate and its key to reach a daemon "
                    "over TCP (--tlscacert, --tlscert, --tlskey, or ca.pem, cert.pem and key.pem "
                    "in $DOCKER_CERT_PATH or ~/.docker): %s",
                    uri.c_str(), ctx.error().message.c_str());
      }
      tls = std::move(*ctx);
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(client->tcp_host_.c_str(), client->tcp_port_.c_str(), &hints, &res);
    if (rc != 0)
      return Fail(ErrorKind::kUnavailable, "Cannot connect to the Moat daemon at %s: %s", uri.c_str(),
                  gai_strerror(rc));
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(res, freeaddrinfo);
    UniqueFd sock;
    int err = 0;
    for (const addrinfo* p = res; p && !sock; p = p->ai_next) {
      auto s = sys::socket(p->ai_family, SOCK_STREAM, 0);
      if (!s) continue;
      // One connect(2); no wrapper exists for TCP (sys::ConnectUnix is AF_UNIX only).
      int r;
      do r = ::connect(s->get(), p->ai_addr, p->ai_addrlen);
      while (r != 0 && errno == EINTR);
      if (r == 0) {
        sock = std::move(*s);
      } else {
        err = errno;
      }
    }
    if (!sock)
      return Fail(ErrorKind::kUnavailable, "Cannot connect to the Moat daemon at %s: %s. Is moatd running?",
                  uri.c_str(), strerror(err));
    auto conn = tls::Connection::Connect(tls, sock.get(), client->tcp_host_, 30000);
    if (!conn) {
      Error e = conn.error();
      e.message = StrFormat("TLS connection to %s: %s", uri.c_str(), e.message.c_str());
      return Fail(std::move(e));
    }
    MOAT_ASSIGN_OR_RETURN(auto pair, sys::socketpair(SOCK_STREAM));
    struct Relay {
      UniqueFd tcp;
      std::unique_ptr<tls::Connection> conn;
      UniqueFd end;
    };
    auto relay = std::make_shared<Relay>(Relay{std::move(sock), std::move(*conn), std::move(pair.second)});
    // Detached: it outlives this client when a hijacked fd is handed out; OpenSSL was set up
    // without an atexit handler, so exit() with relays running is safe.
    std::thread([relay] {
      relay->conn->Relay(relay->end.get());
      (void)sys::shutdown(relay->end.get(), SHUT_RDWR);
    }).detach();
    return std::move(pair.first);
  }
};

ApiClient::ApiClient(std::string host) : ApiClient(std::move(host), ResolveTls({})) {}

ApiClient::ApiClient(std::string host, ClientTls tls)
    : host_(std::move(host)), tls_(std::move(tls)), impl_(std::make_unique<Impl>()) {
  impl_->client = this;
  if (StartsWith(host_, "tcp://")) {
    if (auto hp = SplitTcp(host_)) {
      tcp_host_ = hp->first;
      tcp_port_ = hp->second;
    } else {
      tcp_host_ = "invalid";  // ResolveHost rejects these first
      tcp_port_ = "0";
    }
  } else {
    socket_path_ = host_.substr(strlen("unix://"));
  }
}

ApiClient::~ApiClient() = default;

std::string ApiClient::VersionedPath(std::string_view path) const {
  return "/v" + version_ + std::string(path);
}

Result<void> ApiClient::Negotiate() {
  // The ping is un-versioned, as the docker CLI sends it.
  std::string saved = version_;
  auto head = [&](std::string_view method) -> Result<Response> {
    if (!impl_->keepalive) {
      MOAT_ASSIGN_OR_RETURN(Socket s, impl_->Connect());
      impl_->keepalive.emplace(std::move(s));
    }
    auto req = MakeRequest(method, "/_ping", {}, {});
    beast::error_code ec;
    http::write(*impl_->keepalive, req, ec);
    if (ec) return Fail(ConnectError(host_));
    http::response_parser<http::string_body> parser;
    if (method == "HEAD") parser.skip(true);
    http::read(*impl_->keepalive, impl_->keepalive_buf, parser, ec);
    if (ec) return Fail(ConnectError(host_));
    Response r;
    r.status = static_cast<int>(parser.get().result_int());
    CopyHeaders(parser.get(), &r);
    if (!parser.get().keep_alive()) impl_->keepalive.reset();
    return r;
  };
  MOAT_ASSIGN_OR_RETURN(Response r, head("HEAD"));
  if (r.status != 200 && r.status != 500) {
    MOAT_ASSIGN_OR_RETURN(r, head("GET"));
  }
  daemon_version_ = r.Header("api-version");
  // Without Api-Version the docker CLI assumes 1.24.
  version_ = NegotiateVersion(saved, daemon_version_.empty() ? "1.24" : daemon_version_);
  return Ok();
}

Result<Response> ApiClient::Call(std::string_view method, std::string_view path,
                                 std::string_view body, std::string_view content_type) {
  auto req = MakeRequest(method, VersionedPath(path), body, content_type);
  // A keep-alive connection the daemon closed in between fails on first use: retry once on a
  // fresh connection (only for a connection that was reused, so a request is never sent twice
  // on a connection that saw it succeed).
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = impl_->keepalive.has_value();
    if (!reused) {
      MOAT_ASSIGN_OR_RETURN(Socket s, impl_->Connect());
      impl_->keepalive.emplace(std::move(s));
      impl_->keepalive_buf.clear();
    }
    beast::error_code ec;
    http::write(*impl_->keepalive, req, ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(kNoBodyLimit);
    if (method == "HEAD") parser.skip(true);
    if (!ec) http::read(*impl_->keepalive, impl_->keepalive_buf, parser, ec);
    if (ec) {
      impl_->keepalive.reset();
      impl_->keepalive_buf.clear();
      if (reused) continue;
      return Fail(IoError(StrFormat("%.*s %.*s", static_cast<int>(method.size()), method.data(),
                                    static_cast<int>(path.size()), path.data())
                              .c_str(),
                          ec));
    }
    Response r;
    r.status = static_cast<int>(parser.get().result_int());
    CopyHeaders(parser.get(), &r);
    r.body = std::move(parser.get().body());
    if (!parser.get().keep_alive()) impl_->keepalive.reset();
    return r;
  }
  return Fail(ErrorKind::kInternal, "connection to %s keeps closing", host_.c_str());
}

Result<Json> ApiClient::CallJson(std::string_view method, std::string_view path,
                                 const Json* body) {
  std::string text = body ? Dump(*body) : std::string();
  MOAT_ASSIGN_OR_RETURN(Response r, Call(method, path, text));
  if (r.status < 200 || r.status >= 300) return Fail(DaemonError(r.status, r.body));
  if (TrimWhitespace(r.body).empty()) return Json();
  return ParseJson(r.body);
}

Result<void> ApiClient::CallOk(std::string_view method, std::string_view path, const Json* body) {
  std::string text = body ? Dump(*body) : std::string();
  MOAT_ASSIGN_OR_RETURN(Response r, Call(method, path, text));
  if (r.status < 200 || r.status >= 300) return Fail(DaemonError(r.status, r.body));
  return Ok();
}

Result<void> ApiClient::Stream(std::string_view method, std::string_view path,
                               std::string_view body, const BodySink& sink,
                               const std::vector<std::pair<std::string, std::string>>& headers) {
  MOAT_ASSIGN_OR_RETURN(Socket sock, impl_->Connect());
  auto req = MakeRequest(method, VersionedPath(path), body, "application/json");
  for (const auto& [name, value] : headers) req.set(name, value);
  beast::error_code ec;
  http::write(sock, req, ec);
  if (ec) return Fail(IoError("send request", ec));
  beast::flat_buffer buf;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(kNoBodyLimit);
  http::read_header(sock, buf, parser, ec);
  if (ec) return Fail(IoError("read response headers", ec));
  int status = static_cast<int>(parser.get().result_int());
  if (status >= 200 && status < 300) return PumpBody(sock, buf, parser, sink);
  std::string err;
  MOAT_TRY(PumpBody(sock, buf, parser, [&](std::string_view d) -> Result<void> {
    err.append(d);
    return Ok();
  }));
  return Fail(DaemonError(status, err));
}

Result<void> ApiClient::Upload(std::string_view method, std::string_view path, int in_fd,
                               std::string_view content_type, const BodySink& sink,
                               const std::function<void(uint64_t)>& progress) {
  MOAT_ASSIGN_OR_RETURN(Socket sock, impl_->Connect());
  http::request<http::empty_body> req;
  req.method_string(beast::string_view(method.data(), method.size()));
  req.target(VersionedPath(path));
  req.version(11);
  req.set(http::field::host, kHostHeader);
  req.set(http::field::user_agent, kUserAgent);
  req.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  req.chunked(true);
  beast::error_code ec;
  http::request_serializer<http::empty_body> sr(req);
  http::write_header(sock, sr, ec);
  if (ec) return Fail(IoError("send request", ec));
  std::vector<char> chunk(256 * 1024);
  uint64_t sent = 0;
  for (;;) {
    MOAT_ASSIGN_OR_RETURN(size_t n, sys::read(in_fd, chunk.data(), chunk.size()));
    if (n == 0) break;
    asio::write(sock, http::make_chunk(asio::buffer(chunk.data(), n)), ec);
    // The daemon may answer early (a bad archive) and close: its answer is read below.
    if (ec) break;
    sent += n;
    if (progress) progress(sent);
  }
  if (!ec) asio::write(sock, http::make_chunk_last(), ec);
  beast::flat_buffer buf;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(kNoBodyLimit);
  beast::error_code rec;
  http::read_header(sock, buf, parser, rec);
  if (rec) return Fail(IoError("read response headers", ec ? ec : rec));
  int status = static_cast<int>(parser.get().result_int());
  if (status >= 200 && status < 300) return PumpBody(sock, buf, parser, sink);
  std::string err;
  MOAT_TRY(PumpBody(sock, buf, parser, [&](std::string_view d) -> Result<void> {
    err.append(d);
    return Ok();
  }));
  return Fail(DaemonError(status, err));
}

namespace {

class BeastPending : public PendingResponse {
 public:
  BeastPending(Socket sock) : sock_(std::move(sock)) { parser_.body_limit(kNoBodyLimit); }

  Result<void> ReadHeader() {
    beast::error_code ec;
    http::read_header(sock_, buf_, parser_, ec);
    if (ec) return Fail(IoError("read response headers", ec));
    return Ok();
  }
  int status() const override { return static_cast<int>(parser_.get().result_int()); }
  Result<std::string> ReadBody() override {
    beast::error_code ec;
    http::read(sock_, buf_, parser_, ec);
    if (ec && ec != http::error::end_of_stream) return Fail(IoError("read response body", ec));
    return parser_.get().body();
  }

 private:
  Socket sock_;
  beast::flat_buffer buf_;
  http::response_parser<http::string_body> parser_;
};

}  // namespace

Result<std::unique_ptr<PendingResponse>> ApiClient::Begin(std::string_view method,
                                                          std::string_view path,
                                                          std::string_view body) {
  MOAT_ASSIGN_OR_RETURN(Socket sock, impl_->Connect());
  auto req = MakeRequest(method, VersionedPath(path), body, "application/json");
  beast::error_code ec;
  http::write(sock, req, ec);
  if (ec) return Fail(IoError("send request", ec));
  auto pending = std::make_unique<BeastPending>(std::move(sock));
  MOAT_TRY(pending->ReadHeader());
  return std::unique_ptr<PendingResponse>(std::move(pending));
}

Result<Hijacked> ApiClient::Hijack(std::string_view path, std::string_view body) {
  MOAT_ASSIGN_OR_RETURN(Socket sock, impl_->Connect());
  auto req = MakeRequest("POST", VersionedPath(path), body,
                         body.empty() ? "text/plain" : "application/json");
  req.set(http::field::connection, "Upgrade");
  req.set(http::field::upgrade, "tcp");
  beast::error_code ec;
  http::write(sock, req, ec);
  if (ec) return Fail(IoError("send request", ec));
  beast::flat_buffer buf;
  http::response_parser<http::empty_body> parser;
  http::read_header(sock, buf, parser, ec);
  if (ec) return Fail(IoError("read response headers", ec));
  int status = static_cast<int>(parser.get().result_int());
  if (status != 101 && status != 200) {
    // Error answers carry a JSON body: continue the same message with a string body.
    http::response_parser<http::string_body> body_parser(std::move(parser));
    body_parser.body_limit(64 * 1024);
    http::read(sock, buf, body_parser, ec);
    return Fail(DaemonError(status, body_parser.get().body()));
  }
  Hijacked h;
  h.pending.assign(static_cast<const char*>(buf.data().data()), buf.data().size());
  int fd = sock.release(ec);
  if (ec) return Fail(IoError("release socket", ec));
  h.fd = UniqueFd(fd);
  return h;
}

}  // namespace moat::cli
