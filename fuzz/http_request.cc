// Fuzz target: moatd's HTTP request handling, moat::daemon::api::Server (src/daemon/api/http.h):
// Boost.Beast's request parser as the server drives it, header folding, the /vX.Y/ prefix and
// version window, percent-decoding of the path and query, routing, buffered and streamed
// (chunked) request bodies, keep-alive pipelining and hijacking.
//
// Seam: the parser lives in a Connection class private to http_server.cc and reads from a
// socket, so the target runs a real Server on an abstract unix socket (started once) and, per
// input, connects, writes the bytes, half-closes and reads the answer to EOF. Routes mirror the
// shapes of moatd's (fuzz handlers echo what the server parsed). A seam without sockets would be
// a Connection over an abstract byte stream (see the report in fuzz/README.md).
// Checks: every input ends (the server closes the connection within the per-input deadline),
// and every answer starts with an HTTP status line.

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "daemon/api/http.h"
#include "daemon/api/url.h"
#include "fuzz_util.h"

using namespace moat::daemon::api;

namespace {

sockaddr_un g_addr;
socklen_t g_addr_len = 0;

std::string Echo(const Request& req) {
  std::string out = "{\"method\":" + JsonQuote(req.method) + ",\"path\":" + JsonQuote(req.path) +
                    ",\"api\":" + std::to_string(req.api_minor) + ",\"params\":{";
  for (const auto& [k, v] : req.params) out += JsonQuote(k) + ":" + JsonQuote(v) + ",";
  out += "},\"query\":{";
  for (const auto& [k, v] : req.query) out += JsonQuote(k) + ":" + JsonQuote(v) + ",";
  out += "},\"headers\":{";
  for (const auto& [k, v] : req.headers) out += JsonQuote(k) + ":" + JsonQuote(v) + ",";
  out += "},\"body\":" + JsonQuote(req.body);
  out += ",\"all\":" + std::string(req.QueryBool("all") ? "true" : "false");
  out += ",\"name\":" + JsonQuote(req.Query("name").value_or(""));
  out += ",\"ct\":" + JsonQuote(req.Header("content-type")) + "}\n";
  return out;
}

void EchoHandler(Request& req, Responder& resp) { resp.Json(200, Echo(req)); }

// Like image load / archive PUT: reads the body as it comes, streams progress back.
void StreamHandler(Request& req, Responder& resp) {
  if (!resp.StartStream(200, "application/json")) return;
  char buf[4096];
  for (;;) {
    auto n = resp.ReadBody(buf, sizeof buf);
    if (!n || *n == 0) break;
    if (!resp.Write(JsonQuote(std::string_view(buf, *n)) + "\n")) return;
  }
  (void)resp.Write(Echo(req));
  (void)resp.EndStream();
}

// Like attach / exec start: takes the connection over, echoes what the client sent after the
// request, and hangs up.
void HijackHandler(Request&, Responder& resp) {
  auto h = resp.Hijack("application/vnd.docker.raw-stream");
  if (!h) return;
  if (!h->pending.empty()) (void)!write(h->fd.get(), h->pending.data(), h->pending.size());
}

void ErrorHandler(Request& req, Responder& resp) {
  resp.Error(404, "No such container: " + req.params["id"]);
}

Router MakeRouter() {
  Router r;
  r.Add("GET", "/version", BodyMode::kBuffered, EchoHandler);
  r.Add("POST", "/containers/create", BodyMode::kBuffered, EchoHandler);
  r.Add("GET", "/containers/json", BodyMode::kBuffered, EchoHandler);
  r.Add("GET", "/containers/{id}/json", BodyMode::kBuffered, ErrorHandler);
  r.Add("POST", "/containers/{id}/attach", BodyMode::kBuffered, HijackHandler);
  r.Add("POST", "/containers/{id}/wait", BodyMode::kBuffered, StreamHandler);
  r.Add("PUT", "/containers/{id}/archive", BodyMode::kStreamed, StreamHandler);
  r.Add("HEAD", "/containers/{id}/archive", BodyMode::kBuffered, EchoHandler);
  r.Add("DELETE", "/containers/{id}", BodyMode::kBuffered, EchoHandler);
  r.Add("POST", "/exec/{id}/start", BodyMode::kBuffered, HijackHandler);
  r.Add("POST", "/images/load", BodyMode::kStreamed, StreamHandler);
  r.Add("POST", "/images/create", BodyMode::kStreamed, StreamHandler);
  r.Add("GET", "/images/{name*}/json", BodyMode::kBuffered, EchoHandler);
  r.Add("POST", "/images/{name*}/tag", BodyMode::kBuffered, EchoHandler);
  r.Add("DELETE", "/images/{name*}", BodyMode::kBuffered, EchoHandler);
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  std::memset(&g_addr, 0, sizeof g_addr);
  g_addr.sun_family = AF_UNIX;
  // Abstract name: nothing to clean up on the file system.
  int n = std::snprintf(g_addr.sun_path + 1, sizeof g_addr.sun_path - 1, "moat-fuzz-http-%d",
                        static_cast<int>(getpid()));
  g_addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&g_addr), g_addr_len) != 0 ||
      listen(fd, 64) != 0) {
    std::perror("http_request: listening socket");
    std::abort();
  }
  ServerOptions options;
  // Small limits, so that fuzzed inputs reach the 413 and 431 paths.
  options.max_body = 16 << 10;
  options.max_header = 8 << 10;
  options.max_connections = 8;
  auto* server = new Server(options, MakeRouter());
  std::thread([server, fd] {
    auto r = server->Serve(fd);
    std::fprintf(stderr, "http_request: Serve returned: %s\n",
                 r ? "ok" : r.error().message.c_str());
    std::abort();
  }).detach();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) std::abort();
  if (connect(fd, reinterpret_cast<sockaddr*>(&g_addr), g_addr_len) != 0) {
    std::perror("http_request: connect");
    std::abort();
  }
  size_t sent = 0;
  bool write_closed = false;
  std::string answer;
  // Write and read at once: the server may answer (and block on a full socket) before it has
  // read everything.
  for (;;) {
    if (!write_closed && sent == size) {
      shutdown(fd, SHUT_WR);
      write_closed = true;
    }
    pollfd p = {fd, static_cast<short>(POLLIN | (write_closed ? 0 : POLLOUT)), 0};
    int ready = poll(&p, 1, 10000);
    if (ready == 0)
      moat::fuzz::Violation("the server neither answered nor closed within 10 s",
                            "answer so far: " + answer.substr(0, 200));
    if (ready < 0) continue;
    if (p.revents & POLLOUT) {
      ssize_t w = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
      if (w > 0) sent += static_cast<size_t>(w);
      else if (w < 0 && errno != EAGAIN) write_closed = true;  // the server hung up
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[16384];
      ssize_t r = recv(fd, buf, sizeof buf, 0);
      if (r > 0) {
        if (answer.size() < (1 << 20)) answer.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || errno != EAGAIN) {
        break;
      }
    }
  }
  close(fd);
  if (!answer.empty() && answer.compare(0, 7, "HTTP/1.") != 0)
    moat::fuzz::Violation("an answer without a status line", answer.substr(0, 200));
  return 0;
}
