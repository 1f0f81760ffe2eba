// Runner: one libuv loop running many jobs in parallel.
#include "runner/runner.h"

#include <signal.h>

#include <algorithm>

#include "sandbox/sys/log.h"

namespace sandrun::runner {
namespace {

constexpr size_t kReadBuffer = 256 * 1024;

// The cgroup run name: this process's run id plus a tag of its state dir, so that runs of
// different state dirs can be told apart under sandrun/ (and by tests running side by side).
std::string cgroup_run_name(const std::string& state_root) {
  return fmt::format("{}-{:08x}", sandbox::cgroup::run_id(), state_tag(state_root));
}

}  // namespace

uint32_t state_tag(std::string_view state_root) {
  uint32_t h = 2166136261u;  // FNV-1a: stable across builds and processes
  for (unsigned char c : state_root) h = (h ^ c) * 16777619u;
  return h;
}

Runner::Runner(RunOptions options, std::string state_root, std::vector<JobPlan> plans)
    : options_(std::move(options)), state_root_(std::move(state_root)), slots_(state_root_),
      buffer_(new char[kReadBuffer]), run_id_(cgroup_run_name(state_root_)) {
  uv_loop_init(&loop_);
  if (options_.parallel == 0) options_.parallel = 1;
  size_t index = 0;
  for (auto& plan : plans) {
    JobOutput out(plan.name, index, options_.console, options_.events);
    if (!options_.log_dir.empty()) out.set_log(options_.log_dir + "/" + plan.name + ".log");
    jobs_.push_back(std::make_unique<Job>(*this, std::move(plan), std::move(out)));
    ++index;
  }
}

Runner::~Runner() {
  // run() leaves no handle behind; a Runner that never ran still owns an initialised loop.
  jobs_.clear();
  sigint_.close();
  sigterm_.close();
  grace_.close();
  uv_run(&loop_, UV_RUN_NOWAIT);
  uv_loop_close(&loop_);
}

uv_buf_t Runner::read_buffer() { return uv_buf_init(buffer_.get(), kReadBuffer); }

Result<void> Runner::run() {
  // The slots every container of the run will use, claimed before the loop starts so that
  // starting a job never waits for the file system.
  SANDRUN_TRY(slots_.reserve(std::min(options_.parallel, jobs_.size())));
  for (auto* h : {&sigint_, &sigterm_}) {
    uv_signal_init(&loop_, h->get());
    h->mark_live();
    h->get()->data = this;
  }
  uv_signal_start(sigint_.get(), on_signal, SIGINT);
  uv_signal_start(sigterm_.get(), on_signal, SIGTERM);
  if (options_.events) options_.events->loop_started(&loop_);
  schedule();
  maybe_finish();
  uv_run(&loop_, UV_RUN_DEFAULT);
  if (options_.cgroups) {
    if (auto r = options_.cgroups->remove_run(run_id_); !r) log::warn("{}", r.error().message());
  }
  int rc = uv_loop_close(&loop_);
  if (rc != 0) return Error::msg("the event loop still had open handles at the end of the run");
  uv_loop_init(&loop_);  // keeps the destructor's cleanup valid
  return {};
}

void Runner::schedule() {
  while (!interrupted_ && active_ < options_.parallel && next_ < jobs_.size()) {
    Job& job = *jobs_[next_++];
    ++active_;
    job.start();  // may finish (and call job_done) before returning only via the threadpool
  }
}

void Runner::job_done() {
  --active_;
  schedule();
  maybe_finish();
}

void Runner::maybe_finish() {
  if (active_ > 0) return;
  if (!interrupted_ && next_ < jobs_.size()) return;
  // Every job has ended: close what keeps the loop alive.
  sigint_.close();
  sigterm_.close();
  grace_.close();
}

void Runner::on_signal(uv_signal_t* h, int signum) {
  auto* self = static_cast<Runner*>(h->data);
  if (self->interrupted_) {
    // A second signal: no more grace.
    for (auto& job : self->jobs_) job->kill();
    return;
  }
  self->cancel(signum);
}

void Runner::cancel(int sig) {
  interrupted_ = sig;
  for (auto& job : jobs_) {
    job->cancel_pending();
    job->stop(sig);
  }
  uv_timer_init(&loop_, grace_.get());
  grace_.mark_live();
  grace_.get()->data = this;
  uv_timer_start(grace_.get(), on_grace_expired, static_cast<uint64_t>(options_.stop_grace.count()), 0);
  maybe_finish();
}

void Runner::on_grace_expired(uv_timer_t* t) {
  auto* self = static_cast<Runner*>(t->data);
  for (auto& job : self->jobs_) job->kill();
}

std::vector<JobResult> Runner::results() const {
  std::vector<JobResult> out;
  for (const auto& job : jobs_) out.push_back(job->result());
  return out;
}

}  // namespace sandrun::runner
