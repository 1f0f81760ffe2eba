// `sandrun run`: jobs in parallel, output, exit statuses, timeouts, cancellation, cleanup.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "sandbox/sys/fs.h"
#include "tests/runner/cli_fixture.h"

namespace sandrun::testing {
namespace {

using namespace std::chrono_literals;

class RunTest : public CliTest {};

TEST_F(RunTest, PassingJobsExitZeroWithPrefixedLogsLogFilesAndASummary) {
  auto r = sandrun({"run", jobs(R"toml(
[jobs.hello]
run = "echo hello from $(hostname)"
[jobs.world]
command = ["echo", "world"]
)toml")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("[hello] hello from hello\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[world] world\n"), std::string::npos) << r.out;
  // TIME is as wide as its longest value: "85ms", or "149ms" when a slot's first container
  // also made its file system (the disk limit's) on a loaded machine.
  EXPECT_NE(r.out.find("JOB    STATUS  TIME"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nhello  passed  "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 jobs: 2 passed, 0 failed in "), std::string::npos) << r.out;
  EXPECT_EQ(log("hello"), "hello from hello\n");
  EXPECT_EQ(log("world"), "world\n");
  expect_nothing_left();
}

TEST_F(RunTest, AFailingJobMakesTheRunExitOneAndIsNamedInTheSummary) {
  auto r = sandrun({"run", jobs(R"toml(
[jobs.good]
run = "true"
[jobs.bad]
run = "echo failing >&2; exit 3"
)toml")});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("bad   failed: exit 3"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("[bad]  failing\n"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("2 jobs: 1 passed, 1 failed in "), std::string::npos) << r.out;
  expect_nothing_left();
}

TEST_F(RunTest, ABadJobFileExitsTwoWithFileLineAndColumn) {
  std::string file = jobs("[jobs.unit]\nrun = \"true\"\ntimeout = \"ten\"\n");
  auto r = sandrun({"run", file});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "sandrun: " + file +
                       ":3:11: jobs.unit.timeout: invalid duration \"ten\": expected a number and a unit "
                       "(ms, s, m, h) like \"90s\" or \"10m\"\n");
  EXPECT_EQ(r.out, "");
}

TEST_F(RunTest, AMissingJobFileExitsTwo) {
  auto r = sandrun({"run", tmp_ / "nope.toml"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err, "sandrun: cannot read job file " + (tmp_ / "nope.toml") + ": No such file or directory\n");
}

TEST_F(RunTest, AnUnknownFlagExitsTwo) {
  auto r = sandrun({"run", "--frobnicate", "x.toml"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("--frobnicate"), std::string::npos) << r.err;
}

TEST_F(RunTest, AMissingImageIsAClearErrorBeforeAnyJobStarts) {
  std::string file = jobs("[jobs.a]\nrun = \"touch /workspace/ran\"\nworkspace = \".\"\n"
                          "[jobs.b]\nimage = \"nothere:1.0\"\nrun = \"true\"\n");
  auto r = sandrun({"run", file});
  EXPECT_EQ(r.status, 2);
  // (The first use of busybox may add a line about creating the built-in image first.)
  std::string expected = "sandrun: " + file + ":5:9: jobs.b.image: image \"nothere:1.0\" is not in the image cache (" +
                         root() + "); import it with: sandrun image import [--rootfs] FILE nothere:1.0\n";
  ASSERT_GE(r.err.size(), expected.size());
  EXPECT_EQ(r.err.substr(r.err.size() - expected.size()), expected);
  EXPECT_FALSE(fs::exists(tmp_ / "ran"));
}

TEST_F(RunTest, AMissingWorkspaceIsAnErrorAtItsPositionBeforeAnyJobStarts) {
  std::string file = jobs("[jobs.a]\nrun = \"true\"\n[jobs.b]\nworkspace = \"no-such-dir\"\nrun = \"true\"\n");
  auto r = sandrun({"run", file});
  EXPECT_EQ(r.status, 2);
  std::string expected = "sandrun: " + file + ":4:13: jobs.b.workspace: " + (tmp_ / "no-such-dir") +
                         ": No such file or directory\n";
  ASSERT_GE(r.err.size(), expected.size());
  EXPECT_EQ(r.err.substr(r.err.size() - expected.size()), expected);
  EXPECT_EQ(r.out, "");
}

TEST_F(RunTest, AMissingCommandFailsTheJobWithAClearMessage) {
  auto r = sandrun({"run", jobs("[jobs.typo]\ncommand = [\"mkae\", \"all\"]\n")});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("[typo] sandrun: command not found: \"mkae\"\n"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("typo  failed: command not found"), std::string::npos) << r.out;
  EXPECT_EQ(log("typo").rfind("sandrun: command not found: \"mkae\"\n", 0), 0u) << log("typo");
}

TEST_F(RunTest, AJobKilledByASignalIsReportedAsSuch) {
  auto r = sandrun({"run", jobs("[jobs.crash]\nrun = \"kill -SEGV $$\"\n")});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("crash  failed: signal SIGSEGV"), std::string::npos) << r.out;
}

TEST_F(RunTest, IsolationAsSeenFromInsideTheContainers) {
  write_file(tmp_ / "host-marker", "x");
  std::string ws = tmp_ / "ws";
  ASSERT_TRUE(fs::mkdirs(ws).ok());
  give_to_checkout_owner(ws);
  auto r = sandrun({"run", jobs(R"toml(
[jobs.inside]
workspace = "ws"
run = '''
echo "pid=$$ ppid=$PPID init=$(head -c 12 /proc/1/cmdline)"
n=$(ls /proc | grep -c '^[0-9]'); test $n -lt 8 && echo "only-own-processes"
echo "ifaces=$(ls /sys/class/net | tr '\n' ' ')"
echo "hostname=$(hostname)"
test -e /host-marker && echo "host-visible"
test -x /bin/busybox && echo "image-root"
echo data > /written-to-root
echo data > /workspace/written-to-workspace
echo "cwd=$(pwd)"
'''
[jobs.pid1]
init = false
run = "echo pid=$$"
)toml")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(log("inside"),
            "pid=2 ppid=1 init=sandrun-init\nonly-own-processes\nifaces=lo \nhostname=inside\nimage-root\ncwd=/workspace\n");
  EXPECT_EQ(log("pid1"), "pid=1\n");
  EXPECT_EQ(read_file(ws + "/written-to-workspace"), "data\n");
  // What a job writes to / is gone for the next container and never reaches the image layer.
  auto again = sandrun({"run", jobs("[jobs.next]\nrun = \"ls /written-to-root\"\n", "next.toml")});
  EXPECT_EQ(again.status, 1);
  EXPECT_EQ(log("next"), "ls: /written-to-root: No such file or directory\n");
  auto layers = dir_entries(root() + "/layers/sha256");
  ASSERT_EQ(layers.size(), 1u);
  EXPECT_FALSE(fs::exists(root() + "/layers/sha256/" + layers[0] + "/written-to-root"));
  expect_nothing_left();
}

TEST_F(RunTest, ParallelContainersCannotSeeEachOthersProcessesOrFiles) {
  auto job = [](const std::string& name, const std::string& secs) {
    return "[jobs." + name + "]\nrun = \'\'\'\n"
           "echo mine > /tmp/$(hostname); echo mine > /$(hostname)\n"
           "sleep " + secs + " &\n"
           "sleep 0.5\n"
           "ls / /tmp | grep -c '^[ab]$'\n"
           "ps -o args | grep -c '^sleep 8635'\n"
           "\'\'\'\n";
  };
  auto r = sandrun({"run", "-j", "2", jobs(job("a", "86351") + job("b", "86352"))});
  ASSERT_EQ(r.status, 0) << r.err;
  // Each sees its own two files and its own sleep, never the other's.
  EXPECT_EQ(log("a"), "2\n1\n");
  EXPECT_EQ(log("b"), "2\n1\n");
  expect_nothing_left({{"sleep", "86351"}, {"sleep", "86352"}});
}

TEST_F(RunTest, AHundredMegabytesOfOutputReachTheLogByteForByte) {
  // seq 1 14000000 prints 114,888,897 bytes; the test computes the same bytes itself.
  auto r = sandrun({"run", jobs("[jobs.big]\nrun = \"seq 1 14000000\"\n")});
  ASSERT_EQ(r.status, 0) << r.err;
  std::string expected;
  expected.reserve(115'000'000);
  for (int i = 1; i <= 14'000'000; ++i) {
    expected += std::to_string(i);
    expected += '\n';
  }
  std::string got = log("big");
  EXPECT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected);
}

TEST_F(RunTest, StdoutAndStderrBothArriveAndAMissingFinalNewlineIsKept) {
  auto r = sandrun({"run", jobs("[jobs.mixed]\nrun = \"echo to-out; sleep 0.1; echo to-err >&2; sleep 0.1; printf tail\"\n")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(log("mixed"), "to-out\nto-err\ntail");
  EXPECT_NE(r.out.find("[mixed] to-out\n[mixed] tail\n"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("[mixed] to-err\n"), std::string::npos) << r.err;
}

TEST_F(RunTest, ATimeoutKillsTheWholeTreeQuickly) {
  auto r = sandrun({"run", jobs("[jobs.slow]\ntimeout = \"1s\"\nrun = \"sleep 86361 & sleep 86362\"\n")});
  EXPECT_EQ(r.status, 1);
  // The sleeps would last a day, and a stop that waited out the 10 s grace for SIGTERM would
  // take 11 s: a loaded machine's start-up (seconds under ASan) still fits well under that.
  EXPECT_LT(r.elapsed, 8s);
  EXPECT_NE(r.out.find("slow  killed: timed out after 1s"), std::string::npos) << r.out;
  EXPECT_NE(log("slow").find("sandrun: timed out after 1s; killed the container\n"), std::string::npos);
  expect_nothing_left({{"sleep", "86361"}, {"sleep", "86362"}});
}

// A console nobody reads (a stalled terminal, ^S, a CI log pipe that stops) does not stop the
// loop: the console has a thread of its own, the console drops job output it cannot write (the
// log has it), and the timeout still fires. Before, the loop thread sat in write(2) on the full pipe and nothing else ran.
TEST_F(RunTest, AConsoleNobodyReadsDoesNotStopTheLoopAndATimeoutStillFires) {
  // Its containers are read whatever the console does (the console drops lines instead): the
  // log's bound keeps what `yes` writes in its second small.
  std::string file =
      jobs("[jobs.chatty]\ntimeout = \"1s\"\nlog_max = \"1MiB\"\nrun = \"yes sandrun-console-backpressure\"\n");
  int out[2];
  ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> args = {sandrun_bin(), "--root", root(), "run", file};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  ASSERT_EQ(::posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  // Nobody reads sandrun's stdout: its pipe fills at once. The job is still timed out.
  const bool timed_out = eventually(
      [&] { return log("chatty").find("sandrun: timed out after 1s; killed the container") != std::string::npos; },
      kStartTimeout);
  // Now read, so that sandrun can write what it holds and end.
  char buf[65536];
  while (::read(out[0], buf, sizeof buf) > 0) {
  }
  ::close(out[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(timed_out) << "the timeout did not fire while the console was not read";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  expect_nothing_left();
}

TEST_F(RunTest, SigintCancelsEveryJobAndExits130LeavingNothing) {
  std::string file = jobs("[jobs.a]\nrun = \"sleep 86371\"\n[jobs.b]\nrun = \"sleep 86372\"\n[jobs.c]\nrun = \"sleep 86373\"\n");
  Background bg({sandrun_bin(), "--root", root(), "run", "-j", "2", file});
  ASSERT_TRUE(eventually([] { return host_has_process({"sleep", "86371"}) && host_has_process({"sleep", "86372"}); }, kStartTimeout));
  bg.signal(SIGINT);
  auto r = bg.finish();
  EXPECT_EQ(r.status, 130) << r.err;
  EXPECT_LT(r.elapsed, 8s);  // from SIGINT: no wait for the sleeps (a day) nor for the 10 s grace
  EXPECT_NE(r.out.find("a    cancelled"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("c    not started"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cancelled by SIGINT"), std::string::npos) << r.out;
  expect_nothing_left({{"sleep", "86371"}, {"sleep", "86372"}, {"sleep", "86373"}});
}

TEST_F(RunTest, ASecondSigintKillsJobsThatIgnoreTheFirst) {
  std::string file = jobs("[jobs.stubborn]\nrun = \"trap '' INT TERM; sleep 86375; sleep 86375\"\n");
  Background bg({sandrun_bin(), "--root", root(), "run", file});
  ASSERT_TRUE(eventually([] { return host_has_process({"sleep", "86375"}); }, kStartTimeout));
  bg.signal(SIGINT);
  ::usleep(300'000);
  EXPECT_TRUE(host_has_process({"sleep", "86375"}));  // still inside its 10 s grace
  bg.signal(SIGINT);
  auto r = bg.finish();
  EXPECT_EQ(r.status, 130) << r.err;
  EXPECT_LT(r.elapsed, 8s);  // from the first SIGINT: the second one does not wait out the 10 s grace
  EXPECT_NE(r.out.find("stubborn  cancelled"), std::string::npos) << r.out;
  expect_nothing_left({{"sleep", "86375"}});
}

TEST_F(RunTest, SigtermCancelsAndExits143) {
  Background bg({sandrun_bin(), "--root", root(), "run", jobs("[jobs.a]\nrun = \"sleep 86374\"\n")});
  ASSERT_TRUE(eventually([] { return host_has_process({"sleep", "86374"}); }, kStartTimeout));
  bg.signal(SIGTERM);
  auto r = bg.finish();
  EXPECT_EQ(r.status, 143) << r.err;
  expect_nothing_left({{"sleep", "86374"}});
}

TEST_F(RunTest, ASigkilledRunIsCleanedByCleanupAndByTheNextRun) {
  std::string file = jobs("[jobs.a]\nrun = \"echo left > /junk; sleep 86381\"\n[jobs.b]\nrun = \"sleep 86382\"\n");
  for (const char* then : {"cleanup", "run"}) {
    Background bg({sandrun_bin(), "--root", root(), "run", "-j", "2", file});
    ASSERT_TRUE(eventually([] { return host_has_process({"sleep", "86381"}) && host_has_process({"sleep", "86382"}); }, kStartTimeout));
    ASSERT_EQ(busy_slots(), 2u);
    bg.signal(SIGKILL);
    EXPECT_EQ(bg.finish().status, 128 + SIGKILL);
    CommandResult r = std::string(then) == "cleanup"
                          ? sandrun({"cleanup"})
                          : sandrun({"run", jobs("[jobs.ok]\nrun = \"test ! -e /junk\"\n", "ok.toml")});
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("sandrun: cleaned 2 container slots left by dead runs"), std::string::npos)
        << then << ": " << r.err;
    expect_nothing_left({{"sleep", "86381"}, {"sleep", "86382"}});
  }
  EXPECT_EQ(dir_entries(root() + "/slots").size(), 2u);  // the next run reused them
}

TEST_F(RunTest, ARunSigkilledWithTwentyJobsInFlightIsCleanedByTheNextRunAndNothingRemains) {
  std::string text;
  std::vector<std::vector<std::string>> sleeps;
  for (int i = 0; i < 20; ++i) {
    text += fmt::format("[jobs.j{}]\nrun = \"echo left > /junk; sleep {}\"\n", i, 86400 + i);
    sleeps.push_back({"sleep", std::to_string(86400 + i)});
  }
  Background bg({sandrun_bin(), "--root", root(), "run", "-j", "20", jobs(text)});
  ASSERT_TRUE(eventually([&] {
    return std::all_of(sleeps.begin(), sleeps.end(), [](const auto& p) { return host_has_process(p); });
  }, 20s));
  ASSERT_EQ(busy_slots(), 20u);
  bg.signal(SIGKILL);
  EXPECT_EQ(bg.finish().status, 128 + SIGKILL);
  auto r = sandrun({"run", jobs("[jobs.ok]\nrun = \"test ! -e /junk\"\n", "ok.toml")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("sandrun: cleaned 20 container slots left by dead runs"), std::string::npos) << r.err;
  // The dead run's cgroups are gone too (removed by this run's sweep, or by that of another
  // sandrun running beside it: every run sweeps dead runs' cgroups, whatever their state dir).
  expect_nothing_left(sleeps);
}

TEST_F(RunTest, TwoRunsCannotShareAnOutputDirectory) {
  std::string file = jobs("[jobs.a]\nrun = \"sleep 86391\"\n");
  Background bg({sandrun_bin(), "--root", root(), "run", file});
  ASSERT_TRUE(eventually([] { return host_has_process({"sleep", "86391"}); }, kStartTimeout));
  auto r = sandrun({"run", file});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("sandrun: another sandrun run is writing to " + (tmp_ / ".sandrun")), std::string::npos)
      << r.err;
  bg.signal(SIGTERM);
  EXPECT_EQ(bg.finish().status, 143);
  expect_nothing_left({{"sleep", "86391"}});
}

TEST_F(RunTest, CleanupWithNothingToDoSaysSoAndRemovesIdleSlots) {
  ASSERT_EQ(sandrun({"run", jobs("[jobs.a]\nrun = \"true\"\n")}).status, 0);
  ASSERT_EQ(dir_entries(root() + "/slots").size(), 1u);
  auto r = sandrun({"cleanup"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.err, "sandrun: nothing left behind by dead runs; removed 1 idle container slot\n");
  EXPECT_EQ(dir_entries(root() + "/slots"), std::vector<std::string>{});
}

TEST_F(RunTest, AReusedSlotCarriesNothingFromOneJobToTheNext) {
  // One slot for all three: each job sees a pristine root, whatever the previous one did to it.
  auto r = sandrun({"run", "-j", "1", jobs(R"toml(
[jobs.a]
run = "chmod 700 /; echo secret > /left-behind; mkdir -p /deep/er; touch /deep/er/x; rm /etc/group"
[jobs.b]
run = "stat -c %a /; ls /left-behind /deep 2>&1; head -1 /etc/group"
[jobs.c]
run = "stat -c %a /"
)toml")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(log("b"),
            "755\nls: /left-behind: No such file or directory\nls: /deep: No such file or directory\nroot:x:0:\n");
  EXPECT_EQ(log("c"), "755\n");
  EXPECT_EQ(dir_entries(root() + "/slots").size(), 1u);
  expect_nothing_left();
}

TEST_F(RunTest, OutDirAndDebugLoggingNeverTouchAJobsOutput) {
  std::string out = tmp_ / "elsewhere";
  auto r = sandrun({"run", "--out", out, jobs("[jobs.quiet]\nrun = \"echo only-this\"\n")}, {"SANDRUN_DEBUG=1"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(read_file(out + "/logs/quiet.log"), "only-this\n");
}

}  // namespace
}  // namespace sandrun::testing
