// What the files of the child between clone and exec share (child.cc, child_paths.cc,
// child_overlay.cc):
// the failure reporting and the path resolution flags. Async-signal-safe only.
#pragma once

#include <linux/openat2.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "sandbox/plan.h"
#include "sandbox/status.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::sandbox {

constexpr uint64_t kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
constexpr uint64_t kBeneathNoLinks = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

// A child's failure between clone and exec: a setup_failed record (the stage, an index, errno)
// on its status pipe, then _exit. Async-signal-safe. The first process's child and an exec's
// report the same way.
struct SetupReporter {
  int status_fd;
  [[noreturn]] void fail(Stage stage, int index = 0) const {
    StatusRecord rec{static_cast<uint32_t>(RecordKind::setup_failed), static_cast<uint32_t>(stage),
                     index, errno};
    ssize_t ignored = ::write(status_fd, &rec, sizeof rec);
    (void)ignored;
    sys::exit_now(1);
  }
  void check(long rc, Stage stage, int index = 0) const {
    if (rc < 0) fail(stage, index);
  }
  // For the harden:: steps, which return an errno value instead of setting errno.
  void check_err(int err, Stage stage, int index = 0) const {
    if (err == 0) return;
    errno = err;
    fail(stage, index);
  }
};

struct Child : SetupReporter {
  const ChildPlan& plan;
  // While /dev and the masks are set up: a descriptor of the attached device source, with the
  // nodes and the empty file (child.cc attach_device_source); -1 otherwise.
  int dev_source = -1;
  // With a terminal (ChildPlan::tty_socket): the pty's slave, which becomes 0, 1 and 2.
  int tty = -1;

};

// Writes the decimal digits of `n` (>= 0) and a NUL into `out` (12 bytes: any int fits); no
// snprintf here, it is not async-signal-safe. Returns the number of digits.
inline size_t format_decimal(char* out, int n) {
  char digits[12];
  size_t nd = 0;
  do {
    digits[nd++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n > 0 && nd < 11);
  for (size_t i = 0; i < nd; ++i) out[i] = digits[nd - 1 - i];
  out[nd] = 0;
  return nd;
}

// "/proc/self/fd/N" or "/proc/self/fd/N/name": an fd (and a name beneath it) as a path for
// mount(2), which then acts on exactly what the fd was opened on (runc's procfd targets). A
// plain MS_BIND costs one call where open_tree and move_mount cost two.
struct FdPath {
  char text[96];
  explicit FdPath(int fd, const char* name = "") {
    size_t len = 0;
    for (const char* p = "/proc/self/fd/"; *p; ++p) text[len++] = *p;
    len += format_decimal(text + len, fd);
    if (*name) text[len++] = '/';
    for (const char* p = name; *p && len + 1 < sizeof text; ++p) text[len++] = *p;
    text[len] = 0;
  }
};

// Opens a pty in the container's /dev/pts (this root's), sends its master on `sock`, sets the
// size and makes the slave our controlling terminal (we must lead a session without one).
// Returns the slave (O_CLOEXEC), or -1 with errno set (child_tty.cc).
int open_terminal(int sock, uint16_t rows, uint16_t cols);

// Every signal back to its default action, none blocked: the command starts as from a shell.
inline void reset_signals() {
  struct KernelSigaction {
    void* handler;
    unsigned long flags;
    void* restorer;
    uint64_t mask;
  } dfl = {};  // SIG_DFL, no flags, empty mask
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig == 9 || sig == 19) continue;  // SIGKILL, SIGSTOP
    ::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, 8);
  }
  uint64_t empty = 0;
  sys::sigprocmask_all(SIG_SETMASK, &empty, nullptr);
}

// The overlay root on the mount point, returned as an O_PATH fd (child_overlay.cc): as root by
// mount(2), in a user namespace from the fds the parent opened.
int mount_overlay(const Child& c);
int mount_overlay_from_fds(const Child& c);

// A copy-on-write volume (BindPlan::overlay_options) on `target`, an O_PATH fd of its mount
// point resolved beneath the container's root. `index` names the bind in a failure.
void mount_bind_overlay(const Child& c, const BindPlan& b, int target, int index);

// Hide the leaky paths of /proc and /sys (kMaskedPaths), and make kReadOnlyPaths read-only,
// beneath the container's root `rootfd` (sandrun's own proc and sysfs are mounted there).
void mask_paths(const Child& c, int rootfd);
void readonly_paths(const Child& c, int rootfd);

}  // namespace sandrun::sandbox
