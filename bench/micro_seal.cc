// Micro-benchmarks of the layer seal (cache/seal.h) on the built-in busybox layer: what a
// process pays the first time it uses a layer (every `sandrun exec` pays it once per layer),
// with the last whole walk less than a minute old (the usual case) and without (at most once a
// minute per layer, and at the first use after unpacking).
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <memory>
#include <string>

#include "bench/micro_env.h"
#include "cache/layout.h"
#include "cache/seal.h"
#include "sandbox/sys/fs.h"

namespace {

using namespace sandrun;

struct SealedLayer {
  std::unique_ptr<cache::Layout> layout;
  std::string diff_id;
  UniqueFd fd;
};

// The busybox layer of micro_env's cache, sealed (the cache seals it when it unpacks it).
bool open_layer(benchmark::State& state, SealedLayer& out) {
  std::string error;
  const std::string& layer = bench::busybox_layer(&error);
  if (layer.empty()) {
    state.SkipWithError(error.c_str());
    return false;
  }
  out.layout = std::make_unique<cache::Layout>(bench::temp_dir() + "/cache");
  out.diff_id = "sha256:" + layer.substr(layer.rfind('/') + 1);
  auto fd = fs::open_path(layer, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
  if (!fd) {
    state.SkipWithError(fd.error().message().c_str());
    return false;
  }
  out.fd = std::move(*fd);
  return true;
}

// The usual first use in a process: the layer's top-level entries compared (a few stats).
void BM_SealCheckWalkedLately(benchmark::State& state) {
  SealedLayer l;
  if (!open_layer(state, l)) return;
  if (auto r = cache::check_seal_now(*l.layout, l.diff_id, l.fd.get()); !r) {  // walks it whole once
    state.SkipWithError(r.error().message().c_str());
    return;
  }
  for (auto _ : state) {
    auto r = cache::check_seal_now(*l.layout, l.diff_id, l.fd.get());
    if (!r) state.SkipWithError(r.error().message().c_str());
  }
}
BENCHMARK(BM_SealCheckWalkedLately)->Unit(benchmark::kMicrosecond);

// The whole walk (one fstatat per entry, about 400 for busybox): the seal's mtime reset to
// "never walked" before each check.
void BM_SealCheckWholeWalk(benchmark::State& state) {
  SealedLayer l;
  if (!open_layer(state, l)) return;
  const std::string seal = l.layout->seal_path(l.diff_id);
  const struct timespec never[2] = {{0, 0}, {0, 0}};
  for (auto _ : state) {
    state.PauseTiming();
    ::utimensat(AT_FDCWD, seal.c_str(), never, AT_SYMLINK_NOFOLLOW);
    state.ResumeTiming();
    auto r = cache::check_seal_now(*l.layout, l.diff_id, l.fd.get());
    if (!r) state.SkipWithError(r.error().message().c_str());
  }
}
BENCHMARK(BM_SealCheckWholeWalk)->Unit(benchmark::kMicrosecond);

// A repeated start in the same process: the kept result.
void BM_SealCheckKept(benchmark::State& state) {
  SealedLayer l;
  if (!open_layer(state, l)) return;
  for (auto _ : state) {
    auto r = cache::check_seal(*l.layout, l.diff_id, l.fd.get());
    if (!r) state.SkipWithError(r.error().message().c_str());
  }
}
BENCHMARK(BM_SealCheckKept)->Unit(benchmark::kMicrosecond);

}  // namespace
