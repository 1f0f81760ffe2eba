// The run's reports on the console, without containers: JobOutput's events and tail, the
// console reporter (plain, --quiet, the live status block), the event fan-out and the summary
// table. The report files are in report_files_test.cc.
#include <unistd.h>
#include <uv.h>

#include <set>

#include "runner/report/output.h"
#include "runner/report/report_console.h"
#include "runner/report/summary.h"
#include "sandbox/sys/fs.h"
#include "tests/runner/report_fixture.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {
namespace {

using namespace std::chrono_literals;

// Records events as text lines.
struct Recorder : runner::RunEvents {
  std::vector<std::string> seen;
  void job_output(size_t index, int stream, std::string_view line, runner::LinePart part = {}) override {
    seen.push_back(fmt::format("{} {} {}{}", index, stream, line, part.partial ? "..." : ""));
  }
  void job_note(size_t index, std::string_view text) override { seen.push_back(fmt::format("{} note {}", index, text)); }
};

// Handles still on the loop (closed ones are gone once their close callback ran).
int open_handles(runner::Loop& loop) {
  int n = 0;
  uv_walk(loop.get(), [](uv_handle_t*, void* arg) { ++*static_cast<int*>(arg); }, &n);
  return n;
}

TEST(JobOutputTest, PassesEachCompleteLineAndEachNoteToTheEvents) {
  Recorder rec;
  runner::JobOutput out("unit", 3, runner::ConsoleMode::prefixed, &rec);
  out.write(1, "one\ntw");
  out.write(2, "err\n");
  out.write(1, "o\nthree");
  out.note("timed out after 1s; killed the container");
  out.finish();
  EXPECT_EQ(rec.seen, (std::vector<std::string>{"3 1 one", "3 2 err", "3 1 two",
                                                "3 note timed out after 1s; killed the container", "3 1 three"}));
  EXPECT_EQ(out.tail(), (std::vector<std::string>{"one", "err", "two",
                                                  "sandrun: timed out after 1s; killed the container", "three"}));
}

TEST(JobOutputTest, KeepsOnlyTheLastTwentyLinesForTheTail) {
  runner::JobOutput out("unit", 0, runner::ConsoleMode::none, nullptr);
  for (int i = 1; i <= 50; ++i) out.write(i % 2 ? 1 : 2, fmt::format("line {}\n", i));
  out.write(1, std::string(10000, 'x') + "\n");
  auto tail = out.tail();
  ASSERT_EQ(tail.size(), runner::JobOutput::kTailLines);
  EXPECT_EQ(tail.front(), "line 32");
  EXPECT_EQ(tail[18], "line 50");
  EXPECT_EQ(tail.back(), std::string(runner::JobOutput::kTailLineBytes, 'x'));
}


// Issue 15 item 2: past log_max the log keeps its head, a marker naming the bytes dropped and
// its last bytes; the console is told once; memory holds only the kept end.
TEST(JobOutputTest, BoundsTheLogToItsHeadAMarkerAndItsTail) {
  TempDir dir;
  Recorder rec;
  const uint64_t max = 256 << 10;  // head 128 KiB, tail 128 KiB
  std::string all;
  {
    runner::JobOutput out("flood", 0, runner::ConsoleMode::prefixed, &rec);
    out.set_log(dir / "flood.log");
    out.set_log_max(max);
    ASSERT_TRUE(out.open_log());
    for (int i = 0; i < 100000; ++i) {
      std::string line = fmt::format("line {:06}\n", i);
      all += line;
      out.write(1, line);
    }
    out.note("killed");
    all += "sandrun: killed\n";
    out.finish();
    EXPECT_EQ(out.log_dropped(), all.size() - max);
    out.close_log();
  }
  const std::string log = read_file(dir / "flood.log");
  const std::string marker = fmt::format(
      "sandrun: log truncated at log_max (256 KiB): {} bytes dropped here; its last {} bytes follow\n",
      all.size() - max, max / 2);
  // The head ends inside a line: the marker starts a line of its own.
  ASSERT_EQ(log.size(), max + 1 + marker.size());
  EXPECT_EQ(log.substr(0, max / 2), all.substr(0, max / 2));
  EXPECT_EQ(log.substr(max / 2, 1 + marker.size()), "\n" + marker);
  EXPECT_EQ(log.substr(max / 2 + 1 + marker.size()), all.substr(all.size() - max / 2));
  size_t notes = 0;
  for (const auto& l : rec.seen) {
    if (l.find("note the log " + (dir / "flood.log") + " reached log_max (256 KiB): its first 128 KiB are kept, "
                "then only its last 128 KiB") != std::string::npos)
      ++notes;
  }
  EXPECT_EQ(notes, 1u);
}

// A log within the bound is written as is (past the head, up to log_max, without a marker), and
// an attempt appending to it counts what is there.
TEST(JobOutputTest, ALogWithinTheBoundIsCompleteAndAttemptsShareTheBound) {
  TempDir dir;
  const std::string a(100 << 10, 'a'), b(100 << 10, 'b');
  {
    runner::JobOutput out("a", 0, runner::ConsoleMode::none, nullptr);
    out.set_log(dir / "a.log");
    out.set_log_max(256 << 10);
    ASSERT_TRUE(out.open_log());
    out.write(1, a);
    out.write(2, b);  // past the head (128 KiB), within log_max
  }  // closed by its destructor
  EXPECT_EQ(read_file(dir / "a.log"), a + b);
  runner::JobOutput again("a", 0, runner::ConsoleMode::none, nullptr);
  again.set_log(dir / "a.log", /*append=*/true);
  again.set_log_max(256 << 10);
  ASSERT_TRUE(again.open_log());
  again.write(1, std::string(200 << 10, 'c'));
  again.close_log();
  const std::string log = read_file(dir / "a.log");
  // Its head is full already: of this attempt's output only the last 128 KiB are kept.
  EXPECT_EQ(again.log_dropped(), 72u << 10);
  EXPECT_EQ(log.substr(0, 200 << 10), a + b);
  EXPECT_EQ(log.substr(log.size() - (128 << 10)), std::string(128 << 10, 'c'));
  EXPECT_NE(log.find("b\nsandrun: log truncated at log_max (256 KiB): 73728 bytes dropped here"), std::string::npos);
}

// Issue 15 item 13: the console is a bounded view. Above the high mark lines are counted, not
// shown; once it is back below the low mark the count is said, once, and lines flow again.
TEST(ConsoleReporterTest, DropsAndCountsLinesWhileTheConsoleIsBehind) {
  Capture cap;
  size_t backlog = 0;
  runner::ConsoleOptions o;
  o.write = cap.fn();
  o.backlog = [&] { return backlog; };
  runner::ConsoleReporter rep(std::move(o));
  auto ps = plans({"a"});
  rep.run_started(ptrs(ps));
  rep.job_output(0, 1, "shown 1");
  backlog = runner::kConsoleBacklogHigh + 1;
  for (int i = 0; i < 1000; ++i) rep.job_output(0, 1, "hidden");
  backlog = runner::kConsoleBacklogLow + 1;  // still behind: not yet below the low mark
  rep.job_output(0, 1, "hidden");
  backlog = 0;
  rep.job_output(0, 1, "shown 2");
  rep.job_finished(0, result("a", 0, S::passed));
  rep.run_finished({result("a", 0, S::passed)}, 0);
  EXPECT_EQ(cap.out, "[a] shown 1\n[a] shown 2\n");
  EXPECT_NE(cap.err.find("sandrun: 1001 lines of output not shown: the console fell behind (the log files have every "
                         "line)\n"),
            std::string::npos)
      << cap.err;
  EXPECT_EQ(cap.err.find("not shown", cap.err.find("not shown") + 1), std::string::npos) << "said once";
}

// Issue 15 item 11: what a job prints or is named never reaches the terminal raw.
TEST(ConsoleReporterTest, EscapesControlSequencesInOutputNamesAndNotes) {
  Capture cap;
  runner::ConsoleOptions o;
  o.write = cap.fn();
  runner::ConsoleReporter rep(std::move(o));
  auto ps = plans({"evil\x1b[2J"});
  rep.run_started(ptrs(ps));
  rep.job_output(0, 1, "\x1b]0;PWNED-TITLE\x07\x1b[2J");
  rep.job_note(0, "artifacts: \x1b[31mred.txt");
  EXPECT_EQ(cap.out, "[evil\\x1b[2J] \\x1b]0;PWNED-TITLE\\x07\\x1b[2J\n");
  EXPECT_EQ(cap.err, "[evil\\x1b[2J] sandrun: artifacts: \\x1b[31mred.txt\n");
  auto r = result("evil\x1b[2J", 0, S::failed, 1);
  r.output_tail = {"\x1b]0;TITLE\x07"};
  const std::string table = runner::summary_table({r}, std::chrono::milliseconds(5), /*color=*/false);
  EXPECT_EQ(table.find('\x1b'), std::string::npos) << table;
  EXPECT_NE(table.find("\\x1b]0;TITLE\\x07"), std::string::npos) << table;
}

TEST(ConsoleReporterTest, PlainModePrintsPrefixedLinesAndWhatHappensToEachJob) {
  Capture cap;
  runner::ConsoleOptions o;
  o.style.name_width = 5;
  o.write = cap.fn();
  runner::ConsoleReporter rep(std::move(o));
  auto ps = plans({"build", "unit", "lint"});
  rep.run_started(ptrs(ps));
  rep.job_started(0, 1, 1);
  rep.job_output(0, 1, "compiling");
  rep.job_output(0, 2, "warning: unused");
  rep.job_finished(0, result("build", 0, S::passed));
  rep.job_started(1, 1, 3);
  auto failed = result("unit", 1, S::failed, 1);
  failed.max_attempts = 3;
  rep.job_retrying(1, failed);
  rep.job_started(1, 2, 3);
  auto second = result("unit", 1, S::passed);
  second.attempt = 2, second.max_attempts = 3;
  rep.job_finished(1, second);
  auto skipped = result("lint", 2, S::skipped);
  skipped.skipped_because = "build";
  rep.job_note(2, "a note");
  rep.job_finished(2, skipped);
  EXPECT_EQ(cap.out, "[build] compiling\n");
  EXPECT_EQ(cap.err,
            "[build] started\n"
            "[build] warning: unused\n"
            "[build] passed in 1.20s\n"
            "[unit]  started\n"
            "[unit]  retrying (attempt 2 of 3): failed: exit 1\n"
            "[unit]  started (attempt 2 of 3)\n"
            "[unit]  passed (attempt 2/3) in 1.20s\n"
            "[lint]  sandrun: a note\n"
            "[lint]  skipped (needs build)\n");
}

TEST(ConsoleReporterTest, QuietPrintsOnlyTheOutputOfJobsThatFailTheRun) {
  Capture cap;
  runner::ConsoleOptions o;
  o.quiet = true;
  o.write = cap.fn();
  runner::ConsoleReporter rep(std::move(o));
  auto ps = plans({"ok", "bad", "flaky"});
  rep.run_started(ptrs(ps));
  for (size_t i = 0; i < 3; ++i) rep.job_started(i, 1, 1);
  rep.job_output(0, 1, "fine");
  rep.job_output(1, 1, "expected 4");
  rep.job_output(1, 2, "got 5");
  rep.job_output(2, 1, "allowed to fail");
  rep.job_finished(0, result("ok", 0, S::passed));
  rep.job_finished(1, result("bad", 1, S::failed, 3));
  auto allowed = result("flaky", 2, S::failed, 1);
  allowed.allow_failure = true;
  rep.job_finished(2, allowed);
  EXPECT_EQ(cap.out, "[bad] expected 4\n");
  EXPECT_EQ(cap.err, "[bad] got 5\n[bad] failed: exit 3 in 1.20s\n");
}

TEST(ConsoleReporterTest, QuietKeepsTheLastLinesOfAFailedJobAndSaysHowManyWentBefore) {
  Capture cap;
  runner::ConsoleOptions o;
  o.quiet = true;
  o.write = cap.fn();
  runner::ConsoleReporter rep(std::move(o));
  auto ps = plans({"bad"});
  rep.run_started(ptrs(ps));
  rep.job_started(0, 1, 1);
  for (size_t i = 1; i <= runner::ConsoleReporter::kQuietLines + 50; ++i) rep.job_output(0, 1, fmt::format("{}", i));
  rep.job_finished(0, result("bad", 0, S::failed, 1));
  EXPECT_EQ(cap.err, "[bad] sandrun: (50 earlier lines in the log file)\n[bad] failed: exit 1 in 1.20s\n");
  EXPECT_EQ(cap.out.substr(0, 9), "[bad] 51\n");
  EXPECT_EQ(std::count(cap.out.begin(), cap.out.end(), '\n'), 200);
}

// A reporter in tty mode with a clock the test moves.
struct Tty {
  Capture cap;
  std::chrono::steady_clock::time_point now{};
  std::unique_ptr<runner::ConsoleReporter> rep;
  explicit Tty(size_t width = 80, size_t height = 24) {
    runner::ConsoleOptions o;
    o.tty = true;
    o.width = width;
    o.height = height;
    o.write = cap.fn();
    o.clock = [this] { return now; };
    rep = std::make_unique<runner::ConsoleReporter>(std::move(o));
  }
};

TEST(ConsoleReporterTest, TtyModeRedrawsLogsAboveTheStatusBlockInOneWriteEach) {
  Tty t;
  auto ps = plans({"build", "unit", "lint"});
  t.rep->run_started(ptrs(ps));
  EXPECT_EQ(t.cap.writes.back(), "0 passed, 0 failed, 0 running, 3 queued, 0 skipped\n");
  t.rep->job_started(0, 1, 1);
  t.now += 500ms;
  t.rep->job_started(1, 1, 2);
  t.now += 1500ms;
  const size_t before = t.cap.writes.size();
  t.rep->job_output(1, 2, "hello");
  ASSERT_EQ(t.cap.writes.size(), before + 1);
  EXPECT_EQ(t.cap.writes.back(),
            "\r\033[3A\033[J"  // up over the block, clear to the end of the screen
            "[unit] hello\n"
            "  build  2.0s\n"
            "  unit   1.5s (attempt 1/2)\n"
            "0 passed, 0 failed, 2 running, 1 queued, 0 skipped\n");
  t.rep->job_finished(0, result("build", 0, S::passed));
  EXPECT_EQ(t.cap.writes.back(),
            "\r\033[3A\033[J[build] passed in 1.20s\n  unit  1.5s (attempt 1/2)\n"
            "1 passed, 0 failed, 1 running, 1 queued, 0 skipped\n");
  t.rep->run_finished({}, 0);
  EXPECT_EQ(t.cap.writes.back(), "\r\033[2A\033[J");  // the block goes before the summary
  EXPECT_EQ(t.cap.err, "");  // one stream: stderr lines would tear the block
}

TEST(ConsoleReporterTest, TtyBlockLinesAreCutToTheTerminalWidth) {
  Tty t(20);
  auto ps = plans({"a-very-long-job-name-indeed"});
  t.rep->run_started(ptrs(ps));
  t.rep->job_started(0, 1, 1);
  EXPECT_EQ(t.rep->status_block(), (std::vector<std::string>{"  a-very-long-job-…", "0 passed, 0 failed…"}));
}

TEST(ConsoleReporterTest, TtyBlockStaysWithinTheScreenHeight) {
  Tty t(80, 6);
  std::vector<std::string> names;
  for (int i = 0; i < 10; ++i) names.push_back(fmt::format("j{}", i));
  auto ps = plans(names);
  t.rep->run_started(ptrs(ps));
  for (size_t i = 0; i < 10; ++i) t.rep->job_started(i, 1, 1);
  EXPECT_EQ(t.rep->status_block(), (std::vector<std::string>{"  j0  0.0s", "  j1  0.0s", "  j2  0.0s",
                                                             "  ... and 7 more running",
                                                             "0 passed, 0 failed, 10 running, 0 queued, 0 skipped"}));
}

TEST(ConsoleReporterTest, TtyTimerRefreshesOnTheLoopAndClosesWhenEveryJobHasFinished) {
  runner::Loop loop;
  Capture cap;
  runner::ConsoleOptions o;
  o.tty = true;
  o.width = 80;
  o.height = 24;
  o.write = cap.fn();
  runner::ConsoleReporter rep(std::move(o));
  auto ps = plans({"slow"});
  rep.run_started(ptrs(ps));
  rep.loop_started(loop);
  rep.job_started(0, 1, 1);
  const size_t before = cap.writes.size();
  // A job that ends after 1.1 s: the block is redrawn by the timer meanwhile.
  struct Ctx {
    runner::ConsoleReporter* rep;
  } ctx{&rep};
  uv_timer_t end;
  uv_timer_init(loop.get(), &end);
  end.data = &ctx;
  uv_timer_start(&end, [](uv_timer_t* t) {
    static_cast<Ctx*>(t->data)->rep->job_finished(0, result("slow", 0, S::passed));
    uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
  }, 1100, 0);
  uv_run(loop.get(), UV_RUN_DEFAULT);
  EXPECT_GE(cap.writes.size() - before, 4u);  // ticks at 250, 500, 750, 1000 ms, and the end
  std::set<std::string> times;  // the elapsed time moves on from one tick to the next
  for (size_t p = cap.out.find("  slow  "); p != std::string::npos; p = cap.out.find("  slow  ", p + 1))
    times.insert(cap.out.substr(p, cap.out.find('\n', p) - p));
  EXPECT_GE(times.size(), 3u) << cap.out;
  EXPECT_EQ(open_handles(loop), 0);  // nothing of the reporter is left on the loop
}

TEST(BatchedWriterTest, WritesWhatOneLoopIterationGatheredInOrderAndLeavesTheLoopClean) {
  runner::Loop loop;
  Capture cap;
  runner::BatchedWriter w(cap.fn());
  w.attach(loop);
  struct Ctx {
    runner::BatchedWriter* w;
    Capture* cap;
    size_t writes_seen = 0;
  } ctx{&w, &cap};
  uv_timer_t lines, end;
  uv_timer_init(loop.get(), &lines);
  uv_timer_init(loop.get(), &end);
  lines.data = end.data = &ctx;
  uv_timer_start(&lines, [](uv_timer_t* t) {
    auto* c = static_cast<Ctx*>(t->data);
    for (const char* l : {"a\n", "b\n"}) c->w->write(1, l);
    c->w->write(2, "e\n");
    c->w->write(1, "c\n");
    c->writes_seen = c->cap->writes.size();  // nothing written yet: the iteration goes on
    uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
  }, 5, 0);
  uv_timer_start(&end, [](uv_timer_t* t) {
    static_cast<Ctx*>(t->data)->w->detach();
    uv_close(reinterpret_cast<uv_handle_t*>(t), nullptr);
  }, 50, 0);
  uv_run(loop.get(), UV_RUN_DEFAULT);
  EXPECT_EQ(ctx.writes_seen, 0u);
  EXPECT_EQ(cap.writes, (std::vector<std::string>{"a\nb\n", "e\n", "c\n"}));
  w.write(1, "after\n");  // detached: at once
  EXPECT_EQ(cap.writes.back(), "after\n");
  EXPECT_EQ(open_handles(loop), 0);
}

// Counts the events that must reach a reporter once.
struct Counter : runner::RunEvents {
  int started = 0, runs_finished = 0;
  std::vector<size_t> finished;
  void run_started(const std::vector<const JobPlan*>&) override { ++started; }
  void job_finished(size_t index, const JobResult&) override { finished.push_back(index); }
  void run_finished(const std::vector<JobResult>&, int) override { ++runs_finished; }
};

TEST(ReportersTest, EachJobEndsOnceAndTheRunOnceWhoeverReportsThem) {
  Counter a, b;
  runner::Reporters reps;
  reps.add(&a);
  reps.add(&b);
  auto ps = plans({"x", "y", "z"});
  reps.run_started(ptrs(ps));  // by the command, before the run
  reps.run_started(ptrs(ps));  // by the runner
  reps.job_finished(1, result("y", 1, S::passed));
  reps.job_finished(1, result("y", 1, S::passed));
  reps.complete({result("x", 0, S::passed), result("y", 1, S::passed), result("z", 2, S::not_started)}, 0);
  reps.run_finished({}, 0);
  for (const Counter* c : {&a, &b}) {
    EXPECT_EQ(c->started, 1);
    EXPECT_EQ(c->finished, (std::vector<size_t>{1, 0, 2}));
    EXPECT_EQ(c->runs_finished, 1);
  }
}

TEST(ConsoleTest, FitColumnsCutsByCharactersNotBytes) {
  EXPECT_EQ(runner::fit_columns("héllo wörld", 20), "héllo wörld");
  EXPECT_EQ(runner::fit_columns("héllo wörld", 7), "héllo …");
  EXPECT_EQ(runner::fit_columns("abc", 3), "abc");
}

TEST(SummaryTest, ShowsAttemptsAllowedFailuresSkipsAndTheLastLinesOfFailedJobs) {
  auto retried = result("build", 0, S::passed);
  retried.attempt = 2, retried.max_attempts = 3;
  auto bad = result("unit", 1, S::failed, 3);
  for (int i = 1; i <= 12; ++i) bad.output_tail.push_back(fmt::format("line {}", i));
  auto allowed = result("lint", 2, S::failed, 1);
  allowed.allow_failure = true;
  allowed.attempt = 2, allowed.max_attempts = 2;
  allowed.output_tail = {"not shown"};
  auto skipped = result("deploy", 3, S::skipped);
  skipped.skipped_because = "unit";
  std::string table = runner::summary_table({retried, bad, allowed, skipped}, 2500ms, false);
  EXPECT_EQ(table,
            "JOB     STATUS                                 TIME\n"
            "build   passed (attempt 2/3)                   1.20s\n"
            "unit    failed: exit 3                         1.20s\n"
            "lint    failed: exit 1 (allowed, attempt 2/2)  1.20s\n"
            "deploy  skipped (needs unit)                   -\n"
            "\n"
            "unit: failed: exit 3, its last 10 lines:\n"
            "  line 3\n  line 4\n  line 5\n  line 6\n  line 7\n  line 8\n  line 9\n  line 10\n  line 11\n  line 12\n"
            "\n"
            "4 jobs: 1 passed, 2 failed (1 allowed), 1 skipped in 2.50s\n");
}

}  // namespace
}  // namespace sandrun::testing
