// OCI image layouts written by tests.
#include "tests/support/oci_layout.h"

#include <sys/stat.h>

#include <stdexcept>

#include <nlohmann/json.hpp>

#include "cache/digest.h"
#include "cache/manifest.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {

namespace {

using Json = nlohmann::json;

Json descriptor_json(const OciDescriptor& d) {
  return Json{{"mediaType", d.media_type}, {"digest", d.digest}, {"size", d.size}};
}

Json platform_json(const std::string& platform) {
  size_t a = platform.find('/');
  size_t b = platform.find('/', a + 1);
  Json p{{"os", platform.substr(0, a)},
         {"architecture", platform.substr(a + 1, b == std::string::npos ? b : b - a - 1)}};
  if (b != std::string::npos) p["variant"] = platform.substr(b + 1);
  return p;
}

}  // namespace

OciLayer make_layer(const std::string& tar, const std::string& compression) {
  OciLayer layer;
  layer.diff_id = cache::sha256_of(tar);
  if (compression == "none") {
    layer.bytes = tar;
    layer.media_type = std::string(cache::media::kOciLayer);
    return layer;
  }
  TempDir tmp;
  write_file(tmp / "layer.tar", tar);
  std::vector<std::string> argv = compression == "gzip"
                                      ? std::vector<std::string>{"gzip", "-n", "-c", tmp / "layer.tar"}
                                      : std::vector<std::string>{"zstd", "-q", "-c", tmp / "layer.tar"};
  CommandResult r = run_command(argv);
  if (r.status != 0) throw std::runtime_error(argv[0] + " failed: " + r.err);
  layer.bytes = r.out;
  layer.media_type = std::string(compression == "gzip" ? cache::media::kOciLayerGzip
                                                       : cache::media::kOciLayerZstd);
  return layer;
}

OciLayout::OciLayout(std::string dir) : dir_(std::move(dir)) {
  ::mkdir((dir_ + "/blobs").c_str(), 0755);
  ::mkdir((dir_ + "/blobs/sha256").c_str(), 0755);
  write_file(dir_ + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  write_file(dir_ + "/index.json", R"({"schemaVersion":2,"manifests":[]})");
}

std::string OciLayout::blob_path(const std::string& digest) const {
  return dir_ + "/blobs/sha256/" + std::string(cache::digest_hex(digest));
}

OciDescriptor OciLayout::add_blob(const std::string& bytes, const std::string& media_type) {
  OciDescriptor d{media_type, cache::sha256_of(bytes), bytes.size()};
  write_file(blob_path(d.digest), bytes);
  return d;
}

OciDescriptor OciLayout::add_image(const std::vector<OciLayer>& layers, const std::string& os,
                                   const std::string& arch, const std::string& variant) {
  Json diff_ids = Json::array();
  Json layer_list = Json::array();
  for (const OciLayer& l : layers) {
    diff_ids.push_back(l.diff_id);
    layer_list.push_back(descriptor_json(add_blob(l.bytes, l.media_type)));
  }
  Json config{{"architecture", arch},
              {"os", os},
              {"config", {{"Env", {"PATH=/usr/bin:/bin"}}, {"Cmd", {"/bin/sh"}}}},
              {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  if (!variant.empty()) config["variant"] = variant;
  OciDescriptor cfg = add_blob(config.dump(), std::string(cache::media::kOciConfig));
  Json manifest{{"schemaVersion", 2},
                {"mediaType", cache::media::kOciManifest},
                {"config", descriptor_json(cfg)},
                {"layers", layer_list}};
  return add_blob(manifest.dump(), std::string(cache::media::kOciManifest));
}

OciDescriptor OciLayout::add_index(
    const std::vector<std::pair<OciDescriptor, std::string>>& manifests) {
  Json list = Json::array();
  for (auto& [d, platform] : manifests) {
    Json entry = descriptor_json(d);
    entry["platform"] = platform_json(platform);
    list.push_back(entry);
  }
  Json index{{"schemaVersion", 2}, {"mediaType", cache::media::kOciIndex}, {"manifests", list}};
  return add_blob(index.dump(), std::string(cache::media::kOciIndex));
}

void OciLayout::tag(const OciDescriptor& d, const std::string& tag) {
  tags_.emplace_back(d, tag);
  Json list = Json::array();
  for (auto& [desc, name] : tags_) {
    Json entry = descriptor_json(desc);
    entry["annotations"] = {{"org.opencontainers.image.ref.name", name}};
    list.push_back(entry);
  }
  write_file(dir_ + "/index.json", Json{{"schemaVersion", 2}, {"manifests", list}}.dump());
}

}  // namespace sandrun::testing
