// The device nodes a container gets: sandrun makes them itself (mknod, as host root) in a
// directory of its own per slot, checks and resets them before each start, and hands the child
// one read-only detached mount of that directory to bind each node from (child.cc setup_dev).
// The host's /dev inodes never enter a container as root.
#pragma once

#include <string>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::sandbox {

struct DevNode {
  const char* name;
  unsigned major;
  unsigned minor;
};
// The standard character devices of a container's /dev (ptmx and pts come from its own devpts).
inline constexpr DevNode kDevNodes[] = {
    {"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};
inline constexpr int kDevNodeCount = static_cast<int>(sizeof kDevNodes / sizeof kDevNodes[0]);
// An empty regular file (mode 0444) in the same directory, bound over the masked files of /proc
// and /sys (child_paths.cc).
inline constexpr const char* kEmptyFileName = "empty";

// Makes `dir` (mode 0755, owned by root) hold exactly the kDevNodes (type, numbers, mode 0666,
// owner root) and the empty file, repairing whatever differs. Then returns a detached clone of
// the directory's mount (OPEN_TREE_CLONE) that is read-only, nosuid and noexec but allows
// devices, whatever the file system holding `dir` is mounted with. Needs root (mknod,
// open_tree).
Result<UniqueFd> device_tree(const std::string& dir);

}  // namespace sandrun::sandbox
