#include <gtest/gtest.h>

#include "image/store.h"

namespace moat::image {
namespace {

TEST(ReferenceTest, Normalises) {
  auto r = ParseReference("busybox");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->repo, "busybox");
  EXPECT_EQ(r->tag, "latest");
  EXPECT_EQ(r->String(), "busybox:latest");
  EXPECT_EQ(ParseReference("docker.io/library/busybox:1")->String(), "busybox:1");
  EXPECT_EQ(ParseReference("index.docker.io/library/busybox")->String(), "busybox:latest");
  EXPECT_EQ(ParseReference("library/busybox:2")->String(), "busybox:2");
  EXPECT_EQ(ParseReference("docker.io/myorg/app")->String(), "myorg/app:latest");
  EXPECT_EQ(ParseReference("localhost:5000/x/y:v1.2")->String(), "localhost:5000/x/y:v1.2");
  EXPECT_EQ(ParseReference("ghcr.io/a/b")->repo, "ghcr.io/a/b");
  std::string d = "sha256:" + std::string(64, 'a');
  auto dr = ParseReference("myorg/app@" + d);
  ASSERT_TRUE(dr);
  EXPECT_EQ(dr->tag, "");
  EXPECT_EQ(dr->digest, d);
  EXPECT_EQ(dr->String(), "myorg/app@" + d);
  EXPECT_EQ(ParseReference("a_b.c-d__e:t")->repo, "a_b.c-d__e");
  // A Docker Hub namespace that looks like a host keeps "docker.io/": shortened, it would name
  // another registry (found by fuzz/reference.cc).
  EXPECT_EQ(ParseReference("docker.io/a.b/c")->repo, "docker.io/a.b/c");
  EXPECT_NE(ParseReference("docker.io/a.b/c")->repo, ParseReference("a.b/c")->repo);
  auto odd = ParseReference("index.docker.io/iocl2docker.io__ry/ub");
  ASSERT_TRUE(odd);
  auto again = ParseReference(odd->String());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_EQ(*again, *odd);
  // A 64-hex repository name is refused with or without Docker Hub's domain.
  std::string hex(64, 'a');
  EXPECT_FALSE(ParseReference(hex));
  EXPECT_FALSE(ParseReference("docker.io/" + hex));
  EXPECT_FALSE(ParseReference("index.docker.io/library/" + hex));
  EXPECT_FALSE(ParseReference("library/" + hex));
  EXPECT_TRUE(ParseReference("localhost:5000/" + hex));
}

TEST(ReferenceTest, RejectsInvalid) {
  auto up = ParseReference("Busybox");
  ASSERT_FALSE(up);
  EXPECT_EQ(up.error().kind, ErrorKind::kInvalidArgument);
  EXPECT_NE(up.error().message.find("must be lowercase"), std::string::npos);
  EXPECT_FALSE(ParseReference(""));
  EXPECT_FALSE(ParseReference("busybox:"));
  EXPECT_FALSE(ParseReference("busybox:bad$tag"));
  EXPECT_FALSE(ParseReference("busybox:" + std::string(129, 'a')));
  EXPECT_FALSE(ParseReference("busybox@sha256:abc"));
  EXPECT_FALSE(ParseReference("-bad"));
  EXPECT_FALSE(ParseReference("a//b"));
  EXPECT_FALSE(ParseReference("a..b"));
  EXPECT_FALSE(ParseReference(std::string(64, 'a')));
}

}  // namespace
}  // namespace moat::image
