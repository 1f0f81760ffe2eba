// The container's overlay root, mounted by the child between clone and exec (see child.cc):
// system calls only, no allocation. Built without sanitizers, as child.cc.
#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/syscall.h>

#include "sandbox/child_internal.h"

namespace sandrun::sandbox {
namespace {

// Appends to a fixed buffer; `ok` turns false (and stays) when it is full.
struct Appender {
  char* buf;
  size_t size;
  size_t len = 0;
  bool ok = true;
  void add(const char* s) {
    for (; *s; ++s) {
      if (len + 1 >= size) {
        ok = false;
        return;
      }
      buf[len++] = *s;
    }
    buf[len] = 0;
  }
  void add_number(int n) {
    char text[12];
    format_decimal(text, n);
    add(text);
  }
};

// An image with more layers than fit in the option string as paths (ChildPlan::ovl_layer_paths):
// each layer dir is opened here, in the container's mount namespace (overlayfs takes lower
// layers only from the mounter's own namespace), and named by its fd number relative to
// /proc/self/fd. 500 layers take 2.5 KiB that way instead of 50.
void mount_overlay_by_fds(const Child& c) {
  const ChildPlan& p = c.plan;
  Appender opts{p.ovl_buffer, p.ovl_buffer_size};
  opts.add("lowerdir=");
  for (size_t i = 0; i < p.novl_layer_paths; ++i) {
    int fd = ::open(p.ovl_layer_paths[i], O_PATH | O_DIRECTORY | O_CLOEXEC);  // gone at exec
    if (fd < 0) c.fail(Stage::mount_overlay, static_cast<int>(i));
    if (i > 0) opts.add(":");
    opts.add_number(fd);
  }
  opts.add(p.ovl_tail);
  if (!opts.ok) {
    errno = E2BIG;
    c.fail(Stage::mount_overlay);
  }
  c.check(::chdir("/proc/self/fd"), Stage::mount_overlay);
  c.check(::mount("overlay", p.root_dir, "overlay", MS_NODEV, p.ovl_buffer), Stage::mount_overlay);
  c.check(::chdir("/"), Stage::mount_overlay);
}

}  // namespace

void mount_bind_overlay(const Child& c, const BindPlan& b, int target, int index) {
  char at[32];
  Appender path{at, sizeof at};
  path.add("/proc/self/fd/");
  path.add_number(target);
  // Named by fd numbers relative to /proc/self/fd (ChildPlan::ovl_lower), in a user namespace.
  if (b.overlay_by_fd) c.check(::chdir("/proc/self/fd"), Stage::bind_overlay, index);
  const unsigned long flags = MS_NOSUID | MS_NODEV | (b.readonly ? MS_RDONLY : 0);
  c.check(::mount("overlay", at, "overlay", flags, b.overlay_options), Stage::bind_overlay, index);
  if (b.overlay_by_fd) c.check(::chdir("/"), Stage::bind_overlay, index);
}

// The root is nodev, like every writable mount a job gets: a device node in the image, or one
// the job makes (it keeps CAP_MKNOD), opens nothing. Only the binds of sandrun's own nodes in
// /dev allow devices.
int mount_overlay(const Child& c) {
  if (c.plan.overlay_options) {
    c.check(::mount("overlay", c.plan.root_dir, "overlay", MS_NODEV, c.plan.overlay_options), Stage::mount_overlay);
  } else {
    mount_overlay_by_fds(c);
  }
  return ::open(c.plan.root_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
}

// The overlay root in a user namespace, built from the fds the parent opened (ChildPlan): the
// container's root may not walk the host's paths to them. The parent's idmapped copies of the
// layers are attached first (over the layer dirs, in our mount namespace only): overlayfs
// clones each lower mount, which it allows only for mounts of the mounter's own namespace.
// Returns the root of the new overlay, attached on the mount point.
int mount_overlay_from_fds(const Child& c) {
  const ChildPlan& p = c.plan;
  for (size_t i = 0; i < p.nlayer_fds; ++i) {
    c.check(::move_mount(p.layer_fds[i], "", p.layer_targets[i], "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
            Stage::layer_idmap, static_cast<int>(i));
  }
  int fsfd = ::fsopen("overlay", FSOPEN_CLOEXEC);
  if (fsfd < 0) c.fail(Stage::mount_overlay);
  // The dirs are named by fd number, relative to here (see ChildPlan::ovl_lower).
  c.check(::chdir("/proc/self/fd"), Stage::mount_overlay);
  size_t len = 0;
  while (p.ovl_lower[len]) ++len;
  if (len < 256) {
    c.check(::fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir", p.ovl_lower, 0), Stage::mount_overlay);
  } else {
    // More than fsconfig() takes in one value: one layer at a time (Linux 6.8 and later).
    for (size_t i = 0; i < p.novl_lower_parts; ++i) {
      c.check(::fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", p.ovl_lower_parts[i], 0), Stage::mount_overlay,
              static_cast<int>(i));
    }
  }
  // Without an upper dir (a read-only root on the mount-point layer) the overlay is read-only.
  if (p.ovl_upper) {
    c.check(::fsconfig(fsfd, FSCONFIG_SET_STRING, "upperdir", p.ovl_upper, 0), Stage::mount_overlay);
    c.check(::fsconfig(fsfd, FSCONFIG_SET_STRING, "workdir", p.ovl_work, 0), Stage::mount_overlay);
    if (p.ovl_volatile) c.check(::fsconfig(fsfd, FSCONFIG_SET_FLAG, "volatile", nullptr, 0), Stage::mount_overlay);
  }
  // Whiteouts and opaque dirs as user.overlay.* xattrs: trusted.* is out of reach here.
  c.check(::fsconfig(fsfd, FSCONFIG_SET_FLAG, "userxattr", nullptr, 0), Stage::mount_overlay);
  c.check(::fsconfig(fsfd, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0), Stage::mount_overlay);
  c.check(::chdir("/"), Stage::mount_overlay);
  int root = ::fsmount(fsfd, FSMOUNT_CLOEXEC, MOUNT_ATTR_NODEV);
  if (root < 0) c.fail(Stage::mount_overlay);
  ::close(fsfd);
  c.check(::move_mount(root, "", p.root_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH), Stage::mount_overlay);
  return root;
}

}  // namespace sandrun::sandbox
