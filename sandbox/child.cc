// The child between clone and exec: executes a ChildPlan with system calls only.
//
// This runs in a vfork-style child (with a user namespace, a fork-style one that first waits
// for its id maps; see Sandbox::start): on its own stack, in the memory of a multi-threaded
// process (the libuv threadpool exists), so it must be async-signal-safe: no allocation, no locks, no stdio, no glibc wrappers that keep
// per-thread or per-process state (setuid-family calls go straight to the kernel because
// glibc would try to signal the parent's threads). Every failure is reported as one
// StatusRecord {stage, index, errno} on the status pipe, then the child exits.
// This file is built without sanitizers: their runtime cannot follow a child on a private
// stack that shares its parent's memory (see sandbox/CMakeLists.txt).
#include <fcntl.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sandbox/child_internal.h"
#include "sandbox/sys/fd_passing.h"
#include "sandbox/dev_nodes.h"
#include "sandbox/harden_child.h"
#include "sandbox/path_search.h"
#include "sandbox/plan.h"
#include "sandbox/status.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::sandbox {
namespace {


// Opens (creating if missing) a directory directly under `dirfd`; a symlink there is refused
// (ELOOP): sandrun's own mount points are never taken through the image's links.
int own_mountpoint(const Child& c, int dirfd, const char* name, Stage stage) {
  int fd = sys::openat2(dirfd, name, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, kBeneathNoLinks);
  if (fd < 0 && errno == ENOENT) {
    if (::mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST) c.fail(stage);
    fd = sys::openat2(dirfd, name, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, kBeneathNoLinks);
  }
  if (fd < 0) c.fail(stage);
  return fd;
}

// Opens `path` (absolute, inside the root `rootfd`) with symlinks resolved as if `rootfd`
// were "/", creating missing directories (and, when !is_dir, the final file) on the way.
// Returns -1 with errno set on failure.
int open_in_root(int rootfd, const char* path, bool is_dir) {
  const int flags = O_PATH | O_CLOEXEC | (is_dir ? O_DIRECTORY : 0);
  int fd = sys::openat2(rootfd, path, static_cast<uint64_t>(flags), 0, kInRoot);
  if (fd >= 0 || errno != ENOENT) return fd;
  char prefix[4096];
  size_t len = ::strlen(path);
  if (len >= sizeof prefix) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int parent = ::fcntl(rootfd, F_DUPFD_CLOEXEC, 0);
  if (parent < 0) return -1;
  size_t pos = 0;
  while (pos < len) {
    while (pos < len && path[pos] == '/') ++pos;
    size_t end = pos;
    while (end < len && path[end] != '/') ++end;
    if (end == pos) break;
    size_t after = end;
    while (after < len && path[after] == '/') ++after;
    const bool last = after >= len;
    ::memcpy(prefix, path, end);
    prefix[end] = 0;
    char name[256];
    size_t nlen = end - pos;
    if (nlen >= sizeof name) {
      ::close(parent);
      errno = ENAMETOOLONG;
      return -1;
    }
    ::memcpy(name, path + pos, nlen);
    name[nlen] = 0;
    const bool want_dir = !last || is_dir;
    const int pflags = O_PATH | O_CLOEXEC | (want_dir ? O_DIRECTORY : 0);
    int next = sys::openat2(rootfd, prefix, static_cast<uint64_t>(pflags), 0, kInRoot);
    if (next < 0 && errno == ENOENT) {
      int rc;
      if (want_dir) {
        rc = ::mkdirat(parent, name, 0755);
      } else {
        rc = ::openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (rc >= 0) ::close(rc);
      }
      if (rc < 0 && errno != EEXIST) {
        int saved = errno;
        ::close(parent);
        errno = saved;
        return -1;
      }
      next = sys::openat2(rootfd, prefix, static_cast<uint64_t>(pflags), 0, kInRoot);
    }
    ::close(parent);
    if (next < 0) return -1;
    parent = next;
    pos = end;
  }
  return parent;
}

// Creates a mount of `fstype` with string options and attaches it on `target_fd`.
// Returns the mount's root fd (still usable to populate the new file system) or -1.
int mount_new(const char* fstype, const char* const* options, unsigned attrs, int target_fd) {
  int fsfd = ::fsopen(fstype, FSOPEN_CLOEXEC);
  if (fsfd < 0) return -1;
  for (const char* const* o = options; o && o[0]; o += 2) {
    if (::fsconfig(fsfd, FSCONFIG_SET_STRING, o[0], o[1], 0) < 0) {
      int saved = errno;
      ::close(fsfd);
      errno = saved;
      return -1;
    }
  }
  if (::fsconfig(fsfd, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) < 0) {
    int saved = errno;
    ::close(fsfd);
    errno = saved;
    return -1;
  }
  int mfd = ::fsmount(fsfd, FSMOUNT_CLOEXEC, attrs);
  int saved = errno;
  ::close(fsfd);
  if (mfd < 0) {
    errno = saved;
    return -1;
  }
  if (::move_mount(mfd, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
    saved = errno;
    ::close(mfd);
    errno = saved;
    return -1;
  }
  return mfd;
}

// --- The user namespace (sandbox/userns.h) ---

// The overlay's dirs again, now in our mount namespace (fds sandrun opened name mounts of the
// host namespace, which neither overlayfs nor move_mount take here), on the same numbers.
// Still host uid 0, we may walk host root's 0700 state directory as its owner.
void reopen_in_own_namespace(const Child& c) {
  for (size_t i = 0; i < c.plan.nreopen; ++i) {
    int fd = ::open(c.plan.reopen_paths[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) c.fail(Stage::userns_reopen, static_cast<int>(i));
    c.check(::dup3(fd, c.plan.reopen_fds[i], O_CLOEXEC), Stage::userns_reopen, static_cast<int>(i));
    ::close(fd);
  }
}

// Waits for the release: one message on userns_sync once the parent has written our maps, or
// more, carrying the idmapped mounts made with our own user namespace (ChildPlan::own_ns_fds),
// which go onto their reserved numbers. End-of-file: the parent failed; it says why.
void receive_release(const Child& c) {
  const ChildPlan& p = c.plan;
  size_t got = 0;
  do {
    char byte = 0;
    int fds[kFdsPerMessage];
    size_t nfds = 0;
    bool truncated = false;
    if (sys::recv_fds(p.userns_sync, &byte, 1, fds, kFdsPerMessage, &nfds, &truncated) != 1) sys::exit_now(1);
    if (truncated) c.check_err(EMSGSIZE, Stage::layer_idmap, static_cast<int>(got));
    for (size_t i = 0; i < nfds; ++i) {
      if (got >= p.nown_ns_fds) c.check_err(EPROTO, Stage::layer_idmap, static_cast<int>(got));
      c.check(::dup3(fds[i], p.own_ns_fds[got], O_CLOEXEC), Stage::layer_idmap, static_cast<int>(got));
      ::close(fds[i]);
      ++got;
    }
  } while (got < p.nown_ns_fds);
}

// Waits until the parent has written our uid and gid maps, then becomes root of the namespace:
// a child cloned by host root still has host uid 0, which the namespace does not map (it shows
// as nobody and owns nothing in there) until it switches to the namespace's 0.
void enter_user_namespace(const Child& c) {
  const ChildPlan& p = c.plan;
  if (!p.userns) return;
  ::close(p.userns_sync_parent);  // else a dead parent would leave us waiting forever
  receive_release(c);
  ::close(p.userns_sync);
  reopen_in_own_namespace(c);
  if (p.userns_setgroups) c.check(::syscall(SYS_setgroups, 0, nullptr), Stage::userns_root);
  c.check(::syscall(SYS_setresgid, 0, 0, 0), Stage::userns_root);
  c.check(::syscall(SYS_setresuid, 0, 0, 0), Stage::userns_root);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);  // the change of credentials cleared it
}

// devpts refuses gid=5 (EINVAL) when the user namespace does not map gid 5 (rootless without
// subordinate ids); its pts then belong to the container's root group.
int mount_devpts_without_gid(int target) {
  static const char* const kOpts[] = {"ptmxmode", "0666", "mode", "0620", nullptr};
  return mount_new("devpts", kOpts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, target);
}

// A user namespace may mount sysfs only together with a network namespace it owns; with the
// host's network the host's /sys is bound read-only instead (as rootless podman does).
int bind_host_sys(const Child& c, int target) {
  int tree = ::open_tree(AT_FDCWD, "/sys", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (tree < 0) c.fail(Stage::mount_sys);
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
  c.check(::mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr), Stage::mount_sys);
  c.check(::move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH), Stage::mount_sys);
  return tree;
}

// Where the device source (the slot's device directory, or rootless the container's own empty
// file) is attached while /dev and the masks are bound from it; detached and removed before exec.
constexpr const char kDevSource[] = ".sandrun-devices";
constexpr const char kDevSourceEmpty[] = ".sandrun-devices/empty";

// Attaches the source of the container's device nodes and of the masks' empty file at
// /dev/.sandrun-devices and returns a descriptor of it: the parent's read-only mount of the
// slot's device directory, or (rootless, ChildPlan::dev_tree -1) a read-only bind of a
// directory of this /dev holding only an empty file.
int attach_device_source(const Child& c, int dev) {
  c.check(::mkdirat(dev, kDevSource, 0700), Stage::dev_source);
  if (c.plan.dev_tree >= 0) {
    c.check(::move_mount(c.plan.dev_tree, "", dev, kDevSource, MOVE_MOUNT_F_EMPTY_PATH), Stage::dev_source);
    return c.plan.dev_tree;
  }
  int dir = sys::openat2(dev, kDevSource, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, kBeneathNoLinks);
  if (dir < 0) c.fail(Stage::dev_source);
  int f = ::openat(dir, kEmptyFileName, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444);
  if (f < 0) c.fail(Stage::dev_source);
  ::close(f);
  ::close(dir);
  int tree = ::open_tree(dev, kDevSource, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) c.fail(Stage::dev_source);
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
  c.check(::mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof attr), Stage::dev_source);
  c.check(::move_mount(tree, "", dev, kDevSource, MOVE_MOUNT_F_EMPTY_PATH), Stage::dev_source);
  return tree;
}

// Binds node `i` over an empty file in the container's /dev. From the slot's directory the
// bind keeps that mount's flags (read-only, devices allowed) with one mount(2) call. Rootless,
// the host's node (sandrun could not mknod), made read-only as well: the container's root
// does not own it, and must not even try.
void bind_dev_node(const Child& c, int dev, int source, int i) {
  const DevNode& d = kDevNodes[i];
  int f = ::openat(dev, d.name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (f < 0) c.fail(Stage::dev_node, i);
  ::close(f);
  if (c.plan.dev_tree >= 0) {
    c.check(::mount(FdPath(source, d.name).text, FdPath(dev, d.name).text, nullptr, MS_BIND, nullptr), Stage::dev_node, i);
    return;
  }
  char host[32] = "/dev/";
  for (size_t k = 0; d.name[k] && k + 6 < sizeof host; ++k) host[5 + k] = d.name[k];
  int tree = ::open_tree(AT_FDCWD, host, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
  if (tree < 0) c.fail(Stage::dev_node, i);
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;
  c.check(::mount_setattr(tree, "", AT_EMPTY_PATH, &attr, sizeof attr), Stage::dev_node, i);
  c.check(::move_mount(tree, "", dev, d.name, MOVE_MOUNT_F_EMPTY_PATH), Stage::dev_node, i);
  ::close(tree);
}

// /dev: a tmpfs that allows no devices (nodev), holding only binds of the standard nodes, its
// own devpts and shm, and the usual links. Returns the tmpfs's fd; c.dev_source is set.
int setup_dev(Child& c, int rootfd) {
  int target = own_mountpoint(c, rootfd, "dev", Stage::mount_dev);
  static const char* const kDevOpts[] = {"mode", "755", "size", "65536k", nullptr};
  int dev = mount_new("tmpfs", kDevOpts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_STRICTATIME, target);
  if (dev < 0) c.fail(Stage::mount_dev);
  ::close(target);
  c.dev_source = attach_device_source(c, dev);
  for (int i = 0; i < kDevNodeCount; ++i) bind_dev_node(c, dev, c.dev_source, i);
  int pts = own_mountpoint(c, dev, "pts", Stage::mount_devpts);
  // Every devpts mount is a new instance since Linux 4.7: no "newinstance" (which current
  // kernels refuse as a string option, so asking for it cost a failed attempt per container).
  static const char* const kPtsOpts[] = {"ptmxmode", "0666", "mode", "0620", "gid", "5", nullptr};
  int ptsfs = mount_new("devpts", kPtsOpts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC, pts);
  if (ptsfs < 0 && c.plan.userns) ptsfs = mount_devpts_without_gid(pts);
  if (ptsfs < 0) c.fail(Stage::mount_devpts);
  ::close(ptsfs);
  ::close(pts);
  int shm = own_mountpoint(c, dev, "shm", Stage::mount_shm);
  static const char* const kShmOpts[] = {"mode", "1777", "size", "65536k", nullptr};
  int shmfs = mount_new("tmpfs", kShmOpts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, shm);
  if (shmfs < 0) c.fail(Stage::mount_shm);
  ::close(shmfs);
  ::close(shm);
  static const char* const kLinks[][2] = {{"pts/ptmx", "ptmx"},        {"/proc/self/fd", "fd"},
                                          {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
                                          {"/proc/self/fd/2", "stderr"}};
  for (int i = 0; i < 5; ++i) c.check(::symlinkat(kLinks[i][0], dev, kLinks[i][1]), Stage::dev_symlink, i);
  return dev;
}

// The device source has served (nodes and masks are bound): it leaves the container's /dev.
void detach_device_source(Child& c, int dev) {
  c.check(::umount2(FdPath(dev, kDevSource).text, MNT_DETACH), Stage::dev_source);
  // Rootless, the empty file was made in the directory itself, beneath the bind.
  if (c.plan.dev_tree < 0) c.check(::unlinkat(dev, kDevSourceEmpty, 0), Stage::dev_source);
  c.check(::unlinkat(dev, kDevSource, AT_REMOVEDIR), Stage::dev_source);
  ::close(c.dev_source);
  c.dev_source = -1;
}

void setup_binds(const Child& c, int rootfd) {
  for (size_t i = 0; i < c.plan.nbinds; ++i) {
    const BindPlan& b = c.plan.binds[i];
    const int idx = static_cast<int>(i);
    if (b.overlay_options) {
      int target = open_in_root(rootfd, b.target, true);
      if (target < 0) c.fail(Stage::bind_target, idx);
      mount_bind_overlay(c, b, target, idx);
      ::close(target);
      continue;
    }
    if (b.tmpfs_options) {
      int target = open_in_root(rootfd, b.target, true);
      if (target < 0) c.fail(Stage::bind_target, idx);
      int fs = mount_new("tmpfs", b.tmpfs_options,
                         MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (b.readonly ? MOUNT_ATTR_RDONLY : 0), target);
      if (fs < 0) c.fail(Stage::bind_mount, idx);
      ::close(fs);
      ::close(target);
      continue;
    }
    // A tree the parent prepared (idmapped) has its flags set already.
    int tree = b.tree >= 0 ? b.tree : ::open_tree(AT_FDCWD, b.source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (tree < 0) c.fail(Stage::bind_source, idx);
    struct mount_attr attr = {};
    attr.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (b.readonly ? MOUNT_ATTR_RDONLY : 0);
    if (b.tree < 0)
      c.check(::mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr), Stage::bind_readonly, idx);
    int target = open_in_root(rootfd, b.target, b.is_dir);
    if (target < 0) c.fail(Stage::bind_target, idx);
    c.check(::move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
            Stage::bind_mount, idx);
    ::close(target);
    ::close(tree);
  }
}

void setup_mounts(Child& c) {
  // Nothing mounted from here on may propagate back to the host.
  c.check(::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr), Stage::mount_private);
  int rootfd = c.plan.userns ? mount_overlay_from_fds(c) : mount_overlay(c);
  if (rootfd < 0) c.fail(Stage::open_root);

  int proc = own_mountpoint(c, rootfd, "proc", Stage::mount_proc);
  int procfs = mount_new("proc", nullptr, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, proc);
  if (procfs < 0) c.fail(Stage::mount_proc);
  ::close(procfs);
  ::close(proc);

  int dev = setup_dev(c, rootfd);

  int sys_dir = own_mountpoint(c, rootfd, "sys", Stage::mount_sys);
  int sysfs = mount_new("sysfs", nullptr,
                        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, sys_dir);
  if (sysfs < 0 && errno == EPERM && c.plan.userns && !c.plan.new_net) sysfs = bind_host_sys(c, sys_dir);
  if (sysfs < 0) c.fail(Stage::mount_sys);
  ::close(sysfs);
  ::close(sys_dir);

  if (c.plan.mask_paths) {
    mask_paths(c, rootfd);
    readonly_paths(c, rootfd);
  }
  detach_device_source(c, dev);
  ::close(dev);

  int tmp = own_mountpoint(c, rootfd, "tmp", Stage::mount_tmp);
  static const char* const kTmpOpts[] = {"mode", "1777", nullptr};
  int tmpfs = mount_new("tmpfs", kTmpOpts, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, tmp);
  if (tmpfs < 0) c.fail(Stage::mount_tmp);
  ::close(tmpfs);
  ::close(tmp);

  setup_binds(c, rootfd);

  // pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only the
  // container's tree (runc's trick: no put_old directory inside the image is needed).
  c.check(::fchdir(rootfd), Stage::pivot_root);
  c.check(sys::pivot_root(".", "."), Stage::pivot_root);
  c.check(::umount2(".", MNT_DETACH), Stage::pivot_root);
  c.check(::chdir("/"), Stage::pivot_root);
  ::close(rootfd);
}

void bring_up_loopback(const Child& c) {
  int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) c.fail(Stage::loopback);
  struct ifreq ifr = {};
  ::memcpy(ifr.ifr_name, "lo", 3);
  c.check(::ioctl(sock, SIOCGIFFLAGS, &ifr), Stage::loopback);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  c.check(::ioctl(sock, SIOCSIFFLAGS, &ifr), Stage::loopback);
  ::close(sock);
}

void enter_workdir(const Child& c) {
  int root = ::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) c.fail(Stage::workdir);
  int wd = open_in_root(root, c.plan.workdir, true);
  if (wd < 0) c.fail(Stage::workdir);
  c.check(::fchdir(wd), Stage::workdir);
  ::close(wd);
  ::close(root);
}

void switch_user(const Child& c) {
  const ChildPlan& p = c.plan;
  c.check(::syscall(SYS_setgroups, p.ngroups, p.groups), Stage::set_groups);
  c.check(::syscall(SYS_setresgid, p.gid, p.gid, p.gid), Stage::set_gid);
  c.check(::syscall(SYS_setresuid, p.uid, p.uid, p.uid), Stage::set_uid);
}

// Moves the plan's descriptors to 0..4 and closes everything else.
void place_fds(Child& c) {
  const ChildPlan& p = c.plan;
  const int src[5] = {c.tty >= 0 ? c.tty : p.stdin_fd, c.tty >= 0 ? c.tty : p.stdout_fd,
                      c.tty >= 0 ? c.tty : p.stderr_fd, p.status_fd, p.init_fd};
  int high[5];
  // The read ends init keeps go above every number placed below, then to kKeptFdBase.. last.
  int kept[kKeptFdCount] = {-1, -1, -1};
  for (int i = 0; i < kKeptFdCount; ++i) {
    if (p.keep_fds[i] < 0) continue;
    kept[i] = ::fcntl(p.keep_fds[i], F_DUPFD_CLOEXEC, kKeptFdBase + kKeptFdCount);
    if (kept[i] < 0) c.fail(Stage::fds);
  }
  for (int i = 0; i < 5; ++i) {
    high[i] = src[i] < 0 ? -1 : ::fcntl(src[i], F_DUPFD_CLOEXEC, 5);
    if (src[i] >= 0 && high[i] < 0) c.fail(Stage::fds);
  }
  c.status_fd = high[3];
  for (int i = 0; i < 3; ++i) c.check(::dup3(high[i], i, 0), Stage::fds);
  // With an init, it inherits the status pipe; without, the pipe closes on exec (EOF = ok).
  c.check(::dup3(high[3], kStatusFd, p.init_fd >= 0 ? 0 : O_CLOEXEC), Stage::fds);
  c.status_fd = kStatusFd;
  if (high[4] >= 0) c.check(::dup3(high[4], 4, O_CLOEXEC), Stage::fds);
  // The socket factory's end goes to init (inherited across its exec: no CLOEXEC).
  if (p.factory_fd >= 0) {
    const int f = ::fcntl(p.factory_fd, F_DUPFD_CLOEXEC, 6);
    if (f < 0) c.fail(Stage::fds);
    c.check(::dup3(f, kSocketFactoryFd, 0), Stage::fds);
  } else {
    ::close(kSocketFactoryFd);  // a copy made above, or nothing
  }
  // Inherited by init across its exec (it marks them close-on-exec for the command).
  for (int i = 0; i < kKeptFdCount; ++i) {
    if (kept[i] >= 0) c.check(::dup3(kept[i], kKeptFdBase + i, 0), Stage::fds);
  }
  c.check(::close_range(kept[0] >= 0 ? kKeptFdBase + kKeptFdCount : kKeptFdBase, ~0U, 0), Stage::fds);
}

// Joins the container's cgroups (v1; on v2 clone3 placed us already), then unshares a cgroup
// namespace rooted there: one created by clone would be rooted at sandrun's own cgroup.
void join_cgroups(const Child& c) {
  for (size_t i = 0; i < c.plan.ncgroup_procs; ++i) {
    if (::write(c.plan.cgroup_procs[i], "0", 1) != 1) c.fail(Stage::cgroup_join, static_cast<int>(i));
  }
  c.check(::unshare(CLONE_NEWCGROUP), Stage::cgroup_ns);
}

void set_rlimits(const Child& c) {
  c.check_err(harden::set_rlimit(RLIMIT_CORE, c.plan.core_limit, c.plan.core_limit), Stage::rlimit, RLIMIT_CORE);
  if (c.plan.set_nofile) {
    c.check_err(harden::set_rlimit(RLIMIT_NOFILE, c.plan.nofile_soft, c.plan.nofile_hard), Stage::rlimit,
                RLIMIT_NOFILE);
  }
}

void make_root_readonly(const Child& c) {
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_RDONLY;
  c.check(::mount_setattr(AT_FDCWD, "/", 0, &attr, sizeof attr), Stage::readonly_root);
}

}  // namespace

int child_entry(void* plan) { run_child(*static_cast<const ChildPlan*>(plan)); }

void run_child(const ChildPlan& plan) {
  Child c{{plan.status_fd}, plan};
  // First of all: if sandrun dies from here on, so does this child (it is not recorded in its
  // slot yet, so nothing else would stop it). Set again after the credential change below,
  // which clears it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  // A new session without a controlling terminal: /dev/tty in the container must not reach
  // the terminal sandrun was started from (TIOCSTI injection, CVE-2017-5226 class), and a
  // Ctrl-C there reaches sandrun, which decides what the containers get.
  ::syscall(SYS_setsid);
  enter_user_namespace(c);
  join_cgroups(c);
  ::umask(0);
  setup_mounts(c);
  c.check(::syscall(SYS_sethostname, plan.hostname, plan.hostname_len), Stage::hostname);
  if (plan.new_net) bring_up_loopback(c);
  enter_workdir(c);
  // A terminal: a pty of the container's devpts, before the switch of user (the container's
  // root opens it); its master goes to sandrun.
  if (plan.tty_socket >= 0) {
    c.tty = open_terminal(plan.tty_socket, plan.tty_rows, plan.tty_cols);
    if (c.tty < 0) c.fail(Stage::tty);
  }
  if (plan.read_only_rootfs) make_root_readonly(c);
  ::umask(022);
  set_rlimits(c);
  // Without no_new_privs a filter can only be loaded while we hold CAP_SYS_ADMIN, so it goes
  // in before the capabilities go; every call below is allowed by any sane profile.
  if (!plan.no_new_privs) c.check_err(harden::load_seccomp(plan.seccomp), Stage::seccomp);
  // The bounding set goes while we still hold CAP_SETPCAP, before the switch of user.
  c.check_err(harden::drop_bounding_set(plan.capabilities, plan.last_cap), Stage::capabilities);
  if (plan.uid != 0 || plan.gid != 0 || plan.ngroups != 0) switch_user(c);
  // Permitted and effective: the job's for root; for another user the switch emptied them.
  c.check_err(harden::set_capabilities(plan.uid == 0 ? plan.capabilities : 0), Stage::capabilities, -1);
  // Again after the credential change, which clears it. It fires when the thread that cloned
  // us dies (a threadpool thread, which lives as long as sandrun), so a killed sandrun leaves
  // no container running. A container that survives sandrun (the daemon's --live-restore)
  // drops it here, set up: its slot records it from now on, for the next daemon to adopt or
  // for a sweep to end.
  ::prctl(PR_SET_PDEATHSIG, plan.survive_parent ? 0 : SIGKILL, 0, 0, 0);
  if (plan.no_new_privs) c.check_err(harden::set_no_new_privs(), Stage::no_new_privs);
  place_fds(c);
  reset_signals();
  // Last: from here on only execve and, on failure, write and exit are needed.
  if (plan.no_new_privs) c.check_err(harden::load_seccomp(plan.seccomp), Stage::seccomp);
  if (plan.init_fd >= 0) {
    ::execveat(4, "", plan.argv, plan.envp, AT_EMPTY_PATH);
    c.fail(Stage::exec_init);
  }
  const int err = search_path(plan.argv[0], plan.path && *plan.path ? plan.path : "/usr/local/bin:/usr/bin:/bin",
                              [&plan](const char* file) {
                                ::execve(file, plan.argv, plan.envp);
                                return errno;
                              });
  StatusRecord rec{static_cast<uint32_t>(RecordKind::exec_failed),
                   static_cast<uint32_t>(Stage::exec_command), 0, err};
  ssize_t ignored = ::write(kStatusFd, &rec, sizeof rec);
  (void)ignored;
  sys::exit_now(err == ENOENT ? 127 : 126);
}

}  // namespace sandrun::sandbox
