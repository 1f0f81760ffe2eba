// Metadata of extracted layer entries: owner, mode, xattrs, times; directories applied last.
#include "cache/extract_meta.h"
#include "cache/archive_lib.h"

#include <fcntl.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string_view>

#include "cache/entry_path.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::cache {

EntryMeta meta_of(struct archive_entry* e) {
  EntryMeta m;
  m.mode = arc().archive_entry_perm(e) & 07777;
  m.uid = static_cast<uid_t>(arc().archive_entry_uid(e));
  m.gid = static_cast<gid_t>(arc().archive_entry_gid(e));
  if (arc().archive_entry_mtime_is_set(e)) {
    m.times[1].tv_sec = arc().archive_entry_mtime(e);
    m.times[1].tv_nsec = arc().archive_entry_mtime_nsec(e);
    m.times[0] = m.times[1];
  }
  return m;
}

Result<void> apply_owner(int fd, const EntryMeta& m, bool chown) {
  if (chown && ::fchown(fd, m.uid, m.gid) < 0) return Error::sys("chown {} to {}:{}", fs::fd_path(fd), m.uid, m.gid);
  return {};
}

Result<void> apply_mode(int fd, const EntryMeta& m) {
  if (::fchmod(fd, m.mode) < 0) return Error::sys("chmod {} to {:04o}", fs::fd_path(fd), m.mode);
  return {};
}

Result<void> apply_times(int fd, const EntryMeta& m) {
  if (::futimens(fd, m.times) < 0) return Error::sys("set the times of {}", fs::fd_path(fd));
  return {};
}

namespace {

bool is_overlay_xattr(std::string_view name) {
  return name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.");
}

}  // namespace

Result<void> apply_xattrs(int fd, struct archive_entry* e, ExtractReport& report) {
  if (arc().archive_entry_xattr_reset(e) == 0) return {};
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (arc().archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    std::string_view n(name ? name : "");
    if (n.empty()) continue;
    if (is_overlay_xattr(n)) {
      ++report.stripped_xattrs;
      continue;
    }
    if (::fsetxattr(fd, name, value, size, 0) == 0) continue;
    // Not every file system takes every namespace (user.* on a FIFO, trusted.* without
    // CAP_SYS_ADMIN): the layer is still usable without them.
    if (errno == ENOTSUP || errno == EPERM) {
      ++report.unsupported_xattrs;
      log::debug("xattr {} not set: {}", quoted(n), errno_text(errno));
      continue;
    }
    return Error::sys("set xattr {} on {}", quoted(n), fs::fd_path(fd));
  }
  return {};
}

void DeferredDirs::drop_subtree(const std::string& path) {
  auto it = dirs_.lower_bound(path);
  while (it != dirs_.end()) {
    const std::string& p = it->first;
    bool below = p == path || (p.size() > path.size() && p.compare(0, path.size(), path) == 0 &&
                               p[path.size()] == '/');
    // Keys sharing the prefix sort contiguously, but "a-b" sorts between "a" and "a/b".
    if (!below && p.compare(0, path.size(), path) != 0) break;
    it = below ? dirs_.erase(it) : std::next(it);
  }
}

Result<UniqueFd> open_dir_beneath(int root_fd, const std::string& path, bool cross_mounts) {
  const char* p = path.empty() ? "." : path.c_str();
  int fd = sys::openat2(root_fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0,
                        layer_resolve(cross_mounts));
  if (fd < 0) return Error::sys("open directory {}", quoted(path.empty() ? "." : path));
  UniqueFd dir(fd);
  if (cross_mounts) SANDRUN_TRY(check_data_fs(dir.get(), path.empty() ? "." : path));
  return dir;
}

Result<void> DeferredDirs::apply(int root_fd, bool cross_mounts) {
  // Reverse order visits "a/b" before "a": a parent made read-only last.
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    const std::string shown = it->first.empty() ? "." : it->first;
    auto dir = open_dir_beneath(root_fd, it->first, cross_mounts);
    if (!dir) return std::move(dir.error().wrap(fmt::format("layer entry {}", quoted(shown))));
    auto r = apply_mode(dir->get(), it->second);
    if (r) r = apply_times(dir->get(), it->second);
    if (!r) return std::move(r.error().wrap(fmt::format("layer entry {}", quoted(shown))));
  }
  dirs_.clear();
  return {};
}

}  // namespace sandrun::cache
