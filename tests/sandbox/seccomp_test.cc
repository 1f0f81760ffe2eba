// Seccomp filters tested for real: each case forks, loads a filter (no privilege needed after
// no_new_privs), tries one system call and exits with its errno.
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/capability.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <functional>

#include "sandbox/harden_child.h"
#include "sandbox/seccomp_filter.h"
#include "tests/support/bpf_eval.h"
#include "tests/support/host_state.h"
#include "tests/sandbox/run_filtered.h"
#include "tests/support/test_env.h"

namespace sandrun::sandbox {
namespace {

using sandrun::testing::TempDir;

using seccomp_harness::err;
using seccomp_harness::run_filtered;

int try_mount() { return err(::mount(nullptr, "/", nullptr, 0, nullptr)); }  // EINVAL if permitted
int try_unshare_user() { return err(::unshare(CLONE_NEWUSER)); }
int try_reboot() { return err(::syscall(SYS_reboot, 0xfee1dead, 0 /* bad magic: EINVAL if permitted */, 0, 0)); }

int try_clone_newns() {
  const long r = ::syscall(SYS_clone, CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
  if (r == 0) ::_exit(0);
  if (r > 0) ::waitpid(static_cast<pid_t>(r), nullptr, 0);
  return err(r);
}

int try_setns() {
  const int fd = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  return err(::setns(fd, 0));
}

int try_bpf() {
  union bpf_attr attr = {};
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  return err(::syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
}

int try_perf_event_open() {
  struct perf_event_attr attr = {};
  attr.type = PERF_TYPE_SOFTWARE;
  attr.size = sizeof attr;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  return err(::syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
}

int try_open_by_handle_at() {
  struct {
    unsigned int handle_bytes;
    int handle_type;
    unsigned char f_handle[8];
  } handle = {8, 1, {}};
  return err(::syscall(SYS_open_by_handle_at, AT_FDCWD, &handle, O_RDONLY));
}

int try_io_uring_setup() {
  struct io_uring_params params = {};
  return err(::syscall(SYS_io_uring_setup, 1, &params));
}

class SeccompTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto f = compile_default_seccomp(default_capabilities());
    ASSERT_TRUE(f) << f.error().message();
    filter_ = new std::shared_ptr<const SeccompFilter>(*f);
  }
  static void TearDownTestSuite() {
    delete filter_;
    filter_ = nullptr;
  }
  static const SeccompFilter* filter() { return filter_ ? filter_->get() : nullptr; }

  static std::shared_ptr<const SeccompFilter>* filter_;
};
std::shared_ptr<const SeccompFilter>* SeccompTest::filter_ = nullptr;

TEST_F(SeccompTest, DefaultProfileRefusesDangerousSyscallsWithEperm) {
  ASSERT_NE(filter(), nullptr);
  TempDir dir;  // not a mount point: umount2 on it fails with EINVAL where permitted
  const std::string not_mounted = dir.path();
  const std::vector<std::pair<const char*, std::function<int()>>> cases = {
      {"keyctl", [] { return err(::syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)); }},
      {"add_key", [] { return err(::syscall(SYS_add_key, "user", "sandrun", "x", 1, KEY_SPEC_PROCESS_KEYRING)); }},
      {"request_key", [] { return err(::syscall(SYS_request_key, "user", "sandrun", nullptr, 0)); }},
      {"bpf", try_bpf},
      {"perf_event_open", try_perf_event_open},
      {"userfaultfd", [] { return err(::syscall(SYS_userfaultfd, O_CLOEXEC)); }},
      {"kexec_load", [] { return err(::syscall(SYS_kexec_load, 0, 17, 0, 0xdead0000ul)); }},
      {"init_module", [] { return err(::syscall(SYS_init_module, nullptr, 0, "")); }},
      {"mount", try_mount},
      {"umount2", [&] { return err(::umount2(not_mounted.c_str(), 0)); }},
      {"unshare(CLONE_NEWUSER)", try_unshare_user},
      {"unshare(CLONE_NEWNS)", [] { return err(::unshare(CLONE_NEWNS)); }},
      {"setns", try_setns},
      {"clone(CLONE_NEWNS)", try_clone_newns},
      {"open_by_handle_at", try_open_by_handle_at},
      {"io_uring_setup", try_io_uring_setup},
      {"personality(READ_IMPLIES_EXEC)", [] { return err(::syscall(SYS_personality, READ_IMPLIES_EXEC)); }},
      {"reboot", try_reboot},
      // PTRACE_SEIZE: the same permission check as PTRACE_ATTACH without stopping the test
      // runner should the filter ever let it through.
      {"ptrace(parent)", [] { return err(::syscall(SYS_ptrace, PTRACE_SEIZE, ::getppid(), 0, 0)); }},
      {"process_vm_readv", [] { return err(::syscall(SYS_process_vm_readv, ::getppid(), nullptr, 0, nullptr, 0, 0)); }},
      {"socket(AF_VSOCK)", [] { return err(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0)); }},
      {"socket(AF_ALG)", [] { return err(::socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)); }},
      // The kernel reads the family as an int: the upper half must not hide AF_VSOCK.
      {"socket(1<<32 | AF_VSOCK)", [] { return err(::syscall(SYS_socket, (1L << 32) | AF_VSOCK, SOCK_STREAM, 0)); }},
      {"swapoff", [] { return err(::syscall(SYS_swapoff, "/nonexistent")); }},
      {"pivot_root", [] { return err(::syscall(SYS_pivot_root, "/", "/")); }},
  };
  for (const auto& [name, fn] : cases) EXPECT_EQ(run_filtered(filter(), fn), EPERM) << name;
}

// The same calls without the filter, as root, are not refused with EPERM: the EPERM above comes
// from the filter, and the harmless arguments really are harmless.
TEST_F(SeccompTest, WithoutFilterRootIsNotRefused) {
  SANDRUN_REQUIRE_ROOT();
  EXPECT_EQ(run_filtered(nullptr, try_mount), EINVAL);
  EXPECT_EQ(run_filtered(nullptr, try_reboot), EINVAL);
  EXPECT_EQ(run_filtered(nullptr, try_clone_newns), 0);
  EXPECT_EQ(run_filtered(nullptr, [] { return err(::unshare(CLONE_NEWNS)); }), 0);
}

TEST_F(SeccompTest, Clone3GetsEnosysSoLibcFallsBackToClone) {
  EXPECT_EQ(run_filtered(filter(), [] { return err(::syscall(SYS_clone3, nullptr, 0)); }), ENOSYS);
  EXPECT_EQ(run_filtered(nullptr, [] { return err(::syscall(SYS_clone3, nullptr, 0)); }), EINVAL);
}

// x32 calls enter through the native entry with bit 30 set in the number: the filter sees them
// on every x86_64 kernel, whether or not it runs x32 programs (a kernel without x32 also answers
// ENOSYS, so there the static check below is what shows the filter's part). The i386 entry (int 0x80)
// exists only with ia32 emulation: its live check is seccomp_abi_test (on the host when the
// entry works, in ci's VM on every run); the static check below holds everywhere.
TEST_F(SeccompTest, X32AbiIsRefusedWithEnosys) {
  EXPECT_EQ(run_filtered(filter(), [] { return err(::syscall(0x40000000 | __NR_getpid)); }), ENOSYS);
}

// --- The compiled program, read statically (every host, whatever ABIs its kernel has) ---

uint32_t errno_ret(int e) { return SECCOMP_RET_ERRNO | (static_cast<uint32_t>(e) & SECCOMP_RET_DATA); }

// The interpreter agrees with the kernel on native calls: the static checks below are checks of
// the program the kernel runs, not of a model of it.
TEST_F(SeccompTest, TheBpfInterpreterAgreesWithTheKernelOnNativeCalls) {
  ASSERT_NE(filter(), nullptr);
  const struct sock_fprog& prog = *filter()->prog();
  using sandrun::testing::bpf_run;
  using sandrun::testing::syscall_data;
  EXPECT_EQ(bpf_run(prog, syscall_data(AUDIT_ARCH_X86_64, __NR_getpid)), SECCOMP_RET_ALLOW);
  EXPECT_EQ(bpf_run(prog, syscall_data(AUDIT_ARCH_X86_64, __NR_keyctl)), errno_ret(EPERM));
  EXPECT_EQ(bpf_run(prog, syscall_data(AUDIT_ARCH_X86_64, 1000)), errno_ret(ENOSYS));
  EXPECT_EQ(bpf_run(prog, syscall_data(AUDIT_ARCH_X86_64, __NR_clone3)), errno_ret(ENOSYS));
  // socket(AF_VSOCK) is refused by an argument condition, socket(AF_INET) is not.
  EXPECT_EQ(bpf_run(prog, syscall_data(AUDIT_ARCH_X86_64, __NR_socket, {AF_VSOCK, SOCK_STREAM, 0})), errno_ret(EPERM));
  EXPECT_EQ(bpf_run(prog, syscall_data(AUDIT_ARCH_X86_64, __NR_socket, {AF_INET, SOCK_STREAM, 0})), SECCOMP_RET_ALLOW);
  // The same calls through the kernel.
  EXPECT_EQ(run_filtered(filter(), [] { return err(::syscall(__NR_getpid)); }), 0);
  EXPECT_EQ(run_filtered(filter(), [] { return err(::syscall(1000)); }), ENOSYS);
  EXPECT_EQ(run_filtered(filter(), [] { return err(::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0)); }), EPERM);
}

// Every i386 (AUDIT_ARCH_I386) and x32 (bit 30) system call number, and any other architecture,
// gets ENOSYS from the program, whatever the number and arguments.
void expect_only_native_abi(const SeccompFilter& f, const std::string& what) {
  const struct sock_fprog& prog = *f.prog();
  using sandrun::testing::bpf_run;
  using sandrun::testing::seccomp_ret_name;
  using sandrun::testing::syscall_data;
  size_t wrong = 0;
  for (int nr = 0; nr < 1024 && wrong < 5; ++nr) {
    for (const uint32_t arch : std::initializer_list<uint32_t>{AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM, 0u}) {
      const auto r = bpf_run(prog, syscall_data(arch, nr, {0, 0, 0}));
      if (r != errno_ret(ENOSYS)) {
        ADD_FAILURE() << what << ": arch 0x" << std::hex << arch << std::dec << " nr " << nr << " -> " << seccomp_ret_name(r);
        ++wrong;
      }
    }
    const auto x32 = bpf_run(prog, syscall_data(AUDIT_ARCH_X86_64, 0x40000000 | nr));
    if (x32 != errno_ret(ENOSYS)) {
      ADD_FAILURE() << what << ": x32 nr " << nr << " -> " << seccomp_ret_name(x32);
      ++wrong;
    }
  }
  // i386 getpid (20), execve (11) and socketcall (102): the calls a 32-bit escape would start with.
  for (int nr : {20, 11, 102}) {
    EXPECT_EQ(bpf_run(prog, syscall_data(AUDIT_ARCH_I386, nr)), errno_ret(ENOSYS)) << what << ": i386 nr " << nr;
  }
}

TEST_F(SeccompTest, TheCompiledProgramRefusesEveryI386AndX32CallWithEnosys) {
  ASSERT_NE(filter(), nullptr);
  expect_only_native_abi(*filter(), "default profile");
  auto admin = compile_default_seccomp(default_capabilities() | (CapSet{1} << CAP_SYS_ADMIN));
  ASSERT_TRUE(admin) << admin.error().message();
  expect_only_native_abi(**admin, "default profile with CAP_SYS_ADMIN");
}

TEST_F(SeccompTest, OrdinarySyscallsWork) {
  const std::vector<std::pair<const char*, std::function<int()>>> cases = {
      {"getpid", [] { return err(::getpid()); }},
      {"openat+write", [] {
         const int fd = ::openat(AT_FDCWD, "/dev/null", O_WRONLY | O_CLOEXEC);
         return fd < 0 ? errno : err(::write(fd, "x", 1));
       }},
      {"fork+wait", [] {
         const pid_t pid = ::fork();
         if (pid == 0) ::_exit(7);
         int status = 0;
         if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return errno ? errno : 1;
         return WIFEXITED(status) && WEXITSTATUS(status) == 7 ? 0 : 1;
       }},
      {"clone(SIGCHLD)", [] {
         const long r = ::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
         if (r == 0) ::_exit(0);
         if (r > 0) ::waitpid(static_cast<pid_t>(r), nullptr, 0);
         return err(r);
       }},
      {"socket(AF_INET)", [] { return err(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)); }},
      {"socket(AF_UNIX)", [] { return err(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)); }},
      {"personality(query)", [] { return err(::syscall(SYS_personality, 0xffffffff)); }},
      {"arch_prctl", [] {
         unsigned long fs = 0;
         return err(::syscall(SYS_arch_prctl, 0x1003 /* ARCH_GET_FS */, &fs));
       }},
  };
  for (const auto& [name, fn] : cases) EXPECT_EQ(run_filtered(filter(), fn), 0) << name;
  // CAP_SYS_CHROOT is in the default set, so its group is in the filter (the kernel wants root).
  if (sandrun::testing::is_root()) {
    EXPECT_EQ(run_filtered(filter(), [] { return err(::chroot("/")); }), 0);
  }
}

TEST_F(SeccompTest, SysAdminCapabilityAllowsTheAdminGroup) {
  auto admin = compile_default_seccomp(default_capabilities() | (CapSet{1} << CAP_SYS_ADMIN));
  ASSERT_TRUE(admin) << admin.error().message();
  // unshare(0) does nothing and needs no privilege: only the filter can refuse it.
  const auto unshare_nothing = [] { return err(::unshare(0)); };
  EXPECT_EQ(run_filtered(filter(), unshare_nothing), EPERM);
  EXPECT_EQ(run_filtered(admin->get(), unshare_nothing), 0);
  // clone3 is allowed (EINVAL from the kernel for a zero size), not ENOSYS from the filter.
  EXPECT_EQ(run_filtered(admin->get(), [] { return err(::syscall(SYS_clone3, nullptr, 0)); }), EINVAL);
  // As root the kernel then answers mount(2) itself (EINVAL: no filesystem type).
  if (sandrun::testing::is_root()) {
    EXPECT_EQ(run_filtered(admin->get(), try_mount), EINVAL);
  }
  EXPECT_GT((*admin)->stats().allowed, filter()->stats().allowed);
}

TEST_F(SeccompTest, PtraceNeedsSysPtrace) {
  auto tracer = compile_default_seccomp(default_capabilities() | (CapSet{1} << CAP_SYS_PTRACE));
  ASSERT_TRUE(tracer) << tracer.error().message();
  // PTRACE_TRACEME on itself: permitted by the kernel for anyone, so only the filter refuses.
  const auto traceme = [] { return err(::syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0)); };
  EXPECT_EQ(run_filtered(filter(), traceme), EPERM);
  EXPECT_EQ(run_filtered(tracer->get(), traceme), 0);
}

TEST_F(SeccompTest, SyscallsUnknownToTheProfileGetEnosys) {
  EXPECT_EQ(run_filtered(filter(), [] { return err(::syscall(1000)); }), ENOSYS);
  EXPECT_EQ(run_filtered(filter(), [] { return err(::syscall(400)); }), ENOSYS);  // the 336..423 hole
  EXPECT_EQ(run_filtered(filter(), [] { return err(::syscall(469)); }), ENOSYS);  // file_setattr (6.17), newer than the profile
  // listmount (458) is newer than this libseccomp but in Docker's profile: the kernel answers.
  EXPECT_NE(run_filtered(filter(), [] { return err(::syscall(458, nullptr, nullptr, 0, 0)); }), EPERM);
  // A known syscall the profile does not allow keeps Docker's EPERM.
  EXPECT_EQ(run_filtered(filter(), [] { return err(::syscall(SYS_swapon, "/nonexistent", 0)); }), EPERM);
}

TEST_F(SeccompTest, DefaultProfileCounts) {
  const SeccompStats& s = filter()->stats();
  std::printf("default profile: %zu rules, %zu allowed, %zu conditional, %zu other action, "
              "%zu left to EPERM, %zu names skipped, %zu BPF instructions\n  %s\n",
              s.rules, s.allowed, s.conditional, s.other_action, s.default_action, s.skipped_names,
              filter()->instructions(), filter()->description().c_str());
  EXPECT_GT(s.allowed, 300u);
  EXPECT_EQ(s.conditional, 3u);  // personality, socket, clone
  EXPECT_EQ(s.other_action, 1u);  // clone3 -> ENOSYS
  EXPECT_TRUE(s.enosys_for_unknown);
  EXPECT_LE(filter()->instructions(), 1000u);
  EXPECT_EQ(filter()->prog()->len, filter()->instructions());
  EXPECT_EQ(filter()->description().rfind("default (Docker-equivalent, ", 0), 0u) << filter()->description();
}

// libseccomp's own x86_64 filter treats x32 numbers as a bad architecture (our prefix refuses
// them first; this checks that libseccomp alone would too) and leaves unknown numbers to the
// default action, which is why the prefix adds ENOSYS.
TEST(LibseccompTest, X86_64FilterRefusesX32AsBadArch) {
  const int code = run_filtered(nullptr, [] {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS));
    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getpid), 0);
    seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit_group), 0);
    // What the ASan runtime calls in the child.
    for (int nr : {SCMP_SYS(write), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(madvise), SCMP_SYS(mprotect), SCMP_SYS(sigaltstack)}) {
      seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
    }
    if (seccomp_load(ctx) != 0) return 100;
    if (::syscall(SYS_getpid) < 0) return 101;
    if (err(::syscall(0x40000000 | __NR_getpid)) != ENOSYS) return 102;
    if (err(::syscall(1000)) != EPERM) return 103;
    return 0;
  });
  EXPECT_EQ(code, 0);
}

// --- JSON profiles ---

Result<std::shared_ptr<const SeccompFilter>> compile_text(const TempDir& dir, const std::string& text) {
  const std::string path = dir / "profile.json";
  sandrun::testing::write_file(path, text);
  return compile_seccomp_json(path, default_capabilities());
}

TEST(SeccompJsonTest, AllowAllButChmod) {
  TempDir dir;
  auto f = compile_text(dir, R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
      {"names": ["chmod", "fchmodat", "no_such_syscall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
      {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22, "includes": {"caps": ["CAP_SYS_ADMIN"]}},
      {"names": ["getpgrp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33, "excludes": {"caps": ["CAP_SYS_ADMIN"]}}
    ]})");
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ((*f)->description(), dir / "profile.json" + " (3 rules)");
  EXPECT_EQ((*f)->stats().skipped_names, 1u);  // unknown names are ignored, as Docker does
  EXPECT_FALSE((*f)->stats().enosys_for_unknown);
  const std::string file = dir / "f";
  sandrun::testing::write_file(file, "");
  EXPECT_EQ(run_filtered(f->get(), [&] { return err(::syscall(SYS_chmod, file.c_str(), 0600)); }), EPERM);
  EXPECT_EQ(run_filtered(f->get(), [&] { return err(::syscall(SYS_fchmodat, AT_FDCWD, file.c_str(), 0600)); }), EPERM);
  EXPECT_EQ(run_filtered(f->get(), [&] { return err(::syscall(SYS_fchmod, ::open(file.c_str(), O_RDONLY), 0600)); }), 0);
  EXPECT_EQ(run_filtered(f->get(), [] { return err(::syscall(SYS_getppid)); }), 0);     // needs SYS_ADMIN: not applied
  EXPECT_EQ(run_filtered(f->get(), [] { return err(::syscall(SYS_getpgrp)); }), 33);    // excluded with SYS_ADMIN only
  EXPECT_EQ(run_filtered(f->get(), [] { return err(::syscall(0x40000000 | __NR_getpid)); }), ENOSYS);
}

// A profile that allows everything and names the x86 and x32 architectures still gets a program
// for the native ABI only: the other ABIs are refused, as in the default profile.
TEST(SeccompJsonTest, ArchitecturesOfAProfileDoNotWidenItBeyondTheNativeAbi) {
  TempDir dir;
  auto f = compile_text(dir, R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": []})");
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_EQ(sandrun::testing::bpf_run(*(*f)->prog(), sandrun::testing::syscall_data(AUDIT_ARCH_X86_64, __NR_keyctl)),
            SECCOMP_RET_ALLOW);
  expect_only_native_abi(**f, "allow-all JSON profile");
}

TEST(SeccompJsonTest, ArgumentConditionsOnOneArgumentAreAlternatives) {
  TempDir dir;
  auto f = compile_text(dir, R"({
    "defaultAction": "SCMP_ACT_ERRNO",
    "syscalls": [
      {"names": ["exit_group", "getpid"], "action": "SCMP_ACT_ALLOW"},
      {"names": ["mmap", "munmap", "madvise", "mprotect", "sigaltstack", "write"], "action": "SCMP_ACT_ALLOW",
       "comment": "what the ASan runtime calls in the child"},
      {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
       "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]}
    ]})");
  ASSERT_TRUE(f) << f.error().message();
  EXPECT_TRUE((*f)->stats().enosys_for_unknown);
  EXPECT_EQ(run_filtered(f->get(), [] { return err(::syscall(SYS_personality, 0xffffffff)); }), 0);
  EXPECT_EQ(run_filtered(f->get(), [] { return err(::syscall(SYS_personality, READ_IMPLIES_EXEC)); }), EPERM);
  EXPECT_EQ(run_filtered(f->get(), [] { return err(::syscall(1000)); }), ENOSYS);
  EXPECT_EQ(run_filtered(f->get(), [] { return err(::syscall(SYS_getppid)); }), EPERM);  // defaultErrnoRet absent: EPERM
}

TEST(SeccompJsonTest, ErrorsNameTheFileAndTheProblem) {
  TempDir dir;
  const std::string path = dir / "profile.json";
  auto bad_action = compile_text(dir, R"({"defaultAction": "SCMP_ACT_ERRNO",
    "syscalls": [{"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}, {"names": ["chmod"], "action": "SCMP_ACT_FOO"}]})");
  ASSERT_FALSE(bad_action);
  EXPECT_EQ(bad_action.error().message(), "seccomp profile " + path + ": syscalls[1]: unknown action \"SCMP_ACT_FOO\"");

  auto bad_default = compile_text(dir, R"({"defaultAction": "SCMP_ACT_DENY"})");
  ASSERT_FALSE(bad_default);
  EXPECT_EQ(bad_default.error().message(), "seccomp profile " + path + ": defaultAction: unknown action \"SCMP_ACT_DENY\"");

  auto bad_json = compile_text(dir, "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": [ }\n");
  ASSERT_FALSE(bad_json);
  EXPECT_EQ(bad_json.error().message(),
            "seccomp profile " + path + ": invalid JSON: parse error at line 3, column 17: syntax error "
            "while parsing value - unexpected '}'; expected '[', '{', or a literal");

  auto bad_op = compile_text(dir, R"({"defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_IS"}]}]})");
  ASSERT_FALSE(bad_op);
  EXPECT_EQ(bad_op.error().message(), "seccomp profile " + path + ": syscalls[0]: args[0]: unknown op \"SCMP_CMP_IS\"");

  auto missing = compile_seccomp_json(dir / "missing.json", default_capabilities());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message(), "seccomp profile " + dir / "missing.json" + ": open " + dir / "missing.json" +
                                           ": No such file or directory");
}

TEST(SeccompCacheTest, CompilesEachProfileAndCapabilitySetOnce) {
  TempDir dir;
  const std::string path = dir / "p.json";
  sandrun::testing::write_file(path, R"({"defaultAction": "SCMP_ACT_ALLOW"})");
  SeccompCache cache;
  const CapSet caps = default_capabilities();
  auto a = cache.get("default", caps);
  auto b = cache.get("default", caps);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->get(), b->get());
  ASSERT_TRUE(cache.get("default", caps | (CapSet{1} << CAP_SYS_ADMIN)));
  ASSERT_TRUE(cache.get(path, caps));
  ASSERT_TRUE(cache.get(path, caps));
  EXPECT_FALSE(cache.get(dir / "missing.json", caps));
  EXPECT_EQ(cache.compiled(), 3u);
}

TEST(SeccompCacheTest, ADiskCacheServesTheSameProgramToTheNextProcessAndIgnoresABrokenFile) {
  TempDir dir;
  const std::string disk = dir / "seccomp";
  const CapSet caps = default_capabilities();
  SeccompCache first;
  first.set_disk_dir(disk);
  auto compiled = first.get("default", caps);
  ASSERT_TRUE(compiled) << compiled.error().message();
  EXPECT_EQ(first.compiled(), 1u);
  auto files = sandrun::testing::dir_entries(disk);
  ASSERT_EQ(files.size(), 1u);

  SeccompCache second;  // as in the next `sandrun exec`
  second.set_disk_dir(disk);
  auto loaded = second.get("default", caps);
  ASSERT_TRUE(loaded);
  EXPECT_EQ(second.compiled(), 0u);
  ASSERT_EQ((*loaded)->instructions(), (*compiled)->instructions());
  EXPECT_EQ(std::memcmp((*loaded)->prog()->filter, (*compiled)->prog()->filter,
                        (*compiled)->instructions() * sizeof(struct sock_filter)),
            0);
  EXPECT_EQ((*loaded)->description(), (*compiled)->description());

  sandrun::testing::write_file(disk + "/" + files[0], "sandrun-bpf-1\nbroken\nxyz");  // not whole instructions
  SeccompCache third;
  third.set_disk_dir(disk);
  ASSERT_TRUE(third.get("default", caps));
  EXPECT_EQ(third.compiled(), 1u);
}

}  // namespace
}  // namespace sandrun::sandbox
