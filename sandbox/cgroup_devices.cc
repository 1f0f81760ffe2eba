// The device policy of a container's cgroup: the standard nodes only. cgroup v1 writes it to the
// devices controller (devices.deny, devices.allow); cgroup v2 has no such files and takes a
// BPF_PROG_TYPE_CGROUP_DEVICE program instead (as runc and crun attach), built here from raw
// instructions and loaded with bpf(2) once per process.
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <mutex>
#include <vector>

#include "sandbox/cgroup_internal.h"

namespace sandrun::sandbox::cgroup::detail {
namespace {

struct Insn {
  static bpf_insn make(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
    bpf_insn i = {};
    i.code = code;
    i.dst_reg = dst & 0xf;
    i.src_reg = src & 0xf;
    i.off = off;
    i.imm = imm;
    return i;
  }
  static bpf_insn load_u32(uint8_t dst, int16_t off) { return make(BPF_LDX | BPF_W | BPF_MEM, dst, BPF_REG_1, off, 0); }
  static bpf_insn and_imm(uint8_t dst, int32_t imm) { return make(BPF_ALU | BPF_AND | BPF_K, dst, 0, 0, imm); }
  static bpf_insn rsh_imm(uint8_t dst, int32_t imm) { return make(BPF_ALU | BPF_RSH | BPF_K, dst, 0, 0, imm); }
  static bpf_insn mov_reg(uint8_t dst, uint8_t src) { return make(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0); }
  static bpf_insn mov_imm(uint8_t dst, int32_t imm) { return make(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm); }
  static bpf_insn jne_imm(uint8_t dst, int32_t imm, int16_t off) { return make(BPF_JMP | BPF_JNE | BPF_K, dst, 0, off, imm); }
  static bpf_insn exit() { return make(BPF_JMP | BPF_EXIT, 0, 0, 0, 0); }
};

uint32_t access_bits(const char* access) {
  uint32_t bits = 0;
  for (const char* a = access; *a; ++a) {
    if (*a == 'r') bits |= BPF_DEVCG_ACC_READ;
    if (*a == 'w') bits |= BPF_DEVCG_ACC_WRITE;
    if (*a == 'm') bits |= BPF_DEVCG_ACC_MKNOD;
  }
  return bits;
}

// The program, as runc's libcontainer/cgroups/devices/ebpf emits it: r2 = device type, r3 =
// requested access, r4 = major, r5 = minor (struct bpf_cgroup_dev_ctx); one block per rule
// that returns 1 (allow) when the device matches and no access beyond the rule's is asked;
// else 0 (deny: the open or mknod fails with EPERM).
std::vector<bpf_insn> device_program_insns() {
  std::vector<bpf_insn> p = {
      Insn::load_u32(BPF_REG_2, 0), Insn::and_imm(BPF_REG_2, 0xffff),
      Insn::load_u32(BPF_REG_3, 0), Insn::rsh_imm(BPF_REG_3, 16),
      Insn::load_u32(BPF_REG_4, 4), Insn::load_u32(BPF_REG_5, 8),
  };
  for (const DeviceRule& r : kAllowedDevices) {
    const int16_t len = static_cast<int16_t>(4 + (r.major != kAny) + (r.minor != kAny) + 2);
    int16_t at = 0;  // index within the block; a jump to the next block skips len - at - 1
    auto skip = [&] { return static_cast<int16_t>(len - at - 1); };
    p.push_back(Insn::jne_imm(BPF_REG_2, r.type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR, skip()));
    ++at;
    p.push_back(Insn::mov_reg(BPF_REG_1, BPF_REG_3));
    ++at;
    p.push_back(Insn::and_imm(BPF_REG_1, static_cast<int32_t>(~access_bits(r.access))));
    ++at;
    p.push_back(Insn::jne_imm(BPF_REG_1, 0, skip()));
    ++at;
    if (r.major != kAny) {
      p.push_back(Insn::jne_imm(BPF_REG_4, r.major, skip()));
      ++at;
    }
    if (r.minor != kAny) {
      p.push_back(Insn::jne_imm(BPF_REG_5, r.minor, skip()));
      ++at;
    }
    p.push_back(Insn::mov_imm(BPF_REG_0, 1));
    p.push_back(Insn::exit());
  }
  p.push_back(Insn::mov_imm(BPF_REG_0, 0));
  p.push_back(Insn::exit());
  return p;
}

long bpf(int cmd, union bpf_attr& attr) { return ::syscall(SYS_bpf, cmd, &attr, sizeof attr); }

// Loaded once; the fd stays open for the process's life (each attach holds its own reference).
Result<int> device_program() {
  static std::mutex mu;
  static int fd = -1;
  static int err = 0;
  std::lock_guard<std::mutex> lock(mu);
  if (fd < 0 && err == 0) {
    const std::vector<bpf_insn> insns = device_program_insns();
    union bpf_attr attr = {};
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = reinterpret_cast<uint64_t>(insns.data());
    attr.insn_cnt = static_cast<uint32_t>(insns.size());
    attr.license = reinterpret_cast<uint64_t>("Apache-2.0");
    // No verifier log: with one, a log longer than its buffer fails the load (ENOSPC).
    __builtin_memcpy(attr.prog_name, "sandrun_devices", 16);
    fd = static_cast<int>(bpf(BPF_PROG_LOAD, attr));
    if (fd < 0) err = errno;
    else ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // not every kernel makes bpf(2) fds close-on-exec
  }
  if (fd < 0) {
    auto e = Error::sys_code(err, "load the cgroup v2 device policy (a BPF_PROG_TYPE_CGROUP_DEVICE program)");
    if (err == EPERM) e.hint("loading BPF programs needs root (CAP_BPF and CAP_SYS_ADMIN)");
    return e;
  }
  return fd;
}

}  // namespace

std::string v1_device_rule(const DeviceRule& r) {
  auto num = [](int n) { return n == kAny ? std::string("*") : std::to_string(n); };
  return fmt::format("{} {}:{} {}", r.type, num(r.major), num(r.minor), r.access);
}

Result<void> device_policy_loads() {
  auto prog = device_program();
  if (!prog) return std::move(prog).error();
  return {};
}

Result<void> attach_device_policy(int cgroup_fd, const std::string& dir) {
  const int prog = SANDRUN_TRY(device_program());
  union bpf_attr attr = {};
  attr.target_fd = static_cast<uint32_t>(cgroup_fd);
  attr.attach_bpf_fd = static_cast<uint32_t>(prog);
  attr.attach_type = BPF_CGROUP_DEVICE;
  // With the programs of the cgroups above (a device is allowed only if every one allows it),
  // as runc does: an ancestor's program attached for overriding would otherwise refuse ours.
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (bpf(BPF_PROG_ATTACH, attr) < 0) return Error::sys("attach the device policy to cgroup {}", dir);
  return {};
}

}  // namespace sandrun::sandbox::cgroup::detail
