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
  // With `live`: its containers' cgroups outlive this process (the daemon's --live-restore):
  // see next_cgroup().
  Engine(Loop& loop, std::string state_root, sandbox::cgroup::Backend* cgroups, bool live);
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  Loop& loop() { return loop_; }
  SlotPool& slots() { return slots_; }
  const std::string& state_root() const { return state_root_; }
  sandbox::cgroup::Backend* cgroups() { return cgroups_; }
  // This engine's cgroup subtree name (sandrun/<run>/...) and a fresh name per container.
  const std::string& run_id() const { return run_id_; }
  uint64_t next_container_id() { return ++containers_; }
  // Where the next container's cgroup goes: sandrun/<run>/<name>. A live engine gives each
  // container a run of its own ("live-<tag>-c<pid>-<n>", own_run), removed with it: so a
  // container that outlives the daemon is removed by its run name alone.
  struct CgroupName {
    std::string run, name;
    bool own_run = false;
  };
  CgroupName next_cgroup();
  bool live() const { return live_; }
  // The buffer every container's pipes are read into (the loop thread reads one at a time).
  uv_buf_t read_buffer();

 private:
  Loop& loop_;
  std::string state_root_;
  SlotPool slots_;
  sandbox::cgroup::Backend* cgroups_;
  std::string run_id_;
  std::atomic<uint64_t> containers_{0};
  bool live_ = false;
  std::unique_ptr<char[]> buffer_;
};

// A stable 32-bit tag of a state dir path (FNV-1a), part of each run's cgroup name.
uint32_t state_tag(std::string_view state_root);
// The prefix of the cgroup runs of a state dir's live-restore containers: "live-<tag>", which
// a sweep of dead runs leaves alone (no run name); the daemon without --live-restore and
// `sandrun cleanup` remove them (runner/engine/sweep.h).
std::string live_run_name(std::string_view state_root);

}  // namespace sandrun::runner
