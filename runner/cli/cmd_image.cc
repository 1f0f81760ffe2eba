// `sandrun image import|ls|rm`, `sandrun cleanup` and `sandrun version`.
#include <sys/utsname.h>
#include <unistd.h>

#include <ctime>

#include "cache/store.h"
#include "config/job_file.h"
#include "runner/loop/loop.h"
#include "runner/cli/commands.h"
#include "runner/report/output.h"
#include "runner/cli/common.h"
#include "runner/engine/session.h"
#include "runner/engine/sweep.h"
#include "sandbox/sys/fs.h"

namespace sandrun::runner {
namespace {

Result<cache::Store> open_store(const GlobalOptions& g) { return open_image_store(g); }

std::string short_id(const std::string& id) {
  auto colon = id.find(':');
  std::string hex = colon == std::string::npos ? id : id.substr(colon + 1);
  return hex.substr(0, 12);
}

uint64_t image_size(const cache::ImageRecord& img) {
  uint64_t total = 0;
  for (const auto& l : img.layers) total += l.unpacked_size;
  return total;
}

}  // namespace

int cmd_image_import(const GlobalOptions& g, const ImportArgs& a) {
  if (!fs::exists(a.file)) {
    // The order before OCI layouts were supported: NAME first.
    if (!a.name.empty() && fs::exists(a.name) && cache::parse_ref(a.file).ok()) {
      print_error(Error::msg("image import: the file comes first: sandrun image import --rootfs {} {}", a.name, a.file));
      return kExitUsage;
    }
    print_error(Error::msg("image import: {}: no such file or directory", a.file));
    return kExitUsage;
  }
  if (a.rootfs && a.name.empty()) {
    print_error(Error::msg("image import --rootfs: name the image: sandrun image import --rootfs {} NAME[:TAG]", a.file));
    return kExitUsage;
  }
  auto store = open_store(g);
  if (!store) {
    print_error(store.error());
    return kExitFailed;
  }
  std::vector<cache::ImportedImage> imported;
  if (a.rootfs) {
    auto img = store->import_rootfs(a.name, a.file);
    if (!img) {
      print_error(img.error());
      return kExitFailed;
    }
    imported.push_back({std::move(*img), {1, 0, 0}});
  } else {
    auto r = store->import_archive(a.file, a.name, cache::ImportOptions{a.platform, 2});
    if (!r) {
      print_error(r.error());
      return kExitFailed;
    }
    imported = std::move(*r);
  }
  for (const auto& i : imported) {
    const auto& img = i.record;
    std::string reused = i.stats.layers_reused ? fmt::format("; {} already in the cache", i.stats.layers_reused) : "";
    console_write(STDOUT_FILENO, fmt::format("imported {} ({}, {} layer{}, {}{})\n", img.ref(), short_id(img.id),
                                             img.layers.size(), img.layers.size() == 1 ? "" : "s",
                                             config::format_size(image_size(img)), reused));
  }
  return kExitOk;
}

int cmd_image_ls(const GlobalOptions& g) {
  auto store = open_store(g);
  if (!store) {
    print_error(store.error());
    return kExitFailed;
  }
  auto images = store->list();
  if (!images) {
    print_error(images.error());
    return kExitFailed;
  }
  size_t w = 5;
  for (const auto& i : *images) w = std::max(w, i.ref().size());
  std::string out = fmt::format("{:<{}}  {:<12}  {:>6}  {:>10}  {}\n", "IMAGE", w, "ID", "LAYERS", "SIZE", "CREATED");
  for (const auto& i : *images) {
    char when[32] = "-";
    time_t t = static_cast<time_t>(i.created);
    struct tm tm;
    if (i.created > 0 && ::localtime_r(&t, &tm)) std::strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
    out += fmt::format("{:<{}}  {:<12}  {:>6}  {:>10}  {}\n", i.ref(), w, short_id(i.id), i.layers.size(),
                       config::format_size(image_size(i)), when);
  }
  console_write(STDOUT_FILENO, out);
  return kExitOk;
}

int cmd_image_rm(const GlobalOptions& g, const std::vector<std::string>& refs) {
  auto store = open_store(g);
  if (!store) {
    print_error(store.error());
    return kExitFailed;
  }
  int status = kExitOk;
  for (const auto& ref : refs) {
    auto r = store->remove(ref);
    if (!r) {
      print_error(r.error());
      status = kExitFailed;
      continue;
    }
    std::string line = fmt::format("removed {}", r->ref);
    if (!r->removed_layers.empty()) line += fmt::format(" ({} layer{} deleted)", r->removed_layers.size(), r->removed_layers.size() == 1 ? "" : "s");
    if (!r->kept_in_use.empty()) line += fmt::format("; {} layer{} kept while a running sandrun uses them", r->kept_in_use.size(), r->kept_in_use.size() == 1 ? "" : "s");
    console_write(STDOUT_FILENO, line + "\n");
  }
  return status;
}

int cmd_cleanup(const GlobalOptions& g) {
  if (auto r = check_privileges(); !r) {
    print_error(r.error());
    return kExitFailed;
  }
  // Opening the store also sweeps its temp entries and unreferenced layers.
  auto store = open_store(g);
  if (!store) {
    print_error(store.error());
    return kExitFailed;
  }
  sweep_and_report(store->root(), /*remove_idle=*/true);
  return kExitOk;
}

int cmd_version() {
  struct utsname u;
  ::uname(&u);
  console_write(STDOUT_FILENO, fmt::format("sandrun {} (libuv {}, kernel {} {})\n", SANDRUN_VERSION, libuv_version(),
                                           u.release, u.machine));
  return kExitOk;
}

}  // namespace sandrun::runner
