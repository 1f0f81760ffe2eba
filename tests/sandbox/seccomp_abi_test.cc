// The live i386 refusal: a system call through int 0x80 under the default filter gets ENOSYS.
// The i386 entry exists only where the kernel runs ia32 programs (some hosts of the CI's kind
// refuse int 0x80 outright): ci/test.sh probes the host by behaviour and runs this binary there
// when the entry works, and always in the VM of ci/test-cgroup2.sh (Debian's kernel, ia32 on),
// where it must pass (labels vm, needs-ia32; docs/testing.md). seccomp_test checks the compiled
// program for i386 and x32 statically on every host.
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/capabilities.h"
#include "sandbox/harden_child.h"
#include "sandbox/seccomp_filter.h"
#include "tests/support/test_env.h"

namespace sandrun::sandbox {
namespace {

constexpr int kNoEntry = 1000;  // the child died of SIGSEGV: the kernel has no int 0x80 entry

// getpid (20 on i386) through int 0x80 in a forked child, under `filter` (null: none). 0 on
// success, the errno otherwise, kNoEntry when the entry is missing, -1 on a setup failure.
int i386_getpid(const SeccompFilter* filter) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (harden::set_no_new_privs() != 0) ::_exit(250);
    if (filter && harden::load_seccomp(filter->prog()) != 0) ::_exit(251);
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "r8", "r9", "r10", "r11", "memory");
    const int r = static_cast<int>(ret);
    ::_exit(r < 0 && r > -4096 ? -r : 0);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return -1;
  if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGSEGV ? kNoEntry : -1;
  return WEXITSTATUS(status);
}

TEST(SeccompAbiTest, I386SyscallsAreRefusedWithEnosys) {
  const int unfiltered = i386_getpid(nullptr);
  SANDRUN_REQUIRE(unfiltered != kNoEntry, "the kernel has no i386 syscall entry (int 0x80 gets SIGSEGV); "
                                          "ci/test.sh runs this test in its VM instead");
  ASSERT_EQ(unfiltered, 0) << "i386 getpid without a filter";
  auto filter = compile_default_seccomp(default_capabilities());
  ASSERT_TRUE(filter) << filter.error().message();
  EXPECT_EQ(i386_getpid(filter->get()), ENOSYS);
}

}  // namespace
}  // namespace sandrun::sandbox
