#include "cli/run_opts.h"

#include <gtest/gtest.h>

namespace moat::cli {
namespace {

Json Body(const RunFlags& f, std::vector<std::string> args = {}) {
  auto b = BuildCreateBody(f, "busybox", args, std::nullopt);
  EXPECT_TRUE(b.has_value()) << (b.has_value() ? "" : b.error().message);
  return b.has_value() ? *b : Json();
}

TEST(RunOptsTest, MemoryUnits) {
  EXPECT_EQ(*ParseMemoryBytes("64m"), 67108864);
  EXPECT_EQ(*ParseMemoryBytes("64M"), 67108864);
  EXPECT_EQ(*ParseMemoryBytes("64mb"), 67108864);
  EXPECT_EQ(*ParseMemoryBytes("1.5g"), 1610612736);
  EXPECT_EQ(*ParseMemoryBytes("512"), 512);
  EXPECT_EQ(*ParseMemoryBytes("4k"), 4096);
  EXPECT_FALSE(ParseMemoryBytes("64x").has_value());
  EXPECT_FALSE(ParseMemoryBytes("-1").has_value());
  EXPECT_FALSE(ParseMemoryBytes("m").has_value());
}

TEST(RunOptsTest, NanoCpus) {
  EXPECT_EQ(*ParseNanoCpus("1.5"), 1500000000);
  EXPECT_EQ(*ParseNanoCpus("2"), 2000000000);
  EXPECT_EQ(*ParseNanoCpus("0.001"), 1000000);
  EXPECT_FALSE(ParseNanoCpus("abc").has_value());
  EXPECT_FALSE(ParseNanoCpus("1.5.2").has_value());
  EXPECT_FALSE(ParseNanoCpus("-1").has_value());
}

TEST(RunOptsTest, Ulimit) {
  auto u = ParseUlimit("nofile=10:20");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(Dump(*u), R"({"Name":"nofile","Hard":20,"Soft":10})");
  EXPECT_EQ(Dump(*ParseUlimit("nproc=5")), R"({"Name":"nproc","Hard":5,"Soft":5})");
  EXPECT_FALSE(ParseUlimit("nofile=20:10").has_value());
  EXPECT_FALSE(ParseUlimit("nofile").has_value());
  EXPECT_FALSE(ParseUlimit("nofile=a:b").has_value());
}

TEST(RunOptsTest, RestartPolicy) {
  EXPECT_EQ(Dump(*ParseRestartPolicy("on-failure:3")),
            R"({"Name":"on-failure","MaximumRetryCount":3})");
  EXPECT_EQ(Dump(*ParseRestartPolicy("always")), R"({"Name":"always"})");
  EXPECT_EQ(Dump(*ParseRestartPolicy("")), R"({"Name":"no"})");
  EXPECT_FALSE(ParseRestartPolicy("always:3").has_value());
  EXPECT_FALSE(ParseRestartPolicy("sometimes").has_value());
}

TEST(RunOptsTest, Mounts) {
  auto t = ParseMount("type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770");
  ASSERT_TRUE(t.has_value()) << t.error().message;
  EXPECT_EQ(Dump(*t),
            R"({"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":67108864,"Mode":1016}})");
  auto b = ParseMount("type=bind,src=/a,dst=/b,readonly,bind-propagation=rslave");
  ASSERT_TRUE(b.has_value()) << b.error().message;
  EXPECT_EQ(Dump(*b),
            R"({"Type":"bind","Source":"/a","Target":"/b","ReadOnly":true,"BindOptions":{"Propagation":"rslave"}})");
  auto v = ParseMount("source=data,target=/data,volume-nocopy");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(Dump(*v), R"({"Type":"volume","Source":"data","Target":"/data","VolumeOptions":{"NoCopy":true}})");
  EXPECT_FALSE(ParseMount("type=bind,target=/b").has_value());
  EXPECT_FALSE(ParseMount("type=tmpfs,source=/x,target=/b").has_value());
  EXPECT_FALSE(ParseMount("type=nfs,target=/b").has_value());
  EXPECT_FALSE(ParseMount("type=volume,target=/b,tmpfs-size=1m").has_value());
  EXPECT_FALSE(ParseMount("type=bind,source=/a").has_value());
  EXPECT_FALSE(ParseMount("type=bind,source=/a,target=/b,bogus=1").has_value());
}

TEST(RunOptsTest, Devices) {
  EXPECT_EQ(Dump(*ParseDevice("/dev/fuse")),
            R"({"PathOnHost":"/dev/fuse","PathInContainer":"/dev/fuse","CgroupPermissions":"rwm"})");
  EXPECT_EQ(Dump(*ParseDevice("/dev/a:/dev/b:r")),
            R"({"PathOnHost":"/dev/a","PathInContainer":"/dev/b","CgroupPermissions":"r"})");
  EXPECT_EQ(Dump(*ParseDevice("/dev/a:rw")),
            R"({"PathOnHost":"/dev/a","PathInContainer":"/dev/a","CgroupPermissions":"rw"})");
  EXPECT_FALSE(ParseDevice("/dev/a:b:c:d").has_value());
}

TEST(RunOptsTest, Publish) {
  Json exposed, bindings;
  ASSERT_TRUE(ParsePublish("127.0.0.1:8080:80", &exposed, &bindings).has_value());
  ASSERT_TRUE(ParsePublish("53/udp", &exposed, &bindings).has_value());
  ASSERT_TRUE(ParsePublish("9000-9001:90-91", &exposed, &bindings).has_value());
  EXPECT_EQ(Dump(exposed), R"({"80/tcp":{},"53/udp":{},"90/tcp":{},"91/tcp":{}})");
  EXPECT_EQ(Dump(bindings["80/tcp"]), R"([{"HostIp":"127.0.0.1","HostPort":"8080"}])");
  EXPECT_EQ(Dump(bindings["53/udp"]), R"([{"HostIp":"","HostPort":""}])");
  EXPECT_EQ(Dump(bindings["91/tcp"]), R"([{"HostIp":"","HostPort":"9001"}])");
  EXPECT_FALSE(ParsePublish("1:2:3:4", &exposed, &bindings).has_value());
  EXPECT_FALSE(ParsePublish("80/bogus", &exposed, &bindings).has_value());
  EXPECT_FALSE(ParsePublish("99999", &exposed, &bindings).has_value());
}

TEST(RunOptsTest, CreateBodyResourcesAndSecurity) {
  RunFlags f;
  f.memory = "64m";
  f.memory_swap = "128m";
  f.cpus = "1.5";
  f.cpu_shares = 512;
  f.cpuset_cpus = "0-1";
  f.pids_limit = 50;
  f.ulimits = {"nofile=10:20"};
  f.sysctls = {"net.ipv4.ip_forward=1"};
  f.cap_add = {"NET_ADMIN"};
  f.cap_drop = {"ALL"};
  f.security_opt = {"no-new-privileges"};
  f.privileged = false;
  f.read_only = true;
  f.init = true;
  f.restart = "on-failure:3";
  f.devices = {"/dev/fuse"};
  Json b = Body(f, {"sh", "-c", "echo hi"});
  const Json& h = b["HostConfig"];
  EXPECT_EQ(h["Memory"], 67108864);
  EXPECT_EQ(h["MemorySwap"], 134217728);
  EXPECT_EQ(h["NanoCpus"], 1500000000);
  EXPECT_EQ(h["CpuShares"], 512);
  EXPECT_EQ(h["CpusetCpus"], "0-1");
  EXPECT_EQ(h["PidsLimit"], 50);
  EXPECT_EQ(Dump(h["Ulimits"]), R"([{"Name":"nofile","Hard":20,"Soft":10}])");
  EXPECT_EQ(Dump(h["Sysctls"]), R"({"net.ipv4.ip_forward":"1"})");
  EXPECT_EQ(Dump(h["CapAdd"]), R"(["NET_ADMIN"])");
  EXPECT_EQ(Dump(h["CapDrop"]), R"(["ALL"])");
  EXPECT_EQ(Dump(h["SecurityOpt"]), R"(["no-new-privileges"])");
  EXPECT_EQ(h["ReadonlyRootfs"], true);
  EXPECT_EQ(h["Init"], true);
  EXPECT_EQ(Dump(h["RestartPolicy"]), R"({"Name":"on-failure","MaximumRetryCount":3})");
  EXPECT_EQ(h["Devices"][0]["PathOnHost"], "/dev/fuse");
  EXPECT_EQ(Dump(b["Cmd"]), R"(["sh","-c","echo hi"])");
  EXPECT_EQ(b["Image"], "busybox");
  EXPECT_TRUE(b["Entrypoint"].is_null());
}

TEST(RunOptsTest, CreateBodyProcessAndStorage) {
  setenv("MOAT_RUN_OPTS_TEST_VAR", "from-env", 1);
  unsetenv("MOAT_RUN_OPTS_TEST_UNSET");
  RunFlags f;
  f.env = {"A=1", "MOAT_RUN_OPTS_TEST_VAR", "MOAT_RUN_OPTS_TEST_UNSET"};
  f.workdir = "/w";
  f.user = "1000:1000";
  f.entrypoint = "";
  f.hostname = "box";
  f.volumes = {"/a:/b:ro", "named:/data", "/anon"};
  f.mounts = {"type=tmpfs,target=/t"};
  f.labels = {"k=v", "flag"};
  f.stop_signal = "SIGINT";
  f.stop_timeout = 5;
  f.network = "none";
  f.interactive = true;
  f.tty = true;
  f.rm = true;
  Json b = Body(f);
  EXPECT_EQ(Dump(b["Env"]), R"(["A=1","MOAT_RUN_OPTS_TEST_VAR=from-env"])");
  EXPECT_EQ(b["WorkingDir"], "/w");
  EXPECT_EQ(b["User"], "1000:1000");
  EXPECT_EQ(Dump(b["Entrypoint"]), R"([""])");
  EXPECT_EQ(b["Hostname"], "box");
  EXPECT_EQ(Dump(b["HostConfig"]["Binds"]), R"(["/a:/b:ro","named:/data"])");
  EXPECT_EQ(Dump(b["Volumes"]), R"({"/anon":{}})");
  EXPECT_EQ(b["HostConfig"]["Mounts"][0]["Type"], "tmpfs");
  EXPECT_EQ(Dump(b["Labels"]), R"({"k":"v","flag":""})");
  EXPECT_EQ(b["StopSignal"], "SIGINT");
  EXPECT_EQ(b["StopTimeout"], 5);
  EXPECT_EQ(b["HostConfig"]["NetworkMode"], "none");
  EXPECT_EQ(Dump(b["NetworkingConfig"]), R"({"EndpointsConfig":{"none":{}}})");
  EXPECT_EQ(b["Tty"], true);
  EXPECT_EQ(b["OpenStdin"], true);
  EXPECT_EQ(b["StdinOnce"], true);
  EXPECT_EQ(b["AttachStdin"], true);
  EXPECT_EQ(b["HostConfig"]["AutoRemove"], true);
  EXPECT_TRUE(b["Cmd"].is_null());
}

TEST(RunOptsTest, DetachedDoesNotAttach) {
  RunFlags f;
  f.detach = true;
  f.interactive = true;
  Json b = Body(f);
  EXPECT_EQ(b["AttachStdin"], false);
  EXPECT_EQ(b["AttachStdout"], false);
  EXPECT_EQ(b["AttachStderr"], false);
  EXPECT_EQ(b["StdinOnce"], false);
}

TEST(RunOptsTest, BadFlagValuesNameTheFlag) {
  RunFlags f;
  f.memory = "lots";
  auto b = BuildCreateBody(f, "busybox", {}, std::nullopt);
  ASSERT_FALSE(b.has_value());
  EXPECT_NE(b.error().message.find("--memory"), std::string::npos) << b.error().message;

  RunFlags g;
  g.rm = true;
  g.restart = "always";
  EXPECT_FALSE(BuildCreateBody(g, "busybox", {}, std::nullopt).has_value());

  RunFlags h;
  h.memory_swap = "1g";
  EXPECT_FALSE(BuildCreateBody(h, "busybox", {}, std::nullopt).has_value());

  RunFlags v;
  v.volumes = {"relative"};
  EXPECT_FALSE(BuildCreateBody(v, "busybox", {}, std::nullopt).has_value());

  RunFlags a;
  a.attach = {"stdweird"};
  EXPECT_FALSE(BuildCreateBody(a, "busybox", {}, std::nullopt).has_value());
}

TEST(RunOptsTest, MemorySwapUnlimited) {
  RunFlags f;
  f.memory = "64m";
  f.memory_swap = "-1";
  EXPECT_EQ(Body(f)["HostConfig"]["MemorySwap"], -1);
}

TEST(RunOptsTest, StartErrorExitCodes) {
  EXPECT_EQ(StartErrorExitCode("exec: \"x\": executable file not found in $PATH: unknown"), 127);
  EXPECT_EQ(StartErrorExitCode("exec /bin/x: no such file or directory"), 127);
  EXPECT_EQ(StartErrorExitCode("exec /etc: permission denied"), 126);
  EXPECT_EQ(StartErrorExitCode("exec /etc: is a directory"), 126);
  EXPECT_EQ(StartErrorExitCode("cgroup: device or resource busy"), 125);
}

}  // namespace
}  // namespace moat::cli
