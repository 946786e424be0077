#include "daemon/privsep/commands.h"

#include <gtest/gtest.h>

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
                      BadCase{R"({"Image":"b","HostConfig":{"NetworkMode":"container:x"}})", "not supported"},
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

}  // namespace
}  // namespace moat::daemon::privsep
