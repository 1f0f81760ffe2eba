// Importing a rootfs tarball as a single-layer image (through import_image).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/image_import.h"
#include "cache/layout.h"
#include "cache/store.h"
#include "sandbox/sys/fs.h"

namespace sandrun::cache {

Result<ImageRecord> Store::import_rootfs_fd(std::string_view ref, int fd, std::string_view what) {
  auto parsed = parse_ref(ref);
  if (!parsed) return std::move(parsed.error().wrap(fmt::format("import {}", what)));
  if (!parsed->digest.empty()) return Error::msg("import {}: name it with a tag, not a digest", what);
  // One layer, no config yet: import_image makes the config once the layer's diff id is known.
  SourceImage image;
  image.what = std::string(what);
  image.layers.resize(1);
  FdLayerReader reader(
      [fd](size_t) -> Result<UniqueFd> {
        int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dup < 0) return Error::sys("duplicate the fd of {}", fs::fd_path(fd));
        return UniqueFd(dup);
      },
      1);
  auto imported = import_image(Layout(root_), *parsed, image, reader, limits_);
  if (!imported) return std::move(imported).error();
  return std::move(imported->record);
}

Result<ImageRecord> Store::import_rootfs(std::string_view ref, const std::string& tarball) {
  auto fd = fs::open_path(tarball, O_RDONLY | O_NOCTTY);
  if (!fd) return std::move(fd.error().wrap(fmt::format("import {}", tarball)));
  struct stat st;
  if (::fstat(fd->get(), &st) == 0 && S_ISDIR(st.st_mode))
    return Error::msg("import {}: is a directory; expected a rootfs tarball", tarball);
  return import_rootfs_fd(ref, fd->get(), tarball);
}

}  // namespace sandrun::cache
