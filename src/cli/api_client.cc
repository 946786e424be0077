// The CLI's only Boost.Beast/Asio user. Beast is called through its error_code overloads,
// which do not throw; the rare throwing paths (allocation) end at main()'s guard.

#include "cli/api_client.h"

#include <sys/socket.h>

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdio>
#include <limits>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/fdio.h"
#include "base/sys/socket.h"

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

Result<std::string> ResolveHost(const std::string& flag, const char* moat_host_env,
                                const char* docker_host_env) {
  std::string host;
  if (!flag.empty()) {
    host = flag;
  } else if (moat_host_env != nullptr && *moat_host_env != '\0') {
    host = moat_host_env;
  } else if (docker_host_env != nullptr && StartsWith(docker_host_env, "unix://")) {
    host = docker_host_env;
  } else {
    host = kDefaultHost;
  }
  if (!StartsWith(host, "unix://") || host.size() <= strlen("unix://"))
    return Fail(ErrorKind::kInvalidArgument,
                "unsupported daemon address %s: moat speaks only to unix:///path sockets",
                host.c_str());
  return host;
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

  Result<Socket> Connect(const std::string& path, const std::string& host) {
    auto fd = sys::ConnectUnix(path);
    if (!fd.has_value()) return Fail(ConnectError(host));
    Socket sock(io);
    beast::error_code ec;
    sock.assign(asio::local::stream_protocol(), fd->release(), ec);
    if (ec) return Fail(IoError("assign socket", ec));
    return sock;
  }
};

ApiClient::ApiClient(std::string host) : host_(std::move(host)), impl_(std::make_unique<Impl>()) {
  socket_path_ = host_.substr(strlen("unix://"));
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
      MOAT_ASSIGN_OR_RETURN(Socket s, impl_->Connect(socket_path_, host_));
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
      MOAT_ASSIGN_OR_RETURN(Socket s, impl_->Connect(socket_path_, host_));
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
                               std::string_view body, const BodySink& sink) {
  MOAT_ASSIGN_OR_RETURN(Socket sock, impl_->Connect(socket_path_, host_));
  auto req = MakeRequest(method, VersionedPath(path), body, "application/json");
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
  MOAT_ASSIGN_OR_RETURN(Socket sock, impl_->Connect(socket_path_, host_));
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
  MOAT_ASSIGN_OR_RETURN(Socket sock, impl_->Connect(socket_path_, host_));
  auto req = MakeRequest(method, VersionedPath(path), body, "application/json");
  beast::error_code ec;
  http::write(sock, req, ec);
  if (ec) return Fail(IoError("send request", ec));
  auto pending = std::make_unique<BeastPending>(std::move(sock));
  MOAT_TRY(pending->ReadHeader());
  return std::unique_ptr<PendingResponse>(std::move(pending));
}

Result<Hijacked> ApiClient::Hijack(std::string_view path, std::string_view body) {
  MOAT_ASSIGN_OR_RETURN(Socket sock, impl_->Connect(socket_path_, host_));
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
