#include "daemon/front/routes.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "base/stdcopy.h"
#include "base/strings.h"
#include "daemon/privsep/commands.h"

namespace moat::daemon::front {
namespace {

using api::BodyMode;
using api::Request;
using api::Responder;
using privsep::Op;

int StatusFor(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNotFound: return 404;
    case ErrorKind::kInvalidArgument: return 400;
    case ErrorKind::kUnsupported: return 400;
    case ErrorKind::kConflict:
    case ErrorKind::kAlreadyExists: return 409;
    case ErrorKind::kPermissionDenied: return 403;
    case ErrorKind::kUnavailable: return 503;
    case ErrorKind::kInternal: return 500;
  }
  return 500;
}

void SendError(Responder& resp, const Error& e) { resp.Error(StatusFor(e.kind), e.message); }

// Calls the core with the client connection attached; answers errors itself. Returns nullopt
// when it answered.
std::optional<privsep::Reply> CallCore(CoreClient* core, Request& req, Responder& resp, Op op, Json args,
                                       std::vector<int> extra_fds = {}) {
  std::vector<int> fds;
  if (req.client_fd >= 0) fds.push_back(req.client_fd);
  else fds.push_back(-1);
  if (fds[0] < 0) fds.clear();
  for (int fd : extra_fds) fds.push_back(fd);
  // Over TCP the kernel has no peer credentials: the client certificate's name is what the
  // front knows (the core records it as the front's word; it sees the socket is TCP itself).
  if (req.transport == Request::Transport::kTls && args.is_object()) args["_tls_client_cn"] = req.peer_cn;
  auto reply = core->Call(op, std::move(args), fds);
  if (!reply) {
    SendError(resp, reply.error());
    return std::nullopt;
  }
  if (!reply->ok) {
    SendError(resp, reply->error);
    return std::nullopt;
  }
  return std::move(*reply);
}

// The core's {"status":N,"body":...} as the HTTP answer.
void Render(Responder& resp, const privsep::Reply& reply) {
  int status = reply.result.value("status", 200);
  const Json& body = reply.result.contains("body") ? reply.result["body"] : Json();
  if (body.is_null()) {
    resp.Empty(status);
  } else {
    resp.Json(status, Dump(body));
  }
}

// Simple request/response: op with args, rendered.
void Simple(CoreClient* core, Request& req, Responder& resp, Op op, Json args) {
  if (auto reply = CallCore(core, req, resp, op, std::move(args))) Render(resp, *reply);
}

Result<Json> BodyJson(const Request& req) {
  if (req.body.empty()) return Json::object();
  return ParseJson(req.body);
}

int64_t QueryInt(const Request& req, const char* key, int64_t fallback) {
  auto v = req.Query(key);
  if (!v || v->empty()) return fallback;
  char* end = nullptr;
  long long n = strtoll(v->c_str(), &end, 10);
  if (end == v->c_str() || *end != '\0') return fallback;
  return n;
}

// Docker's since/until: unix seconds with an optional fraction.
int64_t QueryTimeNano(const Request& req, const char* key) {
  auto v = req.Query(key);
  if (!v || v->empty()) return 0;
  char* end = nullptr;
  double d = strtod(v->c_str(), &end);
  if (end == v->c_str()) return 0;
  return static_cast<int64_t>(d * 1e9);
}

Result<Json> QueryFilters(const Request& req) {
  auto f = req.Query("filters");
  if (!f || f->empty()) return Json::object();
  MOAT_ASSIGN_OR_RETURN(Json j, ParseJson(*f));
  if (!j.is_object()) return Fail(ErrorKind::kInvalidArgument, "filters: expected a JSON object");
  return j;
}

std::string StreamContentType(const Request& req, bool tty) {
  if (!tty && req.api_minor >= 42) return "application/vnd.docker.multiplexed-stream";
  return "application/vnd.docker.raw-stream";
}

// Copies `fd` to the client as a chunked stream until EOF or the client leaves.
void StreamFd(Responder& resp, int fd, int status, const std::string& content_type,
              const std::map<std::string, std::string>& headers = {}) {
  if (!resp.StartStream(status, content_type, headers)) return;
  char buf[32768];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (!resp.Write(std::string_view(buf, static_cast<size_t>(n)))) return;
  }
  (void)resp.EndStream();
}

bool WriteAllFd(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Splices a hijacked client connection and a stream socket until the stream ends. Client EOF
// half-closes the stream (the container's stdin closes); stream EOF ends the connection.
void Splice(api::Hijacked& h, int stream) {
  if (!h.pending.empty()) (void)WriteAllFd(stream, h.pending.data(), h.pending.size());
  bool client_open = true;
  char buf[32768];
  for (;;) {
    pollfd fds[2] = {{stream, POLLIN, 0}, {h.fd.get(), static_cast<short>(client_open ? POLLIN : 0), 0}};
    int n = ::poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = ::read(stream, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      if (!WriteAllFd(h.fd.get(), buf, static_cast<size_t>(r))) break;
    }
    if (client_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t r = ::read(h.fd.get(), buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        client_open = false;
        ::shutdown(stream, SHUT_WR);
      } else if (!WriteAllFd(stream, buf, static_cast<size_t>(r))) {
        client_open = false;
      }
    }
  }
  ::shutdown(h.fd.get(), SHUT_RDWR);
}

// Pumps the streamed request body into `fd` (closed at the end).
void PumpBody(Responder& resp, UniqueFd fd) {
  char buf[65536];
  for (;;) {
    auto n = resp.ReadBody(buf, sizeof buf);
    if (!n || *n == 0) break;
    if (!WriteAllFd(fd.get(), buf, *n)) break;
  }
}

std::string Base64(const std::string& in) {
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out += kAlphabet[(v >> k) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// Docker's UpdateConfig (Resources and RestartPolicy): only known keys, type-checked.
Result<Json> DecodeUpdate(const Json& body) {
  if (!body.is_object()) return Fail(ErrorKind::kInvalidArgument, "request body: expected a JSON object");
  Json out = Json::object();
  for (const char* k : {"Memory", "MemorySwap", "MemoryReservation", "NanoCpus", "CpuShares", "CpuPeriod",
                        "CpuQuota", "PidsLimit", "BlkioWeight"}) {
    int64_t v = 0;
    if (!body.contains(k) || body[k].is_null()) continue;
    MOAT_TRY(GetInt(body, k, &v, k));
    out[k] = v;
  }
  for (const char* k : {"CpusetCpus", "CpusetMems"}) {
    std::string v;
    if (!body.contains(k) || body[k].is_null()) continue;
    MOAT_TRY(GetString(body, k, &v, k));
    out[k] = v;
  }
  MOAT_ASSIGN_OR_RETURN(const Json* rp, GetObject(body, "RestartPolicy", "RestartPolicy"));
  if (rp) {
    std::string name;
    int64_t max = 0;
    MOAT_TRY(GetString(*rp, "Name", &name, "RestartPolicy.Name"));
    MOAT_TRY(GetInt(*rp, "MaximumRetryCount", &max, "RestartPolicy.MaximumRetryCount"));
    out["RestartPolicy"] = {{"Name", name}, {"MaximumRetryCount", max}};
  }
  return out;
}

Result<std::pair<UniqueFd, UniqueFd>> Pipe() {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return FailErrno("pipe2");
  // 1 MiB instead of 64 KiB: the bodies pumped through (image loads, imports) are large, and
  // a small pipe costs a wakeup of each side every 64 KiB. Best effort (pipe-max-size).
  (void)fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
  return std::make_pair(UniqueFd(p[0]), UniqueFd(p[1]));
}

}  // namespace

api::Router MakeRouter(CoreClient* core, FrontInfo info) {
  api::Router r;
  auto add = [&](const char* method, const char* pattern, BodyMode mode, api::Handler h) {
    r.Add(method, pattern, mode, std::move(h));
  };
  const BodyMode kB = BodyMode::kBuffered;

  add("GET", "/version", kB, [info](Request&, Responder& resp) {
    struct utsname u;
    uname(&u);
    std::string ver = StrFormat("1.%d", api::kMaxApiMinor), min = StrFormat("1.%d", api::kMinApiMinor);
    Json v = {{"Platform", {{"Name", "Moat Engine"}}},
              {"Components", {{{"Name", "Engine"}, {"Version", info.version},
                               {"Details", {{"ApiVersion", ver}, {"MinAPIVersion", min}, {"Os", "linux"},
                                            {"Arch", "amd64"}, {"KernelVersion", u.release}}}}}},
              {"Version", info.version}, {"ApiVersion", ver}, {"MinAPIVersion", min},
              {"GitCommit", ""}, {"GoVersion", ""}, {"Os", "linux"}, {"Arch", "amd64"},
              {"KernelVersion", u.release}, {"BuildTime", ""}};
    resp.Json(200, Dump(v));
  });
  add("GET", "/info", kB, [core](Request& req, Responder& resp) { Simple(core, req, resp, Op::kSystemInfo, Json::object()); });
  add("GET", "/system/df", kB, [core](Request& req, Responder& resp) { Simple(core, req, resp, Op::kSystemDf, Json::object()); });
  add("GET", "/events", kB, [core](Request& req, Responder& resp) {
    auto filters = QueryFilters(req);
    if (!filters) return SendError(resp, filters.error());
    // "since=0" asks for the whole replay: any given since is at least 1 ns.
    int64_t since = req.Query("since") ? std::max<int64_t>(1, QueryTimeNano(req, "since")) : 0;
    Json args = {{"since", since}, {"until", QueryTimeNano(req, "until")}, {"filters", *filters}};
    auto reply = CallCore(core, req, resp, Op::kEvents, args);
    if (!reply) return;
    if (reply->fds.empty()) return resp.Error(500, "no event stream");
    StreamFd(resp, reply->fds[0].get(), 200, "application/json");
  });
  add("POST", "/swarm/leave", kB, [](Request&, Responder& resp) { resp.Error(503, "This node is not part of a swarm"); });
  // Networks.
  add("GET", "/networks", kB, [core](Request& req, Responder& resp) {
    auto filters = QueryFilters(req);
    if (!filters) return SendError(resp, filters.error());
    Simple(core, req, resp, Op::kNetworkList, {{"filters", *filters}});
  });
  add("GET", "/networks/{id}", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kNetworkInspect, {{"id", req.params["id"]}});
  });
  add("POST", "/networks/create", kB, [core](Request& req, Responder& resp) {
    auto body = BodyJson(req);
    if (!body) return SendError(resp, body.error());
    if (!body->is_object()) return resp.Error(400, "the request body must be a JSON object");
    // Only the fields Moat knows travel to the core, which checks their types.
    Json fwd = Json::object();
    for (const char* k : {"Name", "Driver", "Internal", "Attachable", "EnableIPv6", "Options", "Labels", "IPAM"}) {
      if (body->contains(k) && !(*body)[k].is_null()) fwd[k] = (*body)[k];
    }
    if (!fwd.contains("Name") || !fwd["Name"].is_string() || fwd["Name"].get<std::string>().empty()) {
      return resp.Error(400, "Name: a network name is required");
    }
    Simple(core, req, resp, Op::kNetworkCreate, {{"body", fwd}});
  });
  add("DELETE", "/networks/{id}", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kNetworkRemove, {{"id", req.params["id"]}});
  });
  add("POST", "/networks/prune", kB, [core](Request& req, Responder& resp) {
    auto filters = QueryFilters(req);
    if (!filters) return SendError(resp, filters.error());
    Simple(core, req, resp, Op::kNetworkPrune, {{"filters", *filters}});
  });
  add("POST", "/networks/{id}/connect", kB, [core](Request& req, Responder& resp) {
    auto body = BodyJson(req);
    if (!body) return SendError(resp, body.error());
    std::string container;
    if (auto got = GetString(*body, "Container", &container, "Container"); !got) return SendError(resp, got.error());
    if (container.empty()) return resp.Error(400, "Container: a container is required");
    Json ep = Json::object();
    if (body->contains("EndpointConfig") && !(*body)["EndpointConfig"].is_null()) {
      auto decoded = privsep::DecodeEndpointSpec((*body)["EndpointConfig"], "EndpointConfig");
      if (!decoded) return SendError(resp, decoded.error());
      ep = privsep::EncodeEndpointSpec(*decoded);
    }
    Simple(core, req, resp, Op::kNetworkConnect, {{"id", req.params["id"]}, {"container", container}, {"endpoint", ep}});
  });
  add("POST", "/networks/{id}/disconnect", kB, [core](Request& req, Responder& resp) {
    auto body = BodyJson(req);
    if (!body) return SendError(resp, body.error());
    std::string container;
    bool force = false;
    if (auto got = GetString(*body, "Container", &container, "Container"); !got) return SendError(resp, got.error());
    if (auto got = GetBool(*body, "Force", &force, "Force"); !got) return SendError(resp, got.error());
    if (container.empty()) return resp.Error(400, "Container: a container is required");
    Simple(core, req, resp, Op::kNetworkDisconnect, {{"id", req.params["id"]}, {"container", container}, {"force", force}});
  });
  add("GET", "/plugins/{name*}/json", kB, [](Request& req, Responder& resp) {
    resp.Error(404, "plugin \"" + req.params["name"] + "\" not found");
  });

  // Images.
  add("GET", "/images/json", kB, [core](Request& req, Responder& resp) { Simple(core, req, resp, Op::kImageList, Json::object()); });
  add("POST", "/images/load", BodyMode::kStreamed, [core](Request& req, Responder& resp) {
    auto pipe = Pipe();
    if (!pipe) return SendError(resp, pipe.error());
    auto reply = CallCore(core, req, resp, Op::kImageLoad, {{"quiet", req.QueryBool("quiet")}}, {pipe->first.get()});
    pipe->first.reset();
    if (!reply) return;
    PumpBody(resp, std::move(pipe->second));
    if (reply->fds.empty()) return resp.Error(500, "no load stream");
    StreamFd(resp, reply->fds[0].get(), 200, "application/json");
  });
  add("POST", "/images/create", BodyMode::kStreamed, [core](Request& req, Responder& resp) {
    auto src = req.Query("fromSrc");
    if (!src) {
      // docker pull: the progress stream comes back from the core through a pipe.
      auto ref = privsep::PullReference(req.Query("fromImage").value_or(""), req.Query("tag").value_or(""));
      if (!ref) return SendError(resp, ref.error());
      auto platform = privsep::ParsePlatform(req.Query("platform").value_or(""));
      if (!platform) return SendError(resp, platform.error());
      auto auth = privsep::DecodeRegistryAuthHeader(req.Header("x-registry-auth"));
      if (!auth) return SendError(resp, auth.error());
      auto reply = CallCore(core, req, resp, Op::kImagePull,
                            {{"ref", *ref},
                             {"platform", {{"os", platform->os}, {"architecture", platform->architecture},
                                           {"variant", platform->variant}}},
                             {"auth", privsep::EncodeRegistryAuth(*auth)}});
      if (!reply) return;
      if (reply->fds.empty()) return resp.Error(500, "no pull stream");
      return StreamFd(resp, reply->fds[0].get(), 200, "application/json");
    }
    if (*src != "-") return resp.Error(400, "import from a URL is not supported; send the tarball in the body (fromSrc=-)");
    auto pipe = Pipe();
    if (!pipe) return SendError(resp, pipe.error());
    Json args = {{"repo", req.Query("repo").value_or("")}, {"tag", req.Query("tag").value_or("")},
                 {"message", req.Query("message").value_or("")}};
    std::optional<privsep::Reply> reply;
    UniqueFd w = std::move(pipe->second);
    std::thread pump([&resp, &w] { PumpBody(resp, std::move(w)); });
    reply = CallCore(core, req, resp, Op::kImageImport, args, {pipe->first.get()});
    pipe->first.reset();
    pump.join();
    if (!reply) return;
    Json body = reply->result.value("body", Json::object());
    resp.Json(200, Dump(Json{{"status", body.value("status", "")}}) + "\n");
  });
  auto save = [core](Request& req, Responder& resp, std::vector<std::string> names) {
    auto reply = CallCore(core, req, resp, Op::kImageSave, {{"names", names}});
    if (!reply) return;
    if (reply->fds.empty()) return resp.Error(500, "no save stream");
    StreamFd(resp, reply->fds[0].get(), 200, "application/x-tar");
  };
  add("GET", "/images/get", kB, [save](Request& req, Responder& resp) {
    std::vector<std::string> names;
    auto range = req.query.equal_range("names");
    for (auto it = range.first; it != range.second; ++it) names.push_back(it->second);
    save(req, resp, names);
  });
  add("GET", "/images/{name*}/get", kB, [save](Request& req, Responder& resp) { save(req, resp, {req.params["name"]}); });
  add("POST", "/images/{name*}/push", kB, [core](Request& req, Responder& resp) {
    auto auth = privsep::DecodeRegistryAuthHeader(req.Header("x-registry-auth"));
    if (!auth) return SendError(resp, auth.error());
    auto ref = privsep::PullReference(req.params["name"], req.Query("tag").value_or(""));
    if (!ref) return SendError(resp, ref.error());
    auto reply = CallCore(core, req, resp, Op::kImagePush, {{"ref", *ref}, {"auth", privsep::EncodeRegistryAuth(*auth)}});
    if (!reply) return;
    if (reply->fds.empty()) return resp.Error(500, "no push stream");
    StreamFd(resp, reply->fds[0].get(), 200, "application/json");
  });
  add("POST", "/auth", kB, [core](Request& req, Responder& resp) {
    auto body = BodyJson(req);
    if (!body) return SendError(resp, body.error());
    auto auth = privsep::DecodeRegistryAuth(*body);
    if (!auth) return SendError(resp, auth.error());
    Simple(core, req, resp, Op::kAuth, {{"auth", privsep::EncodeRegistryAuth(*auth)}});
  });
  add("GET", "/images/{name*}/json", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kImageInspect, {{"name", req.params["name"]}});
  });
  add("GET", "/images/{name*}/history", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kImageHistory, {{"name", req.params["name"]}});
  });
  add("POST", "/images/prune", kB, [core](Request& req, Responder& resp) { Simple(core, req, resp, Op::kImagePrune, Json::object()); });
  add("POST", "/images/{name*}/tag", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kImageTag,
           {{"name", req.params["name"]}, {"repo", req.Query("repo").value_or("")}, {"tag", req.Query("tag").value_or("")}});
  });
  add("DELETE", "/images/{name*}", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kImageRemove,
           {{"name", req.params["name"]}, {"force", req.QueryBool("force")}, {"noprune", req.QueryBool("noprune")}});
  });

  // Containers.
  add("POST", "/containers/create", kB, [core](Request& req, Responder& resp) {
    auto body = BodyJson(req);
    if (!body) return SendError(resp, body.error());
    auto spec = privsep::DecodeContainerSpec(*body, req.Query("name").value_or(""));
    if (!spec) return SendError(resp, spec.error());
    Simple(core, req, resp, Op::kContainerCreate, {{"name", spec->name}, {"spec", privsep::EncodeContainerSpec(*spec)}});
  });
  add("GET", "/containers/json", kB, [core](Request& req, Responder& resp) {
    auto filters = QueryFilters(req);
    if (!filters) return SendError(resp, filters.error());
    Simple(core, req, resp, Op::kContainerList,
           {{"all", req.QueryBool("all")}, {"limit", QueryInt(req, "limit", 0)}, {"filters", *filters}});
  });
  add("POST", "/containers/prune", kB, [core](Request& req, Responder& resp) { Simple(core, req, resp, Op::kContainerPrune, Json::object()); });
  add("GET", "/containers/{id}/json", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kContainerInspect, {{"id", req.params["id"]}});
  });
  add("POST", "/containers/{id}/start", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kContainerStart, {{"id", req.params["id"]}});
  });
  add("POST", "/containers/{id}/stop", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kContainerStop, {{"id", req.params["id"]}, {"timeout", QueryInt(req, "t", -1)}});
  });
  add("POST", "/containers/{id}/restart", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kContainerRestart, {{"id", req.params["id"]}, {"timeout", QueryInt(req, "t", -1)}});
  });
  add("POST", "/containers/{id}/kill", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kContainerKill, {{"id", req.params["id"]}, {"signal", req.Query("signal").value_or("")}});
  });
  add("POST", "/containers/{id}/pause", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kContainerPause, {{"id", req.params["id"]}});
  });
  add("POST", "/containers/{id}/unpause", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kContainerUnpause, {{"id", req.params["id"]}});
  });
  add("POST", "/containers/{id}/rename", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kContainerRename, {{"id", req.params["id"]}, {"name", req.Query("name").value_or("")}});
  });
  add("POST", "/containers/{id}/resize", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kContainerResize,
           {{"id", req.params["id"]}, {"h", QueryInt(req, "h", 0)}, {"w", QueryInt(req, "w", 0)}});
  });
  add("GET", "/containers/{id}/top", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kContainerTop, {{"id", req.params["id"]}, {"ps_args", req.Query("ps_args").value_or("")}});
  });
  add("DELETE", "/containers/{id}", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kContainerRemove,
           {{"id", req.params["id"]}, {"force", req.QueryBool("force")}, {"volumes", req.QueryBool("v")}});
  });
  add("POST", "/containers/{id}/wait", kB, [core](Request& req, Responder& resp) {
    // 404 before the stream starts; then the headers go out at once and the body follows when
    // the condition holds (the docker CLI relies on both).
    if (!CallCore(core, req, resp, Op::kContainerInspect, {{"id", req.params["id"]}})) return;
    if (!resp.StartStream(200, "application/json")) return;
    auto reply = core->Call(Op::kContainerWait, {{"id", req.params["id"]}, {"condition", req.Query("condition").value_or("")}},
                            req.client_fd >= 0 ? std::vector<int>{req.client_fd} : std::vector<int>{});
    Json body;
    if (!reply || !reply->ok) {
      std::string msg = !reply ? reply.error().message : reply->error.message;
      body = {{"StatusCode", -1}, {"Error", {{"Message", msg}}}};
    } else {
      body = reply->result.value("body", Json::object());
    }
    (void)resp.Write(Dump(body) + "\n");
    (void)resp.EndStream();
  });
  add("GET", "/containers/{id}/logs", kB, [core](Request& req, Responder& resp) {
    bool out = req.QueryBool("stdout"), err = req.QueryBool("stderr");
    if (!out && !err) return resp.Error(400, "Bad parameters: you must choose at least one stream");
    std::string tail = req.Query("tail").value_or("all");
    int64_t tail_n = tail == "all" || tail.empty() ? -1 : QueryInt(req, "tail", -1);
    Json args = {{"id", req.params["id"]}, {"follow", req.QueryBool("follow")}, {"stdout", out}, {"stderr", err},
                 {"timestamps", req.QueryBool("timestamps")}, {"since", QueryTimeNano(req, "since")},
                 {"until", QueryTimeNano(req, "until")}, {"tail", tail_n}};
    auto reply = CallCore(core, req, resp, Op::kContainerLogs, args);
    if (!reply) return;
    if (reply->fds.empty()) return resp.Error(500, "no log stream");
    bool tty = reply->result.value("body", Json::object()).value("tty", false);
    StreamFd(resp, reply->fds[0].get(), 200, StreamContentType(req, tty));
  });
  add("POST", "/containers/{id}/attach", kB, [core](Request& req, Responder& resp) {
    Json args = {{"id", req.params["id"]}, {"stdin", req.QueryBool("stdin")}, {"stdout", req.QueryBool("stdout")},
                 {"stderr", req.QueryBool("stderr")}, {"stream", req.QueryBool("stream")}, {"logs", req.QueryBool("logs")}};
    // The docker CLI attaches before it starts the container and waits for the 101 first: the
    // connection is upgraded at once, and the core's attach (which waits for the container's
    // monitor) follows.
    auto inspect = CallCore(core, req, resp, Op::kContainerInspect, {{"id", req.params["id"]}});
    if (!inspect) return;
    bool tty = inspect->result.value("body", Json::object()).value("Config", Json::object()).value("Tty", false);
    auto h = resp.Hijack(StreamContentType(req, tty));
    if (!h) return;
    auto reply = core->Call(Op::kContainerAttach, args,
                            req.client_fd >= 0 ? std::vector<int>{req.client_fd} : std::vector<int>{});
    if (!reply || !reply->ok || reply->fds.empty()) {
      // The stream has started: a daemon error goes on stream 3 (systemerr) when framed.
      std::string msg = !reply ? reply.error().message : !reply->ok ? reply->error.message : "no attach stream";
      if (!tty) {
        std::string frame = StdcopyFrame(3, msg);
        (void)WriteAllFd(h->fd.get(), frame.data(), frame.size());
      }
      return;
    }
    Splice(*h, reply->fds[0].get());
  });
  add("POST", "/containers/{id}/exec", kB, [core](Request& req, Responder& resp) {
    auto body = BodyJson(req);
    if (!body) return SendError(resp, body.error());
    auto spec = privsep::DecodeExecSpec(*body);
    if (!spec) return SendError(resp, spec.error());
    Simple(core, req, resp, Op::kExecCreate, {{"id", req.params["id"]}, {"spec", privsep::EncodeExecSpec(*spec)}});
  });
  add("POST", "/exec/{id}/start", kB, [core](Request& req, Responder& resp) {
    auto body = BodyJson(req);
    if (!body) return SendError(resp, body.error());
    bool detach = false;
    if (auto got = GetBool(*body, "Detach", &detach, "Detach"); !got) return SendError(resp, got.error());
    if (detach) {
      if (CallCore(core, req, resp, Op::kExecStart, {{"id", req.params["id"]}, {"detach", true}})) resp.Empty(200);
      return;
    }
    // As dockerd: the connection is upgraded before the process starts, so that the client has
    // parsed the 101 before any output follows (a client reading the headers through a buffered
    // reader would otherwise swallow the first output with them: docker-py does).
    auto inspect = CallCore(core, req, resp, Op::kExecInspect, {{"id", req.params["id"]}});
    if (!inspect) return;
    bool tty = inspect->result.value("body", Json::object()).value("ProcessConfig", Json::object()).value("tty", false);
    auto h = resp.Hijack(StreamContentType(req, tty));
    if (!h) return;
    auto reply = core->Call(Op::kExecStart, {{"id", req.params["id"]}, {"detach", false}},
                            req.client_fd >= 0 ? std::vector<int>{req.client_fd} : std::vector<int>{});
    if (!reply || !reply->ok || reply->fds.empty()) {
      // The stream has started: the error goes into it (on stdout, as dockerd writes it).
      std::string msg = (!reply ? reply.error().message : !reply->ok ? reply->error.message : "no exec stream") + "\r\n";
      if (!tty) msg = StdcopyFrame(1, msg);
      (void)WriteAllFd(h->fd.get(), msg.data(), msg.size());
      return;
    }
    Splice(*h, reply->fds[0].get());
  });
  add("POST", "/exec/{id}/resize", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kExecResize, {{"id", req.params["id"]}, {"h", QueryInt(req, "h", 0)}, {"w", QueryInt(req, "w", 0)}});
  });
  add("GET", "/exec/{id}/json", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kExecInspect, {{"id", req.params["id"]}});
  });

  add("GET", "/containers/{id}/stats", kB, [core](Request& req, Responder& resp) {
    bool stream = req.QueryBool("stream", true) && !req.QueryBool("one-shot", false);
    Json args = {{"id", req.params["id"]}};
    auto first = CallCore(core, req, resp, Op::kContainerStats, args);
    if (!first) return;
    if (!stream) return resp.Json(200, Dump(first->result.value("body", Json::object())));
    if (!resp.StartStream(200, "application/json")) return;
    Json body = first->result.value("body", Json::object());
    for (;;) {
      if (!resp.Write(Dump(body) + "\n")) return;
      std::this_thread::sleep_for(std::chrono::seconds(1));
      auto next = core->Call(Op::kContainerStats, args, {});
      if (!next || !next->ok) break;
      body = next->result.value("body", Json::object());
    }
    (void)resp.EndStream();
  });
  add("POST", "/containers/{id}/update", kB, [core](Request& req, Responder& resp) {
    auto body = BodyJson(req);
    if (!body) return SendError(resp, body.error());
    auto update = DecodeUpdate(*body);
    if (!update) return SendError(resp, update.error());
    Simple(core, req, resp, Op::kContainerUpdate, {{"id", req.params["id"]}, {"resources", *update}});
  });
  add("HEAD", "/containers/{id}/archive", kB, [core](Request& req, Responder& resp) {
    auto path = req.Query("path");
    if (!path || path->empty()) return resp.Error(400, "path is required");
    auto reply = CallCore(core, req, resp, Op::kContainerArchiveStat, {{"id", req.params["id"]}, {"path", *path}});
    if (!reply) return;
    std::string stat = Dump(reply->result.value("body", Json::object()));
    resp.Raw(200, "application/json", "", {{"X-Docker-Container-Path-Stat", Base64(stat)}});
  });
  add("GET", "/containers/{id}/archive", kB, [core](Request& req, Responder& resp) {
    auto path = req.Query("path");
    if (!path || path->empty()) return resp.Error(400, "path is required");
    auto reply = CallCore(core, req, resp, Op::kContainerArchiveGet, {{"id", req.params["id"]}, {"path", *path}});
    if (!reply) return;
    if (reply->fds.empty()) return resp.Error(500, "no archive stream");
    std::string stat = Dump(reply->result.value("body", Json::object()));
    StreamFd(resp, reply->fds[0].get(), 200, "application/x-tar", {{"X-Docker-Container-Path-Stat", Base64(stat)}});
  });
  add("PUT", "/containers/{id}/archive", BodyMode::kStreamed, [core](Request& req, Responder& resp) {
    auto path = req.Query("path");
    if (!path || path->empty()) return resp.Error(400, "path is required");
    auto pipe = Pipe();
    if (!pipe) return SendError(resp, pipe.error());
    UniqueFd w = std::move(pipe->second);
    std::thread pump([&resp, &w] { PumpBody(resp, std::move(w)); });
    auto reply = CallCore(core, req, resp, Op::kContainerArchivePut,
                          {{"id", req.params["id"]}, {"path", *path},
                           {"no_overwrite_dir_non_dir", req.QueryBool("noOverwriteDirNonDir")},
                           {"copy_uid_gid", req.QueryBool("copyUIDGID")}},
                          {pipe->first.get()});
    pipe->first.reset();
    pump.join();
    if (reply) resp.Empty(200);
  });
  add("GET", "/containers/{id}/export", kB, [core](Request& req, Responder& resp) {
    auto reply = CallCore(core, req, resp, Op::kContainerExport, {{"id", req.params["id"]}});
    if (!reply) return;
    if (reply->fds.empty()) return resp.Error(500, "no export stream");
    StreamFd(resp, reply->fds[0].get(), 200, "application/octet-stream");
  });
  add("GET", "/containers/{id}/changes", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kContainerChanges, {{"id", req.params["id"]}});
  });
  add("POST", "/commit", kB, [core](Request& req, Responder& resp) {
    auto body = BodyJson(req);
    if (!body) return SendError(resp, body.error());
    std::vector<std::string> changes;
    auto range = req.query.equal_range("changes");
    for (auto it = range.first; it != range.second; ++it) changes.push_back(it->second);
    Json args = {{"id", req.Query("container").value_or("")}, {"repo", req.Query("repo").value_or("")},
                 {"tag", req.Query("tag").value_or("")}, {"comment", req.Query("comment").value_or("")},
                 {"author", req.Query("author").value_or("")}, {"pause", req.QueryBool("pause", true)},
                 {"changes", changes}};
    // The optional container config in the body: only Cmd, Entrypoint, Env, WorkingDir, User,
    // Labels, ExposedPorts are taken, type-checked here and again in the core.
    Json config = Json::object();
    std::optional<std::vector<std::string>> cmd, entrypoint;
    std::vector<std::string> env;
    std::string workdir, user;
    std::map<std::string, std::string> labels;
    for (auto got : {GetStrSlice(*body, "Cmd", &cmd, "Cmd"), GetStrSlice(*body, "Entrypoint", &entrypoint, "Entrypoint"),
                   GetStringList(*body, "Env", &env, "Env"), GetString(*body, "WorkingDir", &workdir, "WorkingDir"),
                   GetString(*body, "User", &user, "User"), GetStringMap(*body, "Labels", &labels, "Labels")}) {
      if (!got) return SendError(resp, got.error());
    }
    if (cmd) config["Cmd"] = *cmd;
    if (entrypoint) config["Entrypoint"] = *entrypoint;
    if (!env.empty()) config["Env"] = env;
    if (!workdir.empty()) config["WorkingDir"] = workdir;
    if (!user.empty()) config["User"] = user;
    if (!labels.empty()) config["Labels"] = labels;
    args["config"] = config;
    Simple(core, req, resp, Op::kContainerCommit, args);
  });

  // Volumes.
  add("GET", "/volumes", kB, [core](Request& req, Responder& resp) { Simple(core, req, resp, Op::kVolumeList, Json::object()); });
  add("POST", "/volumes/create", kB, [core](Request& req, Responder& resp) {
    auto body = BodyJson(req);
    if (!body) return SendError(resp, body.error());
    std::string name;
    if (auto got = GetString(*body, "Name", &name, "Name"); !got) return SendError(resp, got.error());
    Simple(core, req, resp, Op::kVolumeCreate, {{"name", name}});
  });
  add("POST", "/volumes/prune", kB, [core](Request& req, Responder& resp) { Simple(core, req, resp, Op::kVolumePrune, Json::object()); });
  add("GET", "/volumes/{name}", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kVolumeInspect, {{"name", req.params["name"]}});
  });
  add("DELETE", "/volumes/{name}", kB, [core](Request& req, Responder& resp) {
    Simple(core, req, resp, Op::kVolumeRemove, {{"name", req.params["name"]}, {"force", req.QueryBool("force")}});
  });
  return r;
}

}  // namespace moat::daemon::front
