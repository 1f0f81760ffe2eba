// A classic BPF interpreter for seccomp programs, as the kernel runs them: lets tests check what
// a compiled filter answers for any (arch, nr, args) without the kernel having that ABI at all
// (an i386 system call on a host without ia32 emulation, an x32 one on a kernel without x32).
#pragma once

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

namespace sandrun::testing {

// The seccomp_data a system call presents to the filter.
inline struct seccomp_data syscall_data(uint32_t arch, int nr, std::initializer_list<uint64_t> args = {}) {
  struct seccomp_data d;
  std::memset(&d, 0, sizeof d);
  d.arch = arch;
  d.nr = nr;
  size_t i = 0;
  for (uint64_t a : args) {
    if (i < 6) d.args[i++] = a;
  }
  return d;
}

// Runs `prog` on `data` and returns its SECCOMP_RET_* value, or nullopt for a program the kernel
// would refuse (an instruction outside the subset the seccomp verifier accepts, a jump or a
// load out of bounds, falling off the end).
inline std::optional<uint32_t> bpf_run(const struct sock_fprog& prog, const struct seccomp_data& data) {
  uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = {};
  const auto load = [&](uint32_t k) -> std::optional<uint32_t> {
    if (k % 4 != 0 || k + 4 > sizeof data) return std::nullopt;  // seccomp allows aligned 32-bit loads only
    uint32_t w;
    std::memcpy(&w, reinterpret_cast<const char*>(&data) + k, 4);
    return w;
  };
  for (size_t pc = 0; pc < prog.len; ++pc) {
    const struct sock_filter& in = prog.filter[pc];
    const uint32_t src = BPF_SRC(in.code) == BPF_X ? x : in.k;
    switch (BPF_CLASS(in.code)) {
      case BPF_LD:
        if (in.code == (BPF_LD | BPF_W | BPF_ABS)) {
          auto w = load(in.k);
          if (!w) return std::nullopt;
          a = *w;
        } else if (in.code == (BPF_LD | BPF_IMM)) {
          a = in.k;
        } else if (in.code == (BPF_LD | BPF_MEM) && in.k < BPF_MEMWORDS) {
          a = mem[in.k];
        } else if (in.code == (BPF_LD | BPF_W | BPF_LEN)) {
          a = sizeof data;
        } else {
          return std::nullopt;
        }
        break;
      case BPF_LDX:
        if (in.code == (BPF_LDX | BPF_IMM)) x = in.k;
        else if (in.code == (BPF_LDX | BPF_MEM) && in.k < BPF_MEMWORDS) x = mem[in.k];
        else if (in.code == (BPF_LDX | BPF_W | BPF_LEN)) x = sizeof data;
        else return std::nullopt;
        break;
      case BPF_ST:
        if (in.k >= BPF_MEMWORDS) return std::nullopt;
        mem[in.k] = a;
        break;
      case BPF_STX:
        if (in.k >= BPF_MEMWORDS) return std::nullopt;
        mem[in.k] = x;
        break;
      case BPF_ALU:
        switch (BPF_OP(in.code)) {
          case BPF_ADD: a += src; break;
          case BPF_SUB: a -= src; break;
          case BPF_MUL: a *= src; break;
          case BPF_DIV: if (src == 0) return 0u; a /= src; break;  // the kernel returns 0 (kill)
          case BPF_MOD: if (src == 0) return 0u; a %= src; break;
          case BPF_OR: a |= src; break;
          case BPF_AND: a &= src; break;
          case BPF_XOR: a ^= src; break;
          case BPF_LSH: a = src < 32 ? a << src : 0; break;
          case BPF_RSH: a = src < 32 ? a >> src : 0; break;
          case BPF_NEG: a = 0u - a; break;
          default: return std::nullopt;
        }
        break;
      case BPF_JMP: {
        size_t next;
        if (BPF_OP(in.code) == BPF_JA) {
          next = pc + 1 + in.k;
        } else {
          bool taken;
          switch (BPF_OP(in.code)) {
            case BPF_JEQ: taken = a == src; break;
            case BPF_JGT: taken = a > src; break;
            case BPF_JGE: taken = a >= src; break;
            case BPF_JSET: taken = (a & src) != 0; break;
            default: return std::nullopt;
          }
          next = pc + 1 + (taken ? in.jt : in.jf);
        }
        if (next >= prog.len) return std::nullopt;
        pc = next - 1;
        break;
      }
      case BPF_RET:
        if (BPF_RVAL(in.code) == BPF_K) return in.k;
        if (BPF_RVAL(in.code) == BPF_A) return a;
        return std::nullopt;
      case BPF_MISC:
        if (BPF_MISCOP(in.code) == BPF_TAX) x = a;
        else if (BPF_MISCOP(in.code) == BPF_TXA) a = x;
        else return std::nullopt;
        break;
      default:
        return std::nullopt;
    }
  }
  return std::nullopt;
}

// "ALLOW", "ERRNO(38)", "KILL_PROCESS", ... for messages.
inline std::string seccomp_ret_name(std::optional<uint32_t> ret) {
  if (!ret) return "(invalid program)";
  const uint32_t data = *ret & SECCOMP_RET_DATA;
  switch (*ret & SECCOMP_RET_ACTION_FULL) {
    case SECCOMP_RET_ALLOW: return "ALLOW";
    case SECCOMP_RET_ERRNO: return "ERRNO(" + std::to_string(data) + ")";
    case SECCOMP_RET_KILL_PROCESS: return "KILL_PROCESS";
    case SECCOMP_RET_KILL_THREAD: return "KILL_THREAD";
    case SECCOMP_RET_TRAP: return "TRAP";
    case SECCOMP_RET_TRACE: return "TRACE";
    case SECCOMP_RET_LOG: return "LOG";
    default: return "0x" + std::to_string(*ret);
  }
}

}  // namespace sandrun::testing
