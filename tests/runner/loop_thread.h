// A libuv loop on a thread of its own, as in the runner, for tests and benchmarks of code that
// runs on the loop (the port proxy): run() executes a function there and waits for it.
#pragma once

#include <pthread.h>
#include <time.h>
#include <uv.h>

#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace sandrun::testing {

class LoopThread {
 public:
  LoopThread() {
    uv_loop_init(&loop_);
    uv_async_init(&loop_, &async_, [](uv_async_t* a) { static_cast<LoopThread*>(a->data)->drain(); });
    async_.data = this;
    thread_ = std::thread([this] { uv_run(&loop_, UV_RUN_DEFAULT); });
  }
  ~LoopThread() { stop(); }
  uv_loop_t* loop() { return &loop_; }
  // CPU seconds the loop thread has used so far (for benchmarks).
  double cpu_seconds() {
    clockid_t id;
    timespec ts{};
    if (pthread_getcpuclockid(thread_.native_handle(), &id) != 0 || clock_gettime(id, &ts) != 0) return 0;
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  }

  template <typename F>
  auto run(F f) -> decltype(f()) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    {
      std::lock_guard lock(mu_);
      tasks_.push_back([&task] { task(); });
    }
    uv_async_send(&async_);
    return result.get();
  }

  // Closes the wake-up handle and waits for uv_run to return; true when the loop then closes
  // cleanly (no handle left open).
  bool stop() {
    if (!thread_.joinable()) return closed_ok_;
    run([this] { uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr); });
    thread_.join();
    closed_ok_ = uv_loop_close(&loop_) == 0;
    return closed_ok_;
  }

 private:
  void drain() {
    std::vector<std::function<void()>> tasks;
    {
      std::lock_guard lock(mu_);
      tasks.swap(tasks_);
    }
    for (auto& t : tasks) t();
  }
  uv_loop_t loop_{};
  uv_async_t async_{};
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;
  std::thread thread_;
  bool closed_ok_ = false;
};

}  // namespace sandrun::testing
