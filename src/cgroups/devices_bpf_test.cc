#include "cgroups/devices_bpf.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <set>

namespace moat::cgroups {
namespace {

// A minimal eBPF interpreter for exactly the instructions BuildDeviceProgram emits. It also
// enforces what the kernel verifier would: forward jumps only, every instruction reachable,
// only 4-byte context loads at the three bpf_cgroup_dev_ctx fields, r0 set before exit.
class Interpreter {
 public:
  explicit Interpreter(std::vector<bpf_insn> prog) : prog_(std::move(prog)) {}

  // Statically checks the program; returns an explanation or "".
  std::string Verify() const {
    std::vector<bool> seen(prog_.size(), false);
    std::vector<size_t> work = {0};
    while (!work.empty()) {
      size_t pc = work.back();
      work.pop_back();
      if (pc >= prog_.size()) return "falls off the end at " + std::to_string(pc);
      if (seen[pc]) continue;
      seen[pc] = true;
      const bpf_insn& i = prog_[pc];
      uint8_t cls = BPF_CLASS(i.code);
      if (cls == BPF_JMP) {
        uint8_t op = BPF_OP(i.code);
        if (op == BPF_EXIT) continue;
        if (i.off < 0) return "backward jump at " + std::to_string(pc);
        work.push_back(pc + 1 + static_cast<size_t>(i.off));
        if (op != BPF_JA) work.push_back(pc + 1);
        continue;
      }
      if (cls == BPF_LDX) {
        if (i.code != (BPF_LDX | BPF_MEM | BPF_W) || i.src_reg != BPF_REG_1 ||
            (i.off != 0 && i.off != 4 && i.off != 8))
          return "bad context load at " + std::to_string(pc);
      }
      work.push_back(pc + 1);
    }
    for (size_t pc = 0; pc < prog_.size(); ++pc)
      if (!seen[pc]) return "unreachable instruction " + std::to_string(pc);
    return "";
  }

  // Runs the program for one access; returns r0.
  std::optional<uint64_t> Run(uint32_t type, uint32_t access, uint32_t major, uint32_t minor) {
    uint32_t ctx[3] = {(access << 16) | type, major, minor};
    uint64_t r[11] = {};
    for (size_t pc = 0, steps = 0; pc < prog_.size() && steps < 100000; ++steps) {
      const bpf_insn& i = prog_[pc];
      switch (i.code) {
        case BPF_LDX | BPF_MEM | BPF_W:
          r[i.dst_reg] = ctx[i.off / 4];
          break;
        case BPF_ALU64 | BPF_MOV | BPF_K:
          r[i.dst_reg] = static_cast<uint64_t>(int64_t{i.imm});
          break;
        case BPF_ALU64 | BPF_MOV | BPF_X:
          r[i.dst_reg] = r[i.src_reg];
          break;
        case BPF_ALU64 | BPF_AND | BPF_K:
          r[i.dst_reg] &= static_cast<uint64_t>(int64_t{i.imm});
          break;
        case BPF_ALU64 | BPF_RSH | BPF_K:
          r[i.dst_reg] >>= i.imm;
          break;
        case BPF_JMP | BPF_JA:
          pc += 1 + i.off;
          continue;
        case BPF_JMP | BPF_JEQ | BPF_K:
          pc += 1 + (r[i.dst_reg] == static_cast<uint64_t>(int64_t{i.imm}) ? i.off : 0);
          continue;
        case BPF_JMP | BPF_JNE | BPF_K:
          pc += 1 + (r[i.dst_reg] != static_cast<uint64_t>(int64_t{i.imm}) ? i.off : 0);
          continue;
        case BPF_JMP | BPF_EXIT:
          return r[0];
        default:
          ADD_FAILURE() << "unexpected opcode " << int{i.code};
          return std::nullopt;
      }
      ++pc;
    }
    ADD_FAILURE() << "program did not exit";
    return std::nullopt;
  }

 private:
  std::vector<bpf_insn> prog_;
};

constexpr uint32_t kChar = BPF_DEVCG_DEV_CHAR;
constexpr uint32_t kBlock = BPF_DEVCG_DEV_BLOCK;
constexpr uint32_t kR = BPF_DEVCG_ACC_READ;
constexpr uint32_t kW = BPF_DEVCG_ACC_WRITE;
constexpr uint32_t kM = BPF_DEVCG_ACC_MKNOD;

oci::DeviceCgroupRule Rule(bool allow, std::string type, std::optional<int64_t> major,
                           std::optional<int64_t> minor, std::string access) {
  return {allow, std::move(type), major, minor, std::move(access)};
}

Interpreter Build(const std::vector<oci::DeviceCgroupRule>& rules) {
  auto prog = BuildDeviceProgram(rules);
  EXPECT_TRUE(prog.has_value()) << (prog ? "" : prog.error().message);
  Interpreter in(prog ? *prog : std::vector<bpf_insn>{});
  EXPECT_EQ(in.Verify(), "");
  return in;
}

bool Allowed(Interpreter& in, uint32_t type, uint32_t access, uint32_t major, uint32_t minor) {
  auto r = in.Run(type, access, major, minor);
  EXPECT_TRUE(r.has_value());
  EXPECT_TRUE(!r || *r == 0 || *r == 1);
  return r && *r == 1;
}

TEST(DeviceProgramTest, NoRulesDeniesEverything) {
  Interpreter in = Build({});
  EXPECT_FALSE(Allowed(in, kChar, kR, 1, 3));
  EXPECT_FALSE(Allowed(in, kBlock, kM, 8, 0));
}

TEST(DeviceProgramTest, DenyAllThenAllowList) {
  Interpreter in = Build({
      Rule(false, "a", std::nullopt, std::nullopt, "rwm"),
      Rule(true, "c", 1, 5, "rwm"),                     // /dev/zero
      Rule(true, "c", 136, std::nullopt, "rw"),         // /dev/pts/*
      Rule(true, "", std::nullopt, std::nullopt, "m"),  // mknod of anything
  });
  EXPECT_TRUE(Allowed(in, kChar, kR | kW, 1, 5));
  EXPECT_FALSE(Allowed(in, kChar, kW, 1, 3));   // /dev/null is not in the list
  EXPECT_FALSE(Allowed(in, kBlock, kR, 1, 5));  // type matters
  EXPECT_TRUE(Allowed(in, kChar, kR | kW, 136, 7));
  EXPECT_TRUE(Allowed(in, kChar, kM | kR, 136, 7));  // m from rule 4, r from rule 3
  EXPECT_FALSE(Allowed(in, kChar, kM | kR, 1, 3));   // m allowed, r denied by rule 1
  EXPECT_TRUE(Allowed(in, kBlock, kM, 8, 0));
  EXPECT_TRUE(Allowed(in, kChar, kM, 136, 7));
}

TEST(DeviceProgramTest, LastMatchingRuleWinsPerAccessBit) {
  Interpreter in = Build({
      Rule(true, "c", std::nullopt, std::nullopt, "rwm"),
      Rule(false, "c", 1, 3, "w"),
  });
  EXPECT_TRUE(Allowed(in, kChar, kR, 1, 3));        // r: only the first rule covers it
  EXPECT_FALSE(Allowed(in, kChar, kW, 1, 3));       // w: the later deny wins
  EXPECT_FALSE(Allowed(in, kChar, kR | kW, 1, 3));  // every requested bit must be allowed
  EXPECT_TRUE(Allowed(in, kChar, kR | kW, 1, 4));
  EXPECT_FALSE(Allowed(in, kBlock, kR, 8, 0));  // default deny for block devices
}

TEST(DeviceProgramTest, LaterAllowOverridesEarlierDeny) {
  Interpreter in = Build({
      Rule(false, "c", 1, 3, "rwm"),
      Rule(true, "c", 1, std::nullopt, "r"),
      Rule(true, "c", 1, 3, "w"),
  });
  EXPECT_TRUE(Allowed(in, kChar, kR | kW, 1, 3));  // r from rule 2, w from rule 3
  EXPECT_FALSE(Allowed(in, kChar, kM, 1, 3));
  EXPECT_FALSE(Allowed(in, kChar, kW, 1, 4));
}

TEST(DeviceProgramTest, AllowAllAfterDenyAll) {
  // The usual privileged container: a later "a" allow covers everything, and the earlier rules
  // are not emitted (they would be unreachable; Verify() checks).
  Interpreter in = Build({
      Rule(false, "a", std::nullopt, std::nullopt, "rwm"),
      Rule(true, "c", 1, 3, "r"),
      Rule(true, "a", std::nullopt, std::nullopt, "rwm"),
  });
  EXPECT_TRUE(Allowed(in, kChar, kR | kW | kM, 10, 200));
  EXPECT_TRUE(Allowed(in, kBlock, kW, 8, 0));
}

TEST(DeviceProgramTest, DenyAllLastDeniesEverything) {
  Interpreter in = Build({
      Rule(true, "c", 1, 3, "rwm"),
      Rule(false, "a", std::nullopt, std::nullopt, "rwm"),
  });
  EXPECT_FALSE(Allowed(in, kChar, kR, 1, 3));
}

TEST(DeviceProgramTest, RejectsMalformedRules) {
  EXPECT_FALSE(BuildDeviceProgram({Rule(true, "x", 1, 3, "r")}));
  EXPECT_FALSE(BuildDeviceProgram({Rule(true, "c", 1, 3, "rx")}));
  EXPECT_FALSE(BuildDeviceProgram({Rule(true, "c", int64_t{1} << 32, 3, "r")}));
}

TEST(DeviceProgramTest, LargeRuleSetsStillVerify) {
  std::vector<oci::DeviceCgroupRule> rules;
  rules.push_back(Rule(false, "a", std::nullopt, std::nullopt, "rwm"));
  for (int i = 0; i < 200; ++i) rules.push_back(Rule(i % 3 != 0, "c", i, i, "rw"));
  Interpreter in = Build(rules);
  EXPECT_TRUE(Allowed(in, kChar, kR, 4, 4));
  EXPECT_FALSE(Allowed(in, kChar, kR, 3, 3));
  EXPECT_FALSE(Allowed(in, kChar, kR, 4, 5));
}

}  // namespace
}  // namespace moat::cgroups
