// Choosing and finishing the reports of `sandrun run`.
#include "runner/report/run_report.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "runner/report/summary.h"
#include "sandbox/sandbox.h"
#include "sandbox/sys/fs.h"

namespace sandrun::runner {
namespace {

// The live status block: asked for, or stdout is a terminal that can move its cursor.
bool use_tty(const std::string& progress) {
  if (progress == "tty") return true;
  if (progress == "plain") return false;
  const char* term = std::getenv("TERM");
  return ::isatty(STDOUT_FILENO) && !(term && std::string(term) == "dumb");
}

constexpr const char* kReserveName = "/.summary-reserve";

// Room for the final summary: its fields are a few hundred bytes a job, artifact lists more.
uint64_t reserve_bytes(size_t jobs) {
  return std::min<uint64_t>((uint64_t{256} << 10) + uint64_t{4096} * jobs, uint64_t{64} << 20);
}

// An error of writing under the output directory says which directory is full.
Error out_error(Error e, const std::string& out) {
  if (e.code() == ENOSPC || e.code() == EDQUOT)
    e.hint(fmt::format("the file system holding the output directory {} is full: free space there, or give "
                       "--out another directory", out));
  return e;
}

Result<void> preallocate(const std::string& path, uint64_t bytes) {
  auto fd = SANDRUN_TRY(fs::open_path(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600));
  const int rc = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(bytes));
  if (rc == 0) return {};
  if (rc != EOPNOTSUPP && rc != EINVAL) return Error::sys_code(rc, "preallocate {} bytes for {}", bytes, path);
  // No fallocate here: real blocks the same way.
  const std::string zeros(64 << 10, '\0');
  for (uint64_t done = 0; done < bytes; done += zeros.size())
    SANDRUN_TRY(fs::write_all(fd.get(), std::string_view(zeros).substr(0, std::min<uint64_t>(zeros.size(), bytes - done)))
                    .wrap(fmt::format("write {}", path)));
  return {};
}

}  // namespace

Result<void> reserve_summary(const std::string& out, const std::vector<JobPlan>& plans) {
  std::vector<JobResult> results(plans.size());
  for (size_t i = 0; i < plans.size(); ++i) {
    results[i].name = plans[i].name;
    results[i].index = i;
    results[i].max_attempts = 1 + plans[i].retries;
    results[i].allow_failure = plans[i].allow_failure;
  }
  const std::string reserve = out + kReserveName;
  if (auto r = preallocate(reserve, reserve_bytes(plans.size())); !r) {
    ::unlink(reserve.c_str());
    return out_error(std::move(r).error().wrap("reserve room for the run's summary.json"), out);
  }
  if (auto r = write_summary_json(out + "/summary.json", results, {}, 0, /*finished=*/false); !r)
    return out_error(std::move(r).error().wrap("write the run's summary.json"), out);
  return {};
}

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

// A run that ended early leaves no reserve behind (a finished one released it already).
RunReport::~RunReport() { ::unlink((out_ + kReserveName).c_str()); }

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
  // The file first: printing waits for the console, which a reader may have stopped.
  ::unlink((out_ + kReserveName).c_str());
  if (auto r = write_summary_json(out_ + "/summary.json", o.results, o.wall, o.interrupted_by); !r) {
    print_error(out_error(std::move(r).error().wrap("write the run's summary.json"), out_));
    ok = false;
  }
  console_write(json_ ? STDERR_FILENO : STDOUT_FILENO, "\n" + summary);
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
