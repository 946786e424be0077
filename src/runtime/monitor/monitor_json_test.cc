#include "runtime/monitor/monitor_json.h"

#include <gtest/gtest.h>

#include "runtime/monitor/protocol.h"

namespace moat::runtime::monitor {
namespace {

TEST(MonitorJsonTest, ParsesRequests) {
  auto kill = ParseRequest(R"({"op":"kill","signal":9,"all":true})");
  ASSERT_TRUE(kill) << kill.error().message;
  EXPECT_EQ(kill->op, Op::kKill);
  EXPECT_EQ(kill->signal, 9);
  EXPECT_TRUE(kill->all);

  auto resize = ParseRequest(R"({"op":"exec-resize","exec_id":"ab12","height":40,"width":100})");
  ASSERT_TRUE(resize) << resize.error().message;
  EXPECT_EQ(resize->op, Op::kExecResize);
  EXPECT_EQ(resize->exec_id, "ab12");
  EXPECT_EQ(resize->height, 40);
  EXPECT_EQ(resize->width, 100);

  auto exec = ParseRequest(
      R"({"op":"exec","exec_id":"ff","stdin":true,"process":{"args":["sh"],"cwd":"/","terminal":true}})");
  ASSERT_TRUE(exec) << exec.error().message;
  EXPECT_EQ(exec->op, Op::kExec);
  EXPECT_TRUE(exec->stdin_attached);
  EXPECT_TRUE(exec->process.terminal);
  ASSERT_EQ(exec->process.args.size(), 1u);
  EXPECT_EQ(exec->process.args[0], "sh");

  for (const char* op : {"start", "state", "wait", "pause", "resume", "shutdown"}) {
    auto r = ParseRequest(std::string(R"({"op":")") + op + "\"}");
    EXPECT_TRUE(r) << op;
  }
}

TEST(MonitorJsonTest, RejectsBadRequests) {
  for (const char* bad : {"", "[]", "{", R"({"op":"fly"})", R"({"op":"kill"})",
                          R"({"op":"kill","signal":0})", R"({"op":"kill","signal":"9"})",
                          R"({"op":"exec","exec_id":"../x","process":{"args":["sh"],"cwd":"/"}})",
                          R"({"op":"exec","exec_id":"aa"})",
                          R"({"op":"resize","height":-1,"width":2})", R"({"op":"exec-state"})"}) {
    auto r = ParseRequest(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalidArgument) << bad;
  }
}

TEST(MonitorJsonTest, Replies) {
  StatusRecord s;
  s.status = "stopped";
  s.pid = 12;
  s.monitor_pid = 11;
  s.exit_code = 137;
  s.oom_killed = true;
  s.finished_at = "F";
  EXPECT_EQ(StatusJson(s),
            R"({"error":"","exit_code":137,"finished_at":"F","monitor_pid":11,"oom_killed":true,)"
            R"("pid":12,"started_at":"","status":"stopped"})");
  EXPECT_EQ(WaitReply(s), R"({"exit_code":137,"finished_at":"F","ok":true,"oom_killed":true})");
  EXPECT_NE(StateReply(s).find(R"("ok":true)"), std::string::npos);
  EXPECT_EQ(OkReply(), R"({"ok":true})");
  EXPECT_EQ(PidReply(5), R"({"ok":true,"pid":5})");
  EXPECT_EQ(ExecStateReply(false, 3, 9), R"({"exit_code":3,"ok":true,"pid":9,"running":false})");
  EXPECT_EQ(ErrorReply(MakeError(ErrorKind::kConflict, "busy \xff")),
            "{\"kind\":\"conflict\",\"message\":\"busy \xef\xbf\xbd\",\"ok\":false}");
}

TEST(MonitorJsonTest, AttachHeader) {
  auto h = ParseAttachHeader(R"({"stdin":true,"stderr":true})");
  ASSERT_TRUE(h);
  EXPECT_TRUE(h->stdin_wanted);
  EXPECT_FALSE(h->stdout_wanted);
  EXPECT_TRUE(h->stderr_wanted);
  EXPECT_FALSE(ParseAttachHeader("nope"));
  EXPECT_FALSE(ParseAttachHeader(R"({"stdin":1})"));
}

TEST(MonitorJsonTest, StdcopyFrame) {
  std::string f = StdcopyFrame(Stream::kStderr, std::string(258, 'x'));
  ASSERT_EQ(f.size(), 266u);
  EXPECT_EQ(f.substr(0, 8), std::string("\x02\x00\x00\x00\x00\x00\x01\x02", 8));
}

}  // namespace
}  // namespace moat::runtime::monitor
