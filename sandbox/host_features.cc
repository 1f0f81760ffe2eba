// Kernel and host feature probes for `sandrun doctor`: each tries the real thing where it can
// (in a forked child when it changes namespaces or credentials) and falls back to files in
// /proc otherwise.
#include "sandbox/host_features.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <linux/seccomp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <utility>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/lines.h"
#include "sandbox/sys/process.h"
#include "sandbox/sys/syscalls.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::sandbox::host {
namespace {

constexpr uid_t kNobody = 65534;

// What a probe child reports: the index of the step that failed (-1: all worked) and errno.
struct ChildReport {
  int step = -1;
  int err = 0;
};

// Runs `body` (returning a ChildReport) in a forked child and returns what it reported.
// fork, not clone3: the doctor must also run, and say what is missing, on kernels without
// clone3 or pidfds (sys::Child::adopt_forked then works by pid). The caller is single-threaded
// (the CLI before any loop, or a test), and the body only makes system calls on buffers
// prepared before the fork.
template <typename Body>
ChildReport run_in_child(Body&& body) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return {-2, errno};
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return {-2, e};
  }
  if (pid == 0) {
    ::close(fds[0]);
    ChildReport r = body();
    (void)!::write(fds[1], &r, sizeof r);
    ::_exit(0);
  }
  sys::Child child = sys::Child::adopt_forked(pid, "a probe process");
  ::close(fds[1]);
  ChildReport r{-3, 0};  // no report: the child died before writing one
  ChildReport got;
  ssize_t n;
  while ((n = ::read(fds[0], &got, sizeof got)) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(sizeof got)) r = got;
  ::close(fds[0]);
  (void)child.wait();
  return r;
}

// Turns a child report into a Try, naming the failed step from `steps`.
Try to_try(const ChildReport& r, std::initializer_list<const char*> steps) {
  if (r.step == -1) return {true, 0, ""};
  if (r.step == -2) return {false, r.err, "fork a probe process"};
  if (r.step == -3) return {false, 0, "probe process died"};
  const char* name = static_cast<size_t>(r.step) < steps.size() ? steps.begin()[r.step] : "?";
  return {false, r.err, name};
}

Try try_syscall(long rc, const char* step) {
  if (rc >= 0) return {true, 0, ""};
  return {false, errno, step};
}

std::optional<long> read_long(const std::string& path) {
  auto text = fs::read_file(path);
  if (!text) return std::nullopt;
  long v = 0;
  const char* b = text->data();
  const char* e = b + text->size();
  while (b < e && (*b == ' ' || *b == '\t')) ++b;
  auto [p, ec] = std::from_chars(b, e, v);
  if (ec != std::errc()) return std::nullopt;
  return v;
}

// Child-side helpers: system calls only.
bool write_text(const char* path, const char* text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::write(fd, text, std::strlen(text));
  int e = errno;
  ::close(fd);
  errno = e;
  return n == static_cast<ssize_t>(std::strlen(text));
}

// As root, becomes uid/gid 65534 without supplementary groups and stays dumpable (so that
// /proc/self/uid_map stays ours to write).
bool drop_to_nobody() {
  if (::getuid() != 0 && ::geteuid() != 0) return true;
  if (::setgroups(0, nullptr) < 0 || ::setresgid(kNobody, kNobody, kNobody) < 0 ||
      ::setresuid(kNobody, kNobody, kNobody) < 0)
    return false;
  return ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0;
}

bool executable_in(const std::string& dirs, const char* name, std::string& found, bool& privileged) {
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string path = fs::join(dirs.substr(start, end - start), name);
    struct stat st;
    if (end > start && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0) {
      found = path;
      privileged = (st.st_mode & S_ISUID && st.st_uid == 0) ||
                   ::getxattr(path.c_str(), "security.capability", nullptr, 0) > 0;
      return true;
    }
    start = end + 1;
  }
  return false;
}

}  // namespace

std::optional<KernelVersion> parse_kernel_release(std::string_view release) {
  KernelVersion v;
  v.release = std::string(release);
  const char* p = release.data();
  const char* e = p + release.size();
  auto num = [&](int& out) {
    auto [next, ec] = std::from_chars(p, e, out);
    if (ec != std::errc() || next == p) return false;
    p = next;
    return true;
  };
  if (!num(v.major) || p == e || *p != '.') return std::nullopt;
  ++p;
  if (!num(v.minor)) return std::nullopt;
  if (p != e && *p == '.') {
    ++p;
    if (!num(v.patch)) v.patch = 0;
  }
  return v;
}

KernelVersion kernel_version() {
  struct utsname u;
  if (::uname(&u) < 0) return {};
  if (auto v = parse_kernel_release(u.release)) return *v;
  KernelVersion v;
  v.release = u.release;
  return v;
}

Identity identity() {
  Identity id;
  id.uid = ::getuid();
  id.euid = ::geteuid();
  id.gid = ::getgid();
  struct passwd pw, *found = nullptr;
  char buf[4096];
  if (::getpwuid_r(id.uid, &pw, buf, sizeof buf, &found) == 0 && found) {
    id.user = found->pw_name;
  } else {
    id.user = std::to_string(id.uid);
  }
  return id;
}

Try try_container_namespaces() {
  static constexpr int kFlags[] = {CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWNET, CLONE_NEWCGROUP};
  const bool root = ::geteuid() == 0;
  auto r = run_in_child([&]() -> ChildReport {
    if (!root && ::unshare(CLONE_NEWUSER) < 0) return {0, errno};
    for (int i = 0; i < 6; ++i) {
      if (::unshare(kFlags[i]) < 0) return {i + 1, errno};
    }
    return {};
  });
  return to_try(r, {"unshare(CLONE_NEWUSER)", "unshare(CLONE_NEWNS)", "unshare(CLONE_NEWPID)", "unshare(CLONE_NEWIPC)",
                    "unshare(CLONE_NEWUTS)", "unshare(CLONE_NEWNET)", "unshare(CLONE_NEWCGROUP)"});
}

UserNamespaces probe_user_namespaces() {
  UserNamespaces u;
  u.unprivileged_userns_clone = read_long("/proc/sys/kernel/unprivileged_userns_clone");
  u.max_user_namespaces = read_long("/proc/sys/user/max_user_namespaces");
  u.apparmor_restrict = read_long("/proc/sys/kernel/apparmor_restrict_unprivileged_userns");
  auto as_is = run_in_child([]() -> ChildReport {
    if (::unshare(CLONE_NEWUSER) < 0) return {0, errno};
    return {};
  });
  u.current_user = to_try(as_is, {"unshare(CLONE_NEWUSER)"});
  if (::geteuid() != 0) {
    u.unprivileged = u.current_user;
    return u;
  }
  auto dropped = run_in_child([]() -> ChildReport {
    if (!drop_to_nobody()) return {0, errno};
    if (::unshare(CLONE_NEWUSER) < 0) return {1, errno};
    return {};
  });
  u.unprivileged = to_try(dropped, {"become uid 65534", "unshare(CLONE_NEWUSER) as uid 65534"});
  return u;
}

Try try_overlay_in_userns(const std::string& tmp_base) {
  std::string dir = fs::join(tmp_base, "sandrun-doctor.XXXXXX");
  if (!::mkdtemp(dir.data())) return {false, errno, "create a directory in " + tmp_base};
  ::chmod(dir.c_str(), 0755);  // the unprivileged child must reach it
  const uid_t uid = ::geteuid() == 0 ? kNobody : ::geteuid();
  const gid_t gid = ::geteuid() == 0 ? kNobody : ::getegid();
  // Everything the child needs, formatted before the fork.
  const std::string uid_map = "0 " + std::to_string(uid) + " 1\n";
  const std::string gid_map = "0 " + std::to_string(gid) + " 1\n";
  const std::string lower = dir + "/lower", upper = dir + "/upper", work = dir + "/work", merged = dir + "/merged";
  const std::string opts = "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work;
  auto r = run_in_child([&]() -> ChildReport {
    if (!drop_to_nobody()) return {0, errno};
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) return {1, errno};
    if (!write_text("/proc/self/uid_map", uid_map.c_str()) || !write_text("/proc/self/setgroups", "deny") ||
        !write_text("/proc/self/gid_map", gid_map.c_str()))
      return {2, errno};
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) < 0) return {3, errno};
    // A tmpfs of our own: overlay refuses some upper file systems (overlay, NFS) that /tmp
    // may be on, and everything below vanishes with the mount namespace.
    if (::mount("tmpfs", dir.c_str(), "tmpfs", 0, "mode=0755") < 0) return {4, errno};
    for (const auto* d : {&lower, &upper, &work, &merged}) {
      if (::mkdir(d->c_str(), 0755) < 0) return {5, errno};
    }
    if (::mount("overlay", merged.c_str(), "overlay", 0, opts.c_str()) < 0) return {6, errno};
    return {};
  });
  ::rmdir(dir.c_str());
  return to_try(r, {"become uid 65534", "unshare(CLONE_NEWUSER|CLONE_NEWNS)", "write the uid/gid map",
                    "make mounts private", "mount tmpfs", "mkdir", "mount overlay"});
}

IdmappedMounts probe_idmapped_mounts(const std::string& dir) {
  IdmappedMounts m;
  m.dir = dir;
  while (!fs::exists(m.dir) && m.dir.size() > 1) {
    auto slash = m.dir.rfind('/');
    m.dir = slash == 0 || slash == std::string::npos ? "/" : m.dir.substr(0, slash);
  }
  m.syscall = !(::syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0) < 0 && errno == ENOSYS);
  if (!m.syscall || ::geteuid() != 0) return m;
  m.tried = true;

  // A user namespace to map to: a child unshares one and waits; we write its map (as root we
  // may map any range), take its fd, then let it go.
  int ready[2], go[2];
  if (::pipe2(ready, O_CLOEXEC) < 0) {
    m.on_dir = {false, errno, "pipe"};
    return m;
  }
  if (::pipe2(go, O_CLOEXEC) < 0) {
    m.on_dir = {false, errno, "pipe"};
    ::close(ready[0]);
    ::close(ready[1]);
    return m;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(ready[0]);
    ::close(go[1]);
    char c = ::unshare(CLONE_NEWUSER) == 0 ? 1 : 0;
    (void)!::write(ready[1], &c, 1);
    (void)!::read(go[0], &c, 1);  // returns at EOF: the parent is done with us
    ::_exit(0);
  }
  // Killed and reaped on every way out, should the release below not end it.
  sys::Child child = pid > 0 ? sys::Child::adopt_forked(pid, "a probe process") : sys::Child();
  ::close(ready[1]);
  ::close(go[0]);
  UniqueFd release_child(go[1]);
  char c = 0;
  if (pid < 0) {
    m.on_dir = {false, errno, "fork a probe process"};
  } else if (::read(ready[0], &c, 1) != 1 || c != 1) {
    m.on_dir = {false, EPERM, "unshare(CLONE_NEWUSER)"};
  } else {
    std::string proc = "/proc/" + std::to_string(pid);
    UniqueFd ns(::open((proc + "/ns/user").c_str(), O_RDONLY | O_CLOEXEC));
    UniqueFd tree(static_cast<int>(::syscall(SYS_open_tree, AT_FDCWD, m.dir.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
    if (!write_text((proc + "/uid_map").c_str(), "0 100000 65536\n") ||
        !write_text((proc + "/gid_map").c_str(), "0 100000 65536\n")) {
      m.on_dir = {false, errno, "write the uid/gid map"};
    } else if (!ns) {
      m.on_dir = {false, errno, "open the user namespace"};
    } else if (!tree) {
      m.on_dir = {false, errno, "open_tree(OPEN_TREE_CLONE)"};
    } else {
      struct mount_attr attr = {};
      attr.attr_set = MOUNT_ATTR_IDMAP;
      attr.userns_fd = static_cast<uint64_t>(ns.get());
      // The clone is detached: closing `tree` unmounts it, nothing is ever attached.
      m.on_dir = try_syscall(::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr),
                             "mount_setattr(MOUNT_ATTR_IDMAP)");
    }
  }
  ::close(ready[0]);
  release_child.reset();
  if (!child.reaped()) (void)child.wait();
  return m;
}

std::vector<SubIdRange> parse_subid(std::string_view content, std::string_view user, uint64_t id) {
  std::vector<SubIdRange> out;
  const std::string id_text = std::to_string(id);
  sys::for_each_line(content, [&](std::string_view line) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') return;
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) return;
    std::string_view owner = line.substr(0, c1);
    if (owner != user && owner != id_text) return;
    SubIdRange r;
    std::string_view a = line.substr(c1 + 1, c2 - c1 - 1), b = line.substr(c2 + 1);
    auto [pa, ea] = std::from_chars(a.data(), a.data() + a.size(), r.start);
    auto [pb, eb] = std::from_chars(b.data(), b.data() + b.size(), r.count);
    if (ea != std::errc() || eb != std::errc() || pa != a.data() + a.size() || pb != b.data() + b.size()) return;
    if (r.count > 0) out.push_back(r);
  });
  return out;
}

SubIds probe_subids(const std::string& user, uid_t uid, const std::string& etc, const std::string& path_dirs) {
  SubIds s;
  executable_in(path_dirs, "newuidmap", s.newuidmap, s.newuidmap_privileged);
  executable_in(path_dirs, "newgidmap", s.newgidmap, s.newgidmap_privileged);
  if (auto t = fs::read_file(fs::join(etc, "subuid"))) {
    s.subuid_file = true;
    s.uids = parse_subid(*t, user, uid);
  }
  if (auto t = fs::read_file(fs::join(etc, "subgid"))) {
    s.subgid_file = true;
    s.gids = parse_subid(*t, user, uid);
  }
  return s;
}

Seccomp probe_seccomp() {
  Seccomp s;
  int mode = ::prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
  s.available = mode >= 0;
  s.mode = mode;
  if (auto t = fs::read_file("/proc/sys/kernel/seccomp/actions_avail")) {
    std::string_view v = *t;
    while (!v.empty()) {
      size_t sp = v.find_first_of(" \n");
      if (sp != 0) s.actions.emplace_back(v.substr(0, sp));
      v.remove_prefix(sp == std::string_view::npos ? v.size() : sp + 1);
    }
  }
  auto action_ok = [](uint32_t action) {
    return ::syscall(SYS_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, &action) == 0;
  };
  s.errno_action = action_ok(SECCOMP_RET_ERRNO);
  s.kill_process_action = action_ok(SECCOMP_RET_KILL_PROCESS);
  // With a null program, a known flag fails later (EFAULT copying the program, or EACCES
  // without no_new_privs); an unknown one fails first with EINVAL. Nothing is installed.
  static constexpr std::pair<unsigned long, const char*> kFlags[] = {
      {SECCOMP_FILTER_FLAG_TSYNC, "tsync"},
      {SECCOMP_FILTER_FLAG_LOG, "log"},
      {SECCOMP_FILTER_FLAG_SPEC_ALLOW, "spec_allow"},
      {SECCOMP_FILTER_FLAG_NEW_LISTENER, "new_listener"},
      {SECCOMP_FILTER_FLAG_TSYNC_ESRCH, "tsync_esrch"},
      {SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | SECCOMP_FILTER_FLAG_NEW_LISTENER, "wait_killable_recv"},
  };
  for (const auto& [flag, name] : kFlags) {
    bool known = s.available && !(::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flag, nullptr) < 0 && errno == EINVAL);
    (known ? s.flags : s.missing_flags).emplace_back(name);
  }
  return s;
}

Try try_pidfd_open() {
  int fd = sys::pidfd_open(::getpid());
  if (fd < 0) return {false, errno, "pidfd_open"};
  ::close(fd);
  return {true, 0, ""};
}

Try try_clone3() {
  struct clone_args args = {};
  // A size below CLONE_ARGS_SIZE_VER0 is refused before anything happens.
  if (::syscall(SYS_clone3, &args, 1) < 0 && errno == EINVAL) return {true, 0, ""};
  return {false, errno, "clone3"};
}

Try try_clone_into_cgroup() {
  // "/" is no cgroup directory: a kernel that knows the flag refuses the fd with EBADF, one
  // that does not refuses the flag with EINVAL. A child is never created; should one be, it
  // exits at once.
  UniqueFd root(::open("/", O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) return {false, errno, "open /"};
  struct clone_args args = {};
  args.flags = CLONE_INTO_CGROUP;
  args.exit_signal = SIGCHLD;
  args.cgroup = static_cast<uint64_t>(root.get());
  long rc = ::syscall(SYS_clone3, &args, sizeof args);
  if (rc == 0) sys::exit_now(0);
  if (rc > 0) {
    (void)sys::Child::adopt_forked(static_cast<pid_t>(rc), "a probe process").wait();
    return {true, 0, ""};
  }
  if (errno == EBADF) return {true, 0, ""};
  return {false, errno, "clone3(CLONE_INTO_CGROUP)"};
}

Try try_openat2() {
  int fd = sys::openat2(AT_FDCWD, "/", O_PATH | O_DIRECTORY | O_CLOEXEC, 0, RESOLVE_NO_MAGICLINKS);
  if (fd < 0) return {false, errno, "openat2"};
  ::close(fd);
  return {true, 0, ""};
}

Try try_mount_api() {
  // fsopen needs CAP_SYS_ADMIN: EPERM still proves it exists. The context fd is closed
  // without creating a superblock.
  int fd = static_cast<int>(::syscall(SYS_fsopen, "tmpfs", FSOPEN_CLOEXEC));
  if (fd >= 0) {
    ::close(fd);
  } else if (errno == ENOSYS) {
    return {false, ENOSYS, "fsopen"};
  }
  if (::syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0) < 0 && errno == ENOSYS) return {false, ENOSYS, "mount_setattr"};
  return {true, 0, ""};
}

bool filesystems_list_has(std::string_view text, std::string_view fs) {
  // "nodev\tsysfs" or "\text4": the name follows the last tab.
  return !sys::for_each_line(text, [&](std::string_view line) {
    size_t tab = line.rfind('\t');
    std::string_view name = tab == std::string_view::npos ? line : line.substr(tab + 1);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    return name != fs;
  });
}

bool kernel_has_filesystem(std::string_view fs) {
  auto t = fs::read_file("/proc/filesystems");
  return t && filesystems_list_has(*t, fs);
}

FileLimit probe_nofile() {
  FileLimit f;
  struct rlimit rl;
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    f.soft = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : rl.rlim_cur;
    f.hard = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX : rl.rlim_max;
  }
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &hdr, data) == 0) {
    f.can_raise_hard = data[CAP_SYS_RESOURCE / 32].effective & (1u << (CAP_SYS_RESOURCE % 32));
  }
  return f;
}

std::string fs_type_name(uint64_t magic) {
  switch (magic) {
    case EXT4_SUPER_MAGIC: return "ext4";  // also ext2/ext3: one magic
    case XFS_SUPER_MAGIC: return "xfs";
    case BTRFS_SUPER_MAGIC: return "btrfs";
    case TMPFS_MAGIC: return "tmpfs";
    case RAMFS_MAGIC: return "ramfs";
    case OVERLAYFS_SUPER_MAGIC: return "overlay";
    case NFS_SUPER_MAGIC: return "nfs";
    case 0xFF534D42: return "cifs";
    case 0xFE534D42: return "smb2";
    case 0x65735546: return "fuse";
    case 0x2FC12FC1: return "zfs";
    case F2FS_SUPER_MAGIC: return "f2fs";
    case ECRYPTFS_SUPER_MAGIC: return "ecryptfs";
    case SQUASHFS_MAGIC: return "squashfs";
    case 0x01021997: return "9p";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(magic));
      return buf;
    }
  }
}

bool on_ext4_without_journal(const std::string& path) {
  struct statfs sfs;
  struct stat st;
  if (::statfs(path.c_str(), &sfs) < 0 || sfs.f_type != EXT4_SUPER_MAGIC || ::stat(path.c_str(), &st) < 0) {
    return false;
  }
  // ext4 names its sysfs directory after the block device: /sys/dev/block/MAJ:MIN -> .../vda.
  char target[4096];
  const std::string dev = "/sys/dev/block/" + std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  const ssize_t n = ::readlink(dev.c_str(), target, sizeof target - 1);
  if (n <= 0) return false;
  target[n] = '\0';
  const char* name = std::strrchr(target, '/');
  auto task = fs::read_file(std::string("/sys/fs/ext4/") + (name ? name + 1 : target) + "/journal_task");
  return task && task->starts_with("<none>");
}

StateDir probe_state_dir(const std::string& path) {
  StateDir s;
  s.path = path;
  s.checked = path;
  s.exists = fs::is_dir(path);
  while (!fs::exists(s.checked) && s.checked.size() > 1) {
    auto slash = s.checked.rfind('/');
    s.checked = slash == 0 || slash == std::string::npos ? "/" : s.checked.substr(0, slash);
  }
  struct statfs st;
  if (::statfs(s.checked.c_str(), &st) == 0) s.fs_type = fs_type_name(static_cast<uint64_t>(st.f_type));
  s.ext4_without_journal = on_ext4_without_journal(s.checked);
  // access(W_OK) says yes to root even on a read-only file system: create something instead.
  std::string probe = fs::join(s.checked, ".sandrun-doctor.XXXXXX");
  if (::mkdtemp(probe.data())) {
    ::rmdir(probe.c_str());
    s.writable = {true, 0, ""};
  } else {
    s.writable = {false, errno, "create a directory in " + s.checked};
  }
  return s;
}

}  // namespace sandrun::sandbox::host
