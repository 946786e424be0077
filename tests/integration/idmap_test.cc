// Id-mapped bind mounts (mounts[].uidMappings/gidMappings, options "idmap"/"ridmap"): the ids
// the container sees through them, the ids its writes get on the host, the recursive variant,
// the container's own mappings as the default, refused configs, and `features`.
//
// The mappings read as runc reads them: written as a user namespace's uid_map, so a file owned
// by `containerID + k` on disk shows as `hostID + k` through the mount (runc's
// tests/integration/idmap.bats "simple idmap mount [no userns]": on-disk 0 shows as 100000).

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "support/runtime_fixture.h"

namespace moat::testing {
namespace {

class IdmapTest : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    // Id-mapping a mount of a disk filesystem needs CAP_SYS_ADMIN in the initial user
    // namespace (mount_setattr(2)): the rootless run of the suite cannot.
    if (!InInitialUserNamespace())
      GTEST_SKIP() << "id-mapped mounts need root in the initial user namespace";
    // The mount point: a container in a user namespace cannot make it in the host-owned
    // shared rootfs (a root container would, so without this the result depends on order).
    std::string target = rootfs() + "/data";
    ASSERT_TRUE(mkdir(target.c_str(), 0755) == 0 || errno == EEXIST) << target << ": " << strerror(errno);
  }
};

// A unique directory under /var/tmp (a disk filesystem that supports id-mapped mounts, unlike
// the overlay a CI rootfs may be). The destructor detaches every mount under it, then removes
// it, whatever the test did.
class HostDir {
 public:
  HostDir() {
    char tmpl[] = "/var/tmp/moat-idmap-it-XXXXXX";
    if (mkdtemp(tmpl)) path_ = tmpl;
  }
  ~HostDir() {
    if (path_.empty()) return;
    auto mounts = MountsMentioning(path_);
    for (auto it = mounts.rbegin(); it != mounts.rend(); ++it) umount2(it->c_str(), MNT_DETACH);
    if (!RemoveTree(path_)) ADD_FAILURE() << "could not remove " << path_;
  }
  HostDir(const HostDir&) = delete;
  HostDir& operator=(const HostDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// uid:gid of a host path ("" when it cannot be stat'ed).
std::string Owner(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_uid) + ":" + std::to_string(st.st_gid);
}

json Mapping(uint32_t container_id, uint32_t host_id, uint32_t size) {
  return {{"containerID", container_id}, {"hostID", host_id}, {"size", size}};
}

// A bind of `source` on `destination` with `options`, mapped by `uid`/`gid` when not null.
void AddMappedBind(json& c, const std::string& source, const std::string& destination,
                   std::vector<std::string> options, const json& uid = nullptr,
                   const json& gid = nullptr) {
  json m = {
      {"destination", destination}, {"type", "bind"}, {"source", source}, {"options", options}};
  if (!uid.is_null()) m["uidMappings"] = json::array({uid});
  if (!gid.is_null()) m["gidMappings"] = json::array({gid});
  c["mounts"].push_back(m);
}

// A source directory holding `file` owned by uid:gid.
void MakeOwnedFile(const std::string& path, uid_t uid, gid_t gid) {
  ASSERT_TRUE(WriteFile(path, "x\n")) << path << ": " << strerror(errno);
  ASSERT_EQ(chown(path.c_str(), uid, gid), 0) << path << ": " << strerror(errno);
}

json UsernsConfig(std::vector<std::string> args, const json& config) {
  json c = config;
  c["process"]["args"] = std::move(args);
  c["linux"]["namespaces"].push_back({{"type", "user"}});
  c["linux"]["uidMappings"] = json::array({Mapping(0, 100000, 65536)});
  c["linux"]["gidMappings"] = json::array({Mapping(0, 100000, 65536)});
  // The default "0 2147483647" names gids this namespace does not map (EINVAL).
  c["linux"]["sysctl"]["net.ipv4.ping_group_range"] = "0 65535";
  return c;
}

TEST_F(IdmapTest, MappedBindShowsHostOwnerAsRootAndRootsWritesLandAsHostOwner) {
  HostDir host;
  ASSERT_FALSE(host.path().empty()) << strerror(errno);
  std::string src = host.path() + "/src";
  ASSERT_EQ(mkdir(src.c_str(), 0777), 0) << strerror(errno);
  ASSERT_EQ(chown(src.c_str(), 1000, 1000), 0) << strerror(errno);
  MakeOwnedFile(src + "/f", 1000, 1000);

  // Control: a plain bind shows the host's owner.
  std::string control_id = NewId();
  json control = Config({"stat", "-c", "%u:%g", "/data/f"});
  AddMappedBind(control, src, "/data", {"bind"});
  CommandResult plain = RunContainer(control, control_id);
  ASSERT_EQ(plain.exit_code, 0) << plain.Describe();
  EXPECT_EQ(Trim(plain.out), "1000:1000");

  // On-disk 1000 shows as 0: the container's root owns the file and what it creates is 1000
  // on disk.
  std::string id = NewId();
  json c = Config(
      {"sh", "-c", "stat -c %u:%g /data/f /data; echo y > /data/new && stat -c %u:%g /data/new"});
  AddMappedBind(c, src, "/data", {"bind", "idmap"}, Mapping(1000, 0, 1), Mapping(1000, 0, 1));
  // The mount's other options still apply to the id-mapped tree.
  c["process"]["args"][2] =
      c["process"]["args"][2].get<std::string>() + "; stat -c %u:%g /ro/f; touch /ro/x; echo ro=$?";
  AddMappedBind(c, src, "/ro", {"bind", "ro", "idmap"}, Mapping(1000, 0, 1), Mapping(1000, 0, 1));
  CommandResult r = RunContainer(c, id);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(Lines(r.out), (std::vector<std::string>{"0:0", "0:0", "0:0", "0:0", "ro=1"})) << r.out;
  EXPECT_NE(r.err.find("Read-only file system"), std::string::npos) << r.err;
  EXPECT_FALSE(PathExists(src + "/x"));
  EXPECT_EQ(Owner(src + "/new"), "1000:1000");
  EXPECT_EQ(ReadFileOrEmpty(src + "/new"), "y\n");
  EXPECT_EQ(Owner(src + "/f"), "1000:1000");  // nothing was chowned on the host
}

TEST_F(IdmapTest, MappingDirectionMatchesRunc) {
  // The same numbers the other way round: containerID 0 -> hostID 1000 shows an on-disk 0 as
  // 1000, and the container's root (0, unmapped by the mount) cannot create files there.
  HostDir host;
  ASSERT_FALSE(host.path().empty()) << strerror(errno);
  std::string src = host.path() + "/src";
  ASSERT_EQ(mkdir(src.c_str(), 0777), 0) << strerror(errno);
  MakeOwnedFile(src + "/root-owned", 0, 0);
  MakeOwnedFile(src + "/user-owned", 1000, 1000);
  std::string id = NewId();
  json c = Config({"sh", "-c",
                   "stat -c %u:%g /data/root-owned /data/user-owned; "
                   "touch /data/new; echo touch=$?"});
  AddMappedBind(c, src, "/data", {"bind"}, Mapping(0, 1000, 1), Mapping(0, 1000, 1));
  CommandResult r = RunContainer(c, id);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::string overflow = Trim(ReadFileOrEmpty("/proc/sys/kernel/overflowuid")) + ":" +
                         Trim(ReadFileOrEmpty("/proc/sys/kernel/overflowgid"));
  EXPECT_EQ(Lines(r.out), (std::vector<std::string>{"1000:1000", overflow, "touch=1"})) << r.out;
  EXPECT_NE(r.err.find("Value too large"), std::string::npos) << r.err;  // EOVERFLOW
  EXPECT_FALSE(PathExists(src + "/new"));
}

TEST_F(IdmapTest, RidmapMapsSubmountsAndIdmapOnlyTheTop) {
  HostDir host;
  ASSERT_FALSE(host.path().empty()) << strerror(errno);
  std::string src = host.path() + "/src";
  std::string sub = src + "/sub";
  ASSERT_EQ(mkdir(src.c_str(), 0777), 0) << strerror(errno);
  ASSERT_EQ(mkdir(sub.c_str(), 0777), 0) << strerror(errno);
  MakeOwnedFile(src + "/top", 1000, 1000);
  // A tmpfs submount (id-mappable since Linux 6.3), shared: the container's clone of it must
  // not stay in the host's peer group.
  ASSERT_EQ(mount("tmpfs", sub.c_str(), "tmpfs", 0, "mode=0777,size=1m,uid=1000,gid=1000"), 0)
      << strerror(errno);
  ASSERT_EQ(mount(nullptr, sub.c_str(), nullptr, MS_SHARED, nullptr), 0) << strerror(errno);
  MakeOwnedFile(sub + "/inner", 1000, 1000);

  auto run = [&](const std::string& option, std::string* err) {
    std::string id = NewId();
    json c = Config({"sh", "-c",
                     "stat -c %u:%g /data/top /data/sub/inner; "
                     "grep ' /data/sub ' /proc/self/mountinfo"});
    AddMappedBind(c, src, "/data", {"rbind", option}, Mapping(1000, 0, 1), Mapping(1000, 0, 1));
    // Mounted while the tree is attached but before pivot_root's rslave: must not reach the host.
    AddTmpfs(c, "/data/sub/leak");
    CommandResult r = RunContainer(c, id);
    EXPECT_TRUE(MountsMentioning(sub + "/leak").empty()) << option << ": propagated to the host";
    EXPECT_EQ(r.exit_code, 0) << option << ": " << r.Describe();
    *err = r.err;
    return Lines(r.out);
  };
  std::string err;
  auto recursive = run("ridmap", &err);
  ASSERT_EQ(recursive.size(), 3u) << err;
  EXPECT_EQ(recursive[0], "0:0");
  EXPECT_EQ(recursive[1], "0:0");
  EXPECT_EQ(recursive[2].find("shared:"), std::string::npos) << recursive[2];
  EXPECT_NE(recursive[2].find("master:"), std::string::npos) << recursive[2];

  auto top_only = run("idmap", &err);
  ASSERT_EQ(top_only.size(), 3u) << err;
  EXPECT_EQ(top_only[0], "0:0");
  EXPECT_EQ(top_only[1], "1000:1000");
}

TEST_F(IdmapTest, UserNamespaceContainerDefaultsToItsOwnMappings) {
  // Container root is host 100000. Through a mount mapped like the container (0 -> 100000),
  // a host file owned by 0 is the container root's, and what it creates is 0 on disk.
  HostDir host;
  ASSERT_FALSE(host.path().empty()) << strerror(errno);
  // The init of a user namespace container opens a plain bind's source as host 100000: let it
  // through mkdtemp's 0700.
  ASSERT_EQ(chmod(host.path().c_str(), 0755), 0) << strerror(errno);
  std::string src = host.path() + "/src";
  ASSERT_EQ(mkdir(src.c_str(), 0755), 0) << strerror(errno);
  MakeOwnedFile(src + "/f", 0, 0);
  std::string script = "stat -c %u:%g /data/f; touch /data/made; echo touch=$?";

  // Control: without the mapping, host 0 is unmapped in the container and root cannot write.
  std::string control_id = NewId();
  json control = UsernsConfig({"sh", "-c", script}, Config());
  AddMappedBind(control, src, "/data", {"bind"});
  CommandResult plain = RunContainer(control, control_id);
  ASSERT_EQ(plain.exit_code, 0) << plain.Describe();
  std::string overflow = Trim(ReadFileOrEmpty("/proc/sys/kernel/overflowuid")) + ":" +
                         Trim(ReadFileOrEmpty("/proc/sys/kernel/overflowgid"));
  EXPECT_EQ(Lines(plain.out), (std::vector<std::string>{overflow, "touch=1"})) << plain.out;
  ASSERT_FALSE(PathExists(src + "/made"));

  // "idmap" alone: the container's linux.uidMappings/gidMappings.
  std::string id = NewId();
  json c = UsernsConfig({"sh", "-c", script}, Config());
  AddMappedBind(c, src, "/data", {"bind", "idmap"});
  CommandResult r = RunContainer(c, id);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(Lines(r.out), (std::vector<std::string>{"0:0", "touch=0"})) << r.out;
  EXPECT_EQ(Owner(src + "/made"), "0:0");

  // The same mapping given explicitly.
  std::string id2 = NewId();
  json c2 = UsernsConfig({"stat", "-c", "%u:%g", "/data/made"}, Config());
  AddMappedBind(c2, src, "/data", {"bind", "idmap"}, Mapping(0, 100000, 65536),
                Mapping(0, 100000, 65536));
  CommandResult r2 = RunContainer(c2, id2);
  ASSERT_EQ(r2.exit_code, 0) << r2.Describe();
  EXPECT_EQ(Trim(r2.out), "0:0");
}

struct BadMount {
  const char* name;
  std::function<void(json& mount)> edit;
  const char* expected;  // substring of stderr; "{n}" is the mount's index
};

TEST_F(IdmapTest, BadMappingsAreRefusedNamingTheFieldAndLeaveNothing) {
  HostDir host;
  ASSERT_FALSE(host.path().empty()) << strerror(errno);
  const BadMount kBad[] = {
      {"ZeroSize", [](json& m) { m["uidMappings"][0]["size"] = 0; },
       "mounts[{n}].uidMappings[0].size: must be greater than zero"},
      {"Overflow", [](json& m) { m["gidMappings"][0] = Mapping(4294967295u, 0, 2); },
       "mounts[{n}].gidMappings[0]: id range overflows 32 bits"},
      {"UidWithoutGid", [](json& m) { m.erase("gidMappings"); },
       "mounts[{n}]: uidMappings and gidMappings must be given together"},
      {"Overlap", [](json& m) { m["uidMappings"].push_back(Mapping(1000, 5000, 1)); },
       "mounts[{n}].uidMappings[1]: containerID range overlaps that of "
       "mounts[{n}].uidMappings[0]"},
      {"NotABind",
       [](json& m) {
         m["type"] = "tmpfs";
         m["source"] = "tmpfs";
         m["options"] = {"idmap"};
       },
       "mounts[{n}].uidMappings: only bind mounts can be id-mapped"},
      {"OptionWithoutAnyMapping",
       [](json& m) {
         m.erase("uidMappings");
         m.erase("gidMappings");
       },
       "mounts[{n}].uidMappings: required with option \"idmap\""},
      // Valid config, refused by the kernel on the host side: procfs cannot be id-mapped.
      {"FilesystemWithoutIdmap", [](json& m) { m["source"] = "/proc"; },
       "mounts[{n}]: id-mapping /proc"},
  };
  for (const auto& bad : kBad) {
    SCOPED_TRACE(bad.name);
    json c = Config({"true"});
    size_t index = c["mounts"].size();
    AddMappedBind(c, host.path(), "/data", {"bind", "idmap"}, Mapping(1000, 0, 1),
                  Mapping(1000, 0, 1));
    bad.edit(c["mounts"][index]);
    WriteConfig(c);
    std::string id = NewId();
    CommandResult r = Runtime({"create", "--bundle", bundle(), id});
    EXPECT_EQ(r.exit_code, 1) << r.Describe();
    std::string want = bad.expected;
    for (size_t at; (at = want.find("{n}")) != std::string::npos;)
      want.replace(at, 3, std::to_string(index));
    EXPECT_NE(r.err.find(want), std::string::npos) << "want \"" << want << "\" in:\n" << r.err;
    EXPECT_FALSE(PathExists(state_root() + "/" + id));
    CommandResult st = Runtime({"state", id});
    EXPECT_EQ(st.exit_code, 1) << st.Describe();
  }
  // No mount was left on the host either (the trees made before a failure are dissolved).
  EXPECT_TRUE(MountsMentioning(host.path()).empty());
}

TEST_F(IdmapTest, FeaturesReportIdmap) {
  CommandResult r = Runtime({"features"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  json f = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(f.is_discarded()) << r.out;
  EXPECT_EQ(f["linux"]["mountExtensions"]["idmap"]["enabled"], true) << r.out;
  std::vector<std::string> options = f["mountOptions"].get<std::vector<std::string>>();
  for (const char* want : {"idmap", "ridmap"})
    EXPECT_NE(std::find(options.begin(), options.end(), want), options.end()) << want;
}

}  // namespace
}  // namespace moat::testing
