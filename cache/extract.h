// Secure extraction of one layer tar into a directory: every path resolved beneath the root.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include <sys/types.h>

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

// What the layers of one image unpack to together, against the image's caps (0: none); the
// layers may unpack in parallel, so the counts are shared and atomic.
struct ImageBudget {
  uint64_t max_bytes = 0;
  uint64_t max_entries = 0;
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> entries{0};
};

struct ExtractOptions {
  // Apply the entries' uid/gid. Only root may; without it files belong to the caller.
  bool chown = false;
  // Mark opaque directories with trusted.overlay.opaque too (root's overlay mounts read only
  // that; only root may set it). user.overlay.opaque, which `userxattr` mounts read, is
  // always set.
  bool trusted_overlay = false;
  // Caps on this layer (0: none) and the image's budget it draws from (null: none). Bytes are
  // the apparent size of what the tar holds (a sparse entry's whole size, not its data), plus
  // what follows its end-of-archive blocks; both are counted as headers are read, before
  // anything is written, so a bomb stops at the cap with nothing of it written past it.
  uint64_t max_bytes = 0;
  uint64_t max_entries = 0;
  ImageBudget* image = nullptr;
  // With chown, the owners as a container's user namespace maps them (docker cp into a
  // container): an entry's uid and gid (or 0 and 0 with `owner_root`) plus these host bases.
  std::optional<std::pair<uid_t, gid_t>> owner_base;
  bool owner_root = false;
  // Into a running container (docker cp): entries may lie on its other mounts beneath the
  // target (its /tmp), each on a data file system (entry_path.h: check_data_fs).
  bool cross_mounts = false;
};

// Counts `bytes` and `entries` against the caps of `options`, adding to `*layer_bytes` and
// `*layer_entries` (this layer's counts so far). An error names the cap that was passed:
//   the layer unpacks to more than 64 GiB (its cap per layer)
Result<void> charge_unpacked(const ExtractOptions& options, uint64_t* layer_bytes, uint64_t* layer_entries,
                             uint64_t bytes, uint64_t entries);

// "64 GiB", "1.5 MiB", "100 bytes": a cap as messages show it.
std::string cap_text(uint64_t bytes);

ExtractOptions default_extract_options();  // chown and trusted_overlay when running as root

// Extracts every entry of `a` (a libarchive reader positioned before its first header) into
// the directory `root_fd` (O_RDONLY or O_PATH), which becomes one overlayfs lower dir: OCI
// whiteouts (".wh.NAME", ".wh..wh..opq") are written in overlayfs' form. Never writes through
// a symlink, never outside `root_fd`, never calls archive_write_disk. On error the message
// names the entry, like
//   layer entry "../etc/passwd": path escapes the layer root
//   layer entry "/etc/passwd": absolute path in a layer
// and the directory holds a partial layer: the caller must discard it.
// `charged_bytes`, when given, receives the bytes counted against the caps (for the caller to
// go on counting what follows the tar's end).
Result<ExtractReport> extract_layer(int root_fd, struct archive* a, const ExtractOptions& options,
                                    uint64_t* charged_bytes = nullptr);

}  // namespace sandrun::cache
