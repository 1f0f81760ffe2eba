// The live i386 refusal: a system call through int 0x80 under the default filter gets ENOSYS.
// The i386 entry exists only where the kernel runs ia32 programs (some hosts of the CI's kind
// refuse int 0x80 outright): ci/test.sh probes the host by behaviour and runs this binary there
// when the entry works, and always in the VM of ci/test-cgroup2.sh (Debian's kernel, ia32 on),
// where it must pass (labels vm, needs-ia32; docs/testing.md). seccomp_test checks the compiled
// program for i386 and x32 statically on every host.
#include <signal.h>

#include <cerrno>

#include "sandbox/capabilities.h"
#include "sandbox/seccomp_filter.h"
#include "tests/sandbox/run_filtered.h"
#include "tests/support/test_env.h"

namespace sandrun::sandbox {
namespace {

using seccomp_harness::kSignalled;
using seccomp_harness::run_filtered;

// getpid (20 on i386) through int 0x80: 0 on success, the errno otherwise. Without the entry
// the kernel sends SIGSEGV.
int i386_getpid() {
  long ret;
  __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "r8", "r9", "r10", "r11", "memory");
  const int r = static_cast<int>(ret);
  return r < 0 && r > -4096 ? -r : 0;
}

TEST(SeccompAbiTest, I386SyscallsAreRefusedWithEnosys) {
  const int unfiltered = run_filtered(nullptr, i386_getpid);
  SANDRUN_REQUIRE(unfiltered != kSignalled + SIGSEGV, "the kernel has no i386 syscall entry (int 0x80 gets SIGSEGV); "
                                                      "ci/test.sh runs this test in its VM instead");
  ASSERT_EQ(unfiltered, 0) << "i386 getpid without a filter";
  auto filter = compile_default_seccomp(default_capabilities());
  ASSERT_TRUE(filter) << filter.error().message();
  EXPECT_EQ(run_filtered(filter->get(), i386_getpid), ENOSYS);
}

}  // namespace
}  // namespace sandrun::sandbox
