// An iterative walk of a directory tree: bounded stack and descriptors however deep it is.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "sandbox/sys/result.h"

namespace sandrun::cache {

// Called for each entry beneath the root (not the root itself): `path` relative to the root
// ("a/b/c"), the open directory that holds it, its name there, and its lstat().
using TreeVisit =
    std::function<Result<void>(const std::string& path, int parent_fd, const char* name, const struct stat& st)>;

// Visits every entry beneath the directory `root_fd`, parents before their children, the
// names of a directory in sorted order (the same tree, the same order). Never follows a
// symlink. Depth first without recursion: it holds one directory descriptor, entering a child
// with openat() and leaving it with openat(".."), so it is meant for trees that do not move
// while it runs (the store's layers under the cache lock, its own temp entries). The first
// error, of the walk or of `visit`, stops it.
// With `max_depth`, entries deeper than that are not visited (1: the root's own entries).
Result<void> walk_tree(int root_fd, const TreeVisit& visit, size_t max_depth = SIZE_MAX);

}  // namespace sandrun::cache
