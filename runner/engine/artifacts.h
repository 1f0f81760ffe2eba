// Artifact collection: copying what a job's patterns match out of its (held) container.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/job_file.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

struct ArtifactReport {
  // What was copied: regular files and symlinks, relative to the destination directory (or
  // the paths inside the archive), in the order they were collected.
  std::vector<std::string> files;
  uint64_t bytes = 0;                 // of regular file contents
  std::vector<std::string> warnings;  // skipped entries, patterns without a match, the cap reached
  std::string archive;                // with archive = true: the file written (absolute path)
  // Why the collection stopped before the end ("artifacts_max_files (10000) reached"), empty
  // when it is complete. What was collected until then is whole: no partial file or entry.
  std::string truncated;
};

// Entries deeper than this below a pattern's start are skipped (with one warning): the walk
// recurses once per level, so its stack and its open fds stay bounded whatever the tree.
inline constexpr size_t kMaxArtifactDepth = 256;

// `path` for a message: at most about `max` bytes, its head and tail kept around "...".
std::string shorten_path(std::string_view path, size_t max = 200);

// True when a pattern component is a glob (has *, ? or [).
bool is_glob(std::string_view component);

// Whether `path` (relative, '/'-separated, no empty components) matches `pattern` (the same
// form): `*`, `?` and `[...]` match within one component, a `**` component any number of
// components including none. For tests and for --junit's selection among artifacts.
bool glob_match(std::string_view pattern, std::string_view path);

// Copies what `spec.patterns` match beneath `root_fd` (a container's root, or any directory
// for tests) into `dest` (a directory, created afresh: a stale one is removed first) or, with
// spec.archive, into `dest` + ".tar.zst". At most spec.max_files entries and spec.max_size bytes
// are collected (the report says `truncated` past either). Relative patterns are relative to `workdir` (an
// absolute container path) and keep their path below it; absolute ones keep their path
// without the leading '/'. Nothing on the container's side is trusted: every path is resolved
// beneath `root_fd`, no symlink of a pattern's components is followed (symlinks are copied as
// symlinks), only regular files are read (FIFOs, sockets and devices are skipped with a
// warning), and nothing is created outside `dest`.
// Blocking: runs on the threadpool. `cancel` (may be null) stops it between files.
Result<ArtifactReport> collect_artifacts(int root_fd, const std::string& workdir, const config::Artifacts& spec,
                                         const std::string& dest, const std::atomic<bool>* cancel = nullptr);

}  // namespace sandrun::runner
