// `sandrun run` as a CI pipeline: needs, retries, allow_failure, fail_fast, selection and
// sharding, and memory admission, end to end through the CLI with real containers.
#include <signal.h>

#include <algorithm>

#include "sandbox/sys/fs.h"
#include "tests/runner/cli_fixture.h"

namespace sandrun::testing {
namespace {

using namespace std::chrono_literals;

class GraphTest : public CliTest {
 protected:
  // The jobs that ran: those with a log file.
  std::vector<std::string> ran() {
    std::vector<std::string> out;
    for (const auto& f : dir_entries(tmp_ / ".sandrun/logs")) out.push_back(f.substr(0, f.size() - 4));
    std::sort(out.begin(), out.end());
    return out;
  }
  // The summary row of a job: its line of the table, from the job name on.
  static std::string row(const std::string& out, const std::string& job) {
    for (size_t pos = 0; (pos = out.find("\n" + job + " ", pos)) != std::string::npos; ++pos) {
      size_t end = out.find('\n', pos + 1);
      std::string line = out.substr(pos + 1, end - pos - 1);
      if (line.find("passed") != std::string::npos || line.find("failed") != std::string::npos ||
          line.find("skipped") != std::string::npos || line.find("cancelled") != std::string::npos ||
          line.find("not started") != std::string::npos)
        return line;
    }
    return "";
  }
};

TEST_F(GraphTest, ASixJobGraphWithAFailureInTheMiddleRunsSkipsAndReportsAsSpecified) {
  std::string shared = tmp_ / "shared";
  ASSERT_TRUE(fs::mkdirs(shared));
  give_to_checkout_owner(shared);
  auto r = sandrun({"run", jobs(fmt::format(R"toml(
[defaults]
volumes = ["{}:/shared"]

[jobs.build]
run = "sleep 0.3; echo built > /shared/build"

[jobs.lint]
needs = ["build"]
run = "test -f /shared/build && echo lint-ok"

[jobs.unit]
needs = ["build"]
run = "test -f /shared/build && echo unit-fails && exit 4"

[jobs.integration]
needs = ["unit"]
run = "echo never"

[jobs.package]
needs = ["lint", "integration"]
run = "echo never"

[jobs.docs]
needs = ["build"]
run = "test -f /shared/build && echo docs-ok"
)toml", shared))});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(row(r.out, "build").find("passed"), std::string::npos) << r.out;
  EXPECT_NE(row(r.out, "lint").find("passed"), std::string::npos) << r.out;
  EXPECT_NE(row(r.out, "unit").find("failed: exit 4"), std::string::npos) << r.out;
  EXPECT_NE(row(r.out, "integration").find("skipped (needs unit)"), std::string::npos) << r.out;
  EXPECT_NE(row(r.out, "package").find("skipped (needs integration)"), std::string::npos) << r.out;
  EXPECT_NE(row(r.out, "docs").find("passed"), std::string::npos) << r.out;
  EXPECT_EQ(ran(), (std::vector<std::string>{"build", "docs", "lint", "unit"}));
  EXPECT_EQ(log("lint"), "lint-ok\n");
  EXPECT_EQ(log("unit"), "unit-fails\n");
  expect_nothing_left();
}

TEST_F(GraphTest, AFailedAttemptRunsAgainInAFreshContainerUntilItPasses) {
  std::string shared = tmp_ / "shared";
  ASSERT_TRUE(fs::mkdirs(shared));
  give_to_checkout_owner(shared);
  // Each attempt counts itself; the first two fail. Each must see a pristine root.
  auto r = sandrun({"run", jobs(fmt::format(R"toml(
[jobs.flaky]
volumes = ["{}:/s"]
retries = 2
run = "test ! -e /dirty || echo dirty; touch /dirty; n=$(( $(cat /s/n 2>/dev/null || echo 0) + 1 )); echo $n > /s/n; echo attempt $n; test $n -ge 3"
)toml", shared))});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_EQ(read_file(shared + "/n"), "3\n");
  EXPECT_EQ(log("flaky"), "attempt 1\nattempt 2\nattempt 3\n");  // one log, every attempt
  EXPECT_NE(row(r.out, "flaky").find("passed"), std::string::npos) << r.out;
  EXPECT_NE(row(r.out, "flaky").find("3/3"), std::string::npos) << r.out;
  expect_nothing_left();
}

TEST_F(GraphTest, RetriesStopAtTheLimitAndTheLastAttemptIsReported) {
  auto r = sandrun({"run", jobs("[jobs.broken]\nretries = 1\nrun = \"echo try; exit 7\"\n")});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(log("broken"), "try\ntry\n");
  EXPECT_NE(row(r.out, "broken").find("failed: exit 7"), std::string::npos) << r.out;
}

TEST_F(GraphTest, AnAllowedFailureNeitherFailsTheRunNorSkipsItsDependants) {
  auto r = sandrun({"run", jobs(R"toml(
[jobs.experimental]
allow_failure = true
run = "exit 3"
[jobs.after]
needs = ["experimental"]
run = "echo ran"
)toml")});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(row(r.out, "experimental").find("failed: exit 3"), std::string::npos) << r.out;
  EXPECT_NE(row(r.out, "experimental").find("allowed"), std::string::npos) << r.out;
  EXPECT_EQ(log("after"), "ran\n");
}

TEST_F(GraphTest, FailFastCancelsRunningJobsAndStartsNoMore) {
  auto r = sandrun({"run", "-j", "2", jobs(R"toml(
fail_fast = true
[jobs.slow]
run = "sleep 86395"
[jobs.bad]
run = "sleep 0.5; exit 1"
[jobs.later]
run = "echo never"
)toml")});
  EXPECT_EQ(r.status, 1);
  EXPECT_LT(r.elapsed, 20s);  // not the day-long sleep of `slow`: it is cancelled
  EXPECT_NE(row(r.out, "bad").find("failed: exit 1"), std::string::npos) << r.out;
  EXPECT_NE(row(r.out, "slow").find("cancelled"), std::string::npos) << r.out;
  EXPECT_NE(row(r.out, "later").find("not started"), std::string::npos) << r.out;
  expect_nothing_left({{"sleep", "86395"}});
}

TEST_F(GraphTest, NamedJobsRunWithWhatTheyNeedAndNothingElse) {
  std::string file = jobs(R"toml(
[jobs.build]
run = "true"
[jobs.test]
needs = ["build"]
run = "true"
[jobs.lint]
run = "true"
)toml");
  auto r = sandrun({"run", file, "test"});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(ran(), (std::vector<std::string>{"build", "test"}));
  r = sandrun({"run", file, "tset"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("tset"), std::string::npos) << r.err;
}

TEST_F(GraphTest, ShardsOfAMatrixAreDisjointAndCoverEveryJob) {
  std::string file = jobs(R"toml(
[jobs.unit]
matrix = { n = [1, 2, 3, 4, 5] }
run = "echo ${{ matrix.n }}"
)toml");
  std::vector<std::string> all;
  for (int i = 1; i <= 3; ++i) {
    std::string out = tmp_ / fmt::format("out{}", i);
    auto r = sandrun({"run", "--out", out, "--shard", fmt::format("{}/3", i), file});
    ASSERT_EQ(r.status, 0) << r.err;
    for (const auto& f : dir_entries(out + "/logs")) all.push_back(f);
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<std::string>{"unit (n=1).log", "unit (n=2).log", "unit (n=3).log", "unit (n=4).log",
                                           "unit (n=5).log"}));
}

TEST_F(GraphTest, AJobLargerThanTheHostsMemoryIsRefusedUpFront) {
  auto r = sandrun({"run", jobs("[jobs.huge]\nmemory = \"100TiB\"\nrun = \"true\"\n")});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("sandrun: job \"huge\": memory = 100 TiB is more than this host's available memory"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(ran().empty());
  // With -j N there is no memory admission: the limit is only a limit.
  r = sandrun({"run", "-j", "2", jobs("[jobs.huge]\nmemory = \"100TiB\"\nrun = \"true\"\n")});
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST_F(GraphTest, ArtifactsOfAJobFileAreCollectedForFailingJobsAndMatrixNames) {
  auto r = sandrun({"run", jobs(R"toml(
[jobs.unit]
matrix = { cc = ["gcc", "clang"] }
workdir = "/src"
artifacts = ["build/*.log", "test-results/**/*.xml"]
run = """
mkdir -p build/obj test-results/a/b
echo ${{ matrix.cc }} > build/compile.log
echo skip > build/obj/x.o
echo '<testsuite/>' > test-results/a/b/r.xml
exit 1
"""
[jobs.packed]
artifacts = ["/tmp/out/*"]
artifacts_archive = true
artifacts_when = "on_success"
run = "mkdir /tmp/out; echo one > /tmp/out/1.txt"
)toml")});
  EXPECT_EQ(r.status, 1) << r.err;
  const std::string art = tmp_ / ".sandrun/artifacts";
  EXPECT_EQ(read_file(art + "/unit (cc=gcc)/build/compile.log"), "gcc\n");
  EXPECT_EQ(read_file(art + "/unit (cc=clang)/build/compile.log"), "clang\n");
  EXPECT_EQ(read_file(art + "/unit (cc=gcc)/test-results/a/b/r.xml"), "<testsuite/>\n");
  EXPECT_FALSE(fs::exists(art + "/unit (cc=gcc)/build/obj"));
  EXPECT_TRUE(fs::exists(art + "/packed.tar.zst"));
  expect_nothing_left();
}

}  // namespace
}  // namespace sandrun::testing
