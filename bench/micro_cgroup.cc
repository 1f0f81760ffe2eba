// Micro-benchmark of the cgroup every container gets: sandbox::cgroup::Backend::create (the
// directories in every hierarchy, the limits written, the cgroup.procs fds opened) and
// Group::remove (rmdir in every hierarchy), as the runner pays them per container. Needs root
// and cgroups; the groups go under sandrun/<run_id>-microbench, which `sandrun cleanup` sweeps
// if the benchmark is killed.
#include <benchmark/benchmark.h>

#include <string>

#include "bench/micro_env.h"
#include "sandbox/cgroup.h"

namespace sandrun::bench {
namespace {

namespace cgroup = sandbox::cgroup;

// Arg 0: sandrun's default (only the pids limit, 1024); arg 1: memory = "256MiB", cpus = 1,
// pids = 1024 (the e2e benchmark's "limits" job file).
void BM_CgroupCreateRemove(benchmark::State& state) {
  if (!is_root()) {
    state.SkipWithError("needs root (cgroups are real)");
    return;
  }
  auto backend = cgroup::Backend::detect();
  if (!backend) {
    state.SkipWithError(backend.error().message().c_str());
    return;
  }
  cgroup::Limits limits;
  limits.pids = 1024;
  if (state.range(0) != 0) {
    limits.memory = 256ull << 20;
    limits.cpus = 1.0;
  }
  if (auto r = (*backend)->check(limits); !r) {
    state.SkipWithError(r.error().message().c_str());
    return;
  }
  const std::string run = cgroup::run_id() + "-microbench";
  long n = 0;
  for (auto _ : state) {
    auto group = (*backend)->create(run, "c" + std::to_string(n++), limits);
    if (!group) {
      state.SkipWithError(group.error().message().c_str());
      break;
    }
    if (auto r = (*group)->remove(); !r) {
      state.SkipWithError(r.error().message().c_str());
      break;
    }
  }
  (void)(*backend)->remove_run(run);
  const auto& info = (*backend)->info();
  state.SetLabel(std::string(info.version == cgroup::Version::v1 ? "v1" : "v2") + ", " +
                 std::to_string(info.controllers.size()) + " controllers");
}
BENCHMARK(BM_CgroupCreateRemove)->ArgName("limits")->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace sandrun::bench
