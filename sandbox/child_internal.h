// What the files of the child between clone and exec share (child.cc, child_paths.cc,
// child_overlay.cc):
// the failure reporting and the path resolution flags. Async-signal-safe only.
#pragma once

#include <linux/openat2.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "sandbox/plan.h"
#include "sandbox/status.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::sandbox {

constexpr uint64_t kInRoot = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
constexpr uint64_t kBeneathNoLinks = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

struct Child {
  const ChildPlan& plan;
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

// The overlay root on the mount point, returned as an O_PATH fd (child_overlay.cc): as root by
// mount(2), in a user namespace from the fds the parent opened.
int mount_overlay(const Child& c);
int mount_overlay_from_fds(const Child& c);

// Hide the leaky paths of /proc and /sys (kMaskedPaths), and make kReadOnlyPaths read-only,
// beneath the container's root `rootfd` (sandrun's own proc and sysfs are mounted there).
void mask_paths(const Child& c, int rootfd);
void readonly_paths(const Child& c, int rootfd);

}  // namespace sandrun::sandbox
