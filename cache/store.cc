// The image store: layout, lookups, the built-in image, removal and leases.
//
// Layout under the root (default /var/lib/sandrun; see default_root()):
//   <root>/                        mode 0700, created with its parents
//   <root>/cache.lock              flock: exclusive to change the index, blobs/ or layers/,
//                                  shared to read them (and to create a tmp/ entry)
//   <root>/builtin.lock            flock: serialises the first-use creation of built-in images
//   <root>/images.json             the index: {"version": 1, "images": [ImageRecord...]},
//                                  cereal JSON, replaced atomically under the exclusive lock
//   <root>/blobs/sha256/<hex>      blobs named by the sha256 of their bytes: each layer
//                                  tarball as imported or pulled, each image config (the
//                                  image id) and manifest (made by sandrun for a rootfs)
//   <root>/layers/sha256/<hex>/    unpacked layers named by diff_id (sha256 of the
//                                  uncompressed tar); read-only overlay lower dirs, stored
//                                  once; a lease holds flock(LOCK_SH) on the directory
//   <root>/tmp/                    work in progress: import-<rand>/ (blob + layer being
//                                  written), rm-<hex>-<rand>/ (a layer being deleted),
//                                  images.json.new. Each live entry is flock()ed by its
//                                  owner; unlocked ones are stale and swept under the
//                                  exclusive lock. Nothing reaches blobs/ or layers/ before
//                                  it is complete and synced (rename), so a killed sandrun
//                                  leaves only tmp/ entries behind.
//   <root>/used/<hex>              one empty file per image id: its mtime is the image's last
//                                  use (a lease), for prune's least-recently-used eviction
//   <root>/run/                    the runner's; the store never touches it
#include "cache/store.h"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>

#include "cache/builtin.h"
#include "cache/digest.h"
#include "cache/index.h"
#include "cache/layout.h"
#include "cache/seal.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::cache {

namespace {

// Under the exclusive lock: what crashed imports left and what no image references.
Result<void> collect_garbage(const Layout& layout, Garbage& garbage) {
  Index index = SANDRUN_TRY(load_index(layout));
  SANDRUN_TRY(drop_unreferenced(layout, index, garbage));
  return {};
}

}  // namespace

Result<Store> Store::open(const std::string& root, bool tidy) {
  Layout layout(fs::absolute(root));
  auto made = create_layout(layout);
  if (!made) return std::move(made.error().wrap("open image cache"));
  if (!tidy) return Store(layout.root);
  // Tidy up only when nobody else is busy: opening the store never waits.
  auto lock = lock_cache(layout, true, false);
  if (lock) {
    Garbage garbage;
    auto r = collect_garbage(layout, garbage);
    lock->reset();
    if (!r) log::warn("image cache {}: cleanup failed: {}", layout.root, r.error().message());
  } else if (lock.error().code() != EWOULDBLOCK) {
    return std::move(lock.error().wrap("open image cache"));
  }
  return Store(layout.root);
}

Result<std::optional<ImageRecord>> Store::find(std::string_view ref) const {
  ImageRef parsed = SANDRUN_TRY(parse_ref(ref));
  Layout layout(root_);
  UniqueFd lock = SANDRUN_TRY(lock_cache(layout, false));
  Index index = SANDRUN_TRY(load_index(layout));
  const ImageRecord* r = index.find(parsed);
  if (!r) return std::optional<ImageRecord>();
  return std::optional<ImageRecord>(*r);
}

Result<std::vector<ImageRecord>> Store::list() const {
  Layout layout(root_);
  UniqueFd lock = SANDRUN_TRY(lock_cache(layout, false));
  Index index = SANDRUN_TRY(load_index(layout));
  return std::move(index.images);
}

Result<std::string> Store::config_json(const ImageRecord& image) const {
  Layout layout(root_);
  UniqueFd lock = SANDRUN_TRY(lock_cache(layout, false));
  std::string text = SANDRUN_TRY(fs::read_file(layout.blob_path(image.id)));
  if (sha256_of(text) != image.id) return Error::msg("the image config {} is corrupted", image.id);
  return text;
}

Result<ImageRecord> Store::ensure(std::string_view ref) {
  ImageRef parsed = SANDRUN_TRY(parse_ref(ref));
  if (auto found = SANDRUN_TRY(find(ref))) return std::move(*found);
  if (parsed.name != kBuiltinImage || parsed.tag != "latest")
    return Error::msg("image {:?} is not in the image cache ({}); import it with: sandrun image "
                      "import [--rootfs] FILE {}", parsed.str(), root_, parsed.str());
  // Several threads or processes may get here at once: one creates, the others wait and then
  // find it.
  Layout layout(root_);
  UniqueFd lock = SANDRUN_TRY(fs::lock_file(layout.builtin_lock, true));
  if (auto found = SANDRUN_TRY(find(ref))) return std::move(*found);
  return create_builtin_busybox(*this);
}

Result<RemoveReport> Store::remove(std::string_view ref) {
  ImageRef parsed = SANDRUN_TRY(parse_ref(ref));
  Layout layout(root_);
  RemoveReport report;
  report.ref = parsed.str();
  Garbage garbage;
  {
    UniqueFd lock = SANDRUN_TRY(lock_cache(layout, true));
    Index index = SANDRUN_TRY(load_index(layout));
    std::optional<ImageRecord> old = index.erase(parsed);
    if (!old) return Error::msg("image {:?} not found", parsed.str());
    // The record goes first: a crash after this leaves unreferenced layers (collected later),
    // never a record pointing at a deleted layer.
    SANDRUN_TRY(save_index(layout, index));
    SANDRUN_TRY(drop_unused(layout, index, *old, garbage));
  }
  report.removed_layers = garbage.removed_layers;
  report.kept_in_use = garbage.kept_in_use;
  garbage.doomed.clear();  // the slow part, after the lock was released
  return report;
}

std::string Store::layer_path(std::string_view diff_id) const {
  return Layout(root_).layer_path(diff_id);
}

Result<LayerLease> Store::lease(const ImageRecord& image) const {
  Layout layout(root_);
  // Shared cache lock: remove() (exclusive) cannot run between our open and our flock.
  UniqueFd lock = SANDRUN_TRY(lock_cache(layout, false));
  std::vector<UniqueFd> fds;
  for (const auto& l : image.layers) {
    if (!is_valid_digest(l.diff_id)) return Error::msg("image {}: invalid layer id", image.ref());
    std::string path = layout.layer_path(l.diff_id);
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT)
        return Error::msg("image {:?}: layer {} is missing from the image cache ({}); import the "
                          "image again", image.ref(), l.diff_id, root_);
      return Error::sys("image {:?}: open layer {}", image.ref(), path);
    }
    fds.emplace_back(fd);
    while (::flock(fd, LOCK_SH) < 0) {
      if (errno != EINTR) return Error::sys("image {:?}: lock layer {}", image.ref(), path);
    }
    // A damaged layer (a crash, a full disk, a hand edit) is refused, not run: a stat walk
    // against the seal written when it was unpacked, once per layer and process.
    if (auto r = check_seal(layout, l.diff_id, fd); !r) return std::move(r.error().wrap(fmt::format("image {:?}", image.ref())));
  }
  // The last use, for prune()'s least-recently-used order: one small write per image and run.
  // A store made before this existed has no used/ yet.
  const std::string used = fs::join(layout.used, digest_hex(image.id));
  UniqueFd mark(::open(used.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!mark && errno == ENOENT && ::mkdir(layout.used.c_str(), 0700) == 0)
    mark = UniqueFd(::open(used.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (mark) {
    ::futimens(mark.get(), nullptr);
    // Held shared with the layers: prune() tells an image in use from one that only shares a
    // layer with it.
    if (::flock(mark.get(), LOCK_SH) == 0) fds.push_back(std::move(mark));
  }
  return LayerLease(std::move(fds));
}

std::string default_root_for(uid_t euid, const char* xdg_data_home, const char* home) {
  if (euid == 0) return "/var/lib/sandrun";
  // The XDG spec says a relative $XDG_DATA_HOME is invalid and must be ignored.
  if (xdg_data_home && xdg_data_home[0] == '/') return fs::join(xdg_data_home, "sandrun");
  if (home && home[0] == '/') return fs::join(home, ".local/share/sandrun");
  return "/var/lib/sandrun";
}

std::string default_root() {
  const char* home = std::getenv("HOME");
  std::string pw_home;
  if (!home || home[0] != '/') {
    struct passwd pw, *found = nullptr;
    char buf[4096];
    if (::getpwuid_r(::geteuid(), &pw, buf, sizeof buf, &found) == 0 && found) {
      pw_home = found->pw_dir;
      home = pw_home.c_str();
    }
  }
  return default_root_for(::geteuid(), std::getenv("XDG_DATA_HOME"), home);
}

}  // namespace sandrun::cache
