// Inbox: hands functions from any thread to the loop thread (a uv_async_t), for blocking work
// that reports as it goes (a pull's progress messages, streamed to its client while it runs).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "runner/loop/loop.h"
#include "runner/loop/uv_handle.h"

namespace sandrun::runner {

class Inbox {
 public:
  using Post = std::function<void(std::function<void()>)>;

  // On the loop thread. A failed uv_async_init leaves an inbox whose posts run nothing.
  explicit Inbox(Loop& loop);
  // On the loop thread: what was posted and not run yet is dropped; later posts do nothing.
  ~Inbox();
  Inbox(const Inbox&) = delete;
  Inbox& operator=(const Inbox&) = delete;

  // A function any thread may keep and call (also after the inbox is gone): it queues `f` to
  // run on the loop thread, in the order posted.
  Post poster() const;
  // On the loop thread: runs what is queued now (before a final step that must come after it).
  void run_pending();
  // On the loop thread: the inbox no longer keeps the loop running (a daemon's long-lived
  // inbox, which must not hold its loop open when everything else has closed).
  void unref();

 private:
  struct Shared {
    std::mutex mu;
    std::vector<std::function<void()>> queue;
    uv_async_t* async = nullptr;  // null once the inbox is gone
  };
  static void on_async(uv_async_t* h);

  std::shared_ptr<Shared> shared_;
  UvHandle<uv_async_t> handle_;
};

}  // namespace sandrun::runner
