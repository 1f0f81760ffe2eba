// The loop's owner, run_blocking and the loop-lag watchdog.
#include "runner/loop/loop.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {

std::optional<std::chrono::milliseconds> loop_watchdog_limit() {
  if (const char* v = std::getenv("SANDRUN_LOOP_WATCHDOG_MS"); v && *v) {
    char* end = nullptr;
    const long ms = std::strtol(v, &end, 10);
    if (end && *end == '\0' && ms >= 0) {
      if (ms == 0) return std::nullopt;
      return std::chrono::milliseconds(ms);
    }
    log::warn("SANDRUN_LOOP_WATCHDOG_MS={:?} is not a number of milliseconds; the loop watchdog keeps its default", v);
  }
#ifdef NDEBUG
  return std::nullopt;
#else
  return std::chrono::milliseconds(50);
#endif
}

const char* libuv_version() { return uv_version_string(); }

namespace {

// What the loop thread is doing now, from /proc/thread-self/task/TID/syscall: "running" (on a
// CPU, or runnable and waiting for one), or blocked in system call NR ("-1" when it sleeps
// outside one, e.g. on a page fault).
struct ThreadNow {
  bool running = false;
  long syscall = -1;
};

std::optional<ThreadNow> thread_now(const std::string& path) {
  auto text = fs::read_file(path);
  if (!text || text->empty()) return std::nullopt;
  ThreadNow now;
  if (text->rfind("running", 0) == 0) {
    now.running = true;
    return now;
  }
  now.syscall = std::strtol(text->c_str(), nullptr, 10);
  return now;
}

bool is_poll(long nr) {
  return nr == SYS_epoll_wait || nr == SYS_epoll_pwait
#ifdef SYS_epoll_pwait2
         || nr == SYS_epoll_pwait2
#endif
      ;
}

std::string syscall_text(long nr) {
  switch (nr) {
    case -1: return "outside a system call (a page fault or a lock)";
    case SYS_read: return "read(2)";
    case SYS_write: return "write(2)";
    case SYS_openat: return "openat(2)";
    case SYS_close: return "close(2)";
    case SYS_poll: return "poll(2)";
    case SYS_ppoll: return "ppoll(2)";
    case SYS_wait4: return "wait4(2)";
    case SYS_waitid: return "waitid(2)";
    case SYS_clock_nanosleep: return "clock_nanosleep(2)";
    case SYS_nanosleep: return "nanosleep(2)";
    case SYS_futex: return "futex(2) (a lock or a condition variable)";
    case SYS_recvmsg: return "recvmsg(2)";
    case SYS_sendmsg: return "sendmsg(2)";
    case SYS_unshare: return "unshare(2)";
    case SYS_setns: return "setns(2)";
    case SYS_mkdir: return "mkdir(2)";
    case SYS_mkdirat: return "mkdirat(2)";
    case SYS_unlinkat: return "unlinkat(2)";
    case SYS_fsync: return "fsync(2)";
    default: return fmt::format("system call {}", nr);
  }
}

}  // namespace

// A thread that looks at the loop thread every few milliseconds: blocked in a system call other
// than the poll (or asleep outside one) for longer than the limit is a blocked loop. On a CPU,
// or waiting for one on a loaded machine, the thread is "running" and not blocked.
struct Loop::Watchdog {
  std::chrono::milliseconds limit;
  std::string path;  // /proc/self/task/TID/syscall of the loop thread
  std::mutex m;
  std::condition_variable cv;
  bool stop = false;
  std::thread thread;

  Watchdog(std::chrono::milliseconds limit_)
      : limit(limit_), path(fmt::format("/proc/self/task/{}/syscall", static_cast<long>(::gettid()))) {
    if (!thread_now(path)) {
      log::warn("loop watchdog: cannot read {}; the watchdog is off", path);
      return;
    }
    thread = std::thread([this] { watch(); });
  }

  ~Watchdog() {
    {
      std::lock_guard l(m);
      stop = true;
    }
    cv.notify_all();
    if (thread.joinable()) thread.join();
  }

  void watch() {
    using clock = std::chrono::steady_clock;
    const auto period = std::max(std::chrono::milliseconds(1), limit / 10);
    std::optional<clock::time_point> blocked_since;
    long blocked_in = 0;
    std::unique_lock l(m);
    while (!cv.wait_for(l, period, [this] { return stop; })) {
      auto now = thread_now(path);
      if (!now || now->running || is_poll(now->syscall)) {
        blocked_since.reset();
        continue;
      }
      const auto t = clock::now();
      if (!blocked_since || blocked_in != now->syscall) {
        blocked_since = t;
        blocked_in = now->syscall;
        continue;
      }
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - *blocked_since);
      if (ms > limit) {
        std::fprintf(stderr,
                     "sandrun: loop watchdog: the loop thread was blocked for %lld ms in %s (limit %lld ms): "
                     "blocking work belongs on the threadpool (run_blocking)\n",
                     static_cast<long long>(ms.count()), syscall_text(blocked_in).c_str(),
                     static_cast<long long>(limit.count()));
        std::abort();
      }
    }
  }
};

Loop::Loop() : watchdog_limit_(loop_watchdog_limit()) {
  if (int rc = uv_loop_init(&loop_); rc < 0) {
    // Only fails without memory or file descriptors: nothing can run.
    std::fprintf(stderr, "sandrun: cannot create the event loop: %s\n", uv_strerror(rc));
    std::abort();
  }
}

Loop::~Loop() {
  uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  // Closing handles and threadpool work still in flight finish here.
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (int rc = uv_loop_close(&loop_); rc < 0) log::warn("event loop: {}", uv_strerror(rc));
}

void Loop::run() {
  std::optional<Watchdog> watchdog;
  if (watchdog_limit_) watchdog.emplace(*watchdog_limit_);
  uv_run(&loop_, UV_RUN_DEFAULT);
}

struct BlockingCall::State {
  uv_work_t req{};
  std::function<void(const std::atomic<bool>&)> work;
  std::function<void()> done;
  std::atomic<bool> cancelled{false};
  bool detached = false;  // loop thread only: the owner is gone, `done` must not run
  bool finished = false;  // loop thread only
  std::shared_ptr<State> self;  // keeps the state alive until the after-work callback
};

void BlockingCall::cancel() {
  if (!state_) return;
  state_->detached = true;
  state_->cancelled.store(true);
  if (!state_->finished) (void)uv_cancel(reinterpret_cast<uv_req_t*>(&state_->req));
  state_.reset();
}

void BlockingCall::interrupt() {
  if (!state_ || state_->finished) return;
  state_->cancelled.store(true);
  (void)uv_cancel(reinterpret_cast<uv_req_t*>(&state_->req));
}

bool BlockingCall::pending() const { return state_ && !state_->finished; }

BlockingCall run_blocking(Loop& loop, std::function<void(const std::atomic<bool>& cancelled)> work,
                          std::function<void()> done) {
  BlockingCall call;
  call.state_ = std::make_shared<BlockingCall::State>();
  auto& s = *call.state_;
  s.work = std::move(work);
  s.done = std::move(done);
  s.self = call.state_;
  s.req.data = &s;
  // uv_queue_work fails only without a work callback.
  (void)uv_queue_work(
      loop.get(), &s.req,
      [](uv_work_t* req) {
        auto* st = static_cast<BlockingCall::State*>(req->data);
        if (!st->cancelled.load()) st->work(st->cancelled);
      },
      [](uv_work_t* req, int) {
        auto* st = static_cast<BlockingCall::State*>(req->data);
        std::shared_ptr<BlockingCall::State> keep = std::move(st->self);
        st->finished = true;
        // What the work captured goes now, on the loop thread, not with the BlockingCall: its
        // owner may keep that for the rest of the run (a container's cgroup and its fds did).
        st->work = nullptr;
        if (!st->detached && st->done) {
          auto done = std::move(st->done);
          done();  // may destroy the BlockingCall that owns `keep`'s other reference
        }
      });
  return call;
}

}  // namespace sandrun::runner
