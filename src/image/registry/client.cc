// The registry library's only libcurl user. libcurl is a C library (no exceptions); callbacks
// never throw either: they record errors in the transfer state and abort the transfer.
#include "image/registry/client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>

#include "base/base64.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/sys/seccomp.h"  // sys::pread
#include "image/digest.h"
#include "image/registry/auth.h"
#include "image/registry/location.h"
#include "image/registry/registry_json.h"

namespace moat::image::registry {
namespace {

constexpr size_t kMaxErrorBody = 64 << 10;
constexpr char kSystemCaPath[] = "/etc/ssl/certs";

std::once_flag g_curl_init;  // curl_global_init must run once before any handle exists

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return out;
}

bool FileExists(const std::string& p) { return access(p.c_str(), R_OK) == 0; }

std::string ScopeFor(const std::string& repo, bool push) {
  return "repository:" + repo + (push ? ":pull,push" : ":pull");
}

}  // namespace

struct Client::Shared {
  CURLSH* share = nullptr;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> locks;
  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Shared*>(user)->locks[data].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Shared*>(user)->locks[data].unlock();
  }
  Shared() {
    share = curl_share_init();
    MOAT_CHECK(share != nullptr);
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, &Shared::Lock);
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, &Shared::Unlock);
    curl_share_setopt(share, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  }
  ~Shared() { curl_share_cleanup(share); }
};

struct Client::Request {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;
  std::string authorization;  // set by Send
  // Request body: either `body` or `body_fd` (pread from body_offset, body_len bytes).
  std::string body;
  int body_fd = -1;
  int64_t body_offset = 0;
  int64_t body_len = -1;  // -1: `body`
  // 2xx response bytes go here when set (return an error to abort); else into Response::body.
  // The response so far (status, headers) is passed along.
  std::function<Result<void>(const Response&, std::string_view)> on_data;
  size_t max_body = kMaxErrorBody;
  bool follow_redirects = true;
  // Only the caller's own requests to the registry carry the registry's client certificate.
  bool registry_tls = true;
  // Read position of the body for the read callback.
  int64_t read_pos = 0;
};

struct Client::Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lowercase name -> value (repeats joined ", ")
  std::string body;
  CURLcode code = CURLE_OK;
  std::string curl_error;
  bool body_too_large = false;
  std::optional<Error> data_error;  // from on_data
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

namespace {

struct Transfer {
  Client::Request* req;
  Client::Response* resp;
};

size_t HeaderCb(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
  if (StartsWith(line, "HTTP/")) {
    // A new response (after a redirect or 100 Continue): forget the previous headers.
    t->resp->headers.clear();
    size_t sp = line.find(' ');
    t->resp->status =
        sp == std::string_view::npos ? 0 : ParseInt64(line.substr(sp + 1, 3)).value_or(0);
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name = Lower(line.substr(0, colon));
  std::string value(TrimWhitespace(line.substr(colon + 1)));
  auto [it, inserted] = t->resp->headers.emplace(name, value);
  if (!inserted) it->second += ", " + value;
  return size * n;
}

size_t WriteCb(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  long st = t->resp->status;
  if (t->req->on_data && st >= 200 && st < 300) {
    auto r = t->req->on_data(*t->resp, std::string_view(data, len));
    if (!r) {
      t->resp->data_error = std::move(r).error();
      return CURL_WRITEFUNC_ERROR;
    }
    return len;
  }
  if (t->resp->body.size() + len > t->req->max_body) {
    t->resp->body_too_large = true;
    return CURL_WRITEFUNC_ERROR;
  }
  t->resp->body.append(data, len);
  return len;
}

size_t ReadCb(char* buf, size_t size, size_t n, void* user) {
  auto* req = static_cast<Transfer*>(user)->req;
  size_t want = size * n;
  if (req->body_len < 0) {
    size_t left = req->body.size() - static_cast<size_t>(req->read_pos);
    size_t k = std::min(want, left);
    memcpy(buf, req->body.data() + req->read_pos, k);
    req->read_pos += static_cast<int64_t>(k);
    return k;
  }
  int64_t left = req->body_len - req->read_pos;
  size_t k = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(want), left));
  if (k == 0) return 0;
  auto got = sys::pread(req->body_fd, buf, k, req->body_offset + req->read_pos);
  if (!got || *got == 0) return CURL_READFUNC_ABORT;
  req->read_pos += static_cast<int64_t>(*got);
  return *got;
}

int SeekCb(void* user, curl_off_t offset, int origin) {
  auto* req = static_cast<Transfer*>(user)->req;
  if (origin != SEEK_SET) return CURL_SEEKFUNC_CANTSEEK;
  req->read_pos = offset;
  return CURL_SEEKFUNC_OK;
}

bool IsTlsFailure(CURLcode c) {
  return c == CURLE_SSL_CONNECT_ERROR || c == CURLE_PEER_FAILED_VERIFICATION ||
         c == CURLE_RECV_ERROR || c == CURLE_SEND_ERROR || c == CURLE_GOT_NOTHING ||
         c == CURLE_SSL_CERTPROBLEM || c == CURLE_SSL_CACERT_BADFILE;
}

// Transport failures worth another attempt.
bool IsRetryable(CURLcode c) {
  return c == CURLE_PARTIAL_FILE || c == CURLE_RECV_ERROR || c == CURLE_SEND_ERROR ||
         c == CURLE_GOT_NOTHING || c == CURLE_OPERATION_TIMEDOUT || c == CURLE_COULDNT_CONNECT ||
         c == CURLE_HTTP2 || c == CURLE_HTTP2_STREAM || c == CURLE_SSL_CONNECT_ERROR;
}

// Maps a non-success registry answer to an error.
Error HttpError(const Client::Response& r, const std::string& what) {
  std::string code;
  std::string text = RegistryErrorText(r.body, &code);
  if (text.empty()) text = StrFormat("HTTP status %ld", r.status);
  ErrorKind kind = ErrorKind::kUnavailable;
  if (r.status == 401 || r.status == 403) kind = ErrorKind::kPermissionDenied;
  if (r.status == 404) kind = ErrorKind::kNotFound;
  if (r.status == 400 || r.status == 413 || r.status == 416) kind = ErrorKind::kInvalidArgument;
  return MakeError(kind, "%s: %s", what.c_str(), text.c_str());
}

std::string StripParams(const std::string& content_type) {
  std::string s = content_type.substr(0, content_type.find(';'));
  return std::string(TrimWhitespace(s));
}

std::string ResolveLocation(const std::string& base, const std::string& loc) {
  if (StartsWith(loc, "http://") || StartsWith(loc, "https://")) return loc;
  if (StartsWith(loc, "/")) return base + loc;
  return base + "/" + loc;
}

std::string AddQuery(const std::string& url, const std::string& kv) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + kv;
}

}  // namespace

Client::Client(ClientOptions options) : opts_(std::move(options)) {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  shared_ = std::make_unique<Shared>();
}

Client::~Client() = default;

std::string Client::base_url() const {
  std::lock_guard lock(mu_);
  return base_;
}

std::string Client::Url(const std::string& path) const {
  std::lock_guard lock(mu_);
  return base_ + path;
}

Result<Client::Response> Client::Perform(Request& req) {
  CURL* c = curl_easy_init();
  if (!c) return Fail(ErrorKind::kInternal, "curl_easy_init failed");
  Response resp;
  Transfer t{&req, &resp};
  char errbuf[CURL_ERROR_SIZE] = {0};
  struct curl_slist* hdrs = nullptr;
  for (const auto& h : req.headers) hdrs = curl_slist_append(hdrs, h.c_str());
  if (!req.authorization.empty())
    hdrs = curl_slist_append(hdrs, ("Authorization: " + req.authorization).c_str());
  hdrs = curl_slist_append(hdrs, "Expect:");  // no 100-continue round trip on uploads
  bool https = StartsWith(req.url, "https://");
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_SHARE, shared_->share);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(c, CURLOPT_USERAGENT, opts_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &HeaderCb);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &WriteCb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  // Layers arrive in 512 KiB pieces rather than curl's default 16 KiB: each piece costs the
  // sink a write to the blob file, a hash update and a send to moat-extract.
  curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, opts_.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, opts_.low_speed_time_s);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  // A redirect never downgrades an HTTPS registry to plain HTTP. libcurl drops the
  // Authorization header when a redirect leaves the original host and port (blob URLs commonly
  // redirect to a CDN that must not see the registry token).
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, req.follow_redirects ? 1L : 0L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  std::string host_dir = opts_.certs_dir + "/" + opts_.host;
  std::string ca = host_dir + "/ca.crt";
  std::string cert = host_dir + "/client.cert", key = host_dir + "/client.key";
  if (req.registry_tls && !opts_.certs_dir.empty()) {
    // CAINFO replaces the default bundle; CAPATH keeps the system CAs trusted as well.
    if (FileExists(ca)) {
      curl_easy_setopt(c, CURLOPT_CAINFO, ca.c_str());
      curl_easy_setopt(c, CURLOPT_CAPATH, kSystemCaPath);
    }
    if (FileExists(cert) && FileExists(key)) {
      curl_easy_setopt(c, CURLOPT_SSLCERT, cert.c_str());
      curl_easy_setopt(c, CURLOPT_SSLKEY, key.c_str());
    }
  }
  bool has_body = req.body_len >= 0 || !req.body.empty() || req.method == "POST" ||
                  req.method == "PUT" || req.method == "PATCH";
  int64_t body_size = req.body_len >= 0 ? req.body_len : static_cast<int64_t>(req.body.size());
  req.read_pos = 0;
  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body_size));
  } else if (req.method == "PUT" || req.method == "PATCH") {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body_size));
    if (req.method == "PATCH") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PATCH");
  } else if (req.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  if (has_body) {
    curl_easy_setopt(c, CURLOPT_READFUNCTION, &ReadCb);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, &SeekCb);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, &t);
  }
  resp.code = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status) resp.status = status;
  if (resp.code != CURLE_OK) resp.curl_error = errbuf[0] ? errbuf : curl_easy_strerror(resp.code);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(c);
  return resp;
}

Result<void> Client::EnsureEndpoint() {
  {
    std::lock_guard lock(mu_);
    if (!base_.empty()) return Ok();
  }
  return Ping();
}

Result<void> Client::Ping() {
  Request req;
  req.url = "https://" + opts_.host + "/v2/";
  MOAT_ASSIGN_OR_RETURN(Response r, Perform(req));
  std::string base = "https://" + opts_.host;
  if (r.code != CURLE_OK) {
    if (!(IsTlsFailure(r.code) && PlainHttpAllowed(opts_.host, opts_.insecure_registries)))
      return Fail(ErrorKind::kUnavailable, "registry %s: %s", opts_.host.c_str(),
                  r.curl_error.c_str());
    Request plain;
    plain.url = "http://" + opts_.host + "/v2/";
    MOAT_ASSIGN_OR_RETURN(Response p, Perform(plain));
    if (p.code != CURLE_OK)
      return Fail(ErrorKind::kUnavailable, "registry %s: %s (over http: %s)", opts_.host.c_str(),
                  r.curl_error.c_str(), p.curl_error.c_str());
    // A TLS server answering plain HTTP with an error: the HTTPS failure is the real story
    // (an untrusted certificate, typically).
    if (p.status != 200 && p.status != 401)
      return Fail(ErrorKind::kUnavailable, "registry %s: %s (over http: HTTP status %ld)",
                  opts_.host.c_str(), r.curl_error.c_str(), p.status);
    r = std::move(p);
    base = "http://" + opts_.host;
  }
  if (r.status != 200 && r.status != 401)
    return Fail(ErrorKind::kUnavailable, "registry %s does not serve the v2 API (HTTP status %ld)",
                opts_.host.c_str(), r.status);
  std::lock_guard lock(mu_);
  base_ = base;
  if (r.status == 401) {
    auto chs = ParseWwwAuthenticate(r.Header("www-authenticate"));
    basic_ = !chs.empty() && chs[0].scheme == "basic";
  }
  return Ok();
}

std::string Client::CachedAuthorization(const std::vector<std::string>& scopes) {
  const Credentials& cr = opts_.credentials;
  if (!cr.registry_token.empty()) return "Bearer " + cr.registry_token;
  std::lock_guard lock(mu_);
  if (basic_) {
    if (cr.username.empty()) return "";
    return "Basic " + Base64Encode(cr.username + ":" + cr.password);
  }
  auto it = tokens_.find(StrJoin(scopes, " "));
  return it == tokens_.end() ? "" : it->second;
}

Result<void> Client::Authenticate(const std::string& www_authenticate,
                                  const std::vector<std::string>& scopes, bool login,
                                  std::string* refresh_token) {
  const Credentials& cr = opts_.credentials;
  auto challenges = ParseWwwAuthenticate(www_authenticate);
  const Challenge* bearer = nullptr;
  for (const auto& ch : challenges) {
    if (ch.scheme == "basic") {
      std::lock_guard lock(mu_);
      basic_ = true;
      return Ok();
    }
    if (ch.scheme == "bearer" && !bearer) bearer = &ch;
  }
  if (!bearer || !bearer->params.count("realm"))
    return Fail(ErrorKind::kPermissionDenied, "registry %s: unauthorized (no usable challenge)",
                opts_.host.c_str());
  // The scopes this operation needs; without any (login), what the challenge asked for.
  std::vector<std::string> want = scopes;
  if (auto s = bearer->params.find("scope"); want.empty() && s != bearer->params.end())
    want.push_back(s->second);
  const std::string& realm = bearer->params.at("realm");
  bool realm_https = StartsWith(realm, "https://");
  if (!realm_https) {
    std::string rest = StartsWith(realm, "http://") ? realm.substr(7) : "";
    std::string realm_host = rest.substr(0, rest.find('/'));
    if (realm_host.empty() || !PlainHttpAllowed(realm_host, opts_.insecure_registries))
      return Fail(ErrorKind::kPermissionDenied,
                  "registry %s: token realm %s is not HTTPS and not an insecure registry",
                  opts_.host.c_str(), realm.c_str());
  }
  Request req;
  req.registry_tls = false;
  std::string service =
      bearer->params.count("service") ? bearer->params.at("service") : std::string();
  if (!cr.identity_token.empty()) {
    // OAuth2 refresh-token grant (what `docker login` stored as IdentityToken).
    req.method = "POST";
    req.url = realm;
    req.headers.push_back("Content-Type: application/x-www-form-urlencoded");
    req.body =
        "grant_type=refresh_token&client_id=moat&refresh_token=" + UrlEncode(cr.identity_token) +
        "&service=" + UrlEncode(service);
    for (const auto& s : want) req.body += "&scope=" + UrlEncode(s);
    if (login) req.body += "&access_type=offline";
  } else {
    req.url = TokenUrl(*bearer, want, login ? "offline_token=true&client_id=moat" : "");
    if (!cr.username.empty())
      req.authorization = "Basic " + Base64Encode(cr.username + ":" + cr.password);
  }
  MOAT_ASSIGN_OR_RETURN(Response r, Perform(req));
  if (r.code != CURLE_OK)
    return Fail(ErrorKind::kUnavailable, "token server %s: %s", realm.c_str(),
                r.curl_error.c_str());
  if (r.status == 401 || r.status == 403)
    return Fail(ErrorKind::kPermissionDenied, "%s",
                HttpError(r, "get token from " + realm).message.c_str());
  if (r.status != 200) return Fail(HttpError(r, "get token from " + realm));
  MOAT_ASSIGN_OR_RETURN(
      TokenResponse tok,
      std::move(ParseTokenResponse(r.body)).Context("token server %s", realm.c_str()));
  if (refresh_token) *refresh_token = tok.refresh_token;
  std::lock_guard lock(mu_);
  tokens_[StrJoin(scopes, " ")] = "Bearer " + tok.token;
  return Ok();
}

Result<Client::Response> Client::Send(Request& req, const std::vector<std::string>& scopes) {
  MOAT_TRY(EnsureEndpoint());
  for (int round = 0;; ++round) {
    req.authorization = CachedAuthorization(scopes);
    MOAT_ASSIGN_OR_RETURN(Response r, Perform(req));
    if (r.code != CURLE_OK || r.status != 401 || round == 1) return r;
    if (!opts_.credentials.registry_token.empty()) return r;
    bool had_auth = !req.authorization.empty();
    MOAT_TRY(Authenticate(r.Header("www-authenticate"), scopes, /*login=*/false, nullptr));
    // Basic auth without credentials, or Basic credentials already refused: nothing to retry.
    if (CachedAuthorization(scopes).empty() ||
        (had_auth && StartsWith(req.authorization, "Basic ")))
      return r;
  }
}

Result<std::string> Client::Login() {
  MOAT_TRY(EnsureEndpoint());
  Request req;
  req.url = Url("/v2/");
  MOAT_ASSIGN_OR_RETURN(Response r, Perform(req));
  if (r.code != CURLE_OK)
    return Fail(ErrorKind::kUnavailable, "registry %s: %s", opts_.host.c_str(),
                r.curl_error.c_str());
  if (r.status == 200) return std::string();
  if (r.status != 401) return Fail(HttpError(r, "login to " + opts_.host));
  std::string refresh;
  MOAT_TRY(Authenticate(r.Header("www-authenticate"), {}, /*login=*/true, &refresh));
  req.authorization = CachedAuthorization({});
  MOAT_ASSIGN_OR_RETURN(Response again, Perform(req));
  if (again.code != CURLE_OK)
    return Fail(ErrorKind::kUnavailable, "registry %s: %s", opts_.host.c_str(),
                again.curl_error.c_str());
  if (again.status == 401 || again.status == 403)
    return Fail(ErrorKind::kPermissionDenied,
                "login to %s: unauthorized: incorrect username or password", opts_.host.c_str());
  if (again.status != 200) return Fail(HttpError(again, "login to " + opts_.host));
  return refresh;
}

Result<Manifest> Client::GetManifest(const std::string& repo, const std::string& reference,
                                     size_t max_bytes) {
  MOAT_TRY(EnsureEndpoint());
  Request req;
  req.url = Url("/v2/" + repo + "/manifests/" + reference);
  req.headers.push_back(StrFormat("Accept: %s, %s, %s, %s", kMediaTypeOciIndex,
                                  kMediaTypeDockerManifestList, kMediaTypeDockerManifest,
                                  kMediaTypeOciManifest));
  req.max_body = max_bytes;
  MOAT_ASSIGN_OR_RETURN(Response r, Send(req, {ScopeFor(repo, false)}));
  std::string what = "manifest " + repo + ":" + reference;
  if (r.body_too_large)
    return Fail(ErrorKind::kInvalidArgument, "%s is larger than %zu bytes", what.c_str(),
                max_bytes);
  if (r.code != CURLE_OK)
    return Fail(ErrorKind::kUnavailable, "%s: %s", what.c_str(), r.curl_error.c_str());
  if (r.status != 200) return Fail(HttpError(r, what));
  Manifest m;
  m.body = std::move(r.body);
  m.media_type = StripParams(r.Header("content-type"));
  m.digest = "sha256:" + Sha256Hex(m.body);
  std::string header = r.Header("docker-content-digest");
  if (StartsWith(header, "sha256:") && header != m.digest)
    return Fail(ErrorKind::kInvalidArgument,
                "%s: Docker-Content-Digest %s does not match the content (%s)", what.c_str(),
                header.c_str(), m.digest.c_str());
  if (StartsWith(reference, "sha256:") && reference != m.digest)
    return Fail(ErrorKind::kInvalidArgument, "manifest %s digest mismatch (content is %s)",
                reference.c_str(), m.digest.c_str());
  return m;
}

Result<void> Client::FetchBlob(const std::string& repo, const std::string& digest, int64_t size,
                               const BlobSink& sink, const BytesProgress& progress) {
  MOAT_ASSIGN_OR_RETURN(std::string want_hex, DigestHex(digest));
  if (size < 0) return Fail(ErrorKind::kInvalidArgument, "blob %s: negative size", digest.c_str());
  MOAT_TRY(EnsureEndpoint());
  Sha256 sha;
  int64_t done = 0;
  int delay_ms = opts_.retry_delay_ms;
  std::string last_error;
  for (int attempt = 1;; ++attempt) {
    Request req;
    req.url = Url("/v2/" + repo + "/blobs/" + digest);
    req.headers.push_back("Accept-Encoding: identity");
    if (done > 0)
      req.headers.push_back(StrFormat("Range: bytes=%lld-", static_cast<long long>(done)));
    int64_t skip = -1;  // bytes of this response to drop; known at its first body bytes
    int64_t start = done;
    req.on_data = [&](const Response& resp, std::string_view data) -> Result<void> {
      if (skip < 0) {
        if (resp.status == 206) {
          // Content-Range: bytes <first>-<last>/<total>; it must start where we stopped.
          std::string cr = resp.Header("content-range");
          size_t sp = cr.find(' '), dash = cr.find('-');
          auto first = (sp == std::string::npos || dash == std::string::npos)
                           ? std::nullopt
                           : ParseInt64(cr.substr(sp + 1, dash - sp - 1));
          if (!first || *first != done)
            return Fail(ErrorKind::kUnavailable, "blob %s: resumed at byte %lld, got %s",
                        digest.c_str(), static_cast<long long>(done), cr.c_str());
          skip = 0;
        } else {
          // A 200 answer (Range ignored) repeats the bytes already delivered.
          skip = done;
        }
      }
      if (skip > 0) {
        size_t k = static_cast<size_t>(std::min<int64_t>(skip, static_cast<int64_t>(data.size())));
        data.remove_prefix(k);
        skip -= static_cast<int64_t>(k);
      }
      if (data.empty()) return Ok();
      if (done + static_cast<int64_t>(data.size()) > size)
        return Fail(ErrorKind::kInvalidArgument, "blob %s is larger than its size %lld",
                    digest.c_str(), static_cast<long long>(size));
      sha.Update(data.data(), data.size());
      MOAT_TRY(sink(data));
      done += static_cast<int64_t>(data.size());
      if (progress) progress(done);
      return Ok();
    };
    MOAT_ASSIGN_OR_RETURN(Response r, Send(req, {ScopeFor(repo, false)}));
    if (r.data_error) return Fail(std::move(*r.data_error));
    if (r.code == CURLE_OK && r.status != 200 && r.status != 206) {
      if (r.status == 404)
        return Fail(ErrorKind::kNotFound, "blob %s: blob unknown to registry", digest.c_str());
      if (r.status < 500 || attempt >= opts_.max_attempts)
        return Fail(HttpError(r, "blob " + digest));
      last_error = StrFormat("HTTP status %ld", r.status);
    } else if (r.code == CURLE_OK) {
      if (done != size)
        return Fail(ErrorKind::kInvalidArgument, "blob %s is %lld bytes, not its size %lld",
                    digest.c_str(), static_cast<long long>(done), static_cast<long long>(size));
      std::string got = sha.HexDigest();
      if (got != want_hex)
        return Fail(ErrorKind::kInvalidArgument, "blob %s digest mismatch (content is sha256:%s)",
                    digest.c_str(), got.c_str());
      return Ok();
    } else {
      last_error = r.curl_error;
      if (!IsRetryable(r.code) || attempt >= opts_.max_attempts)
        return Fail(ErrorKind::kUnavailable, "blob %s: %s (after %d attempts)", digest.c_str(),
                    r.curl_error.c_str(), attempt);
    }
    // An attempt that made progress does not use up the back-off.
    if (done > start) delay_ms = opts_.retry_delay_ms;
    MOAT_LOG(kInfo, "blob %s: retrying from byte %lld after: %s", digest.c_str(),
             static_cast<long long>(done), last_error.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    delay_ms *= 2;
  }
}

Result<std::string> Client::FetchBlobToString(const std::string& repo, const std::string& digest,
                                              int64_t size, int64_t max_bytes) {
  if (size > max_bytes)
    return Fail(ErrorKind::kInvalidArgument, "blob %s: size %lld is over the limit of %lld",
                digest.c_str(), static_cast<long long>(size), static_cast<long long>(max_bytes));
  std::string out;
  out.reserve(static_cast<size_t>(size));
  MOAT_TRY(FetchBlob(
      repo, digest, size,
      [&](std::string_view d) -> Result<void> {
        out.append(d);
        return Ok();
      },
      nullptr));
  return out;
}

Result<bool> Client::BlobExists(const std::string& repo, const std::string& digest) {
  Request req;
  req.method = "HEAD";
  MOAT_TRY(EnsureEndpoint());
  req.url = Url("/v2/" + repo + "/blobs/" + digest);
  MOAT_ASSIGN_OR_RETURN(Response r, Send(req, {ScopeFor(repo, true)}));
  if (r.code != CURLE_OK)
    return Fail(ErrorKind::kUnavailable, "blob %s: %s", digest.c_str(), r.curl_error.c_str());
  if (r.status == 200) return true;
  if (r.status == 404) return false;
  return Fail(HttpError(r, "blob " + digest));
}

Result<bool> Client::MountBlob(const std::string& repo, const std::string& digest,
                               const std::string& from_repo) {
  MOAT_TRY(EnsureEndpoint());
  Request req;
  req.method = "POST";
  req.url = Url("/v2/" + repo + "/blobs/uploads/?mount=" + UrlEncode(digest) +
                "&from=" + UrlEncode(from_repo));
  MOAT_ASSIGN_OR_RETURN(Response r, Send(req, {ScopeFor(repo, true), ScopeFor(from_repo, false)}));
  if (r.code != CURLE_OK)
    return Fail(ErrorKind::kUnavailable, "mount %s: %s", digest.c_str(), r.curl_error.c_str());
  if (r.status == 201) return true;
  if (r.status == 202) {
    // The registry started a plain upload instead; abandon it (it expires on its own).
    if (std::string loc = r.Header("location"); !loc.empty()) {
      Request del;
      del.method = "DELETE";
      del.url = ResolveLocation(base_url(), loc);
      (void)Send(del, {ScopeFor(repo, true)});
    }
    return false;
  }
  if (r.status == 401 || r.status == 403 || r.status == 404) return false;
  return Fail(HttpError(r, "mount " + digest + " from " + from_repo));
}

Result<void> Client::UploadBlob(const std::string& repo, const std::string& digest, int fd,
                                int64_t size, int64_t chunk_size, const BytesProgress& progress) {
  MOAT_TRY(EnsureEndpoint());
  if (chunk_size <= 0) chunk_size = 8 << 20;
  std::vector<std::string> scopes = {ScopeFor(repo, true)};
  std::string what = "upload blob " + digest;
  Request start;
  start.method = "POST";
  start.url = Url("/v2/" + repo + "/blobs/uploads/");
  MOAT_ASSIGN_OR_RETURN(Response r, Send(start, scopes));
  if (r.code != CURLE_OK)
    return Fail(ErrorKind::kUnavailable, "%s: %s", what.c_str(), r.curl_error.c_str());
  if (r.status != 202) return Fail(HttpError(r, what));
  std::string loc = r.Header("location");
  if (loc.empty())
    return Fail(ErrorKind::kUnavailable, "%s: no Location in the answer", what.c_str());
  int64_t offset = 0;
  while (offset < size) {
    int64_t n = std::min(chunk_size, size - offset);
    Request patch;
    patch.method = "PATCH";
    patch.url = ResolveLocation(base_url(), loc);
    patch.headers.push_back("Content-Type: application/octet-stream");
    patch.headers.push_back(StrFormat("Content-Range: %lld-%lld", static_cast<long long>(offset),
                                      static_cast<long long>(offset + n - 1)));
    patch.body_fd = fd;
    patch.body_offset = offset;
    patch.body_len = n;
    MOAT_ASSIGN_OR_RETURN(Response p, Send(patch, scopes));
    if (p.code != CURLE_OK)
      return Fail(ErrorKind::kUnavailable, "%s: %s", what.c_str(), p.curl_error.c_str());
    if (p.status != 202) return Fail(HttpError(p, what));
    if (std::string next = p.Header("location"); !next.empty()) loc = next;
    offset += n;
    if (progress) progress(offset);
  }
  Request put;
  put.method = "PUT";
  put.url = AddQuery(ResolveLocation(base_url(), loc), "digest=" + UrlEncode(digest));
  MOAT_ASSIGN_OR_RETURN(Response f, Send(put, scopes));
  if (f.code != CURLE_OK)
    return Fail(ErrorKind::kUnavailable, "%s: %s", what.c_str(), f.curl_error.c_str());
  if (f.status != 201 && f.status != 204) return Fail(HttpError(f, what));
  return Ok();
}

Result<std::string> Client::PutManifest(const std::string& repo, const std::string& reference,
                                        const std::string& media_type, const std::string& body) {
  MOAT_TRY(EnsureEndpoint());
  Request req;
  req.method = "PUT";
  req.url = Url("/v2/" + repo + "/manifests/" + reference);
  req.headers.push_back("Content-Type: " + media_type);
  req.body = body;
  MOAT_ASSIGN_OR_RETURN(Response r, Send(req, {ScopeFor(repo, true)}));
  std::string what = "put manifest " + repo + ":" + reference;
  if (r.code != CURLE_OK)
    return Fail(ErrorKind::kUnavailable, "%s: %s", what.c_str(), r.curl_error.c_str());
  if (r.status != 201 && r.status != 200) return Fail(HttpError(r, what));
  std::string digest = "sha256:" + Sha256Hex(body);
  std::string header = r.Header("docker-content-digest");
  if (StartsWith(header, "sha256:") && header != digest)
    return Fail(ErrorKind::kInvalidArgument, "%s: the registry reports digest %s, not %s",
                what.c_str(), header.c_str(), digest.c_str());
  return digest;
}

}  // namespace moat::image::registry
