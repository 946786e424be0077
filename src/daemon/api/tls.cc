// The OpenSSL adapter of tls.h. OpenSSL does not throw; every call's failure is checked and
// turned into an Error carrying OpenSSL's reason text.
//
// Files are read with sys::ReadFile and parsed from memory BIOs, so OpenSSL itself never opens
// a path (and the moatd front can build its context, then lose all file access). The key's
// PEM text is cleansed from memory once parsed.
//
// Syscalls at run time (the front's seccomp allowlist must allow them): recvfrom/sendmsg/
// read/write on the sockets, poll, fcntl(F_GETFL/F_SETFL), shutdown, getrandom (OpenSSL's
// DRBG seeding and reseeding), clock_gettime (certificate validity), futex, mmap/munmap/brk.

#include "daemon/api/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "base/strings.h"
#include "base/sys/fs.h"
#include "base/sys/io.h"
#include "base/sys/socket_io.h"

namespace moat::tls {

struct Context::Impl {
  SSL_CTX* ctx = nullptr;
  Role role = Role::kServer;
  ~Impl() { SSL_CTX_free(ctx); }
};

struct Connection::Impl {
  std::shared_ptr<const Context> ctx;
  int sock = -1;  // owned by the caller
  SSL* ssl = nullptr;
  ~Impl() { SSL_free(ssl); }
};

std::string LastErrors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    // "error:0A000086:SSL routines::certificate verify failed": keep the reason part.
    std::string_view s(buf);
    size_t colon = s.rfind(':');
    out += std::string(colon == std::string_view::npos ? s : s.substr(colon + 1));
  }
  return out.empty() ? std::string("unknown TLS error") : out;
}

namespace {

// TLS 1.2 suites: forward secrecy and AEAD only (TLS 1.3's default suites are all AEAD).
constexpr const char* kCiphers12 = "ECDHE+AESGCM:ECDHE+CHACHA20";
constexpr size_t kRelayBuffer = 64 * 1024;

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

BioPtr MemBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

Result<std::string> ReadPem(const char* what, const std::string& path) {
  if (path.empty()) return Fail(ErrorKind::kInvalidArgument, "no %s file given", what);
  auto text = sys::ReadFile(path);
  if (!text) {
    Error e = text.error();
    e.message = StrFormat("%s %s: %s", what, path.c_str(), e.message.c_str());
    return Fail(std::move(e));
  }
  return std::move(*text);
}

// Loads the CA certificates of `path` as trust anchors (and, for a server, as the names it
// sends in its CertificateRequest).
Result<void> LoadCa(SSL_CTX* ctx, Role role, const std::string& path) {
  MOAT_ASSIGN_OR_RETURN(std::string pem, ReadPem("CA certificate", path));
  BioPtr bio = MemBio(pem);
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int count = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    int ok = X509_STORE_add_cert(store, cert);
    if (ok == 1 && role == Role::kServer) ok = SSL_CTX_add_client_CA(ctx, cert);
    X509_free(cert);
    if (ok != 1)
      return Fail(ErrorKind::kInvalidArgument, "CA certificate %s: %s", path.c_str(),
                  LastErrors().c_str());
    ++count;
  }
  ERR_clear_error();  // the end of the PEM stream reads as an error
  if (count == 0)
    return Fail(ErrorKind::kInvalidArgument, "CA certificate %s: no PEM certificate in it",
                path.c_str());
  return Ok();
}

Result<void> LoadCertAndKey(SSL_CTX* ctx, const Files& files) {
  MOAT_ASSIGN_OR_RETURN(std::string cert_pem, ReadPem("certificate", files.cert));
  BioPtr bio = MemBio(cert_pem);
  X509* leaf = PEM_read_bio_X509_AUX(bio.get(), nullptr, nullptr, nullptr);
  if (!leaf || SSL_CTX_use_certificate(ctx, leaf) != 1) {
    X509_free(leaf);
    return Fail(ErrorKind::kInvalidArgument, "certificate %s: %s", files.cert.c_str(),
                LastErrors().c_str());
  }
  X509_free(leaf);
  // Intermediate certificates following the leaf, if any.
  while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
      X509_free(extra);
      return Fail(ErrorKind::kInvalidArgument, "certificate %s: %s", files.cert.c_str(),
                  LastErrors().c_str());
    }
  }
  ERR_clear_error();

  MOAT_ASSIGN_OR_RETURN(std::string key_pem, ReadPem("private key", files.key));
  BioPtr key_bio = MemBio(key_pem);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
  key_bio.reset();
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  if (!key) {
    return Fail(ErrorKind::kInvalidArgument, "private key %s: %s (an unencrypted PEM key is needed)",
                files.key.c_str(), LastErrors().c_str());
  }
  int used = SSL_CTX_use_PrivateKey(ctx, key);
  EVP_PKEY_free(key);
  if (used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return Fail(ErrorKind::kInvalidArgument, "private key %s does not match certificate %s: %s",
                files.key.c_str(), files.cert.c_str(), LastErrors().c_str());
  }
  return Ok();
}

// The subject's commonName, printable.
std::string CommonName(X509* cert) {
  if (!cert) return "";
  X509_NAME* name = X509_get_subject_name(cert);
  int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (i < 0) return "";
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
  if (n < 0) return "";
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return out;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Waits for `fd` to become ready for what the last SSL call asked (`want`) until `deadline`.
Result<void> WaitFor(int fd, int want, int64_t deadline) {
  int64_t left = deadline - NowMs();
  if (left <= 0) return Fail(ErrorKind::kUnavailable, "TLS handshake timed out");
  pollfd p{fd, static_cast<short>(want == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
  MOAT_ASSIGN_OR_RETURN(int ready, sys::poll(&p, 1, static_cast<int>(left)));
  if (ready == 0) return Fail(ErrorKind::kUnavailable, "TLS handshake timed out");
  return Ok();
}

// The error of a failed handshake step. `who` is "client" or "server" (the peer).
Error HandshakeError(SSL* ssl, int err, const char* who) {
  unsigned long first = ERR_peek_error();
  if (ERR_GET_LIB(first) == ERR_LIB_SSL && ERR_GET_REASON(first) == SSL_R_HTTP_REQUEST) {
    ERR_clear_error();
    return MakeError(ErrorKind::kInvalidArgument, "the %s sent plain HTTP to the TLS port", who);
  }
  if (ERR_GET_LIB(first) == ERR_LIB_SSL &&
      (ERR_GET_REASON(first) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ||
       ERR_GET_REASON(first) == SSL_R_NO_CERTIFICATES_RETURNED)) {
    ERR_clear_error();
    return MakeError(ErrorKind::kPermissionDenied, "the %s presented no certificate", who);
  }
  long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    ERR_clear_error();
    return MakeError(ErrorKind::kPermissionDenied, "the %s's certificate: %s", who,
                     X509_verify_cert_error_string(verify));
  }
  if (err == SSL_ERROR_SYSCALL && first == 0) {
    int e = errno;
    return MakeError(ErrorKind::kUnavailable, "the %s went away during the TLS handshake%s%s", who,
                     e ? ": " : "", e ? strerror(e) : "");
  }
  std::string why = LastErrors();
  ErrorKind kind = why.find("wrong version number") != std::string::npos ||
                           why.find("unknown protocol") != std::string::npos ||
                           why.find("packet length too long") != std::string::npos
                       ? ErrorKind::kInvalidArgument
                       : ErrorKind::kPermissionDenied;
  return MakeError(kind, "TLS handshake with the %s: %s", who, why.c_str());
}

}  // namespace

Context::Context(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Context::~Context() = default;

Result<std::shared_ptr<const Context>> Context::Load(Role role, const Files& files) {
  auto impl = std::make_unique<Impl>();
  impl->role = role;
  // No atexit handler: the daemon and the CLI leave with relay threads running, which must not
  // find OpenSSL torn down under them.
  OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT, nullptr);
  impl->ctx = SSL_CTX_new(role == Role::kServer ? TLS_server_method() : TLS_client_method());
  if (!impl->ctx) return Fail(ErrorKind::kInternal, "SSL_CTX_new: %s", LastErrors().c_str());
  SSL_CTX* ctx = impl->ctx;
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(ctx, kCiphers12) != 1)
    return Fail(ErrorKind::kInternal, "TLS settings: %s", LastErrors().c_str());
  // No resumption (every connection is fully authenticated; no ticket keys to protect), no
  // renegotiation, no compression (CRIME). An EOF without close_notify is an ordinary EOF: the
  // docker CLI half-closes a hijacked connection with a bare FIN (CloseWrite on the TCP socket).
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_verify_depth(ctx, 8);
  if (role == Role::kServer) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
  }
  MOAT_TRY(LoadCa(ctx, role, files.ca));
  MOAT_TRY(LoadCertAndKey(ctx, files));
  return std::shared_ptr<const Context>(new Context(std::move(impl)));
}

Connection::Connection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Connection::~Connection() = default;

int Connection::fd() const { return impl_->sock; }

namespace {

Result<std::unique_ptr<Connection::Impl>> Handshake(std::shared_ptr<const Context> ctx, int sock,
                                                    const std::string* host, int timeout_ms) {
  auto impl = std::make_unique<Connection::Impl>();
  impl->ctx = std::move(ctx);
  impl->sock = sock;
  MOAT_TRY(sys::SetNonBlocking(impl->sock));
  ERR_clear_error();
  impl->ssl = SSL_new(impl->ctx->impl().ctx);
  if (!impl->ssl || SSL_set_fd(impl->ssl, impl->sock) != 1)
    return Fail(ErrorKind::kInternal, "SSL_new: %s", LastErrors().c_str());
  SSL* ssl = impl->ssl;
  const char* peer = host ? "server" : "client";
  if (host) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    in6_addr addr;
    bool is_ip = inet_pton(AF_INET, host->c_str(), &addr) == 1 ||
                 inet_pton(AF_INET6, host->c_str(), &addr) == 1;
    int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host->c_str())
                   : X509_VERIFY_PARAM_set1_host(param, host->c_str(), 0);
    if (!is_ip && ok == 1) ok = SSL_set_tlsext_host_name(ssl, host->c_str());
    if (ok != 1)
      return Fail(ErrorKind::kInvalidArgument, "TLS server name %s: %s", host->c_str(),
                  LastErrors().c_str());
  }
  int64_t deadline = NowMs() + timeout_ms;
  for (;;) {
    int rc = host ? SSL_connect(ssl) : SSL_accept(ssl);
    if (rc == 1) break;
    int err = SSL_get_error(ssl, rc);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      MOAT_TRY(WaitFor(impl->sock, err, deadline));
      continue;
    }
    return Fail(HandshakeError(ssl, err, peer));
  }
  return impl;
}

}  // namespace

Result<std::unique_ptr<Connection>> Connection::Accept(std::shared_ptr<const Context> ctx, int sock,
                                                       int timeout_ms) {
  auto impl = Handshake(std::move(ctx), sock, nullptr, timeout_ms);
  if (!impl) {
    // As Go's server (dockerd): a client speaking plain HTTP gets a plain answer saying so.
    if (impl.error().kind == ErrorKind::kInvalidArgument &&
        impl.error().message.find("plain HTTP") != std::string::npos) {
      (void)sys::SendAll(sock, {"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n"
                               "Connection: close\r\n\r\n"
                               "Client sent an HTTP request to an HTTPS server.\n"},
                         MSG_DONTWAIT);
    }
    return Fail(std::move(impl).error());
  }
  std::unique_ptr<Connection> c(new Connection(std::move(*impl)));
  X509* peer = SSL_get0_peer_certificate(c->impl_->ssl);
  c->peer_cn_ = CommonName(peer);
  return c;
}

Result<std::unique_ptr<Connection>> Connection::Connect(std::shared_ptr<const Context> ctx, int sock,
                                                        const std::string& host, int timeout_ms) {
  MOAT_ASSIGN_OR_RETURN(auto impl, Handshake(std::move(ctx), sock, &host, timeout_ms));
  std::unique_ptr<Connection> c(new Connection(std::move(impl)));
  c->peer_cn_ = CommonName(SSL_get0_peer_certificate(c->impl_->ssl));
  return c;
}

void Connection::Relay(int plain) {
  SSL* ssl = impl_->ssl;
  int tcp = impl_->sock;
  if (!sys::SetNonBlocking(plain)) return;
  std::string to_plain, to_tls;  // bytes read from one side, waiting to be written to the other
  bool tls_in_open = true;       // the peer may still send
  bool plain_in_open = true;     // the local side may still send
  bool plain_out_shut = false;   // shutdown(plain, SHUT_WR) done
  bool tls_out_closed = false;   // close_notify and shutdown(tcp, SHUT_WR) done
  bool plain_gone = false;       // the local side closed both directions (POLLHUP)
  char buf[16384];
  for (;;) {
    bool progress = false;
    if (plain_gone && !plain_out_shut) {
      // Nobody is left to read what the peer sends: stop reading it.
      to_plain.clear();
      tls_in_open = false;
      plain_out_shut = true;
    }
    bool tcp_want_read = false, tcp_want_write = false;
    bool plain_want_read = false, plain_want_write = false;

    // TLS -> buffer.
    while (tls_in_open && to_plain.size() < kRelayBuffer) {
      ERR_clear_error();
      int n = SSL_read(ssl, buf, sizeof buf);
      if (n > 0) {
        to_plain.append(buf, static_cast<size_t>(n));
        progress = true;
        continue;
      }
      int err = SSL_get_error(ssl, n);
      if (err == SSL_ERROR_WANT_READ) {
        tcp_want_read = true;
      } else if (err == SSL_ERROR_WANT_WRITE) {
        tcp_want_write = true;
      } else {
        // close_notify, a bare FIN (SSL_OP_IGNORE_UNEXPECTED_EOF) or a broken connection: the
        // peer sends no more.
        ERR_clear_error();
        tls_in_open = false;
        progress = true;
      }
      break;
    }
    // Buffer -> plain.
    if (!to_plain.empty() && !plain_out_shut) {
      msghdr msg{};
      iovec iov{to_plain.data(), to_plain.size()};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      Result<size_t> w = sys::sendmsg(plain, msg, MSG_DONTWAIT);
      if (w) {
        to_plain.erase(0, *w);
        progress = true;
      } else if (w.error().sys_errno == EAGAIN) {
        plain_want_write = true;
      } else {
        // The local side is gone: nothing more can be delivered to it.
        to_plain.clear();
        tls_in_open = false;
        plain_out_shut = true;
        progress = true;
      }
    }
    if (!tls_in_open && to_plain.empty() && !plain_out_shut) {
      (void)sys::shutdown(plain, SHUT_WR);
      plain_out_shut = true;
      progress = true;
    }
    // Plain -> buffer.
    if (plain_in_open && to_tls.size() < kRelayBuffer) {
      Result<size_t> r = sys::recv(plain, buf, sizeof buf, MSG_DONTWAIT);
      if (r && *r > 0) {
        to_tls.append(buf, *r);
        progress = true;
      } else if (!r && r.error().sys_errno == EAGAIN) {
        plain_want_read = true;
      } else {
        plain_in_open = false;
        progress = true;
      }
    }
    // Buffer -> TLS.
    if (!to_tls.empty() && !tls_out_closed) {
      ERR_clear_error();
      int n = SSL_write(ssl, to_tls.data(), static_cast<int>(std::min(to_tls.size(), size_t{1} << 20)));
      if (n > 0) {
        to_tls.erase(0, static_cast<size_t>(n));
        progress = true;
      } else {
        int err = SSL_get_error(ssl, n);
        if (err == SSL_ERROR_WANT_WRITE) {
          tcp_want_write = true;
        } else if (err == SSL_ERROR_WANT_READ) {
          tcp_want_read = true;
        } else {
          ERR_clear_error();
          return;  // the peer is gone: nothing more can be sent to it
        }
      }
    }
    if (!plain_in_open && to_tls.empty() && !tls_out_closed) {
      // One close_notify attempt: if the socket buffer is full the peer sees a bare FIN,
      // which clients treat as EOF too.
      ERR_clear_error();
      (void)SSL_shutdown(ssl);
      ERR_clear_error();
      (void)sys::shutdown(tcp, SHUT_WR);
      tls_out_closed = true;
      progress = true;
    }
    if (plain_out_shut && tls_out_closed) return;
    if (progress) continue;

    // The local side is polled even with no events wanted: POLLHUP tells that it closed its
    // end (a half-close, shutdown(SHUT_WR), does not raise it), so the relay need not wait for
    // the peer's EOF (an idle keep-alive client may never send it).
    pollfd fds[2] = {
        {tcp_want_read || tcp_want_write ? tcp : -1,
         static_cast<short>((tcp_want_read ? POLLIN : 0) | (tcp_want_write ? POLLOUT : 0)), 0},
        {plain_gone ? -1 : plain,
         static_cast<short>((plain_want_read ? POLLIN : 0) | (plain_want_write ? POLLOUT : 0)), 0},
    };
    if (fds[0].fd < 0 && fds[1].fd < 0) return;  // nothing left to wait for
    Result<int> ready = sys::poll(fds, 2, -1);
    if (!ready) return;
    // Both directions of the TCP connection are gone (a reset, or our own shutdown(RDWR) from
    // Server::Stop): once reading has seen it, writing can only fail.
    if ((fds[0].revents & (POLLERR | POLLNVAL)) ||
        ((fds[0].revents & POLLHUP) && !tls_in_open))
      return;
    if (fds[1].revents & POLLNVAL) return;
    if (fds[1].revents & (POLLHUP | POLLERR)) plain_gone = true;
  }
}

}  // namespace moat::tls
