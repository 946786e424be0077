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

std::string PublishError(std::string_view spec) {
  Json exposed, bindings;
  auto r = ParsePublish(spec, &exposed, &bindings);
  return r.has_value() ? "<ok>" : r.error().message;
}

TEST(RunOptsTest, PublishFormsAsDocker) {
  Json exposed, bindings;
  // A host range for one container port is passed on whole for the daemon to pick from.
  ASSERT_TRUE(ParsePublish("8000-8010:80", &exposed, &bindings).has_value());
  EXPECT_EQ(Dump(bindings["80/tcp"]), R"([{"HostIp":"","HostPort":"8000-8010"}])");
  ASSERT_TRUE(ParsePublish("[::1]:8443:443", &exposed, &bindings).has_value());
  EXPECT_EQ(Dump(bindings["443/tcp"]), R"([{"HostIp":"::1","HostPort":"8443"}])");
  ASSERT_TRUE(ParsePublish("127.0.0.1::5000/UDP", &exposed, &bindings).has_value());
  EXPECT_EQ(Dump(bindings["5000/udp"]), R"([{"HostIp":"127.0.0.1","HostPort":""}])");
  ASSERT_TRUE(ParsePublish("0.0.0.0:7000-7001:7000-7001/sctp", &exposed, &bindings).has_value());
  EXPECT_EQ(Dump(bindings["7001/sctp"]), R"([{"HostIp":"0.0.0.0","HostPort":"7001"}])");
  ASSERT_TRUE(
      ParsePublish("published=9090,target=90,protocol=udp", &exposed, &bindings).has_value());
  EXPECT_EQ(Dump(bindings["90/udp"]), R"([{"HostIp":"","HostPort":"9090"}])");
  // Two -p for one container port add a second binding.
  ASSERT_TRUE(ParsePublish("127.0.0.2:8001:80", &exposed, &bindings).has_value());
  EXPECT_EQ(bindings["80/tcp"].size(), 2u);
  EXPECT_EQ(
      Dump(exposed),
      R"({"80/tcp":{},"443/tcp":{},"5000/udp":{},"7000/sctp":{},"7001/sctp":{},"90/udp":{}})");

  EXPECT_EQ(PublishError("::1:8080:80"),
            "Invalid ip address ::1: address ::1:: too many colons in address");
  EXPECT_EQ(PublishError("1.2.3:80:80"), "Invalid ip address: 1.2.3");
  EXPECT_EQ(PublishError("8080:"), "No port specified: 8080:<empty>");
  EXPECT_EQ(PublishError("8080:http"), "Invalid containerPort: http");
  EXPECT_EQ(PublishError("x:80"), "Invalid hostPort: x");
  EXPECT_EQ(PublishError("8000-8001:80-82"),
            "Invalid ranges specified for container and host Ports: 80-82 and 8000-8001");
  EXPECT_EQ(PublishError("80/icmp"), "Invalid proto: icmp");
  EXPECT_EQ(PublishError("81-80"), "Invalid containerPort: 81-80");
  EXPECT_EQ(PublishError("published=1,target"),
            "invalid publish opts format (should be name=value but got 'target')");
}

TEST(RunOptsTest, Expose) {
  Json exposed;
  ASSERT_TRUE(ParseExpose("80", &exposed).has_value());
  ASSERT_TRUE(ParseExpose("5000-5001/udp", &exposed).has_value());
  EXPECT_EQ(Dump(exposed), R"({"80/tcp":{},"5000/udp":{},"5001/udp":{}})");
  auto colon = ParseExpose("80:80", &exposed);
  ASSERT_FALSE(colon.has_value());
  EXPECT_EQ(colon.error().message, "invalid port format for --expose: 80:80");
  EXPECT_FALSE(ParseExpose("90-80", &exposed).has_value());
  EXPECT_FALSE(ParseExpose("abc", &exposed).has_value());

  // -p and --expose meet in one ExposedPorts; -P turns on PublishAllPorts.
  RunFlags f;
  f.publish = {"8080:80"};
  f.expose = {"80", "9000/udp"};
  f.publish_all = true;
  Json b = Body(f);
  EXPECT_EQ(Dump(b["ExposedPorts"]), R"({"80/tcp":{},"9000/udp":{}})");
  EXPECT_EQ(Dump(b["HostConfig"]["PortBindings"]),
            R"({"80/tcp":[{"HostIp":"","HostPort":"8080"}]})");
  EXPECT_EQ(b["HostConfig"]["PublishAllPorts"], true);
}

TEST(RunOptsTest, ExtraHosts) {
  EXPECT_EQ(*ParseExtraHost("db:10.0.0.2"), "db:10.0.0.2");
  EXPECT_EQ(*ParseExtraHost("db=10.0.0.2"), "db:10.0.0.2");
  EXPECT_EQ(*ParseExtraHost("v6:::1"), "v6:::1");
  EXPECT_EQ(*ParseExtraHost("v6=[::1]"), "v6:::1");
  EXPECT_EQ(*ParseExtraHost("gw:host-gateway"), "gw:host-gateway");
  EXPECT_FALSE(ParseExtraHost("nohost").has_value());
  EXPECT_FALSE(ParseExtraHost(":10.0.0.2").has_value());
  auto bad = ParseExtraHost("db:10.0.0");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(
      bad.error().message,
      R"(invalid argument "db:10.0.0" for "--add-host" flag: invalid IP address in add-host: "10.0.0")");
}

TEST(RunOptsTest, DefaultNetworkBody) {
  Json b = Body(RunFlags{});
  const Json& h = b["HostConfig"];
  EXPECT_EQ(h["NetworkMode"], "default");
  EXPECT_EQ(Dump(b["NetworkingConfig"]), R"({"EndpointsConfig":{}})");
  EXPECT_EQ(Dump(h["Dns"]), "[]");
  EXPECT_EQ(Dump(h["DnsSearch"]), "[]");
  EXPECT_EQ(Dump(h["DnsOptions"]), "[]");
  EXPECT_TRUE(h["ExtraHosts"].is_null());
  EXPECT_TRUE(h["Links"].is_null());
  EXPECT_EQ(Dump(h["PortBindings"]), "{}");
  EXPECT_EQ(h["PublishAllPorts"], false);
  EXPECT_FALSE(b.contains("MacAddress"));
  EXPECT_FALSE(b.contains("ExposedPorts"));
}

TEST(RunOptsTest, DnsAndHostsFillHostConfig) {
  RunFlags f;
  f.dns = {"8.8.8.8", "2001:4860:4860:0:0:0:0:8888"};
  f.dns_search = {"example.com", "corp.example.", "."};
  f.dns_options = {"ndots:2", "timeout:1"};
  f.add_hosts = {"db:10.0.0.2", "cache=10.0.0.3"};
  Json h = Body(f)["HostConfig"];
  EXPECT_EQ(Dump(h["Dns"]), R"(["8.8.8.8","2001:4860:4860::8888"])");
  EXPECT_EQ(Dump(h["DnsSearch"]), R"(["example.com","corp.example","."])");
  EXPECT_EQ(Dump(h["DnsOptions"]), R"(["ndots:2","timeout:1"])");
  EXPECT_EQ(Dump(h["ExtraHosts"]), R"(["db:10.0.0.2","cache:10.0.0.3"])");

  RunFlags bad_dns;
  bad_dns.dns = {"8.8.8"};
  auto e = BuildCreateBody(bad_dns, "busybox", {}, std::nullopt);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().message,
            R"(invalid argument "8.8.8" for "--dns" flag: 8.8.8 is not an ip address)");
  RunFlags bad_search;
  bad_search.dns_search = {"-x-"};
  EXPECT_FALSE(BuildCreateBody(bad_search, "busybox", {}, std::nullopt).has_value());
  RunFlags bad_host;
  bad_host.add_hosts = {"nocolon"};
  EXPECT_FALSE(BuildCreateBody(bad_host, "busybox", {}, std::nullopt).has_value());
}

TEST(RunOptsTest, UserDefinedNetworkEndpoint) {
  RunFlags f;
  f.network = "appnet";
  f.network_aliases = {"web", "www"};
  f.ip = "172.30.0.10";
  f.ip6 = "fd00::10";
  f.links = {"db:database", "cache"};
  f.mac_address = "92:d0:c6:0a:29:33";
  Json b = Body(f);
  EXPECT_EQ(b["HostConfig"]["NetworkMode"], "appnet");
  EXPECT_EQ(Dump(b["HostConfig"]["Links"]), R"(["db:database","cache"])");
  EXPECT_EQ(b["MacAddress"], "92:d0:c6:0a:29:33");
  EXPECT_EQ(Dump(b["NetworkingConfig"]),
            R"({"EndpointsConfig":{"appnet":{"IPAMConfig":{"IPv4Address":"172.30.0.10",)"
            R"("IPv6Address":"fd00::10"},"Links":["db:database","cache"],"Aliases":["web","www"],)"
            R"("MacAddress":"92:d0:c6:0a:29:33","DriverOpts":null}}})");

  // One setting alone is enough to send the endpoint.
  RunFlags ip_only;
  ip_only.network = "appnet";
  ip_only.ip = "172.30.0.11";
  EXPECT_EQ(Dump(Body(ip_only)["NetworkingConfig"]["EndpointsConfig"]["appnet"]["IPAMConfig"]),
            R"({"IPv4Address":"172.30.0.11"})");
  RunFlags plain;
  plain.network = "appnet";
  EXPECT_EQ(Dump(Body(plain)["NetworkingConfig"]), R"({"EndpointsConfig":{}})");
}

TEST(RunOptsTest, DefaultBridgeNetworkFlags) {
  // --link on the default bridge is a legacy link: HostConfig.Links only.
  RunFlags link;
  link.links = {"db:db"};
  Json b = Body(link);
  EXPECT_EQ(Dump(b["HostConfig"]["Links"]), R"(["db:db"])");
  EXPECT_EQ(Dump(b["NetworkingConfig"]), R"({"EndpointsConfig":{}})");

  // --ip on the default network is sent; the daemon answers "user specified IP address is
  // supported on user defined networks only".
  RunFlags ip;
  ip.ip = "172.17.0.9";
  EXPECT_EQ(Dump(Body(ip)["NetworkingConfig"]),
            R"({"EndpointsConfig":{"default":{"IPAMConfig":{"IPv4Address":"172.17.0.9"},)"
            R"("Links":null,"Aliases":null,"MacAddress":"","DriverOpts":null}}})");

  RunFlags alias;
  alias.network = "bridge";
  alias.network_aliases = {"web"};
  auto e = BuildCreateBody(alias, "busybox", {}, std::nullopt);
  ASSERT_FALSE(e.has_value());
  EXPECT_EQ(e.error().message,
            "network-scoped aliases are only supported for user-defined networks");

  RunFlags bad_link;
  bad_link.links = {"a:b:c"};
  EXPECT_FALSE(BuildCreateBody(bad_link, "busybox", {}, std::nullopt).has_value());

  RunFlags bad_mac;
  bad_mac.mac_address = "92:d0:c6";
  auto m = BuildCreateBody(bad_mac, "busybox", {}, std::nullopt);
  ASSERT_FALSE(m.has_value());
  EXPECT_EQ(m.error().message, "92:d0:c6 is not a valid mac address");
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
  // docker leaves out an endpoint with nothing set.
  EXPECT_EQ(Dump(b["NetworkingConfig"]), R"({"EndpointsConfig":{}})");
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
