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

}  // namespace
}  // namespace sandrun::testing
