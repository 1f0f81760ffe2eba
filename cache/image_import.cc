// Importing a multi-layer image: plan what is missing, unpack it into tmp/, verify every
// digest, commit under the exclusive cache lock (see image_import.h).
#include "cache/image_import.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "cache/digest.h"
#include "cache/entry_path.h"
#include "cache/index.h"
#include "cache/oci_config.h"
#include "cache/seal.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::cache {

namespace {

bool present(const std::string& path, bool dir) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && (dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
}

// Renames tmp/<entry>/<name> to <dir>/<final> unless that exists (identical content: same
// digest), in which case the existing one wins and ours goes with the temp entry; with
// `replace` (a stored file found corrupted) ours replaces it.
Result<void> commit_entry(const TempEntry& tmp, const std::string& name, const std::string& dir,
                          std::string_view final_name, bool replace = false) {
  UniqueFd target = SANDRUN_TRY(fs::open_path(dir, O_PATH | O_DIRECTORY | O_NOFOLLOW));
  const std::string final_str(final_name);
  if (::renameat2(tmp.fd(), name.c_str(), target.get(), final_str.c_str(), replace ? 0 : RENAME_NOREPLACE) == 0)
    return {};
  if (errno == EEXIST) return {};
  return Error::sys("move {} into {}", name, fs::join(dir, final_str));
}

Result<void> write_temp_file(const TempEntry& tmp, const std::string& name, std::string_view data) {
  int fd = ::openat(tmp.fd(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return Error::sys("create {}", name);
  UniqueFd file(fd);
  SANDRUN_TRY(fs::write_all(file.get(), data));
  if (::fsync(file.get()) < 0) return Error::sys("fsync {}", name);
  return {};
}

// What one wanted layer became in tmp/L<i>/{blob,layer}; for a layer the store has, the size
// of its stored blob, or that the stored blob was corrupted (it is read again and replaced).
struct Unpacked {
  std::optional<UnpackedLayer> layer;
  uint64_t stored_size = 0;
  bool replace_blob = false;
};

// The size and digest of a stored blob, read whole.
Result<std::pair<uint64_t, std::string>> stored_blob(const std::string& path) {
  UniqueFd fd = SANDRUN_TRY(fs::open_path(path, O_RDONLY | O_NOFOLLOW));
  Sha256 sha;
  uint64_t size = 0;
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys("read {}", path);
    if (n == 0) break;
    sha.update(buf.data(), static_cast<size_t>(n));
    size += static_cast<uint64_t>(n);
  }
  return std::make_pair(size, sha.finish());
}

class Importer {
 public:
  Importer(const Layout& layout, const ImageRef& ref, const SourceImage& image, const ImageLimits& limits)
      : layout_(layout), ref_(ref), image_(image), limits_(limits) {}

  Result<ImportedImage> run(LayerReader& reader);

 private:
  Result<void> check_documents();
  Result<std::vector<size_t>> plan();
  Result<void> unpack(size_t i, const ReadFn& read);
  Result<void> verify(size_t i, const UnpackedLayer& got) const;
  Result<LayerRef> layer_ref(size_t i, const Index& index) const;
  Result<ImageRecord> commit(Garbage& garbage);

  const Layout& layout_;
  const ImageRef& ref_;
  const SourceImage& image_;
  const ImageLimits& limits_;
  ImageBudget budget_;  // what the layers of this import unpack to, together
  oci::Config config_;
  std::string config_text_;  // image_.config, or made for a rootfs
  std::optional<TempEntry> tmp_;
  std::vector<Unpacked> unpacked_;
  std::atomic<uint64_t> bytes_read_{0};
};

Result<void> Importer::check_documents() {
  if (image_.layers.size() > kMaxImageLayers)
    return Error::msg("the image has {} layers; overlayfs stacks at most {}, so it could not run", image_.layers.size(),
                      kMaxImageLayers);
  if (image_.config.empty()) {  // a rootfs tarball: the config is made once its diff id is known
    if (image_.layers.size() != 1) return Error::msg("an image without a config has one layer");
    return {};
  }
  config_ = SANDRUN_TRY(oci::parse_config(image_.config).wrap("read the image config"));
  if (config_.diff_ids.size() != image_.layers.size())
    return Error::msg("the image config lists {} layers, its manifest {}", config_.diff_ids.size(),
                      image_.layers.size());
  if (!image_.config_digest.empty() && sha256_of(image_.config) != image_.config_digest)
    return Error::msg("image config {}: digest mismatch (got {})", image_.config_digest, sha256_of(image_.config));
  if (!image_.manifest_digest.empty() && !image_.manifest.empty() &&
      sha256_of(image_.manifest) != image_.manifest_digest)
    return Error::msg("image manifest {}: digest mismatch (got {})", image_.manifest_digest, sha256_of(image_.manifest));
  config_text_ = image_.config;
  return {};
}

// The layers to read: those whose unpacked layer or blob the store lacks, or whose stored blob
// no longer has its digest. Each (diff id, blob) pair is read once even when an image lists it
// twice. A layer the store has is still checked against its descriptor: the stored blob's
// size must be the one the descriptor gives (the digest matching, a size that differs is a
// lie of the descriptor, which `save` would otherwise write out).
Result<std::vector<size_t>> Importer::plan() {
  std::vector<size_t> wanted;
  std::set<std::pair<std::string, std::string>> seen;
  for (size_t i = 0; i < image_.layers.size(); ++i) {
    const auto& d = image_.layers[i];
    if (config_text_.empty() || d.digest.empty()) {  // nothing to look up: read it
      wanted.push_back(i);
      continue;
    }
    const std::string& diff_id = config_.diff_ids[i];
    const std::string blob = layout_.blob_path(d.digest);
    if (present(layout_.layer_path(diff_id), true) && present(blob, false)) {
      auto [size, digest] = SANDRUN_TRY(stored_blob(blob));
      if (digest == d.digest) {
        if (d.size != 0 && size != d.size)
          return Error::msg("layer {}: blob {}: {} bytes, the manifest says {}", i + 1, d.digest, size, d.size);
        unpacked_[i].stored_size = size;
        continue;
      }
      log::warn("image cache {}: blob {} is corrupted (its content is {}); reading it again", layout_.root, d.digest,
                digest);
      unpacked_[i].replace_blob = true;
    }
    if (seen.insert({diff_id, d.digest}).second) wanted.push_back(i);
  }
  return wanted;
}

Result<void> Importer::verify(size_t i, const UnpackedLayer& got) const {
  const auto& d = image_.layers[i];
  if (!d.digest.empty() && got.layer.blob_digest != d.digest)
    return Error::msg("blob {}: digest mismatch (got {})", d.digest, got.layer.blob_digest);
  if (d.size != 0 && got.layer.blob_size != d.size)
    return Error::msg("blob {}: {} bytes, the manifest says {}", got.layer.blob_digest, got.layer.blob_size, d.size);
  if (!config_text_.empty() && got.layer.diff_id != config_.diff_ids[i])
    return Error::msg("diff id mismatch: the image config says {}, the content is {}", config_.diff_ids[i],
                      got.layer.diff_id);
  return {};
}

Result<void> Importer::unpack(size_t i, const ReadFn& read) {
  auto wrap = [&](Error e) {
    if (image_.layers.size() == 1) return e;  // "import rootfs.tar: ..." says enough
    return std::move(e.wrap(fmt::format("layer {} of {}", i + 1, image_.layers.size())));
  };
  const std::string dir = "L" + std::to_string(i);
  if (::mkdirat(tmp_->fd(), dir.c_str(), 0700) < 0) return wrap(Error::sys("create {}", dir));
  UniqueFd base(::openat(tmp_->fd(), dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!base) return wrap(Error::sys("open {}", dir));
  UniqueFd blob(::openat(base.get(), "blob", O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!blob || ::mkdirat(base.get(), "layer", 0700) < 0) return wrap(Error::sys("create {}/blob and layer", dir));
  UniqueFd layer(::openat(base.get(), "layer", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  // The layer root is an overlay lower dir: "/" of every container. 0755 unless the tar's "."
  // entry says otherwise (applied by the extractor after this).
  if (!layer || ::fchmod(layer.get(), 0755) < 0) return wrap(Error::sys("prepare {}/layer", dir));
  ReadFn counted = [&](char* buf, size_t cap) -> Result<size_t> {
    size_t n = SANDRUN_TRY(read(buf, cap));
    bytes_read_ += n;
    return n;
  };
  auto got = unpack_layer(counted, blob.get(), layer.get(), capped_extract_options(limits_, &budget_));
  if (!got) return wrap(std::move(got).error());
  if (auto r = verify(i, *got); !r) return wrap(std::move(r).error());
  const ExtractReport& r = got->report;
  if (r.unsupported_xattrs > 0)
    log::warn("import {}: layer {}: {} extended attributes were not set (not supported here)", image_.what, i + 1,
              r.unsupported_xattrs);
  log::debug("import {}: layer {}: {} entries, {} bytes; {} whiteouts, {} opaque directories; skipped {} device "
             "nodes, {} sockets; stripped {} overlay xattrs", image_.what, i + 1, r.entries, r.bytes, r.whiteouts,
             r.opaque_dirs, r.skipped_devices, r.skipped_sockets, r.stripped_xattrs);
  if (!image_.layers[i].media_type.empty()) got->layer.media_type = image_.layers[i].media_type;
  if (::fsync(blob.get()) < 0) return wrap(Error::sys("fsync {}/blob", dir));
  // Sealed as extracted: a container that uses the layer checks it is still what was written.
  if (auto r = write_seal(base.get(), "seal", layer.get()); !r) return wrap(std::move(r).error());
  unpacked_[i].layer = std::move(*got);
  return {};
}

// The record's entry for layer i: from this import, or from an image of the index that holds
// the same layer and blob.
Result<LayerRef> Importer::layer_ref(size_t i, const Index& index) const {
  if (unpacked_[i].layer) return unpacked_[i].layer->layer;
  const auto& d = image_.layers[i];
  const std::string& diff_id = config_.diff_ids[i];
  for (size_t j = 0; j < i; ++j) {  // listed twice in this image
    if (unpacked_[j].layer && unpacked_[j].layer->layer.diff_id == diff_id && unpacked_[j].layer->layer.blob_digest == d.digest)
      return unpacked_[j].layer->layer;
  }
  LayerRef ref{diff_id, d.digest, unpacked_[i].stored_size, 0, d.media_type};
  for (const auto& img : index.images) {
    for (const auto& l : img.layers) {
      if (l.diff_id == diff_id && l.blob_digest == d.digest) {
        ref.unpacked_size = l.unpacked_size;
        if (ref.media_type.empty()) ref.media_type = l.media_type;
      }
    }
  }
  if (!present(layout_.layer_path(diff_id), true) || !present(layout_.blob_path(d.digest), false))
    return Error::msg("layer {} was removed from the image cache while this import ran; import again", diff_id)
        .hint("another sandrun ran `image rm` or `image prune` at the same time");
  return ref;
}

Result<ImageRecord> Importer::commit(Garbage& garbage) {
  UniqueFd lock = SANDRUN_TRY(lock_cache(layout_, true));
  Index index = SANDRUN_TRY(load_index(layout_));
  ImageRecord record;
  record.name = ref_.name;
  record.tag = ref_.tag;
  std::vector<oci::Descriptor> descs;
  for (size_t i = 0; i < image_.layers.size(); ++i) {
    LayerRef l = SANDRUN_TRY(layer_ref(i, index));
    if (unpacked_[i].layer) {
      const std::string dir = "L" + std::to_string(i);
      SANDRUN_TRY(commit_entry(*tmp_, dir + "/blob", layout_.blobs, digest_hex(l.blob_digest), unpacked_[i].replace_blob));
      // The seal first, replacing any of a layer removed since: a layer is never without one.
      if (::mkdir(layout_.seals.c_str(), 0700) < 0 && errno != EEXIST) return Error::sys("create {}", layout_.seals);
      if (!present(layout_.layer_path(l.diff_id), true))
        SANDRUN_TRY(commit_entry(*tmp_, dir + "/seal", layout_.seals, digest_hex(l.diff_id), true));
      SANDRUN_TRY(commit_entry(*tmp_, dir + "/layer", layout_.layers, digest_hex(l.diff_id)));
    }
    descs.push_back({l.media_type, l.blob_digest, l.blob_size, std::nullopt, ""});
    record.layers.push_back(std::move(l));
  }
  if (config_text_.empty()) {  // a rootfs: the config sandrun makes for it
    record.config = rootfs_image_config();
    config_text_ = make_image_config({record.layers[0].diff_id}, record.config);
  } else {
    record.config = config_.run;
  }
  record.id = sha256_of(config_text_);
  std::string manifest = image_.manifest;
  record.manifest_media_type = image_.manifest_media_type;
  if (manifest.empty()) {
    manifest = oci::make_manifest({std::string(media::kOciConfig), record.id, config_text_.size(), std::nullopt, ""}, descs);
    record.manifest_media_type = media::kOciManifest;
  }
  record.manifest_digest = sha256_of(manifest);
  if (!ref_.digest.empty() && record.manifest_digest != ref_.digest)
    return Error::msg("the manifest's digest is {}, not {}", record.manifest_digest, ref_.digest);
  record.created = static_cast<int64_t>(::time(nullptr));
  SANDRUN_TRY(write_temp_file(*tmp_, "config", config_text_));
  SANDRUN_TRY(commit_entry(*tmp_, "config", layout_.blobs, digest_hex(record.id)));
  SANDRUN_TRY(write_temp_file(*tmp_, "manifest", manifest));
  SANDRUN_TRY(commit_entry(*tmp_, "manifest", layout_.blobs, digest_hex(record.manifest_digest)));
  SANDRUN_TRY(sync_dir(layout_.blobs));
  SANDRUN_TRY(sync_dir(layout_.layers));
  if (fs::is_dir(layout_.seals)) SANDRUN_TRY(sync_dir(layout_.seals));
  std::optional<ImageRecord> old = index.put(record);
  SANDRUN_TRY(save_index(layout_, index));
  if (old) SANDRUN_TRY(drop_unused(layout_, index, *old, garbage));
  return record;
}

Result<ImportedImage> Importer::run(LayerReader& reader) {
  SANDRUN_TRY(check_documents());
  unpacked_.resize(image_.layers.size());
  const std::vector<size_t> wanted = SANDRUN_TRY(plan());
  tmp_ = SANDRUN_TRY(TempEntry::create(layout_, "import"));
  if (!wanted.empty()) {
    SANDRUN_TRY(reader.read_layers(wanted, [this](size_t i, const ReadFn& read) { return unpack(i, read); }));
    for (size_t i : wanted) {
      if (!unpacked_[i].layer) return Error::msg("layer {} was never read", i + 1);
    }
    // One syncfs for the thousands of files just written: a layer renamed into layers/ must be
    // complete after a crash, never half there and mistaken for whole.
    if (::syncfs(tmp_->fd()) < 0) return Error::sys("sync {}", layout_.tmp);
  }
  Garbage garbage;
  ImportedImage out;
  out.record = SANDRUN_TRY(commit(garbage));
  out.stats.layers_unpacked = wanted.size();
  out.stats.layers_reused = image_.layers.size() - wanted.size();
  out.stats.bytes_read = bytes_read_;
  return out;  // `garbage` and the temp entry go after the cache lock was released
}

}  // namespace

ExtractOptions capped_extract_options(const ImageLimits& limits, ImageBudget* budget) {
  ExtractOptions o = default_extract_options();
  o.max_bytes = limits.max_layer_bytes;
  o.max_entries = limits.max_layer_entries;
  budget->max_bytes = limits.max_image_bytes;
  budget->max_entries = limits.max_image_entries;
  o.image = budget;
  return o;
}

Result<ImportedImage> import_image(const Layout& layout, const ImageRef& ref, const SourceImage& image,
                                   LayerReader& reader, const ImageLimits& limits) {
  Importer importer(layout, ref, image, limits);
  auto r = importer.run(reader);
  if (!r) return std::move(r.error().wrap(fmt::format("import {}", image.what)));
  return r;
}

Result<void> for_each_parallel(const std::vector<size_t>& items, unsigned parallel,
                               const std::function<Result<void>(size_t)>& fn, const std::function<void()>& on_error) {
  std::mutex mu;
  size_t next = 0;
  std::optional<Error> first_error;
  auto worker = [&] {
    for (;;) {
      size_t i;
      {
        std::lock_guard<std::mutex> g(mu);
        if (first_error || next == items.size()) return;
        i = items[next++];
      }
      if (auto r = fn(i); !r) {
        std::lock_guard<std::mutex> g(mu);
        if (!first_error) {
          first_error = std::move(r).error();
          if (on_error) on_error();
        }
      }
    }
  };
  const size_t n = std::min<size_t>(std::max(1u, parallel), items.size());
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  if (first_error) return std::move(*first_error);
  return {};
}

Result<void> FdLayerReader::read_layers(const std::vector<size_t>& wanted, const Consume& consume) {
  return for_each_parallel(wanted, parallel_, [&](size_t i) -> Result<void> {
    UniqueFd fd = SANDRUN_TRY(open_(i));
    return consume(i, fd_reader(fd.get()));
  });
}

}  // namespace sandrun::cache
