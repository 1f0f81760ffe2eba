// Engine: what every container on one loop shares: the loop, the container slots of the state
// dir, the cgroup backend, this run's cgroup subtree and the read buffer. The job runner owns
// one; the daemon will own one per process.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "runner/engine/slots.h"
#include "runner/loop/loop.h"
#include "sandbox/cgroup.h"

namespace sandrun::runner {

class Engine {
 public:
  // `state_root` holds the container slots (slots.h); `cgroups` may be null (no cgroups here).
  Engine(Loop& loop, std::string state_root, sandbox::cgroup::Backend* cgroups);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  Loop& loop() { return loop_; }
  SlotPool& slots() { return slots_; }
  const std::string& state_root() const { return state_root_; }
  sandbox::cgroup::Backend* cgroups() { return cgroups_; }
  // This engine's cgroup subtree name (sandrun/<run>/...) and a fresh name per container.
  const std::string& run_id() const { return run_id_; }
  uint64_t next_container_id() { return ++containers_; }
  // The buffer every container's pipes are read into (the loop thread reads one at a time).
  uv_buf_t read_buffer();

 private:
  Loop& loop_;
  std::string state_root_;
  SlotPool slots_;
  sandbox::cgroup::Backend* cgroups_;
  std::string run_id_;
  std::atomic<uint64_t> containers_{0};
  std::unique_ptr<char[]> buffer_;
};

// A stable 32-bit tag of a state dir path (FNV-1a), part of each run's cgroup name.
uint32_t state_tag(std::string_view state_root);

}  // namespace sandrun::runner
