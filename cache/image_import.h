// Importing a multi-layer image from any source (an OCI layout, a docker-save archive, a
// registry): what the store lacks is read once, verified and unpacked into tmp/, then
// committed with the image's config, manifest and record.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cache/layout.h"
#include "cache/oci_json.h"
#include "cache/store.h"
#include "cache/unpack.h"

namespace sandrun::cache {

// An image as its source describes it, before any layer is read.
struct SourceImage {
  std::string what;                    // for messages: "OCI layout ./img", "docker-save x.tar"
  std::string config;                  // the config JSON, exactly as stored
  std::string config_digest;           // what the source claims ("" = none): verified
  std::string manifest;                // the manifest JSON, or "" to make one (oci::make_manifest)
  std::string manifest_media_type;     // of `manifest`
  std::string manifest_digest;         // what the source claims ("" = none): verified
  // Each layer's descriptor: digest "" when the source does not know it (verified when known,
  // computed otherwise), media type "" when unknown (then found from the bytes).
  std::vector<oci::Descriptor> layers;  // bottom first, one per config diff id
};

// Delivers the bytes of layers. read_layers() calls consume(i, read) exactly once for each
// index in `wanted`, in any order, from one thread or several (never twice at once for one
// index), and returns the first error. The bytes are not trusted: the importer verifies them.
class LayerReader {
 public:
  virtual ~LayerReader() = default;
  using Consume = std::function<Result<void>(size_t index, const ReadFn& read)>;
  virtual Result<void> read_layers(const std::vector<size_t>& wanted, const Consume& consume) = 0;
};

// Imports `image` as `ref` (a name:tag; or name@digest, then the manifest must have that
// digest). On any error nothing is committed and tmp/ is cleaned. The record replaces an
// existing one of the same name:tag; layers only that one used are collected.
// Each layer is unpacked within `limits` (an error names the cap passed and the layer); an
// image of more than kMaxImageLayers layers is refused before any is read.
Result<ImportedImage> import_image(const Layout& layout, const ImageRef& ref, const SourceImage& image,
                                   LayerReader& reader, const ImageLimits& limits);

// The extraction options of an import: default_extract_options() with the caps of `limits`
// drawing from `budget` (the image's).
ExtractOptions capped_extract_options(const ImageLimits& limits, ImageBudget* budget);

// A LayerReader over functions that open each layer as a file descriptor (files of an OCI
// layout directory, say); up to `parallel` layers are unpacked at once.
class FdLayerReader : public LayerReader {
 public:
  using Open = std::function<Result<UniqueFd>(size_t index)>;
  FdLayerReader(Open open, unsigned parallel) : open_(std::move(open)), parallel_(parallel) {}
  Result<void> read_layers(const std::vector<size_t>& wanted, const Consume& consume) override;

 private:
  Open open_;
  unsigned parallel_;
};

// Calls fn(i) for every item, up to `parallel` at once (this thread and more); stops handing
// out items at the first error, which it returns (after calling `on_error`, if any, once).
Result<void> for_each_parallel(const std::vector<size_t>& items, unsigned parallel,
                               const std::function<Result<void>(size_t)>& fn,
                               const std::function<void()>& on_error = {});

}  // namespace sandrun::cache
