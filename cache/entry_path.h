// Layer entry names: lexical normalisation and resolution of parents beneath the layer root.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::cache {

// A normalised entry name: no empty, "." or ".." component, never absolute.
struct EntryPath {
  std::string path;    // "a/b/c"; "" is the layer root itself
  std::string parent;  // "a/b"; "" when the entry sits directly in the root
  std::string base;    // "c"
  bool is_root() const { return path.empty(); }
};

// Entry names are shorter than this (PATH_MAX, terminator included).
inline constexpr size_t kMaxEntryPath = 4096;

// Strips leading "/" and "./" (an absolute hardlink target names a file of the layer, like
// GNU tar; the extractor refuses absolute entry names itself), collapses "//" and "."; rejects
// any ".." component ("path escapes the layer root"), the empty name and one of kMaxEntryPath
// bytes or more.
Result<EntryPath> normalize_entry_name(std::string_view raw);

// Opens the directory `parent` (a normalised path) beneath `root_fd` as O_PATH, never passing
// through a symlink: a symlink component is an error (`parent "x" is a symlink`), as is a
// non-directory. With `create`, missing components are made as 0755 directories (tars may
// omit directory entries); without it a missing component is an error and sets `*missing`.
// With `cross_mounts` (a copy into a running container: ExtractOptions::cross_mounts) the
// path may pass into other mounts beneath the root, and must end on a data file system.
Result<UniqueFd> open_parent(int root_fd, std::string_view parent, bool create,
                             bool* missing = nullptr, bool cross_mounts = false);

// The resolve flags for every lookup inside a layer: beneath the root, no symlinks at all.
inline constexpr uint64_t kLayerResolve = 0x08 /*RESOLVE_BENEATH*/ | 0x04 /*NO_SYMLINKS*/ |
                                          0x02 /*NO_MAGICLINKS*/ | 0x01 /*NO_XDEV*/;
// The same, across mounts beneath the root (cross_mounts).
inline uint64_t layer_resolve(bool cross_mounts) { return cross_mounts ? kLayerResolve & ~uint64_t{0x01} : kLayerResolve; }
// A directory reached across mounts must be on a file system that holds data (tmpfs, overlay,
// ext2/3/4, xfs, btrfs): never proc, sysfs, cgroupfs, devpts and their kind, where a write by
// the daemon (host root) would reach the kernel's settings rather than the container's files.
Result<void> check_data_fs(int dir_fd, std::string_view shown);

// A name as shown in messages: double-quoted, control and non-UTF-8 bytes escaped, so that a
// hostile entry name cannot forge lines in a log; past about 230 bytes, its first and last 100
// bytes with its size and depth, like "a/a/a..."...".../a/a" (10000 bytes, 5000 components).
std::string quoted(std::string_view name);

}  // namespace sandrun::cache
