#include "daemon/core/oci_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace moat::daemon::core {
namespace {

Json DefaultSpec() {
  std::ifstream f(MOAT_SOURCE_DIR "/profiles/default-spec.json");
  std::stringstream ss;
  ss << f.rdbuf();
  return ParseJson(ss.str()).value();
}

privsep::ContainerSpec Spec(const char* body) {
  return privsep::DecodeContainerSpec(ParseJson(body).value(), "").value();
}

Json Build(const privsep::ContainerSpec& s, const image::ImageConfigView& img) {
  ConfigInputs in;
  in.spec = &s;
  in.image = &img;
  in.id = "abc";
  in.hostname = "abc";
  in.cgroups_path = "moat/abc";
  in.seccomp_json = R"({"defaultAction":"SCMP_ACT_ERRNO","syscalls":[]})";
  return BuildOciConfig(DefaultSpec(), in).value();
}

TEST(OciConfigTest, ImageEntrypointAndCmd) {
  image::ImageConfigView img;
  img.entrypoint = {"/entry"};
  img.cmd = {"default"};
  img.env = {"A=1", "PATH=/bin"};
  auto c = Build(Spec(R"({"Image":"x","Env":["A=2"]})"), img);
  EXPECT_EQ(c["process"]["args"], Json({"/entry", "default"}));
  auto c2 = Build(Spec(R"({"Image":"x","Cmd":["mine"]})"), img);
  EXPECT_EQ(c2["process"]["args"], Json({"/entry", "mine"}));
  auto c3 = Build(Spec(R"({"Image":"x","Entrypoint":["/e2"],"Cmd":["a"]})"), img);
  EXPECT_EQ(c3["process"]["args"], Json({"/e2", "a"}));
  bool saw = false;
  for (const auto& e : c["process"]["env"]) {
    if (e == "A=2") saw = true;
    EXPECT_NE(e, "A=1");
  }
  EXPECT_TRUE(saw);
}

TEST(OciConfigTest, NoCommandIsAnError) {
  image::ImageConfigView img;
  auto s = Spec(R"({"Image":"x"})");
  EXPECT_FALSE(ProcessArgs(s, img));
}

TEST(OciConfigTest, SecureDefaultsAndExplicitLoosening) {
  image::ImageConfigView img;
  img.cmd = {"sh"};
  auto c = Build(Spec(R"({"Image":"x"})"), img);
  EXPECT_EQ(c["process"]["capabilities"]["bounding"].size(), 11u);
  EXPECT_TRUE(c["process"]["noNewPrivileges"].get<bool>());
  EXPECT_TRUE(c["linux"].contains("seccomp"));
  EXPECT_TRUE(c["linux"].contains("maskedPaths"));
  auto add = Build(Spec(R"({"Image":"x","HostConfig":{"CapAdd":["NET_RAW"],"CapDrop":["CHOWN"]}})"), img);
  auto caps = add["process"]["capabilities"]["bounding"];
  EXPECT_NE(std::find(caps.begin(), caps.end(), "CAP_NET_RAW"), caps.end());
  EXPECT_EQ(std::find(caps.begin(), caps.end(), "CAP_CHOWN"), caps.end());
  auto priv = Build(Spec(R"({"Image":"x","HostConfig":{"Privileged":true}})"), img);
  EXPECT_GT(priv["process"]["capabilities"]["bounding"].size(), 30u);
  EXPECT_FALSE(priv["linux"].contains("seccomp"));
  EXPECT_FALSE(priv["linux"].contains("maskedPaths"));
  auto unconf = Build(Spec(R"({"Image":"x","HostConfig":{"SecurityOpt":["seccomp=unconfined"]}})"), img);
  EXPECT_FALSE(unconf["linux"].contains("seccomp"));
}

TEST(OciConfigTest, Resources) {
  image::ImageConfigView img;
  img.cmd = {"sh"};
  auto c = Build(Spec(R"({"Image":"x","HostConfig":{"Memory":67108864,"NanoCpus":500000000,
      "PidsLimit":20,"CpuShares":512,"ReadonlyRootfs":true,"NetworkMode":"host"}})"), img);
  EXPECT_EQ(c["linux"]["resources"]["memory"]["limit"], 67108864);
  EXPECT_EQ(c["linux"]["resources"]["cpu"]["quota"], 50000);
  EXPECT_EQ(c["linux"]["resources"]["cpu"]["period"], 100000);
  EXPECT_EQ(c["linux"]["resources"]["pids"]["limit"], 20);
  EXPECT_TRUE(c["root"]["readonly"].get<bool>());
  for (const auto& ns : c["linux"]["namespaces"]) EXPECT_NE(ns["type"], "network");
}

}  // namespace
}  // namespace moat::daemon::core
