// Engine: the state every container on one loop shares.
#include "runner/engine/engine.h"

#include <fmt/format.h>
#include <unistd.h>

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

std::string live_run_name(std::string_view state_root) { return fmt::format("live-{:08x}", state_tag(state_root)); }

Engine::Engine(Loop& loop, std::string state_root, sandbox::cgroup::Backend* cgroups)
    : Engine(loop, std::move(state_root), cgroups, false) {}

Engine::Engine(Loop& loop, std::string state_root, sandbox::cgroup::Backend* cgroups, bool live)
    : loop_(loop),
      state_root_(std::move(state_root)),
      slots_(state_root_),
      cgroups_(cgroups),
      run_id_(live ? live_run_name(state_root_) : cgroup_run_name(state_root_)),
      live_(live),
      buffer_(new char[kReadBuffer]) {}

Engine::CgroupName Engine::next_cgroup() {
  const uint64_t n = next_container_id();
  if (live_) return CgroupName{fmt::format("{}-c{}-{}", run_id_, ::getpid(), n), "c", true};
  return CgroupName{run_id_, fmt::format("c{}", n), false};
}

uv_buf_t Engine::read_buffer() { return uv_buf_init(buffer_.get(), kReadBuffer); }

}  // namespace sandrun::runner
