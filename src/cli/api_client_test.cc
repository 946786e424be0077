#include "cli/api_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "base/sys/fs.h"
#include "cli/stdcopy.h"

namespace moat::cli {
namespace {

// A fake daemon on a unix socket in a temp dir: every request (headers + Content-Length or
// chunked body) is answered by `handler`, which returns the raw response bytes; returning
// "" closes the connection. One thread per connection, all joined on destruction.
class FakeDaemon {
 public:
  using Handler = std::function<std::string(const std::string& request_head, const std::string& body)>;

  explicit FakeDaemon(Handler handler) : handler_(std::move(handler)) {
    char tmpl[] = "/tmp/moat-cli-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/sock";
    listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener_, 16), 0);
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~FakeDaemon() {
    stop_ = true;
    acceptor_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : conns_) ::shutdown(fd, SHUT_RDWR);
    }
    for (auto& t : workers_) t.join();
    ::close(listener_);
    (void)sys::RemoveAll(dir_);
  }
  std::string host() const { return "unix://" + path_; }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard<std::mutex> lock(mu_);
      conns_.push_back(fd);
      workers_.emplace_back([this, fd] { Serve(fd); });
    }
  }
  void Serve(int fd) {
    std::string buf;
    char tmp[4096];
    for (;;) {
      size_t end;
      while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::read(fd, tmp, sizeof tmp);
        if (n <= 0) return Close(fd);
        buf.append(tmp, static_cast<size_t>(n));
      }
      std::string head = buf.substr(0, end + 4);
      buf.erase(0, end + 4);
      std::string body;
      size_t cl = head.find("Content-Length: ");
      if (cl != std::string::npos) {
        size_t len = std::strtoul(head.c_str() + cl + 16, nullptr, 10);
        while (buf.size() < len) {
          ssize_t n = ::read(fd, tmp, sizeof tmp);
          if (n <= 0) return Close(fd);
          buf.append(tmp, static_cast<size_t>(n));
        }
        body = buf.substr(0, len);
        buf.erase(0, len);
      } else if (head.find("Transfer-Encoding: chunked") != std::string::npos) {
        while (buf.find("\r\n0\r\n\r\n") == std::string::npos && buf.rfind("0\r\n\r\n", 0) != 0) {
          ssize_t n = ::read(fd, tmp, sizeof tmp);
          if (n <= 0) return Close(fd);
          buf.append(tmp, static_cast<size_t>(n));
        }
        body = buf;
        buf.clear();
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(head.substr(0, head.find("\r\n")));
      }
      std::string resp = handler_(head, body);
      if (resp.empty()) return Close(fd);
      if (::write(fd, resp.data(), resp.size()) != static_cast<ssize_t>(resp.size())) return Close(fd);
      if (resp.find("Connection: close") != std::string::npos) return Close(fd);
    }
  }
  void Close(int fd) { ::shutdown(fd, SHUT_RDWR); }

  Handler handler_;
  std::string dir_, path_;
  int listener_ = -1;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::thread> workers_;
  std::vector<std::string> requests_;
};

std::string Reply(int status, const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n" +
         extra + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string Chunked(const std::vector<std::string>& chunks) {
  std::string out = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const auto& c : chunks) {
    char len[16];
    snprintf(len, sizeof len, "%zx", c.size());
    out += std::string(len) + "\r\n" + c + "\r\n";
  }
  return out + "0\r\n\r\n";
}

TEST(ApiClientTest, ResolveHostOrder) {
  EXPECT_EQ(*ResolveHost("unix:///flag.sock", "unix:///moat.sock", "unix:///docker.sock"),
            "unix:///flag.sock");
  EXPECT_EQ(*ResolveHost("", "unix:///moat.sock", "unix:///docker.sock"), "unix:///moat.sock");
  EXPECT_EQ(*ResolveHost("", "", "unix:///docker.sock"), "unix:///docker.sock");
  EXPECT_EQ(*ResolveHost("", nullptr, "tcp://1.2.3.4:2375"), kDefaultHost);
  EXPECT_EQ(*ResolveHost("", nullptr, nullptr), "unix:///run/moat/moat.sock");
  auto bad = ResolveHost("ssh://127.0.0.1:2375", nullptr, nullptr);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidArgument);
}

TEST(ApiClientTest, NegotiateVersion) {
  EXPECT_EQ(NegotiateVersion("1.47", "1.41"), "1.41");
  EXPECT_EQ(NegotiateVersion("1.47", "1.51"), "1.47");
  EXPECT_EQ(NegotiateVersion("1.47", "1.100"), "1.47");
  EXPECT_EQ(NegotiateVersion("1.47", "1.9"), "1.9");
  EXPECT_EQ(NegotiateVersion("1.47", "garbage"), "1.47");
}

TEST(ApiClientTest, DaemonErrorMapping) {
  Error e = DaemonError(404, R"({"message":"No such container: x"})");
  EXPECT_EQ(e.kind, ErrorKind::kNotFound);
  EXPECT_EQ(e.message, "Error response from daemon: No such container: x");
  EXPECT_EQ(DaemonError(409, "{}").kind, ErrorKind::kConflict);
  EXPECT_EQ(DaemonError(500, "plain text\n").message, "Error response from daemon: plain text");
}

TEST(ApiClientTest, CannotConnectSaysWhatToDo) {
  ApiClient c("unix:///nonexistent/moat-cli-test.sock");
  auto r = c.Negotiate();
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnavailable);
  EXPECT_NE(r.error().message.find("Cannot connect to the Moat daemon at "
                                   "unix:///nonexistent/moat-cli-test.sock. Is moatd running?"),
            std::string::npos);
}

TEST(ApiClientTest, PingNegotiatesAndPrefixesRequests) {
  FakeDaemon d([](const std::string& head, const std::string&) {
    if (head.rfind("HEAD /_ping ", 0) == 0) return Reply(200, "");
    if (head.rfind("GET /v1.41/containers/json", 0) == 0) return Reply(200, R"([{"Id":"abc"}])");
    return Reply(404, R"({"message":"page not found"})");
  });
  ApiClient c(d.host());
  ASSERT_TRUE(c.Negotiate().has_value());
  EXPECT_EQ(c.api_version(), "1.41");
  auto list = c.CallJson("GET", "/containers/json");
  ASSERT_TRUE(list.has_value()) << list.error().message;
  EXPECT_EQ(GetString((*list)[0], "Id"), "abc");
  auto missing = c.CallJson("GET", "/nope");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().message, "Error response from daemon: page not found");
  auto reqs = d.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0], "HEAD /_ping HTTP/1.1");
  EXPECT_EQ(reqs[1], "GET /v1.41/containers/json HTTP/1.1");
}

TEST(ApiClientTest, StreamDeliversChunks) {
  FakeDaemon d([](const std::string& head, const std::string&) {
    if (head.rfind("HEAD", 0) == 0) return Reply(200, "");
    return Chunked({StdcopyFrame(StdStream::kStdout, "a\n"), StdcopyFrame(StdStream::kStderr, "b\n")});
  });
  ApiClient c(d.host());
  ASSERT_TRUE(c.Negotiate().has_value());
  std::string got;
  ASSERT_TRUE(c.Stream("GET", "/containers/x/logs", {}, [&](std::string_view s) -> Result<void> {
                 got.append(s);
                 return Ok();
               }).has_value());
  EXPECT_EQ(got, StdcopyFrame(StdStream::kStdout, "a\n") + StdcopyFrame(StdStream::kStderr, "b\n"));
}

TEST(ApiClientTest, HijackKeepsBytesSentWithTheHeaders) {
  FakeDaemon d([](const std::string& head, const std::string&) {
    if (head.rfind("HEAD", 0) == 0) return Reply(200, "");
    EXPECT_NE(head.find("Upgrade: tcp"), std::string::npos);
    return std::string("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                       "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\nearly-bytes") +
           "\r\nConnection: close";  // makes the fake close after writing
  });
  ApiClient c(d.host());
  ASSERT_TRUE(c.Negotiate().has_value());
  auto h = c.Hijack("/containers/x/attach?stream=1&stdout=1");
  ASSERT_TRUE(h.has_value()) << h.error().message;
  std::string all = h->pending;
  char buf[256];
  ssize_t n;
  while ((n = ::read(h->fd.get(), buf, sizeof buf)) > 0) all.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(all.substr(0, 11), "early-bytes");
}

TEST(ApiClientTest, HijackRefusalIsADaemonError) {
  FakeDaemon d([](const std::string& head, const std::string&) {
    if (head.rfind("HEAD", 0) == 0) return Reply(200, "");
    return Reply(409, R"({"message":"container x is not running"})");
  });
  ApiClient c(d.host());
  ASSERT_TRUE(c.Negotiate().has_value());
  auto h = c.Hijack("/exec/x/start", "{}");
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.error().message, "Error response from daemon: container x is not running");
}

TEST(ApiClientTest, UploadSendsChunkedBody) {
  std::string received;
  std::mutex mu;
  FakeDaemon d([&](const std::string& head, const std::string& body) {
    if (head.rfind("HEAD", 0) == 0) return Reply(200, "");
    std::lock_guard<std::mutex> lock(mu);
    received = body;
    return Chunked({"{\"stream\":\"Loaded image: x:1\\n\"}\n"});
  });
  char tmpl[] = "/tmp/moat-cli-upload-XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "tar-bytes", 9), 9);
  ASSERT_EQ(::lseek(fd, 0, SEEK_SET), 0);
  ApiClient c(d.host());
  ASSERT_TRUE(c.Negotiate().has_value());
  std::string out;
  uint64_t sent = 0;
  auto r = c.Upload("POST", "/images/load?quiet=1", fd, "application/x-tar",
                    [&](std::string_view s) -> Result<void> {
                      out.append(s);
                      return Ok();
                    },
                    [&](uint64_t n) { sent = n; });
  ::close(fd);
  ::unlink(tmpl);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(sent, 9u);
  EXPECT_NE(out.find("Loaded image: x:1"), std::string::npos);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_NE(received.find("tar-bytes"), std::string::npos);
}

}  // namespace
}  // namespace moat::cli
