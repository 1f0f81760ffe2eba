// Loop: the one owner of the libuv loop, and run_blocking, the one way to do blocking work
// from it. Every handle on the loop is a UvHandle (uv_handle.h); every blocking call is a
// BlockingCall. docs/architecture.md, "Who owns the loop".
#pragma once

#include <uv.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "runner/loop/uv_handle.h"
#include "sandbox/sys/result.h"

namespace sandrun::runner {

// The loop-lag watchdog: while the loop runs, a thread looks at what the loop thread does
// (/proc/self/task/TID/syscall, every limit/10); when it stays blocked for more than `limit` in
// one system call other than the poll (sleeping, or waiting for a lock or a disk; not
// computing, and not waiting for its turn on a loaded CPU), the process aborts with a message
// naming the call. On by default in debug and sanitizer builds (50 ms);
// SANDRUN_LOOP_WATCHDOG_MS sets the limit (0: off).
std::optional<std::chrono::milliseconds> loop_watchdog_limit();

// "1.44.2": the libuv sandrun runs on (`sandrun version`).
const char* libuv_version();

class Loop {
 public:
  Loop();
  // Closes every handle still open (their owners are gone or going), runs the loop until
  // they are closed and closes it. A BlockingCall still running on the threadpool is waited for.
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  uv_loop_t* get() { return &loop_; }
  // Runs until nothing is left to do (uv_run default), with the watchdog when enabled.
  void run();
  // Tests: a watchdog with this limit for the loop's next run(), whatever the build.
  void set_watchdog(std::optional<std::chrono::milliseconds> limit) { watchdog_limit_ = limit; }

 private:
  struct Watchdog;
  uv_loop_t loop_;
  std::optional<std::chrono::milliseconds> watchdog_limit_;
};

// A piece of blocking work queued on the threadpool. Destroying it or calling cancel()
// detaches its owner: `done` is not called any more, and work that has not started never
// runs; work already running is told through the flag it receives (it may stop early).
class BlockingCall {
 public:
  BlockingCall() = default;
  BlockingCall(BlockingCall&&) noexcept = default;
  BlockingCall& operator=(BlockingCall&& o) noexcept {
    if (this != &o) {
      cancel();
      state_ = std::move(o.state_);
    }
    return *this;
  }
  ~BlockingCall() { cancel(); }
  void cancel();
  // Asks the work to stop early (the flag it receives) and drops it if it has not started;
  // `done` still runs.
  void interrupt();
  // Queued and `done` not called yet.
  bool pending() const;

 private:
  friend BlockingCall run_blocking(Loop&, std::function<void(const std::atomic<bool>& cancelled)>,
                                   std::function<void()>);
  struct State;
  std::shared_ptr<State> state_;
};

// Runs `work` on a threadpool thread, then `done` on the loop thread (unless the returned
// call was cancelled or destroyed first). The loop thread never waits for `work`.
BlockingCall run_blocking(Loop& loop, std::function<void(const std::atomic<bool>& cancelled)> work,
                          std::function<void()> done);

}  // namespace sandrun::runner
