// Manifests and indexes: media types, platform selection, config and layer descriptors.
#include "cache/manifest.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "cache/digest.h"

namespace sandrun::cache {

namespace {

using Json = nlohmann::json;

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// "application/json; charset=utf-8" -> "application/json".
std::string_view bare_type(std::string_view content_type) {
  std::string_view t = content_type.substr(0, content_type.find(';'));
  while (!t.empty() && t.back() == ' ') t.remove_suffix(1);
  return t;
}

std::string string_field(const Json& obj, const char* name) {
  auto it = obj.find(name);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Result<Json> parse_object(std::string_view bytes, std::string_view what) {
  Json doc = Json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Error::msg("{} is not a JSON object", what);
  return doc;
}

// A descriptor's digest, media type and size, checked.
Result<Descriptor> read_descriptor(const Json& obj, std::string_view what) {
  if (!obj.is_object()) return Error::msg("{} is not an object", what);
  Descriptor d;
  d.media_type = string_field(obj, "mediaType");
  d.digest = string_field(obj, "digest");
  auto size = obj.find("size");
  if (size == obj.end() || !size->is_number_unsigned())
    return Error::msg("{} has no size", what);
  d.size = size->get<uint64_t>();
  if (!is_valid_digest(d.digest)) {
    if (starts_with(d.digest, "sha256:") || d.digest.find(':') == std::string::npos)
      return Error::msg("{} has an invalid digest \"{}\"", what, d.digest);
    return Error::msg("{} has digest \"{}\": only sha256 digests are supported", what, d.digest);
  }
  return d;
}

// The defaults Docker's platform matcher applies before comparing variants.
std::string normal_variant(const std::string& arch, const std::string& variant) {
  if (arch == "arm64" && variant == "v8") return "";
  if (arch == "arm" && variant.empty()) return "v7";
  if (arch == "amd64" && variant == "v1") return "";
  return variant;
}

Platform platform_of(const Json& entry) {
  Platform p;
  auto it = entry.find("platform");
  if (it != entry.end() && it->is_object()) {
    p.os = string_field(*it, "os");
    p.architecture = string_field(*it, "architecture");
    p.variant = string_field(*it, "variant");
  }
  return p;
}

}  // namespace

bool platform_matches(const Platform& have, const Platform& want) {
  if (have.os != want.os || have.architecture != want.architecture) return false;
  if (want.variant.empty()) return true;
  return normal_variant(have.architecture, have.variant) ==
         normal_variant(want.architecture, want.variant);
}

Platform host_platform() {
#if defined(__x86_64__)
  return {"linux", "amd64", ""};
#elif defined(__aarch64__)
  return {"linux", "arm64", "v8"};
#else
  return {"linux", "unknown", ""};
#endif
}

Result<ManifestKind> classify_manifest(std::string_view bytes, std::string_view content_type,
                                       std::string* media_type) {
  Json doc = SANDRUN_TRY(parse_object(bytes, "the manifest"));
  std::string type = string_field(doc, "mediaType");
  if (type.empty()) type = std::string(bare_type(content_type));
  if (auto v = doc.find("schemaVersion"); v != doc.end() && *v == 1)
    type = "application/vnd.docker.distribution.manifest.v1+json";
  // Registries answer "application/json" or "text/plain" for manifests without the field.
  if (type.empty() || type == "application/json" || type == "text/plain")
    type = doc.contains("manifests") ? media::kOciIndex : media::kOciManifest;
  *media_type = type;
  if (type == media::kOciIndex || type == media::kDockerList) return ManifestKind::index;
  if (type == media::kOciManifest || type == media::kDockerManifest) return ManifestKind::image;
  if (starts_with(type, "application/vnd.docker.distribution.manifest.v1"))
    return Error::msg("the manifest is Docker's deprecated schema 1 ({}), which sandrun does "
                      "not pull", type)
        .hint("push the image again with a current docker or skopeo (schema 2 or OCI)");
  return Error::msg("unsupported manifest media type \"{}\"", type);
}

std::string Platform::str() const {
  return os + "/" + architecture + (variant.empty() ? "" : "/" + variant);
}

Result<Platform> parse_platform(std::string_view text) {
  Platform p;
  std::vector<std::string> parts;
  size_t pos = 0;
  for (;;) {
    size_t slash = text.find('/', pos);
    parts.emplace_back(text.substr(pos, slash - pos));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  bool empty_part = false;
  for (auto& part : parts) empty_part |= part.empty();
  if (parts.size() < 2 || parts.size() > 3 || empty_part)
    return Error::msg("invalid platform \"{}\": expected os/architecture[/variant], e.g. "
                      "linux/amd64", text);
  p.os = parts[0];
  p.architecture = parts[1];
  if (parts.size() == 3) p.variant = parts[2];
  return p;
}

Result<Descriptor> select_platform(std::string_view index_bytes, const Platform& want) {
  Json doc = SANDRUN_TRY(parse_object(index_bytes, "the index"));
  auto list = doc.find("manifests");
  if (list == doc.end() || !list->is_array()) return Error::msg("the index has no \"manifests\"");
  std::vector<std::string> available;
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& entry = (*list)[i];
    if (!entry.is_object()) return Error::msg("index entry {} is not an object", i);
    Platform have = platform_of(entry);
    if (!platform_matches(have, want)) {
      // BuildKit's attestations are listed as unknown/unknown: not a platform to offer.
      if (!have.os.empty() && have.os != "unknown") available.push_back(have.str());
      continue;
    }
    Descriptor d = SANDRUN_TRY(read_descriptor(entry, fmt::format("index entry {}", i)));
    if (d.media_type == media::kOciIndex || d.media_type == media::kDockerList)
      return Error::msg("index entry {} for {} is itself an index, which sandrun does not follow",
                        i, want.str());
    if (!d.media_type.empty() && d.media_type != media::kOciManifest && d.media_type != media::kDockerManifest)
      return Error::msg("index entry {} for {} has media type \"{}\", not an image manifest's", i,
                        want.str(), d.media_type);
    return d;
  }
  if (available.empty())
    return Error::msg("the index has no manifest for {} (it names no platforms)", want.str());
  return Error::msg("the index has no manifest for {} (available: {})", want.str(),
                    fmt::join(available, ", "))
      .hint("choose one with --platform");
}

Result<void> check_layer_media_type(std::string_view type) {
  if (type == media::kOciLayer || type == media::kOciLayerGzip || type == media::kOciLayerZstd ||
      type == media::kDockerLayerGzip)
    return {};
  if (type.find("nondistributable") != std::string_view::npos ||
      type.find("foreign") != std::string_view::npos)
    return Error::msg("foreign (non-distributable) layer of type \"{}\": sandrun pulls only "
                      "layers the registry itself serves", type);
  return Error::msg("layer media type \"{}\" is not a tar, tar+gzip or tar+zstd layer", type);
}

bool is_config_media_type(std::string_view type) {
  return type == media::kOciConfig || type == media::kDockerConfig;
}

Result<void> check_manifest_descriptor(std::string_view declared, std::string_view actual) {
  if (declared.empty()) return {};
  const bool known = declared == media::kOciIndex || declared == media::kDockerList ||
                     declared == media::kOciManifest || declared == media::kDockerManifest;
  if (!known)
    return Error::msg("descriptor media type \"{}\" is not an image index or manifest type", declared);
  if (declared != actual)
    return Error::msg("descriptor media type \"{}\" does not match the document's \"{}\"", declared, actual);
  return {};
}

Result<PulledManifest> parse_image_manifest(std::string_view bytes, std::string_view media_type) {
  Json doc = SANDRUN_TRY(parse_object(bytes, "the manifest"));
  PulledManifest m;
  m.media_type = std::string(media_type);
  m.bytes = std::string(bytes);
  m.digest = sha256_of(bytes);
  auto config = doc.find("config");
  if (config == doc.end()) return Error::msg("the manifest has no config");
  m.config = SANDRUN_TRY(read_descriptor(*config, "the config descriptor"));
  if (!is_config_media_type(m.config.media_type))
    return Error::msg("config media type \"{}\" is not an image config (an artifact, not an "
                      "image?)", m.config.media_type);
  auto layers = doc.find("layers");
  if (layers == doc.end() || !layers->is_array()) return Error::msg("the manifest has no layers");
  for (size_t i = 0; i < layers->size(); ++i) {
    std::string what = fmt::format("layer {}", i + 1);
    Descriptor d = SANDRUN_TRY(read_descriptor((*layers)[i], what));
    if (auto urls = (*layers)[i].find("urls"); urls != (*layers)[i].end() && !urls->empty())
      return Error::msg("{} ({}) must be downloaded from other URLs (a foreign layer), which "
                        "sandrun does not do", what, d.digest);
    if (auto r = check_layer_media_type(d.media_type); !r)
      return std::move(r).error().wrap(fmt::format("{} ({})", what, d.digest));
    m.layers.push_back(std::move(d));
  }
  return m;
}

}  // namespace sandrun::cache
