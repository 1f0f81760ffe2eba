// OCI whiteout markers in layer entry names, and the overlayfs form they take on disk.
#pragma once

#include <string>
#include <string_view>

#include "cache/entry_path.h"
#include "sandbox/sys/result.h"

namespace sandrun::cache {

inline constexpr std::string_view kWhiteoutPrefix = ".wh.";
inline constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";

enum class Marker {
  none,      // an ordinary entry
  whiteout,  // ".wh.NAME": the sibling NAME of lower layers is deleted
  opaque,    // ".wh..wh..opq": the lower layers' contents of this directory are hidden
  aufs_meta, // ".wh..wh.plnk/...", ".wh..wh.aufs", ".wh..wh.orph/...": AUFS bookkeeping at the
             // layer root, in layers Docker built on AUFS; skipped, as Docker does
};

// What the last component of `p` marks (AUFS metadata: the first component). Refused, with the
// reason: a ".wh." component that is
// not the last (`invalid whiteout ".wh.a/b": the name contains "/"`), and a NAME that is
// empty, "." or "..", or itself starts with ".wh.".
Result<Marker> classify_marker(const EntryPath& p);

// The entry a ".wh.NAME" marker deletes: NAME, beside the marker.
EntryPath whited_out(const EntryPath& marker);

// True when any component of `path` (normalised) starts with ".wh.".
bool has_marker_name(std::string_view path);

// Creates the whiteout `name` in the directory `dir_fd` (mode 0, owner left as made).
Result<void> make_whiteout(int dir_fd, const std::string& name);

// Marks the directory `dir_fd` (opened O_RDONLY) opaque: user.overlay.opaque=y always, which
// overlays mounted with `userxattr` (in a user namespace) read, and with `trusted` also
// trusted.overlay.opaque=y, which root's overlays read (only root may set trusted.*).
Result<void> mark_opaque(int dir_fd, bool trusted);

}  // namespace sandrun::cache
