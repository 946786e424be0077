#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

// A client for one registry (OCI distribution spec / Docker registry v2 API) over libcurl.
// Thread-safety: every method may be called concurrently from several threads (each request
// has its own curl handle; connections, DNS and TLS sessions are shared under locks; the token
// cache is guarded). No exceptions escape; libcurl is used only from client.cc.
namespace moat::image::registry {

// Media types the client asks for and the store accepts.
constexpr char kMediaTypeDockerManifest[] = "application/vnd.docker.distribution.manifest.v2+json";
constexpr char kMediaTypeDockerManifestList[] =
    "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr char kMediaTypeOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kMediaTypeOciIndex[] = "application/vnd.oci.image.index.v1+json";

struct Credentials {
  std::string username;
  std::string password;
  std::string identity_token;  // OAuth2 refresh token, used instead of username/password
  std::string registry_token;  // a ready Bearer token, sent as is
};

struct ClientOptions {
  std::string host;  // "registry-1.docker.io", "127.0.0.1:5000"
  Credentials credentials;
  std::vector<std::string> insecure_registries;  // see PlainHttpAllowed
  std::string certs_dir;     // <certs_dir>/<host>/ca.crt, client.cert, client.key
  int max_attempts = 5;      // per blob download (a resumed attempt counts)
  int retry_delay_ms = 250;  // doubled after each failed attempt
  long connect_timeout_s = 30;
  long low_speed_time_s = 60;  // a transfer slower than 1 byte/s for this long fails
  std::string user_agent = "moat";
};

struct Manifest {
  std::string body;
  std::string media_type;  // Content-Type without parameters
  std::string digest;      // "sha256:<hex>" of body (checked against Docker-Content-Digest)
};

// Receives downloaded bytes in order; an error stops the transfer and is returned as is.
using BlobSink = std::function<Result<void>(std::string_view data)>;
// Bytes done so far of one blob (download or upload); called from the calling thread.
using BytesProgress = std::function<void(int64_t current)>;

class Client {
 public:
  // No I/O happens here; the endpoint (HTTPS, or HTTP where allowed) is chosen on first use.
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // GET /v2/ without credentials: chooses the scheme. HTTPS is always tried first (verified
  // against the system CAs plus <certs_dir>/<host>/ca.crt); plain HTTP is used only when the
  // TLS handshake fails and PlainHttpAllowed(host). kUnavailable if the registry cannot be
  // reached or does not speak the v2 API.
  Result<void> Ping();

  // Runs the authentication flow once against /v2/ with the credentials (POST /auth). Returns
  // the identity (refresh) token the token server gave, or "". kPermissionDenied for rejected
  // credentials.
  Result<std::string> Login();

  // GET /v2/<repo>/manifests/<reference> (a tag or "sha256:..") accepting Docker schema 2
  // manifests and lists and OCI manifests and indexes, at most `max_bytes`. The body's sha256
  // must equal Docker-Content-Digest when the registry sends one, and the reference when it is
  // a digest (kInvalidArgument otherwise). kNotFound "manifest unknown" for an unknown tag or
  // repository; kPermissionDenied when the registry refuses the credentials.
  Result<Manifest> GetManifest(const std::string& repo, const std::string& reference,
                               size_t max_bytes = 4 << 20);

  // GET /v2/<repo>/blobs/<digest>, following redirects, streaming into `sink`. The bytes are
  // checked against `size` (more bytes stop the transfer at once) and `digest` (sha256) at the
  // end: kInvalidArgument "blob sha256:..: ..." on a mismatch. An interrupted transfer is
  // retried up to max_attempts times, resuming with a Range request; a registry that ignores
  // Range has the bytes already delivered skipped. `progress` may be empty.
  Result<void> FetchBlob(const std::string& repo, const std::string& digest, int64_t size,
                         const BlobSink& sink, const BytesProgress& progress);
  // FetchBlob into memory (configs); `size` must be at most `max_bytes` (kInvalidArgument).
  Result<std::string> FetchBlobToString(const std::string& repo, const std::string& digest,
                                        int64_t size, int64_t max_bytes = 16 << 20);

  // HEAD /v2/<repo>/blobs/<digest>: whether the registry has the blob in `repo`.
  Result<bool> BlobExists(const std::string& repo, const std::string& digest);
  // POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<from_repo>. true: mounted (201); false:
  // the registry did not mount it (the upload session it may have started is abandoned).
  Result<bool> MountBlob(const std::string& repo, const std::string& digest,
                         const std::string& from_repo);
  // Uploads `size` bytes read from `fd` (remains owned by the caller; read with pread from
  // offset 0) as `digest`: POST, then PATCH chunks of `chunk_size` bytes with Content-Range,
  // then PUT ?digest=. The registry checks the digest.
  Result<void> UploadBlob(const std::string& repo, const std::string& digest, int fd, int64_t size,
                          int64_t chunk_size, const BytesProgress& progress);
  // PUT /v2/<repo>/manifests/<reference> with Content-Type `media_type`. Returns the digest
  // of `body` ("sha256:.."); kInvalidArgument if the registry reports a different one.
  Result<std::string> PutManifest(const std::string& repo, const std::string& reference,
                                  const std::string& media_type, const std::string& body);

  // "https://host" or "http://host" once chosen ("" before).
  std::string base_url() const;

  struct Request;
  struct Response;

 private:
  Result<void> EnsureEndpoint();
  // Sends `req` with the cached authorization for `scopes`; on 401 runs the challenge's flow
  // once and resends.
  Result<Response> Send(Request& req, const std::vector<std::string>& scopes);
  Result<void> Authenticate(const std::string& www_authenticate,
                            const std::vector<std::string>& scopes, bool login,
                            std::string* refresh_token);
  std::string CachedAuthorization(const std::vector<std::string>& scopes);
  Result<Response> Perform(Request& req);
  std::string Url(const std::string& path) const;

  ClientOptions opts_;
  struct Shared;
  std::unique_ptr<Shared> shared_;             // the curl share handle and its locks
  mutable std::mutex mu_;                      // guards the members below
  std::string base_;                           // "https://host"
  bool basic_ = false;                         // the registry asked for Basic auth
  std::map<std::string, std::string> tokens_;  // joined scopes -> "Bearer <token>"
};

}  // namespace moat::image::registry
