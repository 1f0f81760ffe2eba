// Image manifests and indexes of the OCI distribution API (and Docker's schema2 equivalents):
// media types, platform selection, what a manifest names. Pure functions over JSON bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/sys/result.h"

namespace sandrun::cache {

namespace media {
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kDockerList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
// The Accept header of a manifest request: indexes first, no schema1.
inline constexpr std::string_view kManifestAccept =
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";
}  // namespace media

// A content descriptor: what a manifest says about a blob it references.
struct Descriptor {
  std::string media_type;
  std::string digest;  // "sha256:<64 hex>"
  uint64_t size = 0;
};

// An image manifest as pulled from a registry.
struct PulledManifest {
  std::string digest;        // sha256 of `bytes`, exactly as the registry sent them
  std::string media_type;    // kOciManifest or kDockerManifest
  std::string bytes;
  Descriptor config;
  std::vector<Descriptor> layers;  // bottom first
  std::string index_digest;  // the index or manifest list it was chosen from, else empty
};

enum class ManifestKind { index, image };

// The media type of a manifest: its "mediaType" field, else the Content-Type the registry
// sent, else guessed from its shape (old OCI manifests may omit the field). Then classified:
// schema1 and anything else unknown are refused with a message saying why.
Result<ManifestKind> classify_manifest(std::string_view bytes, std::string_view content_type,
                                       std::string* media_type);

// "os/arch[/variant]", e.g. "linux/amd64", "linux/arm64/v8".
struct Platform {
  std::string os, architecture, variant;
  std::string str() const;
};
Result<Platform> parse_platform(std::string_view text);
// The platform sandrun runs on: linux and the architecture it was built for.
Platform host_platform();
// Whether an image for `have` runs on `want`: same os and architecture; the variants compared
// after the usual defaults (arm64 is v8, arm is v7) when `want` names one.
bool platform_matches(const Platform& have, const Platform& want);

// The manifest of an index (or manifest list) that runs on `want`. Variants compare after
// the usual defaults (arm64 is v8, arm is v7); a wanted platform without a variant takes any.
// None matching is an error listing the index's platforms.
Result<Descriptor> select_platform(std::string_view index_bytes, const Platform& want);

// The config and layers of an image manifest (schema 2: OCI or Docker), each checked: a
// sha256 digest, a config media type sandrun reads, layers that are tar, tar+gzip or
// tar+zstd and distributable (no "urls", no foreign or non-distributable media type).
Result<PulledManifest> parse_image_manifest(std::string_view bytes, std::string_view media_type);

// Whether sandrun can unpack a layer of this media type; an error says why not.
Result<void> check_layer_media_type(std::string_view media_type);

// Whether `type` is one of the two image config types (OCI, Docker v2).
bool is_config_media_type(std::string_view type);

// A descriptor that points at a manifest or an index (an index entry, a layout's index.json
// entry) said `declared`; the document it points at is `actual` (classify_manifest's type).
// Empty `declared` is fine (older layouts omit it); otherwise it must be one of the four
// index and manifest types (never a layer's or a config's) and equal `actual`: an entry typed
// as an index that points at a manifest is refused, and so is the reverse.
Result<void> check_manifest_descriptor(std::string_view declared, std::string_view actual);

}  // namespace sandrun::cache
