// Store operations on whole images: tag, prune (unreferenced data, untagged images, all, or the
// least recently used down to a size) and the cache's size.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "cache/digest.h"
#include "cache/index.h"
#include "cache/layout.h"
#include "cache/store.h"
#include "cache/tree_walk.h"
#include "sandbox/sys/fs.h"

namespace sandrun::cache {

namespace {

uint64_t file_size(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// The bytes of the layers and blobs `images` hold, each counted once.
uint64_t images_size(const Layout& layout, const std::vector<ImageRecord>& images) {
  std::map<std::string, uint64_t> layers, blobs;
  for (const ImageRecord& r : images) {
    for (const auto& l : r.layers) {
      layers[l.diff_id] = l.unpacked_size;
      blobs[l.blob_digest] = l.blob_size;
    }
    for (const std::string* d : {&r.id, &r.manifest_digest})
      if (!d->empty()) blobs[*d] = file_size(layout.blob_path(*d));
  }
  uint64_t total = 0;
  for (const auto& [_, n] : layers) total += n;
  for (const auto& [_, n] : blobs) total += n;
  return total;
}

// True when a running sandrun holds a lease on the image (its used/ mark is locked shared).
bool in_use(const Layout& layout, const ImageRecord& r) {
  UniqueFd mark(::open(fs::join(layout.used, digest_hex(r.id)).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!mark) return false;
  if (::flock(mark.get(), LOCK_EX | LOCK_NB) < 0) return errno == EWOULDBLOCK;
  ::flock(mark.get(), LOCK_UN);
  return false;
}

// Seconds of the image's last use (its used/ mark), or of its import when never used.
int64_t last_use(const Layout& layout, const ImageRecord& r) {
  struct stat st;
  if (::stat(fs::join(layout.used, digest_hex(r.id)).c_str(), &st) == 0) return st.st_mtim.tv_sec;
  return r.created;
}

// File data under a doomed layer directory, counted before it is deleted (iteratively:
// a layer may nest thousands of directories).
uint64_t tree_size(int tmp_fd, const std::string& name) {
  uint64_t total = 0;
  UniqueFd dir(::openat(tmp_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dir) return 0;
  auto r = walk_tree(dir.get(), [&](const std::string&, int, const char*, const struct stat& st) -> Result<void> {
    if (S_ISREG(st.st_mode)) total += static_cast<uint64_t>(st.st_size);
    return {};
  });
  (void)r;  // a figure for the report: what could be counted is
  return total;
}

}  // namespace

Result<ImageRecord> Store::tag(std::string_view src, std::string_view dst) {
  ImageRef to = SANDRUN_TRY(parse_ref(dst));
  if (!to.digest.empty()) return Error::msg("tag {}: the new name needs a tag, not a digest", dst);
  Layout layout(root_);
  Garbage garbage;
  ImageRecord record;
  {
    UniqueFd lock = SANDRUN_TRY(lock_cache(layout, true));
    Index index = SANDRUN_TRY(load_index(layout));
    ImageRef from = SANDRUN_TRY(parse_ref(src));
    const ImageRecord* found = index.find(from);
    if (!found) return Error::msg("image {:?} not found", from.str());
    record = *found;
    record.name = to.name;
    record.tag = to.tag;
    std::optional<ImageRecord> old = index.put(record);
    SANDRUN_TRY(save_index(layout, index));
    if (old) SANDRUN_TRY(drop_unused(layout, index, *old, garbage));
  }
  return record;
}

Result<PruneReport> Store::prune(const PruneOptions& options) {
  Layout layout(root_);
  PruneReport report;
  Garbage garbage;
  {
    UniqueFd lock = SANDRUN_TRY(lock_cache(layout, true));
    Index index = SANDRUN_TRY(load_index(layout));
    // Candidates, least recently used first; untagged ones always, the rest as asked.
    std::vector<std::pair<int64_t, std::string>> order;
    for (const auto& r : index.images) order.emplace_back(last_use(layout, r), r.ref());
    std::sort(order.begin(), order.end());
    for (const auto& [when, ref] : order) {
      const ImageRef parsed = SANDRUN_TRY(parse_ref(ref));
      const ImageRecord* r = index.find(parsed);
      if (!r) continue;
      const bool over = options.max_size && images_size(layout, index.images) > *options.max_size;
      if (!(r->tag.empty() || options.all || over)) continue;
      if (in_use(layout, *r)) {
        report.kept_in_use.push_back(ref);
        continue;
      }
      index.erase(parsed);
      report.removed_images.push_back(ref);
    }
    SANDRUN_TRY(save_index(layout, index));
    const UnreferencedBlobs blobs = SANDRUN_TRY(drop_unreferenced(layout, index, garbage));
    report.layers_removed = garbage.removed_layers.size();
    report.blobs_removed = blobs.count;
    report.bytes_freed += blobs.bytes;
    report.size_after = images_size(layout, index.images);
  }
  for (const auto& doomed : garbage.doomed) {
    // Layers moved to tmp/ (and stale imports): their bytes, then the slow delete, unlocked.
    report.bytes_freed += tree_size(doomed.tmp_fd(), doomed.name());
  }
  garbage.doomed.clear();
  report.kept_in_use.insert(report.kept_in_use.end(), garbage.kept_in_use.begin(), garbage.kept_in_use.end());
  return report;
}

Result<uint64_t> Store::size() const {
  Layout layout(root_);
  UniqueFd lock = SANDRUN_TRY(lock_cache(layout, false));
  Index index = SANDRUN_TRY(load_index(layout));
  return images_size(layout, index.images);
}

}  // namespace sandrun::cache
