// Importing a rootfs tarball as a single-layer image: unpack into tmp/, then commit.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>

#include "cache/digest.h"
#include "cache/index.h"
#include "cache/layout.h"
#include "cache/oci_config.h"
#include "cache/store.h"
#include "cache/unpack.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::cache {

namespace {

// Renames tmp/<entry>/<name> to <dir>/<final> unless that exists (identical content: same
// digest), in which case the existing one wins and ours goes with the temp entry.
Result<bool> commit_entry(const TempEntry& tmp, const char* name, const std::string& dir,
                          const std::string& final_name) {
  UniqueFd target = SANDRUN_TRY(fs::open_path(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW));
  if (::renameat2(tmp.fd(), name, target.get(), final_name.c_str(), RENAME_NOREPLACE) == 0)
    return true;
  if (errno == EEXIST) return false;
  return Error::sys("move {} into {}", name, fs::join(dir, final_name));
}

// Writes `data` as the blob named by its digest (computed here, so it matches the bytes).
Result<std::string> write_blob(const Layout& layout, const TempEntry& tmp, std::string_view data) {
  std::string digest = sha256_of(data);
  int fd = ::openat(tmp.fd(), "config", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0644);
  if (fd < 0) return Error::sys("create config blob");
  UniqueFd file(fd);
  SANDRUN_TRY(fs::write_all(file.get(), data));
  if (::fsync(file.get()) < 0) return Error::sys("fsync config blob");
  SANDRUN_TRY(commit_entry(tmp, "config", layout.blobs, std::string(digest_hex(digest))));
  return digest;
}

// Under the exclusive cache lock: blob and layer into place, config blob, index record;
// then the layers and blobs of a replaced record that nothing uses any more are collected.
Result<ImageRecord> commit(const Layout& layout, const ImageRef& ref, const TempEntry& tmp,
                           const UnpackedLayer& unpacked, Garbage& garbage) {
  UniqueFd lock = SANDRUN_TRY(lock_cache(layout, true));
  const LayerRef& layer = unpacked.layer;
  SANDRUN_TRY(commit_entry(tmp, "blob", layout.blobs, std::string(digest_hex(layer.blob_digest))));
  bool fresh = SANDRUN_TRY(
      commit_entry(tmp, "layer", layout.layers, std::string(digest_hex(layer.diff_id))));
  if (!fresh) log::debug("image cache: layer {} already unpacked, reusing it", layer.diff_id);
  ImageRecord record;
  record.name = ref.name;
  record.tag = ref.tag;
  record.layers = {layer};
  record.config = rootfs_image_config();
  record.created = static_cast<int64_t>(::time(nullptr));
  const std::string config = make_image_config({layer.diff_id}, record.config);
  record.id = SANDRUN_TRY(write_blob(layout, tmp, config));
  SANDRUN_TRY(sync_dir(layout.blobs));
  SANDRUN_TRY(sync_dir(layout.layers));
  Index index = SANDRUN_TRY(load_index(layout));
  std::optional<ImageRecord> old = index.put(record);
  SANDRUN_TRY(save_index(layout, index));
  if (old) {
    for (const auto& l : old->layers) {
      if (!index.uses_layer(l.diff_id)) SANDRUN_TRY(drop_layer(layout, l.diff_id, garbage));
      if (!index.uses_blob(l.blob_digest)) SANDRUN_TRY(drop_blob(layout, l.blob_digest));
    }
    if (!index.uses_blob(old->id)) SANDRUN_TRY(drop_blob(layout, old->id));
  }
  return record;
}

void log_report(std::string_view what, const ExtractReport& r) {
  if (r.unsupported_xattrs > 0)
    log::warn("import {}: {} extended attributes were not set (not supported here)", what,
              r.unsupported_xattrs);
  log::debug("import {}: {} entries, {} bytes; {} whiteouts, {} opaque directories; skipped {} "
             "device nodes, {} sockets; stripped {} overlay xattrs", what, r.entries, r.bytes,
             r.whiteouts, r.opaque_dirs, r.skipped_devices, r.skipped_sockets, r.stripped_xattrs);
}

Result<ImageRecord> import_stream(const Layout& layout, const ImageRef& ref, int fd,
                                  std::string_view what) {
  TempEntry tmp = SANDRUN_TRY(TempEntry::create(layout, "import"));
  int blob = ::openat(tmp.fd(), "blob", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      0644);
  if (blob < 0) return Error::sys("create {}/{}/blob", layout.tmp, tmp.name());
  UniqueFd blob_fd(blob);
  if (::mkdirat(tmp.fd(), "layer", 0700) < 0)
    return Error::sys("create {}/{}/layer", layout.tmp, tmp.name());
  int dir = ::openat(tmp.fd(), "layer", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dir < 0) return Error::sys("open {}/{}/layer", layout.tmp, tmp.name());
  UniqueFd layer_fd(dir);
  // The layer root is an overlay lower dir: "/" of every container. 0755 unless the tar
  // has a "." entry that says otherwise (applied by the extractor after this).
  if (::fchmod(layer_fd.get(), 0755) < 0) return Error::sys("chmod layer root");
  UnpackedLayer unpacked = SANDRUN_TRY(unpack_layer(fd, blob_fd.get(), layer_fd.get(),
                                                    default_extract_options()));
  log_report(what, unpacked.report);
  // One syncfs for the thousands of files just written: a layer renamed into layers/ must
  // be complete after a crash, never half there and mistaken for whole.
  if (::fsync(blob_fd.get()) < 0 || ::syncfs(layer_fd.get()) < 0)
    return Error::sys("sync {}", layout.tmp);
  Garbage garbage;
  ImageRecord record = SANDRUN_TRY(commit(layout, ref, tmp, unpacked, garbage));
  return record;  // `garbage` and `tmp` are removed after the cache lock was released
}

}  // namespace

Result<ImageRecord> Store::import_rootfs_fd(std::string_view ref, int fd, std::string_view what) {
  auto wrap = [&](Error e) { return std::move(e.wrap(fmt::format("import {}", what))); };
  auto parsed = parse_ref(ref);
  if (!parsed) return wrap(std::move(parsed).error());
  auto record = import_stream(Layout(root_), *parsed, fd, what);
  if (!record) return wrap(std::move(record).error());
  return record;
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
