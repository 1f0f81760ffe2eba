// The seccomp compiler: a profile (rules by syscall name) -> libseccomp -> a BPF program for
// x86_64 with a hand-written prefix that refuses other ABIs and syscalls the profile cannot
// know; plus the per-process cache of compiled filters.
#include "sandbox/seccomp_filter.h"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <optional>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"
#include "sandbox/sys/unique_fd.h"

#if !defined(__x86_64__)
#error "the seccomp compiler targets x86_64 only"
#endif

namespace sandrun::sandbox {

SeccompFilter::SeccompFilter(std::vector<struct sock_filter> code, std::string description, SeccompStats stats)
    : code_(std::move(code)), description_(std::move(description)), stats_(stats) {
  prog_.len = static_cast<unsigned short>(code_.size());
  prog_.filter = code_.data();
}

namespace seccomp_profile {
namespace {

// Syscalls newer than the libseccomp this is built with (Debian 12 ships 2.5.4, which stops at
// futex_requeue = 456) that Docker's profile names. Without them the profile would refuse what
// Docker allows on current kernels. Numbers from the kernel's syscall_64.tbl.
struct NewSyscall {
  const char* name;
  int nr;
};
constexpr NewSyscall kNewerThanLibseccomp[] = {
    {"cachestat", 451},     {"fchmodat2", 452},         {"map_shadow_stack", 453},
    {"futex_wake", 454},    {"futex_wait", 455},        {"futex_requeue", 456},
    {"statmount", 457},     {"listmount", 458},         {"lsm_get_self_attr", 459},
    {"lsm_set_self_attr", 460}, {"lsm_list_modules", 461}, {"mseal", 462},
    {"setxattrat", 463},    {"getxattrat", 464},        {"listxattrat", 465},
    {"removexattrat", 466}, {"uretprobe", 335},
};

// The x86_64 number of a syscall name; -1 when it is not an x86_64 syscall we know.
int resolve(const std::string& name) {
  const int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, name.c_str());
  if (nr >= 0) return nr;  // negative: unknown, or a pseudo number for another ABI's syscall
  for (const NewSyscall& s : kNewerThanLibseccomp) {
    if (name == s.name) return s.nr;
  }
  return -1;
}

// Every number libseccomp has a name for on x86_64, computed once.
const std::set<int>& libseccomp_known() {
  static const std::set<int> known = [] {
    std::set<int> out;
    for (int nr = 0; nr < 1024; ++nr) {
      if (char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr)) {
        out.insert(nr);
        std::free(name);
      }
    }
    return out;
  }();
  return known;
}

uint32_t to_scmp(const Action& a) {
  switch (a.kind) {
    case Action::kAllow: return SCMP_ACT_ALLOW;
    case Action::kErrno: return SCMP_ACT_ERRNO(a.errno_ret);
    case Action::kKillProcess: return SCMP_ACT_KILL_PROCESS;
    case Action::kKillThread: return SCMP_ACT_KILL_THREAD;
    case Action::kTrap: return SCMP_ACT_TRAP;
    case Action::kTrace: return SCMP_ACT_TRACE(a.errno_ret);
    case Action::kLog: return SCMP_ACT_LOG;
  }
  return SCMP_ACT_KILL_PROCESS;
}

scmp_compare to_scmp(Op op) {
  switch (op) {
    case Op::kNe: return SCMP_CMP_NE;
    case Op::kLt: return SCMP_CMP_LT;
    case Op::kLe: return SCMP_CMP_LE;
    case Op::kEq: return SCMP_CMP_EQ;
    case Op::kGe: return SCMP_CMP_GE;
    case Op::kGt: return SCMP_CMP_GT;
    case Op::kMaskedEq: return SCMP_CMP_MASKED_EQ;
  }
  return SCMP_CMP_EQ;
}

struct CtxDeleter {
  void operator()(void* ctx) const { seccomp_release(ctx); }
};
using Ctx = std::unique_ptr<void, CtxDeleter>;

// How each syscall number ended up, for SeccompStats.
struct Seen {
  bool allowed = false, conditional = false, other = false;
};

Result<Ctx> new_context(const Action& default_action) {
  Ctx ctx(seccomp_init(to_scmp(default_action)));
  if (!ctx) return Error::msg("seccomp_init failed");
  // The prefix refuses other ABIs before libseccomp's own check runs; keep both in agreement.
  int rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS));
  if (rc < 0) return Error::sys_code(-rc, "set the seccomp filter's attribute SCMP_FLTATR_ACT_BADARCH");
  // The child sets no_new_privs itself (or loads the filter while it holds CAP_SYS_ADMIN).
  rc = seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
  if (rc < 0) return Error::sys_code(-rc, "set the seccomp filter's attribute SCMP_FLTATR_CTL_NNP");
  // A binary tree of syscall numbers: ~9 comparisons instead of ~300 for a late syscall.
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);  // best effort: libseccomp < 2.5 lacks it
  return ctx;
}

Result<void> add_rule(void* ctx, const Rule& rule, int nr) {
  std::vector<scmp_arg_cmp> args;
  for (const ArgCmp& a : rule.args) {
    args.push_back(scmp_arg_cmp{a.index, to_scmp(a.op), a.value, a.value_two});
  }
  const int rc = seccomp_rule_add_exact_array(ctx, to_scmp(rule.action), nr,
                                              static_cast<unsigned>(args.size()), args.data());
  if (rc < 0) return Error::sys_code(-rc, "seccomp rule for {}", rule.name);
  return {};
}

Result<std::vector<struct sock_filter>> export_bpf(void* ctx) {
  UniqueFd fd(::memfd_create("sandrun-seccomp", MFD_CLOEXEC));
  if (!fd) return Error::sys("memfd_create for the seccomp filter");
  // libseccomp 2.5 has no seccomp_export_bpf_mem (2.6 does): go through a memfd.
  if (const int rc = seccomp_export_bpf(ctx, fd.get()); rc < 0) return Error::sys_code(-rc, "export the seccomp filter to {}", fs::fd_path(fd.get()));
  const off_t size = ::lseek(fd.get(), 0, SEEK_END);
  if (size <= 0 || size % sizeof(struct sock_filter) != 0) return Error::msg("seccomp_export_bpf wrote {} bytes", size);
  std::vector<struct sock_filter> code(static_cast<size_t>(size) / sizeof(struct sock_filter));
  char* out = reinterpret_cast<char*>(code.data());
  for (off_t done = 0; done < size;) {
    const ssize_t n = ::pread(fd.get(), out + done, static_cast<size_t>(size - done), done);
    if (n <= 0) return Error::sys("read back the seccomp filter from {}", fs::fd_path(fd.get()));
    done += n;
  }
  return code;
}

// Ranges [first, last] of syscall numbers below the highest known one that nothing knows.
std::vector<std::pair<uint32_t, uint32_t>> unknown_ranges(const std::set<int>& known) {
  std::vector<std::pair<uint32_t, uint32_t>> gaps;
  int expected = 0;
  for (int nr : known) {
    if (nr > expected) gaps.emplace_back(expected, nr - 1);
    expected = nr + 1;
  }
  return gaps;
}

// The prefix: anything but the native ABI (i386 through int 0x80 has AUDIT_ARCH_I386; x32 has
// AUDIT_ARCH_X86_64 with bit 30 set in the number) gets ENOSYS, as on a kernel built without
// those ABIs: a 32-bit program sees "no such syscall" instead of a kill it cannot explain, and
// tests can observe the refusal. With `known`, numbers outside it also get ENOSYS. The rest
// falls through to libseccomp's program. Classic BPF jumps are relative, so prepending is safe.
std::vector<struct sock_filter> native_prefix(const std::set<int>* known) {
  std::vector<struct sock_filter> p;
  std::vector<std::pair<size_t, bool>> to_refuse;  // (instruction, jt?) jumping to the refusal
  p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
  to_refuse.emplace_back(p.size(), false);
  p.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 0));
  p.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
  to_refuse.emplace_back(p.size(), true);
  p.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u /* __X32_SYSCALL_BIT */, 0, 0));
  if (known && !known->empty()) {
    to_refuse.emplace_back(p.size(), true);
    p.push_back(BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, static_cast<uint32_t>(*known->rbegin()), 0, 0));
    for (auto [first, last] : unknown_ranges(*known)) {
      p.push_back(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, first, 0, 1));  // below: next range
      to_refuse.emplace_back(p.size(), false);
      p.push_back(BPF_JUMP(BPF_JMP | BPF_JGT | BPF_K, last, 0, 0));   // within: refuse
    }
  }
  p.push_back(BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0));  // over the refusal, into libseccomp's program
  const size_t refuse = p.size();
  p.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)));
  for (auto [at, jt] : to_refuse) {
    const size_t offset = refuse - at - 1;  // < 255: the prefix has a handful of ranges
    (jt ? p[at].jt : p[at].jf) = static_cast<uint8_t>(offset);
  }
  return p;
}

SeccompStats count(const std::map<int, Seen>& seen, const std::set<int>& known, size_t rules, size_t skipped) {
  SeccompStats s;
  s.rules = rules;
  s.skipped_names = skipped;
  for (const auto& [nr, how] : seen) {
    if (how.allowed) ++s.allowed;
    else if (how.conditional) ++s.conditional;
    else if (how.other) ++s.other_action;
  }
  for (int nr : known) s.default_action += seen.count(nr) ? 0 : 1;
  return s;
}

}  // namespace

Result<std::shared_ptr<const SeccompFilter>> compile(const Profile& profile) {
  Ctx ctx = SANDRUN_TRY(new_context(profile.default_action));
  const uint32_t default_action = to_scmp(profile.default_action);
  std::map<int, Seen> seen;
  size_t rules = 0, skipped = 0;
  for (const Rule& rule : profile.rules) {
    const int nr = resolve(rule.name);
    if (nr < 0) {
      ++skipped;
      continue;
    }
    // libseccomp refuses a rule that repeats the default action; it changes nothing anyway.
    if (to_scmp(rule.action) == default_action) continue;
    SANDRUN_TRY(add_rule(ctx.get(), rule, nr));
    ++rules;
    Seen& s = seen[nr];
    if (!rule.args.empty()) s.conditional = true;
    else if (rule.action.kind == Action::kAllow) s.allowed = true;
    else s.other = true;
  }
  std::set<int> known = libseccomp_known();
  for (const auto& [nr, how] : seen) known.insert(nr);
  const bool refuses = profile.default_action.kind != Action::kAllow && profile.default_action.kind != Action::kLog;

  std::vector<struct sock_filter> code = native_prefix(refuses ? &known : nullptr);
  const std::vector<struct sock_filter> body = SANDRUN_TRY(export_bpf(ctx.get()));
  code.insert(code.end(), body.begin(), body.end());
  if (code.size() > BPF_MAXINSNS) return Error::msg("seccomp filter has {} instructions, more than the kernel's {}", code.size(), BPF_MAXINSNS);

  SeccompStats stats = count(seen, known, rules, skipped);
  stats.enosys_for_unknown = refuses;
  std::string description = profile.description + " (" + (profile.note.empty() ? "" : profile.note + ", ") +
                            std::to_string(rules) + " rules)";
  return std::make_shared<const SeccompFilter>(std::move(code), std::move(description), stats);
}

}  // namespace seccomp_profile

struct SeccompCache::State {
  std::mutex mu;
  std::map<std::pair<std::string, CapSet>, std::shared_ptr<const SeccompFilter>> filters;
  size_t compiled = 0;
  std::string disk_dir;
};

namespace {

constexpr std::string_view kDiskMagic = "sandrun-bpf-1\n";

uint64_t fnv64(uint64_t h, std::string_view data) {
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  return h;
}

// The name of a compiled filter on disk: everything the program depends on goes into it, the
// sandrun binary itself included (its inode and mtime: a rebuilt sandrun never reads a filter
// an older build compiled), the profile's text for a JSON file, and the capability set.
std::optional<std::string> disk_name(const std::string& profile, CapSet caps) {
  struct stat exe;
  if (::stat("/proc/self/exe", &exe) < 0) return std::nullopt;
  uint64_t h = 1469598103934665603ull;
  h = fnv64(h, fmt::format("{}:{}:{}:{}.{}|{}|{:x}", exe.st_dev, exe.st_ino, exe.st_size, exe.st_mtim.tv_sec,
                           exe.st_mtim.tv_nsec, profile, caps));
  if (profile != "default") {
    auto text = fs::read_file(profile);
    if (!text) return std::nullopt;
    h = fnv64(h, *text);
  }
  return fmt::format("{:016x}.bpf", h);
}

std::shared_ptr<const SeccompFilter> read_disk(const std::string& path) {
  auto data = fs::read_file(path);
  if (!data || data->rfind(kDiskMagic, 0) != 0) return nullptr;
  const size_t nl = data->find('\n', kDiskMagic.size());
  if (nl == std::string::npos) return nullptr;
  const size_t bytes = data->size() - nl - 1;
  if (bytes == 0 || bytes % sizeof(struct sock_filter) != 0 || bytes / sizeof(struct sock_filter) > BPF_MAXINSNS)
    return nullptr;
  std::vector<struct sock_filter> code(bytes / sizeof(struct sock_filter));
  std::memcpy(code.data(), data->data() + nl + 1, bytes);
  return std::make_shared<const SeccompFilter>(std::move(code), data->substr(kDiskMagic.size(), nl - kDiskMagic.size()),
                                               SeccompStats{});
}

void write_disk(const std::string& dir, const std::string& path, const SeccompFilter& f) {
  if (!fs::mkdirs(dir, 0700)) return;
  std::string data(kDiskMagic);
  data += f.description() + "\n";
  data.append(reinterpret_cast<const char*>(f.prog()->filter), f.instructions() * sizeof(struct sock_filter));
  if (auto r = fs::write_file_atomic(path, data, 0600); !r) log::debug("seccomp cache: {}", r.error().message());
}

}  // namespace

void SeccompCache::set_disk_dir(std::string dir) {
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->disk_dir = std::move(dir);
}

SeccompCache::SeccompCache() : state_(std::make_unique<State>()) {}
SeccompCache::~SeccompCache() = default;
SeccompCache::SeccompCache(SeccompCache&&) noexcept = default;
SeccompCache& SeccompCache::operator=(SeccompCache&&) noexcept = default;

Result<std::shared_ptr<const SeccompFilter>> SeccompCache::get(const std::string& profile, CapSet caps) {
  // Compiling under the lock keeps it to once per key; a compile takes about a millisecond.
  std::lock_guard<std::mutex> lock(state_->mu);
  auto key = std::make_pair(profile, caps);
  if (auto it = state_->filters.find(key); it != state_->filters.end()) return it->second;
  std::optional<std::string> path;
  if (!state_->disk_dir.empty()) {
    if (auto name = disk_name(profile, caps)) path = state_->disk_dir + "/" + *name;
  }
  if (path) {
    if (auto loaded = read_disk(*path)) {
      state_->filters.emplace(std::move(key), loaded);
      return loaded;
    }
  }
  auto filter = profile == "default" ? compile_default_seccomp(caps) : compile_seccomp_json(profile, caps);
  if (!filter) return std::move(filter).error();
  ++state_->compiled;
  if (path) write_disk(state_->disk_dir, *path, **filter);
  state_->filters.emplace(std::move(key), *filter);
  return filter;
}

size_t SeccompCache::compiled() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->compiled;
}

}  // namespace sandrun::sandbox
