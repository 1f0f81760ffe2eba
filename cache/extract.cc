// Secure extraction of one layer tar into a directory: every path resolved beneath the root.
//
// The security argument: entry names are normalised lexically ("..": refused; a leading "/":
// refused), the parent of every entry is opened with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS), and the entry is then created with *at() calls on that parent fd with
// O_NOFOLLOW / O_EXCL. So no entry can name, or be written through, anything outside the
// root, whatever symlinks earlier entries made. Symlink targets are stored as given and never
// followed by us. Hardlink targets are resolved the same way and must be existing
// non-directories of this layer.
#include "cache/extract.h"
#include "cache/archive_lib.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "cache/entry_path.h"
#include "cache/extract_meta.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::cache {

ExtractOptions default_extract_options() {
  ExtractOptions o;
  o.chown = ::geteuid() == 0;
  return o;
}

namespace {

Result<void> pwrite_all(int fd, const char* data, size_t size, int64_t offset) {
  while (size > 0) {
    ssize_t n = ::pwrite(fd, data, size, offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Error::sys("write data");
    }
    data += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return {};
}

class Extractor {
 public:
  Extractor(int root, const ExtractOptions& options) : root_(root), options_(options) {}

  Result<void> entry(struct archive* a, struct archive_entry* e);
  Result<ExtractReport> finish();

 private:
  Result<void> dispatch(struct archive* a, struct archive_entry* e, std::string_view raw);
  // Removes what is at `p` unless it is a directory and `keep_dir`; true when a dir was kept.
  Result<bool> clear_way(int parent, const EntryPath& p, bool keep_dir);
  Result<void> regular(struct archive* a, struct archive_entry* e, int parent, const EntryPath& p);
  Result<void> write_data(struct archive* a, struct archive_entry* e, int fd);
  Result<void> directory(struct archive_entry* e, int parent, const EntryPath& p);
  Result<void> symlink(struct archive_entry* e, int parent, const EntryPath& p);
  Result<void> hardlink(struct archive_entry* e, int parent, const EntryPath& p);
  Result<void> fifo(struct archive_entry* e, int parent, const EntryPath& p);
  Result<void> metadata(int fd, struct archive_entry* e);

  int root_;
  ExtractOptions options_;
  ExtractReport report_;
  DeferredDirs dirs_;
  std::set<std::string> skipped_;  // device nodes and sockets not created: links to them too
};

Result<void> Extractor::entry(struct archive* a, struct archive_entry* e) {
  const char* raw = arc().archive_entry_pathname(e);
  if (!raw) raw = arc().archive_entry_pathname_utf8(e);
  if (!raw) return Error::msg("layer entry #{}: unreadable name", report_.entries + 1);
  auto r = dispatch(a, e, raw);
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
  UniqueFd parent = SANDRUN_TRY(open_parent(root_, p.parent, true));
  if (!is_link && (type == AE_IFCHR || type == AE_IFBLK || type == AE_IFSOCK)) {
    // Not created, but still the last word on this name: an earlier entry there goes.
    SANDRUN_TRY(clear_way(parent.get(), p, false));
    ++(type == AE_IFSOCK ? report_.skipped_sockets : report_.skipped_devices);
    skipped_.insert(p.path);
    log::debug("layer entry {}: device node or socket skipped (sandrun mounts its own /dev)",
               quoted(raw));
    return {};
  }
  if (is_link) return hardlink(e, parent.get(), p);
  skipped_.erase(p.path);
  switch (type) {
    case AE_IFREG: return regular(a, e, parent.get(), p);
    case AE_IFDIR: return directory(e, parent.get(), p);
    case AE_IFLNK: return symlink(e, parent.get(), p);
    case AE_IFIFO: return fifo(e, parent.get(), p);
    default: return Error::msg("unsupported entry type {:o}", static_cast<unsigned>(type));
  }
}

Result<bool> Extractor::clear_way(int parent, const EntryPath& p, bool keep_dir) {
  struct stat st;
  if (::fstatat(parent, p.base.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return false;
    return Error::sys("stat existing entry");
  }
  if (S_ISDIR(st.st_mode)) {
    if (keep_dir) return true;
    dirs_.drop_subtree(p.path);
    auto r = fs::remove_tree(parent, p.base);
    if (!r) return std::move(r.error().wrap("replace directory"));
    return false;
  }
  // Duplicate entries: the last one wins, as with tar.
  if (::unlinkat(parent, p.base.c_str(), 0) < 0) return Error::sys("replace existing entry");
  return false;
}

Result<void> Extractor::metadata(int fd, struct archive_entry* e) {
  EntryMeta m = meta_of(e);
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
  if (fd < 0) return Error::sys("create file");
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
    return Error::sys("extend sparse file");
  return {};
}

Result<void> Extractor::directory(struct archive_entry* e, int parent, const EntryPath& p) {
  if (!p.is_root()) {
    bool kept = SANDRUN_TRY(clear_way(parent, p, true));
    if (!kept && ::mkdirat(parent, p.base.c_str(), 0700) < 0) return Error::sys("create directory");
  }
  UniqueFd dir = SANDRUN_TRY(open_dir_beneath(root_, p.path));
  EntryMeta m = meta_of(e);
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
  if (::symlinkat(target, parent, p.base.c_str()) < 0) return Error::sys("create symlink");
  EntryMeta m = meta_of(e);
  if (options_.chown &&
      ::fchownat(parent, p.base.c_str(), m.uid, m.gid, AT_SYMLINK_NOFOLLOW) < 0)
    return Error::sys("chown symlink to {}:{}", m.uid, m.gid);
  if (::utimensat(parent, p.base.c_str(), m.times, AT_SYMLINK_NOFOLLOW) < 0)
    return Error::sys("set symlink times");
  ++report_.symlinks;
  return {};
}

Result<void> Extractor::hardlink(struct archive_entry* e, int parent, const EntryPath& p) {
  const char* raw = arc().archive_entry_hardlink(e);
  const std::string what = fmt::format("hardlink target {}", quoted(raw));
  auto target = normalize_entry_name(raw);
  if (!target) return std::move(target.error().wrap(what));
  if (target->is_root()) return Error::msg("{} is a directory", what);
  if (target->path == p.path) return Error::msg("{} is the entry itself", what);
  if (skipped_.count(target->path)) {  // a second name for a skipped device node
    SANDRUN_TRY(clear_way(parent, p, false));
    ++report_.skipped_devices;
    skipped_.insert(p.path);
    return {};
  }
  skipped_.erase(p.path);
  // An absolute target names a file of this layer (like GNU tar), never one of the host.
  bool missing = false;
  auto tparent = open_parent(root_, target->parent, false, &missing);
  if (!tparent && missing) return Error::msg("{} does not exist in the layer", what);
  if (!tparent) return std::move(tparent.error().wrap(what));
  struct stat st;
  if (::fstatat(tparent->get(), target->base.c_str(), &st, AT_SYMLINK_NOFOLLOW) < 0) {
    if (errno == ENOENT) return Error::msg("{} does not exist in the layer", what);
    return Error::sys("{}", what);
  }
  if (S_ISDIR(st.st_mode)) return Error::msg("{} is a directory", what);
  SANDRUN_TRY(clear_way(parent, p, false));
  // Flags 0: a symlink target is linked itself, never followed. No metadata is applied: the
  // link shares its inode with the target, which already has its own.
  if (::linkat(tparent->get(), target->base.c_str(), parent, p.base.c_str(), 0) < 0)
    return Error::sys("link to {}", quoted(target->path));
  ++report_.hardlinks;
  return {};
}

Result<void> Extractor::fifo(struct archive_entry* e, int parent, const EntryPath& p) {
  SANDRUN_TRY(clear_way(parent, p, false));
  if (::mkfifoat(parent, p.base.c_str(), 0600) < 0) return Error::sys("create fifo");
  // O_RDONLY | O_NONBLOCK opens a FIFO without waiting for a writer.
  int fd = ::openat(parent, p.base.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error::sys("open fifo");
  UniqueFd f(fd);
  struct stat st;
  if (::fstat(f.get(), &st) < 0 || !S_ISFIFO(st.st_mode)) return Error::msg("fifo was replaced");
  SANDRUN_TRY(metadata(f.get(), e));
  ++report_.fifos;
  return {};
}

Result<ExtractReport> Extractor::finish() {
  SANDRUN_TRY(dirs_.apply(root_));
  return report_;
}

}  // namespace

Result<ExtractReport> extract_layer(int root_fd, struct archive* a, const ExtractOptions& options) {
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
  return x.finish();
}

}  // namespace sandrun::cache
