// The run's report files without containers: the JSON event stream, summary.json and the
// JUnit report (checked with xmllint against tests/support/junit.xsd and read by junitparser,
// a real consumer).
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>

#include "runner/report/report_json.h"
#include "runner/report/report_junit.h"
#include "sandbox/sys/fs.h"
#include "tests/runner/report_fixture.h"
#include "tests/support/test_env.h"

namespace sandrun::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Every line of `text` parsed as JSON.
std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    EXPECT_NE(nl, std::string::npos) << "the last event has no newline";
    if (nl == std::string::npos) break;
    out.push_back(json::parse(text.substr(pos, nl - pos)));
    pos = nl + 1;
  }
  return out;
}

bool is_rfc3339_ms(const std::string& s) {
  // 2026-12-01T22:38:38.123Z
  if (s.size() != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != '.' ||
      s[23] != 'Z')
    return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22})
    if (!isdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

TEST(JsonReporterTest, EveryEventIsOneCompactJsonObjectPerLineWithItsFields) {
  Capture cap;
  runner::JsonReporter rep(cap.fn());
  auto ps = plans({"build", "unit"});
  rep.run_started(ptrs(ps));
  rep.job_queued(0);
  rep.job_started(0, 1, 2);
  rep.job_output(0, 1, "hello \"world\"");
  rep.job_output(0, 2, "oops");
  rep.job_note(0, "timed out after 1s; killed the container");
  auto first = result("build", 0, S::timed_out);
  first.max_attempts = 2;
  first.signal = 9;
  rep.job_retrying(0, first);
  auto done = result("build", 0, S::passed);
  done.attempt = 2, done.max_attempts = 2;
  done.memory_peak = 1 << 20;
  done.cpu_usec = 25'500;
  done.artifacts = {"out/a.txt"};
  done.artifacts_bytes = 12;
  rep.job_finished(0, done);
  auto skipped = result("unit", 1, S::skipped);
  skipped.skipped_because = "build";
  rep.job_finished(1, skipped);
  rep.run_finished({done, skipped}, 0);
  EXPECT_EQ(cap.err, "");
  auto ev = json_lines(cap.out);
  ASSERT_EQ(ev.size(), 10u) << cap.out;
  for (const auto& e : ev) EXPECT_TRUE(is_rfc3339_ms(e.at("time"))) << e.dump();
  EXPECT_EQ(cap.out.find("\n"), cap.out.find("}\n") + 1) << "compact: one object per line";
  EXPECT_EQ(ev[0]["event"], "run_started");
  EXPECT_EQ(ev[0]["jobs"], json({"build", "unit"}));
  EXPECT_EQ(ev[1]["event"], "job_queued");
  EXPECT_EQ(ev[1]["job"], "build");
  EXPECT_EQ(ev[2]["event"], "job_started");
  EXPECT_EQ(ev[2]["attempt"], 1);
  EXPECT_EQ(ev[2]["max_attempts"], 2);
  EXPECT_EQ(ev[3]["event"], "job_output");
  EXPECT_EQ(ev[3]["stream"], "stdout");
  EXPECT_EQ(ev[3]["line"], "hello \"world\"");
  EXPECT_EQ(ev[4]["stream"], "stderr");
  EXPECT_EQ(ev[5]["event"], "job_note");
  EXPECT_EQ(ev[5]["text"], "timed out after 1s; killed the container");
  EXPECT_EQ(ev[6]["event"], "job_retrying");
  EXPECT_EQ(ev[6]["status"], "timed_out");
  EXPECT_EQ(ev[6]["signal"], "SIGKILL");
  const json& f = ev[7];
  EXPECT_EQ(f["event"], "job_finished");
  EXPECT_EQ(f["job"], "build");
  EXPECT_EQ(f["status"], "passed");
  EXPECT_EQ(f["exit_code"], 0);
  EXPECT_TRUE(f["signal"].is_null());
  EXPECT_EQ(f["oom"], false);
  EXPECT_EQ(f["duration_ms"], 1200);
  EXPECT_EQ(f["peak_memory_bytes"], 1 << 20);
  EXPECT_EQ(f["cpu_ms"], 25);
  EXPECT_EQ(f["attempt"], 2);
  EXPECT_EQ(f["allow_failure"], false);
  EXPECT_TRUE(f["skipped_because"].is_null());
  EXPECT_TRUE(f["message"].is_null());
  EXPECT_EQ(f["artifacts"], json({"out/a.txt"}));
  EXPECT_EQ(f["artifacts_bytes"], 12);
  EXPECT_EQ(f["artifact_warnings"], json::array());
  EXPECT_EQ(f["artifacts_truncated"], false);
  EXPECT_TRUE(f["artifacts_truncated_because"].is_null());
  EXPECT_EQ(ev[8]["status"], "skipped");
  EXPECT_EQ(ev[8]["skipped_because"], "build");
  EXPECT_TRUE(ev[8]["peak_memory_bytes"].is_null());
  EXPECT_TRUE(ev[8]["cpu_ms"].is_null());
  const json& end = ev[9];
  EXPECT_EQ(end["event"], "run_finished");
  EXPECT_EQ(end["passed"], 1);
  EXPECT_EQ(end["failed"], 0);
  EXPECT_EQ(end["skipped"], 1);
  EXPECT_EQ(end["cancelled"], 0);
  EXPECT_TRUE(end["duration_ms"].is_number_integer());
  EXPECT_TRUE(end["interrupted_by"].is_null());
}

TEST(JsonReporterTest, OutputThatIsNotUtf8StillParses) {
  Capture cap;
  runner::JsonReporter rep(cap.fn());
  auto ps = plans({"bin"});
  rep.run_started(ptrs(ps));
  rep.job_output(0, 1, std::string("caf\xe9 \xff\xfe end\x01"));
  auto ev = json_lines(cap.out);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[1]["line"], "caf\xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD end\x01");
}

TEST(SummaryJsonTest, HoldsEveryJobsResultAndTheTotals) {
  TempDir tmp;
  auto bad = result("unit", 1, S::signaled);
  bad.signal = 11;
  auto allowed = result("lint", 2, S::failed, 1);
  allowed.allow_failure = true;
  ASSERT_TRUE(runner::write_summary_json(tmp / "summary.json",
                                         {result("build", 0, S::passed), bad, allowed, result("x", 3, S::not_started)},
                                         3000ms, 2));
  json j = json::parse(read_file(tmp / "summary.json"));
  ASSERT_EQ(j["jobs"].size(), 4u);
  EXPECT_EQ(j["jobs"][1]["job"], "unit");
  EXPECT_EQ(j["jobs"][1]["status"], "signaled");
  EXPECT_EQ(j["jobs"][1]["signal"], "SIGSEGV");
  EXPECT_EQ(j["jobs"][1]["status_text"], "failed: signal SIGSEGV");
  EXPECT_EQ(j["jobs"][2]["allow_failure"], true);
  EXPECT_EQ(j["passed"], 1);
  EXPECT_EQ(j["failed"], 1);
  EXPECT_EQ(j["allowed_failures"], 1);
  EXPECT_EQ(j["cancelled"], 1);
  EXPECT_EQ(j["skipped"], 0);
  EXPECT_EQ(j["duration_ms"], 3000);
  EXPECT_EQ(j["interrupted_by"], "SIGINT");
  EXPECT_EQ(j["finished"], true);
}

// xmllint's verdict on `file` against tests/support/junit.xsd ("" when valid).
std::string schema_errors(const std::string& file) {
  auto r = run_command({"xmllint", "--noout", "--schema", SANDRUN_TEST_JUNIT_XSD, file});
  return r.status == 0 ? "" : r.err + r.out;
}

// What junitparser (the Python library CI tools use) reads: per suite "name tests failures
// errors skipped", then per case "suite/case result".
std::string junitparser_view(const std::string& file) {
  static const char* script = R"py(
import sys
from junitparser import JUnitXml, Failure, Error, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
for suite in xml:
    print(suite.name, suite.tests, suite.failures, suite.errors, suite.skipped)
    for case in suite:
        kinds = [type(r).__name__ for r in case.result]
        print(" ", case.classname, case.name, ",".join(kinds) or "passed", case.time)
)py";
  auto r = run_command({"/usr/bin/python3", "-c", script, file});
  EXPECT_EQ(r.status, 0) << r.err;
  return r.out;
}

bool tools_present() {
  return run_command({"xmllint", "--version"}).status == 0 &&
         run_command({"/usr/bin/python3", "-c", "import junitparser"}).status == 0;
}

runner::JunitInput junit_in(const std::vector<JobPlan>& ps, const std::string& artifacts) {
  auto in = runner::junit_input("/src/ci/jobs.toml", artifacts, ps);
  in.wall = 4500ms;
  return in;
}

TEST(JunitTest, TheReportIsValidJUnitWithATestcasePerJob) {
  SANDRUN_REQUIRE(tools_present(), "needs xmllint (libxml2-utils) and python3-junitparser");
  TempDir tmp;
  auto ps = plans({"build", "unit", "setup", "lint", "deploy", "late"});
  auto bad = result("unit", 1, S::failed, 3);
  bad.output_tail = {"expected <4> & got \"5\"", std::string("bell\x07 and \xff byte")};
  auto setup = result("setup", 2, S::setup_failed);
  setup.message = "sandbox setup failed: mount overlay on /x: Invalid argument";
  auto allowed = result("lint", 3, S::failed, 1);
  allowed.allow_failure = true;
  auto skipped = result("deploy", 4, S::skipped);
  skipped.skipped_because = "unit";
  std::vector<JobResult> results = {result("build", 0, S::passed), bad, setup, allowed, skipped,
                                    result("late", 5, S::not_started)};
  auto loaded = runner::junit_report(junit_in(ps, tmp / "artifacts"), results);
  ASSERT_TRUE(loaded) << loaded.error().message();
  auto& report = *loaded;
  EXPECT_EQ(report.warnings, std::vector<std::string>{});
  write_file(tmp / "junit.xml", report.xml);
  EXPECT_EQ(schema_errors(tmp / "junit.xml"), "") << report.xml;
  EXPECT_EQ(junitparser_view(tmp / "junit.xml"),
            "sandrun: jobs.toml 6 1 1 3\n"
            "  sandrun build passed 1.2\n"
            "  sandrun unit Failure 1.2\n"
            "  sandrun setup Error 1.2\n"
            "  sandrun lint Skipped 1.2\n"
            "  sandrun deploy Skipped 1.2\n"
            "  sandrun late Skipped 1.2\n");
  EXPECT_NE(report.xml.find("<failure message=\"failed: exit 3\" type=\"failed\"/>"), std::string::npos) << report.xml;
  EXPECT_NE(report.xml.find("<skipped message=\"skipped (needs unit)\"/>"), std::string::npos);
  EXPECT_NE(report.xml.find("<skipped message=\"failed: exit 1 (allowed)\"/>"), std::string::npos);
  EXPECT_NE(report.xml.find("<skipped message=\"not started\"/>"), std::string::npos);
  EXPECT_NE(report.xml.find("<system-out>expected &lt;4&gt; &amp; got \"5\"\nbell and \xEF\xBF\xBD byte\n</system-out>"),
            std::string::npos)
      << report.xml;
}

// An XXE entity in a job's JUnit file read no host file but left the merged report invalid
// XML (the entity reference was copied without its declaration). Entities and DTDs are dropped.
TEST(JunitTest, EntitiesAndDtdsOfAMergedFileAreDroppedAndTheReportStaysValid) {
  SANDRUN_REQUIRE(tools_present(), "needs xmllint (libxml2-utils) and python3-junitparser");
  TempDir tmp;
  write_file(tmp / "secret.txt", "HOST-SECRET-MARKER");
  auto ps = plans({"x"});
  ps[0].junit = {"*.xml"};
  const std::string art = tmp / "artifacts";
  ASSERT_TRUE(fs::mkdirs(art + "/x"));
  write_file(art + "/x/xxe.xml", fmt::format(R"(<?xml version="1.0"?>
<!DOCTYPE testsuites [<!ENTITY xxe SYSTEM "file://{}"><!ENTITY in "INNER"><!-- c -->]>
<testsuites><?pi data?><!-- a comment --><testsuite name="s&in;"><testcase classname="c&in;" name="n" time="1"><failure message="m&in;"><![CDATA[a<b&xxe;]]>&xxe;&in;&amp;&#x41;</failure></testcase></testsuite></testsuites>)",
                                             tmp / "secret.txt"));
  auto x = result("x", 0, S::passed);
  x.artifacts = {"xxe.xml"};
  auto loaded = runner::junit_report(junit_in(ps, art), {x});
  ASSERT_TRUE(loaded) << loaded.error().message();
  EXPECT_EQ(loaded->warnings, std::vector<std::string>{});
  const std::string& xml = loaded->xml;
  EXPECT_EQ(xml.find("HOST-SECRET"), std::string::npos) << xml;
  EXPECT_EQ(xml.find("INNER"), std::string::npos) << xml;
  EXPECT_EQ(xml.find("DOCTYPE"), std::string::npos) << xml;
  EXPECT_EQ(xml.find("comment"), std::string::npos) << xml;
  EXPECT_NE(xml.find("<testsuite name=\"s\" tests=\"1\" failures=\"1\" errors=\"0\" skipped=\"0\" time=\"1.000\""),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("<testcase classname=\"c\" name=\"n\" time=\"1\"><failure message=\"m\">a&lt;b&amp;xxe;&amp;A</failure>"),
            std::string::npos)
      << xml;
  write_file(tmp / "junit.xml", xml);
  auto parsed = run_command({"xmllint", "--noout", "--nonet", tmp / "junit.xml"});
  EXPECT_EQ(parsed.status, 0) << parsed.err << xml;
  EXPECT_EQ(schema_errors(tmp / "junit.xml"), "") << xml;
}

TEST(JunitTest, JUnitFilesAJobProducedAreMergedAsMoreSuitesAndBadOnesAreWarnings) {
  SANDRUN_REQUIRE(tools_present(), "needs xmllint (libxml2-utils) and python3-junitparser");
  TempDir tmp;
  auto ps = plans({"py", "go"});
  ps[0].junit = {"reports/**/*.xml"};
  ps[1].junit = {"*.xml"};
  const std::string art = tmp / "artifacts";
  ASSERT_TRUE(fs::mkdirs(art + "/py/reports/sub"));
  ASSERT_TRUE(fs::mkdirs(art + "/go"));
  // pytest's shape: <testsuites><testsuite ...> with extra attributes on the cases.
  write_file(art + "/py/reports/sub/pytest.xml", R"(<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="0" failures="1" skipped="0" tests="2" time="0.5"
 timestamp="2026-12-01T22:00:00.123456+00:00" hostname="h"><testcase classname="t.test_a" name="test_ok" file="t/test_a.py" line="3" time="0.1"/>
<testcase classname="t.test_a" name="test_bad" time="0.2"><failure message="assert 1 == 2">trace</failure></testcase></testsuite></testsuites>)");
  // A bare <testsuite> without the counts (they are counted), a testcase without its time
  // and classname (completed).
  write_file(art + "/go/go.xml", R"(<testsuite name="go"><testcase classname="pkg" name="TestA" time="0.3"><skipped/></testcase>
<testcase name="TestB"/></testsuite>)");
  write_file(art + "/go/broken.xml", "<testsuite name=\"x\"><testcase");
  write_file(art + "/go/other.xml", "<html/>");
  auto py = result("py", 0, S::failed, 1);
  py.artifacts = {"reports/sub/pytest.xml", "reports/notes.txt"};
  auto go = result("go", 1, S::passed);
  go.artifacts = {"go.xml", "broken.xml", "other.xml", "sub/not-matched.xml"};
  auto loaded = runner::junit_report(junit_in(ps, art), {py, go});
  ASSERT_TRUE(loaded) << loaded.error().message();
  auto& report = *loaded;
  ASSERT_EQ(report.warnings.size(), 2u);
  EXPECT_EQ(report.warnings[0].rfind("job \"go\": junit broken.xml: not well-formed XML: ", 0), 0u) << report.warnings[0];
  EXPECT_EQ(report.warnings[1], "job \"go\": junit other.xml: not a JUnit report (its root element is <html>)");
  write_file(tmp / "junit.xml", report.xml);
  EXPECT_EQ(schema_errors(tmp / "junit.xml"), "") << report.xml;
  EXPECT_EQ(junitparser_view(tmp / "junit.xml"),
            "sandrun: jobs.toml 2 1 0 0\n"
            "  sandrun py Failure 1.2\n"
            "  sandrun go passed 1.2\n"
            "pytest 2 1 0 0\n"
            "  t.test_a test_ok passed 0.1\n"
            "  t.test_a test_bad Failure 0.2\n"
            "go 2 0 0 1\n"
            "  pkg TestA Skipped 0.3\n"
            "  go TestB passed 0.0\n");
  EXPECT_NE(report.xml.find("<testsuites name=\"sandrun: jobs.toml\" tests=\"6\" failures=\"2\" errors=\"0\" skipped=\"1\""),
            std::string::npos)
      << report.xml;
}

TEST(JunitTest, XmlSafeReplacesBytesThatAreNotUtf8AndDropsWhatXmlForbids) {
  EXPECT_EQ(runner::xml_safe("ok\ttab\nnl"), "ok\ttab\nnl");
  EXPECT_EQ(runner::xml_safe("a\x01\x1b[31mb"), "a[31mb");
  EXPECT_EQ(runner::xml_safe("caf\xe9!"), "caf\xEF\xBF\xBD!");
  EXPECT_EQ(runner::xml_safe("\xc0\xaf"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong '/'
  EXPECT_EQ(runner::xml_safe("\xed\xa0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  EXPECT_EQ(runner::xml_safe("\xef\xbf\xbe"), "");  // U+FFFE
  EXPECT_EQ(runner::xml_safe("snow \xe2\x98\x83 \xf0\x9f\x98\x80"), "snow \xe2\x98\x83 \xf0\x9f\x98\x80");
}

}  // namespace
}  // namespace sandrun::testing
