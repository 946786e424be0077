#include "cli/progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace moat::cli {
namespace {

// Runs `feed` on a display writing into memory (not a terminal) and returns what it wrote.
template <typename F>
std::string Render(bool quiet, F feed) {
  char* buf = nullptr;
  size_t len = 0;
  FILE* out = open_memstream(&buf, &len);
  {
    ProgressDisplay d(out, quiet);
    feed(d);
  }
  fclose(out);
  std::string s(buf, len);
  free(buf);
  return s;
}

TEST(ProgressDisplayTest, StatusChangesOnlyWhenNotATerminal) {
  std::string digest;
  std::string text = Render(false, [&](ProgressDisplay& d) {
    std::string stream =
        "{\"status\":\"Pulling from moat/x\",\"id\":\"v1\"}\n"
        "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":10,\"total\":100},\"id\":\"abc\"}\n"
        "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":90,\"total\":100},\"id\":\"abc\"}\n"
        "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"abc\"}\n"
        "{\"status\":\"Digest: sha256:feed\"}\n"
        "{\"stream\":\"Loaded image: x:1\\n\"}\n";
    // Split at awkward places: the display must reassemble lines.
    for (size_t i = 0; i < stream.size(); i += 7) ASSERT_TRUE(d.Feed(stream.substr(i, 7)));
    ASSERT_TRUE(d.Finish());
    digest = d.digest();
  });
  EXPECT_EQ(text,
            "v1: Pulling from moat/x\n"
            "abc: Downloading [====>                                   ] 10B/100B\n"
            "abc: Pull complete\n"
            "Digest: sha256:feed\n"
            "Loaded image: x:1\n");
  EXPECT_EQ(digest, "sha256:feed");
}

TEST(ProgressDisplayTest, ErrorMessageBecomesTheResult) {
  std::string text = Render(false, [](ProgressDisplay& d) {
    ASSERT_TRUE(d.Feed("{\"status\":\"Pulling fs layer\",\"id\":\"abc\"}\n"));
    ASSERT_TRUE(d.Feed("{\"errorDetail\":{\"message\":\"blob sha256:abc digest mismatch\"},"
                       "\"error\":\"blob sha256:abc digest mismatch\"}"));
    auto r = d.Finish();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "blob sha256:abc digest mismatch");
  });
  EXPECT_EQ(text, "abc: Pulling fs layer\n");
}

TEST(ProgressDisplayTest, QuietKeepsErrorsAndDigest) {
  std::string text = Render(true, [](ProgressDisplay& d) {
    ASSERT_TRUE(d.Feed("{\"status\":\"Pushed\",\"id\":\"abc\"}\n"
                       "{\"progressDetail\":{},\"aux\":{\"Tag\":\"v1\",\"Digest\":\"sha256:aa\"}}\n"));
    ASSERT_TRUE(d.Finish());
    EXPECT_EQ(d.digest(), "sha256:aa");
  });
  EXPECT_EQ(text, "");
  std::string bad = Render(false, [](ProgressDisplay& d) {
    EXPECT_FALSE(d.Feed("{not json\n"));
  });
  EXPECT_EQ(bad, "");
}

}  // namespace
}  // namespace moat::cli
