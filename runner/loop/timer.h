// Timer: a one-shot timer on the loop for code that keeps no libuv handles of its own (the
// Engine API's handlers: `until` of /events, ...). Destroying it stops it.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "runner/loop/loop.h"

namespace sandrun::runner {

class Timer {
 public:
  explicit Timer(Loop& loop);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // Runs `f` once on the loop thread after `after` (again: the earlier start is replaced).
  void start(std::chrono::milliseconds after, std::function<void()> f);
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sandrun::runner
