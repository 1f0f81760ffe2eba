// Metadata of extracted layer entries: owner, mode, xattrs, times; directories applied last.
#pragma once

#include <sys/stat.h>
#include <time.h>

#include <map>
#include <string>

#include "cache/extract.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

struct archive_entry;

namespace sandrun::cache {

struct EntryMeta {
  mode_t mode = 0;  // permission bits with setuid/setgid/sticky
  uid_t uid = 0;
  gid_t gid = 0;
  struct timespec times[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};  // atime, mtime (atime = mtime)
};

EntryMeta meta_of(struct archive_entry* e);

// The order matters: chown clears setuid/setgid and security.capability, so owner first,
// then mode, then xattrs, then times.
Result<void> apply_owner(int fd, const EntryMeta& m, bool chown);
Result<void> apply_mode(int fd, const EntryMeta& m);
Result<void> apply_times(int fd, const EntryMeta& m);
// Sets the entry's xattrs on `fd`, dropping overlayfs ones (trusted.overlay.*, user.overlay.*:
// an image must not steer the overlay view) and counting those the file system refuses.
Result<void> apply_xattrs(int fd, struct archive_entry* e, ExtractReport& report);

// Directory modes and times are set after all entries were written: children change a
// directory's mtime, and a read-only directory would refuse them when not running as root.
class DeferredDirs {
 public:
  void set(const std::string& path, const EntryMeta& m) { dirs_[path] = m; }
  // Forgets `path` and everything below it (the directory was replaced by something else).
  void drop_subtree(const std::string& path);
  // Re-opens each directory beneath `root_fd` (children before parents) and applies.
  Result<void> apply(int root_fd, bool cross_mounts = false);

 private:
  std::map<std::string, EntryMeta> dirs_;  // normalised path ("" = root) -> metadata
};

// Opens the directory `path` ("" = the root) beneath `root_fd` O_RDONLY, no symlinks.
Result<UniqueFd> open_dir_beneath(int root_fd, const std::string& path, bool cross_mounts = false);

}  // namespace sandrun::cache
