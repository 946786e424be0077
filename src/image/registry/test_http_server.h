#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <thread>

// A loopback HTTP/1.1 server for the registry client's tests: one connection at a time, one
// request per connection (every answer closes it). The handler writes the raw answer to the
// connection's fd, so a test can send anything, including a cut-off body.
namespace moat::image::registry::testing {

struct HttpRequest {
  std::string method;
  std::string target;                          // "/v2/x/manifests/latest?a=b"
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

class TestHttpServer {
 public:
  using Handler = std::function<void(const HttpRequest& req, int fd)>;
  explicit TestHttpServer(Handler handler);  // listens on 127.0.0.1:<ephemeral>
  ~TestHttpServer();                         // stops and joins
  int port() const { return port_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

  // Writes a complete answer with Content-Length and "Connection: close".
  static void Respond(int fd, int status, const std::map<std::string, std::string>& headers,
                      const std::string& body);
  static void WriteRaw(int fd, const std::string& data);

 private:
  void Loop();
  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace moat::image::registry::testing
