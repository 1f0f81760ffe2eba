// Named volumes: host directories under ROOT/volumes/<name>/_data that outlive containers,
// with their labels and creation time in ROOT/volumes/<name>/volume.json. Docker-agnostic: the
// Engine API (runner/api/volume_routes.cc) and, later, the CLI and job files use it.
//
// Layout and atomicity: a volume is created as ROOT/volumes/.new-<random>/ (its _data and its
// volume.json written and fsynced) and renamed to its name, so a crash never leaves a volume
// without metadata; it is removed by renaming it to .del-<random> first, then deleting that.
// Leftover .new-/.del- entries (a crash) are collected by the next list().
//
// Ownership: a new volume's _data is mode 0755, owned by the host uid/gid the caller gives:
// root (0:0) for `volume create`; for a volume made by its first mount (mount_dir), the host
// ids of the container's root, which are not 0 when the container runs in a user namespace, so
// that the container's root owns it as Docker's does. A volume created empty by `volume create`
// and first mounted by a container whose root is mapped takes that container's ids at that
// first mount (recorded in volume.json as "Owner"), and keeps them afterwards.
//
// Every method is blocking (file system work) and safe to call from several threads at once:
// call it on the threadpool.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/sys/result.h"

namespace sandrun::runner {

struct Volume {
  std::string name;
  std::map<std::string, std::string> labels;
  int64_t created = 0;       // unix seconds
  int64_t created_nsec = 0;
  bool anonymous = false;    // created without a name (a random 64-hex one)
  bool owned = false;        // ownership settled by a first mount (see the header's comment)
  std::string mountpoint;    // ROOT/volumes/<name>/_data
};

struct VolumePruneReport {
  std::vector<std::string> removed;  // names
  uint64_t bytes = 0;                // file data removed (apparent sizes)
};

class VolumeStore {
 public:
  // The store of `state_root` (ROOT): ROOT/volumes, created on first use (0700).
  explicit VolumeStore(std::string state_root);

  // Docker's rule for a volume name: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (two characters at least).
  static bool valid_name(std::string_view name);

  // Creates the volume `name` (empty: a random 64-hex name, anonymous) owned by uid:gid, or
  // returns the existing one of that name unchanged (Docker's create is idempotent). An invalid
  // name is an error naming it.
  Result<Volume> create(std::string_view name, const std::map<std::string, std::string>& labels,
                        uid_t uid = 0, gid_t gid = 0);
  // The volume, or nullopt when there is none of that name.
  Result<std::optional<Volume>> find(std::string_view name) const;
  // Every volume, by name.
  Result<std::vector<Volume>> list() const;
  // Removes the volume and everything in it; false when there was none. Whether a container
  // still uses it is the caller's check (the container registry's in_use hook, on the loop).
  Result<bool> remove(std::string_view name);
  // Removes the volumes `pick` chooses (with their sizes counted).
  Result<VolumePruneReport> prune(const std::function<bool(const Volume&)>& pick);

  // The host directory for a `-v NAME:/path` mount: the volume's _data, creating the volume on
  // first use owned by uid:gid, the host ids of the container's root (Docker creates a named
  // volume when a container first mounts it). See the header's comment for ownership.
  Result<std::string> mount_dir(std::string_view name, uid_t uid, gid_t gid);

  const std::string& dir() const { return dir_; }

 private:
  Result<Volume> load(const std::string& name) const;
  Result<void> write_meta(const std::string& vol_dir, const Volume& v) const;
  void collect_leftovers() const;

  std::string dir_;         // ROOT/volumes
  mutable std::mutex mu_;   // one change at a time in this process
};

// Apparent bytes of the regular files under `path` (no symlinks followed); 0 when missing.
uint64_t tree_bytes(const std::string& path);

}  // namespace sandrun::runner
