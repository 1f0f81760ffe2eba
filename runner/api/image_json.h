// Docker's views of the cache's images: one image per id (its names grouped), looked up as
// Docker does (name[:tag], name@digest, full or short id), and its JSON for list, inspect and
// history. Lookups are blocking (the cache's file locks): threadpool only.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cache/store.h"
#include "sandbox/sys/result.h"

namespace sandrun::runner::api {

struct ImageView {
  std::string id;                           // "sha256:<hex>" of the config
  std::vector<cache::ImageRecord> records;  // every name (record) of this id
  nlohmann::json config = nlohmann::json::object();  // the image config blob, parsed

  std::vector<std::string> repo_tags() const;     // "name:tag" of the tagged records
  std::vector<std::string> repo_digests() const;  // "name@sha256:..." of each name
  int64_t created() const;                        // the config's "created", else the import time
  uint64_t size() const;                          // unpacked bytes of its layers
  std::map<std::string, std::string> labels() const;
};

// Every image of the cache, grouped by id, in the cache's order; with its config when asked.
Result<std::vector<ImageView>> image_views(const cache::Store& store, bool with_config);

struct FoundImage {
  ImageView view;
  std::optional<cache::ImageRecord> by_ref;  // the record `name` named, when it is a reference
};
// The image `name` names: a reference ("busybox", "x:1", "127.0.0.1:5000/x@sha256:..."), else
// an id, full ("sha256:<hex>") or a unique prefix of its hex. "busybox" and "busybox:latest"
// make the built-in image on first use. nullopt: no such image.
Result<std::optional<FoundImage>> find_image(cache::Store& store, std::string_view name);

// GET /images/json's entry.
nlohmann::json image_summary(const ImageView& v);
// GET /images/{name}/json.
nlohmann::json image_inspect(const ImageView& v);
// GET /images/{name}/history, newest first.
nlohmann::json image_history(const ImageView& v);

// "sha256:<hex>" -> the first 12 hex digits.
std::string short_id(std::string_view id);

}  // namespace sandrun::runner::api
