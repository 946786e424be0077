#pragma once

// TLS for the Engine API over TCP (moatd's front and the moat CLI), through OpenSSL. This file
// and tls.cc are the only OpenSSL (libssl) users of both programs.
//
// Moat's rule: the API is served over TCP only with TLS 1.2+ and a client certificate that
// chains to the configured CA (dockerd's --tlsverify). There is no plaintext or
// server-auth-only mode.
//
// The TLS connection is turned back into a plain stream socket: Relay() copies plaintext
// between the TLS connection and one end of an AF_UNIX socketpair, so everything above it
// (the HTTP server, hijacked attach/exec streams spliced by fd, the CLI's Beast client) works on
// an ordinary fd, exactly as over the unix socket. Half-closes cross the relay in both
// directions.

#include <memory>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace moat::tls {

// PEM files: the CA that signs the peers' certificates, our certificate (chain), our key.
struct Files {
  std::string ca;
  std::string cert;
  std::string key;
};

enum class Role { kServer, kClient };

// An OpenSSL SSL_CTX with the certificates and the key loaded in memory. After Load returns
// nothing is read from the file system again (the front loads it before it loses access to the
// files). Immutable and thread-safe once built; shared by the connections made from it.
// Destroying the last reference frees the key (OpenSSL clears private key material on free).
class Context {
 public:
  // kServer: TLS 1.2+, ECDHE AEAD ciphers only, no renegotiation, compression, session tickets
  // or session cache; a client certificate is required and verified against files.ca (and must
  // be fit for client auth when it has an extended key usage).
  // kClient: the same protocol settings; the server's certificate is verified against
  // files.ca and must name the host given to Connect; our certificate is presented.
  // Errors: kNotFound (a file is missing), kInvalidArgument (a file does not parse, the key
  // does not match the certificate), naming the file and OpenSSL's reason.
  static Result<std::shared_ptr<const Context>> Load(Role role, const Files& files);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Context(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One TLS connection on a connected TCP socket. Not thread-safe: one thread drives it (Relay).
class Connection {
 public:
  // Server handshake on `sock` (a connected TCP socket; remains owned by the caller and must
  // outlive the Connection; it is made non-blocking) within `timeout_ms`.
  // kPermissionDenied when the client presents no certificate or one that does not verify;
  // kUnavailable on timeout or when the peer goes away; kInvalidArgument when the peer does
  // not speak TLS (e.g. plain HTTP).
  static Result<std::unique_ptr<Connection>> Accept(std::shared_ptr<const Context> ctx, int sock,
                                                    int timeout_ms);
  // Client handshake: `host` (an IP address or a DNS name, no port) must be named by the
  // server's certificate (subjectAltName IP/DNS). Same errors as Accept.
  static Result<std::unique_ptr<Connection>> Connect(std::shared_ptr<const Context> ctx, int sock,
                                                     const std::string& host, int timeout_ms);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The verified peer certificate's subject commonName (UTF-8, control characters replaced
  // by '?'); "" when it has none.
  const std::string& peer_common_name() const { return peer_cn_; }
  // The TCP socket (owned by the caller).
  int fd() const;

  // Copies plaintext between the TLS connection and `plain` (a stream socket; remains owned by
  // the caller; made non-blocking) until both directions have ended or one side fails. TLS EOF
  // (close_notify or a bare FIN) becomes shutdown(plain, SHUT_WR); EOF on `plain` becomes
  // close_notify and shutdown(tcp, SHUT_WR). Returns when done; never throws. Another thread
  // may shutdown(fd(), SHUT_RDWR) to make it return.
  void Relay(int plain);

  struct Impl;

 private:
  explicit Connection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::string peer_cn_;
};

// A one-line description of the last OpenSSL errors of this thread (and clears them).
std::string LastErrors();

}  // namespace moat::tls
