// OCI whiteout markers in layer entry names, and the overlayfs form they take on disk.
#include "cache/whiteout.h"

#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <fmt/format.h>

#include "sandbox/sys/fs.h"

namespace sandrun::cache {

Result<Marker> classify_marker(const EntryPath& p) {
  // Old Docker layers made on AUFS carry its bookkeeping at the root (hardlink and orphan dirs,
  // a marker file); Docker skips it and so does sandrun. Nothing else may start ".wh..wh.".
  const std::string_view first = std::string_view(p.path).substr(0, p.path.find('/'));
  if (first != kOpaqueMarker && (first == ".wh..wh.plnk" || first == ".wh..wh.aufs" || first == ".wh..wh.orph"))
    return Marker::aufs_meta;
  // A ".wh." directory would be a name no layer may hold ("a/.wh.b/c"): the spec reserves
  // the prefix for markers, which are files.
  size_t start = 0;
  while (start < p.path.size()) {
    size_t slash = p.path.find('/', start);
    if (slash == std::string::npos) break;
    const std::string_view rest = std::string_view(p.path).substr(start);
    if (rest.starts_with(kWhiteoutPrefix))
      return Error::msg("invalid whiteout {}: the name contains \"/\"", quoted(rest));
    start = slash + 1;
  }
  if (!p.base.starts_with(kWhiteoutPrefix)) return Marker::none;
  if (p.base == kOpaqueMarker) return Marker::opaque;
  std::string_view name = std::string_view(p.base).substr(kWhiteoutPrefix.size());
  // ".wh.." and ".wh..." would delete the marker's own directory or its parent.
  if (name.empty() || name == "." || name == "..")
    return Error::msg("invalid whiteout {}: {} is not an entry name", quoted(p.base), quoted(name));
  // Also AUFS metadata (".wh..wh.plnk", ".wh..wh.aufs"): no OCI layer has it.
  if (name.starts_with(kWhiteoutPrefix))
    return Error::msg("invalid whiteout {}: {} is itself a whiteout name", quoted(p.base),
                      quoted(name));
  return Marker::whiteout;
}

EntryPath whited_out(const EntryPath& marker) {
  EntryPath out;
  out.parent = marker.parent;
  out.base = marker.base.substr(kWhiteoutPrefix.size());
  out.path = out.parent.empty() ? out.base : out.parent + "/" + out.base;
  return out;
}

bool has_marker_name(std::string_view path) {
  for (std::string_view comp : fs::path_components(path))
    if (comp.starts_with(kWhiteoutPrefix)) return true;
  return false;
}

Result<void> make_whiteout(int dir_fd, const std::string& name) {
  // Only the type and the device number make a whiteout; Linux >= 5.8 lets any user create
  // a 0/0 device (no CAP_MKNOD), so this works rootless too.
  if (::mknodat(dir_fd, name.c_str(), S_IFCHR | 0000, makedev(0, 0)) < 0)
    return Error::sys("create whiteout {} in {}", quoted(name), fs::fd_path(dir_fd));
  return {};
}

Result<void> mark_opaque(int dir_fd, bool trusted) {
  if (::fsetxattr(dir_fd, "user.overlay.opaque", "y", 1, 0) < 0) {
    Error e = Error::sys("set xattr \"user.overlay.opaque\" on {}", fs::fd_path(dir_fd));
    if (e.code() == ENOTSUP || e.code() == EPERM)
      e.hint("the image store needs a file system with user.* extended attributes "
             "(ext4, xfs, btrfs; tmpfs since Linux 6.6)");
    return e;
  }
  if (trusted && ::fsetxattr(dir_fd, "trusted.overlay.opaque", "y", 1, 0) < 0)
    return Error::sys("set xattr \"trusted.overlay.opaque\" on {}", fs::fd_path(dir_fd));
  return {};
}

}  // namespace sandrun::cache
