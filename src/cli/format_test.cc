#include "cli/format.h"

#include <gtest/gtest.h>

namespace moat::cli {
namespace {

TEST(FormatTest, HumanDuration) {
  EXPECT_EQ(HumanDuration(0), "Less than a second");
  EXPECT_EQ(HumanDuration(1), "1 second");
  EXPECT_EQ(HumanDuration(5), "5 seconds");
  EXPECT_EQ(HumanDuration(59), "59 seconds");
  EXPECT_EQ(HumanDuration(60), "About a minute");
  EXPECT_EQ(HumanDuration(119), "About a minute");
  EXPECT_EQ(HumanDuration(120), "2 minutes");
  EXPECT_EQ(HumanDuration(3599), "59 minutes");
  EXPECT_EQ(HumanDuration(3600), "About an hour");
  EXPECT_EQ(HumanDuration(3 * 3600), "3 hours");
  EXPECT_EQ(HumanDuration(3 * 86400), "3 days");
  EXPECT_EQ(HumanDuration(15 * 86400), "2 weeks");
  EXPECT_EQ(HumanDuration(90 * 86400), "3 months");
  EXPECT_EQ(HumanDuration(3 * 365 * 86400), "3 years");
}

TEST(FormatTest, HumanSize) {
  EXPECT_EQ(HumanSize(0), "0B");
  EXPECT_EQ(HumanSize(512), "512B");
  EXPECT_EQ(HumanSize(2140000), "2.14MB");
  EXPECT_EQ(HumanSize(1983011), "1.98MB");
  EXPECT_EQ(HumanSize(1200), "1.2kB");
  EXPECT_EQ(HumanSize(5e9), "5GB");
  EXPECT_EQ(BytesSize(368 * 1024), "368KiB");
  EXPECT_EQ(BytesSize(1.5 * 1024 * 1024), "1.5MiB");
}

TEST(FormatTest, ShortIdAndEllipsis) {
  EXPECT_EQ(ShortId("sha256:42815f04accf70c0663bf64b"), "42815f04accf");
  EXPECT_EQ(ShortId("55a977cf9e341d1b257437dc"), "55a977cf9e34");
  EXPECT_EQ(Ellipsis("sleep 100", 20), "sleep 100");
  EXPECT_EQ(Ellipsis("sh -c 'while true; do sleep 1; done'", 20), "sh -c 'while true; \u2026");
}

TEST(FormatTest, ParseRfc3339) {
  EXPECT_EQ(*ParseRfc3339("1970-01-01T00:01:00Z"), 60);
  EXPECT_EQ(*ParseRfc3339("2026-11-29T13:47:22.024001272Z"), 1795960042);
  EXPECT_EQ(*ParseRfc3339("1970-01-01T01:00:00+01:00"), 0);
  EXPECT_FALSE(ParseRfc3339("yesterday").has_value());
}

TEST(FormatTest, TabWriteAlignsLikeGoTabwriter) {
  std::string out = TabWrite({"CONTAINER ID\tIMAGE\tNAMES", "abc\tbusybox:latest\tweb"});
  EXPECT_EQ(out,
            "CONTAINER ID   IMAGE            NAMES\n"
            "abc            busybox:latest   web\n");
  // Short columns are padded to the minimum width of 10.
  EXPECT_EQ(TabWrite({"A\tB"}), "A         B\n");
}

TEST(TemplateTest, FieldsJsonAndFunctions) {
  Json data;
  data["ID"] = "abc";
  data["Names"] = "web";
  data["State"]["ExitCode"] = 3;
  data["Config"]["Cmd"] = {"sh", "-c", "x"};
  data["Labels"]["a"] = "b";
  auto t = Template::Parse("{{.ID}} {{.Names}} {{.State.ExitCode}}");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->Render(data), "abc web 3");
  EXPECT_EQ(Template::Parse("{{json .Config.Cmd}}")->Render(data), R"(["sh","-c","x"])");
  EXPECT_EQ(Template::Parse("{{json .}}")->Render(Json{{"a", 1}}), R"({"a":1})");
  EXPECT_EQ(Template::Parse("{{upper .Names}}")->Render(data), "WEB");
  EXPECT_EQ(Template::Parse("{{join .Config.Cmd \" \"}}")->Render(data), "sh -c x");
  EXPECT_EQ(Template::Parse("{{index .Labels \"a\"}}")->Render(data), "b");
  EXPECT_EQ(Template::Parse("{{.Config.Cmd}}")->Render(data), "[sh -c x]");
  EXPECT_EQ(Template::Parse("{{.Missing}}")->Render(data), "<no value>");
  // Go's text/template matches struct fields case-insensitively; the JSON keys stand in.
  EXPECT_EQ(Template::Parse("{{.state.exitcode}}")->Render(data), "3");
  EXPECT_EQ(Template::Parse("{{.ID}}\\t{{.Names}}")->Render(data), "abc\tweb");
}

TEST(TemplateTest, TableHeaders) {
  auto t = Template::Parse("table {{.ID}}\t{{.RunningFor}}\t{{.Names}}");
  ASSERT_TRUE(t.has_value());
  EXPECT_TRUE(t->is_table());
  Json headers;
  headers["ID"] = "CONTAINER ID";
  EXPECT_EQ(t->Header(headers), "CONTAINER ID\tRUNNING FOR\tNAMES");
}

TEST(TemplateTest, UnsupportedActionsAreClearErrors) {
  for (const char* bad : {"{{range .Mounts}}{{.Source}}{{end}}", "{{if .State.Running}}x{{end}}",
                          "{{.ID | printf \"%s\"}}", "{{.ID", "{{$x := .ID}}"}) {
    auto t = Template::Parse(bad);
    ASSERT_FALSE(t.has_value()) << bad;
    EXPECT_EQ(t.error().kind, ErrorKind::kInvalidArgument);
    EXPECT_NE(t.error().message.find("template"), std::string::npos) << t.error().message;
  }
}

}  // namespace
}  // namespace moat::cli
