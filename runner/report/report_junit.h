// `--junit FILE`: a JUnit XML report of the run (one testcase per job), with the JUnit files
// the jobs produced as artifacts merged in as more test suites.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "runner/engine/job.h"
#include "sandbox/sys/result.h"

namespace sandrun::runner {

// What the report needs of a job's plan (the plans are gone by the end of the run).
struct JunitJob {
  std::string file_name;           // the job's directory under artifacts/
  std::vector<std::string> junit;  // globs relative to it (JobPlan::junit)
};

struct JunitInput {
  std::string suite_name;     // "sandrun: jobs.toml"
  std::string artifacts_dir;  // <out>/artifacts
  std::vector<JunitJob> jobs;  // by job index
  std::chrono::system_clock::time_point started;
  std::chrono::milliseconds wall{0};
};

JunitInput junit_input(const std::string& job_file, const std::string& artifacts_dir, const std::vector<JobPlan>& plans);

struct JunitReport {
  std::string xml;
  // A merged file that is not well-formed or not JUnit ("job \"unit\": junit
  // test-results/a.xml: not well-formed XML: ..."): left out of the report.
  std::vector<std::string> warnings;
};

// <testsuites> with <testsuite name="sandrun: jobs.toml"> (a <testcase classname="sandrun"> per
// job: <failure> when it failed, <error> when its container could not be set up, <skipped>
// when it did not run or failed with allow_failure, and its output tail as <system-out>),
// then each merged suite.
// Fails only when libxml2 cannot be loaded.
Result<JunitReport> junit_report(const JunitInput& input, const std::vector<JobResult>& results);

// Writes the report to `path` (replaced atomically); the warnings go to the log.
Result<void> write_junit(const std::string& path, const JunitInput& input, const std::vector<JobResult>& results);

// `text` as valid XML 1.0 character data: bytes that are not UTF-8 become U+FFFD and
// characters XML forbids (most control characters) are removed.
std::string xml_safe(std::string_view text);

}  // namespace sandrun::runner
