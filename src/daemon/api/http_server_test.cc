// Drives Server over a real unix socket in a temp dir with raw HTTP bytes.

#include <gtest/gtest.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <string>
#include <thread>

#include "base/strings.h"
#include "base/sys/io.h"
#include "base/sys/socket.h"
#include "base/sys/socket_io.h"
#include "daemon/api/http.h"

namespace moat::daemon::api {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int kTimeoutMs = 5000;

// The client side of one connection, with a read buffer and timeouts (a test never hangs).
class TestClient {
 public:
  explicit TestClient(UniqueFd fd) : fd_(std::move(fd)) {}

  int fd() const { return fd_.get(); }
  void Close() { fd_.reset(); }

  bool Send(std::string_view data) { return sys::SendAll(fd_.get(), {data}).has_value(); }

  // Reads one recv's worth into the buffer; false on EOF, error or timeout.
  bool Fill(int timeout_ms = kTimeoutMs) {
    pollfd p{fd_.get(), POLLIN, 0};
    Result<int> ready = sys::poll(&p, 1, timeout_ms);
    if (!ready || *ready == 0) return false;
    char buf[65536];
    Result<size_t> n = sys::recv(fd_.get(), buf, sizeof buf, 0);
    if (!n || *n == 0) return false;
    buf_.append(buf, *n);
    return true;
  }

  // Everything up to and including `delim`; "" if it never comes.
  std::string ReadUntil(std::string_view delim) {
    for (;;) {
      size_t at = buf_.find(delim);
      if (at != std::string::npos) return Take(at + delim.size());
      if (!Fill()) return "";
    }
  }
  std::string ReadN(size_t n) {
    while (buf_.size() < n)
      if (!Fill()) return Take(buf_.size());
    return Take(n);
  }
  // True if the server closed the connection (EOF) within the timeout with nothing more sent.
  bool SeesEof(int timeout_ms = kTimeoutMs) {
    if (!buf_.empty()) return false;
    pollfd p{fd_.get(), POLLIN, 0};
    Result<int> ready = sys::poll(&p, 1, timeout_ms);
    if (!ready || *ready == 0) return false;
    char c;
    Result<size_t> n = sys::recv(fd_.get(), &c, 1, 0);
    return !n || *n == 0;
  }

  struct Response {
    std::string status_line;
    int status = 0;
    std::map<std::string, std::string> headers;  // lower-case names
    std::string body;
  };

  Response ReadHead() {
    Response r;
    std::string head = ReadUntil("\r\n\r\n");
    if (head.empty()) return r;
    std::vector<std::string> lines = StrSplit(head.substr(0, head.size() - 4), '\n');
    r.status_line = std::string(TrimWhitespace(lines[0]));
    if (r.status_line.size() >= 12) r.status = atoi(r.status_line.substr(9, 3).c_str());
    for (size_t i = 1; i < lines.size(); ++i) {
      std::string line(TrimWhitespace(lines[i]));
      size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      for (char& c : name) c = static_cast<char>(tolower(c));
      r.headers[name] = std::string(TrimWhitespace(line.substr(colon + 1)));
    }
    return r;
  }

  // One chunk's payload; "" for the last chunk; "<error>" on malformed input.
  std::string ReadChunk() {
    std::string size_line = ReadUntil("\r\n");
    if (size_line.empty()) return "<error>";
    size_t size = strtoul(size_line.c_str(), nullptr, 16);
    std::string data = ReadN(size);
    if (ReadN(2) != "\r\n") return "<error>";
    return data;
  }

  Response ReadResponse(bool head_request = false) {
    Response r = ReadHead();
    if (head_request || r.status == 204 || r.status == 304) return r;
    if (r.headers.count("content-length")) {
      r.body = ReadN(strtoul(r.headers["content-length"].c_str(), nullptr, 10));
    } else if (r.headers["transfer-encoding"] == "chunked") {
      for (std::string chunk = ReadChunk(); !chunk.empty(); chunk = ReadChunk()) {
        if (chunk == "<error>") break;
        r.body += chunk;
      }
    } else {
      while (Fill()) {
      }
      r.body = Take(buf_.size());
    }
    return r;
  }

  const std::string& buffered() const { return buf_; }

 private:
  std::string Take(size_t n) {
    std::string out = buf_.substr(0, n);
    buf_.erase(0, n);
    return out;
  }
  UniqueFd fd_;
  std::string buf_;
};

// Text describing the request as the handler saw it.
void Echo(Request& req, Responder& resp) {
  std::string out =
      StrFormat("%s %s minor=%d", req.method.c_str(), req.path.c_str(), req.api_minor);
  for (const auto& [k, v] : req.params) out += " p:" + k + "=" + v;
  for (const auto& [k, v] : req.query) out += " q:" + k + "=" + v;
  out += " body=" + req.body;
  resp.Raw(200, "text/plain", out);
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "moat-http-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/api.sock";
    Result<UniqueFd> fd = sys::ListenUnix(path_, SOCK_STREAM, 0600);
    ASSERT_TRUE(fd.has_value()) << fd.error().message;
    listen_ = std::move(*fd);
  }
  void TearDown() override {
    StopServer();
    listen_.reset();
    unlink(path_.c_str());
    rmdir(dir_.c_str());
  }

  void StartServer(Router router, ServerOptions options = {}) {
    server_ = std::make_unique<Server>(std::move(options), std::move(router));
    serve_done_ = false;
    thread_ = std::thread([this] {
      serve_result_ = server_->Serve(listen_.get());
      serve_done_ = true;
    });
  }
  void StopServer() {
    if (!thread_.joinable()) return;
    server_->Stop();
    thread_.join();
  }
  TestClient Connect() {
    Result<UniqueFd> fd = sys::ConnectUnix(path_);
    EXPECT_TRUE(fd.has_value());
    return TestClient(fd ? std::move(*fd) : UniqueFd());
  }
  // Sends one request and reads the answer on a fresh connection.
  TestClient::Response RoundTrip(const std::string& request, bool head_request = false) {
    TestClient c = Connect();
    EXPECT_TRUE(c.Send(request));
    return c.ReadResponse(head_request);
  }

  Router EchoRouter() {
    Router r;
    r.Add("GET", "/echo", BodyMode::kBuffered, Echo);
    r.Add("POST", "/echo", BodyMode::kBuffered, Echo);
    r.Add("GET", "/containers/{id}/json", BodyMode::kBuffered, Echo);
    r.Add("GET", "/images/{name*}/json", BodyMode::kBuffered, Echo);
    r.Add("DELETE", "/images/{name*}", BodyMode::kBuffered, Echo);
    return r;
  }

  std::string dir_, path_;
  UniqueFd listen_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::atomic<bool> serve_done_{false};
  Result<void> serve_result_;
};

void ExpectStandardHeaders(TestClient::Response& r) {
  EXPECT_EQ(r.headers["api-version"], "1.47");
  EXPECT_EQ(r.headers["server"], "Moat/0.1.0 (linux)");
  EXPECT_EQ(r.headers["ostype"], "linux");
  EXPECT_EQ(r.headers["docker-experimental"], "false");
}

TEST_F(HttpServerTest, PingHeadThenGetOnOneConnection) {
  StartServer(Router());
  TestClient c = Connect();
  ASSERT_TRUE(c.Send("HEAD /_ping HTTP/1.1\r\nHost: api.moby.localhost\r\n\r\n"));
  TestClient::Response head = c.ReadResponse(/*head_request=*/true);
  EXPECT_EQ(head.status_line, "HTTP/1.1 200 OK");
  ExpectStandardHeaders(head);
  EXPECT_EQ(head.headers["content-length"], "0");
  EXPECT_EQ(head.headers["content-type"], "text/plain; charset=utf-8");
  EXPECT_EQ(head.headers["cache-control"], "no-cache, no-store, must-revalidate");
  EXPECT_EQ(head.headers["pragma"], "no-cache");
  // HEAD sent no body: the next bytes are the GET's answer.
  ASSERT_TRUE(c.Send("GET /v1.41/_ping HTTP/1.1\r\nHost: x\r\n\r\n"));
  TestClient::Response get = c.ReadResponse();
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, "OK");
  EXPECT_EQ(get.headers["content-length"], "2");
  ExpectStandardHeaders(get);
  TestClient::Response post = RoundTrip("POST /_ping HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(post.status, 405);
}

TEST_F(HttpServerTest, VersionPrefixAndWindow) {
  StartServer(EchoRouter());
  TestClient::Response r = RoundTrip("GET /v1.41/echo HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "GET /echo minor=41 body=");
  r = RoundTrip("GET /echo HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.body, "GET /echo minor=47 body=");
  r = RoundTrip("GET /v1.52/_ping HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.headers["content-type"], "application/json");
  ExpectStandardHeaders(r);
  EXPECT_EQ(r.body,
            "{\"message\":\"client version 1.52 is too new. Maximum supported API version is "
            "1.47\"}\n");
  r = RoundTrip("GET /v1.12/echo HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            "{\"message\":\"client version 1.12 is too old. Minimum supported API version is "
            "1.40, please upgrade your client to a newer version\"}\n");
}

TEST_F(HttpServerTest, KeepAliveAndPipelining) {
  StartServer(EchoRouter());
  TestClient c = Connect();
  ASSERT_TRUE(c.Send("GET /echo?a=1 HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse().body, "GET /echo minor=47 q:a=1 body=");
  ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"));
  EXPECT_EQ(c.ReadResponse().body, "POST /echo minor=47 body=abc");
  // Two requests in one write.
  ASSERT_TRUE(
      c.Send("POST /echo HTTP/1.1\r\nContent-Length: 1\r\n\r\nxGET /echo?b=2 HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse().body, "POST /echo minor=47 body=x");
  EXPECT_EQ(c.ReadResponse().body, "GET /echo minor=47 q:b=2 body=");
  // Connection: close is honoured.
  ASSERT_TRUE(c.Send("GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n"));
  TestClient::Response last = c.ReadResponse();
  EXPECT_EQ(last.status, 200);
  EXPECT_EQ(last.headers["connection"], "close");
  EXPECT_TRUE(c.SeesEof());
}

TEST_F(HttpServerTest, Http10ClosesAfterAnswer) {
  StartServer(EchoRouter());
  TestClient c = Connect();
  ASSERT_TRUE(c.Send("GET /echo HTTP/1.0\r\n\r\n"));
  TestClient::Response r = c.ReadResponse();
  EXPECT_EQ(r.status_line, "HTTP/1.0 200 OK");
  EXPECT_EQ(r.body, "GET /echo minor=47 body=");
  EXPECT_TRUE(c.SeesEof());
}

TEST_F(HttpServerTest, ChunkedRequestBody) {
  StartServer(EchoRouter());
  TestClient c = Connect();
  ASSERT_TRUE(
      c.Send("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n"));
  ASSERT_TRUE(c.Send("7\r\n, world\r\n0\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse().body, "POST /echo minor=47 body=hello, world");
  ASSERT_TRUE(c.Send("GET /echo HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse().status, 200);
}

TEST_F(HttpServerTest, BodyTooLarge) {
  ServerOptions options;
  options.max_body = 16;
  StartServer(EchoRouter(), options);
  const std::string expected = "{\"message\":\"request body too large: limit is 16 bytes\"}\n";
  TestClient::Response r =
      RoundTrip("POST /echo HTTP/1.1\r\nContent-Length: 17\r\n\r\n" + std::string(17, 'x'));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.body, expected);
  EXPECT_EQ(r.headers["connection"], "close");
  r = RoundTrip("POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n" +
                std::string(16, 'x') + "\r\n1\r\ny\r\n0\r\n\r\n");
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.body, expected);
  // Exactly the limit is fine.
  r = RoundTrip("POST /echo HTTP/1.1\r\nContent-Length: 16\r\n\r\n" + std::string(16, 'x'));
  EXPECT_EQ(r.status, 200);
}

TEST_F(HttpServerTest, HeaderTooLarge) {
  ServerOptions options;
  options.max_header = 1024;
  StartServer(EchoRouter(), options);
  TestClient c = Connect();
  ASSERT_TRUE(c.Send("GET /echo HTTP/1.1\r\nX-Big: " + std::string(2000, 'a') + "\r\n\r\n"));
  TestClient::Response r = c.ReadResponse();
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(r.body, "{\"message\":\"request header too large: limit is 1024 bytes\"}\n");
  EXPECT_TRUE(c.SeesEof());
}

TEST_F(HttpServerTest, StreamedRequestBody) {
  Router router;
  router.Add("POST", "/images/load", BodyMode::kStreamed, [](Request& req, Responder& resp) {
    std::string got;
    char buf[3];  // small reads: the body crosses several calls
    size_t calls = 0;
    for (;;) {
      Result<size_t> n = resp.ReadBody(buf, sizeof buf);
      if (!n) return resp.Error(500, n.error().message);
      if (*n == 0) break;
      ++calls;
      got.append(buf, *n);
    }
    resp.Raw(200, "text/plain",
             StrFormat("%s calls>=2:%d body_empty=%d", got.c_str(), calls >= 2, req.body.empty()));
  });
  ServerOptions options;
  options.max_body = 4;  // does not apply to streamed bodies
  StartServer(std::move(router), options);
  TestClient c = Connect();
  ASSERT_TRUE(
      c.Send("POST /images/load HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
             "4\r\nabcd\r\n6\r\nefghij\r\n0\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse().body, "abcdefghij calls>=2:1 body_empty=1");
  ASSERT_TRUE(c.Send("POST /images/load HTTP/1.1\r\nContent-Length: 5\r\n\r\n12345"));
  EXPECT_EQ(c.ReadResponse().body, "12345 calls>=2:1 body_empty=1");
}

TEST_F(HttpServerTest, UnreadStreamedBodyIsDiscarded) {
  Router router;
  router.Add("POST", "/skip", BodyMode::kStreamed,
             [](Request&, Responder& resp) { resp.Empty(204); });
  StartServer(std::move(router));
  TestClient c = Connect();
  ASSERT_TRUE(
      c.Send("POST /skip HTTP/1.1\r\nContent-Length: 5\r\n\r\n12345"
             "GET /_ping HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse().status, 204);
  EXPECT_EQ(c.ReadResponse().body, "OK");
}

TEST_F(HttpServerTest, RouteParamsQueryAndPercentDecoding) {
  StartServer(EchoRouter());
  EXPECT_EQ(RoundTrip("GET /v1.45/containers/abc123/json HTTP/1.1\r\n\r\n").body,
            "GET /containers/abc123/json minor=45 p:id=abc123 body=");
  EXPECT_EQ(RoundTrip("GET /v1.41/images/docker.io/myorg/app:1/json HTTP/1.1\r\n\r\n").body,
            "GET /images/docker.io/myorg/app:1/json minor=41 p:name=docker.io/myorg/app:1 body=");
  EXPECT_EQ(RoundTrip("DELETE /v1.41/images/busybox:latest?force=1 HTTP/1.1\r\n\r\n").body,
            "DELETE /images/busybox:latest minor=41 p:name=busybox:latest q:force=1 body=");
  EXPECT_EQ(RoundTrip("DELETE /images/my%2Fimg%3A1 HTTP/1.1\r\n\r\n").body,
            "DELETE /images/my/img:1 minor=47 p:name=my/img:1 body=");
  EXPECT_EQ(
      RoundTrip("GET /echo?repo=docker.io%2Fmyorg%2Ftagged&x=a+b&x=c%2B HTTP/1.1\r\n\r\n").body,
      "GET /echo minor=47 q:repo=docker.io/myorg/tagged q:x=a b q:x=c+ body=");
  TestClient::Response bad = RoundTrip("GET /echo?x=%zz HTTP/1.1\r\n\r\n");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body, "{\"message\":\"invalid URL escape \\\"%zz\\\"\"}\n");
}

TEST_F(HttpServerTest, NotFoundAndMethodNotAllowed) {
  StartServer(EchoRouter());
  TestClient c = Connect();
  ASSERT_TRUE(c.Send("GET /v1.41/nothing HTTP/1.1\r\n\r\n"));
  TestClient::Response r = c.ReadResponse();
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "{\"message\":\"page not found\"}\n");
  ExpectStandardHeaders(r);
  // A body on an unrouted request is read and dropped; the connection stays usable.
  ASSERT_TRUE(c.Send("PUT /echo HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"));
  r = c.ReadResponse();
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.body, "{\"message\":\"method not allowed\"}\n");
  ASSERT_TRUE(c.Send("GET /echo HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse().status, 200);
}

TEST_F(HttpServerTest, AnswersAndErrorEscaping) {
  Router router;
  router.Add("GET", "/none", BodyMode::kBuffered, [](Request&, Responder&) {});
  router.Add("GET", "/error", BodyMode::kBuffered, [](Request&, Responder& resp) {
    resp.Error(409, "name \"/web\" is in use\tby\x01 x");
  });
  router.Add("POST", "/created", BodyMode::kBuffered,
             [](Request&, Responder& resp) { resp.Json(201, "{\"Id\":\"abc\"}"); });
  router.Add("POST", "/start", BodyMode::kBuffered, [](Request&, Responder& resp) {
    resp.Empty(204);
    resp.Empty(500);  // ignored: the first answer stands
  });
  router.Add("GET", "/raw", BodyMode::kBuffered, [](Request&, Responder& resp) {
    resp.Raw(200, "application/x-tar", "TAR", {{"X-Docker-Container-Path-Stat", "e30="}});
  });
  StartServer(std::move(router));
  TestClient c = Connect();
  ASSERT_TRUE(c.Send("GET /none HTTP/1.1\r\n\r\n"));
  TestClient::Response r = c.ReadResponse();
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(r.body, "{\"message\":\"internal error: handler gave no answer\"}\n");
  ASSERT_TRUE(c.Send("GET /error HTTP/1.1\r\n\r\n"));
  r = c.ReadResponse();
  EXPECT_EQ(r.status_line, "HTTP/1.1 409 Conflict");
  EXPECT_EQ(r.body, "{\"message\":\"name \\\"/web\\\" is in use\\tby\\u0001 x\"}\n");
  ASSERT_TRUE(c.Send("POST /created HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
  r = c.ReadResponse();
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_EQ(r.body, "{\"Id\":\"abc\"}");
  ASSERT_TRUE(c.Send("POST /start HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
  r = c.ReadResponse();
  EXPECT_EQ(r.status, 204);
  EXPECT_EQ(r.headers.count("content-length"), 0u);
  ExpectStandardHeaders(r);
  ASSERT_TRUE(c.Send("GET /raw HTTP/1.1\r\n\r\n"));
  r = c.ReadResponse();
  EXPECT_EQ(r.headers["content-type"], "application/x-tar");
  EXPECT_EQ(r.headers["x-docker-container-path-stat"], "e30=");
  EXPECT_EQ(r.body, "TAR");
}

TEST_F(HttpServerTest, PeerCredentials) {
  Router router;
  router.Add("GET", "/who", BodyMode::kBuffered, [](Request& req, Responder& resp) {
    resp.Raw(
        200, "text/plain",
        StrFormat("%d %u %u %d", req.peer_pid, req.peer_uid, req.peer_gid, req.client_fd >= 0));
  });
  StartServer(std::move(router));
  EXPECT_EQ(RoundTrip("GET /who HTTP/1.1\r\n\r\n").body,
            StrFormat("%d %u %u 1", getpid(), getuid(), getgid()));
}

TEST_F(HttpServerTest, StreamArrivesChunkByChunkBeforeEnd) {
  std::promise<void> headers_seen, first_seen;
  std::shared_future<void> headers_seen_f = headers_seen.get_future().share();
  std::shared_future<void> first_seen_f = first_seen.get_future().share();
  Router router;
  router.Add("POST", "/containers/{id}/wait", BodyMode::kBuffered, [&](Request&, Responder& resp) {
    if (!resp.StartStream(200, "application/json")) return;
    if (headers_seen_f.wait_for(milliseconds(kTimeoutMs)) != std::future_status::ready) return;
    (void)resp.Write("{\"StatusCode\":");
    if (first_seen_f.wait_for(milliseconds(kTimeoutMs)) != std::future_status::ready) return;
    (void)resp.Write("0}\n");
    (void)resp.Write("");  // sends nothing (an empty chunk would end the stream)
    (void)resp.EndStream();
  });
  StartServer(std::move(router));
  TestClient c = Connect();
  ASSERT_TRUE(
      c.Send("POST /v1.41/containers/x/wait?condition=removed HTTP/1.1\r\n"
             "Content-Length: 0\r\n\r\n"));
  // The handler is still blocked: headers must be here already.
  TestClient::Response r = c.ReadHead();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["transfer-encoding"], "chunked");
  EXPECT_EQ(r.headers["content-type"], "application/json");
  ExpectStandardHeaders(r);
  EXPECT_TRUE(c.buffered().empty());
  headers_seen.set_value();
  EXPECT_EQ(c.ReadChunk(), "{\"StatusCode\":");
  first_seen.set_value();
  EXPECT_EQ(c.ReadChunk(), "0}\n");
  EXPECT_EQ(c.ReadChunk(), "");  // the last chunk
  // The connection is reusable after the stream.
  ASSERT_TRUE(c.Send("GET /_ping HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(c.ReadResponse().body, "OK");
}

TEST_F(HttpServerTest, StreamLeftOpenIsEnded) {
  Router router;
  router.Add("GET", "/logs", BodyMode::kBuffered, [](Request&, Responder& resp) {
    if (resp.StartStream(200, "application/vnd.docker.raw-stream")) (void)resp.Write("line\n");
  });
  StartServer(std::move(router));
  TestClient::Response r = RoundTrip("GET /logs HTTP/1.1\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "line\n");
}

TEST_F(HttpServerTest, WriteFailsAfterClientDisconnects) {
  std::promise<void> started;
  std::promise<std::string> outcome;
  Router router;
  router.Add("GET", "/events", BodyMode::kBuffered, [&](Request&, Responder& resp) {
    if (!resp.StartStream(200, "application/json")) return outcome.set_value("start failed");
    started.set_value();
    auto deadline = steady_clock::now() + milliseconds(kTimeoutMs);
    while (steady_clock::now() < deadline) {
      Result<void> w = resp.Write("{\"status\":\"tick\"}\n");
      if (!w) {
        outcome.set_value(StrFormat("failed kind=%d", static_cast<int>(w.error().kind)));
        return;
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
    outcome.set_value("never failed");
  });
  StartServer(std::move(router));
  std::future<std::string> result = outcome.get_future();
  {
    TestClient c = Connect();
    ASSERT_TRUE(c.Send("GET /events HTTP/1.1\r\n\r\n"));
    EXPECT_EQ(c.ReadHead().status, 200);
    ASSERT_EQ(started.get_future().wait_for(milliseconds(kTimeoutMs)), std::future_status::ready);
  }  // the client goes away
  ASSERT_EQ(result.wait_for(milliseconds(2 * kTimeoutMs)), std::future_status::ready);
  EXPECT_EQ(result.get(), StrFormat("failed kind=%d", static_cast<int>(ErrorKind::kUnavailable)));
}

TEST_F(HttpServerTest, HijackUpgradesAndPassesPendingBytes) {
  Router router;
  router.Add(
      "POST", "/containers/{id}/attach", BodyMode::kBuffered, [](Request& req, Responder& resp) {
        Result<Hijacked> h = resp.Hijack("application/vnd.docker.raw-stream");
        if (!h) return;
        // Echo back what the client sent, pending bytes first, until it half-closes.
        std::string got = h->pending;
        char buf[256];
        for (;;) {
          Result<size_t> n = sys::recv(h->fd.get(), buf, sizeof buf, 0);
          if (!n || *n == 0) break;
          got.append(buf, *n);
        }
        (void)sys::SendAll(h->fd.get(), {StrFormat("upgrade=%d got=", req.upgrade_tcp), got});
      });
  StartServer(std::move(router));
  TestClient c = Connect();
  // stdin bytes follow the request in the same write, before any answer.
  ASSERT_TRUE(
      c.Send("POST /v1.41/containers/x/attach?stdin=1&stream=1 HTTP/1.1\r\n"
             "Content-Length: 0\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
             "Content-Type: text/plain\r\n\r\nearly-stdin;"));
  TestClient::Response r = c.ReadHead();
  EXPECT_EQ(r.status_line, "HTTP/1.1 101 UPGRADED");
  EXPECT_EQ(r.headers["content-type"], "application/vnd.docker.raw-stream");
  EXPECT_EQ(r.headers["connection"], "Upgrade");
  EXPECT_EQ(r.headers["upgrade"], "tcp");
  ExpectStandardHeaders(r);
  ASSERT_TRUE(c.Send("late-stdin"));
  ASSERT_TRUE(sys::shutdown(c.fd(), SHUT_WR).has_value());
  EXPECT_EQ(c.ReadN(40), "upgrade=1 got=early-stdin;late-stdin");
  EXPECT_TRUE(c.SeesEof());
}

TEST_F(HttpServerTest, HijackWithoutUpgradeAnswers200) {
  Router router;
  router.Add("POST", "/exec/{id}/start", BodyMode::kBuffered, [](Request& req, Responder& resp) {
    Result<Hijacked> h = resp.Hijack("application/vnd.docker.multiplexed-stream");
    if (h) (void)sys::SendAll(h->fd.get(), {"raw:" + req.body});
  });
  StartServer(std::move(router));
  TestClient c = Connect();
  ASSERT_TRUE(
      c.Send("POST /exec/e1/start HTTP/1.1\r\nContent-Length: 16\r\n\r\n"
             "{\"Detach\":false}"));
  TestClient::Response r = c.ReadHead();
  EXPECT_EQ(r.status_line, "HTTP/1.1 200 OK");
  EXPECT_EQ(r.headers["content-type"], "application/vnd.docker.multiplexed-stream");
  EXPECT_EQ(c.ReadN(20), "raw:{\"Detach\":false}");
  EXPECT_TRUE(c.SeesEof());
}

TEST_F(HttpServerTest, ClientVanishingMidRequestIsHarmless) {
  std::atomic<int> calls{0};
  Router router;
  router.Add("POST", "/echo", BodyMode::kBuffered, [&](Request&, Responder& resp) {
    ++calls;
    resp.Empty(204);
  });
  router.Add("POST", "/load", BodyMode::kStreamed, [&](Request&, Responder& resp) {
    char buf[16];
    Result<size_t> n = size_t{0};
    do n = resp.ReadBody(buf, sizeof buf);
    while (n && *n > 0);
    resp.Raw(200, "text/plain", n ? "complete" : "failed: " + n.error().message);
    calls += 10;
  });
  StartServer(std::move(router));
  for (const char* partial :
       {"POST /echo HTTP/1.1\r\nContent-Le", "POST /echo HTTP/1.1\r\nContent-Length: 100\r\n\r\nab",
        "POST /load HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"}) {
    TestClient c = Connect();
    ASSERT_TRUE(c.Send(partial));
    std::this_thread::sleep_for(milliseconds(20));
  }
  // The buffered handler never ran; the streamed one saw its body fail.
  auto deadline = steady_clock::now() + milliseconds(kTimeoutMs);
  while (calls.load() != 10 && steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(5));
  EXPECT_EQ(calls.load(), 10);
  EXPECT_EQ(RoundTrip("GET /_ping HTTP/1.1\r\n\r\n").body, "OK");
  auto start = steady_clock::now();
  StopServer();
  EXPECT_LT(steady_clock::now() - start, milliseconds(kTimeoutMs));
  EXPECT_TRUE(serve_result_.has_value());
}

TEST_F(HttpServerTest, MaxConnectionsAnswers503) {
  ServerOptions options;
  options.max_connections = 1;
  StartServer(EchoRouter(), options);
  TestClient first = Connect();
  ASSERT_TRUE(first.Send("GET /echo HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(first.ReadResponse().status, 200);  // accepted and still open
  TestClient second = Connect();
  TestClient::Response r = second.ReadResponse();
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.body, "{\"message\":\"too many connections: limit is 1\"}\n");
  EXPECT_TRUE(second.SeesEof());
  first.Close();
  // Once the first is gone, a new connection is served (the slot frees asynchronously).
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {
    // The send itself may fail (EPIPE) while the server is still refusing.
    TestClient c = Connect();
    (void)c.Send("GET /_ping HTTP/1.1\r\n\r\n");
    served = c.ReadResponse().status == 200;
    if (!served) std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(served);
}

TEST_F(HttpServerTest, StopReturnsServeWithOpenConnections) {
  std::promise<void> in_handler;
  Router router;
  // A hijacked connection whose handler blocks reading the client: Stop must wake it.
  router.Add("POST", "/attach", BodyMode::kBuffered, [&](Request&, Responder& resp) {
    Result<Hijacked> h = resp.Hijack("application/vnd.docker.raw-stream");
    in_handler.set_value();
    if (!h) return;
    char buf[16];
    while (true) {
      Result<size_t> n = sys::recv(h->fd.get(), buf, sizeof buf, 0);
      if (!n || *n == 0) return;
    }
  });
  StartServer(std::move(router));
  TestClient idle = Connect();
  ASSERT_TRUE(idle.Send("GET /_ping HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(idle.ReadResponse().status, 200);
  TestClient partial = Connect();
  ASSERT_TRUE(partial.Send("GET /_ping HTTP/1.1\r\nHo"));
  TestClient attached = Connect();
  ASSERT_TRUE(
      attached.Send("POST /attach HTTP/1.1\r\nContent-Length: 0\r\n"
                    "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"));
  ASSERT_EQ(in_handler.get_future().wait_for(milliseconds(kTimeoutMs)), std::future_status::ready);
  EXPECT_FALSE(serve_done_.load());
  auto start = steady_clock::now();
  server_->Stop();
  thread_.join();
  EXPECT_LT(steady_clock::now() - start, milliseconds(2000));
  EXPECT_TRUE(serve_result_.has_value());
  EXPECT_TRUE(idle.SeesEof());
  EXPECT_TRUE(partial.SeesEof());
}

TEST_F(HttpServerTest, StopBeforeServeReturnsAtOnce) {
  Server server{ServerOptions(), Router()};
  server.Stop();
  auto start = steady_clock::now();
  EXPECT_TRUE(server.Serve(listen_.get()).has_value());
  EXPECT_LT(steady_clock::now() - start, milliseconds(2000));
}

TEST_F(HttpServerTest, MalformedRequestGets400AndClose) {
  StartServer(EchoRouter());
  TestClient c = Connect();
  ASSERT_TRUE(c.Send("THIS IS NOT HTTP\r\n\r\n"));
  TestClient::Response r = c.ReadResponse();
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_TRUE(c.SeesEof());
}

}  // namespace
}  // namespace moat::daemon::api
