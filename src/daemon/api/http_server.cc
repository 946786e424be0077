// The HTTP/1.1 transport of http.h. This file is the Boost.Beast adapter: Beast parses request
// heads and de-chunks bodies through an fd-backed SyncReadStream; every Boost call uses the
// error_code overloads, and the one standard-library call that throws (std::thread's
// constructor) is caught here. Responses are formatted by hand and sent with one gathered
// sendmsg each, so nothing is buffered: a stream's headers and each chunk reach the client as
// soon as they are written (the docker CLI's `wait` depends on it).
//
// No Asio io_context: it would create an epoll instance, an eventfd and a timerfd behind our
// back, syscalls the front's seccomp allowlist does not need. The listening socket may be
// blocking or non-blocking; accepted sockets are blocking. The syscalls here are accept4,
// recvfrom, sendmsg, shutdown, getsockopt, fcntl(F_DUPFD_CLOEXEC), poll, eventfd2/write/close,
// plus thread creation (clone/clone3, mmap, mprotect, futex). TLS listeners add socketpair
// (AF_UNIX) and what tls.cc lists (getrandom among it).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <cctype>
#include <cerrno>
#include <limits>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "base/log.h"
#include "base/strings.h"
#include "base/sys/io.h"
#include "base/sys/memory.h"
#include "base/sys/socket.h"
#include "base/sys/socket_io.h"
#include "daemon/api/http.h"
#include "daemon/api/url.h"

namespace moat::daemon::api {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using boost::system::error_code;

// Beast's SyncReadStream over a borrowed socket fd.
class FdStream {
 public:
  explicit FdStream(int fd) : fd_(fd) {}

  template <typename MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers, error_code& ec) {
    ec.clear();
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      boost::asio::mutable_buffer b = *it;
      if (b.size() == 0) continue;
      Result<size_t> n = sys::recv(fd_, b.data(), b.size(), 0);
      if (!n) {
        ec.assign(n.error().sys_errno, boost::system::system_category());
        return 0;
      }
      if (*n == 0) ec = boost::asio::error::eof;
      return *n;
    }
    return 0;
  }
  // Required by Beast's is_sync_read_stream trait; never defined: only the error_code overload
  // is used (a call would fail to link).
  template <typename MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers);

 private:
  int fd_;
};

const char* ReasonPhrase(int status) {
  switch (status) {
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 304:
      return "Not Modified";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Request Entity Too Large";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Requested Range Not Satisfiable";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

// Headers dockerd sends on every response.
std::string StandardHeaders(const ServerOptions& options) {
  return StrFormat(
      "Api-Version: 1.%d\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: %s\r\n",
      kMaxApiMinor, options.server_header.c_str());
}

std::string ErrorBody(const std::string& message) {
  return "{\"message\":" + JsonQuote(message) + "}\n";
}

bool NoBodyStatus(int status) { return status == 204 || status == 304 || status < 200; }

// Whether the comma-separated header `value` contains `token` (case-insensitive).
bool HasToken(const std::string& value, std::string_view token) {
  for (const std::string& piece : StrSplit(value, ',')) {
    std::string_view t = TrimWhitespace(piece);
    if (t.size() != token.size()) continue;
    bool same = true;
    for (size_t i = 0; i < t.size(); ++i)
      same = same && std::tolower(static_cast<unsigned char>(t[i])) ==
                         std::tolower(static_cast<unsigned char>(token[i]));
    if (same) return true;
  }
  return false;
}

std::string_view View(beast::string_view s) { return {s.data(), s.size()}; }

// "address:port" of a TCP client, for logs.
std::string PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return StrFormat("%s:%d", host, port);
  }
  if (ss.ss_family == AF_INET6) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    port = ntohs(in6->sin6_port);
    return StrFormat("[%s]:%d", host, port);
  }
  return "?";
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  Router router;
  UniqueFd stop_fd;  // eventfd; Stop() writes it, Serve polls it

  std::mutex mu;
  uint64_t next_id = 0;
  std::unordered_map<uint64_t, int> live;  // connection id -> its socket (owned by the thread)
  std::unordered_map<uint64_t, std::thread> threads;
  std::vector<uint64_t> finished;  // threads that have ended and wait to be joined
  std::unique_ptr<sys::QuietReleaser> releaser;  // with options.release_quiet_ms

  void RunConnection(uint64_t id, UniqueFd fd, std::shared_ptr<const tls::Context> tls);
  // A TLS connection on `fd` (remains owned by the caller): handshake, then HTTP on a
  // socketpair whose other end a relay thread connects to the TLS stream.
  void RunTlsConnection(int fd, std::shared_ptr<const tls::Context> tls);
  void ReapFinished();
  void ShutdownAll();
  void RefuseBusy(int fd);
};

namespace {

// The client of a TLS connection, as the HTTP layer reports it.
struct TlsPeer {
  std::string common_name;
  int tcp_fd = -1;  // the TCP socket (owned by the tls::Connection), reported as client_fd
};

// One client connection and the Responder its handlers answer through. Lives on the
// connection's thread only. `fd` is a unix socket: the client's, or with `tls` the local end
// of the TLS relay.
class Connection final : public Responder {
 public:
  Connection(const ServerOptions& options, const Router& router, int fd,
             const TlsPeer* tls = nullptr)
      : options_(options), router_(router), fd_(fd), tls_(tls), stream_(fd) {}

  // Serves requests until the client closes, an answer says "close", or the socket fails.
  void Run();

  void Json(int status, std::string body) override {
    Complete(status, "application/json", body, {});
  }
  void Error(int status, const std::string& message) override {
    Complete(status, "application/json", ErrorBody(message), {});
  }
  void Empty(int status) override { Complete(status, "", "", {}); }
  void Raw(int status, const std::string& content_type, std::string body,
           const std::map<std::string, std::string>& extra_headers) override {
    Complete(status, content_type, body, extra_headers);
  }
  Result<void> StartStream(int status, const std::string& content_type,
                           const std::map<std::string, std::string>& extra_headers) override;
  Result<void> Write(std::string_view data) override;
  Result<void> EndStream() override;
  Result<Hijacked> Hijack(const std::string& content_type) override;
  Result<size_t> ReadBody(char* buf, size_t len) override;
  bool answered() const override { return state_ != State::kIdle; }

 private:
  enum class State { kIdle, kComplete, kStreaming, kStreamEnded, kHijacked };
  using Parser = http::request_parser<http::buffer_body>;

  // Routes one parsed request head; the handler (or the server) answers it.
  void Dispatch();
  // Reads the rest of the body into `out`, failing past `limit` bytes.
  enum class BodyRead { kOk, kTooLarge, kBroken };
  BodyRead ReadWholeBody(std::string* out, size_t limit);
  // Reads and drops what the handler left of the body, so the connection can carry the next
  // request; false when that is not possible (too much left, or the socket failed).
  bool DiscardBody();
  std::string Head(int status, const std::string& content_type,
                   const std::map<std::string, std::string>& extra_headers) const;
  void Complete(int status, const std::string& content_type, std::string_view body,
                const std::map<std::string, std::string>& extra_headers);
  // Answers outside any handler, then closes the connection.
  void FailAndClose(int status, const std::string& message);
  Result<void> Send(std::initializer_list<std::string_view> parts);

  const ServerOptions& options_;
  const Router& router_;
  const int fd_;  // remains owned by Impl::RunConnection
  const TlsPeer* tls_;  // null for a unix client; else outlives the connection
  FdStream stream_;
  beast::flat_buffer buffer_;  // bytes read past what the parser consumed
  std::optional<Parser> parser_;
  Request request_;
  ucred peer_{0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};

  State state_ = State::kIdle;
  bool http11_ = true;
  bool head_ = false;
  bool keep_alive_ = true;
  bool broken_ = false;  // a read or write failed: the connection is done
};

void Connection::Run() {
  // Over TLS fd_ is our own socketpair: its SO_PEERCRED would name the front itself.
  if (!tls_) {
    Result<ucred> cred = sys::GetPeerCred(fd_);
    if (cred) peer_ = *cred;
  }
  for (;;) {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(
        std::min<size_t>(options_.max_header, std::numeric_limits<uint32_t>::max())));
    // Limits are enforced here per route (buffered bodies), not by Beast. Not boost::none:
    // Beast 1.74 compares a Content-Length with the optional limit as "len > none", which is
    // true, so an unset limit rejects every body.
    parser_->body_limit(std::numeric_limits<uint64_t>::max());
    state_ = State::kIdle;
    error_code ec;
    http::read_header(stream_, buffer_, *parser_, ec);
    // With body bytes already buffered behind the head, the buffer_body parser stops at the
    // first of them asking for a buffer: the head is complete, the body is read later.
    if (ec == http::error::need_buffer && parser_->is_header_done()) ec = {};
    if (ec == http::error::header_limit) {
      FailAndClose(431,
                   StrFormat("request header too large: limit is %zu bytes", options_.max_header));
      return;
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        (ec && ec.category() == boost::system::system_category())) {
      return;  // the client closed or the socket failed: nothing to answer
    }
    if (ec) {
      FailAndClose(400, "malformed HTTP request: " + ec.message());
      return;
    }
    const auto& msg = parser_->get();
    http11_ = msg.version() >= 11;
    head_ = msg.method() == http::verb::head;
    keep_alive_ = msg.keep_alive();

    Dispatch();

    if (state_ == State::kHijacked) return;
    if (!answered()) Error(500, "internal error: handler gave no answer");
    if (state_ == State::kStreaming) (void)EndStream();
    if (broken_ || !keep_alive_) return;
    if (!DiscardBody()) return;
  }
}

void Connection::Dispatch() {
  const auto& msg = parser_->get();
  request_ = Request();
  request_.method = std::string(View(msg.method_string()));
  request_.peer_pid = peer_.pid;
  request_.peer_uid = peer_.uid;
  request_.peer_gid = peer_.gid;
  request_.client_fd = fd_;
  if (tls_) {
    request_.transport = Request::Transport::kTls;
    request_.peer_cn = tls_->common_name;
    request_.client_fd = tls_->tcp_fd;
  }
  for (const auto& field : msg) {
    std::string name = Lower(View(field.name_string()));
    std::string value(View(field.value()));
    auto [it, inserted] = request_.headers.emplace(name, value);
    if (!inserted) it->second += ", " + value;
  }
  request_.upgrade_tcp = HasToken(request_.Header("connection"), "upgrade") &&
                         HasToken(request_.Header("upgrade"), "tcp");

  std::string_view target = View(msg.target());
  size_t qmark = target.find('?');
  std::string_view raw_path = target.substr(0, qmark);
  std::string_view raw_query =
      qmark == std::string_view::npos ? std::string_view() : target.substr(qmark + 1);
  if (!StartsWith(raw_path, "/")) {
    Error(400, "invalid request target: " + std::string(target));
    return;
  }
  std::string path_text(raw_path);
  if (std::optional<VersionPrefix> prefix = SplitVersionPrefix(raw_path)) {
    Result<int> minor = CheckApiVersion(prefix->version);
    if (!minor) {
      Error(400, minor.error().message);
      return;
    }
    request_.api_minor = *minor;
    path_text = prefix->rest;
  }
  Result<std::string> path = PercentDecode(path_text, PlusIsSpace::kNo);
  if (!path) {
    Error(400, path.error().message);
    return;
  }
  request_.path = std::move(*path);
  Result<std::multimap<std::string, std::string>> query = ParseQuery(raw_query);
  if (!query) {
    Error(400, query.error().message);
    return;
  }
  request_.query = std::move(*query);

  if (request_.path == "/_ping") {
    if (request_.method != "GET" && request_.method != "HEAD") {
      Error(405, "method not allowed");
      return;
    }
    // dockerd's ping: "OK" for GET, and for HEAD no body and Content-Length: 0.
    Raw(200, "text/plain; charset=utf-8", head_ ? "" : "OK",
        {{"Cache-Control", "no-cache, no-store, must-revalidate"}, {"Pragma", "no-cache"}});
    return;
  }

  Router::Match match = router_.Find(request_.method, request_.path);
  if (!match.handler) {
    if (match.path_known)
      Error(405, "method not allowed");
    else
      Error(404, "page not found");
    return;
  }
  request_.params = std::move(match.params);
  if (match.body == BodyMode::kBuffered) {
    switch (ReadWholeBody(&request_.body, options_.max_body)) {
      case BodyRead::kOk:
        break;
      case BodyRead::kTooLarge:
        keep_alive_ = false;  // the rest of the body is not read
        Error(413, StrFormat("request body too large: limit is %zu bytes", options_.max_body));
        return;
      case BodyRead::kBroken:
        broken_ = true;
        return;
    }
  }
  (*match.handler)(request_, *this);
}

Connection::BodyRead Connection::ReadWholeBody(std::string* out, size_t limit) {
  if (boost::optional<uint64_t> length = parser_->content_length(); length && *length > limit)
    return BodyRead::kTooLarge;
  char buf[16384];
  for (;;) {
    Result<size_t> n = ReadBody(buf, sizeof buf);
    if (!n) return BodyRead::kBroken;
    if (*n == 0) return BodyRead::kOk;
    if (out->size() + *n > limit) return BodyRead::kTooLarge;
    out->append(buf, *n);
  }
}

bool Connection::DiscardBody() {
  if (parser_->is_done()) return true;
  std::string sink;
  return ReadWholeBody(&sink, options_.max_body) == BodyRead::kOk;
}

constexpr size_t kStreamReadBuffer = 128 << 10;

Result<size_t> Connection::ReadBody(char* buf, size_t len) {
  if (len == 0 || !parser_ || parser_->is_done() || state_ == State::kHijacked) return size_t{0};
  if (broken_) return Fail(ErrorKind::kUnavailable, "client connection failed");
  // Beast reads at most the buffer's free capacity, and at least 512 bytes: with the small
  // buffer the head left, a streamed body (an image load: hundreds of MB) took one recv per
  // ~500 bytes. Reads of up to 64 KiB need that much room.
  if (buffer_.capacity() < kStreamReadBuffer) buffer_.reserve(kStreamReadBuffer);
  for (;;) {
    auto& body = parser_->get().body();
    body.data = buf;
    body.size = len;
    error_code ec;
    http::read(stream_, buffer_, *parser_, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      broken_ = true;
      return Fail(ErrorKind::kUnavailable, "reading the request body: %s", ec.message().c_str());
    }
    size_t n = len - parser_->get().body().size;
    if (n > 0 || parser_->is_done()) return n;
  }
}

std::string Connection::Head(int status, const std::string& content_type,
                             const std::map<std::string, std::string>& extra_headers) const {
  std::string head =
      StrFormat("HTTP/1.%d %d %s\r\n", http11_ ? 1 : 0, status, ReasonPhrase(status));
  head += StandardHeaders(options_);
  if (!content_type.empty()) head += "Content-Type: " + content_type + "\r\n";
  for (const auto& [name, value] : extra_headers) head += name + ": " + value + "\r\n";
  if (!keep_alive_)
    head += "Connection: close\r\n";
  else if (!http11_)
    head += "Connection: keep-alive\r\n";  // HTTP/1.0 closes by default
  return head;
}

void Connection::Complete(int status, const std::string& content_type, std::string_view body,
                          const std::map<std::string, std::string>& extra_headers) {
  if (answered()) return;  // a handler bug; the first answer stands
  state_ = State::kComplete;
  std::string head = Head(status, content_type, extra_headers);
  if (!NoBodyStatus(status)) head += StrFormat("Content-Length: %zu\r\n", body.size());
  head += "\r\n";
  if (head_ || NoBodyStatus(status)) body = {};
  (void)Send({head, body});
}

void Connection::FailAndClose(int status, const std::string& message) {
  keep_alive_ = false;
  http11_ = true;
  head_ = false;
  state_ = State::kIdle;
  Error(status, message);
}

Result<void> Connection::Send(std::initializer_list<std::string_view> parts) {
  if (broken_) return Fail(ErrorKind::kUnavailable, "client connection is gone");
  Result<void> sent = sys::SendAll(fd_, parts);
  if (!sent) {
    broken_ = true;
    return Fail(ErrorKind::kUnavailable, "client connection is gone: %s",
                sent.error().message.c_str());
  }
  return Ok();
}

Result<void> Connection::StartStream(int status, const std::string& content_type,
                                     const std::map<std::string, std::string>& extra_headers) {
  if (answered()) return Fail(ErrorKind::kInternal, "stream started after the answer began");
  state_ = State::kStreaming;
  // HTTP/1.0 has no chunked coding: the body runs to the end of the connection.
  if (!http11_) keep_alive_ = false;
  std::string head = Head(status, content_type, extra_headers);
  if (http11_) head += "Transfer-Encoding: chunked\r\n";
  head += "\r\n";
  return Send({head});
}

Result<void> Connection::Write(std::string_view data) {
  if (state_ != State::kStreaming) return Fail(ErrorKind::kInternal, "write outside a stream");
  if (broken_) return Fail(ErrorKind::kUnavailable, "client connection is gone");
  // An empty chunk would end the stream.
  if (data.empty() || head_) return Ok();
  if (!http11_) return Send({data});
  std::string size = StrFormat("%zx\r\n", data.size());
  return Send({size, data, "\r\n"});
}

Result<void> Connection::EndStream() {
  if (state_ != State::kStreaming) return Fail(ErrorKind::kInternal, "no stream to end");
  state_ = State::kStreamEnded;
  if (!http11_ || head_) return Ok();
  return Send({"0\r\n\r\n"});
}

Result<Hijacked> Connection::Hijack(const std::string& content_type) {
  if (answered()) return Fail(ErrorKind::kInternal, "hijack after the answer began");
  MOAT_ASSIGN_OR_RETURN(UniqueFd copy, sys::dup(fd_));
  state_ = State::kHijacked;
  // moby's hijack: 101 only when the client asked to upgrade (the CLI insists on it); older
  // clients get a plain 200 and the raw stream.
  std::string head = request_.upgrade_tcp
                         ? "HTTP/1.1 101 UPGRADED\r\nContent-Type: " + content_type +
                               "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
                         : "HTTP/1.1 200 OK\r\nContent-Type: " + content_type + "\r\n";
  head += StandardHeaders(options_);
  head += "\r\n";
  MOAT_TRY(Send({head}));
  Hijacked out;
  out.fd = std::move(copy);
  out.pending = beast::buffers_to_string(buffer_.data());
  buffer_.consume(buffer_.size());
  return out;
}

}  // namespace

void Server::Impl::RunConnection(uint64_t id, UniqueFd fd,
                                  std::shared_ptr<const tls::Context> tls) {
  if (releaser) releaser->Activity();
  if (tls) {
    RunTlsConnection(fd.get(), std::move(tls));
  } else {
    Connection connection(options, router, fd.get());
    connection.Run();
  }
  // Leave the live set before the fd is closed, so ShutdownAll never touches a reused number.
  {
    std::lock_guard<std::mutex> lock(mu);
    live.erase(id);
    finished.push_back(id);
    fd.reset();
  }
  if (releaser) releaser->Activity();  // closed: the quiet counts from now
}

void Server::Impl::RunTlsConnection(int fd, std::shared_ptr<const tls::Context> tls) {
  auto conn = tls::Connection::Accept(std::move(tls), fd, options.tls_handshake_timeout_ms);
  if (!conn) {
    MOAT_LOG(kInfo, "api: TLS client %s refused: %s", PeerAddress(fd).c_str(),
             conn.error().message.c_str());
    return;
  }
  Result<std::pair<UniqueFd, UniqueFd>> pair = sys::socketpair(SOCK_STREAM);
  if (!pair) {
    MOAT_LOG(kError, "api: TLS relay: %s", pair.error().message.c_str());
    return;
  }
  UniqueFd relay_end = std::move(pair->second);
  tls::Connection* c = conn->get();
  std::thread relay;
  try {
    relay = std::thread([c, &relay_end] {
      c->Relay(relay_end.get());
      // Whatever ended the relay, the HTTP side sees EOF (and EPIPE) now.
      (void)sys::shutdown(relay_end.get(), SHUT_RDWR);
    });
  } catch (const std::system_error&) {
    MOAT_LOG(kError, "api: TLS relay: no thread to be had");
    return;
  }
  MOAT_LOG(kDebug, "api: TLS client %s \"%s\"", PeerAddress(fd).c_str(),
           c->peer_common_name().c_str());
  TlsPeer peer{c->peer_common_name(), fd};
  {
    Connection connection(options, router, pair->first.get(), &peer);
    connection.Run();
  }
  // Closing our end (POLLHUP on the relay's) lets the relay flush, send close_notify and end.
  pair->first.reset();
  relay.join();
}

void Server::Impl::ReapFinished() {
  std::vector<std::thread> done;
  {
    std::lock_guard<std::mutex> lock(mu);
    for (uint64_t id : finished) {
      auto it = threads.find(id);
      if (it == threads.end()) continue;
      done.push_back(std::move(it->second));
      threads.erase(it);
    }
    finished.clear();
  }
  for (std::thread& t : done) t.join();
}

void Server::Impl::ShutdownAll() {
  std::lock_guard<std::mutex> lock(mu);
  // Wakes threads blocked in recv/send on the socket (and handlers holding a hijacked dup of
  // it): both directions see EOF/EPIPE.
  for (const auto& [id, fd] : live) (void)sys::shutdown(fd, SHUT_RDWR);
}

void Server::Impl::RefuseBusy(int fd) {
  std::string body =
      ErrorBody(StrFormat("too many connections: limit is %d", options.max_connections));
  std::string head = StrFormat(
      "HTTP/1.1 503 Service Unavailable\r\n%sContent-Type: "
      "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
      StandardHeaders(options).c_str(), body.size());
  // MSG_DONTWAIT: the accept loop must never block on a client.
  (void)sys::SendAll(fd, {head, body}, MSG_DONTWAIT);
}

Server::Server(ServerOptions options, Router router) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->router = std::move(router);
  Result<UniqueFd> efd = sys::eventfd(0, 0);
  // Only EMFILE/ENFILE/ENOMEM can fail it, at daemon start.
  MOAT_CHECK(efd.has_value());
  impl_->stop_fd = std::move(*efd);
  if (impl_->options.release_quiet_ms > 0)
    impl_->releaser = std::make_unique<sys::QuietReleaser>(
        std::chrono::milliseconds(impl_->options.release_quiet_ms));
}

Server::~Server() = default;

void Server::Stop() { (void)sys::eventfd_write(impl_->stop_fd.get(), 1); }

Result<void> Server::Serve(int listen_fd) { return Serve(std::vector<Listener>{{listen_fd, nullptr}}); }

Result<void> Server::Serve(const std::vector<Listener>& listeners) {
  Impl& s = *impl_;
  Result<void> result = Ok();
  if (listeners.empty()) return Fail(ErrorKind::kInvalidArgument, "no listening socket to serve");
  // fds[0] is the stop eventfd, fds[1 + i] listeners[i].
  std::vector<pollfd> fds;
  fds.push_back({s.stop_fd.get(), POLLIN, 0});
  for (const Listener& l : listeners) fds.push_back({l.fd, POLLIN, 0});
  size_t next = 0;  // round robin over ready listeners, one accept per wakeup
  for (;;) {
    for (pollfd& p : fds) p.revents = 0;
    Result<int> ready = sys::poll(fds.data(), fds.size(), -1);
    if (!ready) {
      result = Fail(std::move(ready).error());
      break;
    }
    s.ReapFinished();
    if (fds[0].revents) break;
    size_t which = listeners.size();
    bool failed = false;
    for (size_t k = 0; k < listeners.size(); ++k) {
      size_t i = (next + k) % listeners.size();
      short rev = fds[1 + i].revents;
      if (rev & (POLLERR | POLLHUP | POLLNVAL)) {
        result = Fail(ErrorKind::kUnavailable, "listening socket failed (poll revents 0x%x)", rev);
        failed = true;
        break;
      }
      if ((rev & POLLIN) && which == listeners.size()) which = i;
    }
    if (failed) break;
    if (which == listeners.size()) continue;
    next = which + 1;
    int listen_fd = listeners[which].fd;
    std::shared_ptr<const tls::Context> tls = listeners[which].tls;
    Result<UniqueFd> conn = sys::accept4(listen_fd, 0);
    if (!conn) {
      int err = conn.error().sys_errno;
      // kUnavailable without errno: EAGAIN on a non-blocking listener (another accept won).
      if (conn.error().kind == ErrorKind::kUnavailable && err == 0) continue;
      if (err == EAGAIN || err == ECONNABORTED || err == EPROTO) continue;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        // Out of resources: the listener stays readable, so wait a little (or for Stop)
        // instead of spinning.
        pollfd stop = {s.stop_fd.get(), POLLIN, 0};
        (void)sys::poll(&stop, 1, 100);
        continue;
      }
      result = Fail(std::move(conn).error());
      break;
    }
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.live.size() >= static_cast<size_t>(std::max(s.options.max_connections, 0))) {
      s.RefuseBusy(conn->get());
      continue;
    }
    uint64_t id = s.next_id++;
    // Ownership passes to the thread as a raw number, so that a thread that cannot start
    // leaves the fd here to be answered and closed.
    int raw = conn->release();
    try {
      s.threads.emplace(id, std::thread([&s, id, raw, tls] { s.RunConnection(id, UniqueFd(raw), tls); }));
    } catch (const std::system_error&) {
      // No thread to be had (EAGAIN: the process hit its thread limit).
      UniqueFd refused(raw);
      s.RefuseBusy(refused.get());
      continue;
    }
    // Still under the lock: the thread cannot erase `id` before it is added.
    s.live.emplace(id, raw);
  }
  s.ShutdownAll();
  std::unordered_map<uint64_t, std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    threads.swap(s.threads);
  }
  // Connections see EOF; new ones are no longer accepted. A thread that is already on its way
  // out may still be erasing itself from `live`, under the lock.
  for (auto& [id, t] : threads) t.join();
  std::lock_guard<std::mutex> lock(s.mu);
  s.finished.clear();
  return result;
}

}  // namespace moat::daemon::api
