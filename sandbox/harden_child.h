// Async-signal-safe hardening steps for the child between clone and exec: capabilities,
// no_new_privs, seccomp and rlimits. Raw system calls only: no errno, no allocation, no libc
// state, because the child may share its parent's memory (and so its errno) until exec.
#pragma once

#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/prctl.h>
#include <linux/seccomp.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstdint>

#include "sandbox/capabilities.h"

#if !defined(__x86_64__)
#error "sandbox/harden_child.h issues raw x86_64 system calls"
#endif

namespace sandrun::sandbox::harden {

// Returns the raw kernel result: >= 0 on success, -errno on failure.
inline long raw_syscall(long nr, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0) {
  long ret;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8)
                   : "rcx", "r11", "memory");
  return ret;
}

// 0 on success, the errno value otherwise.
inline int errno_of(long ret) { return ret < 0 ? static_cast<int>(-ret) : 0; }

// Drops every capability outside `keep` from the bounding set, which limits what any later
// exec can gain (a root command gets exactly the bounding set). Needs CAP_SETPCAP: call it
// before a switch to another user.
inline int drop_bounding_set(CapSet keep, int last_cap) {
  for (int cap = 0; cap <= last_cap && cap < 64; ++cap) {
    if (keep & (CapSet{1} << cap)) continue;
    const long r = raw_syscall(SYS_prctl, PR_CAPBSET_DROP, cap);
    if (r < 0 && r != -EINVAL) return errno_of(r);  // EINVAL: this kernel lacks the capability
  }
  return 0;
}

// Permitted = effective = `keep`; inheritable and ambient empty (non-empty inheritable sets
// were CVE-2022-24769 in moby and CVE-2022-27650 in crun). After a switch from root to another
// user the kernel has emptied permitted and effective already: pass 0 then.
inline int set_capabilities(CapSet keep) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  data[0].effective = data[0].permitted = static_cast<uint32_t>(keep);
  data[1].effective = data[1].permitted = static_cast<uint32_t>(keep >> 32);
  if (const long r = raw_syscall(SYS_capset, reinterpret_cast<long>(&header), reinterpret_cast<long>(data)); r < 0) {
    return errno_of(r);
  }
  const long r = raw_syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL);
  return r == -EINVAL ? 0 : errno_of(r);  // EINVAL: no ambient capabilities (kernel < 4.3)
}

// Both of the above, for a process that stays root.
inline int drop_capabilities(CapSet keep, int last_cap) {
  if (int err = drop_bounding_set(keep, last_cap)) return err;
  return set_capabilities(keep);
}

// Setuid binaries and file capabilities raise nothing after this; it also lets an
// unprivileged process load a seccomp filter.
inline int set_no_new_privs() { return errno_of(raw_syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1)); }

// Installs a compiled filter (SeccompFilter::prog()). Needs no_new_privs or CAP_SYS_ADMIN.
// A null program means unconfined: nothing to do.
inline int load_seccomp(const struct sock_fprog* prog) {
  if (prog == nullptr) return 0;
  return errno_of(raw_syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, reinterpret_cast<long>(prog)));
}

inline int set_rlimit(int resource, uint64_t soft, uint64_t hard) {
  // The kernel's struct rlimit64, declared here: glibc's has the same name in <sys/resource.h>.
  struct {
    uint64_t soft, hard;
  } limit = {soft, hard};
  return errno_of(raw_syscall(SYS_prlimit64, 0, resource, reinterpret_cast<long>(&limit), 0));
}

}  // namespace sandrun::sandbox::harden
