// File-system helpers for the parent side (they may allocate): fd-based walks beneath a root,
// atomic writes, locks. Paths from images or containers only ever go through *_beneath.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::fs {

// Opens `path` relative to `dirfd` without ever leaving it: openat2 with RESOLVE_BENEATH (or,
// when `resolve` has RESOLVE_IN_ROOT, with `dirfd` as the root symlinks resolve against) and
// RESOLVE_NO_MAGICLINKS plus `resolve`. O_CLOEXEC is always added to `flags`.
Result<UniqueFd> open_beneath(int dirfd, std::string_view path, int flags, uint64_t resolve = 0,
                              mode_t mode = 0);

// Opens a plain host path with O_CLOEXEC added.
Result<UniqueFd> open_path(const std::string& path, int flags, mode_t mode = 0);

// Creates `path` and its missing parents beneath `dirfd` (no symlink is followed) and returns
// an O_PATH descriptor of the final directory.
Result<UniqueFd> mkdirs_beneath(int dirfd, std::string_view path, mode_t mode = 0755);

// Creates a host directory and its parents (trusted paths: the state dir, --out).
Result<void> mkdirs(const std::string& path, mode_t mode = 0755);

// Removes `name` inside `dirfd` and everything under it without following any symlink.
// Missing is not an error.
Result<void> remove_tree(int dirfd, const std::string& name);
// The same for a trusted host path.
Result<void> remove_tree(const std::string& path);
// Removes everything inside the directory `dirfd`, keeping the directory itself.
Result<void> clear_dir(int dirfd);

// What `fd` refers to, for messages: the target of /proc/self/fd/N ("/var/lib/x", "pipe:[12]"),
// or "fd N" when that cannot be read. Leaves errno as it was, so it may be an argument of
// Error::sys. Allocates: never between clone and exec.
std::string fd_path(int fd);

Result<std::string> read_file(const std::string& path);
// Reads `fd` to its end; an error names what the fd refers to (fd_path).
Result<std::string> read_fd(int fd);
// Writes `data` to a temp file beside `path`, fsyncs it and renames it over `path`.
Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode = 0644);
// Writes all of `data` to `fd`, retrying on EINTR and short writes; an error names what the fd
// refers to (fd_path).
Result<void> write_all(int fd, std::string_view data);

// flock()s `path` (created if missing). With `wait` false, a held lock is reported as
// an Error with code EWOULDBLOCK.
Result<UniqueFd> lock_file(const std::string& path, bool exclusive, bool wait = true);

bool exists(const std::string& path);
bool is_dir(const std::string& path);
// Absolute, lexically normalised form of `path` (relative to `base`, or the cwd when empty).
std::string absolute(const std::string& path, const std::string& base = "");
// The components of a path, without empty and "." ones ("a//./b/" -> {"a", "b"}); ".." is kept
// for the caller to refuse or resolve.
std::vector<std::string_view> path_components(std::string_view path);
// Joins two trusted path pieces with exactly one '/'.
std::string join(std::string_view a, std::string_view b);

}  // namespace sandrun::fs
