// The test images of the registry tests: an OCI layout holding a three-layer image (gzip, zstd
// and plain tar layers) tagged "app", and an index over linux/amd64 and linux/arm64 tagged
// "multi"; plus helpers to pull with a RegistryClient.
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "cache/digest.h"
#include "cache/registry.h"
#include "tests/cache/tar_builder.h"
#include "tests/support/oci_layout.h"
#include "tests/support/registry_server.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {

// Incompressible bytes, so layers stay large enough for transfers to overlap.
inline std::string random_bytes(size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

struct TestImages {
  TempDir dir;
  OciLayout layout{dir.path()};
  std::vector<OciLayer> layers;       // of "app"
  OciDescriptor app;                  // its manifest
  OciDescriptor amd64, arm64, multi;  // the index "multi" and its two manifests

  TestImages() {
    layers.push_back(make_layer(TarBuilder().dir("etc").file("etc/os-release", "ID=test\n").build(), "gzip"));
    layers.push_back(make_layer(TarBuilder().file("big.bin", random_bytes(1 << 20, 1)).build(), "zstd"));
    layers.push_back(make_layer(TarBuilder().file("more.bin", random_bytes(1 << 20, 2)).build(), "none"));
    app = layout.add_image(layers);
    layout.tag(app, "app");
    amd64 = layout.add_image({layers[0]}, "linux", "amd64");
    arm64 = layout.add_image({make_layer(TarBuilder().file("arch", "arm64\n").build(), "gzip")}, "linux",
                             "arm64", "v8");
    multi = layout.add_index({{amd64, "linux/amd64"}, {arm64, "linux/arm64/v8"}});
    layout.tag(multi, "multi");
  }
  std::string blob(const std::string& digest) const { return read_file(layout.blob_path(digest)); }
};

// "sha256:... (N bytes)": what blob comparisons print instead of megabytes of binary.
inline std::string digest_of(const std::string& data) {
  return cache::sha256_of(data) + " (" + std::to_string(data.size()) + " bytes)";
}

// A sink that appends to `out`.
inline cache::BlobSink collect(std::string* out) {
  return [out](std::string_view data) -> Result<void> {
    out->append(data);
    return {};
  };
}

}  // namespace sandrun::testing
