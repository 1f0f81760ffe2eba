// Layer entry names: lexical normalisation and resolution of parents beneath the layer root.
#include "cache/entry_path.h"

#include <linux/magic.h>
#include <sys/vfs.h>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::cache {

static_assert(kLayerResolve ==
              (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV));

std::string quoted(std::string_view name) {
  // A long path (a 5,000-deep layer has 10 KB ones) is shown by its ends and its depth: enough
  // to find it, not a screenful.
  constexpr size_t kEnd = 100;
  if (name.size() <= 2 * kEnd + 32) return fmt::format("{:?}", name);
  size_t depth = 0;
  for (size_t i = 0; i < name.size(); ++i) depth += name[i] != '/' && (i == 0 || name[i - 1] == '/');
  return fmt::format("{:?}...{:?} ({} bytes, {} components)", name.substr(0, kEnd), name.substr(name.size() - kEnd),
                     name.size(), depth);
}

Result<EntryPath> normalize_entry_name(std::string_view raw) {
  if (raw.empty()) return Error::msg("empty name");
  EntryPath out;
  for (std::string_view comp : fs::path_components(raw)) {
    // Rejected rather than resolved lexically: "a/../b" is legal in POSIX but no honest
    // image builder writes it, and every past breakout started with a "..".
    if (comp == "..") return Error::msg("path escapes the layer root");
    if (!out.path.empty()) out.path += '/';
    out.path += comp;
  }
  // No process could name a longer path in one system call, nor extract or use it; refused
  // here with its size rather than by the first openat2() that fails on it.
  if (out.path.size() >= kMaxEntryPath)
    return Error::msg("path of {} bytes is longer than {}, the longest a layer entry may have", out.path.size(),
                      kMaxEntryPath - 1);
  size_t slash = out.path.rfind('/');
  if (slash == std::string::npos) {
    out.base = out.path;
  } else {
    out.parent = out.path.substr(0, slash);
    out.base = out.path.substr(slash + 1);
  }
  return out;
}

namespace {

// Opens (and with `create`, makes) one component below `cur`. `done` names it for messages.
Result<UniqueFd> step(int cur, const std::string& comp, const std::string& done, bool create,
                      bool* missing, uint64_t resolve) {
  struct stat st;
  if (::fstatat(cur, comp.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno != ENOENT) return Error::sys("parent {}", quoted(done));
    if (!create) {
      if (missing) *missing = true;
      return Error::msg("parent {} does not exist", quoted(done));
    }
    if (::mkdirat(cur, comp.c_str(), 0700) < 0) return Error::sys("create parent {}", quoted(done));
    int fd = ::openat(cur, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Error::sys("open parent {}", quoted(done));
    UniqueFd dir(fd);
    // Explicit mode: the result must not depend on the process umask.
    if (::fchmod(dir.get(), 0755) < 0) return Error::sys("chmod parent {}", quoted(done));
    return dir;
  }
  if (S_ISLNK(st.st_mode)) return Error::msg("parent {} is a symlink", quoted(done));
  if (!S_ISDIR(st.st_mode)) return Error::msg("parent {} is not a directory", quoted(done));
  int fd = sys::openat2(cur, comp.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                        resolve);
  if (fd < 0) return Error::sys("open parent {}", quoted(done));
  return UniqueFd(fd);
}

}  // namespace

Result<UniqueFd> open_parent_fd(int root_fd, std::string_view parent, bool create, bool* missing, uint64_t resolve);

Result<void> check_data_fs(int dir_fd, std::string_view shown) {
  struct statfs sfs {};
  if (::fstatfs(dir_fd, &sfs) < 0) return Error::sys("statfs {}", quoted(shown));
  switch (static_cast<unsigned long>(sfs.f_type)) {
    case TMPFS_MAGIC: case OVERLAYFS_SUPER_MAGIC: case EXT4_SUPER_MAGIC: case XFS_SUPER_MAGIC:
    case BTRFS_SUPER_MAGIC:
      return {};
    default:
      return Error::msg("{} is on a file system sandrun does not write into (type {:#x}: only tmpfs, overlay, "
                        "ext4, xfs and btrfs hold a container's files)", quoted(shown), static_cast<unsigned long>(sfs.f_type));
  }
}

Result<UniqueFd> open_parent(int root_fd, std::string_view parent, bool create, bool* missing, bool cross_mounts) {
  Result<UniqueFd> r = open_parent_fd(root_fd, parent, create, missing, layer_resolve(cross_mounts));
  if (r && cross_mounts) SANDRUN_TRY(check_data_fs(r->get(), parent.empty() ? "." : parent));
  return r;
}

Result<UniqueFd> open_parent_fd(int root_fd, std::string_view parent, bool create, bool* missing, uint64_t resolve) {
  std::string p = parent.empty() ? "." : std::string(parent);
  int fd = sys::openat2(root_fd, p.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC, 0, resolve);
  if (fd >= 0) return UniqueFd(fd);
  if (errno != ENOENT && errno != ELOOP && errno != ENOTDIR && errno != EXDEV)
    return Error::sys("open parent {}", quoted(parent));
  // Slow path: walk component by component to create what is missing, or to name the
  // component that refused (a symlink or a non-directory).
  int start = ::fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
  if (start < 0) return Error::sys("duplicate the fd of the layer root {}", fs::fd_path(root_fd));
  UniqueFd cur(start);
  std::string done;
  size_t pos = 0;
  while (pos < parent.size()) {
    size_t end = parent.find('/', pos);
    if (end == std::string_view::npos) end = parent.size();
    std::string comp(parent.substr(pos, end - pos));
    pos = end + 1;
    done = done.empty() ? comp : done + "/" + comp;
    cur = SANDRUN_TRY(step(cur.get(), comp, done, create, missing, resolve));
  }
  return cur;
}

}  // namespace sandrun::cache
