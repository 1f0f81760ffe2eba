// The on-disk layout of the image store: paths, the cache lock, temp entries, garbage.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::cache {

// Paths under the store root (see store.cc for what each holds).
struct Layout {
  explicit Layout(const std::string& root);
  std::string root;
  std::string lock;          // cache.lock
  std::string builtin_lock;  // builtin.lock: serialises first-use creation of built-in images
  std::string index;         // images.json
  std::string blobs;         // blobs/sha256
  std::string layers;        // layers/sha256
  std::string tmp;           // tmp
  std::string used;          // used: one empty file per image id, its mtime the last use
  std::string seals;         // seals: one file per unpacked layer, its seal (cache/seal.h)
  std::string blob_path(std::string_view digest) const;
  std::string layer_path(std::string_view diff_id) const;
  std::string seal_path(std::string_view diff_id) const;
};

// Creates the directories of a store (root mode 0700).
Result<void> create_layout(const Layout& layout);

// flock()s cache.lock: shared for reads, exclusive for changes to the index, blobs and layers.
// Without `wait`, a held lock gives an Error with code EWOULDBLOCK.
Result<UniqueFd> lock_cache(const Layout& layout, bool exclusive, bool wait = true);

// A directory in tmp/ owned by this process: flock()ed (exclusive) for as long as the object
// lives, removed with everything in it on destruction. The lock is what tells a sweeper in
// another process that the entry is live.
class TempEntry {
 public:
  TempEntry() = default;
  TempEntry(TempEntry&&) = default;
  TempEntry& operator=(TempEntry&& other) noexcept;
  ~TempEntry() { remove(); }

  // Creates tmp/<prefix>-<random>/ (under a shared cache lock, so no sweep sees it unlocked).
  static Result<TempEntry> create(const Layout& layout, std::string_view prefix);
  // Takes over `dir`, already flock()ed and already moved to tmp/<name> (doomed layers).
  static TempEntry adopt(UniqueFd tmp_dir, UniqueFd dir, std::string name);

  int fd() const { return dir_.get(); }
  int tmp_fd() const { return tmp_dir_.get(); }
  const std::string& name() const { return name_; }
  void remove();

 private:
  UniqueFd tmp_dir_;
  UniqueFd dir_;
  std::string name_;
};

// A random name component: 16 hex digits from getrandom().
std::string random_suffix();

// Where garbage collection put its doomed layers. Clear it after releasing the cache lock:
// deleting a large layer must not hold up every other sandrun.
struct Garbage {
  std::vector<std::string> removed_layers;  // diff ids
  std::vector<std::string> kept_in_use;     // diff ids leased by a running container
  std::vector<TempEntry> doomed;
};

// With the exclusive cache lock held: deletes the layer unless a lease holds it (then it is
// reported kept and stays until a later collection finds it free).
Result<void> drop_layer(const Layout& layout, std::string_view diff_id, Garbage& garbage);
// With the exclusive cache lock held: deletes a blob. Missing is fine.
Result<void> drop_blob(const Layout& layout, std::string_view digest);

// With the exclusive cache lock held: finds the tmp/ entries no live process holds (imports
// killed midway, interrupted removals, a stale index temp file), locks them and adds them to
// `garbage.doomed`.
Result<void> sweep_tmp(const Layout& layout, Garbage& garbage);

// Names (hex digests) of the entries of a blobs/ or layers/ directory; others are ignored.
Result<std::vector<std::string>> list_digests(const std::string& dir);

// fsync() of a directory, so that renames into it survive a crash.
Result<void> sync_dir(const std::string& dir);

}  // namespace sandrun::cache
