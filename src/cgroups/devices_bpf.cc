#include "cgroups/devices_bpf.h"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "base/strings.h"
#include "base/sys/bpf.h"

namespace moat::cgroups {

namespace {

// --- instruction encoders (the kernel's uapi has the opcodes, not the helper macros) ---

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst & 0xf;
  i.src_reg = src & 0xf;
  i.off = off;
  i.imm = imm;
  return i;
}
// dst = imm (64-bit)
bpf_insn MovImm(uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}
// dst = src (64-bit)
bpf_insn MovReg(uint8_t dst, uint8_t src) {
  return Insn(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}
// dst &= imm
bpf_insn AndImm(uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm);
}
// dst >>= imm (logical)
bpf_insn RshImm(uint8_t dst, int32_t imm) {
  return Insn(BPF_ALU64 | BPF_RSH | BPF_K, dst, 0, 0, imm);
}
// dst = *(u32 *)(src + off)
bpf_insn LoadW(uint8_t dst, uint8_t src, int16_t off) {
  return Insn(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0);
}
bpf_insn Exit() { return Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }

constexpr uint8_t kCtx = BPF_REG_1;     // struct bpf_cgroup_dev_ctx *
constexpr uint8_t kType = BPF_REG_3;    // BPF_DEVCG_DEV_BLOCK / BPF_DEVCG_DEV_CHAR
constexpr uint8_t kAccess = BPF_REG_2;  // BPF_DEVCG_ACC_* bits
constexpr uint8_t kMajor = BPF_REG_4;
constexpr uint8_t kMinor = BPF_REG_5;
constexpr uint8_t kTmp = BPF_REG_6;

// Forward jumps to labels, patched in Finish(). The verifier refuses backward jumps (loops)
// and unreachable instructions; the builder below emits neither.
class Assembler {
 public:
  void Emit(bpf_insn i) { insns_.push_back(i); }
  int NewLabel() {
    labels_.push_back(-1);
    return static_cast<int>(labels_.size() - 1);
  }
  void Bind(int label) { labels_[label] = static_cast<int64_t>(insns_.size()); }
  // if (reg <op> imm) goto label
  void JumpIf(uint8_t op, uint8_t reg, int32_t imm, int label) {
    fixups_.push_back({insns_.size(), label});
    Emit(Insn(BPF_JMP | op | BPF_K, reg, 0, 0, imm));
  }
  void Goto(int label) {
    fixups_.push_back({insns_.size(), label});
    Emit(Insn(BPF_JMP | BPF_JA, 0, 0, 0, 0));
  }
  Result<std::vector<bpf_insn>> Finish() {
    for (const auto& f : fixups_) {
      int64_t target = labels_[f.label];
      MOAT_CHECK(target >= 0);
      int64_t off = target - static_cast<int64_t>(f.at) - 1;
      if (off < 0 || off > std::numeric_limits<int16_t>::max())
        return Fail(ErrorKind::kInvalidArgument,
                    "device rules make a program too large (%zu instructions)", insns_.size());
      insns_[f.at].off = static_cast<int16_t>(off);
    }
    return std::move(insns_);
  }

 private:
  struct Fixup {
    size_t at;
    int label;
  };
  std::vector<bpf_insn> insns_;
  std::vector<int64_t> labels_;
  std::vector<Fixup> fixups_;
};

std::string LogTail(const std::string& log) {
  // The verifier's reason is on the last non-empty lines.
  std::string t(TrimWhitespace(log));
  constexpr size_t kMax = 400;
  return t.size() > kMax ? "..." + t.substr(t.size() - kMax) : t;
}

}  // namespace

Result<std::vector<bpf_insn>> BuildDeviceProgram(const std::vector<oci::DeviceCgroupRule>& rules) {
  std::vector<DeviceRule> normal;
  for (const auto& r : rules) {
    MOAT_ASSIGN_OR_RETURN(DeviceRule n, NormalizeDeviceRule(r));
    normal.push_back(n);
  }
  Assembler a;
  // ctx->access_type is (access << 16) | type.
  a.Emit(LoadW(kAccess, kCtx, offsetof(bpf_cgroup_dev_ctx, access_type)));
  a.Emit(MovReg(kType, kAccess));
  a.Emit(AndImm(kType, 0xffff));
  a.Emit(RshImm(kAccess, 16));
  a.Emit(LoadW(kMajor, kCtx, offsetof(bpf_cgroup_dev_ctx, major)));
  a.Emit(LoadW(kMinor, kCtx, offsetof(bpf_cgroup_dev_ctx, minor)));

  for (uint32_t bit : {DeviceRule::kMknod, DeviceRule::kRead, DeviceRule::kWrite}) {
    // Block per access bit: skipped when the bit is not requested; otherwise the last rule
    // covering the bit and matching the device decides: deny returns 0 at once, allow moves on
    // to the next bit.
    int next_bit = a.NewLabel();
    a.Emit(MovReg(kTmp, kAccess));
    a.Emit(AndImm(kTmp, static_cast<int32_t>(bit)));
    a.JumpIf(BPF_JEQ, kTmp, 0, next_bit);
    bool decided = false;
    for (auto it = normal.rbegin(); it != normal.rend() && !decided; ++it) {
      const DeviceRule& r = *it;
      if (!(r.access & bit)) continue;
      int skip = a.NewLabel();
      bool conditional = false;
      if (r.type != 'a') {
        a.JumpIf(BPF_JNE, kType, r.type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, skip);
        conditional = true;
      }
      if (r.major != -1) {
        a.JumpIf(BPF_JNE, kMajor, static_cast<int32_t>(r.major), skip);
        conditional = true;
      }
      if (r.minor != -1) {
        a.JumpIf(BPF_JNE, kMinor, static_cast<int32_t>(r.minor), skip);
        conditional = true;
      }
      if (r.allow) {
        a.Goto(next_bit);
      } else {
        a.Emit(MovImm(BPF_REG_0, 0));
        a.Emit(Exit());
      }
      // A rule matching every device decides the bit: earlier rules would be unreachable code,
      // which the verifier refuses, so they are not emitted.
      if (conditional)
        a.Bind(skip);
      else
        decided = true;
    }
    if (!decided) {  // default deny
      a.Emit(MovImm(BPF_REG_0, 0));
      a.Emit(Exit());
    }
    a.Bind(next_bit);
  }
  a.Emit(MovImm(BPF_REG_0, 1));
  a.Emit(Exit());
  return a.Finish();
}

Result<void> InstallDeviceProgram(int cgroup_fd, const std::vector<bpf_insn>& insns) {
  constexpr const char* kLicense = "MIT";  // no GPL-only helper is called
  auto prog = sys::bpf_prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, insns, kLicense, nullptr);
  if (!prog && prog.error().sys_errno == EINVAL) {
    // Load again with the verifier log, only to explain the refusal.
    std::string log(64 * 1024, '\0');
    auto again = sys::bpf_prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, insns, kLicense, &log);
    if (!again)
      return Fail(ErrorKind::kInvalidArgument, "device cgroup program refused by the verifier: %s",
                  LogTail(log).c_str());
    prog = std::move(again);
  }
  if (!prog) return Fail(std::move(prog).Context("load device cgroup program").error());

  // Programs attached before this one: ours, from an earlier Apply (a cgroup holds at most 64
  // programs per attach type).
  MOAT_ASSIGN_OR_RETURN(std::vector<uint32_t> old_ids,
                        std::move(sys::bpf_prog_query(cgroup_fd, BPF_CGROUP_DEVICE, 64))
                            .Context("list device cgroup programs"));
  MOAT_TRY(
      std::move(sys::bpf_prog_attach(prog->get(), cgroup_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI))
          .Context("attach device cgroup program"));
  for (uint32_t id : old_ids) {
    auto old = sys::bpf_prog_get_fd_by_id(id);
    if (!old && old.error().sys_errno == ENOENT) continue;  // already gone
    if (!old) return Fail(std::move(old).Context("detach old device cgroup program").error());
    auto detached = sys::bpf_prog_detach(old->get(), cgroup_fd, BPF_CGROUP_DEVICE);
    if (!detached && detached.error().sys_errno != ENOENT)
      return std::move(detached).Context("detach old device cgroup program %u", id);
  }
  return Ok();
}

}  // namespace moat::cgroups
