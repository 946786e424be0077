// The store's registry-manifest parsing (records.h): media types, validation, platform choice.
#include <gtest/gtest.h>

#include "image/records.h"

namespace moat::image {
namespace {

const std::string kD1 = "sha256:" + std::string(64, '1');
const std::string kD2 = "sha256:" + std::string(64, '2');
const std::string kD3 = "sha256:" + std::string(64, '3');

std::string Manifest(const std::string& mt, const std::string& config_mt,
                     const std::string& layer_mt, const std::string& layer_digest = kD2) {
  std::string s = R"({"schemaVersion":2,)";
  if (!mt.empty()) s += R"("mediaType":")" + mt + R"(",)";
  s += R"("config":{"mediaType":")" + config_mt + R"(","digest":")" + kD1 + R"(","size":10},)";
  s += R"("layers":[{"mediaType":")" + layer_mt + R"(","digest":")" + layer_digest +
       R"(","size":20}]})";
  return s;
}

constexpr char kDockerM[] = "application/vnd.docker.distribution.manifest.v2+json";
constexpr char kOciM[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kDockerCfg[] = "application/vnd.docker.container.image.v1+json";
constexpr char kOciCfg[] = "application/vnd.oci.image.config.v1+json";
constexpr char kDockerGz[] = "application/vnd.docker.image.rootfs.diff.tar.gzip";
constexpr char kOciZstd[] = "application/vnd.oci.image.layer.v1.tar+zstd";

TEST(ManifestTest, DockerAndOciManifests) {
  auto d = ParseImageManifest(Manifest(kDockerM, kDockerCfg, kDockerGz), kDockerM);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->media_type, kDockerM);
  EXPECT_EQ(d->config.digest, kD1);
  EXPECT_EQ(d->config.size, 10);
  ASSERT_EQ(d->layers.size(), 1u);
  EXPECT_EQ(d->layers[0].digest, kD2);
  EXPECT_EQ(d->layers[0].size, 20);
  // OCI without mediaType in the body: the Content-Type says it.
  auto o = ParseImageManifest(Manifest("", kOciCfg, kOciZstd), kOciM);
  ASSERT_TRUE(o) << o.error().message;
  EXPECT_EQ(o->media_type, kOciM);
  EXPECT_EQ(*ClassifyManifest(Manifest("", kOciCfg, kOciZstd), ""), ManifestKind::kImage);
}

TEST(ManifestTest, MediaTypesValidated) {
  // Body and Content-Type disagree.
  auto a = ParseImageManifest(Manifest(kDockerM, kDockerCfg, kDockerGz), kOciM);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().kind, ErrorKind::kInvalidArgument);
  // Not an image config (an OCI artifact).
  auto b = ParseImageManifest(Manifest(kOciM, "application/vnd.example.sbom+json", kOciZstd), "");
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("not an image config"), std::string::npos);
  // A layer that is not a tar names the layer.
  auto c = ParseImageManifest(Manifest(kOciM, kOciCfg, "text/plain"), "");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find(kD2), std::string::npos) << c.error().message;
  // Foreign layers are refused.
  auto f = ParseImageManifest(
      Manifest(kDockerM, kDockerCfg, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"),
      "");
  ASSERT_FALSE(f);
  EXPECT_EQ(f.error().kind, ErrorKind::kUnsupported);
  // Bad digests and sizes.
  auto g = ParseImageManifest(Manifest(kOciM, kOciCfg, kOciZstd, "sha256:abc"), "");
  ASSERT_FALSE(g);
  EXPECT_NE(g.error().message.find("invalid digest"), std::string::npos);
  auto h =
      ParseImageManifest(Manifest(kOciM, kOciCfg, kOciZstd, "md5:" + std::string(32, 'a')), "");
  ASSERT_FALSE(h);
  std::string neg =
      R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
      kD1 + R"(","size":-1},"layers":[]})";
  EXPECT_FALSE(ParseImageManifest(neg, kOciM));
  // Unknown manifest types and schema 1.
  auto u = ClassifyManifest(R"({"schemaVersion":2,"mediaType":"text/html"})", "");
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().kind, ErrorKind::kInvalidArgument);
  auto s1 = ClassifyManifest(R"({"schemaVersion":1})",
                             "application/vnd.docker.distribution.manifest.v1+prettyjws");
  ASSERT_FALSE(s1);
  EXPECT_EQ(s1.error().kind, ErrorKind::kUnsupported);
  // schemaVersion must be 2.
  std::string v1 = Manifest(kOciM, kOciCfg, kOciZstd);
  v1.replace(v1.find("2"), 1, "1");
  EXPECT_FALSE(ParseImageManifest(v1, ""));
  // Not JSON, not an object, wrong types.
  EXPECT_FALSE(ClassifyManifest("<html>", kOciM));
  EXPECT_FALSE(ClassifyManifest("[]", kOciM));
  EXPECT_FALSE(ParseImageManifest(R"({"schemaVersion":2,"config":1,"layers":[]})", kOciM));
  EXPECT_FALSE(ParseImageManifest(R"({"schemaVersion":2,"config":{},"layers":{}})", kOciM));
  // An index is not an image manifest.
  EXPECT_FALSE(ParseImageManifest(R"({"schemaVersion":2,"manifests":[]})", ""));
}

std::string Index() {
  auto entry = [](const std::string& d, const std::string& os, const std::string& arch,
                  const std::string& variant, const std::string& mt) {
    std::string s = R"({"mediaType":")" + mt + R"(","digest":")" + d +
                    R"(","size":100,"platform":{"os":")" + os + R"(","architecture":")" + arch +
                    R"(")";
    if (!variant.empty()) s += R"(,"variant":")" + variant + R"(")";
    return s + "}}";
  };
  return R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)" +
         entry(kD1, "linux", "arm", "v7", kOciM) + "," + entry(kD2, "linux", "arm64", "v8", kOciM) +
         "," + entry(kD3, "linux", "amd64", "", kOciM) + "," +
         entry("sha256:" + std::string(64, '4'), "unknown", "unknown", "", kOciM) + "]}";
}

TEST(ManifestTest, IndexAndPlatformChoice) {
  std::string idx = Index();
  EXPECT_EQ(*ClassifyManifest(idx, "application/vnd.oci.image.index.v1+json"),
            ManifestKind::kIndex);
  EXPECT_EQ(*ClassifyManifest(R"({"schemaVersion":2,"manifests":[]})", ""), ManifestKind::kIndex);
  EXPECT_EQ(*ClassifyManifest(R"({"schemaVersion":2,"manifests":[]})",
                              "application/vnd.docker.distribution.manifest.list.v2+json"),
            ManifestKind::kIndex);
  auto entries = ParseManifestIndex(idx);
  ASSERT_TRUE(entries) << entries.error().message;
  ASSERT_EQ(entries->size(), 4u);
  EXPECT_EQ(ChoosePlatform(*entries, "linux", "amd64", "")->digest, kD3);
  EXPECT_EQ(ChoosePlatform(*entries, "linux", "arm64", "")->digest, kD2);
  EXPECT_EQ(ChoosePlatform(*entries, "linux", "arm", "v7")->digest, kD1);
  auto none = ChoosePlatform(*entries, "linux", "arm", "v6");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().kind, ErrorKind::kNotFound);
  EXPECT_NE(none.error().message.find("linux/arm/v6"), std::string::npos);
  EXPECT_FALSE(ChoosePlatform(*entries, "windows", "amd64", ""));
  EXPECT_FALSE(ParseManifestIndex(R"({"schemaVersion":2,"manifests":[{"digest":"x","size":1}]})"));
  EXPECT_FALSE(ParseManifestIndex(R"({"schemaVersion":2})"));
}

}  // namespace
}  // namespace moat::image
