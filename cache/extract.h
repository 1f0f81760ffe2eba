// Secure extraction of one layer tar into a directory: every path resolved beneath the root.
#pragma once

#include <cstdint>

#include "sandbox/sys/result.h"

struct archive;

namespace sandrun::cache {

// What an extraction did; entries that were refused never appear here (they fail it).
struct ExtractReport {
  uint64_t entries = 0;        // headers read, skipped ones included
  uint64_t files = 0;
  uint64_t dirs = 0;
  uint64_t symlinks = 0;
  uint64_t hardlinks = 0;
  uint64_t fifos = 0;
  uint64_t bytes = 0;          // file data written
  uint64_t skipped_devices = 0;  // /dev is never taken from an image: sandrun mounts its own
  uint64_t skipped_sockets = 0;
  uint64_t whiteouts = 0;    // whiteout devices made, from ".wh.NAME" or a 0/0 device entry
  uint64_t opaque_dirs = 0;  // directories marked opaque
  uint64_t stripped_xattrs = 0;      // trusted.overlay.* and user.overlay.*: overlayfs metadata
  uint64_t unsupported_xattrs = 0;   // refused by the file system (ENOTSUP, EPERM)
};

struct ExtractOptions {
  // Apply the entries' uid/gid. Only root may; without it files belong to the caller.
  bool chown = false;
  // Mark opaque directories with trusted.overlay.opaque too (root's overlay mounts read only
  // that; only root may set it). user.overlay.opaque, which `userxattr` mounts read, is
  // always set.
  bool trusted_overlay = false;
};

ExtractOptions default_extract_options();  // chown and trusted_overlay when running as root

// Extracts every entry of `a` (a libarchive reader positioned before its first header) into
// the directory `root_fd` (O_RDONLY or O_PATH), which becomes one overlayfs lower dir: OCI
// whiteouts (".wh.NAME", ".wh..wh..opq") are written in overlayfs' form. Never writes through
// a symlink, never outside `root_fd`, never calls archive_write_disk. On error the message
// names the entry, like
//   layer entry "../etc/passwd": path escapes the layer root
//   layer entry "/etc/passwd": absolute path in a layer
// and the directory holds a partial layer: the caller must discard it.
Result<ExtractReport> extract_layer(int root_fd, struct archive* a, const ExtractOptions& options);

}  // namespace sandrun::cache
