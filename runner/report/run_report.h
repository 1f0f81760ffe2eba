// The reports of `sandrun run`: the reporters its flags ask for, attached to the run, and what
// is written at its end (the summary table, <out>/summary.json, --junit).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runner/cli/commands.h"
#include "runner/report/report_console.h"
#include "runner/report/report_json.h"
#include "runner/report/report_junit.h"
#include "runner/report/reporters.h"
#include "runner/engine/session.h"

namespace sandrun::runner {

// Before the run: <out>/summary.json as it stands (every job "not_started", "finished": false)
// and a reserve file beside it (<out>/.summary-reserve, preallocated), which finish() releases
// just before it writes the final summary: jobs filling the output directory with logs and
// artifacts cannot take the room the summary needs. An error names the output directory.
Result<void> reserve_summary(const std::string& out, const std::vector<JobPlan>& plans);

class RunReport {
 public:
  // `out` is the run's output directory; `plans` the jobs about to run (run_started is sent
  // now: they are moved into the runner next).
  RunReport(const RunArgs& args, const std::string& out, const std::vector<JobPlan>& plans, ConsoleStyle style);
  ~RunReport();
  RunReport(const RunReport&) = delete;
  RunReport& operator=(const RunReport&) = delete;

  RunEvents* events() { return &reporters_; }
  // After the run: the events the runner did not send, then the summary table (stdout; stderr
  // with --format json), summary.json and the JUnit report. False when a report could not be
  // written (the message is printed).
  bool finish(const Outcome& outcome, bool color);
  // The run did not complete (the loop failed): nothing more is reported.
  void abandon();

 private:
  RunArgs args_;
  std::string out_;
  Reporters reporters_;
  std::unique_ptr<ConsoleReporter> console_;
  std::unique_ptr<JsonReporter> json_;
  JunitInput junit_;
};

}  // namespace sandrun::runner
