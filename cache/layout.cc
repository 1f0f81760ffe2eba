// The on-disk layout of the image store: paths, the cache lock, temp entries, garbage.
#include "cache/layout.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache/digest.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::cache {

Layout::Layout(const std::string& r)
    : root(r),
      lock(fs::join(r, "cache.lock")),
      builtin_lock(fs::join(r, "builtin.lock")),
      index(fs::join(r, "images.json")),
      blobs(fs::join(r, "blobs/sha256")),
      layers(fs::join(r, "layers/sha256")),
      tmp(fs::join(r, "tmp")),
      used(fs::join(r, "used")),
      seals(fs::join(r, "seals")) {}

std::string Layout::blob_path(std::string_view digest) const {
  return fs::join(blobs, digest_hex(digest));
}

std::string Layout::layer_path(std::string_view diff_id) const {
  return fs::join(layers, digest_hex(diff_id));
}

std::string Layout::seal_path(std::string_view diff_id) const {
  return fs::join(seals, digest_hex(diff_id));
}

Result<void> create_layout(const Layout& layout) {
  // The common case, an existing store, costs one stat.
  if (fs::is_dir(layout.tmp)) return {};
  bool fresh = !fs::exists(layout.root);
  SANDRUN_TRY(fs::mkdirs(layout.root, 0700));
  // Only a directory we made is forced to 0700: an operator's choice on an existing one stays.
  if (fresh && ::chmod(layout.root.c_str(), 0700) < 0) return Error::sys("chmod {}", layout.root);
  for (const std::string* d : {&layout.blobs, &layout.layers, &layout.used, &layout.seals, &layout.tmp})
    SANDRUN_TRY(fs::mkdirs(*d, 0700));
  return {};
}

Result<UniqueFd> lock_cache(const Layout& layout, bool exclusive, bool wait) {
  return fs::lock_file(layout.lock, exclusive, wait);
}

std::string random_suffix() {
  unsigned char bytes[8];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
  }
  return out;
}

Result<TempEntry> TempEntry::create(const Layout& layout, std::string_view prefix) {
  // The shared cache lock keeps sweepers (exclusive) out between mkdir and flock.
  UniqueFd cache_lock = SANDRUN_TRY(lock_cache(layout, false));
  TempEntry t;
  t.tmp_dir_ = SANDRUN_TRY(fs::open_path(layout.tmp, O_PATH | O_DIRECTORY | O_NOFOLLOW));
  for (int attempt = 0;; ++attempt) {
    t.name_ = std::string(prefix) + "-" + random_suffix();
    if (::mkdirat(t.tmp_dir_.get(), t.name_.c_str(), 0700) == 0) break;
    if (errno != EEXIST || attempt >= 8) return Error::sys("create {}/{}", layout.tmp, t.name_);
  }
  int fd = ::openat(t.tmp_dir_.get(), t.name_.c_str(),
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Error::sys("open {}/{}", layout.tmp, t.name_);
  t.dir_.reset(fd);
  if (::flock(fd, LOCK_EX | LOCK_NB) < 0) return Error::sys("lock {}/{}", layout.tmp, t.name_);
  return t;
}

TempEntry& TempEntry::operator=(TempEntry&& other) noexcept {
  if (this != &other) {
    remove();
    tmp_dir_ = std::move(other.tmp_dir_);
    dir_ = std::move(other.dir_);
    name_ = std::move(other.name_);
  }
  return *this;
}

TempEntry TempEntry::adopt(UniqueFd tmp_dir, UniqueFd dir, std::string name) {
  TempEntry t;
  t.tmp_dir_ = std::move(tmp_dir);
  t.dir_ = std::move(dir);
  t.name_ = std::move(name);
  return t;
}

void TempEntry::remove() {
  if (tmp_dir_ && !name_.empty()) {
    // Removed while still locked: a sweeper never sees it half deleted and unlocked.
    auto r = fs::remove_tree(tmp_dir_.get(), name_);
    if (!r) log::warn("image cache: cannot remove temp entry {}: {}", name_, r.error().message());
  }
  dir_.reset();
  tmp_dir_.reset();
  name_.clear();
}

Result<void> drop_layer(const Layout& layout, std::string_view diff_id, Garbage& garbage) {
  std::string hex(digest_hex(diff_id));
  UniqueFd layers = SANDRUN_TRY(fs::open_path(layout.layers, O_PATH | O_DIRECTORY));
  int fd = ::openat(layers.get(), hex.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return {};
    return Error::sys("open layer {}", layout.layer_path(diff_id));
  }
  UniqueFd dir(fd);
  if (::flock(dir.get(), LOCK_EX | LOCK_NB) < 0) {
    if (errno != EWOULDBLOCK) return Error::sys("lock layer {}", layout.layer_path(diff_id));
    garbage.kept_in_use.emplace_back(diff_id);
    return {};
  }
  UniqueFd tmp = SANDRUN_TRY(fs::open_path(layout.tmp, O_PATH | O_DIRECTORY | O_NOFOLLOW));
  std::string doomed = "rm-" + hex.substr(0, 12) + "-" + random_suffix();
  // Out of layers/ at once (under the lock), deleted later: an import of the same diff id
  // right after us creates a fresh directory instead of finding a half-deleted one.
  if (::renameat(layers.get(), hex.c_str(), tmp.get(), doomed.c_str()) < 0)
    return Error::sys("move layer {} to {}", layout.layer_path(diff_id), layout.tmp);
  // Its seal goes with it: a layer unpacked again under this diff id gets a new one.
  if (::unlink(layout.seal_path(diff_id).c_str()) < 0 && errno != ENOENT)
    log::warn("image cache: cannot remove the seal {}: {}", layout.seal_path(diff_id), errno_text(errno));
  garbage.removed_layers.emplace_back(diff_id);
  garbage.doomed.push_back(TempEntry::adopt(std::move(tmp), std::move(dir), std::move(doomed)));
  return {};
}

Result<void> drop_blob(const Layout& layout, std::string_view digest) {
  std::string path = layout.blob_path(digest);
  if (::unlink(path.c_str()) < 0 && errno != ENOENT) return Error::sys("remove blob {}", path);
  return {};
}

Result<void> sweep_tmp(const Layout& layout, Garbage& garbage) {
  UniqueFd tmp = SANDRUN_TRY(fs::open_path(layout.tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  std::vector<std::string> names;
  {
    int dup = ::fcntl(tmp.get(), F_DUPFD_CLOEXEC, 3);
    DIR* d = dup < 0 ? nullptr : ::fdopendir(dup);
    if (!d) {
      auto err = Error::sys("read {}", layout.tmp);
      if (dup >= 0) ::close(dup);
      return err;
    }
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    ::closedir(d);
  }
  for (std::string& n : names) {
    UniqueFd entry(::openat(tmp.get(), n.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (entry && ::flock(entry.get(), LOCK_EX | LOCK_NB) < 0) continue;  // live: leave it
    log::debug("image cache: removing stale {}/{}", layout.tmp, n);
    struct stat st;
    if (entry && ::fstat(entry.get(), &st) == 0 && S_ISDIR(st.st_mode)) {
      // A stale directory, now locked by us: deleted after the cache lock is released. Only
      // directories: their names are random, while a stale images.json.new deleted late
      // could be the fresh one of the next index writer.
      UniqueFd dup(::fcntl(tmp.get(), F_DUPFD_CLOEXEC, 3));
      if (dup) {
        garbage.doomed.push_back(TempEntry::adopt(std::move(dup), std::move(entry), std::move(n)));
        continue;
      }
    }
    auto r = fs::remove_tree(tmp.get(), n);
    if (!r) log::warn("image cache: cannot remove stale {}/{}: {}", layout.tmp, n,
                      r.error().message());
  }
  return {};
}

Result<std::vector<std::string>> list_digests(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Error::sys("read {}", dir);
  while (struct dirent* e = ::readdir(d)) {
    std::string digest = std::string("sha256:") + e->d_name;
    if (is_valid_digest(digest)) out.push_back(std::move(digest));
  }
  ::closedir(d);
  return out;
}

Result<void> sync_dir(const std::string& dir) {
  UniqueFd fd = SANDRUN_TRY(fs::open_path(dir, O_RDONLY | O_DIRECTORY));
  if (::fsync(fd.get()) < 0) return Error::sys("fsync {}", dir);
  return {};
}

}  // namespace sandrun::cache
