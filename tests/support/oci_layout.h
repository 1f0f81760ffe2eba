// Writes OCI image layouts (oci-layout, index.json, blobs/sha256/...) for tests: images made of
// given layer tarballs, and indexes over several platforms, ready for `skopeo copy oci:DIR:TAG`.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sandrun::testing {

struct OciDescriptor {
  std::string media_type;
  std::string digest;  // "sha256:<hex>"
  uint64_t size = 0;
};

// A layer blob: the (maybe compressed) bytes, their media type and the uncompressed tar's digest.
struct OciLayer {
  std::string bytes;
  std::string media_type;
  std::string diff_id;
};

// `tar` compressed with the `gzip -n` or `zstd` command ("none": as is), with the matching OCI
// media type. Throws std::runtime_error when the command fails.
OciLayer make_layer(const std::string& tar, const std::string& compression);

class OciLayout {
 public:
  // Creates DIR/oci-layout and DIR/blobs/sha256 (DIR must exist).
  explicit OciLayout(std::string dir);

  const std::string& dir() const { return dir_; }
  // Stores `bytes` as a blob.
  OciDescriptor add_blob(const std::string& bytes, const std::string& media_type);
  // An image manifest over a config for `os`/`arch` (with the layers' diff_ids) and `layers`.
  OciDescriptor add_image(const std::vector<OciLayer>& layers, const std::string& os = "linux",
                          const std::string& arch = "amd64", const std::string& variant = "");
  // An image index over manifests, each with its platform "os/arch[/variant]".
  OciDescriptor add_index(const std::vector<std::pair<OciDescriptor, std::string>>& manifests);
  // Names `d` as TAG in index.json (rewritten each time).
  void tag(const OciDescriptor& d, const std::string& tag);
  // The path of a stored blob.
  std::string blob_path(const std::string& digest) const;

 private:
  std::string dir_;
  std::vector<std::pair<OciDescriptor, std::string>> tags_;
};

}  // namespace sandrun::testing
