// Reading the OCI image-spec JSON documents (index, manifest, config) and Docker's equivalents
// (manifest list, schema2 manifest), as found in OCI layouts, docker-save archives and
// registries. Nothing here trusts the input: sizes, digests and media types are checked.
// The media types and platforms are cache/manifest.h's, shared with the registry client.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cache/manifest.h"
#include "cache/store.h"

namespace sandrun::cache::oci {

// The annotation of an index entry that names it ("latest", or a whole reference).
inline constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";
// The whole name, as Docker (25 and later) and containerd write it beside a tag-only ref name.
inline constexpr std::string_view kFullNameAnnotation = "io.containerd.image.name";

// JSON documents larger than this are refused (real ones are a few KiB).
inline constexpr uint64_t kMaxDocumentSize = 4 << 20;

struct Descriptor {
  std::string media_type;
  std::string digest;  // "sha256:<hex>", checked
  uint64_t size = 0;
  std::optional<Platform> platform;  // entries of an index
  std::string ref_name;              // the org.opencontainers.image.ref.name annotation
  std::string full_name;             // the io.containerd.image.name annotation
};

// An OCI image index or a Docker manifest list.
struct Index {
  std::vector<Descriptor> manifests;
};

// An OCI image manifest or a Docker schema2 manifest.
struct Manifest {
  std::string media_type;
  Descriptor config;
  std::vector<Descriptor> layers;  // bottom first
};

// The layer media types image tools read: tar, tar+gzip, tar+zstd (OCI), Docker's tar and
// tar.gzip. Manifests of a local layout may also name their non-distributable variants.
bool is_standard_layer_type(std::string_view media_type);

Result<Index> parse_index(std::string_view json);
// Checks the layers' media types (tar, gzip, zstd; no foreign layers with "urls").
Result<Manifest> parse_manifest(std::string_view json);

// The image config: how to run it, and the diff ids of its layers.
struct Config {
  ImageConfig run;
  std::vector<std::string> diff_ids;  // checked digests, bottom first
  Platform platform;
};
Result<Config> parse_config(std::string_view json);

// The entries of `index` for `platform` (platform_matches); entries without a platform match
// any (a layout with one image often has none).
std::vector<const Descriptor*> for_platform(const Index& index, const Platform& platform);
// "linux/amd64, linux/arm64" of the index's entries, for messages.
std::string platforms_of(const Index& index);

// A manifest for stored layers and config, OCI media types: what sandrun writes for images
// that come without one (rootfs tarballs, old docker-save archives). Same input, same bytes.
std::string make_manifest(const Descriptor& config, const std::vector<Descriptor>& layers);

}  // namespace sandrun::cache::oci
