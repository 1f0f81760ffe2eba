// The JSON event stream and summary.json.
#include "runner/report/report_json.h"

#include <ctime>

#include <nlohmann/json.hpp>

#include "runner/report/summary.h"
#include "sandbox/sandbox.h"
#include "sandbox/sys/fs.h"

namespace sandrun::runner {
namespace {

using json = nlohmann::ordered_json;  // "event" and "time" first, as written

// Compact, one line; bytes that are not UTF-8 (a job may print anything) become U+FFFD so
// that every line parses.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json event(std::string_view name) {
  json j = json::object();
  j["event"] = name;
  j["time"] = rfc3339(std::chrono::system_clock::now());
  return j;
}

json optional_number(const std::optional<uint64_t>& v, uint64_t divide = 1) {
  return v ? json(*v / divide) : json(nullptr);
}

json port_fields(const PublishedPort& p) {
  return {{"service", p.service.empty() ? json(nullptr) : json(p.service)},
          {"container_port", p.container_port},
          {"host_ip", p.host_ip},
          {"host_port", p.host_port}};
}

// The fields of a job's result, shared by job_finished, job_retrying and summary.json.
json result_fields(const JobResult& r) {
  json j = json::object();
  j["job"] = r.name;
  j["status"] = status_name(r.status);
  j["status_text"] = status_text(r);
  j["exit_code"] = r.exit_code;
  j["signal"] = r.signal ? json(sandbox::signal_name(r.signal)) : json(nullptr);
  j["oom"] = r.oom_killed;
  j["duration_ms"] = r.duration.count();
  j["peak_memory_bytes"] = optional_number(r.memory_peak);
  j["cpu_ms"] = optional_number(r.cpu_usec, 1000);
  j["attempt"] = r.attempt;
  j["max_attempts"] = r.max_attempts;
  j["allow_failure"] = r.allow_failure;
  j["skipped_because"] = r.skipped_because.empty() ? json(nullptr) : json(r.skipped_because);
  j["message"] = r.message.empty() ? json(nullptr) : json(r.message);
  j["artifacts"] = r.artifacts;
  j["artifacts_bytes"] = r.artifacts_bytes;
  j["artifact_warnings"] = r.artifact_warnings;
  j["artifacts_truncated"] = !r.artifacts_truncated.empty();
  j["artifacts_truncated_because"] = r.artifacts_truncated.empty() ? json(nullptr) : json(r.artifacts_truncated);
  json ports = json::array();
  for (const auto& p : r.ports) ports.push_back(port_fields(p));
  j["ports"] = ports;
  return j;
}

void add_totals(json& j, const std::vector<JobResult>& results, std::chrono::milliseconds wall, int interrupted_by) {
  const RunTotals t = run_totals(results);
  j["passed"] = t.passed;
  j["failed"] = t.failed;
  j["allowed_failures"] = t.allowed_failures;
  j["skipped"] = t.skipped;
  j["cancelled"] = t.cancelled;
  j["duration_ms"] = wall.count();
  j["interrupted_by"] = interrupted_by ? json(sandbox::signal_name(interrupted_by)) : json(nullptr);
}

}  // namespace

std::string_view status_name(JobResult::Status s) {
  using S = JobResult::Status;
  switch (s) {
    case S::passed: return "passed";
    case S::failed: return "failed";
    case S::signaled: return "signaled";
    case S::timed_out: return "timed_out";
    case S::oom_killed: return "oom_killed";
    case S::setup_failed: return "setup_failed";
    case S::exec_failed: return "exec_failed";
    case S::cancelled: return "cancelled";
    case S::skipped: return "skipped";
    case S::not_started: return "not_started";
  }
  return "unknown";
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ((ms % 1000) + 1000) % 1000);
}

RunTotals run_totals(const std::vector<JobResult>& results) {
  using S = JobResult::Status;
  RunTotals t;
  for (const auto& r : results) {
    if (r.ok()) {
      ++t.passed;
    } else if (r.status == S::skipped) {
      ++t.skipped;
    } else if (r.status == S::cancelled || r.status == S::not_started) {
      ++t.cancelled;
    } else if (r.counts_as_passed()) {
      ++t.allowed_failures;
    } else {
      ++t.failed;
    }
  }
  return t;
}

JsonReporter::JsonReporter(WriteFn write, OutputGate::Backlog backlog)
    : out_(std::move(write)), gate_(std::move(backlog)) {}

void JsonReporter::loop_started(Loop& loop) {
  loop_ = &loop;
  if (!names_.empty()) out_.attach(*loop_);  // without jobs no job_finished would detach it
}

void JsonReporter::loop_ended() {
  loop_ = nullptr;
  out_.abandon();
}

void JsonReporter::emit(const std::string& line) { out_.write(1, line); }

const std::string& JsonReporter::name(size_t index) const {
  static const std::string unknown;
  return index < names_.size() ? names_[index] : unknown;
}

void JsonReporter::run_started(const std::vector<const JobPlan*>& plans) {
  started_ = std::chrono::steady_clock::now();
  names_.clear();
  for (const auto* p : plans) names_.push_back(p->name);
  json j = event("run_started");
  j["jobs"] = names_;
  emit(dump(j) + "\n");
  if (loop_ && !names_.empty()) out_.attach(*loop_);
}

void JsonReporter::job_queued(size_t index) {
  json j = event("job_queued");
  j["job"] = name(index);
  emit(dump(j) + "\n");
}

void JsonReporter::job_started(size_t index, unsigned attempt, unsigned max_attempts) {
  json j = event("job_started");
  j["job"] = name(index);
  j["attempt"] = attempt;
  j["max_attempts"] = max_attempts;
  emit(dump(j) + "\n");
}

// A line, or a part of a long one: "partial" when the line goes on in the next part,
// "continued" when it is not the line's first part (each key only when true).
void JsonReporter::job_output(size_t index, int stream, std::string_view line, LinePart part) {
  if (!gate_.admit()) return;  // the reader fell behind: counted, said in "output_not_shown"
  say_hidden(/*at_end=*/false);
  json j = event("job_output");
  j["job"] = name(index);
  j["stream"] = stream == 2 ? "stderr" : "stdout";
  j["line"] = line;
  if (part.partial) j["partial"] = true;
  if (part.continued) j["continued"] = true;
  emit(dump(j) + "\n");
}

void JsonReporter::say_hidden(bool at_end) {
  if (const uint64_t n = gate_.take_hidden(at_end)) {
    json j = event("output_not_shown");
    j["lines"] = n;
    j["text"] = hidden_lines_text(n);
    emit(dump(j) + "\n");
  }
}

void JsonReporter::job_note(size_t index, std::string_view text) {
  json j = event("job_note");
  j["job"] = name(index);
  j["text"] = text;
  emit(dump(j) + "\n");
}

void JsonReporter::port_published(size_t index, const PublishedPort& port) {
  json j = event("port_published");
  j["job"] = name(index);
  j.update(port_fields(port));
  emit(dump(j) + "\n");
}

void JsonReporter::service_state(size_t index, std::string_view service, std::string_view state) {
  json j = event("service");
  j["job"] = name(index);
  j["service"] = service;
  j["state"] = state;
  emit(dump(j) + "\n");
}

void JsonReporter::job_retrying(size_t index, const JobResult& result) {
  json j = event("job_retrying");
  j.update(result_fields(result));
  j["job"] = name(index);
  emit(dump(j) + "\n");
}

void JsonReporter::job_finished(size_t index, const JobResult& result) {
  say_hidden(/*at_end=*/false);
  json j = event("job_finished");
  j.update(result_fields(result));
  j["job"] = name(index).empty() ? result.name : name(index);
  emit(dump(j) + "\n");
  if (++finished_ >= names_.size()) out_.detach();
}

void JsonReporter::run_finished(const std::vector<JobResult>& results, int interrupted_by) {
  say_hidden(/*at_end=*/true);
  json j = event("run_finished");
  add_totals(j, results, std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_),
             interrupted_by);
  emit(dump(j) + "\n");
  out_.detach();
}

Result<void> write_summary_json(const std::string& path, const std::vector<JobResult>& results,
                                std::chrono::milliseconds wall, int interrupted_by, bool finished) {
  json j = json::object();
  j["finished"] = finished;
  j["jobs"] = json::array();
  for (const auto& r : results) j["jobs"].push_back(result_fields(r));
  add_totals(j, results, wall, interrupted_by);
  return fs::write_file_atomic(path, j.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
}

}  // namespace sandrun::runner
