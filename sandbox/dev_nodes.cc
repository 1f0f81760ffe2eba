// The slot's own device directory: checked and repaired before each start, then cloned into a
// read-only detached mount for the child (see dev_nodes.h).
#include "sandbox/dev_nodes.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "sandbox/sys/error.h"

namespace sandrun::sandbox {
namespace {

// Removes whatever `name` is (a node of the wrong kind, a file, a stray directory).
Result<void> remove_entry(int dirfd, const char* name, const std::string& dir) {
  if (::unlinkat(dirfd, name, 0) == 0 || errno == ENOENT) return {};
  if (errno == EISDIR && ::unlinkat(dirfd, name, AT_REMOVEDIR) == 0) return {};
  return Error::sys("remove {}/{}", dir, name);
}

// Mode and owner as wanted; `st` is what is there now. mknod and open apply sandrun's umask,
// and a regression elsewhere could have changed either, so both are set explicitly.
Result<void> fix_mode_owner(int dirfd, const char* name, const struct stat& st, mode_t mode, const std::string& dir) {
  if ((st.st_uid != 0 || st.st_gid != 0) && ::fchownat(dirfd, name, 0, 0, AT_SYMLINK_NOFOLLOW) < 0)
    return Error::sys("chown {}/{} to root", dir, name);
  // After a chown, which clears the set-id bits: the mode is compared with what is left.
  if ((st.st_mode & 07777) != mode && ::fchmodat(dirfd, name, mode, 0) < 0)
    return Error::sys("chmod {}/{} to {:o}", dir, name, mode);
  return {};
}

Result<void> ensure_node(int dirfd, const DevNode& n, const std::string& dir) {
  const dev_t rdev = makedev(n.major, n.minor);
  struct stat st;
  if (::fstatat(dirfd, n.name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISCHR(st.st_mode) && st.st_rdev == rdev) return fix_mode_owner(dirfd, n.name, st, 0666, dir);
    SANDRUN_TRY(remove_entry(dirfd, n.name, dir));
  } else if (errno != ENOENT) {
    return Error::sys("stat {}/{}", dir, n.name);
  }
  if (::mknodat(dirfd, n.name, S_IFCHR | 0666, rdev) < 0)
    return Error::sys("create device node {}/{} ({}:{})", dir, n.name, n.major, n.minor);
  if (::fstatat(dirfd, n.name, &st, AT_SYMLINK_NOFOLLOW) < 0) return Error::sys("stat {}/{}", dir, n.name);
  return fix_mode_owner(dirfd, n.name, st, 0666, dir);
}

Result<void> ensure_empty_file(int dirfd, const std::string& dir) {
  struct stat st;
  if (::fstatat(dirfd, kEmptyFileName, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISREG(st.st_mode) && st.st_size == 0 && st.st_nlink == 1)
      return fix_mode_owner(dirfd, kEmptyFileName, st, 0444, dir);
    SANDRUN_TRY(remove_entry(dirfd, kEmptyFileName, dir));
  } else if (errno != ENOENT) {
    return Error::sys("stat {}/{}", dir, kEmptyFileName);
  }
  UniqueFd f(::openat(dirfd, kEmptyFileName, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0444));
  if (!f) return Error::sys("create {}/{}", dir, kEmptyFileName);
  if (::fstat(f.get(), &st) < 0) return Error::sys("stat {}/{}", dir, kEmptyFileName);
  return fix_mode_owner(dirfd, kEmptyFileName, st, 0444, dir);
}

Result<UniqueFd> open_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd && errno == ENOENT) {
    if (::mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST) return Error::sys("create device directory {}", dir);
    fd.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  }
  if (!fd) return Error::sys("open device directory {}", dir);
  struct stat st;
  if (::fstat(fd.get(), &st) < 0) return Error::sys("stat {}", dir);
  if ((st.st_uid != 0 || st.st_gid != 0) && ::fchown(fd.get(), 0, 0) < 0) return Error::sys("chown {} to root", dir);
  if ((st.st_mode & 07777) != 0755 && ::fchmod(fd.get(), 0755) < 0) return Error::sys("chmod {} to 755", dir);
  return fd;
}

}  // namespace

Result<UniqueFd> device_tree(const std::string& dir) {
  if (dir.empty() || dir[0] != '/') return Error::msg("device directory {:?} is not an absolute path", dir);
  UniqueFd dirfd = SANDRUN_TRY(open_dir(dir));
  for (const DevNode& n : kDevNodes) SANDRUN_TRY(ensure_node(dirfd.get(), n, dir));
  SANDRUN_TRY(ensure_empty_file(dirfd.get(), dir));
  // One clone of the directory (not recursive: nothing is mounted in it). Read-only: inside,
  // chmod, chown and touch of a node fail with EROFS, while reads and writes of a character
  // device do not need a writable mount. Devices allowed even where the state dir's file
  // system is mounted nodev; nothing but these nodes is reachable through it.
  UniqueFd tree(::open_tree(dirfd.get(), "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH));
  if (!tree) return Error::sys("clone the mount of device directory {}", dir);
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC;
  attr.attr_clr = MOUNT_ATTR_NODEV;
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
    return Error::sys("make the mount of device directory {} read-only", dir);
  return tree;
}

}  // namespace sandrun::sandbox
