// A file system of a fixed size and inode count for a container's writable layers: an ext4 in
// a sparse image file, attached to a loop device that frees itself once unmounted. What a
// container writes there stops at ENOSPC, enforced by the kernel, whatever the host's own file
// system offers (no project quotas needed).
#pragma once

#include <cstdint>
#include <string>

#include "sandbox/sys/result.h"

namespace sandrun::sandbox {

struct DiskSize {
  uint64_t bytes = 0;
  uint64_t inodes = 0;
  bool operator==(const DiskSize&) const = default;
};

// Makes `image` (replacing any file there) a sparse file of size.bytes holding an ext4 without
// a journal, without reserved blocks and with at least size.inodes inodes, and mounts it on the
// directory `target` (nodev, nosuid; `discard`, so what is deleted in it returns to the sparse
// image; `noinit_itable`, so nothing zeroes the fresh, already-zero inode tables in the
// background; `nobarrier`, so the write-back when a container ends does not fsync the image
// file on the host: nothing there needs to survive a crash). The file system is copied from a
// template of that size in the directory `templates` (`ext4-BYTES-INODES.img`), made by mke2fs
// (e2fsprogs) the first time a size is asked for: copying its data extents (about 200 KiB)
// takes under a millisecond where running mke2fs takes 20-50. The loop device is taken with
// LOOP_CTL_GET_FREE and set up with LOOP_CONFIGURE and LO_FLAGS_AUTOCLEAR: unmounting frees
// it. Blocking (about 5 ms; 30-60 ms when the template is made).
Result<void> mount_disk_image(const std::string& image, const std::string& target, DiskSize size,
                              const std::string& templates);

// Detaches the mount on `target`, if there is one (MNT_DETACH: the loop device goes with its
// last user), and removes `image`. Nothing there is no error.
Result<void> remove_disk_image(const std::string& image, const std::string& target);

// Whether `path` is a mount point (its device differs from its parent's).
bool is_mount_point(const std::string& path);

// What is left on the file system holding `path`, for users without privilege (f_bavail,
// f_favail).
struct DiskFree {
  uint64_t bytes = 0;
  uint64_t inodes = 0;
};
Result<DiskFree> disk_free(const std::string& path);

// Whether loop devices can be set up here (/dev/loop-control opens read-write) and mke2fs is
// installed: the disk limit's mechanism. `why` says what is missing when not.
bool loop_disks_available(std::string* why = nullptr);

}  // namespace sandrun::sandbox
