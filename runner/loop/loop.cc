// The loop's owner, run_blocking and the loop-lag watchdog.
#include "runner/loop/loop.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <string>

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

// The loop thread's time on the CPU and waiting for one (/proc/thread-self/schedstat, in ns).
// Without schedstat (a kernel without CONFIG_SCHED_INFO): the thread's CPU time only, so a
// loaded machine's run-queue wait counts as blocked there.
struct SchedTimes {
  uint64_t cpu = 0;
  uint64_t waiting = 0;
};

SchedTimes sched_times() {
  SchedTimes t;
  int fd = ::open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[128];
    ssize_t n = ::read(fd, buf, sizeof buf - 1);
    ::close(fd);
    if (n > 0) {
      buf[n] = '\0';
      unsigned long long cpu = 0, wait = 0;
      if (std::sscanf(buf, "%llu %llu", &cpu, &wait) == 2) return {cpu, wait};
    }
  }
  struct timespec ts = {};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  t.cpu = static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
  return t;
}

}  // namespace

// Once per iteration (a prepare handle, just before the loop polls): the time since the last
// iteration, minus the time spent in the poll (libuv's idle-time metric), minus the time on
// the CPU and waiting for it, is time the loop thread was blocked.
struct Loop::Watchdog {
  uv_loop_t* loop;
  uint64_t limit_ns;
  uint64_t last_wall = 0;
  uint64_t last_idle = 0;
  SchedTimes last_sched;
  uv_prepare_t prepare{};

  void mark() {
    last_wall = uv_hrtime();
    last_idle = uv_metrics_idle_time(loop);
    last_sched = sched_times();
  }

  void check(const char* where) {
    const uint64_t wall = uv_hrtime();
    const uint64_t idle = uv_metrics_idle_time(loop);
    const SchedTimes sched = sched_times();
    const uint64_t busy = (wall - last_wall) - std::min(wall - last_wall, idle - last_idle);
    const uint64_t on_cpu = (sched.cpu - last_sched.cpu) + (sched.waiting - last_sched.waiting);
    const uint64_t blocked = busy > on_cpu ? busy - on_cpu : 0;
    if (blocked > limit_ns) {
      std::fprintf(stderr,
                   "sandrun: loop watchdog: the loop thread was blocked for %" PRIu64 " ms %s (limit %" PRIu64
                   " ms; busy %" PRIu64 " ms, on or waiting for a CPU %" PRIu64
                   " ms): blocking work belongs on the threadpool (run_blocking)\n",
                   blocked / 1'000'000, where, limit_ns / 1'000'000, busy / 1'000'000, on_cpu / 1'000'000);
      std::abort();
    }
    last_wall = wall;
    last_idle = idle;
    last_sched = sched;
  }
};

Loop::Loop() : watchdog_limit_(loop_watchdog_limit()) {
  if (int rc = uv_loop_init(&loop_); rc < 0) {
    // Only fails without memory or file descriptors: nothing can run.
    std::fprintf(stderr, "sandrun: cannot create the event loop: %s\n", uv_strerror(rc));
    std::abort();
  }
  // The watchdog needs the time spent in the poll.
  uv_loop_configure(&loop_, UV_METRICS_IDLE_TIME);
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
  if (!watchdog_limit_) {
    uv_run(&loop_, UV_RUN_DEFAULT);
    return;
  }
  Watchdog w{&loop_, static_cast<uint64_t>(watchdog_limit_->count()) * 1'000'000ULL};
  uv_prepare_init(&loop_, &w.prepare);
  w.prepare.data = &w;
  uv_prepare_start(&w.prepare, [](uv_prepare_t* p) { static_cast<Watchdog*>(p->data)->check("in one iteration"); });
  uv_unref(reinterpret_cast<uv_handle_t*>(&w.prepare));  // the watchdog keeps nothing alive
  w.mark();
  uv_run(&loop_, UV_RUN_DEFAULT);
  w.check("in the loop's last iteration");
  uv_close(reinterpret_cast<uv_handle_t*>(&w.prepare), nullptr);
  uv_run(&loop_, UV_RUN_NOWAIT);  // the close callback, before `w` goes
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
        if (!st->detached && st->done) {
          auto done = std::move(st->done);
          done();  // may destroy the BlockingCall that owns `keep`'s other reference
        }
      });
  return call;
}

}  // namespace sandrun::runner
