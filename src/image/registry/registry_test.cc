#include <gtest/gtest.h>

#include <mutex>
#include <vector>

#include "base/base64.h"
#include "image/digest.h"
#include "image/registry/auth.h"
#include "image/registry/client.h"
#include "image/registry/location.h"
#include "image/registry/test_http_server.h"

namespace moat::image::registry {
namespace {

using testing::HttpRequest;
using testing::TestHttpServer;

TEST(LocationTest, DockerHubNormalisation) {
  EXPECT_EQ(*ResolveRepository("busybox"), (Location{"registry-1.docker.io", "library/busybox"}));
  EXPECT_EQ(*ResolveRepository("myorg/app"), (Location{"registry-1.docker.io", "myorg/app"}));
  EXPECT_EQ(*ResolveRepository("docker.io/busybox"),
            (Location{"registry-1.docker.io", "library/busybox"}));
  EXPECT_EQ(*ResolveRepository("index.docker.io/x/y"), (Location{"registry-1.docker.io", "x/y"}));
  EXPECT_EQ(*ResolveRepository("library/busybox"),
            (Location{"registry-1.docker.io", "library/busybox"}));
}

TEST(LocationTest, HostsAreFirstComponentsWithDotColonOrLocalhost) {
  EXPECT_EQ(*ResolveRepository("localhost/x"), (Location{"localhost", "x"}));
  EXPECT_EQ(*ResolveRepository("localhost:5000/a/b"), (Location{"localhost:5000", "a/b"}));
  EXPECT_EQ(*ResolveRepository("ghcr.io/o/r"), (Location{"ghcr.io", "o/r"}));
  EXPECT_EQ(*ResolveRepository("127.0.0.1:5000/busybox"), (Location{"127.0.0.1:5000", "busybox"}));
  EXPECT_EQ(*ResolveRepository("[::1]:5000/x"), (Location{"[::1]:5000", "x"}));
  // Not a host: no '.', ':' and not localhost.
  EXPECT_EQ(*ResolveRepository("myhost/x"), (Location{"registry-1.docker.io", "myhost/x"}));
  EXPECT_FALSE(ResolveRepository("ghcr.io/"));
}

TEST(LocationTest, ServerAddress) {
  EXPECT_EQ(HostFromServerAddress("https://index.docker.io/v1/"), "registry-1.docker.io");
  EXPECT_EQ(HostFromServerAddress(""), "registry-1.docker.io");
  EXPECT_EQ(HostFromServerAddress("docker.io"), "registry-1.docker.io");
  EXPECT_EQ(HostFromServerAddress("http://localhost:5000/"), "localhost:5000");
  EXPECT_EQ(HostFromServerAddress("ghcr.io"), "ghcr.io");
}

TEST(LocationTest, PlainHttp) {
  EXPECT_TRUE(PlainHttpAllowed("localhost:5000", {}));
  EXPECT_TRUE(PlainHttpAllowed("127.0.0.1:5000", {}));
  EXPECT_TRUE(PlainHttpAllowed("127.1.2.3", {}));
  EXPECT_TRUE(PlainHttpAllowed("[::1]:5000", {}));
  EXPECT_FALSE(PlainHttpAllowed("127.example.com", {}));
  EXPECT_FALSE(PlainHttpAllowed("registry-1.docker.io", {}));
  EXPECT_FALSE(PlainHttpAllowed("10.1.2.3:5000", {}));
  EXPECT_TRUE(PlainHttpAllowed("10.1.2.3:5000", {"10.0.0.0/8"}));
  EXPECT_FALSE(PlainHttpAllowed("11.1.2.3:5000", {"10.0.0.0/8"}));
  EXPECT_TRUE(PlainHttpAllowed("reg.local:5000", {"reg.local:5000"}));
  EXPECT_TRUE(PlainHttpAllowed("reg.local:5000", {"reg.local"}));
  EXPECT_FALSE(PlainHttpAllowed("reg.local:5001", {"reg.local:5000"}));
  EXPECT_TRUE(PlainHttpAllowed("[fd00::5]:80", {"fd00::/8"}));
  EXPECT_FALSE(PlainHttpAllowed("[fe00::5]:80", {"fd00::/8"}));
}

TEST(AuthTest, BearerChallenge) {
  auto c = ParseWwwAuthenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].scheme, "bearer");
  EXPECT_EQ(c[0].params.at("realm"), "https://auth.docker.io/token");
  EXPECT_EQ(c[0].params.at("service"), "registry.docker.io");
  EXPECT_EQ(c[0].params.at("scope"), "repository:library/busybox:pull");
}

TEST(AuthTest, SeveralChallengesQuotingAndCase) {
  auto c = ParseWwwAuthenticate(
      R"(Basic realm="a, \"b\"" , BEARER Realm=https://x/t, scope="r:a:pull,push", error=insufficient_scope)");
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].scheme, "basic");
  EXPECT_EQ(c[0].params.at("realm"), "a, \"b\"");
  EXPECT_EQ(c[1].scheme, "bearer");
  EXPECT_EQ(c[1].params.at("realm"), "https://x/t");
  EXPECT_EQ(c[1].params.at("scope"), "r:a:pull,push");
  EXPECT_EQ(c[1].params.at("error"), "insufficient_scope");
}

TEST(AuthTest, MalformedNeverFails) {
  EXPECT_TRUE(ParseWwwAuthenticate("").empty());
  EXPECT_EQ(ParseWwwAuthenticate("Bearer").size(), 1u);
  auto c = ParseWwwAuthenticate(R"(Bearer realm="unterminated)");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].params.count("realm"), 0u);
  EXPECT_LE(ParseWwwAuthenticate("=== ,,, \"").size(), 1u);
}

TEST(AuthTest, TokenUrl) {
  Challenge c{"bearer", {{"realm", "https://a/token"}, {"service", "reg x"}}};
  EXPECT_EQ(TokenUrl(c, {"repository:a/b:pull", "repository:c:pull"}, ""),
            "https://a/token?service=reg%20x&scope=repository%3Aa%2Fb%3Apull"
            "&scope=repository%3Ac%3Apull");
  c.params["realm"] = "https://a/token?x=1";
  EXPECT_EQ(TokenUrl(c, {}, "offline_token=true"),
            "https://a/token?x=1&service=reg%20x&offline_token=true");
}

// ---------------------------------------------------------------------------------------------
// The client against a fake registry on 127.0.0.1 (plain HTTP: loopback).

std::string Sha(const std::string& s) { return "sha256:" + Sha256Hex(s); }

struct Recorder {
  std::mutex mu;
  std::vector<HttpRequest> reqs;
  void Add(const HttpRequest& r) {
    std::lock_guard l(mu);
    reqs.push_back(r);
  }
  std::vector<HttpRequest> All() {
    std::lock_guard l(mu);
    return reqs;
  }
};

TEST(ClientTest, BearerFlowWithBasicCredentialsAndTokenCache) {
  const std::string manifest = R"({"schemaVersion":2})";
  Recorder rec;
  int token_calls = 0;
  std::string realm;
  TestHttpServer srv([&](const HttpRequest& r, int fd) {
    rec.Add(r);
    if (r.target == "/v2/" && r.Header("authorization").rfind("Bearer tok-", 0) == 0) {
      TestHttpServer::Respond(fd, 200, {}, "{}");
    } else if (r.target == "/v2/") {
      TestHttpServer::Respond(
          fd, 401, {{"WWW-Authenticate", "Bearer realm=\"" + realm + "\",service=\"test\""}}, "");
    } else if (r.target.rfind("/token", 0) == 0) {
      ++token_calls;
      if (r.Header("authorization") != "Basic " + Base64Encode("alice:secret")) {
        TestHttpServer::Respond(fd, 401, {},
                                R"({"errors":[{"code":"UNAUTHORIZED","message":"bad"}]})");
        return;
      }
      TestHttpServer::Respond(
          fd, 200, {},
          R"({"token":"tok-)" + std::to_string(token_calls) + R"(","refresh_token":"refresh-1"})");
    } else if (r.target == "/v2/a/b/manifests/latest") {
      if (r.Header("authorization") != "Bearer tok-1") {
        TestHttpServer::Respond(
            fd, 401,
            {{"WWW-Authenticate",
              "Bearer realm=\"" + realm + "\",service=\"test\",scope=\"repository:a/b:pull\""}},
            "");
        return;
      }
      TestHttpServer::Respond(fd, 200,
                              {{"Content-Type", std::string(kMediaTypeOciManifest)},
                               {"Docker-Content-Digest", Sha(manifest)}},
                              manifest);
    } else {
      TestHttpServer::Respond(fd, 404, {}, "");
    }
  });
  realm = "http://" + srv.host() + "/token";
  ClientOptions o;
  o.host = srv.host();
  o.credentials.username = "alice";
  o.credentials.password = "secret";
  Client c(o);
  auto m = c.GetManifest("a/b", "latest");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->body, manifest);
  EXPECT_EQ(m->media_type, kMediaTypeOciManifest);
  EXPECT_EQ(m->digest, Sha(manifest));
  EXPECT_EQ(c.base_url(), "http://" + srv.host());
  // Cached: a second request goes straight to the registry with the token.
  ASSERT_TRUE(c.GetManifest("a/b", "latest"));
  EXPECT_EQ(token_calls, 1);
  bool scope_asked = false;
  for (const auto& r : rec.All()) {
    if (r.target.rfind("/token", 0) == 0) {
      EXPECT_NE(r.target.find("service=test"), std::string::npos);
      scope_asked = r.target.find("scope=repository%3Aa%2Fb%3Apull") != std::string::npos;
    }
  }
  EXPECT_TRUE(scope_asked);
  // By digest, too.
  ASSERT_TRUE(c.GetManifest("a/b", "latest"));

  // Wrong password: kPermissionDenied, and Login says so.
  ClientOptions bad = o;
  bad.credentials.password = "nope";
  Client c2(bad);
  auto m2 = c2.GetManifest("a/b", "latest");
  ASSERT_FALSE(m2);
  EXPECT_EQ(m2.error().kind, ErrorKind::kPermissionDenied) << m2.error().message;
  Client c3(bad);
  auto l = c3.Login();
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().kind, ErrorKind::kPermissionDenied);
  Client c4(o);
  auto l4 = c4.Login();
  ASSERT_TRUE(l4) << l4.error().message;
  EXPECT_EQ(*l4, "refresh-1");
}

// An identity token (from an earlier login) is exchanged with the OAuth2 refresh-token grant.
TEST(ClientTest, IdentityTokenUsesRefreshTokenGrant) {
  std::string realm;
  Recorder rec;
  TestHttpServer srv([&](const HttpRequest& r, int fd) {
    rec.Add(r);
    if (r.target == "/v2/") return TestHttpServer::Respond(fd, 200, {}, "{}");
    if (r.target == "/token") {
      bool ok = r.method == "POST" &&
                r.body.find("grant_type=refresh_token") != std::string::npos &&
                r.body.find("refresh_token=idtok") != std::string::npos &&
                r.body.find("scope=repository%3Ax%3Apull") != std::string::npos &&
                r.Header("authorization").empty();
      return TestHttpServer::Respond(fd, ok ? 200 : 401, {},
                                     ok ? R"({"access_token":"acc"})" : "{}");
    }
    if (r.Header("authorization") != "Bearer acc")
      return TestHttpServer::Respond(
          fd, 401, {{"WWW-Authenticate", "Bearer realm=\"" + realm + "\",service=\"s\""}}, "");
    TestHttpServer::Respond(fd, 200, {{"Content-Type", std::string(kMediaTypeOciManifest)}}, "{}");
  });
  realm = "http://" + srv.host() + "/token";
  ClientOptions o;
  o.host = srv.host();
  o.credentials.identity_token = "idtok";
  Client c(o);
  auto m = c.GetManifest("x", "latest");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->body, "{}");
}

// A token realm over plain HTTP on a non-loopback, non-insecure host is refused (credentials
// would travel in clear).
TEST(ClientTest, PlainHttpRealmElsewhereRefused) {
  TestHttpServer srv([&](const HttpRequest& r, int fd) {
    if (r.target == "/v2/") return TestHttpServer::Respond(fd, 200, {}, "{}");
    TestHttpServer::Respond(
        fd, 401, {{"WWW-Authenticate", R"(Bearer realm="http://auth.example.com/token")"}}, "");
  });
  ClientOptions o;
  o.host = srv.host();
  o.credentials.username = "u";
  o.credentials.password = "p";
  Client c(o);
  auto m = c.GetManifest("x", "latest");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().kind, ErrorKind::kPermissionDenied);
  EXPECT_NE(m.error().message.find("not HTTPS"), std::string::npos) << m.error().message;
}

TEST(ClientTest, ManifestDigestChecks) {
  const std::string manifest = R"({"schemaVersion":2,"x":1})";
  TestHttpServer srv([&](const HttpRequest& r, int fd) {
    if (r.target == "/v2/") return TestHttpServer::Respond(fd, 200, {}, "{}");
    // A lying Docker-Content-Digest.
    TestHttpServer::Respond(fd, 200,
                            {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"},
                             {"Docker-Content-Digest", Sha("other")}},
                            manifest);
  });
  ClientOptions o;
  o.host = srv.host();
  Client c(o);
  auto m = c.GetManifest("a", "latest");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(m.error().message.find("Docker-Content-Digest"), std::string::npos);
  // By digest: the content must hash to it.
  auto d = c.GetManifest("a", Sha("something else"));
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().kind, ErrorKind::kInvalidArgument);
}

TEST(ClientTest, UnknownManifestIsNotFound) {
  TestHttpServer srv([&](const HttpRequest& r, int fd) {
    if (r.target == "/v2/") return TestHttpServer::Respond(fd, 200, {}, "{}");
    TestHttpServer::Respond(
        fd, 404, {}, R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]})");
  });
  ClientOptions o;
  o.host = srv.host();
  Client c(o);
  auto m = c.GetManifest("a", "nope");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(m.error().message.find("manifest unknown"), std::string::npos) << m.error().message;
}

std::string Blob(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7919) >> 3);
  return s;
}

// The first GET of the blob is cut after `cut` bytes; the retry must ask for the rest.
TEST(ClientTest, InterruptedBlobDownloadResumesWithRange) {
  const std::string blob = Blob(300000);
  const size_t cut = 100000;
  Recorder rec;
  int gets = 0;
  TestHttpServer srv([&](const HttpRequest& r, int fd) {
    rec.Add(r);
    if (r.target == "/v2/") return TestHttpServer::Respond(fd, 200, {}, "{}");
    ++gets;
    if (gets == 1) {
      TestHttpServer::WriteRaw(
          fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(blob.size()) + "\r\n\r\n" +
                  blob.substr(0, cut));
      return;  // connection closed mid-body
    }
    std::string range = r.Header("range");
    ASSERT_EQ(range, "bytes=" + std::to_string(cut) + "-");
    TestHttpServer::Respond(
        fd, 206,
        {{"Content-Range", "bytes " + std::to_string(cut) + "-" + std::to_string(blob.size() - 1) +
                               "/" + std::to_string(blob.size())}},
        blob.substr(cut));
  });
  ClientOptions o;
  o.host = srv.host();
  o.retry_delay_ms = 1;
  Client c(o);
  std::string got;
  int64_t last = 0;
  auto r = c.FetchBlob(
      "a", Sha(blob), static_cast<int64_t>(blob.size()),
      [&](std::string_view d) -> Result<void> {
        got.append(d);
        return Ok();
      },
      [&](int64_t cur) { last = cur; });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(got, blob);
  EXPECT_EQ(last, static_cast<int64_t>(blob.size()));
  EXPECT_EQ(gets, 2);
}

// A server that ignores Range answers 200 with the whole blob: the prefix is skipped.
TEST(ClientTest, ResumeAgainstServerIgnoringRange) {
  const std::string blob = Blob(200000);
  int gets = 0;
  TestHttpServer srv([&](const HttpRequest& r, int fd) {
    if (r.target == "/v2/") return TestHttpServer::Respond(fd, 200, {}, "{}");
    if (++gets == 1) {
      TestHttpServer::WriteRaw(
          fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(blob.size()) + "\r\n\r\n" +
                  blob.substr(0, 70000));
      return;
    }
    TestHttpServer::Respond(fd, 200, {}, blob);
  });
  ClientOptions o;
  o.host = srv.host();
  o.retry_delay_ms = 1;
  Client c(o);
  std::string got;
  auto r = c.FetchBlob(
      "a", Sha(blob), static_cast<int64_t>(blob.size()),
      [&](std::string_view d) -> Result<void> {
        got.append(d);
        return Ok();
      },
      nullptr);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(got, blob);
}

TEST(ClientTest, BlobSizeAndDigestEnforced) {
  const std::string blob = Blob(50000);
  std::string served = blob;
  TestHttpServer srv([&](const HttpRequest& r, int fd) {
    if (r.target == "/v2/") return TestHttpServer::Respond(fd, 200, {}, "{}");
    TestHttpServer::Respond(fd, 200, {}, served);
  });
  ClientOptions o;
  o.host = srv.host();
  o.retry_delay_ms = 1;
  Client c(o);
  size_t delivered = 0;
  auto sink = [&](std::string_view d) -> Result<void> {
    delivered += d.size();
    return Ok();
  };
  // More bytes than the descriptor's size: stopped at the size.
  auto big = c.FetchBlob("a", Sha(blob), 1000, sink, nullptr);
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_LE(delivered, 1000u);
  EXPECT_NE(big.error().message.find("larger than its size"), std::string::npos);
  // Same size, other content.
  served = Blob(50000);
  served[100] ^= 1;
  auto bad = c.FetchBlob("a", Sha(blob), static_cast<int64_t>(blob.size()), sink, nullptr);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("digest mismatch"), std::string::npos);
  EXPECT_NE(bad.error().message.find(Sha(blob)), std::string::npos);
  // Fewer bytes than the size.
  served = blob.substr(0, 10);
  auto small = c.FetchBlob("a", Sha(blob), static_cast<int64_t>(blob.size()), sink, nullptr);
  ASSERT_FALSE(small);
  EXPECT_EQ(small.error().kind, ErrorKind::kInvalidArgument);
}

// Blob URLs redirect (to a CDN): followed, and the registry's token is not sent to another host.
TEST(ClientTest, RedirectFollowedWithoutLeakingAuthorization) {
  const std::string blob = Blob(1000);
  Recorder cdn_reqs;
  TestHttpServer cdn([&](const HttpRequest& r, int fd) {
    cdn_reqs.Add(r);
    TestHttpServer::Respond(fd, 200, {}, blob);
  });
  TestHttpServer srv([&](const HttpRequest& r, int fd) {
    if (r.target == "/v2/") return TestHttpServer::Respond(fd, 200, {}, "{}");
    TestHttpServer::Respond(
        fd, 307, {{"Location", "http://localhost:" + std::to_string(cdn.port()) + "/data"}}, "");
  });
  ClientOptions o;
  o.host = srv.host();
  o.credentials.registry_token = "secret-token";
  Client c(o);
  std::string got;
  auto r = c.FetchBlob(
      "a", Sha(blob), static_cast<int64_t>(blob.size()),
      [&](std::string_view d) -> Result<void> {
        got.append(d);
        return Ok();
      },
      nullptr);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(got, blob);
  auto reqs = cdn_reqs.All();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].Header("authorization"), "");
}

TEST(ClientTest, UnreachableRegistryIsUnavailable) {
  int port;
  {
    TestHttpServer srv([](const HttpRequest&, int) {});
    port = srv.port();
  }
  ClientOptions o;
  o.host = "127.0.0.1:" + std::to_string(port);
  o.connect_timeout_s = 2;
  Client c(o);
  auto p = c.Ping();
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().kind, ErrorKind::kUnavailable);
}

// A non-loopback registry is never reached over plain HTTP (HTTPS fails, no fallback).
TEST(ClientTest, NoPlainHttpFallbackForOtherHosts) {
  ClientOptions o;
  o.host = "localhost.invalid:1";
  o.connect_timeout_s = 2;
  Client c(o);
  auto p = c.Ping();
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().kind, ErrorKind::kUnavailable);
  EXPECT_EQ(c.base_url(), "");
}

}  // namespace
}  // namespace moat::image::registry
