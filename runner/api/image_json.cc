// Docker's JSON for images, from the cache's records and config blobs.
#include "runner/api/image_json.h"

#include <algorithm>
#include <cctype>

#include "runner/api/route_util.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

bool is_hex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) && !std::isupper(c); });
}

// A config value that is an object (else {} or null as Docker prints an empty one).
json object_or(const json& cfg, const char* key, json fallback) {
  auto it = cfg.find(key);
  return it != cfg.end() && it->is_object() ? *it : fallback;
}

}  // namespace

std::string short_id(std::string_view id) {
  if (auto colon = id.find(':'); colon != std::string_view::npos) id.remove_prefix(colon + 1);
  return std::string(id.substr(0, 12));
}

std::vector<std::string> ImageView::repo_tags() const {
  std::vector<std::string> out;
  for (const auto& r : records)
    if (!r.tag.empty()) out.push_back(r.name + ":" + r.tag);
  return out;
}

std::vector<std::string> ImageView::repo_digests() const {
  std::vector<std::string> out;
  for (const auto& r : records) {
    if (r.manifest_digest.empty()) continue;
    std::string d = r.name + "@" + r.manifest_digest;
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
  }
  return out;
}

int64_t ImageView::created() const {
  if (auto it = config.find("created"); it != config.end() && it->is_string())
    if (auto t = parse_rfc3339(it->get<std::string>())) return *t;
  return records.empty() ? 0 : records.front().created;
}

uint64_t ImageView::size() const {
  uint64_t total = 0;
  if (!records.empty())
    for (const auto& l : records.front().layers) total += l.unpacked_size;
  return total;
}

std::map<std::string, std::string> ImageView::labels() const {
  std::map<std::string, std::string> out;
  auto cfg = config.find("config");
  if (cfg == config.end() || !cfg->is_object()) return out;
  auto l = cfg->find("Labels");
  if (l == cfg->end() || !l->is_object()) return out;
  for (const auto& [k, v] : l->items())
    if (v.is_string()) out[k] = v.get<std::string>();
  return out;
}

Result<std::vector<ImageView>> image_views(const cache::Store& store, bool with_config) {
  std::vector<ImageView> out;
  for (auto& r : SANDRUN_TRY(store.list())) {
    auto it = std::find_if(out.begin(), out.end(), [&](const ImageView& v) { return v.id == r.id; });
    if (it == out.end()) {
      out.push_back(ImageView{r.id, {}, json::object()});
      it = out.end() - 1;
    }
    it->records.push_back(std::move(r));
  }
  if (!with_config) return out;
  for (auto& v : out) {
    auto text = store.config_json(v.records.front());
    if (!text) continue;  // an unreadable config: the record's own facts still show
    auto j = json::parse(*text, nullptr, false);
    if (j.is_object()) v.config = std::move(j);
  }
  return out;
}

Result<std::optional<FoundImage>> find_image(cache::Store& store, std::string_view name) {
  auto ref = cache::parse_ref(name);
  // The built-in image exists once it is first asked for.
  if (ref && ref->name == cache::kBuiltinImage && ref->tag == "latest") SANDRUN_TRY(store.ensure(ref->str()));
  std::vector<ImageView> views = SANDRUN_TRY(image_views(store, true));
  if (ref) {
    for (const auto& v : views) {
      for (const auto& r : v.records) {
        const bool same = r.name == ref->name && (ref->digest.empty() ? r.tag == ref->tag : r.manifest_digest == ref->digest);
        if (same) return std::optional<FoundImage>(FoundImage{v, r});
      }
    }
  }
  std::string_view hex = name;
  if (hex.starts_with("sha256:")) hex.remove_prefix(7);
  if (!is_hex(hex)) return std::optional<FoundImage>();
  const ImageView* match = nullptr;
  for (const auto& v : views) {
    if (!std::string_view(v.id).substr(7).starts_with(hex)) continue;
    if (match) return std::optional<FoundImage>();  // ambiguous: Docker says no such image too
    match = &v;
  }
  if (!match) return std::optional<FoundImage>();
  return std::optional<FoundImage>(FoundImage{*match, std::nullopt});
}

json image_summary(const ImageView& v) {
  const auto labels = v.labels();
  return {{"Id", v.id},
          {"ParentId", ""},
          {"RepoTags", v.repo_tags()},
          {"RepoDigests", v.repo_digests()},
          {"Created", v.created()},
          {"Size", v.size()},
          {"SharedSize", -1},
          {"VirtualSize", v.size()},
          {"Labels", labels.empty() ? json(nullptr) : json(labels)},
          {"Containers", -1}};
}

json image_inspect(const ImageView& v) {
  const json cfg = object_or(v.config, "config", json::object());
  json config = json::object();
  for (const char* key : {"Hostname", "Domainname", "User", "Env", "Cmd", "Entrypoint", "WorkingDir", "Labels",
                          "ExposedPorts", "Volumes", "StopSignal", "Healthcheck", "OnBuild", "ArgsEscaped"}) {
    if (cfg.contains(key)) config[key] = cfg[key];
  }
  for (const char* key : {"User", "WorkingDir"})
    if (!config.contains(key)) config[key] = "";
  for (const char* key : {"Env", "Cmd", "Entrypoint", "Labels"})
    if (!config.contains(key)) config[key] = nullptr;
  json layers = json::array();
  if (!v.records.empty())
    for (const auto& l : v.records.front().layers) layers.push_back(l.diff_id);
  const std::string created = v.config.contains("created") && v.config["created"].is_string()
                                  ? v.config["created"].get<std::string>()
                                  : rfc3339(v.created());
  return {{"Id", v.id},
          {"RepoTags", v.repo_tags()},
          {"RepoDigests", v.repo_digests()},
          {"Parent", ""},
          {"Comment", v.config.value("comment", "")},
          {"Created", created},
          {"DockerVersion", v.config.value("docker_version", "")},
          {"Author", v.config.value("author", "")},
          {"Config", config},
          {"Architecture", v.config.value("architecture", "")},
          {"Variant", v.config.value("variant", "")},
          {"Os", v.config.value("os", "")},
          {"Size", v.size()},
          {"VirtualSize", v.size()},
          {"GraphDriver", {{"Name", "overlay"}, {"Data", nullptr}}},
          {"RootFS", {{"Type", "layers"}, {"Layers", layers}}},
          {"Metadata", {{"LastTagTime", "0001-01-01T00:00:00Z"}}}};
}

json image_history(const ImageView& v) {
  json out = json::array();
  const json hist = v.config.contains("history") && v.config["history"].is_array() ? v.config["history"] : json::array();
  const auto& layers = v.records.empty() ? std::vector<cache::LayerRef>{} : v.records.front().layers;
  size_t layer = 0;
  for (const auto& h : hist) {
    const bool empty = h.value("empty_layer", false);
    uint64_t size = 0;
    if (!empty && layer < layers.size()) size = layers[layer++].unpacked_size;
    int64_t created = 0;
    if (h.contains("created") && h["created"].is_string())
      created = parse_rfc3339(h["created"].get<std::string>()).value_or(0);
    out.push_back({{"Id", "<missing>"},
                   {"Created", created},
                   {"CreatedBy", h.value("created_by", "")},
                   {"Tags", nullptr},
                   {"Size", size},
                   {"Comment", h.value("comment", "")}});
  }
  // An image without history (a rootfs import): one entry per layer.
  for (; layer < layers.size(); ++layer)
    out.push_back({{"Id", "<missing>"}, {"Created", v.created()}, {"CreatedBy", ""}, {"Tags", nullptr},
                   {"Size", layers[layer].unpacked_size}, {"Comment", ""}});
  std::reverse(out.begin(), out.end());
  if (!out.empty()) {
    out[0]["Id"] = v.id;
    auto tags = v.repo_tags();
    if (!tags.empty()) out[0]["Tags"] = tags;
  }
  return out;
}

}  // namespace sandrun::runner::api
