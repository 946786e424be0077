// Store::Pull / Push / CheckAuth against real registries (Debian's docker-registry) that the
// test starts on 127.0.0.1: plain HTTP, and TLS (a CA made here with openssl) with htpasswd
// Basic auth. skopeo cross-checks the manifest digests. Label: privileged (it runs servers and
// the extractor; as root layers keep their owners).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "base/base64.h"
#include "base/strings.h"
#include "image/digest.h"
#include "image/registry/client.h"
#include "image/registry/test_http_server.h"
#include "image/store.h"
#include "image/test_util.h"

namespace moat::image {
namespace {

using testing::TempDir;

constexpr char kRegistryBin[] = "/usr/bin/docker-registry";

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

bool CanConnect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// Runs `cmd` with /bin/sh; returns its stdout; *status gets the exit status.
std::string RunShell(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = popen(("(" + cmd + ") 2>&1").c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

// One docker-registry process with its own storage in a temp dir; killed (only this pid) and
// reaped on destruction.
class Registry {
 public:
  struct Tls {
    std::string cert, key, htpasswd;
  };
  // `extra_config` is appended to the config (an auth: section).
  explicit Registry(const std::string& dir, const Tls* tls = nullptr,
                    const std::string& extra_config = "")
      : dir_(dir) {
    mkdir(dir.c_str(), 0700);
    port_ = FreePort();
    std::string cfg =
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        "storage:\n  filesystem:\n    rootdirectory: " +
        dir +
        "/data\n"
        "  delete:\n    enabled: true\n"
        "http:\n  addr: 127.0.0.1:" +
        std::to_string(port_) + "\n";
    if (tls) {
      cfg += "  tls:\n    certificate: " + tls->cert + "\n    key: " + tls->key + "\n";
      cfg += "auth:\n  htpasswd:\n    realm: moat-test\n    path: " + tls->htpasswd + "\n";
    }
    cfg += extra_config;
    testing::WriteFileOrDie(dir + "/config.yml", cfg);
    pid_ = fork();
    if (pid_ == 0) {
      int log = open((dir + "/registry.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(log, 1);
      dup2(log, 2);
      execl(kRegistryBin, kRegistryBin, "serve", (dir + "/config.yml").c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 200 && !CanConnect(port_); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ~Registry() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool ready() const { return CanConnect(port_); }
  int port() const { return port_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  // The file the registry serves a blob from.
  std::string BlobFile(const std::string& digest) const {
    std::string hex = digest.substr(7);
    return dir_ + "/data/docker/registry/v2/blobs/sha256/" + hex.substr(0, 2) + "/" + hex + "/data";
  }

 private:
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// A TCP proxy in front of a registry that cuts the first response to a GET of `blob` after
// `cut_after` bytes, and records the Range header of the next GET of it.
class CuttingProxy {
 public:
  CuttingProxy(int upstream, std::string blob, size_t cut_after)
      : upstream_(upstream), blob_(std::move(blob)), cut_after_(cut_after) {
    lfd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    listen(lfd_, 16);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~CuttingProxy() {
    stop_ = true;
    accept_thread_.join();
    std::lock_guard l(mu_);
    for (auto& t : conns_) t.join();
    close(lfd_);
  }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  int blob_gets() const { return blob_gets_; }
  bool cut_done() const { return cut_done_; }
  std::string retry_range() {
    std::lock_guard l(mu_);
    return retry_range_;
  }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd p{lfd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      int c = accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      std::lock_guard l(mu_);
      conns_.emplace_back([this, c] { Pump(c); });
    }
  }
  void Pump(int c) {
    int u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(upstream_));
    if (connect(u, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(u);
      close(c);
      return;
    }
    std::string reqbuf;
    bool cutting = false;
    size_t sent = 0;
    char buf[16384];
    while (!stop_) {
      pollfd p[2] = {{c, POLLIN, 0}, {u, POLLIN, 0}};
      if (poll(p, 2, 100) <= 0) continue;
      if (p[0].revents) {
        ssize_t n = recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        reqbuf.append(buf, static_cast<size_t>(n));
        for (size_t e; (e = reqbuf.find("\r\n\r\n")) != std::string::npos;) {
          std::string head = reqbuf.substr(0, e);
          reqbuf.erase(0, e + 4);
          if (head.rfind("GET ", 0) == 0 && head.find("/blobs/" + blob_) != std::string::npos) {
            ++blob_gets_;
            if (!cut_done_) {
              cutting = true;
            } else {
              std::lock_guard l(mu_);
              size_t r = head.find("\r\nRange: ");
              if (r != std::string::npos)
                retry_range_ = head.substr(r + 9, head.find("\r\n", r + 2) - r - 9);
            }
          }
        }
        send(u, buf, static_cast<size_t>(n), MSG_NOSIGNAL);
      }
      if (p[1].revents) {
        ssize_t n = recv(u, buf, sizeof buf, 0);
        if (n <= 0) break;
        size_t k = static_cast<size_t>(n);
        if (cutting && sent + k >= cut_after_) {
          send(c, buf, cut_after_ - sent, MSG_NOSIGNAL);
          cut_done_ = true;
          break;  // the connection dies mid-body
        }
        if (cutting) sent += k;
        send(c, buf, k, MSG_NOSIGNAL);
      }
    }
    close(u);
    close(c);
  }

  int upstream_;
  std::string blob_;
  size_t cut_after_;
  int lfd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false}, cut_done_{false};
  std::atomic<int> blob_gets_{0};
  std::mutex mu_;
  std::vector<std::thread> conns_;
  std::string retry_range_;
  std::thread accept_thread_;
};

std::unique_ptr<Store> OpenStore(const std::string& root, const std::string& certs_dir = "") {
  StoreOptions o;
  o.extractor_path = MOAT_EXTRACT_PATH;
  o.no_chown = geteuid() != 0;
  o.certs_dir = certs_dir;
  auto s = Store::Open(root, o);
  if (!s) ADD_FAILURE() << s.error().message;
  return s ? std::move(*s) : nullptr;
}

std::string LoadBusybox(Store* s) {
  int fd = open(MOAT_BUNDLED_IMAGE, O_RDONLY | O_CLOEXEC);
  EXPECT_GE(fd, 0);
  auto r = s->Load(fd, nullptr);
  close(fd);
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  return r && !r->ids.empty() ? r->ids[0] : "";
}

// Loads `img` (an OCI layout written to `dir`/img.tar) into `s`.
void LoadTestImage(Store* s, const testing::TestImage& img, const std::string& dir) {
  std::string archive = dir + "/img.tar";
  {
    std::ofstream f(archive, std::ios::binary);
    f << testing::OciLayoutTar({img});
  }
  int fd = open(archive.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto loaded = s->Load(fd, nullptr);
  close(fd);
  ASSERT_TRUE(loaded) << loaded.error().message;
}

Reference Ref(const std::string& s) {
  auto r = ParseReference(s);
  EXPECT_TRUE(r) << s;
  return r ? *r : Reference{};
}

struct Events {
  std::mutex mu;
  std::vector<ProgressEvent> all;
  ProgressFn Fn() {
    return [this](const ProgressEvent& e) {
      std::lock_guard l(mu);
      all.push_back(e);
    };
  }
  bool Has(const std::string& status_prefix) {
    std::lock_guard l(mu);
    for (const auto& e : all)
      if (e.status.rfind(status_prefix, 0) == 0) return true;
    return false;
  }
};

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> out;
  std::string o = RunShell("ls -A " + dir);
  for (auto& l : StrSplit(o, '\n'))
    if (!l.empty()) out.push_back(l);
  return out;
}

class RegistryIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kRegistryBin, X_OK) != 0) GTEST_SKIP() << "docker-registry is not installed";
  }
};

TEST_F(RegistryIntegrationTest, PlainHttpPushPullSkopeoDigestAndMount) {
  TempDir t;
  Registry reg(t.path() + "/reg");
  ASSERT_TRUE(reg.ready());
  auto a = OpenStore(t.path() + "/a");
  ASSERT_TRUE(a);
  std::string id = LoadBusybox(a.get());
  ASSERT_FALSE(id.empty());
  std::string name = reg.host() + "/test/busybox:v1";
  ASSERT_TRUE(a->Tag("busybox:latest", Ref(name)));
  Events push_ev;
  auto digest = a->Push(Ref(name), {}, push_ev.Fn());
  ASSERT_TRUE(digest) << digest.error().message;
  EXPECT_TRUE(push_ev.Has("Pushed"));
  EXPECT_TRUE(push_ev.Has("v1: digest: " + *digest));
  // The manifest digest as skopeo computes it.
  int st = -1;
  std::string sk =
      RunShell("skopeo inspect --tls-verify=false --format '{{.Digest}}' docker://" + name, &st);
  ASSERT_EQ(st, 0) << sk;
  EXPECT_EQ(std::string(TrimWhitespace(sk)), *digest);
  // The loaded image's manifest went up byte for byte.
  EXPECT_EQ(a->Resolve(name)->manifest_digest, *digest);

  // Pull into a fresh store: the same image.
  auto b = OpenStore(t.path() + "/b");
  Events pull_ev;
  auto img = b->Pull(Ref(name), {}, pull_ev.Fn());
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(img->id, id);
  EXPECT_EQ(img->tags, std::vector<std::string>{name});
  EXPECT_EQ(img->repo_digests, std::vector<std::string>{reg.host() + "/test/busybox@" + *digest});
  for (const char* s :
       {"Pulling from test/busybox", "Pulling fs layer", "Downloading", "Verifying Checksum",
        "Download complete", "Pull complete", "Digest: ", "Status: Downloaded newer image for "})
    EXPECT_TRUE(pull_ev.Has(s)) << s;
  EXPECT_TRUE(b->Resolve(reg.host() + "/test/busybox@" + *digest)) << "by repo digest";
  ASSERT_EQ(img->layer_dirs.size(), 1u);
  struct stat sb;
  EXPECT_EQ(stat((img->layer_dirs[0] + "/bin/busybox").c_str(), &sb), 0);
  EXPECT_TRUE(Entries(t.path() + "/b/tmp").empty());

  // Again: nothing to download.
  Events again;
  ASSERT_TRUE(b->Pull(Ref(name), {}, again.Fn()));
  EXPECT_TRUE(again.Has("Already exists"));
  EXPECT_TRUE(again.Has("Status: Image is up to date"));

  // Pull by digest into a third store: same image, no tag.
  auto c = OpenStore(t.path() + "/c");
  auto by_digest = c->Pull(Ref(reg.host() + "/test/busybox@" + *digest), {}, nullptr);
  ASSERT_TRUE(by_digest) << by_digest.error().message;
  EXPECT_EQ(by_digest->id, id);
  EXPECT_TRUE(by_digest->tags.empty());

  // Pushing again: the registry has every blob.
  Events again_push;
  ASSERT_TRUE(a->Push(Ref(name), {}, again_push.Fn()));
  EXPECT_TRUE(again_push.Has("Layer already exists"));
  EXPECT_FALSE(again_push.Has("Pushed"));

  // From the store that pulled test/busybox, a push to another repository of the same
  // registry mounts the layer instead of uploading it.
  std::string other = reg.host() + "/other/copy:x";
  ASSERT_TRUE(b->Tag(name, Ref(other)));
  Events mount_ev;
  auto d2 = b->Push(Ref(other), {}, mount_ev.Fn());
  ASSERT_TRUE(d2) << d2.error().message;
  EXPECT_EQ(*d2, *digest);
  EXPECT_TRUE(mount_ev.Has("Mounted from test/busybox"));
  EXPECT_FALSE(mount_ev.Has("Pushed"));

  // Unknown tag and repository.
  auto missing = c->Pull(Ref(reg.host() + "/test/busybox:nope"), {}, nullptr);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().kind, ErrorKind::kNotFound);
  auto norepo = c->Pull(Ref(reg.host() + "/no/such:v1"), {}, nullptr);
  ASSERT_FALSE(norepo);
  EXPECT_EQ(norepo.error().kind, ErrorKind::kNotFound) << norepo.error().message;
}

// skopeo rewrites our image as Docker schema 2 with a gzip'd layer; moat pulls that.
// A gzip'd layer loaded into the store keeps no blob (only its tree and tar-split record):
// push rebuilds its tar, gzips it afresh and pushes a manifest naming the new blob; the image
// pulled back is the same image, skopeo reads the manifest, and a second push makes the same
// bytes (nothing uploaded).
TEST_F(RegistryIntegrationTest, PushRecompressesALayerStoredWithoutItsBlob) {
  TempDir t;
  Registry reg(t.path() + "/reg");
  ASSERT_TRUE(reg.ready());
  auto a = OpenStore(t.path() + "/a");
  ASSERT_TRUE(a);
  std::string layer = testing::BuildTar({testing::Dir("data"),
                                         testing::File("data/noise", testing::Noise(300000, 3)),
                                         testing::File("data/small", "small")});
  testing::TestImage img = testing::MakeImage({layer}, "x", "recompress:1", "gzip");
  ASSERT_NO_FATAL_FAILURE(LoadTestImage(a.get(), img, t.path()));
  std::string blob_digest = testing::Digest(img.layer_blobs[0]);
  EXPECT_EQ(access((t.path() + "/a/blobs/sha256/" + blob_digest.substr(7)).c_str(), F_OK), -1);
  auto local = a->Resolve("recompress:1");
  ASSERT_TRUE(local);

  std::string name = reg.host() + "/test/recompress:v1";
  ASSERT_TRUE(a->Tag("recompress:1", Ref(name)));
  Events ev;
  auto digest = a->Push(Ref(name), {}, ev.Fn());
  ASSERT_TRUE(digest) << digest.error().message;
  EXPECT_TRUE(ev.Has("Compressing"));
  EXPECT_TRUE(ev.Has("Pushed"));
  EXPECT_NE(*digest, local->manifest_digest) << "a new blob needs a new manifest";
  int st = -1;
  std::string raw =
      RunShell("skopeo inspect --raw --tls-verify=false docker://" + name, &st);
  ASSERT_EQ(st, 0) << raw;
  EXPECT_NE(raw.find("application/vnd.oci.image.layer.v1.tar+gzip"), std::string::npos) << raw;
  EXPECT_EQ(raw.find(blob_digest), std::string::npos) << "the old blob is not named: " << raw;
  std::string sk =
      RunShell("skopeo inspect --tls-verify=false --format '{{.Digest}}' docker://" + name, &st);
  ASSERT_EQ(st, 0) << sk;
  EXPECT_EQ(std::string(TrimWhitespace(sk)), *digest);

  auto b = OpenStore(t.path() + "/b");
  auto pulled = b->Pull(Ref(name), {}, nullptr);
  ASSERT_TRUE(pulled) << pulled.error().message;
  EXPECT_EQ(pulled->id, local->id);
  EXPECT_EQ(pulled->diff_ids, local->diff_ids);
  auto noise = testing::ReadFileOrDie(pulled->layer_dirs[0] + "/data/noise");
  EXPECT_EQ(noise.size(), 300000u);

  Events again;
  auto d2 = a->Push(Ref(name), {}, again.Fn());
  ASSERT_TRUE(d2) << d2.error().message;
  EXPECT_EQ(*d2, *digest) << "recompression is deterministic";
  EXPECT_TRUE(again.Has("Layer already exists"));
  EXPECT_FALSE(again.Has("Pushed"));
}

// A layer that replaces one of its own files has no tar-split record (its first content is
// not in the tree): its blob is kept by load and push sends it as is; pull, which streams
// layers into the extractor without keeping them, downloads that blob a second time to keep it.
TEST_F(RegistryIntegrationTest, LayerWithoutATarSplitRecordKeepsItsBlobThroughPushAndPull) {
  TempDir t;
  Registry reg(t.path() + "/reg");
  ASSERT_TRUE(reg.ready());
  auto a = OpenStore(t.path() + "/a");
  ASSERT_TRUE(a);
  std::string layer = testing::BuildTar({testing::File("f", testing::Noise(4000, 1)),
                                         testing::File("f", "replaced")});
  testing::TestImage img = testing::MakeImage({layer}, "x", "twice:1", "gzip");
  ASSERT_NO_FATAL_FAILURE(LoadTestImage(a.get(), img, t.path()));
  std::string blob_hex = testing::Digest(img.layer_blobs[0]).substr(7);
  EXPECT_EQ(access((t.path() + "/a/blobs/sha256/" + blob_hex).c_str(), F_OK), 0);
  std::string name = reg.host() + "/test/twice:v1";
  ASSERT_TRUE(a->Tag("twice:1", Ref(name)));
  auto digest = a->Push(Ref(name), {}, nullptr);
  ASSERT_TRUE(digest) << digest.error().message;
  EXPECT_EQ(*digest, a->Resolve("twice:1")->manifest_digest) << "pushed byte for byte";

  auto b = OpenStore(t.path() + "/b");
  auto pulled = b->Pull(Ref(name), {}, nullptr);
  ASSERT_TRUE(pulled) << pulled.error().message;
  EXPECT_EQ(access((t.path() + "/b/blobs/sha256/" + blob_hex).c_str(), F_OK), 0)
      << "the blob of a layer without a tar-split record is kept";
  EXPECT_EQ(testing::ReadFileOrDie(t.path() + "/b/blobs/sha256/" + blob_hex), img.layer_blobs[0]);
  EXPECT_EQ(testing::ReadFileOrDie(pulled->layer_dirs[0] + "/f"), "replaced");
  EXPECT_TRUE(Entries(t.path() + "/b/tmp").empty());
}

TEST_F(RegistryIntegrationTest, PullsDockerSchema2GzipWrittenBySkopeo) {
  TempDir t;
  Registry reg(t.path() + "/reg");
  ASSERT_TRUE(reg.ready());
  auto a = OpenStore(t.path() + "/a");
  std::string id = LoadBusybox(a.get());
  std::string name = reg.host() + "/src/busybox:v1";
  ASSERT_TRUE(a->Tag("busybox:latest", Ref(name)));
  ASSERT_TRUE(a->Push(Ref(name), {}, nullptr));
  int st = -1;
  std::string out = RunShell(
      "skopeo copy --insecure-policy --src-tls-verify=false --dest-tls-verify=false "
      "--format v2s2 --dest-compress --dest-compress-format gzip docker://" +
          name + " docker://" + reg.host() + "/v2s2/busybox:gz",
      &st);
  ASSERT_EQ(st, 0) << out;
  registry::ClientOptions o;
  o.host = reg.host();
  registry::Client client(o);
  auto m = client.GetManifest("v2s2/busybox", "gz");
  ASSERT_TRUE(m) << m.error().message;
  ASSERT_EQ(m->media_type, registry::kMediaTypeDockerManifest);
  ASSERT_NE(m->body.find("application/vnd.docker.image.rootfs.diff.tar.gzip"), std::string::npos)
      << m->body;
  auto b = OpenStore(t.path() + "/b");
  auto img = b->Pull(Ref(reg.host() + "/v2s2/busybox:gz"), {}, nullptr);
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(img->manifest_digest, m->digest);
  EXPECT_EQ(img->diff_ids, a->Resolve(name)->diff_ids);
  struct stat sb;
  EXPECT_EQ(stat((img->layer_dirs[0] + "/bin/busybox").c_str(), &sb), 0);
  // And pushed back from moat byte for byte (schema 2 stays schema 2).
  std::string back = reg.host() + "/v2s2/again:gz";
  ASSERT_TRUE(b->Tag(reg.host() + "/v2s2/busybox:gz", Ref(back)));
  Events ev;
  auto d = b->Push(Ref(back), {}, ev.Fn());
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(*d, m->digest);
  EXPECT_TRUE(ev.Has("Mounted from v2s2/busybox"));
  auto m2 = client.GetManifest("v2s2/again", "gz");
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->media_type, registry::kMediaTypeDockerManifest);
}

TEST_F(RegistryIntegrationTest, ChunkedUploadThroughTheClient) {
  TempDir t;
  Registry reg(t.path() + "/reg");
  ASSERT_TRUE(reg.ready());
  registry::ClientOptions o;
  o.host = reg.host();
  registry::Client client(o);
  std::string blob(100000, 'x');
  for (size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<char>(i * 31 >> 2);
  std::string digest = "sha256:" + Sha256Hex(blob);
  testing::WriteFileOrDie(t.path() + "/blob", blob);
  int fd = open((t.path() + "/blob").c_str(), O_RDONLY | O_CLOEXEC);
  std::vector<int64_t> steps;
  auto up = client.UploadBlob("chunks/x", digest, fd, static_cast<int64_t>(blob.size()), 30000,
                              [&](int64_t cur) { steps.push_back(cur); });
  close(fd);
  ASSERT_TRUE(up) << up.error().message;
  EXPECT_EQ(steps, (std::vector<int64_t>{30000, 60000, 90000, 100000}));
  EXPECT_TRUE(*client.BlobExists("chunks/x", digest));
  auto back = client.FetchBlobToString("chunks/x", digest, static_cast<int64_t>(blob.size()));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, blob);
  // A wrong digest is refused by the registry.
  fd = open((t.path() + "/blob").c_str(), O_RDONLY | O_CLOEXEC);
  auto bad = client.UploadBlob("chunks/x", "sha256:" + std::string(64, '0'), fd,
                               static_cast<int64_t>(blob.size()), 30000, nullptr);
  close(fd);
  EXPECT_FALSE(bad);
}

TEST_F(RegistryIntegrationTest, MultiPlatformIndexChoosesAmd64) {
  TempDir t;
  Registry reg(t.path() + "/reg");
  ASSERT_TRUE(reg.ready());
  auto a = OpenStore(t.path() + "/a");
  std::string id = LoadBusybox(a.get());
  std::string amd = reg.host() + "/multi:amd64";
  ASSERT_TRUE(a->Tag("busybox:latest", Ref(amd)));
  auto amd_digest = a->Push(Ref(amd), {}, nullptr);
  ASSERT_TRUE(amd_digest) << amd_digest.error().message;
  Image im = *a->Resolve(amd);
  // An "arm64" variant of the same image: its config differs only in the architecture.
  std::string cfg = im.config_json;
  size_t pos = cfg.find("\"architecture\":\"amd64\"");
  ASSERT_NE(pos, std::string::npos);
  cfg.replace(pos, 22, "\"architecture\":\"arm64\"");
  std::string cfg_digest = "sha256:" + Sha256Hex(cfg);
  registry::ClientOptions o;
  o.host = reg.host();
  registry::Client client(o);
  testing::WriteFileOrDie(t.path() + "/cfg", cfg);
  int fd = open((t.path() + "/cfg").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_TRUE(
      client.UploadBlob("multi", cfg_digest, fd, static_cast<int64_t>(cfg.size()), 0, nullptr));
  close(fd);
  auto amd_manifest = client.GetManifest("multi", "amd64");
  ASSERT_TRUE(amd_manifest);
  std::string arm_manifest = amd_manifest->body;
  std::string old_cfg = im.id;
  pos = arm_manifest.find(old_cfg);
  ASSERT_NE(pos, std::string::npos);
  arm_manifest.replace(pos, old_cfg.size(), cfg_digest);
  pos = arm_manifest.find("\"size\":" + std::to_string(im.config_json.size()));
  ASSERT_NE(pos, std::string::npos);
  arm_manifest.replace(pos, 7 + std::to_string(im.config_json.size()).size(),
                       "\"size\":" + std::to_string(cfg.size()));
  auto arm_digest =
      client.PutManifest("multi", "arm64", registry::kMediaTypeOciManifest, arm_manifest);
  ASSERT_TRUE(arm_digest) << arm_digest.error().message;
  // The index lists arm64 first, so a pull that ignored the platform would pick it.
  std::string index = StrFormat(
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)"
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%zu,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},)"
      R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%zu,"platform":{"os":"linux","architecture":"amd64"}}]})",
      arm_digest->c_str(), arm_manifest.size(), amd_digest->c_str(), amd_manifest->body.size());
  auto index_digest = client.PutManifest("multi", "latest", registry::kMediaTypeOciIndex, index);
  ASSERT_TRUE(index_digest) << index_digest.error().message;

  auto b = OpenStore(t.path() + "/b");
  PullOptions amd64;
  amd64.architecture = "amd64";
  auto got = b->Pull(Ref(reg.host() + "/multi:latest"), amd64, nullptr);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->id, id);
  EXPECT_EQ(got->architecture, "amd64");
  EXPECT_EQ(got->manifest_digest, *amd_digest);
  // The repo digest is the index's, as Docker records it, and resolves.
  EXPECT_EQ(got->repo_digests, std::vector<std::string>{reg.host() + "/multi@" + *index_digest});
  EXPECT_TRUE(b->Resolve(reg.host() + "/multi@" + *index_digest));
  // The host's default (amd64 here) picks the same.
  auto c = OpenStore(t.path() + "/c");
  auto def = c->Pull(Ref(reg.host() + "/multi:latest"), {}, nullptr);
  ASSERT_TRUE(def) << def.error().message;
#if defined(__x86_64__)
  EXPECT_EQ(def->id, id);
#endif
  // arm64 chosen explicitly: the other config (the layer is shared).
  PullOptions arm;
  arm.architecture = "arm64";
  auto got_arm = b->Pull(Ref(reg.host() + "/multi:latest"), arm, nullptr);
  ASSERT_TRUE(got_arm) << got_arm.error().message;
  EXPECT_EQ(got_arm->id, cfg_digest);
  EXPECT_EQ(got_arm->architecture, "arm64");
  PullOptions s390;
  s390.architecture = "s390x";
  auto none = b->Pull(Ref(reg.host() + "/multi:latest"), s390, nullptr);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(none.error().message.find("linux/s390x"), std::string::npos);
  // skopeo sees the same index.
  int st = -1;
  std::string sk = RunShell("skopeo inspect --raw --tls-verify=false docker://" + reg.host() +
                                "/multi:latest | sha256sum",
                            &st);
  EXPECT_EQ(sk.substr(0, 64), index_digest->substr(7));
}

TEST_F(RegistryIntegrationTest, TamperedBlobRefusedAndNothingLeftBehind) {
  TempDir t;
  Registry reg(t.path() + "/reg");
  ASSERT_TRUE(reg.ready());
  auto a = OpenStore(t.path() + "/a");
  LoadBusybox(a.get());
  std::string name = reg.host() + "/tamper/busybox:v1";
  ASSERT_TRUE(a->Tag("busybox:latest", Ref(name)));
  ASSERT_TRUE(a->Push(Ref(name), {}, nullptr));
  Image im = *a->Resolve(name);
  // The bundled layer is an uncompressed tar: its blob digest is its diff id.
  std::string layer = im.diff_ids[0];
  std::string file = reg.BlobFile(layer);
  std::string data = testing::ReadFileOrDie(file);
  ASSERT_GT(data.size(), 600000u);
  data[600000] ^= 0x20;  // same size, other bytes (inside busybox's contents)
  testing::WriteFileOrDie(file, data);

  std::string root = t.path() + "/b";
  auto b = OpenStore(root);
  auto r = b->Pull(Ref(name), {}, nullptr);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument) << r.error().message;
  EXPECT_NE(r.error().message.find(layer), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("digest mismatch"), std::string::npos) << r.error().message;
  for (const char* d : {"/blobs/sha256", "/layers", "/images", "/tmp"})
    EXPECT_TRUE(Entries(root + d).empty()) << d << ": " << StrJoin(Entries(root + d), " ");
  EXPECT_FALSE(b->Resolve(name));
  auto list = b->List();
  ASSERT_TRUE(list);
  EXPECT_TRUE(list->empty());
}

TEST_F(RegistryIntegrationTest, InterruptedDownloadResumesWithRange) {
  TempDir t;
  Registry reg(t.path() + "/reg");
  ASSERT_TRUE(reg.ready());
  auto a = OpenStore(t.path() + "/a");
  std::string id = LoadBusybox(a.get());
  std::string name = reg.host() + "/resume/busybox:v1";
  ASSERT_TRUE(a->Tag("busybox:latest", Ref(name)));
  ASSERT_TRUE(a->Push(Ref(name), {}, nullptr));
  std::string layer = a->Resolve(name)->diff_ids[0];
  CuttingProxy proxy(reg.port(), layer, 700000);
  auto b = OpenStore(t.path() + "/b");
  auto img = b->Pull(Ref(proxy.host() + "/resume/busybox:v1"), {}, nullptr);
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(img->id, id);
  EXPECT_TRUE(proxy.cut_done());
  EXPECT_EQ(proxy.blob_gets(), 2);
  // The retry asked for the rest only: it starts past the bytes delivered before the cut
  // (the cut counted the response headers too, so the body offset is a little less).
  std::string range = proxy.retry_range();
  ASSERT_EQ(range.rfind("bytes=", 0), 0u) << range;
  int64_t from = ParseInt64(range.substr(6, range.size() - 7)).value_or(-1);
  EXPECT_GT(from, 600000);
  EXPECT_LT(from, 700000);
}

// ---------------------------------------------------------------------------------------------
// TLS with a CA made here, and htpasswd (Basic) auth.

class TlsRegistryTest : public RegistryIntegrationTest {
 protected:
  void SetUp() override {
    RegistryIntegrationTest::SetUp();
    if (IsSkipped()) return;
    if (access("/usr/bin/openssl", X_OK) != 0) GTEST_SKIP() << "openssl is not installed";
    if (access("/usr/bin/htpasswd", X_OK) != 0) GTEST_SKIP() << "htpasswd is not installed";
    std::string d = t_.path();
    int st = -1;
    std::string out = RunShell(
        "cd " + d +
            " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=moat-test-ca "
            "-keyout ca.key -out ca.crt && "
            "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout server.key -out "
            "server.csr && "
            "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf && "
            "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
            "-extfile ext.cnf -out server.crt && htpasswd -Bbn alice s3cret > htpasswd",
        &st);
    ASSERT_EQ(st, 0) << out;
    Registry::Tls tls{d + "/server.crt", d + "/server.key", d + "/htpasswd"};
    reg_ = std::make_unique<Registry>(d + "/reg", &tls);
    ASSERT_TRUE(reg_->ready());
    certs_ = d + "/certs.d";
    ASSERT_EQ(mkdir(certs_.c_str(), 0700), 0);
    ASSERT_EQ(mkdir((certs_ + "/" + reg_->host()).c_str(), 0700), 0);
    testing::WriteFileOrDie(certs_ + "/" + reg_->host() + "/ca.crt",
                            testing::ReadFileOrDie(d + "/ca.crt"));
  }
  RegistryAuth Alice() {
    RegistryAuth a;
    a.username = "alice";
    a.password = "s3cret";
    a.server_address = reg_->host();
    return a;
  }
  TempDir t_;
  std::unique_ptr<Registry> reg_;
  std::string certs_;
};

TEST_F(TlsRegistryTest, LoginPushPullWithBasicAuthOverVerifiedTls) {
  auto a = OpenStore(t_.path() + "/a", certs_);
  std::string id = LoadBusybox(a.get());
  // POST /auth: right and wrong passwords.
  auto ok = a->CheckAuth(Alice());
  ASSERT_TRUE(ok) << ok.error().message;
  RegistryAuth wrong = Alice();
  wrong.password = "nope";
  auto denied = a->CheckAuth(wrong);
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().kind, ErrorKind::kPermissionDenied) << denied.error().message;

  std::string name = reg_->host() + "/secure/busybox:v1";
  ASSERT_TRUE(a->Tag("busybox:latest", Ref(name)));
  // Without credentials the push is refused.
  auto anon = a->Push(Ref(name), {}, nullptr);
  ASSERT_FALSE(anon);
  EXPECT_EQ(anon.error().kind, ErrorKind::kPermissionDenied) << anon.error().message;
  auto digest = a->Push(Ref(name), Alice(), nullptr);
  ASSERT_TRUE(digest) << digest.error().message;

  auto b = OpenStore(t_.path() + "/b", certs_);
  PullOptions po;
  po.auth = Alice();
  auto img = b->Pull(Ref(name), po, nullptr);
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(img->id, id);
  // Anonymous pull: Docker's message.
  auto c = OpenStore(t_.path() + "/c", certs_);
  auto anon_pull = c->Pull(Ref(name), {}, nullptr);
  ASSERT_FALSE(anon_pull);
  EXPECT_EQ(anon_pull.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(anon_pull.error().message.find("pull access denied"), std::string::npos)
      << anon_pull.error().message;
  // Without the CA the registry's certificate is not trusted (and no plain-HTTP fallback
  // gets around it).
  auto d = OpenStore(t_.path() + "/d", t_.path() + "/empty-certs");
  auto untrusted = d->Pull(Ref(name), po, nullptr);
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().kind, ErrorKind::kUnavailable) << untrusted.error().message;

  // skopeo, trusting the same CA with the same credentials, sees our digest.
  int st = -1;
  std::string sk = RunShell("skopeo inspect --cert-dir " + certs_ + "/" + reg_->host() +
                                " --creds alice:s3cret --format '{{.Digest}}' docker://" + name,
                            &st);
  ASSERT_EQ(st, 0) << sk;
  EXPECT_EQ(std::string(TrimWhitespace(sk)), *digest);
}

// ---------------------------------------------------------------------------------------------
// The Bearer token flow against docker-registry with token auth: a small token server in the
// test issues RS256 JWTs (x5c: its certificate, which the registry trusts as rootcertbundle).

std::string B64Url(std::string_view s) {
  std::string out = Base64Encode(s, Base64Alphabet::kUrl);
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

std::string UrlDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
  }
  return out;
}

std::multimap<std::string, std::string> ParseForm(const std::string& q) {
  std::multimap<std::string, std::string> out;
  for (const auto& kv : StrSplit(q, '&')) {
    size_t eq = kv.find('=');
    if (eq != std::string::npos) out.emplace(kv.substr(0, eq), UrlDecode(kv.substr(eq + 1)));
  }
  return out;
}

class TokenServer {
 public:
  TokenServer(const std::string& key_pem_path, const std::string& cert_der_b64)
      : x5c_(cert_der_b64),
        http_([this](const registry::testing::HttpRequest& r, int fd) { Handle(r, fd); }) {
    FILE* f = fopen(key_pem_path.c_str(), "r");
    if (f) {
      key_ = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
      fclose(f);
    }
  }
  ~TokenServer() { EVP_PKEY_free(key_); }
  bool ok() const { return key_ != nullptr; }
  std::string realm() const { return "http://" + http_.host() + "/token"; }
  int requests() const { return requests_; }
  std::vector<std::string> scopes_seen() {
    std::lock_guard l(mu_);
    return scopes_;
  }

 private:
  std::string Sign(const std::string& data) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t len = 0;
    std::string sig;
    if (EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_) == 1 &&
        EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()),
                       data.size()) == 1) {
      sig.resize(len);
      EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size());
      sig.resize(len);
    }
    EVP_MD_CTX_free(ctx);
    return sig;
  }
  void Handle(const registry::testing::HttpRequest& r, int fd) {
    using registry::testing::TestHttpServer;
    ++requests_;
    std::string query =
        r.target.find('?') == std::string::npos ? "" : r.target.substr(r.target.find('?') + 1);
    auto form = ParseForm(r.method == "POST" ? r.body : query);
    std::string user;
    if (r.method == "POST") {
      // OAuth2 refresh-token grant with the identity token handed out at login.
      auto rt = form.find("refresh_token");
      auto gt = form.find("grant_type");
      if (gt == form.end() || gt->second != "refresh_token" || rt == form.end() ||
          rt->second != "refresh-bob")
        return TestHttpServer::Respond(fd, 401, {}, R"({"error":"invalid_grant"})");
      user = "bob";
    } else if (!r.Header("authorization").empty()) {
      if (r.Header("authorization") != "Basic " + Base64Encode("bob:pw"))
        return TestHttpServer::Respond(fd, 401, {}, R"({"details":"incorrect password"})");
      user = "bob";
    }
    std::string access = "[";
    for (auto [it, end] = form.equal_range("scope"); it != end; ++it) {
      {
        std::lock_guard l(mu_);
        scopes_.push_back(it->second);
      }
      // repository:<name>:<actions>; anonymous users get nothing.
      auto parts = StrSplit(it->second, ':');
      if (parts.size() != 3 || user.empty()) continue;
      std::string acts;
      for (const auto& a : StrSplit(parts[2], ','))
        acts += (acts.empty() ? "\"" : ",\"") + a + "\"";
      if (access.size() > 1) access += ",";
      access +=
          R"({"type":")" + parts[0] + R"(","name":")" + parts[1] + R"(","actions":[)" + acts + "]}";
    }
    access += "]";
    long now = static_cast<long>(time(nullptr));
    std::string header = R"({"typ":"JWT","alg":"RS256","x5c":[")" + x5c_ + R"("]})";
    std::string claims = StrFormat(
        R"({"iss":"moat-test-issuer","sub":"%s","aud":"moat-registry","exp":%ld,"nbf":%ld,)"
        R"("iat":%ld,"jti":"j%d","access":%s})",
        user.c_str(), now + 300, now - 10, now - 10, requests_.load(), access.c_str());
    std::string signing_input = B64Url(header) + "." + B64Url(claims);
    std::string jwt = signing_input + "." + B64Url(Sign(signing_input));
    std::string body = R"({"token":")" + jwt + R"(","expires_in":300)";
    if (!user.empty() && form.count("offline_token")) body += R"(,"refresh_token":"refresh-bob")";
    TestHttpServer::Respond(fd, 200, {{"Content-Type", "application/json"}}, body + "}");
  }

  EVP_PKEY* key_ = nullptr;
  std::string x5c_;
  std::mutex mu_;
  std::vector<std::string> scopes_;
  std::atomic<int> requests_{0};
  registry::testing::TestHttpServer http_;  // last: stopped first
};

TEST_F(RegistryIntegrationTest, BearerTokenFlowAgainstTokenAuthRegistry) {
  TempDir t;
  int st = -1;
  std::string out = RunShell("cd " + t.path() +
                                 " && openssl req -x509 -newkey rsa:2048 -nodes -days 2 "
                                 "-subj /CN=moat-token -keyout token.key -out token.crt",
                             &st);
  ASSERT_EQ(st, 0) << out;
  std::string der =
      RunShell("openssl x509 -in " + t.path() + "/token.crt -outform DER | base64 -w0", &st);
  ASSERT_EQ(st, 0) << der;
  TokenServer tokens(t.path() + "/token.key", std::string(TrimWhitespace(der)));
  ASSERT_TRUE(tokens.ok());
  Registry reg(t.path() + "/reg", nullptr,
               "auth:\n  token:\n    realm: " + tokens.realm() +
                   "\n    service: moat-registry\n    issuer: moat-test-issuer\n"
                   "    rootcertbundle: " +
                   t.path() + "/token.crt\n");
  ASSERT_TRUE(reg.ready());
  auto a = OpenStore(t.path() + "/a");
  std::string id = LoadBusybox(a.get());
  RegistryAuth bob;
  bob.username = "bob";
  bob.password = "pw";
  bob.server_address = reg.host();
  // Login: the identity token comes back; a wrong password is refused.
  auto ident = a->CheckAuth(bob);
  ASSERT_TRUE(ident) << ident.error().message;
  EXPECT_EQ(*ident, "refresh-bob");
  RegistryAuth wrong = bob;
  wrong.password = "x";
  auto denied = a->CheckAuth(wrong);
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().kind, ErrorKind::kPermissionDenied) << denied.error().message;

  std::string name = reg.host() + "/tok/busybox:v1";
  ASSERT_TRUE(a->Tag("busybox:latest", Ref(name)));
  auto anon_push = a->Push(Ref(name), {}, nullptr);
  ASSERT_FALSE(anon_push);
  EXPECT_EQ(anon_push.error().kind, ErrorKind::kPermissionDenied) << anon_push.error().message;
  int before = tokens.requests();
  auto digest = a->Push(Ref(name), bob, nullptr);
  ASSERT_TRUE(digest) << digest.error().message;
  // One token for the push scope serves every request of the push (cached).
  EXPECT_LE(tokens.requests() - before, 2);

  // Pull with the identity token only (the refresh-token grant).
  auto b = OpenStore(t.path() + "/b");
  PullOptions po;
  po.auth.identity_token = "refresh-bob";
  auto img = b->Pull(Ref(name), po, nullptr);
  ASSERT_TRUE(img) << img.error().message;
  EXPECT_EQ(img->id, id);
  // Anonymous: Docker's "pull access denied".
  auto c = OpenStore(t.path() + "/c");
  auto anon = c->Pull(Ref(name), {}, nullptr);
  ASSERT_FALSE(anon);
  EXPECT_EQ(anon.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(anon.error().message.find("pull access denied"), std::string::npos);
  // A cross-repository mount asks for pull on the source repository too.
  std::string other = reg.host() + "/tok/other:v1";
  ASSERT_TRUE(b->Tag(name, Ref(other)));
  Events ev;
  auto d2 = b->Push(Ref(other), bob, ev.Fn());
  ASSERT_TRUE(d2) << d2.error().message;
  EXPECT_TRUE(ev.Has("Mounted from tok/busybox"));
  auto scopes = tokens.scopes_seen();
  EXPECT_NE(std::find(scopes.begin(), scopes.end(), "repository:tok/busybox:pull"), scopes.end());
  EXPECT_NE(std::find(scopes.begin(), scopes.end(), "repository:tok/other:pull,push"),
            scopes.end());
}

}  // namespace
}  // namespace moat::image
