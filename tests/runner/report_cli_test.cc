// The reports of `sandrun run` end to end: --format json, summary.json, --junit, and the
// console's plain, quiet and tty modes, through the built binary with real containers.
#include <nlohmann/json.hpp>

#include "sandbox/sys/fs.h"
#include "tests/runner/cli_fixture.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;

class ReportCliTest : public CliTest {
 protected:
  std::string two_jobs() {
    return jobs(R"toml(
[jobs.good]
run = "echo hello"
[jobs.bad]
run = "echo failing >&2; exit 3"
)toml");
  }
};

std::vector<json> events_of(const std::string& out) {
  std::vector<json> ev;
  size_t pos = 0;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    if (nl == std::string::npos) nl = out.size();
    std::string line = out.substr(pos, nl - pos);
    EXPECT_TRUE(json::accept(line)) << "not a JSON event: " << line;
    if (json::accept(line)) ev.push_back(json::parse(line));
    pos = nl + 1;
  }
  return ev;
}

const json* find(const std::vector<json>& ev, const std::string& event, const std::string& job) {
  for (const auto& e : ev) {
    if (e.value("event", "") == event && (job.empty() || e.value("job", "") == job)) return &e;
  }
  return nullptr;
}

TEST_F(ReportCliTest, JsonFormatPutsOnlyEventsOnStdoutAndTheSummaryJsonInTheOutputDir) {
  auto r = sandrun({"run", "--format", "json", two_jobs()});
  EXPECT_EQ(r.status, 1) << r.err;
  auto ev = events_of(r.out);
  ASSERT_GE(ev.size(), 2u) << r.out;
  for (const auto& e : ev) EXPECT_TRUE(e.contains("time")) << e.dump();
  EXPECT_EQ(ev.front()["event"], "run_started");
  EXPECT_EQ(ev.front()["jobs"], json({"good", "bad"}));
  for (const char* job : {"good", "bad"}) {
    const json* started = find(ev, "job_started", job);
    ASSERT_NE(started, nullptr) << job << "\n" << r.out;
    EXPECT_EQ((*started)["attempt"], 1);
    EXPECT_EQ((*started)["max_attempts"], 1);
  }
  const json* hello = find(ev, "job_output", "good");
  ASSERT_NE(hello, nullptr) << r.out;
  EXPECT_EQ((*hello)["stream"], "stdout");
  EXPECT_EQ((*hello)["line"], "hello");
  const json* failing = find(ev, "job_output", "bad");
  ASSERT_NE(failing, nullptr) << r.out;
  EXPECT_EQ((*failing)["stream"], "stderr");
  EXPECT_EQ((*failing)["line"], "failing");
  const json* good = find(ev, "job_finished", "good");
  const json* bad = find(ev, "job_finished", "bad");
  ASSERT_TRUE(good && bad) << r.out;
  EXPECT_EQ((*good)["status"], "passed");
  EXPECT_EQ((*bad)["status"], "failed");
  EXPECT_EQ((*bad)["exit_code"], 3);
  EXPECT_TRUE((*bad)["signal"].is_null());
  EXPECT_EQ((*bad)["oom"], false);
  EXPECT_TRUE((*bad)["duration_ms"].is_number_integer());
  EXPECT_EQ((*bad)["attempt"], 1);
  EXPECT_EQ((*bad)["allow_failure"], false);
  EXPECT_EQ(ev.back()["event"], "run_finished");
  EXPECT_EQ(ev.back()["passed"], 1);
  EXPECT_EQ(ev.back()["failed"], 1);
  EXPECT_TRUE(ev.back()["interrupted_by"].is_null());
  // Each job finishes once, whoever reports it.
  size_t finished = 0;
  for (const auto& e : ev) finished += e["event"] == "job_finished";
  EXPECT_EQ(finished, 2u);
  // The table goes to stderr, out of the event stream's way.
  EXPECT_NE(r.err.find("bad   failed: exit 3"), std::string::npos) << r.err;

  json summary = json::parse(read_file(tmp_ / ".sandrun/summary.json"));
  ASSERT_EQ(summary["jobs"].size(), 2u);
  EXPECT_EQ(summary["jobs"][0]["job"], "good");
  EXPECT_EQ(summary["jobs"][1]["status"], "failed");
  EXPECT_EQ(summary["jobs"][1]["exit_code"], 3);
  EXPECT_EQ(summary["passed"], 1);
  EXPECT_EQ(summary["failed"], 1);
  expect_nothing_left();
}

TEST_F(ReportCliTest, JunitReportIsValidAndCountsWhatAConsumerReads) {
  SANDRUN_REQUIRE(run_command({"xmllint", "--version"}).status == 0 &&
                      run_command({"/usr/bin/python3", "-c", "import junitparser"}).status == 0,
                  "needs xmllint (libxml2-utils) and python3-junitparser");
  const std::string report = tmp_ / "junit.xml";
  auto r = sandrun({"run", "--progress", "plain", "--junit", report, two_jobs()});
  EXPECT_EQ(r.status, 1) << r.err;
  auto valid = run_command({"xmllint", "--noout", "--schema", SANDRUN_TEST_JUNIT_XSD, report});
  EXPECT_EQ(valid.status, 0) << valid.err << read_file(report);
  auto parsed = run_command({"/usr/bin/python3", "-c", R"py(
import sys
from junitparser import JUnitXml
for suite in JUnitXml.fromfile(sys.argv[1]):
    print(suite.name, suite.tests, suite.failures, suite.errors, suite.skipped)
    for case in suite:
        print(" ", case.name, ",".join(type(x).__name__ for x in case.result) or "passed", repr(case.system_out))
)py", report});
  EXPECT_EQ(parsed.status, 0) << parsed.err;
  EXPECT_EQ(parsed.out,
            "sandrun: jobs.toml 2 1 0 0\n"
            "  good passed 'hello\\n'\n"
            "  bad Failure 'failing\\n'\n");
  EXPECT_TRUE(fs::exists(tmp_ / ".sandrun/summary.json"));
}

TEST_F(ReportCliTest, PlainProgressSaysWhenJobsStartAndHowTheyEnd) {
  auto r = sandrun({"run", "--progress", "plain", "-j", "1", two_jobs()});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("[good] hello\n"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("[good] started\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[good] passed in "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[bad]  failing\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[bad]  failed: exit 3 in "), std::string::npos) << r.err;
  // The summary repeats the failed job's last lines.
  EXPECT_NE(r.out.find("\nbad: failed: exit 3, its last line:\n  failing\n\n2 jobs: 1 passed, 1 failed in "),
            std::string::npos)
      << r.out;
}

TEST_F(ReportCliTest, QuietShowsOnlyTheOutputOfFailedJobs) {
  auto r = sandrun({"run", "--quiet", "--progress", "plain", two_jobs()});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.out.find("hello"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("[good]"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[bad]  failing\n[bad]  failed: exit 3 in "), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("2 jobs: 1 passed, 1 failed in "), std::string::npos) << r.out;
}

TEST_F(ReportCliTest, TtyProgressDrawsTheStatusBlockAndTheRunEndsCleanly) {
  auto r = sandrun({"run", "--progress", "tty", jobs(R"toml(
[jobs.slow]
run = "sleep 0.6; echo done"
[jobs.fast]
run = "echo quick"
)toml")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err.find("open handles"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("\033[J"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[slow] done\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("  slow  "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 passed, 0 failed, 1 running, 0 queued, 0 skipped\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 jobs: 2 passed, 0 failed in "), std::string::npos) << r.out;
  expect_nothing_left();
}

TEST_F(ReportCliTest, JunitFilesAJobLeavesAsArtifactsAreMergedIntoTheReport) {
  SANDRUN_REQUIRE(run_command({"xmllint", "--version"}).status == 0 &&
                      run_command({"/usr/bin/python3", "-c", "import junitparser"}).status == 0,
                  "needs xmllint (libxml2-utils) and python3-junitparser");
  const std::string report = tmp_ / "junit.xml";
  auto r = sandrun({"run", "--progress", "plain", "--junit", report, jobs(R"toml(
[jobs.pytest]
workdir = "/src"
artifacts = ["test-results/*.xml"]
junit = ["test-results/*.xml"]
run = """
mkdir -p test-results
echo '<testsuites><testsuite name="inner" tests="2" failures="1" errors="0" skipped="0" time="0.1" timestamp="2026-12-01T00:00:00"><testcase classname="m" name="a" time="0.05"/><testcase classname="m" name="b" time="0.05"><failure message="boom">trace</failure></testcase></testsuite></testsuites>' > test-results/r.xml
printf '<oops' > test-results/bad.xml
exit 1
"""
)toml")});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("sandrun: warning: job \"pytest\": junit test-results/bad.xml: not well-formed XML: "),
            std::string::npos)
      << r.err;
  auto valid = run_command({"xmllint", "--noout", "--schema", SANDRUN_TEST_JUNIT_XSD, report});
  EXPECT_EQ(valid.status, 0) << valid.err << read_file(report);
  auto parsed = run_command({"/usr/bin/python3", "-c", R"py(
import sys
from junitparser import JUnitXml
for suite in JUnitXml.fromfile(sys.argv[1]):
    print(suite.name, suite.tests, suite.failures, suite.errors, suite.skipped)
    for case in suite:
        print(" ", case.classname, case.name, ",".join(type(x).__name__ for x in case.result) or "passed")
)py", report});
  EXPECT_EQ(parsed.status, 0) << parsed.err;
  EXPECT_EQ(parsed.out,
            "sandrun: jobs.toml 1 1 0 0\n"
            "  sandrun pytest Failure\n"
            "inner 2 1 0 0\n"
            "  m a passed\n"
            "  m b Failure\n");
}

// A pipeline with a retried job, an allowed failure, a failure and a job skipped for it.
class PipelineReportTest : public ReportCliTest {
 protected:
  std::string pipeline() {
    const std::string shared = tmp_ / "shared";
    EXPECT_TRUE(fs::mkdirs(shared));
    give_to_checkout_owner(shared);  // a volume the job writes: not root's (see test_env.h)
    return jobs(R"toml(
[jobs.flaky]
volumes = [")toml" + shared + R"toml(:/s"]
retries = 1
run = "n=$(( $(cat /s/n 2>/dev/null || echo 0) + 1 )); echo $n > /s/n; echo attempt $n; test $n -ge 2"
[jobs.experimental]
allow_failure = true
run = "echo trying; exit 3"
[jobs.broken]
run = "echo broke >&2; exit 5"
[jobs.after]
needs = ["broken"]
run = "echo never"
)toml");
  }
};

TEST_F(PipelineReportTest, RetriesSkipsAndAllowedFailuresInTheEventsTheSummaryAndJunit) {
  SANDRUN_REQUIRE(run_command({"/usr/bin/python3", "-c", "import junitparser"}).status == 0,
                  "needs python3-junitparser");
  const std::string report = tmp_ / "junit.xml";
  auto r = sandrun({"run", "--format", "json", "--junit", report, pipeline()});
  EXPECT_EQ(r.status, 1) << r.err;
  auto ev = events_of(r.out);
  const json* retrying = find(ev, "job_retrying", "flaky");
  ASSERT_NE(retrying, nullptr) << r.out;
  EXPECT_EQ((*retrying)["attempt"], 1);
  EXPECT_EQ((*retrying)["status"], "failed");
  EXPECT_EQ((*retrying)["exit_code"], 1);
  size_t flaky_starts = 0;
  for (const auto& e : ev) {
    if (e["event"] == "job_started" && e["job"] == "flaky") {
      EXPECT_EQ(e["attempt"], ++flaky_starts);
      EXPECT_EQ(e["max_attempts"], 2);
    }
  }
  EXPECT_EQ(flaky_starts, 2u);
  const json* flaky = find(ev, "job_finished", "flaky");
  ASSERT_NE(flaky, nullptr);
  EXPECT_EQ((*flaky)["status"], "passed");
  EXPECT_EQ((*flaky)["attempt"], 2);
  const json* experimental = find(ev, "job_finished", "experimental");
  ASSERT_NE(experimental, nullptr);
  EXPECT_EQ((*experimental)["status"], "failed");
  EXPECT_EQ((*experimental)["allow_failure"], true);
  const json* after = find(ev, "job_finished", "after");
  ASSERT_NE(after, nullptr);
  EXPECT_EQ((*after)["status"], "skipped");
  EXPECT_EQ((*after)["skipped_because"], "broken");
  EXPECT_EQ(find(ev, "job_queued", "after"), nullptr) << "its need failed: never queued";
  const json& end = ev.back();
  EXPECT_EQ(end["event"], "run_finished");
  EXPECT_EQ(end["passed"], 1);
  EXPECT_EQ(end["failed"], 1);
  EXPECT_EQ(end["allowed_failures"], 1);
  EXPECT_EQ(end["skipped"], 1);

  EXPECT_NE(r.err.find("flaky         passed (attempt 2/2)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("experimental  failed: exit 3 (allowed)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("after         skipped (needs broken)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\nbroken: failed: exit 5, its last line:\n  broke\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("4 jobs: 1 passed, 2 failed (1 allowed), 1 skipped in "), std::string::npos) << r.err;

  auto parsed = run_command({"/usr/bin/python3", "-c", R"py(
import sys
from junitparser import JUnitXml
for suite in JUnitXml.fromfile(sys.argv[1]):
    print(suite.name, suite.tests, suite.failures, suite.errors, suite.skipped)
    for case in suite:
        print(" ", case.name, ",".join(type(x).__name__ + ": " + (x.message or "") for x in case.result) or "passed")
)py", report});
  EXPECT_EQ(parsed.status, 0) << parsed.err;
  EXPECT_EQ(parsed.out,
            "sandrun: jobs.toml 4 1 0 2\n"
            "  flaky passed\n"
            "  experimental Skipped: failed: exit 3 (allowed)\n"
            "  broken Failure: failed: exit 5\n"
            "  after Skipped: skipped (needs broken)\n");
}

TEST_F(PipelineReportTest, PlainProgressSaysWhenAJobIsRetriedOrSkipped) {
  auto r = sandrun({"run", "--progress", "plain", "-j", "1", pipeline()});
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find("[flaky]        retrying (attempt 2 of 2): failed: exit 1\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[flaky]        started (attempt 2 of 2)\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[flaky]        passed (attempt 2/2) in "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[experimental] failed: exit 3 (allowed) in "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[after]        skipped (needs broken)\n"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("[flaky]        attempt 1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[flaky]        attempt 2\n"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace sandrun::testing
