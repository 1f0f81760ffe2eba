// Choosing and finishing the reports of `sandrun run`.
#include "runner/report/run_report.h"

#include <unistd.h>

#include <cstdlib>

#include "runner/report/summary.h"
#include "sandbox/sandbox.h"

namespace sandrun::runner {
namespace {

// The live status block: asked for, or stdout is a terminal that can move its cursor.
bool use_tty(const std::string& progress) {
  if (progress == "tty") return true;
  if (progress == "plain") return false;
  const char* term = std::getenv("TERM");
  return ::isatty(STDOUT_FILENO) && !(term && std::string(term) == "dumb");
}

}  // namespace

RunReport::RunReport(const RunArgs& args, const std::string& out, const std::vector<JobPlan>& plans, ConsoleStyle style)
    : args_(args), out_(out), junit_(junit_input(args.file, out + "/artifacts", plans)) {
  if (args.format == "json") {
    json_ = std::make_unique<JsonReporter>();
    reporters_.add(json_.get());
  } else {
    ConsoleOptions o;
    o.tty = use_tty(args.progress);
    o.quiet = args.quiet;
    o.style = style;
    console_ = std::make_unique<ConsoleReporter>(std::move(o));
    reporters_.add(console_.get());
  }
  std::vector<const JobPlan*> ptrs;
  for (const auto& p : plans) ptrs.push_back(&p);
  reporters_.run_started(ptrs);
}

void RunReport::abandon() {
  if (console_) console_->loop_ended();
  if (json_) json_->loop_ended();
}

bool RunReport::finish(const Outcome& o, bool color) {
  abandon();  // the loop has ended
  reporters_.complete(o.results, o.interrupted_by);
  bool ok = true;
  std::string summary = summary_table(o.results, o.wall, color && !json_);
  if (o.interrupted_by) summary += fmt::format("cancelled by {}\n", sandbox::signal_name(o.interrupted_by));
  console_write(json_ ? STDERR_FILENO : STDOUT_FILENO, "\n" + summary);
  if (auto r = write_summary_json(out_ + "/summary.json", o.results, o.wall, o.interrupted_by); !r) {
    print_error(r.error().wrap("write the run's summary.json"));
    ok = false;
  }
  if (!args_.junit.empty()) {
    junit_.wall = o.wall;
    if (auto r = write_junit(args_.junit, junit_, o.results); !r) {
      print_error(r.error());
      ok = false;
    }
  }
  return ok;
}

}  // namespace sandrun::runner
