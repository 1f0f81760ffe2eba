// Engine: the state every container on one loop shares.
#include "runner/engine/engine.h"

#include <fmt/format.h>

namespace sandrun::runner {
namespace {

constexpr size_t kReadBuffer = 256 * 1024;

// The cgroup run name: this process's run id plus a tag of its state dir, so that runs of
// different state dirs can be told apart under sandrun/ (and by tests running side by side).
std::string cgroup_run_name(const std::string& state_root) {
  return fmt::format("{}-{:08x}", sandbox::cgroup::run_id(), state_tag(state_root));
}

}  // namespace

uint32_t state_tag(std::string_view state_root) {
  uint32_t h = 2166136261u;  // FNV-1a: stable across builds and processes
  for (unsigned char c : state_root) h = (h ^ c) * 16777619u;
  return h;
}

Engine::Engine(Loop& loop, std::string state_root, sandbox::cgroup::Backend* cgroups)
    : loop_(loop),
      state_root_(std::move(state_root)),
      slots_(state_root_),
      cgroups_(cgroups),
      run_id_(cgroup_run_name(state_root_)),
      buffer_(new char[kReadBuffer]) {}

uv_buf_t Engine::read_buffer() { return uv_buf_init(buffer_.get(), kReadBuffer); }

}  // namespace sandrun::runner
