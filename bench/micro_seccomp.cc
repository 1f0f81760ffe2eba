// Micro-benchmarks of seccomp: compiling the default profile, a cache hit (what every container
// after the first pays), and loading the filter in a fresh child.
#include <benchmark/benchmark.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/harden_child.h"
#include "sandbox/seccomp_filter.h"

namespace {

using sandrun::sandbox::compile_default_seccomp;
using sandrun::sandbox::default_capabilities;
using sandrun::sandbox::SeccompCache;
namespace harden = sandrun::sandbox::harden;

void BM_SeccompCompileDefault(benchmark::State& state) {
  size_t instructions = 0;
  for (auto _ : state) {
    auto filter = compile_default_seccomp(default_capabilities());
    if (!filter) {
      state.SkipWithError(filter.error().message().c_str());
      break;
    }
    instructions = (*filter)->instructions();
    benchmark::DoNotOptimize(filter);
  }
  state.counters["bpf_instructions"] = static_cast<double>(instructions);
}
BENCHMARK(BM_SeccompCompileDefault)->Unit(benchmark::kMicrosecond);

void BM_SeccompCacheHit(benchmark::State& state) {
  SeccompCache cache;
  if (!cache.get("default", default_capabilities())) {
    state.SkipWithError("compiling the default profile failed");
    return;
  }
  for (auto _ : state) {
    auto filter = cache.get("default", default_capabilities());
    benchmark::DoNotOptimize(filter);
  }
  state.counters["compiled"] = static_cast<double>(cache.compiled());
}
BENCHMARK(BM_SeccompCacheHit)->Unit(benchmark::kNanosecond);

// fork + (no_new_privs + load the filter) + _exit + wait; Arg(0) is the same without the
// filter, so the difference is the load.
void BM_SeccompLoadInChild(benchmark::State& state) {
  const bool load = state.range(0) != 0;
  auto filter = compile_default_seccomp(default_capabilities());
  if (!filter) {
    state.SkipWithError(filter.error().message().c_str());
    return;
  }
  const struct sock_fprog* prog = (*filter)->prog();
  for (auto _ : state) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (load && (harden::set_no_new_privs() != 0 || harden::load_seccomp(prog) != 0)) ::_exit(1);
      ::_exit(0);
    }
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) != pid || status != 0) {
      state.SkipWithError("the child failed");
      break;
    }
  }
}
BENCHMARK(BM_SeccompLoadInChild)->ArgName("load")->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMicrosecond);

// The cost a filtered process pays per system call: getppid in a child, with and without it.
void BM_SyscallUnderFilter(benchmark::State& state) {
  const bool load = state.range(0) != 0;
  auto filter = compile_default_seccomp(default_capabilities());
  if (!filter) {
    state.SkipWithError(filter.error().message().c_str());
    return;
  }
  int fds[2];
  if (::pipe(fds) != 0) return;
  const int64_t calls = 200000;
  for (auto _ : state) {
    state.PauseTiming();
    const pid_t pid = ::fork();
    if (pid == 0) {
      if (load && (harden::set_no_new_privs() != 0 || harden::load_seccomp((*filter)->prog()) != 0)) ::_exit(1);
      char go;
      if (::read(fds[0], &go, 1) != 1) ::_exit(2);
      for (int64_t i = 0; i < calls; ++i) ::syscall(SYS_getppid);
      ::_exit(0);
    }
    state.ResumeTiming();
    (void)!::write(fds[1], "g", 1);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  ::close(fds[0]);
  ::close(fds[1]);
  state.SetItemsProcessed(state.iterations() * calls);
}
BENCHMARK(BM_SyscallUnderFilter)->ArgName("filter")->Arg(0)->Arg(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
