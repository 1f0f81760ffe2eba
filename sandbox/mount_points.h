// A read-only root without a writable layer. A container whose root is read-only
// (`read_only_rootfs = true`) needs no upper and work dir: its overlay is made of lower layers
// only, so starting it writes nothing to disk and there is nothing to empty afterwards. What
// the writable layer gave it besides writes are the mount points (/proc, /dev, /sys, /tmp, the
// working directory, each volume's target) that the image may lack. They come from one more,
// tiny lower layer on top of the image's: the "mount-point layer", made once per image and set
// of targets and kept under the state dir (Docker's "-init" layer does the same job).
//
// The layer only adds what is missing and copies the owner, mode and times of every directory
// it repeats from the image, so the container sees the image unchanged. Where that cannot hold
// (a target's path goes through a symlink in the image, or the target exists with the other
// type) there is no layer and the container falls back to the writable layer as before.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "sandbox/container_plan.h"
#include "sandbox/sys/result.h"

namespace sandrun::sandbox {

struct MountPoint {
  std::string path;  // absolute, normalised container path
  bool is_dir = true;
  bool operator==(const MountPoint&) const = default;
};

// The mount points the child needs in the root: /proc, /dev, /sys, /tmp, the working directory and
// each bind target (a file for a file source), sorted.
std::vector<MountPoint> required_mount_points(const ContainerPlan& spec, const std::vector<std::string>& extra_dirs = {});

// What the image's layers (`lower_dirs`, top-most first, in overlayfs' on-disk format:
// whiteouts are 0:0 character devices, opaque dirs carry trusted.overlay.opaque=y) show at
// `path` through an overlay, without following symlinks.
enum class Found { missing, dir, file, other, through_non_dir };
Found lookup_in_layers(const std::vector<std::string>& lower_dirs, const std::string& path);

// Makes (or finds) the mount-point layer of `spec` under `cache_dir` and returns its path, or
// nullopt when this image and these targets cannot use one (see above). Safe against other
// sandrun processes doing the same: the layer is built in a temp dir and renamed into place.
// `extra_dirs`: directory mount points of volumes every placement adds (named caches).
Result<std::optional<std::string>> ensure_mount_point_layer(const std::string& cache_dir, const ContainerPlan& spec,
                                                             const std::vector<std::string>& extra_dirs = {});

// Whether `spec` starts without a writable layer: a read-only root, a mount-point layer, no
// user namespace (whose overlay is built from idmapped fds with an upper dir).
bool uses_mount_point_layer(const ContainerPlan& spec);

}  // namespace sandrun::sandbox
