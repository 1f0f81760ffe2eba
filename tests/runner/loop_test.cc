// The loop's owner, run_blocking and the loop-lag watchdog (runner/loop/loop.h).
#include "runner/loop/loop.h"
#include "runner/loop/inbox.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace sandrun::testing {
namespace {

using namespace std::chrono_literals;
using runner::BlockingCall;
using runner::Loop;
using runner::run_blocking;

// Holds threadpool threads until released, so that work queued behind them has not started.
struct Gate {
  std::mutex m;
  std::condition_variable cv;
  bool open = false;
  int waiting = 0;
  void wait() {
    std::unique_lock l(m);
    ++waiting;
    cv.notify_all();
    cv.wait(l, [this] { return open; });
  }
  void wait_for_waiters(int n) {
    std::unique_lock l(m);
    cv.wait_for(l, 10s, [&] { return waiting >= n; });
  }
  void release() {
    std::lock_guard l(m);
    open = true;
    cv.notify_all();
  }
};

// libuv's default threadpool size (UV_THREADPOOL_SIZE unset).
int pool_size() {
  const char* v = ::getenv("UV_THREADPOOL_SIZE");
  return v ? std::atoi(v) : 4;
}

TEST(RunBlockingTest, TheWorkRunsOffTheLoopThreadAndDoneOnIt) {
  Loop loop;
  const auto loop_thread = std::this_thread::get_id();
  std::thread::id work_thread, done_thread;
  BlockingCall call = run_blocking(
      loop, [&](const std::atomic<bool>&) { work_thread = std::this_thread::get_id(); },
      [&] { done_thread = std::this_thread::get_id(); });
  EXPECT_TRUE(call.pending());
  loop.run();
  EXPECT_NE(work_thread, std::thread::id());
  EXPECT_NE(work_thread, loop_thread);
  EXPECT_EQ(done_thread, loop_thread);
  EXPECT_FALSE(call.pending());
}

TEST(RunBlockingTest, ACancelledCallNeitherRunsItsWorkIfQueuedNorCallsDone) {
  Loop loop;
  Gate gate;
  std::vector<BlockingCall> blockers;
  for (int i = 0; i < pool_size(); ++i)
    blockers.push_back(run_blocking(loop, [&](const std::atomic<bool>&) { gate.wait(); }, [] {}));
  gate.wait_for_waiters(pool_size());
  std::atomic<bool> worked{false};
  bool done = false;
  {
    BlockingCall queued = run_blocking(loop, [&](const std::atomic<bool>&) { worked = true; }, [&] { done = true; });
    // Destroyed here, before a thread was free for it.
  }
  gate.release();
  loop.run();
  EXPECT_FALSE(worked.load());
  EXPECT_FALSE(done);
}

TEST(RunBlockingTest, AnInterruptedCallSeesItsFlagAndStillCallsDone) {
  Loop loop;
  std::atomic<bool> started{false};
  std::atomic<bool> saw_flag{false};
  bool done = false;
  BlockingCall call = run_blocking(
      loop,
      [&](const std::atomic<bool>& cancelled) {
        started = true;
        for (int i = 0; i < 1000 && !cancelled.load(); ++i) std::this_thread::sleep_for(10ms);
        saw_flag = cancelled.load();
      },
      [&] { done = true; });
  while (!started.load()) std::this_thread::sleep_for(1ms);
  call.interrupt();
  loop.run();
  EXPECT_TRUE(saw_flag.load());
  EXPECT_TRUE(done);
}

TEST(RunBlockingTest, ACallDestroyedWhileItsWorkRunsIsWaitedForByTheLoopButDoneIsNotCalled) {
  bool done = false;
  std::atomic<bool> finished{false};
  Gate gate;  // outlives the loop, which waits for the work that uses it
  {
    Loop loop;
    {
      BlockingCall call = run_blocking(
          loop,
          [&](const std::atomic<bool>& cancelled) {
            gate.wait();
            finished = cancelled.load();  // the owner went: the flag says so
          },
          [&] { done = true; });
      gate.wait_for_waiters(1);
    }
    gate.release();
    // ~Loop runs the loop until the work is over.
  }
  EXPECT_TRUE(finished.load());
  EXPECT_FALSE(done);
}

// The watchdog aborts when the loop thread sleeps in a callback: blocking work belongs on the
// threadpool.
TEST(LoopWatchdogDeathTest, ABlockedLoopThreadAbortsTheProcessWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Loop loop;
        loop.set_watchdog(50ms);
        uv_timer_t t;
        uv_timer_init(loop.get(), &t);
        uv_timer_start(&t, [](uv_timer_t*) { std::this_thread::sleep_for(300ms); }, 1, 0);
        loop.run();
      },
      "loop watchdog: the loop thread was blocked for [0-9]+ ms");
}

// What the watchdog does not count: time in the poll (a long timer), and time the loop thread
// spends computing (on a CPU, or waiting for one on a loaded machine).
TEST(LoopWatchdogTest, WaitingInThePollAndComputingAreNotBlocking) {
  Loop loop;
  loop.set_watchdog(50ms);
  uv_timer_t t;
  uv_timer_init(loop.get(), &t);
  uv_timer_start(&t, [](uv_timer_t* h) {
    const auto end = std::chrono::steady_clock::now() + 150ms;
    volatile uint64_t x = 0;
    while (std::chrono::steady_clock::now() < end) x = x + 1;
    uv_close(reinterpret_cast<uv_handle_t*>(h), nullptr);
  }, 200, 0);
  loop.run();  // returns: no abort
  SUCCEED();
}

TEST(LoopWatchdogTest, TheLimitComesFromTheEnvironment) {
  ::setenv("SANDRUN_LOOP_WATCHDOG_MS", "0", 1);
  EXPECT_FALSE(runner::loop_watchdog_limit().has_value());
  ::setenv("SANDRUN_LOOP_WATCHDOG_MS", "75", 1);
  EXPECT_EQ(runner::loop_watchdog_limit(), 75ms);
  ::unsetenv("SANDRUN_LOOP_WATCHDOG_MS");
#ifdef NDEBUG
  EXPECT_FALSE(runner::loop_watchdog_limit().has_value()) << "off by default in optimised builds";
#else
  EXPECT_EQ(runner::loop_watchdog_limit(), 50ms) << "on by default in debug and sanitizer builds";
#endif
}

// An Inbox runs what other threads post on the loop thread, in order; once it is gone, posts
// do nothing (the poster may outlive it) and what was queued is dropped.
TEST(InboxTest, PostsFromOtherThreadsRunOnTheLoopInOrder) {
  Loop loop;
  auto inbox = std::make_unique<runner::Inbox>(loop);
  const auto loop_thread = std::this_thread::get_id();
  std::vector<int> got;
  bool on_loop = true;
  auto post = inbox->poster();
  std::thread t([&] {
    for (int i = 0; i < 100; ++i)
      post([&, i] {
        on_loop = on_loop && std::this_thread::get_id() == loop_thread;
        got.push_back(i);
        if (i == 99) inbox.reset();  // the last one closes the inbox: the loop can end
      });
  });
  loop.run();
  t.join();
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i], i);
  EXPECT_TRUE(on_loop);
  bool ran = false;
  post([&] { ran = true; });  // after the inbox: nothing
  loop.run();
  EXPECT_FALSE(ran);
}

}  // namespace
}  // namespace sandrun::testing
