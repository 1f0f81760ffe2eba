// Fanning the run's events out to the reporters.
#include "runner/reporters.h"

#include "runner/output.h"

namespace sandrun::runner {

WriteFn console_writer() {
  return [](int fd, std::string_view data) { console_write(fd, data); };
}

void Reporters::loop_started(uv_loop_t* loop) {
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

void Reporters::job_output(size_t index, int stream, std::string_view line) {
  for (auto* r : list_) r->job_output(index, stream, line);
}

void Reporters::job_note(size_t index, std::string_view text) {
  for (auto* r : list_) r->job_note(index, text);
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
