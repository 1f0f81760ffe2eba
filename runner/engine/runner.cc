// Runner: one libuv loop running many jobs in parallel, in the order their needs allow.
#include "runner/engine/runner.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>

#include "sandbox/sys/log.h"

namespace sandrun::runner {
namespace {

// Another attempt is worth it for a job that failed by itself, not for one we stopped.
bool retryable(const JobResult& r) {
  using S = JobResult::Status;
  return r.status != S::passed && r.status != S::cancelled && r.status != S::not_started && r.status != S::skipped;
}

}  // namespace

Runner::Runner(Loop& loop, RunOptions options, std::string state_root, std::vector<JobPlan> plans)
    : loop_(loop), options_(std::move(options)), engine_(loop, std::move(state_root), options_.cgroups),
      plans_(std::move(plans)) {
  if (options_.parallel == 0) options_.parallel = 1;
  state_.assign(plans_.size(), State::waiting);
  next_attempt_.assign(plans_.size(), 1);
  results_.resize(plans_.size());
  for (size_t i = 0; i < plans_.size(); ++i) {
    auto& r = results_[i];
    r.name = plans_[i].name;
    r.index = i;
    r.max_attempts = 1 + plans_[i].retries;
    r.allow_failure = plans_[i].allow_failure;
    if (plans_[i].timeout) r.timeout = *plans_[i].timeout;
  }
}

Runner::~Runner() = default;

Result<void> Runner::run() {
  // The slots every container of the run will use, claimed before the loop starts so that
  // starting a job never waits for the file system.
  SANDRUN_TRY(engine_.slots().reserve(std::min(options_.parallel, plans_.size())));
  for (auto* h : {&sigint_, &sigterm_}) {
    uv_signal_init(loop_.get(), h->get());
    h->mark_live();
    h->get()->data = this;
  }
  uv_signal_start(sigint_.get(), on_signal, SIGINT);
  uv_signal_start(sigterm_.get(), on_signal, SIGTERM);
  if (options_.events) options_.events->loop_started(loop_);
  if (options_.events) {
    std::vector<const JobPlan*> plans;
    for (const auto& p : plans_) plans.push_back(&p);
    options_.events->run_started(plans);
  }
  update_waiting();
  schedule();
  maybe_finish();
  loop_.run();
  if (options_.cgroups) {
    if (auto r = options_.cgroups->remove_run(engine_.run_id()); !r) log::warn("{}", r.error().message());
  }
  if (options_.events) options_.events->run_finished(results_, interrupted_);
  return {};
}

// Moves waiting jobs whose needs have all ended: to the queue when they all passed, to
// skipped when one did not. Repeats until nothing changes (a skip can settle its dependants).
void Runner::update_waiting() {
  bool changed = true;
  while (changed) {
    changed = false;
    for (size_t i = 0; i < plans_.size(); ++i) {
      if (state_[i] != State::waiting) continue;
      const JobResult* blocker = nullptr;
      bool all_done = true;
      for (size_t need : plans_[i].needs) {
        if (state_[need] != State::done) {
          all_done = false;
        } else if (!results_[need].counts_as_passed() && !blocker) {
          blocker = &results_[need];
        }
      }
      if (blocker) {
        JobResult r = results_[i];
        r.status = JobResult::Status::skipped;
        r.skipped_because = blocker->name;
        r.message = fmt::format("skipped: {} did not pass", blocker->name);
        finish(i, std::move(r));
        changed = true;
      } else if (all_done && !interrupted_ && !failed_fast_) {
        state_[i] = State::queued;
        queue_.push_back(i);
        if (options_.events) options_.events->job_queued(i);
      }
    }
  }
}

bool Runner::fits(size_t index) const {
  if (options_.memory_budget == 0 || active_ == 0) return true;
  const uint64_t need = plans_[index].spec().limits.memory.value_or(0);
  return memory_in_use_ + need <= options_.memory_budget;
}

void Runner::schedule() {
  // start() can end a job at once (no slot), which re-enters schedule(): pick one job at a
  // time, never holding an iterator into the queue across start().
  while (active_ < options_.parallel && !interrupted_ && !failed_fast_) {
    // A job whose memory does not fit beside the running ones waits; a smaller one further
    // down the queue may start meanwhile.
    auto it = std::find_if(queue_.begin(), queue_.end(), [this](size_t i) { return fits(i); });
    if (it == queue_.end()) return;
    const size_t index = *it;
    queue_.erase(it);
    start(index, next_attempt_[index]);
  }
}

void Runner::start(size_t index, unsigned attempt) {
  const JobPlan& plan = plans_[index];
  state_[index] = State::running;
  ++active_;
  memory_in_use_ += plan.spec().limits.memory.value_or(0);
  if (options_.events) options_.events->job_started(index, attempt, 1 + plan.retries);
  if (plan.shared_netns) {  // services, published ports or a private network
    auto& pod = pods_.emplace_back(std::make_unique<Pod>(*this, plan, index, attempt));
    pod->start();  // ends through job_done (its namespace is made on the threadpool)
    return;
  }
  JobOutput out(plan.name, index, options_.console, options_.events);
  if (auto log = log_path(plan.file_name); !log.empty()) out.set_log(log, /*append=*/attempt > 1);
  out.set_log_max(plan.log_max);
  ContainerStart start;
  start.caches = plan.caches;
  start.ports = plan.ports;  // published through its socket factory (rootless; as root a pod does it)
  auto& job = jobs_.emplace_back(std::make_unique<Job>(*this, plan, std::move(out), attempt, std::move(start)));
  job->start();  // may end (and call job_done) before returning only via the threadpool
}

void Runner::job_done(size_t index, const JobResult& result) {
  collect_ended();
  --active_;
  memory_in_use_ -= plans_[index].spec().limits.memory.value_or(0);
  JobResult r = result;
  r.index = index;
  r.max_attempts = 1 + plans_[index].retries;
  r.allow_failure = plans_[index].allow_failure;
  if (retryable(r) && r.attempt < r.max_attempts && !interrupted_ && !failed_fast_) {
    if (options_.events) options_.events->job_retrying(index, r);
    results_[index] = r;
    state_[index] = State::queued;
    queue_.insert(queue_.begin(), index);  // first in line: it was already admitted once
    next_attempt_[index] = r.attempt + 1;
  } else {
    const bool failed = !r.counts_as_passed() && r.status != JobResult::Status::cancelled;
    finish(index, std::move(r));
    if (failed && options_.fail_fast && !failed_fast_ && !interrupted_) {
      failed_fast_ = true;
      stop_all(SIGTERM);
    }
  }
  update_waiting();
  schedule();
  maybe_finish();
}

void Runner::finish(size_t index, JobResult result) {
  using S = JobResult::Status;
  if (result.status == S::skipped || result.status == S::not_started) {
    // No container ran: a log an earlier run left under this name would mislead.
    if (auto log = log_path(plans_[index].file_name); !log.empty()) ::unlink(log.c_str());
  }
  state_[index] = State::done;
  results_[index] = std::move(result);
  if (options_.events) options_.events->job_finished(index, results_[index]);
}

void Runner::maybe_finish() {
  if (active_ > 0) return;
  if (!interrupted_ && !failed_fast_ && !queue_.empty()) return;
  // Nothing runs and nothing can start: whatever has not ended never will.
  for (size_t i = 0; i < plans_.size(); ++i) {
    if (state_[i] == State::done) continue;
    JobResult r = results_[i];
    r.status = JobResult::Status::not_started;
    r.message = failed_fast_ ? "cancelled before it started (fail_fast)" : "cancelled before it started";
    finish(i, std::move(r));
  }
  sigint_.close();
  sigterm_.close();
  grace_.close();
  reaper_.close();  // what it has not freed yet goes with the runner
}

void Runner::on_signal(uv_signal_t* h, int signum) {
  auto* self = static_cast<Runner*>(h->data);
  if (self->interrupted_) {
    // A second signal: no more grace.
    self->kill_all();
    return;
  }
  self->interrupted_ = signum;
  self->stop_all(signum);
}

// Stops every running container (SIGKILL after the grace period) and starts nothing more.
void Runner::stop_all(int sig) {
  queue_.clear();
  for (auto& job : jobs_) job->stop(sig);
  for (auto& pod : pods_) pod->stop(sig);
  if (!grace_.live()) {
    uv_timer_init(loop_.get(), grace_.get());
    grace_.mark_live();
    grace_.get()->data = this;
    uv_timer_start(grace_.get(), on_grace_expired, static_cast<uint64_t>(options_.stop_grace.count()), 0);
  }
  maybe_finish();
}

void Runner::on_grace_expired(uv_timer_t* t) { static_cast<Runner*>(t->data)->kill_all(); }

void Runner::collect_ended() {
  auto move_ended = [](auto& live, auto& ended) {
    for (auto it = live.begin(); it != live.end();) {
      if ((*it)->finished()) {
        ended.push_back(std::move(*it));
        it = live.erase(it);
      } else {
        ++it;
      }
    }
  };
  move_ended(jobs_, ended_jobs_);
  move_ended(pods_, ended_pods_);
  if (ended_jobs_.empty() && ended_pods_.empty()) return;
  if (!reaper_.live()) {
    reaper_ = UvHandle<uv_timer_t>();  // a fresh one, also after maybe_finish closed it
    uv_timer_init(loop_.get(), reaper_.get());
    reaper_.mark_live();
    reaper_.get()->data = this;
  }
  uv_timer_start(reaper_.get(), on_reap, 0, 0);
}

void Runner::on_reap(uv_timer_t* t) {
  auto* self = static_cast<Runner*>(t->data);
  self->ended_jobs_.clear();
  self->ended_pods_.clear();
}

void Runner::kill_all() {
  for (auto& job : jobs_) job->kill();
  for (auto& pod : pods_) pod->kill();
}

}  // namespace sandrun::runner
