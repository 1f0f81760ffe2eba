// Entry point of sandrun-microbench: Google Benchmark's main, then the temp dir is removed.
#include <benchmark/benchmark.h>

#include "bench/micro_env.h"

int main(int argc, char** argv) {
  // Created before any benchmark so that they are removed after them, at exit.
  sandrun::bench::temp_dir();
  sandrun::bench::shm_dir();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
