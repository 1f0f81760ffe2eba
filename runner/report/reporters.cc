// Fanning the run's events out to the reporters.
#include "runner/report/reporters.h"

#include "runner/report/output.h"

#include <utility>

namespace sandrun::runner {
namespace {

constexpr size_t kBatchBytes = 256 * 1024;  // written before the iteration ends beyond this

}  // namespace

WriteFn console_writer() {
  return [](int fd, std::string_view data) { console_write_async(fd, data); };
}

bool OutputGate::admit() {
  const size_t backlog = backlog_ ? backlog_() : 0;
  if (behind_ && backlog <= kConsoleBacklogLow) behind_ = false;
  if (!behind_ && backlog > kConsoleBacklogHigh) behind_ = true;
  if (behind_) ++hidden_;
  return !behind_;
}

uint64_t OutputGate::take_hidden(bool at_end) {
  if (behind_ && (backlog_ ? backlog_() : 0) <= kConsoleBacklogLow) behind_ = false;
  if (behind_ && !at_end) return 0;
  return std::exchange(hidden_, 0);
}

std::string hidden_lines_text(uint64_t lines) {
  return fmt::format("{} line{} of output not shown: the console fell behind (the log files have every line)", lines,
                     lines == 1 ? "" : "s");
}

// The loop outlives the writer (its owner made it first): the handle closes with it.
BatchedWriter::~BatchedWriter() { flush(); }

void BatchedWriter::attach(Loop& loop) {
  if (check_.live()) return;
  uv_check_init(loop.get(), check_.get());
  check_.mark_live();
  check_.get()->data = this;
  uv_unref(check_.handle());
  uv_check_start(check_.get(), [](uv_check_t* c) { static_cast<BatchedWriter*>(c->data)->flush(); });
}

void BatchedWriter::write(int fd, std::string_view data) {
  if (!check_.live()) {
    flush();
    write_(fd, data);
    return;
  }
  if (pending_.empty() || pending_.back().first != fd) pending_.emplace_back(fd, std::string());
  pending_.back().second.append(data);
  bytes_ += data.size();
  if (bytes_ >= kBatchBytes) flush();
}

void BatchedWriter::flush() {
  auto batch = std::exchange(pending_, {});
  bytes_ = 0;
  for (const auto& [fd, data] : batch) write_(fd, data);
}

void BatchedWriter::detach() {
  flush();
  check_ = UvHandle<uv_check_t>();
}

void BatchedWriter::abandon() { detach(); }

void Reporters::loop_started(Loop& loop) {
  for (auto* r : list_) r->loop_started(loop);
}

void Reporters::run_started(const std::vector<const JobPlan*>& plans) {
  if (started_) return;
  started_ = true;
  job_done_.assign(plans.size(), false);
  for (auto* r : list_) r->run_started(plans);
}

void Reporters::job_queued(size_t index) {
  for (auto* r : list_) r->job_queued(index);
}

void Reporters::job_started(size_t index, unsigned attempt, unsigned max_attempts) {
  for (auto* r : list_) r->job_started(index, attempt, max_attempts);
}

void Reporters::job_output(size_t index, int stream, std::string_view line, LinePart part) {
  for (auto* r : list_) r->job_output(index, stream, line, part);
}

void Reporters::job_note(size_t index, std::string_view text) {
  for (auto* r : list_) r->job_note(index, text);
}

void Reporters::port_published(size_t index, const PublishedPort& port) {
  for (auto* r : list_) r->port_published(index, port);
}

void Reporters::service_state(size_t index, std::string_view service, std::string_view state) {
  for (auto* r : list_) r->service_state(index, service, state);
}

void Reporters::job_retrying(size_t index, const JobResult& result) {
  for (auto* r : list_) r->job_retrying(index, result);
}

void Reporters::job_finished(size_t index, const JobResult& result) {
  if (index >= job_done_.size()) job_done_.resize(index + 1, false);
  if (job_done_[index]) return;
  job_done_[index] = true;
  for (auto* r : list_) r->job_finished(index, result);
}

void Reporters::run_finished(const std::vector<JobResult>& results, int interrupted_by) {
  if (finished_) return;
  finished_ = true;
  for (auto* r : list_) r->run_finished(results, interrupted_by);
}

void Reporters::complete(const std::vector<JobResult>& results, int interrupted_by) {
  for (size_t i = 0; i < results.size(); ++i) job_finished(i, results[i]);
  run_finished(results, interrupted_by);
}

}  // namespace sandrun::runner
