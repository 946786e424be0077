#include "daemon/privsep/commands.h"

#include <gtest/gtest.h>

#include "base/base64.h"

namespace moat::daemon::privsep {
namespace {

Json Body(const char* text) { return ParseJson(text).value(); }

TEST(ContainerSpecTest, DecodesWhatTheDockerCliSends) {
  auto s = DecodeContainerSpec(Body(R"({"Tty":true,"OpenStdin":true,"Cmd":["sh","-c","echo hi"],
      "Image":"busybox","Env":null,"Labels":{},"Entrypoint":null,
      "HostConfig":{"AutoRemove":true,"NetworkMode":"default","ConsoleSize":[40,120],
      "RestartPolicy":{"Name":"no"},"MemorySwappiness":-1,"Memory":67108864,"NanoCpus":1500000000,
      "Binds":["/tmp:/data:ro"],"Ulimits":[{"Name":"nofile","Soft":10,"Hard":20}],
      "CapAdd":["NET_ADMIN"],"PidsLimit":50}})"), "web");
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->name, "web");
  EXPECT_TRUE(s->tty);
  EXPECT_EQ(s->cmd, (std::vector<std::string>{"sh", "-c", "echo hi"}));
  EXPECT_FALSE(s->entrypoint.has_value());
  EXPECT_TRUE(s->auto_remove);
  EXPECT_EQ(s->memory, 67108864);
  EXPECT_EQ(s->nano_cpus, 1500000000);
  ASSERT_EQ(s->mounts.size(), 1u);
  EXPECT_EQ(s->mounts[0].source, "/tmp");
  EXPECT_EQ(s->mounts[0].target, "/data");
  EXPECT_TRUE(s->mounts[0].read_only);
  EXPECT_EQ(s->pids_limit, 50);
  ASSERT_EQ(s->ulimits.size(), 1u);
  EXPECT_EQ(s->ulimits[0].hard, 20);
}

TEST(ContainerSpecTest, EncodeDecodeRoundTrip) {
  auto s = DecodeContainerSpec(Body(R"({"Image":"busybox","Cmd":"true","User":"1000:1000",
      "WorkingDir":"/w","StopSignal":"SIGINT","HostConfig":{"Mounts":[{"Type":"tmpfs","Target":"/t",
      "TmpfsOptions":{"SizeBytes":1048576}}],"SecurityOpt":["seccomp=unconfined"],
      "RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},"Sysctls":{"net.ipv4.ip_forward":"1"}}})"), "");
  ASSERT_TRUE(s) << s.error().message;
  auto again = DecodeContainerSpec(EncodeContainerSpec(*s), "");
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(Dump(EncodeContainerSpec(*again)), Dump(EncodeContainerSpec(*s)));
  EXPECT_EQ(again->seccomp_profile, "unconfined");
  EXPECT_EQ(again->restart_max_retries, 3);
  EXPECT_EQ(again->mounts.at(0).tmpfs_size, 1048576);
}

struct BadCase {
  const char* body;
  const char* message_part;
};

class BadSpecTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadSpecTest, RejectedNamingTheProblem) {
  auto s = DecodeContainerSpec(Body(GetParam().body), "");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find(GetParam().message_part), std::string::npos) << s.error().message;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadSpecTest,
    ::testing::Values(BadCase{R"({"Cmd":["true"]})", "an image is required"},
                      BadCase{R"({"Image":"b","Tty":"yes"})", "Tty: expected boolean"},
                      BadCase{R"({"Image":"b","HostConfig":{"Memory":"1g"}})", "HostConfig.Memory: expected integer"},
                      BadCase{R"({"Image":"b","HostConfig":{"Memory":1000}})", "Minimum memory limit"},
                      BadCase{R"({"Image":"b","HostConfig":{"Binds":["./rel:/x"]}})", "invalid volume name"},
                      BadCase{R"({"Image":"b","HostConfig":{"Binds":["/a:relative"]}})", "mount path must be absolute"},
                      BadCase{R"({"Image":"b","HostConfig":{"Binds":["/a:/b:bogus"]}})", "invalid mode"},
                      BadCase{R"({"Image":"b","HostConfig":{"CapAdd":["CAP_NOPE"]}})", "unknown capability"},
                      BadCase{R"({"Image":"b","HostConfig":{"Sysctls":{"kernel.panic":"1"}}})", "not namespaced"},
                      BadCase{R"({"Image":"b","HostConfig":{"RestartPolicy":{"Name":"sometimes"}}})", "unknown policy"},
                      // A number past int64 as a double: was an undefined cast (fuzz/container_spec).
                      BadCase{R"({"Image":"b","HostConfig":{"RestartPolicy":{"Name":"no","MaximumRetryCount":1e70}}})",
                              "MaximumRetryCount: value out of range"},
                      BadCase{R"({"Image":"b","HostConfig":{"Memory":-1e19}})", "HostConfig.Memory: value out of range"},
                      BadCase{R"({"Image":"b","HostConfig":{"Memory":1.5}})", "HostConfig.Memory: expected an integer"},
                      BadCase{R"({"Image":"b","HostConfig":{"NetworkMode":"container:"}})", "HostConfig.NetworkMode: container"},
                      BadCase{R"({"Image":"b","HostConfig":{"NetworkMode":"a b"}})", "invalid network name"},
                      BadCase{R"({"Image":"b","HostConfig":{"NetworkMode":"host","PortBindings":{"80/tcp":[{"HostPort":"8080"}]}}})",
                              "conflicting options: port publishing"},
                      BadCase{R"({"Image":"b","HostConfig":{"PortBindings":{"80/xyz":[{"HostPort":"8080"}]}}})",
                              "invalid protocol"},
                      BadCase{R"({"Image":"b","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"70000"}]}}})",
                              "out of range"},
                      BadCase{R"({"Image":"b","HostConfig":{"PortBindings":{"80/tcp":[{"HostIp":"1.2.3","HostPort":"80"}]}}})",
                              "invalid IP address"},
                      BadCase{R"({"Image":"b","HostConfig":{"ExtraHosts":["nohost"]}})", "add-host"},
                      BadCase{R"({"Image":"b","HostConfig":{"Dns":["x.y"]}})", "is not an ip address"},
                      BadCase{R"({"Image":"b","HostConfig":{"Ulimits":[{"Name":"nofile","Soft":5,"Hard":1}]}})", "soft limit"},
                      BadCase{R"({"Image":"b","HostConfig":{"SecurityOpt":["bogus"]}})", "invalid --security-opt"},
                      BadCase{R"({"Image":"b","WorkingDir":"rel"})", "absolute path"}));

TEST(ContainerNameTest, DockerRules) {
  EXPECT_EQ(NormaliseContainerName("/web").value(), "web");
  EXPECT_TRUE(NormaliseContainerName("a_b.c-d"));
  EXPECT_FALSE(NormaliseContainerName("-x"));
  EXPECT_FALSE(NormaliseContainerName("a/b"));
  EXPECT_FALSE(NormaliseContainerName("x"));
}

TEST(ExecSpecTest, NeedsACommand) {
  EXPECT_FALSE(DecodeExecSpec(Body(R"({"Cmd":[]})")));
  auto e = DecodeExecSpec(Body(R"({"Cmd":["ls"],"Tty":true,"AttachStdin":true,"User":"1"})"));
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->tty);
}


TEST(ContainerSpecTest, NetworkFieldsRoundTrip) {
  auto body = ParseJson(R"({"Image":"busybox","MacAddress":"02:42:ac:11:00:09",
      "HostConfig":{"NetworkMode":"web_net","PublishAllPorts":true,
        "PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"},{"HostIp":"","HostPort":""}],
                        "53/udp":[{"HostPort":"5300-5310"}]},
        "Dns":["10.0.0.2"],"DnsSearch":["example.test"],"DnsOptions":["ndots:2"],
        "ExtraHosts":["db:10.1.2.3","gw:host-gateway"],"Links":["/a:/me/b"]},
      "NetworkingConfig":{"EndpointsConfig":{"web_net":{"Aliases":["api"],
        "IPAMConfig":{"IPv4Address":"172.30.0.9"}}}}})");
  ASSERT_TRUE(body.has_value());
  auto s = DecodeContainerSpec(*body, "c1");
  ASSERT_TRUE(s.has_value()) << s.error().message;
  EXPECT_EQ(s->network_mode, "web_net");
  EXPECT_EQ(PrimaryNetwork(*s), "web_net");
  ASSERT_EQ(s->ports.size(), 3u);
  EXPECT_TRUE(s->publish_all);
  EXPECT_EQ(s->dns, std::vector<std::string>{"10.0.0.2"});
  EXPECT_EQ(s->extra_hosts.size(), 2u);
  ASSERT_EQ(s->endpoints.count("web_net"), 1u);
  EXPECT_EQ(s->endpoints["web_net"].aliases, std::vector<std::string>{"api"});
  EXPECT_EQ(s->endpoints["web_net"].ipv4, "172.30.0.9");
  bool range = false;
  for (const auto& p : s->ports) {
    if (p.proto == "udp") {
      range = true;
      EXPECT_EQ(p.host_port, 5300);
      EXPECT_EQ(p.host_port_end, 5310);
    }
  }
  EXPECT_TRUE(range);
  auto again = DecodeContainerSpec(EncodeContainerSpec(*s), "c1");
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(again->ports, s->ports);
  EXPECT_EQ(again->endpoints, s->endpoints);
  EXPECT_EQ(Dump(EncodeContainerSpec(*again)), Dump(EncodeContainerSpec(*s)));
}

}  // namespace
}  // namespace moat::daemon::privsep

namespace moat::daemon::privsep {
namespace {

TEST(RegistryAuthTest, HeaderForms) {
  // What the docker CLI sends without credentials.
  auto anon = DecodeRegistryAuthHeader("e30=");
  ASSERT_TRUE(anon) << anon.error().message;
  EXPECT_EQ(*anon, RegistryAuthSpec{});
  EXPECT_EQ(*DecodeRegistryAuthHeader(""), RegistryAuthSpec{});
  // {"username":"u","password":"p?>","serveraddress":"localhost:5000"} in the URL alphabet.
  std::string json = R"({"username":"u","password":"p?>","serveraddress":"localhost:5000"})";
  auto a = DecodeRegistryAuthHeader(Base64Encode(json, Base64Alphabet::kUrl));
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->username, "u");
  EXPECT_EQ(a->password, "p?>");
  EXPECT_EQ(a->server_address, "localhost:5000");
  // "auth": base64("user:pa:ss") splits at the first colon.
  auto b = DecodeRegistryAuth(Json{{"auth", Base64Encode("user:pa:ss")}});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->username, "user");
  EXPECT_EQ(b->password, "pa:ss");
  EXPECT_EQ(*DecodeRegistryAuth(EncodeRegistryAuth(*a)), *a);
}

TEST(RegistryAuthTest, BadInputNamesTheProblem) {
  auto e1 = DecodeRegistryAuthHeader("not base64!");
  ASSERT_FALSE(e1);
  EXPECT_NE(e1.error().message.find("not base64"), std::string::npos);
  auto e2 = DecodeRegistryAuthHeader(Base64Encode("[1,2]"));
  ASSERT_FALSE(e2);
  EXPECT_NE(e2.error().message.find("not a JSON object"), std::string::npos);
  auto e3 = DecodeRegistryAuth(Json{{"username", 5}});
  ASSERT_FALSE(e3);
  EXPECT_NE(e3.error().message.find("username"), std::string::npos);
  auto e4 = DecodeRegistryAuth(Json{{"password", "a\nb"}});
  ASSERT_FALSE(e4);
  EXPECT_NE(e4.error().message.find("control character"), std::string::npos);
  EXPECT_FALSE(DecodeRegistryAuth(Json{{"auth", Base64Encode("nocolon")}}));
  auto e5 = DecodeRegistryAuth(Json{{"auth", "bW9hdDpz/i2/"}});  // "moat:s\xfe-\xbf"
  ASSERT_FALSE(e5);
  EXPECT_NE(e5.error().message.find("UTF-8"), std::string::npos);
}

TEST(PullReferenceTest, QueryForms) {
  EXPECT_EQ(*PullReference("busybox", "latest"), "busybox:latest");
  EXPECT_EQ(*PullReference("busybox:1.36", ""), "busybox:1.36");
  EXPECT_EQ(*PullReference("localhost:5000/x", "v1"), "localhost:5000/x:v1");
  EXPECT_EQ(*PullReference("localhost:5000/x:old", "v1"), "localhost:5000/x:v1");
  std::string dg = "sha256:" + std::string(64, 'a');
  EXPECT_EQ(*PullReference("x", dg), "x@" + dg);
  EXPECT_FALSE(PullReference("", "latest"));
  EXPECT_FALSE(PullReference("x@" + dg, "latest"));
  EXPECT_FALSE(PullReference("bad name", ""));
}

TEST(PlatformTest, Parse) {
  auto p = ParsePlatform("linux/arm64/v8");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->architecture, "arm64");
  EXPECT_EQ(p->variant, "v8");
  EXPECT_EQ(ParsePlatform("Linux/AMD64")->architecture, "amd64");
  EXPECT_TRUE(ParsePlatform("")->os.empty());
  EXPECT_FALSE(ParsePlatform("windows/amd64"));
  EXPECT_FALSE(ParsePlatform("linux//x"));
  EXPECT_FALSE(ParsePlatform("linux/amd64/v1/x"));
  EXPECT_FALSE(ParsePlatform("linux/a;b"));
}

}  // namespace
}  // namespace moat::daemon::privsep
