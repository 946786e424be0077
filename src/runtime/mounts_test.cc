#include "runtime/mounts.h"

#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/sys/fs.h"
#include "base/sys/linux_compat.h"
#include "runtime/idmap.h"

namespace moat::runtime {
namespace {

// A directory from mkdtemp(`tmpl`), removed with everything in it when the test ends (even
// when it fails). `path` is empty if mkdtemp failed.
struct TempDir {
  explicit TempDir(std::string tmpl) {
    if (mkdtemp(tmpl.data())) path = tmpl;
  }
  ~TempDir() {
    if (!path.empty()) (void)sys::RemoveAll(path);
  }
  std::string path;
};

oci::Mount M(std::string dest, std::string type, std::vector<std::string> opts,
             std::string source = "none") {
  oci::Mount m;
  m.destination = std::move(dest);
  m.type = std::move(type);
  m.source = std::move(source);
  m.options = std::move(opts);
  return m;
}

TEST(PlanMountTest, FsMountFlagsAndData) {
  auto op = PlanMount(M("/dev", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"}),
                      "/b", "mounts[1]");
  ASSERT_TRUE(op.has_value()) << op.error().message;
  EXPECT_EQ(op->flags, static_cast<unsigned long>(MS_NOSUID | MS_STRICTATIME));
  EXPECT_EQ(op->data, "mode=755,size=65536k");
  EXPECT_FALSE(op->bind);
}

TEST(PlanMountTest, BindWithReadonlyBecomesMountAttributes) {
  auto op = PlanMount(M("/data", "none", {"rbind", "ro", "nosuid", "rslave"}, "/tmp"), "/b",
                      "mounts[0]");
  ASSERT_TRUE(op.has_value()) << op.error().message;
  EXPECT_TRUE(op->bind);
  EXPECT_TRUE(op->recursive);
  EXPECT_EQ(op->attr_set, static_cast<uint64_t>(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID));
  EXPECT_EQ(op->propagation, static_cast<unsigned long>(MS_SLAVE | MS_REC));
  EXPECT_TRUE(op->source_is_dir);
}

TEST(PlanMountTest, RelativeBindSourceIsUnderTheBundle) {
  auto op = PlanMount(M("/x", "bind", {}, "nonexistent-dir"), "/nonexistent-bundle", "mounts[4]");
  ASSERT_FALSE(op.has_value());
  EXPECT_NE(op.error().message.find("mounts[4].source: /nonexistent-bundle/nonexistent-dir"),
            std::string::npos)
      << op.error().message;
}

TEST(PlanMountTest, RecursiveReadonlyOption) {
  auto op = PlanMount(M("/d", "bind", {"rro"}, "/tmp"), "/b", "mounts[0]");
  ASSERT_TRUE(op.has_value());
  EXPECT_TRUE(op->attr_recursive);
  EXPECT_EQ(op->attr_set, static_cast<uint64_t>(MOUNT_ATTR_RDONLY));
}

TEST(PlanMountTest, NonBindNeedsAType) {
  auto op = PlanMount(M("/d", "", {"nosuid"}), "/b", "mounts[2]");
  ASSERT_FALSE(op.has_value());
  EXPECT_NE(op.error().message.find("mounts[2].type"), std::string::npos);
}

TEST(PropagationTest, Names) {
  EXPECT_EQ(*PropagationFlags(""), static_cast<unsigned long>(MS_REC | MS_SLAVE));
  EXPECT_EQ(*PropagationFlags("rprivate"), static_cast<unsigned long>(MS_REC | MS_PRIVATE));
  auto bad = PropagationFlags("sideways");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message.find("linux.rootfsPropagation"), std::string::npos);
}

oci::Mount Mapped(std::string dest, std::string type, std::vector<std::string> opts,
                  std::string source = "/tmp") {
  oci::Mount m = M(std::move(dest), std::move(type), std::move(opts), std::move(source));
  m.uid_mappings = {oci::IdMapping{0, 100000, 65536}};
  m.gid_mappings = {oci::IdMapping{0, 200000, 1000}};
  return m;
}

TEST(PlanMountIdmapTest, MappingsMakeAnIdmappedBind) {
  auto op = PlanMount(Mapped("/data", "none", {"rbind", "ro"}), "/b", "mounts[1]");
  ASSERT_TRUE(op.has_value()) << op.error().message;
  EXPECT_TRUE(op->bind);
  EXPECT_TRUE(op->idmap);
  EXPECT_FALSE(op->idmap_recursive);  // "idmap" semantics when no option says otherwise
  EXPECT_EQ(op->uid_mappings, (std::vector<oci::IdMapping>{{0, 100000, 65536}}));
  EXPECT_EQ(op->gid_mappings, (std::vector<oci::IdMapping>{{0, 200000, 1000}}));
  EXPECT_EQ(op->attr_set, static_cast<uint64_t>(MOUNT_ATTR_RDONLY));
  EXPECT_EQ(op->data, "");  // "idmap" never reaches mount(2) data
  EXPECT_FALSE(op->idmapped_tree);  // planning makes no mount
}

TEST(PlanMountIdmapTest, RidmapIsRecursiveAndNotFsData) {
  auto op = PlanMount(Mapped("/data", "bind", {"rbind", "ridmap"}), "/b", "mounts[0]");
  ASSERT_TRUE(op.has_value()) << op.error().message;
  EXPECT_TRUE(op->idmap);
  EXPECT_TRUE(op->idmap_recursive);
  EXPECT_TRUE(op->recursive);
  EXPECT_EQ(op->data, "");
}

TEST(PlanMountIdmapTest, OptionWithoutMappingsUsesTheContainersUserNamespace) {
  ContainerIdMaps container{{oci::IdMapping{0, 100000, 65536}}, {oci::IdMapping{0, 300000, 10}}};
  auto op = PlanMount(M("/data", "none", {"bind", "idmap"}, "/tmp"), "/b", "mounts[2]", container);
  ASSERT_TRUE(op.has_value()) << op.error().message;
  EXPECT_TRUE(op->idmap);
  EXPECT_EQ(op->uid_mappings, container.uids);
  EXPECT_EQ(op->gid_mappings, container.gids);
  // The mount's own mappings win over the container's.
  auto own = PlanMount(Mapped("/data", "none", {"bind", "idmap"}), "/b", "mounts[2]", container);
  ASSERT_TRUE(own.has_value()) << own.error().message;
  EXPECT_EQ(own->gid_mappings, (std::vector<oci::IdMapping>{{0, 200000, 1000}}));
}

TEST(PlanMountIdmapTest, OptionWithoutAnyMappingsIsRefused) {
  auto op = PlanMount(M("/data", "none", {"rbind", "ridmap"}, "/tmp"), "/b", "mounts[3]");
  ASSERT_FALSE(op.has_value());
  EXPECT_EQ(op.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(op.error().message.find("mounts[3].uidMappings: required with option \"ridmap\""),
            std::string::npos)
      << op.error().message;
}

TEST(PlanMountIdmapTest, OnlyBindMountsCanBeIdmapped) {
  auto mapped = PlanMount(Mapped("/t", "tmpfs", {"nosuid"}, "tmpfs"), "/b", "mounts[4]");
  ASSERT_FALSE(mapped.has_value());
  EXPECT_NE(mapped.error().message.find("mounts[4].uidMappings: only bind mounts"),
            std::string::npos)
      << mapped.error().message;
  auto option = PlanMount(M("/t", "tmpfs", {"idmap"}, "tmpfs"), "/b", "mounts[5]");
  ASSERT_FALSE(option.has_value());
  EXPECT_NE(option.error().message.find("mounts[5].options: \"idmap\" applies only to bind"),
            std::string::npos)
      << option.error().message;
}

TEST(PlanMountIdmapTest, HalfAMappingIsRefused) {
  oci::Mount m = Mapped("/data", "bind", {"idmap"});
  m.gid_mappings.clear();
  auto op = PlanMount(m, "/b", "mounts[6]");
  ASSERT_FALSE(op.has_value());
  EXPECT_NE(op.error().message.find("mounts[6].gidMappings: required with uidMappings"),
            std::string::npos)
      << op.error().message;
}

TEST(PlanMountIdmapTest, ApplyRefusesAnUnpreparedIdmappedBind) {
  // ApplyMount must not fall back to a plain (unmapped) bind when the host half did not run.
  TempDir tmp("/tmp/moat-idmap-apply-XXXXXX");
  ASSERT_FALSE(tmp.path.empty()) << strerror(errno);
  const std::string& dir = tmp.path;
  auto op = PlanMount(Mapped("/data", "bind", {"idmap"}), "/b", "mounts[0]");
  ASSERT_TRUE(op.has_value()) << op.error().message;
  auto root = sys::open(dir, O_PATH | O_DIRECTORY);
  ASSERT_TRUE(root.has_value());
  auto r = ApplyMount(root->get(), *op);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::kInternal);
  EXPECT_NE(r.error().message.find("was not prepared"), std::string::npos) << r.error().message;
}

TEST(IdMapFileTextTest, OneLinePerMappingAsGiven) {
  EXPECT_EQ(IdMapFileText({{0, 100000, 65536}, {65536, 5, 1}}), "0 100000 65536\n65536 5 1\n");
}

TEST(MkdirAllInRootTest, SymlinksCannotLeaveTheRoot) {
  TempDir tmp("/tmp/moat-mkroot-XXXXXX");
  ASSERT_FALSE(tmp.path.empty()) << strerror(errno);
  const std::string& dir = tmp.path;
  std::string outside = dir + "/outside";
  ASSERT_TRUE(sys::MkdirAll(dir + "/root", 0755).has_value());
  ASSERT_TRUE(sys::MkdirAll(outside, 0755).has_value());
  // An image that points /evil at an absolute host path.
  ASSERT_TRUE(sys::symlinkat(outside, AT_FDCWD, dir + "/root/evil").has_value());
  auto root = sys::open(dir + "/root", O_PATH | O_DIRECTORY);
  ASSERT_TRUE(root.has_value());
  auto fd = MkdirAllInRoot(root->get(), "/evil/created/file", false);
  ASSERT_TRUE(fd.has_value()) << fd.error().message;
  // The symlink was followed inside the root: root/<outside path>/created/file.
  EXPECT_EQ(access((dir + "/root" + outside + "/created/file").c_str(), F_OK), 0);
  EXPECT_NE(access((outside + "/created").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace moat::runtime
