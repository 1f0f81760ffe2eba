// Writing test images in the formats users bring: OCI image layouts (as skopeo and umoci
// write them) and `docker save` archives, from layer tarballs made with TarBuilder.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tests/cache/tar_builder.h"

namespace sandrun::testing {

class OciImageBuilder {
 public:
  // A layer: the uncompressed tar (TarBuilder::build()), stored with compression `c`.
  OciImageBuilder& layer(std::string tar, Compression c = Compression::gzip);
  OciImageBuilder& env(std::vector<std::string> v) { env_ = std::move(v); return *this; }
  OciImageBuilder& cmd(std::vector<std::string> v) { cmd_ = std::move(v); return *this; }
  OciImageBuilder& entrypoint(std::vector<std::string> v) { entrypoint_ = std::move(v); return *this; }
  OciImageBuilder& workdir(std::string v) { workdir_ = std::move(v); return *this; }
  OciImageBuilder& user(std::string v) { user_ = std::move(v); return *this; }
  OciImageBuilder& platform(std::string os, std::string arch) { os_ = std::move(os); arch_ = std::move(arch); return *this; }

  // The config JSON and its digest.
  std::string config() const;
  // Writes the blobs and the manifest into the OCI layout `dir` (created with oci-layout and
  // index.json when missing) and returns the manifest's descriptor as JSON (without adding it
  // to index.json).
  std::string write_blobs(const std::string& dir) const;
  // write_blobs() and an index.json entry named `ref_name` (a tag or a whole reference; empty:
  // no annotation). Returns the manifest digest.
  std::string write_oci(const std::string& dir, const std::string& ref_name) const;
  // A `docker save` archive directory, the format of Docker before 25: <id>/layer.tar
  // (uncompressed), <config hex>.json, manifest.json with `repo_tags`.
  void write_docker_save(const std::string& dir, const std::vector<std::string>& repo_tags) const;

  const std::vector<std::string>& diff_ids() const { return diff_ids_; }
  // Makes the config lie about layer `i`'s diff id (for tests of verification).
  OciImageBuilder& fake_diff_id(size_t i, std::string digest) { diff_ids_.at(i) = std::move(digest); return *this; }

 private:
  std::vector<std::pair<std::string, Compression>> layers_;  // uncompressed tar, compression
  std::vector<std::string> diff_ids_;
  std::vector<std::string> env_ = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  std::vector<std::string> cmd_ = {"/bin/sh"};
  std::vector<std::string> entrypoint_;
  std::string workdir_, user_;
  std::string os_ = "linux", arch_ = "amd64";
};

// Adds an image index blob holding the manifests `descriptors` (JSON from write_blobs(), each
// with its platform) to the layout and an index.json entry for it named `ref_name`.
std::string write_oci_index(const std::string& dir, const std::vector<std::string>& descriptors,
                            const std::string& ref_name);

// "sha256:<hex>" of `data`.
std::string sha256_hex_digest(const std::string& data);

// Packs a directory into a tar file with the host's tar (for archives users would have).
void tar_directory(const std::string& dir, const std::string& tar_file);

}  // namespace sandrun::testing
