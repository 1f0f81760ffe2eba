// `sandrun image inspect|tag|save|verify|prune`.
#include <unistd.h>

#include <chrono>

#include <nlohmann/json.hpp>

#include "cache/store.h"
#include "config/job_file.h"
#include "runner/cli/commands.h"
#include "runner/report/output.h"
#include "runner/cli/common.h"
#include "runner/engine/session.h"
#include "runner/engine/sweep.h"

namespace sandrun::runner {
namespace {

Result<cache::Store> open_store(const GlobalOptions& g) { return open_image_store(g); }

nlohmann::json to_json(const cache::ImageRecord& r) {
  nlohmann::json layers = nlohmann::json::array();
  uint64_t size = 0;
  for (const auto& l : r.layers) {
    layers.push_back({{"diff_id", l.diff_id}, {"digest", l.blob_digest}, {"media_type", l.media_type},
                      {"size", l.blob_size}, {"unpacked_size", l.unpacked_size}});
    size += l.unpacked_size;
  }
  return {{"name", r.name},
          {"tag", r.tag},
          {"ref", r.ref()},
          {"id", r.id},
          {"manifest_digest", r.manifest_digest},
          {"manifest_media_type", r.manifest_media_type},
          {"created", r.created},
          {"size", size},
          {"config",
           {{"env", r.config.env}, {"entrypoint", r.config.entrypoint}, {"cmd", r.config.cmd},
            {"working_dir", r.config.working_dir}, {"user", r.config.user}}},
          {"layers", layers}};
}

}  // namespace

int cmd_image_inspect(const GlobalOptions& g, const std::vector<std::string>& refs) {
  auto store = open_store(g);
  if (!store) {
    print_error(store.error());
    return kExitFailed;
  }
  nlohmann::json out = nlohmann::json::array();
  int status = kExitOk;
  for (const auto& ref : refs) {
    auto found = store->find(ref);
    if (!found || !*found) {
      print_error(found ? Error::msg("image {:?} not found", ref) : found.error());
      status = kExitFailed;
      continue;
    }
    out.push_back(to_json(**found));
  }
  console_write(STDOUT_FILENO, out.dump(2) + "\n");
  return status;
}

int cmd_image_pull(const GlobalOptions& g, const std::vector<std::string>& refs) {
  auto store = open_store(g);
  if (!store) {
    print_error(store.error());
    return kExitFailed;
  }
  const cache::PullOptions options = pull_options(g.insecure_registries, g.auth_file, g.registry_ca, g.platform);
  int status = kExitOk;
  for (const auto& ref : refs) {
    const auto start = std::chrono::steady_clock::now();
    auto r = store->pull(ref, options);
    if (!r) {
      print_error(r.error());
      status = kExitFailed;
      continue;
    }
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    if (r->up_to_date) {
      console_write(STDOUT_FILENO, fmt::format("{} is up to date ({})\n", r->record.ref(), r->record.manifest_digest));
      continue;
    }
    console_write(STDOUT_FILENO, fmt::format("pulled {} ({}): {}\n", r->record.ref(), r->record.manifest_digest,
                                             pull_summary(*r, ms)));
  }
  return status;
}

int cmd_image_tag(const GlobalOptions& g, const std::string& src, const std::string& dst) {
  auto store = open_store(g);
  auto r = store ? store->tag(src, dst) : Result<cache::ImageRecord>(store.error());
  if (!r) {
    print_error(r.error());
    return kExitFailed;
  }
  console_write(STDOUT_FILENO, fmt::format("tagged {} as {}\n", src, r->ref()));
  return kExitOk;
}

int cmd_image_save(const GlobalOptions& g, const SaveArgs& a) {
  auto store = open_store(g);
  if (!store) {
    print_error(store.error());
    return kExitFailed;
  }
  if (auto r = store->save(a.name, a.out, cache::SaveOptions{a.zstd}); !r) {
    print_error(r.error());
    return kExitFailed;
  }
  console_write(STDOUT_FILENO, fmt::format("saved {} to {}\n", a.name, a.out));
  return kExitOk;
}

int cmd_image_verify(const GlobalOptions& g, const std::vector<std::string>& refs) {
  auto store = open_store(g);
  if (!store) {
    print_error(store.error());
    return kExitFailed;
  }
  std::vector<std::string> which = refs.empty() ? std::vector<std::string>{""} : refs;
  int status = kExitOk;
  for (const auto& ref : which) {
    auto r = store->verify(ref);
    if (!r) {
      print_error(r.error());
      status = kExitFailed;
      continue;
    }
    for (const auto& p : r->problems) console_write(STDERR_FILENO, "sandrun: image verify: " + p + "\n");
    for (const auto& l : r->layers_dropped)
      console_write(STDERR_FILENO, fmt::format("sandrun: image verify: removed corrupted layer {}; import or pull "
                                               "its images again\n", l));
    if (!r->problems.empty()) status = kExitFailed;
    console_write(STDOUT_FILENO, fmt::format("{} image{}, {} layer{}, {} blob{} checked: {}\n", r->images,
                                             r->images == 1 ? "" : "s", r->layers, r->layers == 1 ? "" : "s", r->blobs,
                                             r->blobs == 1 ? "" : "s",
                                             r->problems.empty() ? "all good" : fmt::format("{} problem{}", r->problems.size(), r->problems.size() == 1 ? "" : "s")));
  }
  return status;
}

int cmd_image_prune(const GlobalOptions& g, const PruneArgs& a) {
  cache::PruneOptions options;
  options.all = a.all;
  if (!a.max_size.empty()) {
    auto size = config::parse_size(a.max_size);
    if (!size) {
      print_error(size.error().wrap("--max-size"));
      return kExitUsage;
    }
    options.max_size = *size;
  }
  auto store = open_store(g);
  auto r = store ? store->prune(options) : Result<cache::PruneReport>(store.error());
  if (!r) {
    print_error(r.error());
    return kExitFailed;
  }
  std::string out;
  for (const auto& ref : r->removed_images) out += "removed " + ref + "\n";
  for (const auto& ref : r->kept_in_use) out += "kept " + ref + " (in use by a running sandrun)\n";
  out += fmt::format("freed {} ({} layer{}, {} blob{}); the cache holds {}\n", config::format_size(r->bytes_freed),
                     r->layers_removed, r->layers_removed == 1 ? "" : "s", r->blobs_removed,
                     r->blobs_removed == 1 ? "" : "s", config::format_size(r->size_after));
  console_write(STDOUT_FILENO, out);
  return kExitOk;
}

}  // namespace sandrun::runner
