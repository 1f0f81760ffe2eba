// File-system helpers: fd-based walks beneath a root, atomic writes, locks.
#include "sandbox/sys/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <climits>
#include <vector>

#include "sandbox/sys/syscalls.h"

namespace sandrun::fs {

Result<UniqueFd> open_beneath(int dirfd, std::string_view path, int flags, uint64_t resolve,
                              mode_t mode) {
  std::string p(path.empty() ? "." : path);
  // RESOLVE_IN_ROOT already confines the walk (and may not be combined with RESOLVE_BENEATH).
  const uint64_t confine = (resolve & RESOLVE_IN_ROOT) ? 0 : RESOLVE_BENEATH;
  int fd = sys::openat2(dirfd, p.c_str(), static_cast<uint64_t>(flags | O_CLOEXEC), mode,
                        confine | RESOLVE_NO_MAGICLINKS | resolve);
  if (fd < 0) return Error::sys("open {}", p);
  return UniqueFd(fd);
}

Result<UniqueFd> open_path(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return Error::sys("open {}", path);
  return UniqueFd(fd);
}

std::string fd_path(int fd) {
  const int saved = errno;  // callers pass the result to Error::sys, which reads errno after
  struct Restore {
    int value;
    ~Restore() { errno = value; }
  } restore{saved};
  char target[4096];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof target) return "fd " + std::to_string(fd);
  return std::string(target, static_cast<size_t>(n));
}

Result<UniqueFd> mkdirs_beneath(int dirfd, std::string_view path, mode_t mode) {
  int start = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
  if (start < 0) return Error::sys("duplicate the fd of directory {}", fd_path(dirfd));
  UniqueFd cur(start);
  std::string done;
  for (std::string_view part : path_components(path)) {
    if (part == "..") return Error::sys_code(EINVAL, "create {}: '..' is not allowed", path);
    std::string comp(part);
    done = done.empty() ? comp : done + "/" + comp;
    if (::mkdirat(cur.get(), comp.c_str(), mode) < 0 && errno != EEXIST)
      return Error::sys("create directory {}", done);
    int next = sys::openat2(cur.get(), comp.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                            0, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
    if (next < 0) {
      if (errno == ELOOP || errno == ENOTDIR)
        return Error::sys("create directory {}: an existing non-directory is in the way", done);
      return Error::sys("open directory {}", done);
    }
    cur.reset(next);
  }
  return cur;
}

Result<void> mkdirs(const std::string& path, mode_t mode) {
  if (path.empty() || path == "/") return {};
  if (::mkdir(path.c_str(), mode) == 0) return {};
  if (errno == ENOENT) {  // a parent is missing: make it, then try again
    size_t slash = path.find_last_not_of('/');
    slash = slash == std::string::npos ? std::string::npos : path.rfind('/', slash);
    if (slash != std::string::npos && slash > 0) SANDRUN_TRY(mkdirs(path.substr(0, slash), mode));
    if (::mkdir(path.c_str(), mode) == 0 || errno == EEXIST) return {};
    return Error::sys("create directory {}", path);
  }
  if (errno != EEXIST) return Error::sys("create directory {}", path);
  if (!is_dir(path)) return Error::sys_code(ENOTDIR, "create directory {}", path);
  return {};
}

namespace {

// Clears the immutable and append-only flags that a container's root may have set on a file
// in its writable layer, so that the layer can be deleted.
void clear_inode_flags(int dirfd, const char* name) {
  int fd = ::openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return;
  int flags = 0;
  if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0 && (flags & (FS_IMMUTABLE_FL | FS_APPEND_FL))) {
    flags &= ~(FS_IMMUTABLE_FL | FS_APPEND_FL);
    ::ioctl(fd, FS_IOC_SETFLAGS, &flags);
  }
  ::close(fd);
}

int unlink_entry(int dirfd, const char* name, int flags) {
  if (::unlinkat(dirfd, name, flags) == 0) return 0;
  if (errno != EPERM) return -1;
  clear_inode_flags(dirfd, name);
  return ::unlinkat(dirfd, name, flags);
}

struct Frame {
  DIR* dir = nullptr;   // owns the directory's fd
  std::string name;     // name inside the parent frame (or the caller's dirfd)
  bool changed = false; // something was removed since the last rewind
};

// Directories deeper than this are moved up to the top of the tree being removed, so that the
// walk holds a bounded number of descriptors however deep a container nested its directories.
constexpr size_t kMaxDepth = 64;

}  // namespace

Result<void> remove_tree(int dirfd, const std::string& name) {
  struct stat st;
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return {};
    return Error::sys("remove {}", name);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlink_entry(dirfd, name.c_str(), 0) < 0 && errno != ENOENT) return Error::sys("remove {}", name);
    return {};
  }
  std::vector<Frame> stack;
  auto push = [&](int parent, const std::string& n) -> Result<void> {
    int fd = ::openat(parent, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == EACCES) {
      ::fchmodat(parent, n.c_str(), 0700, 0);
      fd = ::openat(parent, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) return Error::sys("remove {}: open directory {}", name, n);
    DIR* d = ::fdopendir(fd);
    if (!d) {
      ::close(fd);
      return Error::sys("remove {}: read directory {}", name, n);
    }
    stack.push_back(Frame{d, n, false});
    return {};
  };
  auto close_all = [&] {
    for (auto& f : stack) ::closedir(f.dir);
    stack.clear();
  };
  if (auto r = push(dirfd, name); !r) return r;
  unsigned long moved = 0;
  while (!stack.empty()) {
    Frame& f = stack.back();
    int fd = ::dirfd(f.dir);
    errno = 0;
    struct dirent* e = ::readdir(f.dir);
    if (e == nullptr) {
      if (errno != 0) {
        auto err = Error::sys("remove {}: read directory {}", name, f.name);
        close_all();
        return err;
      }
      if (f.changed) {  // entries may have been moved in or missed while we changed the dir
        f.changed = false;
        ::rewinddir(f.dir);
        continue;
      }
      std::string child = f.name;
      ::closedir(f.dir);
      stack.pop_back();
      int parent = stack.empty() ? dirfd : ::dirfd(stack.back().dir);
      if (unlink_entry(parent, child.c_str(), AT_REMOVEDIR) < 0 && errno != ENOENT) {
        auto err = Error::sys("remove {}", name == child ? name : name + "/.../" + child);
        close_all();
        return err;
      }
      if (!stack.empty()) stack.back().changed = true;
      continue;
    }
    const char* n = e->d_name;
    if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat cst;
      if (::fstatat(fd, n, &cst, AT_SYMLINK_NOFOLLOW) == 0) is_dir = S_ISDIR(cst.st_mode);
    }
    f.changed = true;
    if (!is_dir) {
      if (unlink_entry(fd, n, 0) < 0 && errno != ENOENT) {
        auto err = Error::sys("remove {}: unlink {}", name, n);
        close_all();
        return err;
      }
      continue;
    }
    if (stack.size() >= kMaxDepth) {
      std::string flat = ".sandrun-rm-" + std::to_string(++moved);
      if (::renameat(fd, n, ::dirfd(stack.front().dir), flat.c_str()) == 0) {
        stack.front().changed = true;
        continue;
      }
    }
    std::string child = n;
    if (auto r = push(fd, child); !r) {
      close_all();
      return r;
    }
  }
  return {};
}

Result<void> remove_tree(const std::string& path) {
  auto slash = path.find_last_of('/');
  std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  int pfd = ::open(parent.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (pfd < 0) {
    if (errno == ENOENT) return {};
    return Error::sys("remove {}", path);
  }
  UniqueFd holder(pfd);
  auto r = remove_tree(pfd, base);
  if (!r) return std::move(r).error();
  return {};
}

Result<void> clear_dir(int dirfd) {
  int dup = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
  if (dup < 0) return Error::sys("duplicate the fd of directory {}", fd_path(dirfd));
  DIR* d = ::fdopendir(dup);
  if (!d) {
    auto err = Error::sys("read directory {}", fd_path(dirfd));
    ::close(dup);
    return err;
  }
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) SANDRUN_TRY(remove_tree(dirfd, n));
  return {};
}

namespace {

// read_fd and read_file: errors name `path`, or (null) what the fd refers to.
Result<std::string> read_named(int fd, const std::string* path) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      return Error::sys_code(err, "read {}", path ? *path : fd_path(fd));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<void> write_named(int fd, std::string_view data, const std::string* path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      return Error::sys_code(err, "write {}", path ? *path : fd_path(fd));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

}  // namespace

Result<std::string> read_fd(int fd) { return read_named(fd, nullptr); }

Result<std::string> read_file(const std::string& path) {
  auto fd = SANDRUN_TRY(open_path(path, O_RDONLY));
  return read_named(fd.get(), &path);
}

Result<void> write_all(int fd, std::string_view data) { return write_named(fd, data, nullptr); }

Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return Error::sys("create {}", tmp);
  UniqueFd holder(fd);
  if (auto r = write_named(fd, data, &tmp); !r) {
    ::unlink(tmp.c_str());
    return std::move(r).error();
  }
  if (::fsync(fd) < 0) {
    auto err = Error::sys("fsync {}", tmp);
    ::unlink(tmp.c_str());
    return err;
  }
  if (::rename(tmp.c_str(), path.c_str()) < 0) {
    auto err = Error::sys("rename {} to {}", tmp, path);
    ::unlink(tmp.c_str());
    return err;
  }
  return {};
}

Result<UniqueFd> lock_file(const std::string& path, bool exclusive, bool wait) {
  auto fd = SANDRUN_TRY(open_path(path, O_RDWR | O_CREAT | O_NOFOLLOW, 0600));
  int op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  while (::flock(fd.get(), op) < 0) {
    if (errno == EINTR) continue;
    return Error::sys("lock {}", path);
  }
  return fd;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool is_dir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string absolute(const std::string& path, const std::string& base) {
  std::string full;
  if (!path.empty() && path[0] == '/') {
    full = path;
  } else {
    std::string b = base;
    if (b.empty()) {
      char cwd[PATH_MAX];
      b = ::getcwd(cwd, sizeof cwd) ? cwd : "/";
    }
    full = b + "/" + path;
  }
  std::vector<std::string_view> parts;
  for (std::string_view comp : path_components(full)) {
    if (comp != "..") {
      parts.push_back(comp);
    } else if (!parts.empty()) {
      parts.pop_back();
    }
  }
  std::string out;
  for (auto p : parts) {
    out += '/';
    out += p;
  }
  return out.empty() ? "/" : out;
}

std::vector<std::string_view> path_components(std::string_view path) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view comp = path.substr(pos, end - pos);
    pos = end + 1;
    if (!comp.empty() && comp != ".") out.push_back(comp);
  }
  return out;
}

std::string join(std::string_view a, std::string_view b) {
  std::string out(a);
  while (!out.empty() && out.back() == '/') out.pop_back();
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  out += '/';
  out += b;
  return out;
}

}  // namespace sandrun::fs
