// The image index (images.json): every image record of the store, serialised with cereal.
#include "cache/index.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include <cereal/archives/json.hpp>
#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include "cache/digest.h"
#include "sandbox/sys/fs.h"

namespace sandrun::cache {

template <class Archive>
void serialize(Archive& ar, ImageConfig& c) {
  ar(cereal::make_nvp("env", c.env), cereal::make_nvp("working_dir", c.working_dir),
     cereal::make_nvp("entrypoint", c.entrypoint), cereal::make_nvp("cmd", c.cmd),
     cereal::make_nvp("user", c.user));
}

template <class Archive>
void serialize(Archive& ar, LayerRef& l) {
  ar(cereal::make_nvp("diff_id", l.diff_id), cereal::make_nvp("blob_digest", l.blob_digest),
     cereal::make_nvp("blob_size", l.blob_size),
     cereal::make_nvp("unpacked_size", l.unpacked_size), cereal::make_nvp("media_type", l.media_type));
}

template <class Archive>
void serialize(Archive& ar, ImageRecord& r) {
  ar(cereal::make_nvp("name", r.name), cereal::make_nvp("tag", r.tag), cereal::make_nvp("id", r.id),
     cereal::make_nvp("manifest_digest", r.manifest_digest),
     cereal::make_nvp("manifest_media_type", r.manifest_media_type), cereal::make_nvp("layers", r.layers),
     cereal::make_nvp("config", r.config), cereal::make_nvp("created", r.created));
}

namespace {

// Version 1 records, read to be upgraded: no manifest, no media types. Their manifest is made
// when one is needed (image save, inspect), from the config and the stored blobs.
struct LayerRefV1 {
  LayerRef l;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::make_nvp("diff_id", l.diff_id), cereal::make_nvp("blob_digest", l.blob_digest),
       cereal::make_nvp("blob_size", l.blob_size), cereal::make_nvp("unpacked_size", l.unpacked_size));
  }
};

struct ImageRecordV1 {
  ImageRecord r;
  std::vector<LayerRefV1> layers;
  template <class Archive>
  void serialize(Archive& ar) {
    ar(cereal::make_nvp("name", r.name), cereal::make_nvp("tag", r.tag), cereal::make_nvp("id", r.id),
       cereal::make_nvp("layers", layers), cereal::make_nvp("config", r.config),
       cereal::make_nvp("created", r.created));
  }
};

bool same_slot(const ImageRecord& r, const ImageRef& ref) {
  if (r.name != ref.name) return false;
  return ref.tag.empty() ? r.tag.empty() && r.manifest_digest == ref.digest : r.tag == ref.tag;
}

}  // namespace

const ImageRecord* Index::find(const ImageRef& ref) const {
  for (const auto& r : images) {
    if (r.name != ref.name) continue;
    if (ref.digest.empty() ? r.tag == ref.tag : r.manifest_digest == ref.digest) return &r;
  }
  return nullptr;
}

std::optional<ImageRecord> Index::put(ImageRecord record) {
  ImageRef slot{record.name, record.tag, record.tag.empty() ? record.manifest_digest : ""};
  std::optional<ImageRecord> old;
  for (auto it = images.begin(); it != images.end(); ++it) {
    if (same_slot(*it, slot)) {
      old = std::move(*it);
      images.erase(it);
      break;
    }
  }
  auto pos = std::lower_bound(images.begin(), images.end(), record,
                              [](const ImageRecord& a, const ImageRecord& b) {
                                return a.ref() < b.ref();
                              });
  images.insert(pos, std::move(record));
  return old;
}

std::optional<ImageRecord> Index::erase(const ImageRef& ref) {
  const ImageRecord* hit = find(ref);
  if (!hit) return std::nullopt;
  auto it = images.begin() + (hit - images.data());
  ImageRecord old = std::move(*it);
  images.erase(it);
  return old;
}

bool Index::uses_layer(std::string_view diff_id) const {
  for (const auto& r : images)
    for (const auto& l : r.layers)
      if (l.diff_id == diff_id) return true;
  return false;
}

bool Index::uses_blob(std::string_view digest) const {
  for (const auto& r : images) {
    if (r.id == digest || r.manifest_digest == digest) return true;
    for (const auto& l : r.layers)
      if (l.blob_digest == digest) return true;
  }
  return false;
}

std::string index_to_json(const Index& index) {
  std::ostringstream os;
  {
    cereal::JSONOutputArchive ar(os);
    int version = kIndexVersion;
    auto images = index.images;
    ar(cereal::make_nvp("version", version), cereal::make_nvp("images", images));
  }
  os << '\n';
  return os.str();
}

namespace {

Result<void> check_record(const ImageRecord& r) {
  if (r.tag.empty() && !is_valid_digest(r.manifest_digest))
    return Error::msg("image {}: no tag and no valid manifest digest", r.name);
  auto ref = parse_ref(r.ref());
  if (!ref) return std::move(ref).error();
  if (!is_valid_digest(r.id)) return Error::msg("image {}: invalid id {:?}", r.ref(), r.id);
  if (!r.manifest_digest.empty() && !is_valid_digest(r.manifest_digest))
    return Error::msg("image {}: invalid manifest digest {:?}", r.ref(), r.manifest_digest);
  for (const auto& l : r.layers) {
    if (!is_valid_digest(l.diff_id) || !is_valid_digest(l.blob_digest))
      return Error::msg("image {}: invalid layer digest", r.ref());
  }
  return {};
}

}  // namespace

Result<Index> index_from_json(const std::string& text) {
  Index index;
  int version = 0;
  try {
    std::istringstream is(text);
    cereal::JSONInputArchive ar(is);
    ar(cereal::make_nvp("version", version));
    if (version == 1) {
      std::vector<ImageRecordV1> old;
      ar(cereal::make_nvp("images", old));
      for (auto& o : old) {
        for (auto& l : o.layers) o.r.layers.push_back(std::move(l.l));
        index.images.push_back(std::move(o.r));
      }
    } else if (version == kIndexVersion) {
      ar(cereal::make_nvp("images", index.images));
    } else {
      return Error::msg("unsupported index version {} (this sandrun reads versions 1 to {})", version,
                        kIndexVersion);
    }
  } catch (const std::exception& e) {
    return Error::msg("malformed: {}", e.what());
  }
  for (const auto& r : index.images) SANDRUN_TRY(check_record(r));
  std::sort(index.images.begin(), index.images.end(),
            [](const ImageRecord& a, const ImageRecord& b) { return a.ref() < b.ref(); });
  return index;
}

Result<void> drop_unused(const Layout& layout, const Index& index, const ImageRecord& old, Garbage& garbage) {
  for (const auto& l : old.layers) {
    if (!index.uses_layer(l.diff_id)) SANDRUN_TRY(drop_layer(layout, l.diff_id, garbage));
    if (!index.uses_blob(l.blob_digest)) SANDRUN_TRY(drop_blob(layout, l.blob_digest));
  }
  for (const auto* blob : {&old.id, &old.manifest_digest})
    if (!blob->empty() && !index.uses_blob(*blob)) SANDRUN_TRY(drop_blob(layout, *blob));
  return {};
}

Result<UnreferencedBlobs> drop_unreferenced(const Layout& layout, const Index& index, Garbage& garbage) {
  SANDRUN_TRY(sweep_tmp(layout, garbage));
  for (const std::string& diff_id : SANDRUN_TRY(list_digests(layout.layers)))
    if (!index.uses_layer(diff_id)) SANDRUN_TRY(drop_layer(layout, diff_id, garbage));
  // Seals whose layer is gone (an import killed between the two renames of its commit).
  if (fs::is_dir(layout.seals)) {
    for (const std::string& diff_id : SANDRUN_TRY(list_digests(layout.seals)))
      if (!fs::exists(layout.layer_path(diff_id))) ::unlink(layout.seal_path(diff_id).c_str());
  }
  UnreferencedBlobs blobs;
  for (const std::string& digest : SANDRUN_TRY(list_digests(layout.blobs))) {
    if (index.uses_blob(digest)) continue;
    struct stat st;
    if (::lstat(layout.blob_path(digest).c_str(), &st) == 0) blobs.bytes += static_cast<uint64_t>(st.st_size);
    SANDRUN_TRY(drop_blob(layout, digest));
    ++blobs.count;
  }
  return blobs;
}

Result<Index> load_index(const Layout& layout) {
  if (!fs::exists(layout.index)) return Index{};
  auto text = fs::read_file(layout.index);
  if (!text) return std::move(text).error();
  auto index = index_from_json(*text);
  if (!index)
    return std::move(index.error()
                         .wrap(fmt::format("image index {}", layout.index))
                         .hint("move it away and import the images again"));
  return index;
}

Result<void> save_index(const Layout& layout, const Index& index) {
  const std::string text = index_to_json(index);
  const std::string tmp = fs::join(layout.tmp, "images.json.new");
  UniqueFd fd = SANDRUN_TRY(fs::open_path(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600));
  auto r = fs::write_all(fd.get(), text);
  if (!r) return std::move(r.error().wrap(fmt::format("write {}", tmp)));
  if (::fsync(fd.get()) < 0) return Error::sys("fsync {}", tmp);
  if (::rename(tmp.c_str(), layout.index.c_str()) < 0)
    return Error::sys("rename {} to {}", tmp, layout.index);
  return sync_dir(layout.root);
}

}  // namespace sandrun::cache
