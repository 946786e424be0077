#include <gtest/gtest.h>

#include "daemon/api/http.h"

namespace moat::daemon::api {
namespace {

Handler Tag(int* hit, int value) {
  return [hit, value](Request&, Responder&) { *hit = value; };
}

// Handlers in these tests only record that they ran.
class NullResponder final : public Responder {
 public:
  void Json(int, std::string) override {}
  void Error(int, const std::string&) override {}
  void Empty(int) override {}
  void Raw(int, const std::string&, std::string,
           const std::map<std::string, std::string>&) override {}
  Result<void> StartStream(int, const std::string&,
                           const std::map<std::string, std::string>&) override {
    return Ok();
  }
  Result<void> Write(std::string_view) override { return Ok(); }
  Result<void> EndStream() override { return Ok(); }
  Result<Hijacked> Hijack(const std::string&) override {
    return Fail(ErrorKind::kUnsupported, "no hijack here");
  }
  Result<size_t> ReadBody(char*, size_t) override { return size_t{0}; }
  bool answered() const override { return false; }
};

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add("GET", "/containers/json", BodyMode::kBuffered, Tag(&hit_, 1));
    router_.Add("GET", "/containers/{id}/json", BodyMode::kBuffered, Tag(&hit_, 2));
    router_.Add("POST", "/containers/{id}/start", BodyMode::kBuffered, Tag(&hit_, 3));
    router_.Add("GET", "/images/{name*}/json", BodyMode::kBuffered, Tag(&hit_, 4));
    router_.Add("DELETE", "/images/{name*}", BodyMode::kBuffered, Tag(&hit_, 5));
    router_.Add("POST", "/images/load", BodyMode::kStreamed, Tag(&hit_, 6));
    router_.Add("POST", "/images/{name*}/tag", BodyMode::kBuffered, Tag(&hit_, 7));
  }
  // Which route answered (by its tag), 0 for none.
  int Call(const Router::Match& m) {
    hit_ = 0;
    if (m.handler) {
      Request req;
      NullResponder responder;
      (*m.handler)(req, responder);
    }
    return hit_;
  }
  Router router_;
  int hit_ = 0;
};

TEST_F(RouterTest, LiteralBeforeParameterInRegistrationOrder) {
  Router::Match m = router_.Find("GET", "/containers/json");
  EXPECT_EQ(Call(m), 1);
  EXPECT_TRUE(m.params.empty());
  m = router_.Find("GET", "/containers/abc/json");
  EXPECT_EQ(Call(m), 2);
  EXPECT_EQ(m.params.at("id"), "abc");
}

TEST_F(RouterTest, GreedyNames) {
  Router::Match m = router_.Find("GET", "/images/docker.io/myorg/app:1/json");
  EXPECT_EQ(Call(m), 4);
  EXPECT_EQ(m.params.at("name"), "docker.io/myorg/app:1");
  m = router_.Find("GET", "/images/a/json/json");
  EXPECT_EQ(Call(m), 4);
  EXPECT_EQ(m.params.at("name"), "a/json");
  m = router_.Find("DELETE", "/images/busybox:latest");
  EXPECT_EQ(Call(m), 5);
  EXPECT_EQ(m.params.at("name"), "busybox:latest");
  m = router_.Find("DELETE", "/images/127.0.0.1:5000/app/web:1");
  EXPECT_EQ(m.params.at("name"), "127.0.0.1:5000/app/web:1");
  m = router_.Find("POST", "/images/myorg/app:1/tag");
  EXPECT_EQ(Call(m), 7);
  EXPECT_EQ(m.params.at("name"), "myorg/app:1");
  m = router_.Find("POST", "/images/load");
  EXPECT_EQ(Call(m), 6);
  EXPECT_EQ(m.body, BodyMode::kStreamed);
}

TEST_F(RouterTest, NotFoundAndMethodNotAllowed) {
  Router::Match m = router_.Find("GET", "/nothing/here");
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_FALSE(m.path_known);
  m = router_.Find("POST", "/containers/json");
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_TRUE(m.path_known);
  m = router_.Find("GET", "/containers//json");  // an empty {id}
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_FALSE(m.path_known);
  m = router_.Find("GET", "/images/json");  // {name*} needs at least one segment
  EXPECT_EQ(m.handler, nullptr);
  m = router_.Find("GET", "/containers/json/");
  EXPECT_EQ(m.handler, nullptr);
  EXPECT_EQ(Call(router_.Find("GET", "/containers/x/json")), 2);
}

TEST(RequestTest, QueryBoolFollowsDockerd) {
  Request r;
  r.query = {{"a", "1"},  {"b", "0"},    {"c", "False"}, {"d", "True"},   {"e", ""},
             {"f", "no"}, {"g", "NONE"}, {"h", "yes"},   {"i", " false "}};
  EXPECT_TRUE(r.QueryBool("a"));
  EXPECT_FALSE(r.QueryBool("b", true));
  EXPECT_FALSE(r.QueryBool("c", true));
  EXPECT_TRUE(r.QueryBool("d"));
  EXPECT_FALSE(r.QueryBool("e", true));
  EXPECT_FALSE(r.QueryBool("f", true));
  EXPECT_FALSE(r.QueryBool("g", true));
  EXPECT_TRUE(r.QueryBool("h"));
  EXPECT_FALSE(r.QueryBool("i", true));
  EXPECT_TRUE(r.QueryBool("absent", true));
  EXPECT_FALSE(r.QueryBool("absent"));
  EXPECT_EQ(r.Query("a"), "1");
  EXPECT_EQ(r.Query("absent"), std::nullopt);
  r.headers = {{"x-registry-auth", "e30="}};
  EXPECT_EQ(r.Header("X-Registry-Auth"), "e30=");
  EXPECT_EQ(r.Header("x-other"), "");
}

}  // namespace
}  // namespace moat::daemon::api
