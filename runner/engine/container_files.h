// A running container's files from the host (docker cp): stat, a tar of a file or directory,
// and a tar extracted into a directory, every path resolved inside the container's root (an
// fd of /proc/PID/root, walked with openat2's RESOLVE_IN_ROOT: its symlinks, absolute or
// "../..", resolve against that root and never lead out). Blocking: for the threadpool.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

// A container's files as the host reaches them.
struct ContainerFiles {
  UniqueFd root;         // its root directory (O_PATH)
  uid_t uid_base = 0;    // the host ids of its root user (its user namespace's map)
  gid_t gid_base = 0;
  uint32_t id_count = 0; // ids mapped from uid_base on (0: none, the host's own ids)
};

// What a path is, for Docker's X-Docker-Container-Path-Stat (lstat: a symlink is itself).
struct PathStat {
  std::string name;         // its last component ("/" for the root)
  int64_t size = 0;
  uint32_t mode = 0;        // st_mode
  int64_t mtime_ns = 0;     // CLOCK_REALTIME
  std::string link_target;  // a symlink's target as an absolute path in the container
};

// Its root as PID 1 sees it (/proc/PID/root), checked against `pidfd` after the open: the pid
// was not reused meanwhile. Quick (procfs only): may run on the loop.
Result<UniqueFd> open_container_root(pid_t pid, int pidfd);

// A missing path is an Error with code ENOENT.
Result<PathStat> stat_in_container(const ContainerFiles& c, std::string_view path);

// Writes a tar of `path` to `out_fd`: one entry named after its last component, or a
// directory's whole tree beneath that name. Owners are shown as the container sees them.
// Symlinks are stored, never followed; devices, fifos and sockets are left out.
Result<void> tar_from_container(const ContainerFiles& c, std::string_view path, int out_fd);

struct ExtractInto {
  uint64_t max_bytes = 0;  // the tar's unpacked size cap (0: none)
  bool copy_owners = false;  // the entries' uid and gid (mapped into the container), else its root
};
// Extracts the tar (plain or compressed) read from `tar_fd` into the directory `dir` of the
// container. An entry that would leave `dir` ("../x", a parent that is a symlink) fails it.
// Errors: ENOENT when `dir` is missing, ENOTDIR when it is not a directory.
Result<void> extract_into_container(const ContainerFiles& c, std::string_view dir, int tar_fd, const ExtractInto& opts);

// The same into a container about to start, through its writable layer `upper` (the
// overlay's upper dir, on the host) over the image's layers `lowers` (top-most first): `dir`
// is looked up without following symlinks, and each of its directories missing in `upper` is
// made there as the image has it (mode, owner mapped as `id_shift` says, which is the host id
// of the container's root when the layers are shown through idmapped mounts, else 0).
struct LayerTarget {
  std::string upper;
  std::vector<std::string> lowers;
  ContainerFiles ids;          // the ids only (root unused)
  bool shift_layer_ids = false; // the layers' owners are container ids (idmapped layers)
};
Result<void> extract_into_layer(const LayerTarget& t, std::string_view dir, int tar_fd, const ExtractInto& opts);

}  // namespace sandrun::runner
