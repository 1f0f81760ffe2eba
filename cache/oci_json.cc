// Reading the OCI and Docker image JSON documents (see oci_json.h).
#include "cache/oci_json.h"

#include <nlohmann/json.hpp>

#include "cache/digest.h"
#include "cache/entry_path.h"

namespace sandrun::cache::oci {

namespace {

using nlohmann::json;

Result<json> parse_json(std::string_view text, std::string_view what) {
  if (text.size() > kMaxDocumentSize) return Error::msg("{} is larger than {} bytes", what, kMaxDocumentSize);
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Error::msg("{} is not valid JSON", what);
  if (!doc.is_object()) return Error::msg("{} is not a JSON object", what);
  return doc;
}

// A string member, "" when missing; an error when present with another type.
Result<std::string> string_member(const json& o, const char* key, std::string_view what) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Error::msg("{}: \"{}\" is not a string", what, key);
  return it->get<std::string>();
}

Result<std::vector<std::string>> string_array(const json& o, const char* key, std::string_view what) {
  std::vector<std::string> out;
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) return out;
  if (!it->is_array()) return Error::msg("{}: \"{}\" is not an array", what, key);
  for (const auto& v : *it) {
    if (!v.is_string()) return Error::msg("{}: \"{}\" holds a non-string", what, key);
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<Platform> platform_of(const json& p, std::string_view what) {
  Platform out;
  out.os = SANDRUN_TRY(string_member(p, "os", what));
  out.architecture = SANDRUN_TRY(string_member(p, "architecture", what));
  out.variant = SANDRUN_TRY(string_member(p, "variant", what));
  return out;
}

Result<Descriptor> descriptor_of(const json& d, std::string_view what) {
  if (!d.is_object()) return Error::msg("{} is not an object", what);
  Descriptor out;
  out.media_type = SANDRUN_TRY(string_member(d, "mediaType", what));
  out.digest = SANDRUN_TRY(string_member(d, "digest", what));
  if (!is_valid_digest(out.digest))
    return Error::msg("{}: digest {} is not sha256: and 64 lowercase hex digits", what, cache::quoted(out.digest));
  auto size = d.find("size");
  if (size == d.end() || !size->is_number_unsigned()) return Error::msg("{}: no valid size", what);
  out.size = size->get<uint64_t>();
  if (auto urls = d.find("urls"); urls != d.end() && !urls->empty())
    return Error::msg("{}: foreign layers (with \"urls\") are not supported", what);
  if (auto p = d.find("platform"); p != d.end() && p->is_object()) out.platform = SANDRUN_TRY(platform_of(*p, what));
  if (auto a = d.find("annotations"); a != d.end() && a->is_object()) {
    auto name = a->find(std::string(kRefNameAnnotation));
    if (name != a->end() && name->is_string()) out.ref_name = name->get<std::string>();
    auto full = a->find(std::string(kFullNameAnnotation));
    if (full != a->end() && full->is_string()) out.full_name = full->get<std::string>();
  }
  return out;
}

bool is_layer_type(std::string_view t) {
  return is_standard_layer_type(t) || t == "application/vnd.oci.image.layer.nondistributable.v1.tar" ||
         t == "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip" ||
         t == "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
}
}  // namespace

bool is_standard_layer_type(std::string_view t) {
  return t == media::kOciLayer || t == media::kOciLayerGzip || t == media::kOciLayerZstd || t == media::kDockerLayerGzip ||
         t == "application/vnd.docker.image.rootfs.diff.tar";
}

Result<Index> parse_index(std::string_view text) {
  json doc = SANDRUN_TRY(parse_json(text, "image index"));
  auto list = doc.find("manifests");
  if (list == doc.end() || !list->is_array()) return Error::msg("image index: no \"manifests\" array");
  Index out;
  size_t i = 0;
  for (const auto& d : *list) out.manifests.push_back(SANDRUN_TRY(descriptor_of(d, fmt::format("image index entry {}", i++))));
  return out;
}

Result<Manifest> parse_manifest(std::string_view text) {
  json doc = SANDRUN_TRY(parse_json(text, "image manifest"));
  Manifest out;
  out.media_type = SANDRUN_TRY(string_member(doc, "mediaType", "image manifest"));
  if (out.media_type.starts_with("application/vnd.docker.distribution.manifest.v1"))
    return Error::msg("Docker schema 1 manifests are not supported (push the image again with a current tool)");
  if (auto v = doc.find("schemaVersion"); v == doc.end() || *v != 2)
    return Error::msg("image manifest: schemaVersion is not 2");
  auto config = doc.find("config");
  if (config == doc.end()) return Error::msg("image manifest: no \"config\"");
  out.config = SANDRUN_TRY(descriptor_of(*config, "image manifest config"));
  if (!is_config_media_type(out.config.media_type))
    return Error::msg("image manifest config: media type {} is not an image config's (OCI or Docker v2)",
                      cache::quoted(out.config.media_type));
  auto layers = doc.find("layers");
  if (layers == doc.end() || !layers->is_array()) return Error::msg("image manifest: no \"layers\" array");
  size_t i = 0;
  for (const auto& d : *layers) {
    const std::string what = fmt::format("image manifest layer {}", i++);
    Descriptor l = SANDRUN_TRY(descriptor_of(d, what));
    if (!is_layer_type(l.media_type)) return Error::msg("{}: unsupported media type {}", what, cache::quoted(l.media_type));
    out.layers.push_back(std::move(l));
  }
  return out;
}

Result<Config> parse_config(std::string_view text) {
  json doc = SANDRUN_TRY(parse_json(text, "image config"));
  Config out;
  out.platform = SANDRUN_TRY(platform_of(doc, "image config"));
  if (auto c = doc.find("config"); c != doc.end() && c->is_object()) {
    constexpr std::string_view what = "image config";
    out.run.env = SANDRUN_TRY(string_array(*c, "Env", what));
    out.run.entrypoint = SANDRUN_TRY(string_array(*c, "Entrypoint", what));
    out.run.cmd = SANDRUN_TRY(string_array(*c, "Cmd", what));
    out.run.working_dir = SANDRUN_TRY(string_member(*c, "WorkingDir", what));
    out.run.user = SANDRUN_TRY(string_member(*c, "User", what));
  }
  auto rootfs = doc.find("rootfs");
  if (rootfs == doc.end() || !rootfs->is_object()) return Error::msg("image config: no \"rootfs\"");
  out.diff_ids = SANDRUN_TRY(string_array(*rootfs, "diff_ids", "image config rootfs"));
  for (const auto& d : out.diff_ids) {
    if (!is_valid_digest(d)) return Error::msg("image config: diff id {} is not a sha256 digest", cache::quoted(d));
  }
  return out;
}

std::vector<const Descriptor*> for_platform(const Index& index, const Platform& platform) {
  std::vector<const Descriptor*> out;
  for (const auto& d : index.manifests) {
    if (!d.platform) {
      out.push_back(&d);
      continue;
    }
    if (!platform_matches(*d.platform, platform)) continue;
    out.push_back(&d);
  }
  return out;
}

std::string platforms_of(const Index& index) {
  std::string out;
  for (const auto& d : index.manifests) {
    if (!out.empty()) out += ", ";
    out += d.platform ? d.platform->str() : "(no platform)";
  }
  return out;
}

std::string make_manifest(const Descriptor& config, const std::vector<Descriptor>& layers) {
  json doc = {{"schemaVersion", 2},
              {"mediaType", media::kOciManifest},
              {"config", {{"mediaType", media::kOciConfig}, {"digest", config.digest}, {"size", config.size}}},
              {"layers", json::array()}};
  for (const auto& l : layers) doc["layers"].push_back({{"mediaType", l.media_type}, {"digest", l.digest}, {"size", l.size}});
  return doc.dump();
}

}  // namespace sandrun::cache::oci
