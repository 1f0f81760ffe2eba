// Writing OCI image layouts and docker-save archives for tests (see oci_builder.h).
#include "tests/cache/oci_builder.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "tests/support/test_env.h"

namespace sandrun::testing {

namespace {

using nlohmann::json;

const char* layer_type(Compression c) {
  switch (c) {
    case Compression::none: return "application/vnd.oci.image.layer.v1.tar";
    case Compression::gzip: return "application/vnd.oci.image.layer.v1.tar+gzip";
    case Compression::zstd: return "application/vnd.oci.image.layer.v1.tar+zstd";
    case Compression::xz: break;
  }
  ADD_FAILURE() << "no OCI media type for xz layers";
  return "";
}

void mkdir_p(const std::string& dir) {
  ASSERT_EQ(run_command({"mkdir", "-p", dir}).status, 0) << dir;
}

// Writes a blob into dir/blobs/sha256/ and returns its descriptor.
json put_blob(const std::string& dir, const std::string& data, const std::string& media_type) {
  const std::string digest = sha256_hex_digest(data);
  mkdir_p(dir + "/blobs/sha256");
  write_file(dir + "/blobs/sha256/" + digest.substr(7), data);
  return {{"mediaType", media_type}, {"digest", digest}, {"size", data.size()}};
}

void add_to_index(const std::string& dir, json descriptor, const std::string& ref_name) {
  mkdir_p(dir);
  write_file(dir + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  json index = {{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", json::array()}};
  struct stat st;
  if (::stat((dir + "/index.json").c_str(), &st) == 0) index = json::parse(read_file(dir + "/index.json"));
  if (!ref_name.empty()) descriptor["annotations"] = {{"org.opencontainers.image.ref.name", ref_name}};
  index["manifests"].push_back(descriptor);
  write_file(dir + "/index.json", index.dump());
}

}  // namespace

std::string sha256_hex_digest(const std::string& data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned i = 0; i < len; ++i) {
    out += kHex[md[i] >> 4];
    out += kHex[md[i] & 15];
  }
  return out;
}

OciImageBuilder& OciImageBuilder::layer(std::string tar, Compression c) {
  diff_ids_.push_back(sha256_hex_digest(tar));
  layers_.emplace_back(std::move(tar), c);
  return *this;
}

std::string OciImageBuilder::config() const {
  json run = json::object();
  if (!env_.empty()) run["Env"] = env_;
  if (!cmd_.empty()) run["Cmd"] = cmd_;
  if (!entrypoint_.empty()) run["Entrypoint"] = entrypoint_;
  if (!workdir_.empty()) run["WorkingDir"] = workdir_;
  if (!user_.empty()) run["User"] = user_;
  json doc = {{"architecture", arch_}, {"os", os_}, {"config", run}, {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids_}}}};
  return doc.dump();
}

std::string OciImageBuilder::write_blobs(const std::string& dir) const {
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"config", put_blob(dir, config(), "application/vnd.oci.image.config.v1+json")},
                   {"layers", json::array()}};
  for (const auto& [tar, c] : layers_) manifest["layers"].push_back(put_blob(dir, compress(tar, c), layer_type(c)));
  json d = put_blob(dir, manifest.dump(), "application/vnd.oci.image.manifest.v1+json");
  d["platform"] = {{"os", os_}, {"architecture", arch_}};
  return d.dump();
}

std::string OciImageBuilder::write_oci(const std::string& dir, const std::string& ref_name) const {
  json d = json::parse(write_blobs(dir));
  d.erase("platform");  // as skopeo writes a single image: no platform in index.json
  add_to_index(dir, d, ref_name);
  return d["digest"];
}

void OciImageBuilder::write_docker_save(const std::string& dir, const std::vector<std::string>& repo_tags) const {
  mkdir_p(dir);
  const std::string config_text = config();
  const std::string config_name = sha256_hex_digest(config_text).substr(7) + ".json";
  write_file(dir + "/" + config_name, config_text);
  json layers = json::array();
  for (size_t i = 0; i < layers_.size(); ++i) {
    // Docker names these directories after a v1 layer id; any name does.
    const std::string id = diff_ids_[i].substr(7);
    mkdir_p(dir + "/" + id);
    write_file(dir + "/" + id + "/layer.tar", layers_[i].first);
    write_file(dir + "/" + id + "/VERSION", "1.0");
    layers.push_back(id + "/layer.tar");
  }
  json manifest = json::array({{{"Config", config_name}, {"RepoTags", repo_tags}, {"Layers", layers}}});
  write_file(dir + "/manifest.json", manifest.dump());
}

std::string write_oci_index(const std::string& dir, const std::vector<std::string>& descriptors,
                            const std::string& ref_name) {
  json index = {{"schemaVersion", 2}, {"mediaType", "application/vnd.oci.image.index.v1+json"}, {"manifests", json::array()}};
  for (const auto& d : descriptors) index["manifests"].push_back(json::parse(d));
  json d = put_blob(dir, index.dump(), "application/vnd.oci.image.index.v1+json");
  add_to_index(dir, d, ref_name);
  return d["digest"];
}

void tar_directory(const std::string& dir, const std::string& tar_file) {
  auto r = run_command({"tar", "-C", dir, "-cf", tar_file, "."});
  ASSERT_EQ(r.status, 0) << r.err;
}

}  // namespace sandrun::testing
