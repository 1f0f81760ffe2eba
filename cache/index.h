// The image index (images.json): every image record of the store, serialised with cereal.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/layout.h"
#include "cache/store.h"

namespace sandrun::cache {

// Version 2 added the manifest and the layers' media types; version 1 indexes are read and
// their images given the manifest they would have had (index.cc).
inline constexpr int kIndexVersion = 2;

struct Index {
  std::vector<ImageRecord> images;  // sorted by ref

  // By name:tag, or by name and manifest digest for a digest reference.
  const ImageRecord* find(const ImageRef& ref) const;
  // Adds or replaces the record of the same name:tag (of the same name@digest when it has no
  // tag); returns the replaced one.
  std::optional<ImageRecord> put(ImageRecord record);
  std::optional<ImageRecord> erase(const ImageRef& ref);
  bool uses_layer(std::string_view diff_id) const;
  bool uses_blob(std::string_view digest) const;  // as an image config, manifest or layer blob
};

// Reads images.json (missing: an empty index). Every digest in it is checked, since digests
// become paths. Call with the cache lock held (shared or exclusive).
Result<Index> load_index(const Layout& layout);
// Writes images.json atomically: tmp/images.json.new, fsync, rename, fsync of the root.
// Call with the exclusive cache lock held.
Result<void> save_index(const Layout& layout, const Index& index);

// With the exclusive cache lock held, after `old` left `index` (removed or replaced): the
// layers and blobs only it used go (a leased layer stays, see drop_layer).
Result<void> drop_unused(const Layout& layout, const Index& index, const ImageRecord& old, Garbage& garbage);

// With the exclusive cache lock held: stale tmp/ entries (crashed imports), and every layer and
// blob no image of `index` references (a crash between commit steps, a layer a lease kept).
struct UnreferencedBlobs {
  size_t count = 0;
  uint64_t bytes = 0;
};
Result<UnreferencedBlobs> drop_unreferenced(const Layout& layout, const Index& index, Garbage& garbage);

// The JSON text of an index (exposed for tests).
std::string index_to_json(const Index& index);
Result<Index> index_from_json(const std::string& text);

}  // namespace sandrun::cache
