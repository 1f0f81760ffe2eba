// Thin wrappers for the system calls glibc 2.36 does not wrap (clone3, openat2, pivot_root).
// Each returns what the raw call returns and sets errno; all are async-signal-safe.
#pragma once

#include <linux/openat2.h>
#include <linux/sched.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>

namespace sandrun::sys {

inline long clone3(struct clone_args* args) {
  return ::syscall(SYS_clone3, args, sizeof(struct clone_args));
}

inline int openat2(int dirfd, const char* path, uint64_t flags, uint64_t mode, uint64_t resolve) {
  struct open_how how = {};
  how.flags = flags;
  how.mode = mode;
  how.resolve = resolve;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
}

// glibc 2.36's <sys/pidfd.h> lacks C linkage for C++; call the kernel directly.
inline int pidfd_send_signal(int pidfd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}
inline int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

inline int pivot_root(const char* new_root, const char* put_old) {
  return static_cast<int>(::syscall(SYS_pivot_root, new_root, put_old));
}

// Blocks or restores every signal of the calling thread, including the ones glibc keeps for
// itself (posix_spawn does the same around its clone).
inline int sigprocmask_all(int how, const void* set, void* old) {
  return static_cast<int>(::syscall(SYS_rt_sigprocmask, how, set, old, 8));
}

[[noreturn]] inline void exit_now(int code) { ::syscall(SYS_exit_group, code); __builtin_unreachable(); }

}  // namespace sandrun::sys
