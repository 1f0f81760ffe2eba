// `image save`: an image of the store as an OCI image layout tar, with a docker-save
// manifest.json beside it (as Docker 25 writes), so that `docker load`, `podman load`, skopeo
// and sandrun itself read it. Layers go as stored, or recompressed: with zstd when asked, with
// gzip when they were stored with a compression OCI has no media type for (xz, bzip2, ...).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "cache/archive_lib.h"
#include "cache/digest.h"
#include "cache/index.h"
#include "cache/layout.h"
#include "cache/oci_json.h"
#include "cache/store.h"
#include "cache/unpack.h"
#include "sandbox/sys/fs.h"

namespace sandrun::cache {

namespace {

using nlohmann::json;

struct WriterFree {
  void operator()(struct archive* a) const { arc().archive_write_free(a); }
};
struct ReaderFree {
  void operator()(struct archive* a) const { arc().archive_read_free(a); }
};
using Writer = std::unique_ptr<struct archive, WriterFree>;
using Reader = std::unique_ptr<struct archive, ReaderFree>;

// The header of one regular file of the output tar, `size` bytes, mode 0644, time 0 (the same
// image, the same bytes).
Result<void> write_file_header(struct archive* w, const std::string& name, uint64_t size) {
  struct archive_entry* e = arc().archive_entry_new();
  if (!e) return Error::msg("out of memory");
  std::unique_ptr<struct archive_entry, void (*)(struct archive_entry*)> entry(e, arc().archive_entry_free);
  arc().archive_entry_set_pathname(e, name.c_str());
  arc().archive_entry_set_filetype(e, AE_IFREG);
  arc().archive_entry_set_perm(e, 0644);
  arc().archive_entry_set_size(e, static_cast<la_int64_t>(size));
  arc().archive_entry_set_mtime(e, 0, 0);
  if (arc().archive_write_header(w, e) != ARCHIVE_OK) return Error::msg("write {}: {}", name, archive_text(w));
  return {};
}

// One file of the output tar, from memory.
Result<void> add_entry(struct archive* w, const std::string& name, std::string_view data) {
  SANDRUN_TRY(write_file_header(w, name, data.size()));
  if (arc().archive_write_data(w, data.data(), data.size()) < 0) return Error::msg("write {}: {}", name, archive_text(w));
  return {};
}

// One blob of the output tar, from the file `fd`: exactly `size` bytes (its descriptor's),
// hashed as they stream; a blob shorter or longer than that, or whose bytes are not `digest`,
// fails the save (a damaged cache is not exported).
Result<void> add_blob(struct archive* w, const std::string& name, int fd, uint64_t size, const std::string& digest) {
  struct stat st;
  if (::fstat(fd, &st) < 0) return Error::sys("stat blob {}", digest);
  if (static_cast<uint64_t>(st.st_size) != size)
    return Error::msg("blob {} has {} bytes, its descriptor says {}", digest, st.st_size, size)
        .hint("run `sandrun image verify`, then import or pull the image again");
  SANDRUN_TRY(write_file_header(w, name, size));
  Sha256 sha;
  std::vector<char> buf(1 << 16);
  for (uint64_t left = size; left > 0;) {
    ssize_t n = ::read(fd, buf.data(), static_cast<size_t>(std::min<uint64_t>(left, buf.size())));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys("read blob {}", digest);
    if (n == 0) return Error::msg("blob {} ended {} bytes short of its size", digest, left);
    sha.update(buf.data(), static_cast<size_t>(n));
    if (arc().archive_write_data(w, buf.data(), static_cast<size_t>(n)) < 0)
      return Error::msg("write {}: {}", name, archive_text(w));
    left -= static_cast<uint64_t>(n);
  }
  if (std::string got = sha.finish(); got != digest)
    return Error::msg("blob {} is corrupted (its content is {})", digest, got)
        .hint("run `sandrun image verify` (it removes damaged layers), then import or pull the image again");
  return {};
}

// Reads the blob at `fd` whole and checks it is `digest`, then rewinds it.
Result<void> check_blob(int fd, const std::string& digest) {
  Sha256 sha;
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error::sys("read blob {}", digest);
    if (n == 0) break;
    sha.update(buf.data(), static_cast<size_t>(n));
  }
  if (std::string got = sha.finish(); got != digest)
    return Error::msg("blob {} is corrupted (its content is {})", digest, got)
        .hint("run `sandrun image verify` (it removes damaged layers), then import or pull the image again");
  if (::lseek(fd, 0, SEEK_SET) < 0) return Error::sys("seek blob {}", digest);
  return {};
}

// Decompresses the blob at `in` (whatever libarchive reads) and compresses it again into `out`.
Result<void> recompress(int in, int out, bool zstd) {
  Reader r(arc().archive_read_new());
  Writer w(arc().archive_write_new());
  if (!r || !w) return Error::msg("out of memory");
  using Enable = int (*)(struct archive*);
  for (Enable enable : {arc().archive_read_support_filter_gzip, arc().archive_read_support_filter_bzip2,
                        arc().archive_read_support_filter_xz, arc().archive_read_support_filter_lzma,
                        arc().archive_read_support_filter_zstd, arc().archive_read_support_filter_lz4})
    enable(r.get());
  arc().archive_read_support_format_raw(r.get());
  if (arc().archive_read_open_fd(r.get(), in, 1 << 16) != ARCHIVE_OK) return Error::msg("read: {}", archive_text(r.get()));
  struct archive_entry* e = nullptr;
  if (arc().archive_read_next_header(r.get(), &e) != ARCHIVE_OK) return Error::msg("read: {}", archive_text(r.get()));
  arc().archive_write_set_format_raw(w.get());
  (zstd ? arc().archive_write_add_filter_zstd : arc().archive_write_add_filter_gzip)(w.get());
  if (arc().archive_write_open_fd(w.get(), out) != ARCHIVE_OK) return Error::msg("write: {}", archive_text(w.get()));
  struct archive_entry* oe = arc().archive_entry_new();
  std::unique_ptr<struct archive_entry, void (*)(struct archive_entry*)> entry(oe, arc().archive_entry_free);
  arc().archive_entry_set_filetype(oe, AE_IFREG);
  if (arc().archive_write_header(w.get(), oe) != ARCHIVE_OK) return Error::msg("write: {}", archive_text(w.get()));
  char buf[1 << 16];
  for (;;) {
    la_ssize_t n = arc().archive_read_data(r.get(), buf, sizeof buf);
    if (n < 0) return Error::msg("read: {}", archive_text(r.get()));
    if (n == 0) break;
    if (arc().archive_write_data(w.get(), buf, static_cast<size_t>(n)) < 0) return Error::msg("write: {}", archive_text(w.get()));
  }
  if (arc().archive_write_close(w.get()) != ARCHIVE_OK) return Error::msg("write: {}", archive_text(w.get()));
  return {};
}

struct SavedLayer {
  oci::Descriptor desc;
  UniqueFd fd;  // the blob in the store (opened under the cache lock), or the recompressed one
};

class Saver {
 public:
  // `refs`: the names the archive gives this image (empty when it was named by id).
  Saver(const Layout& layout, ImageRecord image, std::vector<std::string> refs, const SaveOptions& options)
      : layout_(layout), image_(std::move(image)), refs_(std::move(refs)), options_(options) {}
  // Opens every blob and reads the documents under a shared cache lock: once open, a blob
  // stays readable even if another sandrun removes the image meanwhile.
  Result<void> open_blobs();
  // Recompresses what must be and makes the manifest: before add_to().
  Result<void> prepare();
  // Writes this image's blobs the archive lacks yet (`written`: digests), and its entries of
  // index.json's manifests and of manifest.json.
  Result<void> add_to(struct archive* w, std::set<std::string>& written, json& index_manifests, json& docker) const;

 private:
  Result<void> convert_layers();
  Result<std::string> manifest();

  const Layout& layout_;
  ImageRecord image_;
  std::vector<std::string> refs_;
  const SaveOptions& options_;
  std::optional<TempEntry> tmp_;
  std::vector<SavedLayer> layers_;
  std::string config_, stored_manifest_, manifest_text_, manifest_digest_;
};

Result<void> Saver::open_blobs() {
  UniqueFd lock = SANDRUN_TRY(lock_cache(layout_, false));
  config_ = SANDRUN_TRY(fs::read_file(layout_.blob_path(image_.id)));
  if (sha256_of(config_) != image_.id) return Error::msg("the image config {} is corrupted", image_.id);
  if (!image_.manifest_digest.empty()) {
    stored_manifest_ = SANDRUN_TRY(fs::read_file(layout_.blob_path(image_.manifest_digest)));
    if (sha256_of(stored_manifest_) != image_.manifest_digest)
      return Error::msg("the image manifest {} is corrupted", image_.manifest_digest);
  }
  for (const LayerRef& l : image_.layers) {
    UniqueFd fd = SANDRUN_TRY(fs::open_path(layout_.blob_path(l.blob_digest), O_RDONLY | O_NOFOLLOW));
    layers_.push_back({{l.media_type, l.blob_digest, l.blob_size, std::nullopt, "", ""}, std::move(fd)});
  }
  return {};
}

Result<void> Saver::convert_layers() {
  for (size_t i = 0; i < layers_.size(); ++i) {
    SavedLayer& s = layers_[i];
    const std::string& type = image_.layers[i].media_type;
    const bool convert = options_.zstd ? type != media::kOciLayerZstd : !oci::is_standard_layer_type(type);
    if (!convert) continue;
    if (!tmp_) tmp_ = SANDRUN_TRY(TempEntry::create(layout_, "save"));
    const std::string name = "L" + std::to_string(i);
    UniqueFd out(::openat(tmp_->fd(), name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!out) return Error::sys("create {}", name);
    SANDRUN_TRY(check_blob(s.fd.get(), s.desc.digest));
    SANDRUN_TRY(recompress(s.fd.get(), out.get(), options_.zstd).wrap(fmt::format("recompress layer {}", image_.layers[i].diff_id)));
    // Hash what was written, then hand the file to the tar writer from its start.
    if (::lseek(out.get(), 0, SEEK_SET) < 0) return Error::sys("seek {}", name);
    Sha256 sha;
    uint64_t size = 0;
    char buf[1 << 16];
    for (ssize_t n; (n = ::read(out.get(), buf, sizeof buf)) != 0;) {
      if (n < 0) return Error::sys("read {}", name);
      sha.update(buf, static_cast<size_t>(n));
      size += static_cast<uint64_t>(n);
    }
    if (::lseek(out.get(), 0, SEEK_SET) < 0) return Error::sys("seek {}", name);
    s.desc = {std::string(options_.zstd ? media::kOciLayerZstd : media::kOciLayerGzip), sha.finish(), size, std::nullopt, "", ""};
    s.fd = std::move(out);
  }
  return {};
}

Result<std::string> Saver::manifest() {
  bool changed = image_.manifest_digest.empty();
  for (size_t i = 0; i < layers_.size(); ++i) changed |= layers_[i].desc.digest != image_.layers[i].blob_digest;
  if (!changed) return stored_manifest_;
  std::vector<oci::Descriptor> descs;
  for (const auto& l : layers_) descs.push_back(l.desc);
  return oci::make_manifest({std::string(media::kOciConfig), image_.id, config_.size(), std::nullopt, "", ""}, descs);
}

Result<void> Saver::prepare() {
  SANDRUN_TRY(convert_layers());
  manifest_text_ = SANDRUN_TRY(manifest());
  manifest_digest_ = sha256_of(manifest_text_);
  return {};
}

std::string blob_name(std::string_view digest) { return "blobs/sha256/" + std::string(digest_hex(digest)); }

Result<void> Saver::add_to(struct archive* w, std::set<std::string>& written, json& index_manifests, json& docker) const {
  auto once = [&](const std::string& digest) { return written.insert(digest).second; };
  if (once(image_.id)) SANDRUN_TRY(add_entry(w, blob_name(image_.id), config_));
  for (const auto& l : layers_)
    if (once(l.desc.digest)) SANDRUN_TRY(add_blob(w, blob_name(l.desc.digest), l.fd.get(), l.desc.size, l.desc.digest));
  if (once(manifest_digest_)) SANDRUN_TRY(add_entry(w, blob_name(manifest_digest_), manifest_text_));
  // One index entry per name (OCI names a manifest per entry), one without a name.
  std::vector<std::string> names = refs_;
  if (names.empty()) names.push_back("");
  for (const auto& ref : names) {
    json entry = {{"mediaType", media::kOciManifest}, {"digest", manifest_digest_}, {"size", manifest_text_.size()}};
    if (!ref.empty()) {
      const ImageRef parsed = SANDRUN_TRY(parse_ref(ref));
      entry["annotations"] = {{std::string(oci::kRefNameAnnotation), parsed.digest.empty() ? parsed.tag : ref},
                              {std::string(oci::kFullNameAnnotation), ref}};
    }
    index_manifests.push_back(entry);
  }
  json tags = json::array();
  for (const auto& ref : refs_)
    if (ref.find('@') == std::string::npos) tags.push_back(ref);
  json layers = json::array();
  for (const auto& l : layers_) layers.push_back(blob_name(l.desc.digest));
  docker.push_back({{"Config", blob_name(image_.id)}, {"RepoTags", tags}, {"Layers", layers}});
  return {};
}

// The archive of `savers` into `out`: into a temp file beside it, renamed when complete, never
// a half-written archive.
Result<void> write_archive(std::vector<Saver>& savers, const std::string& out) {
  for (auto& s : savers) SANDRUN_TRY(s.prepare());
  const std::string part = out + ".part";
  UniqueFd fd = SANDRUN_TRY(fs::open_path(part, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644));
  Writer w(arc().archive_write_new());
  arc().archive_write_set_format_pax_restricted(w.get());
  if (arc().archive_write_open_fd(w.get(), fd.get()) != ARCHIVE_OK) return Error::msg("write {}: {}", part, archive_text(w.get()));
  auto result = [&]() -> Result<void> {
    SANDRUN_TRY(add_entry(w.get(), "oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
    std::set<std::string> written;
    json manifests = json::array(), docker = json::array();
    for (const auto& s : savers) SANDRUN_TRY(s.add_to(w.get(), written, manifests, docker));
    json index = {{"schemaVersion", 2}, {"mediaType", media::kOciIndex}, {"manifests", manifests}};
    SANDRUN_TRY(add_entry(w.get(), "index.json", index.dump()));
    SANDRUN_TRY(add_entry(w.get(), "manifest.json", docker.dump()));
    if (arc().archive_write_close(w.get()) != ARCHIVE_OK) return Error::msg("write {}: {}", part, archive_text(w.get()));
    if (::fsync(fd.get()) < 0) return Error::sys("fsync {}", part);
    if (::rename(part.c_str(), out.c_str()) < 0) return Error::sys("rename {} to {}", part, out);
    return {};
  }();
  if (!result) ::unlink(part.c_str());
  return result;
}

}  // namespace

Result<void> Store::save(std::string_view ref, const std::string& out, const SaveOptions& options) {
  return save_images({std::string(ref)}, out, options);
}

Result<void> Store::save_images(const std::vector<std::string>& refs, const std::string& out,
                                const SaveOptions& options) {
  auto fail = [&](Error e) { return std::move(e.wrap(fmt::format("save {} to {}", fmt::join(refs, " "), out))); };
  if (auto r = load_archive_lib(); !r) return fail(std::move(r).error());
  Layout layout(root_);
  // One saver per image; the names given for it become its names in the archive.
  std::vector<std::pair<ImageRecord, std::vector<std::string>>> images;
  for (const auto& ref : refs) {
    auto found = find(ref);
    if (!found) return fail(std::move(found).error());
    if (!*found) return fail(Error::msg("image {:?} not found", ref));
    const std::string name = (*found)->ref();
    auto it = std::find_if(images.begin(), images.end(), [&](const auto& i) { return i.first.id == (*found)->id; });
    if (it == images.end()) {
      images.push_back({**found, {name}});
    } else if (std::find(it->second.begin(), it->second.end(), name) == it->second.end()) {
      it->second.push_back(name);
    }
  }
  std::vector<Saver> savers;
  savers.reserve(images.size());
  for (auto& [record, names] : images) {
    savers.emplace_back(layout, std::move(record), std::move(names), options);
    if (auto r = savers.back().open_blobs(); !r) return fail(std::move(r).error());
  }
  if (auto r = write_archive(savers, out); !r) return fail(std::move(r).error());
  return {};
}

Result<UniqueFd> Store::save_to_temp(const std::vector<std::string>& refs, const SaveOptions& options) {
  Layout layout(root_);
  SANDRUN_TRY(create_layout(layout));
  TempEntry tmp = SANDRUN_TRY(TempEntry::create(layout, "save"));
  const std::string out = fs::join(fs::join(layout.tmp, tmp.name()), "image.tar");
  SANDRUN_TRY(save_images(refs, out, options));
  UniqueFd fd = SANDRUN_TRY(fs::open_path(out, O_RDONLY | O_NOFOLLOW));
  tmp.remove();  // the archive lives on in `fd` only
  return fd;
}

}  // namespace sandrun::cache
