// Health checks as execs: one timer per container, one check at a time, Docker's counting.
#include "runner/engine/health.h"

#include <algorithm>
#include <chrono>
#include <csignal>

#include <fmt/format.h>

#include "runner/engine/container.h"
#include "runner/engine/container_record.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {

std::string_view health_status_name(HealthStatus s) {
  switch (s) {
    case HealthStatus::starting: return "starting";
    case HealthStatus::healthy: return "healthy";
    case HealthStatus::unhealthy: return "unhealthy";
  }
  return "starting";
}

// Docker's handleProbeResult: a success resets the streak; a failure counts unless the
// container is still starting inside its start period; `retries` in a row is unhealthy.
bool HealthState::record(HealthResult result, unsigned retries, bool in_start_period) {
  const HealthStatus before = status;
  const bool ok = result.exit_code == 0;
  log.push_back(std::move(result));
  while (log.size() > kHealthLogKept) log.pop_front();
  if (ok) {
    failing_streak = 0;
    status = HealthStatus::healthy;
  } else if (!(status == HealthStatus::starting && in_start_period)) {
    ++failing_streak;
    if (failing_streak >= std::max(retries, 1u)) status = HealthStatus::unhealthy;
  }
  return status != before;
}

std::string go_duration(std::chrono::milliseconds d) {
  const int64_t ms = d.count();
  if (ms == 0) return "0s";
  if (ms < 1000) return fmt::format("{}ms", ms);
  const int64_t h = ms / 3'600'000, m = ms / 60'000 % 60, rest = ms % 60'000;
  std::string secs = rest % 1000 ? fmt::format("{}", static_cast<double>(rest) / 1000.0) : fmt::format("{}", rest / 1000);
  if (h) return fmt::format("{}h{}m{}s", h, m, secs);
  if (m) return fmt::format("{}m{}s", m, secs);
  return secs + "s";
}

struct HealthMonitor::Watch {
  HealthMonitor* owner = nullptr;
  std::string id;
  HealthCheck check;
  HealthState state;
  std::chrono::steady_clock::time_point started;
  bool active = false;                 // its container runs
  UvHandle<uv_timer_t> tick;           // the next check
  UvHandle<uv_timer_t> timeout;        // the running check's deadline
  std::unique_ptr<ExecProcess> process;  // the check running now
  HealthResult current;
  bool timed_out = false;              // the running check was killed at its deadline

  bool in_start_period() const {
    return std::chrono::steady_clock::now() - started < check.start_period;
  }
};

HealthMonitor::HealthMonitor(Loop& loop, Engine& engine, std::function<Container*(const std::string&)> running,
                             std::function<void(const std::string&, HealthStatus)> changed)
    : loop_(loop), engine_(engine), running_(std::move(running)), changed_(std::move(changed)) {
  uv_timer_init(loop_.get(), reaper_.get());
  reaper_.mark_live();
  reaper_.get()->data = this;
}

HealthMonitor::~HealthMonitor() = default;

void HealthMonitor::started(const std::string& id, const HealthCheck& check) {
  auto& slot = watches_[id];
  if (!slot) slot = std::make_unique<Watch>();
  Watch& w = *slot;
  if (w.process) discard(std::move(w.process));
  w.owner = this;
  w.id = id;
  w.check = check;
  w.state.status = HealthStatus::starting;
  w.state.failing_streak = 0;
  w.started = std::chrono::steady_clock::now();
  w.active = true;
  w.timed_out = false;
  for (UvHandle<uv_timer_t>* t : {&w.tick, &w.timeout}) {
    if (t->live()) continue;
    uv_timer_init(loop_.get(), t->get());
    t->mark_live();
    t->get()->data = &w;
  }
  arm(w);
}

// The next check after the interval (the start interval while it starts in its start period).
void HealthMonitor::arm(Watch& w) {
  if (!w.active) return;
  const bool starting = w.state.status == HealthStatus::starting && w.in_start_period();
  const auto wait = starting ? w.check.start_interval : w.check.interval;
  uv_timer_start(w.tick.get(), on_tick, static_cast<uint64_t>(std::max<int64_t>(wait.count(), 1)), 0);
}

void HealthMonitor::on_tick(uv_timer_t* t) {
  auto* w = static_cast<Watch*>(t->data);
  w->owner->run_check(*w);
}

void HealthMonitor::run_check(Watch& w) {
  if (!w.active || w.process) return;
  Container* c = running_(w.id);
  if (!c) return;
  w.current = HealthResult{};
  w.current.start_ns = now_ns();
  w.timed_out = false;
  ExecRequest req;
  req.argv = w.check.argv;
  ExecProcess::Hooks hooks;
  Watch* p = &w;
  hooks.output = [p](int, std::string_view data) {
    if (p->timed_out) return;
    std::string& out = p->current.output;
    if (out.size() < kHealthOutputMax) out.append(data.substr(0, kHealthOutputMax - out.size()));
  };
  hooks.exited = [this, p] {
    uv_timer_stop(p->timeout.get());
    std::unique_ptr<ExecProcess> done = std::move(p->process);
    const bool counted = p->timed_out || !p->active;
    HealthResult r = std::move(p->current);
    r.end_ns = now_ns();
    r.exit_code = done->exit_code();
    if (done->start_error() && r.output.empty()) r.output = done->start_error()->message();
    discard(std::move(done));
    if (counted) return arm(*p);  // its result was recorded at its deadline (or it stopped)
    check_done(*p, std::move(r));
  };
  w.process = std::make_unique<ExecProcess>(engine_, *c, std::move(req), std::move(hooks));
  uv_timer_start(w.timeout.get(), on_timeout, static_cast<uint64_t>(std::max<int64_t>(w.check.timeout.count(), 1)), 0);
  w.process->start();
}

// Docker's: the check is killed and counts as a failure (-1) at once.
void HealthMonitor::on_timeout(uv_timer_t* t) {
  auto* w = static_cast<Watch*>(t->data);
  if (!w->process) return;
  w->timed_out = true;
  w->process->signal(SIGKILL);
  HealthResult r = std::move(w->current);
  r.end_ns = now_ns();
  r.exit_code = -1;
  r.output = fmt::format("Health check exceeded timeout ({})", go_duration(w->check.timeout));
  // The next check waits for this one to end (never two at once): arm() runs on its exit.
  const bool changed = w->state.record(std::move(r), w->check.retries, w->in_start_period());
  if (changed) w->owner->changed_(w->id, w->state.status);
}

void HealthMonitor::check_done(Watch& w, HealthResult result) {
  const bool changed = w.state.record(std::move(result), w.check.retries, w.in_start_period());
  const std::string id = w.id;
  if (changed) changed_(id, w.state.status);
  if (auto it = watches_.find(id); it != watches_.end()) arm(*it->second);
}

void HealthMonitor::stopped(const std::string& id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  Watch& w = *it->second;
  // Unhealthy once its checks stop, as Docker's (container/health.go, CloseMonitorChannel):
  // a client polling for "healthy" (the Actions runner waits while it reads "starting") then
  // sees a service that exited fail, instead of waiting forever.
  if (w.active) w.state.status = HealthStatus::unhealthy;
  w.active = false;
  if (w.tick.live()) uv_timer_stop(w.tick.get());
  if (w.timeout.live()) uv_timer_stop(w.timeout.get());
  if (w.process) discard(std::move(w.process));
}

void HealthMonitor::forget(const std::string& id) {
  stopped(id);
  watches_.erase(id);
}

const HealthState* HealthMonitor::state(const std::string& id) const {
  auto it = watches_.find(id);
  return it == watches_.end() ? nullptr : &it->second->state;
}

// An ExecProcess is freed outside its own callbacks; its destructor kills and reaps one that
// still runs.
void HealthMonitor::discard(std::unique_ptr<ExecProcess> p) {
  if (!p) return;
  graveyard_.push_back(std::move(p));
  uv_timer_start(reaper_.get(), on_reap, 0, 0);
}

void HealthMonitor::on_reap(uv_timer_t* t) { static_cast<HealthMonitor*>(t->data)->graveyard_.clear(); }

}  // namespace sandrun::runner
