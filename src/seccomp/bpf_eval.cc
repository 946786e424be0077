#include "seccomp/bpf_eval.h"

#include <cstddef>
#include <cstring>

namespace moat::seccomp {
namespace {

// Reads the 32-bit word at `offset` of seccomp_data in host byte order, as the kernel's
// seccomp_check_filter rewrites BPF_LD|BPF_W|BPF_ABS into a direct load from the struct.
Result<uint32_t> LoadWord(const seccomp_data& data, uint32_t offset) {
  if (offset % 4 != 0 || offset > sizeof(seccomp_data) - sizeof(uint32_t))
    return Fail(ErrorKind::kInvalidArgument, "bpf: load at invalid seccomp_data offset %u", offset);
  uint32_t word;
  std::memcpy(&word, reinterpret_cast<const char*>(&data) + offset, sizeof word);
  return word;
}

Result<uint32_t> Alu(uint16_t op, uint32_t a, uint32_t operand, size_t pc) {
  switch (op) {
    case BPF_ADD:
      return a + operand;
    case BPF_SUB:
      return a - operand;
    case BPF_MUL:
      return a * operand;
    case BPF_DIV:
    case BPF_MOD:
      // The kernel returns 0 from the whole filter on a runtime division by zero in X; a
      // constant zero divisor is rejected at load time. Both count as invalid here.
      if (operand == 0)
        return Fail(ErrorKind::kInvalidArgument, "bpf: division by zero at instruction %zu", pc);
      return op == BPF_DIV ? a / operand : a % operand;
    case BPF_OR:
      return a | operand;
    case BPF_AND:
      return a & operand;
    case BPF_XOR:
      return a ^ operand;
    case BPF_LSH:
      return operand >= 32 ? 0 : a << operand;
    case BPF_RSH:
      return operand >= 32 ? 0 : a >> operand;
    case BPF_NEG:
      return 0u - a;
    default:
      return Fail(ErrorKind::kInvalidArgument, "bpf: bad alu op at instruction %zu", pc);
  }
}

}  // namespace

Result<uint32_t> Evaluate(const std::vector<sock_filter>& program, const seccomp_data& data) {
  if (program.empty()) return Fail(ErrorKind::kInvalidArgument, "bpf: empty program");
  if (program.size() > BPF_MAXINSNS)
    return Fail(ErrorKind::kInvalidArgument, "bpf: %zu instructions exceed the limit of %d",
                program.size(), BPF_MAXINSNS);
  uint32_t a = 0;
  uint32_t x = 0;
  uint32_t mem[BPF_MEMWORDS] = {};
  size_t pc = 0;
  // Every jump is forward, so each instruction runs at most once and the loop terminates.
  while (pc < program.size()) {
    const sock_filter& insn = program[pc];
    const uint16_t code = insn.code;
    const uint32_t k = insn.k;
    switch (BPF_CLASS(code)) {
      case BPF_LD:
      case BPF_LDX: {
        const bool to_x = BPF_CLASS(code) == BPF_LDX;
        uint32_t value;
        if (BPF_MODE(code) == BPF_ABS && BPF_SIZE(code) == BPF_W && !to_x) {
          MOAT_ASSIGN_OR_RETURN(value, LoadWord(data, k));
        } else if (BPF_MODE(code) == BPF_IMM) {
          value = k;
        } else if (BPF_MODE(code) == BPF_MEM) {
          if (k >= BPF_MEMWORDS)
            return Fail(ErrorKind::kInvalidArgument, "bpf: scratch slot %u out of range", k);
          value = mem[k];
        } else if (BPF_MODE(code) == BPF_LEN) {
          value = sizeof(seccomp_data);
        } else {
          return Fail(ErrorKind::kInvalidArgument, "bpf: unsupported load %#x at instruction %zu",
                      code, pc);
        }
        (to_x ? x : a) = value;
        ++pc;
        break;
      }
      case BPF_ST:
      case BPF_STX:
        if (k >= BPF_MEMWORDS)
          return Fail(ErrorKind::kInvalidArgument, "bpf: scratch slot %u out of range", k);
        mem[k] = BPF_CLASS(code) == BPF_ST ? a : x;
        ++pc;
        break;
      case BPF_ALU: {
        const uint32_t operand = BPF_SRC(code) == BPF_X ? x : k;
        MOAT_ASSIGN_OR_RETURN(a, Alu(BPF_OP(code), a, operand, pc));
        ++pc;
        break;
      }
      case BPF_JMP: {
        size_t offset;
        if (BPF_OP(code) == BPF_JA) {
          offset = k;
        } else {
          const uint32_t operand = BPF_SRC(code) == BPF_X ? x : k;
          bool taken;
          switch (BPF_OP(code)) {
            case BPF_JEQ:
              taken = a == operand;
              break;
            case BPF_JGT:
              taken = a > operand;
              break;
            case BPF_JGE:
              taken = a >= operand;
              break;
            case BPF_JSET:
              taken = (a & operand) != 0;
              break;
            default:
              return Fail(ErrorKind::kInvalidArgument, "bpf: bad jump %#x at instruction %zu", code,
                          pc);
          }
          offset = taken ? insn.jt : insn.jf;
        }
        if (offset >= program.size() - pc - 1)
          return Fail(ErrorKind::kInvalidArgument, "bpf: jump past the end at instruction %zu", pc);
        pc += 1 + offset;
        break;
      }
      case BPF_RET:
        if (BPF_RVAL(code) == BPF_K) return k;
        if (BPF_RVAL(code) == BPF_A) return a;
        return Fail(ErrorKind::kInvalidArgument, "bpf: bad return %#x at instruction %zu", code,
                    pc);
      case BPF_MISC:
        if (BPF_MISCOP(code) == BPF_TAX) {
          x = a;
        } else if (BPF_MISCOP(code) == BPF_TXA) {
          a = x;
        } else {
          return Fail(ErrorKind::kInvalidArgument, "bpf: bad misc op %#x at instruction %zu", code,
                      pc);
        }
        ++pc;
        break;
      default:
        return Fail(ErrorKind::kInvalidArgument, "bpf: unknown opcode %#x at instruction %zu", code,
                    pc);
    }
  }
  return Fail(ErrorKind::kInvalidArgument, "bpf: program falls off the end");
}

}  // namespace moat::seccomp
