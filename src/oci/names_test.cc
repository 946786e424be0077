#include "oci/names.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>

#include <csignal>
#include <set>
#include <string>

namespace moat::oci {
namespace {

TEST(CapabilityTest, EveryNameRoundTrips) {
  EXPECT_EQ(LastCapability(), 40);
  std::set<std::string_view> names;
  for (int cap = 0; cap <= LastCapability(); ++cap) {
    std::string_view name = CapabilityName(cap);
    ASSERT_FALSE(name.empty()) << cap;
    EXPECT_TRUE(name.starts_with("CAP_")) << name;
    EXPECT_EQ(CapabilityFromName(name), cap) << name;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), 41u);
}

TEST(CapabilityTest, KnownNumbers) {
  EXPECT_EQ(CapabilityName(0), "CAP_CHOWN");
  EXPECT_EQ(CapabilityName(21), "CAP_SYS_ADMIN");
  EXPECT_EQ(CapabilityName(37), "CAP_AUDIT_READ");
  EXPECT_EQ(CapabilityName(38), "CAP_PERFMON");
  EXPECT_EQ(CapabilityName(39), "CAP_BPF");
  EXPECT_EQ(CapabilityName(40), "CAP_CHECKPOINT_RESTORE");
  EXPECT_EQ(CapabilityName(-1), "");
  EXPECT_EQ(CapabilityName(41), "");
}

TEST(CapabilityTest, LenientSpellings) {
  EXPECT_EQ(CapabilityFromName("CAP_SYS_ADMIN"), 21);
  EXPECT_EQ(CapabilityFromName("SYS_ADMIN"), 21);
  EXPECT_EQ(CapabilityFromName("sys_admin"), 21);
  EXPECT_EQ(CapabilityFromName("cap_net_raw"), 13);
  EXPECT_EQ(CapabilityFromName("Cap_Kill"), 5);
  EXPECT_EQ(CapabilityFromName("CAP_FOO"), std::nullopt);
  EXPECT_EQ(CapabilityFromName("CAP_"), std::nullopt);
  EXPECT_EQ(CapabilityFromName(""), std::nullopt);
  EXPECT_EQ(CapabilityFromName("CAP_CAP_KILL"), std::nullopt);
  EXPECT_EQ(CapabilityFromName("21"), std::nullopt);
  EXPECT_EQ(CapabilityFromName("CAP_SYS_ADMIN "), std::nullopt);
}

TEST(SignalTest, NamesAndNumbers) {
  EXPECT_EQ(SignalFromName("SIGKILL"), SIGKILL);
  EXPECT_EQ(SignalFromName("KILL"), SIGKILL);
  EXPECT_EQ(SignalFromName("kill"), SIGKILL);
  EXPECT_EQ(SignalFromName("sigterm"), SIGTERM);
  EXPECT_EQ(SignalFromName("9"), 9);
  EXPECT_EQ(SignalFromName("1"), 1);
  EXPECT_EQ(SignalFromName("64"), 64);
  EXPECT_EQ(SignalFromName("SIGHUP"), SIGHUP);
  EXPECT_EQ(SignalFromName("SIGUSR1"), SIGUSR1);
  EXPECT_EQ(SignalFromName("WINCH"), SIGWINCH);
  EXPECT_EQ(SignalFromName("SIGCHLD"), SIGCHLD);
  EXPECT_EQ(SignalFromName("SIGIOT"), SIGABRT);
  EXPECT_EQ(SignalFromName("SIGPOLL"), SIGIO);
  EXPECT_EQ(SignalFromName("SIGSYS"), SIGSYS);
}

TEST(SignalTest, RealTime) {
  EXPECT_EQ(SignalFromName("SIGRTMIN"), SIGRTMIN);
  EXPECT_EQ(SignalFromName("RTMIN"), SIGRTMIN);
  EXPECT_EQ(SignalFromName("SIGRTMIN+3"), SIGRTMIN + 3);
  EXPECT_EQ(SignalFromName("RTMIN+3"), SIGRTMIN + 3);
  EXPECT_EQ(SignalFromName("rtmin+0"), SIGRTMIN);
  EXPECT_EQ(SignalFromName("SIGRTMAX"), SIGRTMAX);
  EXPECT_EQ(SignalFromName("SIGRTMAX-2"), SIGRTMAX - 2);
  EXPECT_EQ(SignalFromName("RTMAX-2"), SIGRTMAX - 2);
  EXPECT_EQ(SignalFromName(std::string("SIGRTMIN+") + std::to_string(SIGRTMAX - SIGRTMIN)),
            SIGRTMAX);
  EXPECT_EQ(SignalFromName(std::string("SIGRTMIN+") + std::to_string(SIGRTMAX - SIGRTMIN + 1)),
            std::nullopt);
  EXPECT_EQ(SignalFromName(std::string("SIGRTMAX-") + std::to_string(SIGRTMAX - SIGRTMIN)),
            SIGRTMIN);
  EXPECT_EQ(SignalFromName("SIGRTMAX+1"), std::nullopt);
  EXPECT_EQ(SignalFromName("SIGRTMIN-1"), std::nullopt);
  EXPECT_EQ(SignalFromName("SIGRTMIN+"), std::nullopt);
  EXPECT_EQ(SignalFromName("SIGRTMIN+x"), std::nullopt);
  EXPECT_EQ(SignalFromName("SIGRTMIN3"), std::nullopt);
}

TEST(SignalTest, Rejects) {
  EXPECT_EQ(SignalFromName(""), std::nullopt);
  EXPECT_EQ(SignalFromName("0"), std::nullopt);
  EXPECT_EQ(SignalFromName("65"), std::nullopt);
  EXPECT_EQ(SignalFromName("-9"), std::nullopt);
  EXPECT_EQ(SignalFromName("9x"), std::nullopt);
  EXPECT_EQ(SignalFromName("1000"), std::nullopt);
  EXPECT_EQ(SignalFromName("SIG"), std::nullopt);
  EXPECT_EQ(SignalFromName("SIGFOO"), std::nullopt);
  EXPECT_EQ(SignalFromName("SIGSIGKILL"), std::nullopt);
}

TEST(RlimitTest, AllSixteen) {
  const std::pair<const char*, int> expected[] = {
      {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
      {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME},
  };
  std::set<int> values;
  for (const auto& [name, value] : expected) {
    EXPECT_EQ(RlimitFromName(name), value) << name;
    values.insert(value);
  }
  EXPECT_EQ(values.size(), 16u);
  EXPECT_EQ(RlimitFromName("NOFILE"), std::nullopt);
  EXPECT_EQ(RlimitFromName("rlimit_nofile"), std::nullopt);
  EXPECT_EQ(RlimitFromName("RLIMIT_FOO"), std::nullopt);
}

TEST(NamespaceTest, FlagsAndProcNames) {
  EXPECT_EQ(NamespaceFlag("pid"), CLONE_NEWPID);
  EXPECT_EQ(NamespaceFlag("network"), CLONE_NEWNET);
  EXPECT_EQ(NamespaceFlag("mount"), CLONE_NEWNS);
  EXPECT_EQ(NamespaceFlag("ipc"), CLONE_NEWIPC);
  EXPECT_EQ(NamespaceFlag("uts"), CLONE_NEWUTS);
  EXPECT_EQ(NamespaceFlag("user"), CLONE_NEWUSER);
  EXPECT_EQ(NamespaceFlag("cgroup"), CLONE_NEWCGROUP);
  EXPECT_EQ(NamespaceFlag("time"), 0x80);
  EXPECT_EQ(NamespaceFlag("net"), std::nullopt);
  EXPECT_EQ(NamespaceFlag(""), std::nullopt);

  EXPECT_EQ(NamespaceProcName("pid"), "pid");
  EXPECT_EQ(NamespaceProcName("network"), "net");
  EXPECT_EQ(NamespaceProcName("mount"), "mnt");
  EXPECT_EQ(NamespaceProcName("ipc"), "ipc");
  EXPECT_EQ(NamespaceProcName("uts"), "uts");
  EXPECT_EQ(NamespaceProcName("user"), "user");
  EXPECT_EQ(NamespaceProcName("cgroup"), "cgroup");
  EXPECT_EQ(NamespaceProcName("time"), "time");
  EXPECT_EQ(NamespaceProcName("bogus"), "");
}

}  // namespace
}  // namespace moat::oci
