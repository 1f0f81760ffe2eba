// Secure extraction of one layer tar into a directory: every path resolved beneath the root.
//
// The security argument: entry names are normalised lexically ("..": refused; a leading "/":
// refused), the parent of every entry is opened with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS), and the entry is then created with *at() calls on that parent fd with
// O_NOFOLLOW / O_EXCL. So no entry can name, or be written through, anything outside the
// root, whatever symlinks earlier entries made. Symlink targets are stored as given and never
// followed by us. Hardlink targets are resolved the same way and must be existing
// non-directories of this layer.
//
// Whiteouts (OCI image-spec layer.md). The layer becomes one overlayfs lower dir of its own,
// never applied onto the layers below, so markers become what overlayfs reads:
// - ".wh.NAME" (a regular file or hardlink entry; its data are ignored) deletes NAME of the
//   lower layers only: a 0/0 character device at NAME when this layer has nothing there, and
//   when this layer has a directory NAME, that directory marked opaque (lower entries would
//   show through it otherwise); a non-directory NAME of this layer already hides the lower
//   one. The spec makes this independent of where the marker sits in the tar, so markers are
//   applied after the last entry, to what the layer then holds.
// - ".wh..wh..opq" marks its directory opaque: user.overlay.opaque=y (read by overlays mounted
//   with `userxattr`, in a user namespace) and, as root, trusted.overlay.opaque=y (read by
//   root's mounts). The directory is created like any implied parent.
// - A 0/0 character device entry is an overlay-style whiteout already and is kept; other
//   device nodes are skipped.
// - Malformed markers are refused, and so is any other ".wh." name: no entry of another type,
//   no directory component and no hardlink target may carry the prefix. overlayfs metadata
//   xattrs of the tar itself are stripped (extract_meta.cc): only markers set them.
#include "cache/extract.h"
#include "cache/archive_lib.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <set>

#include "cache/entry_path.h"
#include "cache/extract_meta.h"
#include "cache/whiteout.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::cache {

std::string cap_text(uint64_t bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return fmt::format("{} bytes", bytes);
  double v = static_cast<double>(bytes) / 1024;
  size_t u = 0;
  while (v >= 1024 && u + 1 < std::size(kUnits)) {
    v /= 1024;
    ++u;
  }
  return v == static_cast<double>(static_cast<uint64_t>(v)) ? fmt::format("{} {}", static_cast<uint64_t>(v), kUnits[u])
                                                             : fmt::format("{:.1f} {}", v, kUnits[u]);
}

Result<void> charge_unpacked(const ExtractOptions& options, uint64_t* layer_bytes, uint64_t* layer_entries,
                             uint64_t bytes, uint64_t entries) {
  auto refuse = [](std::string what) {
    return Error::msg("{}", what).hint(
        "a decompression bomb, or an image larger than this host allows: the [policy] keys max_image_bytes, "
        "max_image_entries, max_layer_bytes and max_layer_entries of /etc/sandrun/sandrun.toml set the caps");
  };
  // Saturating: a size near 2^64 must not wrap around below the cap.
  auto add = [](uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; };
  *layer_bytes = add(*layer_bytes, bytes);
  *layer_entries = add(*layer_entries, entries);
  if (options.max_bytes && *layer_bytes > options.max_bytes)
    return refuse(fmt::format("the layer unpacks to more than {}, its cap per layer", cap_text(options.max_bytes)));
  if (options.max_entries && *layer_entries > options.max_entries)
    return refuse(fmt::format("the layer has more than {} entries, its cap per layer", options.max_entries));
  if (ImageBudget* image = options.image) {
    // Each charge is clipped just past the cap: a sum of huge sizes must not wrap around.
    const uint64_t b = image->max_bytes ? std::min(bytes, image->max_bytes + 1) : 0;
    const uint64_t total_bytes = image->bytes.fetch_add(b) + b;
    const uint64_t total_entries = image->entries.fetch_add(entries) + entries;
    if (image->max_bytes && total_bytes > image->max_bytes)
      return refuse(fmt::format("the image unpacks to more than {}, its cap per image", cap_text(image->max_bytes)));
    if (image->max_entries && total_entries > image->max_entries)
      return refuse(fmt::format("the image has more than {} entries, its cap per image", image->max_entries));
  }
  return {};
}

ExtractOptions default_extract_options() {
  ExtractOptions o;
  o.chown = ::geteuid() == 0;
  o.trusted_overlay = ::geteuid() == 0;
  return o;
}

namespace {

// An entry's owner as the options map it (a container's user namespace), else its own.
EntryMeta owned(EntryMeta m, const ExtractOptions& o) {
  if (!o.owner_base) return m;
  if (o.owner_root) m.uid = m.gid = 0;
  m.uid += o.owner_base->first;
  m.gid += o.owner_base->second;
  return m;
}

Result<void> pwrite_all(int fd, const char* data, size_t size, int64_t offset) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys("write {}", fs::fd_path(fd));
    }
    data += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return {};
}

// The host path of entry `p` below the directory `parent`, for a message; errno is kept (an
// argument of Error::sys).
std::string host_path(int parent, const EntryPath& p) {
  const int saved = errno;
  std::string path = fs::join(fs::fd_path(parent), p.base);
  errno = saved;
  return path;
}

const char* type_name(mode_t type) {
  switch (type) {
    case AE_IFDIR: return "a directory";
    case AE_IFLNK: return "a symlink";
    case AE_IFIFO: return "a fifo";
    case AE_IFCHR: return "a character device";
    case AE_IFBLK: return "a block device";
    case AE_IFSOCK: return "a socket";
    default: return "an unknown type";
  }
}

// The normalised target of a hardlink entry `p`: never an escape, the root, the entry itself
// or a whiteout marker (which is never created, so a link to it would have nothing to share).
Result<EntryPath> link_target(const char* raw, const EntryPath& p) {
  const std::string what = fmt::format("hardlink target {}", quoted(raw));
  auto target = normalize_entry_name(raw);
  if (!target) return std::move(target.error().wrap(what));
  if (target->is_root()) return Error::msg("{} is a directory", what);
  if (target->path == p.path) return Error::msg("{} is the entry itself", what);
  if (has_marker_name(target->path)) return Error::msg("{} is a whiteout", what);
  return target;
}

// True when a marker's directory is gone by the time markers are applied: a later entry of
// this layer replaced it by a non-directory (or by a new tree without it), which hides the
// lower one whole, so there is nothing left to mark.
bool replaced_in_layer(const Error& e) {
  return e.code() == ENOENT || e.code() == ENOTDIR || e.code() == ELOOP;
}

class Extractor {
 public:
  Extractor(int root, const ExtractOptions& options) : root_(root), options_(options) {}

  Result<void> entry(struct archive* a, struct archive_entry* e);
  Result<ExtractReport> finish();
  uint64_t charged_bytes() const { return charged_bytes_; }

 private:
  // A marker to apply after the last entry: where, and the marker's entry name for messages.
  struct Pending {
    EntryPath at;
    std::string entry;
  };

  Result<void> dispatch(struct archive* a, struct archive_entry* e, std::string_view raw);
  // Removes what is at `p` unless it is a directory and `keep_dir`; true when a dir was kept.
  Result<bool> clear_way(int parent, const EntryPath& p, bool keep_dir);
  Result<void> marker(struct archive_entry* e, const EntryPath& p, Marker kind,
                      std::string_view raw);
  Result<void> device(struct archive_entry* e, int parent, const EntryPath& p, mode_t type,
                      std::string_view raw);
  Result<void> regular(struct archive* a, struct archive_entry* e, int parent, const EntryPath& p);
  Result<void> write_data(struct archive* a, struct archive_entry* e, int fd);
  Result<void> directory(struct archive_entry* e, int parent, const EntryPath& p);
  Result<void> symlink(struct archive_entry* e, int parent, const EntryPath& p);
  Result<void> hardlink(struct archive_entry* e, int parent, const EntryPath& p);
  Result<void> fifo(struct archive_entry* e, int parent, const EntryPath& p);
  Result<void> metadata(int fd, struct archive_entry* e);
  Result<void> apply_whiteout(const Pending& w);
  Result<void> apply_opaque(const Pending& o);

  int root_;
  ExtractOptions options_;
  ExtractReport report_;
  uint64_t charged_bytes_ = 0;    // against options_.max_bytes
  uint64_t charged_entries_ = 0;  // against options_.max_entries
  DeferredDirs dirs_;
  std::set<std::string> skipped_;  // device nodes and sockets not created: links to them too
  // The parent directory of the last entry, kept open: a tar lists a directory's entries
  // together, so most entries skip the openat2 walk from the root. Dropped as soon as an entry
  // names that directory or one above it: only such an entry can replace or remove it.
  std::string cached_parent_path_;
  UniqueFd cached_parent_;
  Result<int> parent_of(const EntryPath& p);
  std::map<std::string, Pending> whiteouts_;  // path of NAME -> its ".wh.NAME" marker
  std::map<std::string, Pending> opaque_;     // directory path -> its marker
};

Result<void> Extractor::entry(struct archive* a, struct archive_entry* e) {
  const char* raw = arc().archive_entry_pathname(e);
  if (!raw) raw = arc().archive_entry_pathname_utf8(e);
  if (!raw) return Error::msg("layer entry #{}: unreadable name", report_.entries + 1);
  // Counted before anything of the entry is written: its apparent size (a sparse entry's
  // whole extent), whatever its type or fate.
  const la_int64_t size = arc().archive_entry_size_is_set(e) ? arc().archive_entry_size(e) : 0;
  auto r = charge_unpacked(options_, &charged_bytes_, &charged_entries_, size > 0 ? static_cast<uint64_t>(size) : 0, 1);
  if (r) r = dispatch(a, e, raw);
  if (!r) return std::move(r.error().wrap(fmt::format("layer entry {}", quoted(raw))));
  return {};
}

Result<void> Extractor::dispatch(struct archive* a, struct archive_entry* e, std::string_view raw) {
  EntryPath p = SANDRUN_TRY(normalize_entry_name(raw));
  ++report_.entries;
  // Refused rather than made relative: no image builder writes one, and the same tar
  // unpacked by another tool (tar -P) would write to the host. Checked after normalising, so
  // that "/../x" is reported as the escape it is.
  if (raw.starts_with('/')) return Error::msg("absolute path in a layer");
  const bool is_link = arc().archive_entry_hardlink(e) != nullptr;
  const mode_t type = arc().archive_entry_filetype(e);
  if (p.is_root()) {
    if (is_link || type != AE_IFDIR) return Error::msg("the layer root must be a directory");
    return directory(e, -1, p);
  }
  const Marker kind = SANDRUN_TRY(classify_marker(p));
  if (kind == Marker::aufs_meta) {
    log::debug("layer entry {}: AUFS metadata skipped", quoted(raw));
    return {};
  }
  if (kind != Marker::none && !is_link && type != AE_IFREG)
    return Error::msg("invalid whiteout {}: {}, not a regular file", quoted(p.base),
                      type_name(type));
  const int parent = SANDRUN_TRY(parent_of(p));
  if (kind != Marker::none) return marker(e, p, kind, raw);
  if (!is_link && (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK))
    return device(e, parent, p, type, raw);
  if (is_link) return hardlink(e, parent, p);
  skipped_.erase(p.path);
  switch (type) {
    case AE_IFREG: return regular(a, e, parent, p);
    case AE_IFDIR: return directory(e, parent, p);
    case AE_IFLNK: return symlink(e, parent, p);
    case AE_IFIFO: return fifo(e, parent, p);
    default: return Error::msg("unsupported entry type {:o}", static_cast<unsigned>(type));
  }
}

// The marker's directory exists now (dispatch made it like any implied parent); what the
// marker does is decided once all entries are in (see the top of this file).
Result<void> Extractor::marker(struct archive_entry* e, const EntryPath& p, Marker kind,
                               std::string_view raw) {
  if (const char* target = arc().archive_entry_hardlink(e)) SANDRUN_TRY(link_target(target, p));
  if (kind == Marker::opaque) {
    EntryPath dir;
    if (!p.parent.empty()) dir = SANDRUN_TRY(normalize_entry_name(p.parent));
    opaque_.emplace(dir.path, Pending{dir, std::string(raw)});
  } else {
    EntryPath name = whited_out(p);
    whiteouts_.emplace(name.path, Pending{name, std::string(raw)});
  }
  return {};
}

Result<void> Extractor::device(struct archive_entry* e, int parent, const EntryPath& p,
                               mode_t type, std::string_view raw) {
  // Not created, or a whiteout: either way the last word on this name, so an earlier entry
  // there goes.
  SANDRUN_TRY(clear_way(parent, p, false));
  if (type == AE_IFCHR && arc().archive_entry_rdevmajor(e) == 0 &&
      arc().archive_entry_rdevminor(e) == 0) {
    // An overlay-style whiteout ("docker export" of an overlay upper dir): already the form
    // this layer needs.
    SANDRUN_TRY(make_whiteout(parent, p.base));
    skipped_.erase(p.path);
    ++report_.whiteouts;
    log::debug("layer entry {}: whiteout", quoted(raw));
    return {};
  }
  ++(type == AE_IFSOCK ? report_.skipped_sockets : report_.skipped_devices);
  skipped_.insert(p.path);
  log::debug("layer entry {}: device node or socket skipped (sandrun mounts its own /dev)",
             quoted(raw));
  return {};
}

Result<int> Extractor::parent_of(const EntryPath& p) {
  if (cached_parent_ && (cached_parent_path_ == p.path || cached_parent_path_.starts_with(p.path + "/")))
    cached_parent_.reset();
  if (!cached_parent_ || cached_parent_path_ != p.parent) {
    cached_parent_ = SANDRUN_TRY(open_parent(root_, p.parent, true, nullptr, options_.cross_mounts));
    cached_parent_path_ = p.parent;
  }
  return cached_parent_.get();
}

Result<bool> Extractor::clear_way(int parent, const EntryPath& p, bool keep_dir) {
  struct stat st;
  if (::fstatat(parent, p.base.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return false;
    return Error::sys("stat existing entry {}", host_path(parent, p));
  }
  if (S_ISDIR(st.st_mode)) {
    if (keep_dir) return true;
    dirs_.drop_subtree(p.path);
    auto r = fs::remove_tree(parent, p.base);
    if (!r) return std::move(r.error().wrap("replace directory"));
    return false;
  }
  // Duplicate entries: the last one wins, as with tar.
  if (::unlinkat(parent, p.base.c_str(), 0) < 0) return Error::sys("replace existing entry {}", host_path(parent, p));
  return false;
}

Result<void> Extractor::metadata(int fd, struct archive_entry* e) {
  EntryMeta m = owned(meta_of(e), options_);
  SANDRUN_TRY(apply_owner(fd, m, options_.chown));
  SANDRUN_TRY(apply_mode(fd, m));
  SANDRUN_TRY(apply_xattrs(fd, e, report_));
  return apply_times(fd, m);
}

Result<void> Extractor::regular(struct archive* a, struct archive_entry* e, int parent,
                                const EntryPath& p) {
  SANDRUN_TRY(clear_way(parent, p, false));
  int fd = ::openat(parent, p.base.c_str(),
                    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return Error::sys("create file {}", host_path(parent, p));
  UniqueFd file(fd);
  SANDRUN_TRY(write_data(a, e, file.get()));
  SANDRUN_TRY(metadata(file.get(), e));
  ++report_.files;
  return {};
}

Result<void> Extractor::write_data(struct archive* a, struct archive_entry* e, int fd) {
  int64_t end = 0;
  for (;;) {
    const void* buf = nullptr;
    size_t size = 0;
    la_int64_t offset = 0;
    int rc = arc().archive_read_data_block(a, &buf, &size, &offset);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return Error::msg("read data: {}", archive_text(a));
    // pwrite at the block's offset: the gaps of a sparse entry stay holes.
    SANDRUN_TRY(pwrite_all(fd, static_cast<const char*>(buf), size, offset));
    end = std::max<int64_t>(end, offset + static_cast<int64_t>(size));
    report_.bytes += size;
  }
  if (arc().archive_entry_size_is_set(e) && arc().archive_entry_size(e) > end &&
      ::ftruncate(fd, arc().archive_entry_size(e)) < 0)
    return Error::sys("extend sparse file {}", fs::fd_path(fd));
  return {};
}

Result<void> Extractor::directory(struct archive_entry* e, int parent, const EntryPath& p) {
  if (!p.is_root()) {
    bool kept = SANDRUN_TRY(clear_way(parent, p, true));
    if (!kept && ::mkdirat(parent, p.base.c_str(), 0700) < 0) return Error::sys("create directory {}", host_path(parent, p));
  }
  // One component below a directory opened beneath the root, not followed if a symlink.
  UniqueFd dir = p.is_root() ? SANDRUN_TRY(open_dir_beneath(root_, p.path, options_.cross_mounts))
                             : UniqueFd(::openat(parent, p.base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) return Error::sys("open directory {}", host_path(parent, p));
  EntryMeta m = owned(meta_of(e), options_);
  SANDRUN_TRY(apply_owner(dir.get(), m, options_.chown));
  SANDRUN_TRY(apply_xattrs(dir.get(), e, report_));
  dirs_.set(p.path, m);
  ++report_.dirs;
  return {};
}

Result<void> Extractor::symlink(struct archive_entry* e, int parent, const EntryPath& p) {
  const char* target = arc().archive_entry_symlink(e);
  if (!target) target = arc().archive_entry_symlink_utf8(e);
  if (!target || !*target) return Error::msg("symlink without a target");
  SANDRUN_TRY(clear_way(parent, p, false));
  // The target is data: stored as is, resolved only inside the container's own root.
  if (::symlinkat(target, parent, p.base.c_str()) < 0) return Error::sys("create symlink {}", host_path(parent, p));
  EntryMeta m = owned(meta_of(e), options_);
  if (options_.chown &&
      ::fchownat(parent, p.base.c_str(), m.uid, m.gid, AT_SYMLINK_NOFOLLOW) < 0)
    return Error::sys("chown symlink {} to {}:{}", host_path(parent, p), m.uid, m.gid);
  if (::utimensat(parent, p.base.c_str(), m.times, AT_SYMLINK_NOFOLLOW) < 0)
    return Error::sys("set the times of symlink {}", host_path(parent, p));
  ++report_.symlinks;
  return {};
}

Result<void> Extractor::hardlink(struct archive_entry* e, int parent, const EntryPath& p) {
  const char* raw = arc().archive_entry_hardlink(e);
  const std::string what = fmt::format("hardlink target {}", quoted(raw));
  auto target = SANDRUN_TRY(link_target(raw, p));
  if (skipped_.count(target.path)) {  // a second name for a skipped device node
    SANDRUN_TRY(clear_way(parent, p, false));
    ++report_.skipped_devices;
    skipped_.insert(p.path);
    return {};
  }
  skipped_.erase(p.path);
  // An absolute target names a file of this layer (like GNU tar), never one of the host.
  bool missing = false;
  auto tparent = open_parent(root_, target.parent, false, &missing, options_.cross_mounts);
  if (!tparent && missing) return Error::msg("{} does not exist in the layer", what);
  if (!tparent) return std::move(tparent.error().wrap(what));
  struct stat st;
  if (::fstatat(tparent->get(), target.base.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return Error::msg("{} does not exist in the layer", what);
    return Error::sys("{} in {}", what, fs::fd_path(tparent->get()));
  }
  if (S_ISDIR(st.st_mode)) return Error::msg("{} is a directory", what);
  SANDRUN_TRY(clear_way(parent, p, false));
  // Flags 0: a symlink target is linked itself, never followed. No metadata is applied: the
  // link shares its inode with the target, which already has its own.
  if (::linkat(tparent->get(), target.base.c_str(), parent, p.base.c_str(), 0) < 0)
    return Error::sys("link {} to {}", host_path(parent, p), quoted(target.path));
  ++report_.hardlinks;
  return {};
}

Result<void> Extractor::fifo(struct archive_entry* e, int parent, const EntryPath& p) {
  SANDRUN_TRY(clear_way(parent, p, false));
  if (::mkfifoat(parent, p.base.c_str(), 0600) < 0) return Error::sys("create fifo {}", host_path(parent, p));
  // O_RDONLY | O_NONBLOCK opens a FIFO without waiting for a writer.
  int fd = ::openat(parent, p.base.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error::sys("open fifo {}", host_path(parent, p));
  UniqueFd f(fd);
  struct stat st;
  if (::fstat(f.get(), &st) < 0 || !S_ISFIFO(st.st_mode)) return Error::msg("fifo was replaced");
  SANDRUN_TRY(metadata(f.get(), e));
  ++report_.fifos;
  return {};
}

Result<void> Extractor::apply_whiteout(const Pending& w) {
  auto dir = open_dir_beneath(root_, w.at.parent, options_.cross_mounts);
  if (!dir && replaced_in_layer(dir.error())) return {};
  if (!dir) return std::move(dir).error();
  struct stat st;
  if (::fstatat(dir->get(), w.at.base.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    // This layer's own entry stays. A non-directory hides the lower NAME already; through a
    // directory the lower one's entries would show, unless it is opaque.
    if (S_ISDIR(st.st_mode)) opaque_.emplace(w.at.path, w);
    return {};
  }
  if (errno != ENOENT) return Error::sys("stat {}", quoted(w.at.path));
  SANDRUN_TRY(make_whiteout(dir->get(), w.at.base));
  ++report_.whiteouts;
  log::debug("layer entry {}: whiteout at {}", quoted(w.entry), quoted(w.at.path));
  return {};
}

Result<void> Extractor::apply_opaque(const Pending& o) {
  auto dir = open_dir_beneath(root_, o.at.path, options_.cross_mounts);
  if (!dir && replaced_in_layer(dir.error())) return {};
  if (!dir) return std::move(dir).error();
  const std::string shown = o.at.is_root() ? "." : o.at.path;
  auto r = mark_opaque(dir->get(), options_.trusted_overlay);
  if (!r) return std::move(r.error().wrap(fmt::format("mark directory {} opaque", quoted(shown))));
  ++report_.opaque_dirs;
  log::debug("layer entry {}: directory {} opaque", quoted(o.entry), quoted(shown));
  return {};
}

Result<ExtractReport> Extractor::finish() {
  // Markers before the directories' modes: a read-only directory would refuse the whiteout
  // when not running as root. Whiteouts first: one may add an opaque directory.
  for (const auto& [path, w] : whiteouts_) {
    auto r = apply_whiteout(w);
    if (!r) return std::move(r.error().wrap(fmt::format("layer entry {}", quoted(w.entry))));
  }
  for (const auto& [path, o] : opaque_) {
    auto r = apply_opaque(o);
    if (!r) return std::move(r.error().wrap(fmt::format("layer entry {}", quoted(o.entry))));
  }
  SANDRUN_TRY(dirs_.apply(root_, options_.cross_mounts));
  return report_;
}

}  // namespace

Result<ExtractReport> extract_layer(int root_fd, struct archive* a, const ExtractOptions& options,
                                    uint64_t* charged_bytes) {
  SANDRUN_TRY(load_archive_lib());
  Extractor x(root_fd, options);
  for (;;) {
    struct archive_entry* e = nullptr;
    int rc = arc().archive_read_next_header(a, &e);
    if (rc == ARCHIVE_EOF) break;
    // ARCHIVE_RETRY too is an error here: the stream cannot be re-read.
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
      return Error::msg("read layer: {}", archive_text(a));
    if (rc == ARCHIVE_WARN) log::debug("read layer: {}", archive_text(a));
    SANDRUN_TRY(x.entry(a, e));
  }
  auto report = x.finish();
  if (charged_bytes) *charged_bytes = x.charged_bytes();
  return report;
}

}  // namespace sandrun::cache
