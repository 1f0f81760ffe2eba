// Importing OCI image layouts (image-spec image-layout.md) and `docker save` archives, as
// directories or tar files. Everything in them is untrusted input: files are opened beneath
// the archive's root without following symlinks, JSON sizes are capped, and every digest is
// verified (blobs while they are unpacked).
//
// A tar file is unpacked into a temp entry of the store first (with the secure layer
// extractor), then read as a directory: blobs in a tar may come in any order, and a layer must
// be read after the manifest that says what it is.
#include <archive.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "cache/archive_lib.h"
#include "cache/digest.h"
#include "cache/entry_path.h"
#include "cache/extract.h"
#include "cache/image_import.h"
#include "cache/oci_json.h"
#include "cache/store.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::cache {

namespace {

constexpr uint64_t kNoFollow = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

// One image found in an archive, and the names it carries.
struct Candidate {
  SourceImage image;
  std::vector<std::string> names;  // full references: "team/tool:1", "127.0.0.1:5000/x:2"
  std::string bare_tag;            // an OCI ref name that is only a tag ("latest", "1.0")
};

class ArchiveDir {
 public:
  ArchiveDir(UniqueFd dir, std::string what) : dir_(std::move(dir)), what_(std::move(what)) {}

  bool has(std::string_view path) const { return fs::open_beneath(dir_.get(), path, O_PATH, kNoFollow).ok(); }
  Result<std::string> read_small(std::string_view path) const;
  Result<UniqueFd> open(std::string_view path) const {
    auto fd = fs::open_beneath(dir_.get(), path, O_RDONLY | O_NOCTTY, kNoFollow);
    if (!fd) return std::move(fd.error().wrap(fmt::format("open {}", cache::quoted(path))));
    return fd;
  }
  // A blob of an OCI layout, verified (small documents only).
  Result<std::string> read_blob(const oci::Descriptor& d) const;
  static std::string blob_path(std::string_view digest) { return "blobs/sha256/" + std::string(digest_hex(digest)); }
  const std::string& what() const { return what_; }

 private:
  UniqueFd dir_;
  std::string what_;
};

Result<std::string> ArchiveDir::read_small(std::string_view path) const {
  UniqueFd fd = SANDRUN_TRY(open(path));
  struct stat st;
  if (::fstat(fd.get(), &st) < 0) return Error::sys("stat {}", cache::quoted(path));
  if (!S_ISREG(st.st_mode)) return Error::msg("{} is not a regular file", cache::quoted(path));
  if (static_cast<uint64_t>(st.st_size) > oci::kMaxDocumentSize)
    return Error::msg("{} is larger than {} bytes", cache::quoted(path), oci::kMaxDocumentSize);
  return fs::read_fd(fd.get());
}

Result<std::string> ArchiveDir::read_blob(const oci::Descriptor& d) const {
  if (d.size > oci::kMaxDocumentSize) return Error::msg("blob {} is larger than {} bytes", d.digest, oci::kMaxDocumentSize);
  std::string data = SANDRUN_TRY(read_small(blob_path(d.digest)));
  if (data.size() != d.size) return Error::msg("blob {}: {} bytes, its descriptor says {}", d.digest, data.size(), d.size);
  if (sha256_of(data) != d.digest) return Error::msg("blob {}: digest mismatch (got {})", d.digest, sha256_of(data));
  return data;
}

// The image a manifest descriptor of an OCI layout names; an index (multi-platform) is
// followed to the entry for `platform`.
Result<SourceImage> oci_image(const ArchiveDir& dir, const oci::Descriptor& top, const Platform& platform) {
  oci::Descriptor d = top;
  std::string doc = SANDRUN_TRY(dir.read_blob(d));
  std::string type;
  if (SANDRUN_TRY(classify_manifest(doc, d.media_type, &type)) == ManifestKind::index) {
    SANDRUN_TRY(check_manifest_descriptor(d.media_type, type));
    oci::Index nested = SANDRUN_TRY(oci::parse_index(doc));
    auto found = oci::for_platform(nested, platform);
    if (found.empty())
      return Error::msg("no image for {} (it has {})", platform.str(), oci::platforms_of(nested));
    d = *found.front();
    doc = SANDRUN_TRY(dir.read_blob(d).wrap(fmt::format("index entry {}", d.digest)));
  }
  if (SANDRUN_TRY(classify_manifest(doc, d.media_type, &type)) != ManifestKind::image)
    return Error::msg("{} is an index inside an index, which sandrun does not follow", d.digest);
  if (auto r = check_manifest_descriptor(d.media_type, type); !r)
    return std::move(r.error().wrap(fmt::format("manifest {}", d.digest)));
  oci::Manifest m = SANDRUN_TRY(oci::parse_manifest(doc));
  SourceImage image;
  image.config = SANDRUN_TRY(dir.read_blob(m.config));
  image.config_digest = m.config.digest;
  image.manifest = doc;
  image.manifest_digest = d.digest;
  image.manifest_media_type = type;  // its own mediaType, else the descriptor's, else by shape
  image.layers = m.layers;
  return image;
}

Result<std::vector<Candidate>> read_oci_layout(const ArchiveDir& dir, const Platform& platform) {
  std::string layout = SANDRUN_TRY(dir.read_small("oci-layout"));
  auto j = nlohmann::json::parse(layout, nullptr, false);
  if (!j.is_object() || !j.contains("imageLayoutVersion"))
    return Error::msg("oci-layout: no imageLayoutVersion");
  oci::Index index = SANDRUN_TRY(oci::parse_index(SANDRUN_TRY(dir.read_small("index.json"))).wrap("index.json"));
  // A layout made for several platforms lists one manifest per platform at the top level.
  std::vector<Candidate> out;
  for (const oci::Descriptor* d : oci::for_platform(index, platform)) {
    auto image = oci_image(dir, *d, platform);
    if (!image) return std::move(image.error().wrap(fmt::format("manifest {}", d->digest)));
    Candidate c{std::move(*image), {}, ""};
    // image-spec: the annotation is a tag ("latest") or a whole reference ("team/tool:1");
    // Docker and containerd put the whole name in an annotation of their own.
    if (!d->full_name.empty()) c.names.push_back(d->full_name);
    else if (d->ref_name.find_first_of(":/") == std::string::npos) c.bare_tag = d->ref_name;
    else c.names.push_back(d->ref_name);
    out.push_back(std::move(c));
  }
  if (out.empty()) {
    if (index.manifests.empty()) return Error::msg("index.json lists no image");
    return Error::msg("no image for {} (it has {})", platform.str(), oci::platforms_of(index));
  }
  return out;
}

// docker save: manifest.json = [{"Config": "<hex>.json" | "blobs/sha256/<hex>",
// "RepoTags": ["name:tag"], "Layers": ["<id>/layer.tar" | "blobs/sha256/<hex>"]}]. A blob under
// blobs/ is named by its digest; an old "<id>/layer.tar" is an uncompressed tar, so its digest
// is its diff id. import_image verifies both.
Result<std::vector<Candidate>> read_docker_save(const ArchiveDir& dir) {
  auto j = nlohmann::json::parse(SANDRUN_TRY(dir.read_small("manifest.json")), nullptr, false);
  if (!j.is_array()) return Error::msg("manifest.json is not a JSON array");
  std::vector<Candidate> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& e = j[i];
    auto what = fmt::format("manifest.json entry {}", i);
    if (!e.is_object() || !e.contains("Config") || !e["Config"].is_string() || !e.contains("Layers") || !e["Layers"].is_array())
      return Error::msg("{}: no Config or Layers", what);
    Candidate c;
    c.image.config = SANDRUN_TRY(dir.read_small(e["Config"].get<std::string>()).wrap(what));
    c.image.config_digest = sha256_of(c.image.config);
    oci::Config config = SANDRUN_TRY(oci::parse_config(c.image.config).wrap(what));
    if (config.diff_ids.size() != e["Layers"].size())
      return Error::msg("{}: {} layers, its config lists {}", what, e["Layers"].size(), config.diff_ids.size());
    for (size_t k = 0; k < config.diff_ids.size(); ++k) {
      if (!e["Layers"][k].is_string()) return Error::msg("{}: layer {} is not a path", what, k);
      oci::Descriptor d;
      d.ref_name = e["Layers"][k].get<std::string>();  // the path of the layer in the archive
      if (d.ref_name.starts_with("blobs/sha256/") && is_valid_digest("sha256:" + d.ref_name.substr(13))) {
        d.digest = "sha256:" + d.ref_name.substr(13);  // media type: found from the bytes
      } else {
        d.digest = config.diff_ids[k];
        d.media_type = std::string(media::kOciLayer);
      }
      c.image.layers.push_back(std::move(d));
    }
    if (e.contains("RepoTags") && e["RepoTags"].is_array())
      for (const auto& t : e["RepoTags"]) if (t.is_string()) c.names.push_back(t.get<std::string>());
    out.push_back(std::move(c));
  }
  if (out.empty()) return Error::msg("manifest.json lists no image");
  return out;
}

// Picks what to import under which names (Store::import_archive's contract).
Result<std::vector<std::pair<ImageRef, const Candidate*>>> choose(const std::vector<Candidate>& all,
                                                                   std::string_view name) {
  using Choice = std::vector<std::pair<ImageRef, const Candidate*>>;
  auto label = [](const Candidate& c) {
    return !c.names.empty() ? c.names.front() : !c.bare_tag.empty() ? c.bare_tag : std::string("(unnamed)");
  };
  if (!name.empty()) {
    ImageRef ref = SANDRUN_TRY(parse_ref(name));
    if (!ref.digest.empty()) return Error::msg("name the image with a tag, not a digest");
    if (all.size() == 1) return Choice{{ref, &all[0]}};
    for (const auto& c : all) {
      if (c.bare_tag == ref.tag || std::find(c.names.begin(), c.names.end(), ref.str()) != c.names.end())
        return Choice{{ref, &c}};
    }
    std::string labels;
    for (const auto& c : all) labels += (labels.empty() ? "" : ", ") + label(c);
    return Error::msg("it holds {} images ({}) and none is called {}", all.size(), labels, cache::quoted(name));
  }
  Choice out;
  for (const auto& c : all) {
    if (c.names.empty()) {
      if (!c.bare_tag.empty())
        return Error::msg("its image {} has a tag but no name; name it: sandrun image import FILE NAME[:TAG]",
                          cache::quoted(c.bare_tag));
      return Error::msg("an image in it has no name; name it: sandrun image import FILE NAME[:TAG]");
    }
    for (const auto& n : c.names) {
      auto ref = parse_ref(n);
      if (!ref) return std::move(ref).error();
      out.push_back({*ref, &c});
    }
  }
  return out;
}

// Unpacks an archive file (tar, maybe compressed) into `into` with the secure extractor.
// The image caps bound it too: the archive holds at least one image's blobs.
Result<void> unpack_archive_file(const std::string& path, int into, const ImageLimits& limits) {
  UniqueFd fd = SANDRUN_TRY(fs::open_path(path, O_RDONLY | O_NOCTTY));
  UniqueFd sink = SANDRUN_TRY(fs::open_path("/dev/null", O_WRONLY));
  ExtractOptions options;  // files of ours: no owners from the archive
  ImageBudget budget;
  budget.max_bytes = limits.max_image_bytes;
  budget.max_entries = limits.max_image_entries;
  options.image = &budget;
  auto r = unpack_layer(fd.get(), sink.get(), into, options);
  if (!r) return std::move(r).error();
  return {};
}

}  // namespace

Result<std::vector<ImportedImage>> Store::import_archive(const std::string& path, std::string_view name,
                                                         const ImportOptions& options) {
  auto fail = [&](Error e) { return std::move(e.wrap(fmt::format("import {}", path))); };
  Platform platform = host_platform();
  if (!options.platform.empty()) {
    auto p = parse_platform(options.platform);
    if (!p) return fail(std::move(p).error());
    platform = *p;
  }
  Layout layout(root_);
  std::optional<TempEntry> unpacked;  // a tar file's contents, removed at the end
  struct stat st;
  if (::stat(path.c_str(), &st) < 0) return fail(Error::sys("stat {}", path));
  UniqueFd dir_fd;
  if (S_ISDIR(st.st_mode)) {
    auto fd = fs::open_path(path, O_RDONLY | O_DIRECTORY);
    if (!fd) return fail(std::move(fd).error());
    dir_fd = std::move(*fd);
  } else {
    auto tmp = TempEntry::create(layout, "archive");
    if (!tmp) return fail(std::move(tmp).error());
    if (auto r = unpack_archive_file(path, tmp->fd(), limits_); !r) return fail(std::move(r.error().wrap("unpack")));
    dir_fd = UniqueFd(::fcntl(tmp->fd(), F_DUPFD_CLOEXEC, 3));
    unpacked = std::move(*tmp);
  }
  ArchiveDir dir(std::move(dir_fd), path);
  // Docker 25 and `sandrun image save` write both: the OCI index says more (digests, media
  // types, platforms), manifest.json is for older readers.
  const bool docker = !dir.has("oci-layout") && dir.has("manifest.json");
  if (!docker && !dir.has("oci-layout"))
    return fail(Error::msg("neither an OCI image layout (oci-layout, index.json) nor a docker save archive "
                           "(manifest.json)")
                    .hint("for a plain root file system tarball use: sandrun image import --rootfs FILE NAME"));
  auto found = docker ? read_docker_save(dir) : read_oci_layout(dir, platform);
  if (!found) return fail(std::move(found).error());
  auto chosen = choose(*found, name);
  if (!chosen) return fail(std::move(chosen).error());
  std::vector<ImportedImage> out;
  for (const auto& [ref, c] : *chosen) {
    SourceImage image = c->image;
    image.what = fmt::format("{} ({})", path, ref.str());
    FdLayerReader reader(
        [&](size_t i) { return dir.open(docker ? image.layers[i].ref_name : ArchiveDir::blob_path(image.layers[i].digest)); },
        std::max(1u, options.parallel));
    auto imported = import_image(layout, ref, image, reader, limits_);
    if (!imported) return std::move(imported).error();
    out.push_back(std::move(*imported));
  }
  return out;
}

}  // namespace sandrun::cache
