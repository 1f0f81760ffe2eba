// A job with services: its network namespace, services, ready checks, the job, the teardown.
#include "runner/engine/pod.h"

#include <signal.h>

#include "runner/net/outbound.h"
#include "runner/engine/runner.h"
#include "runner/report/summary.h"
#include "sandbox/cgroup.h"
#include "sandbox/netns.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {
namespace {

// "SANDRUN_PORT_REDIS_6379": the variable that tells the job where a service's port went.
std::string port_variable(const PublishedPort& p) {
  std::string name = "SANDRUN_PORT_";
  for (char c : p.service) name += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(c)) : '_';
  return fmt::format("{}_{}", name, p.container_port);
}

}  // namespace

Pod::Pod(Runner& runner, const JobPlan& plan, size_t index, unsigned attempt)
    : runner_(runner), plan_(plan), index_(index), attempt_(attempt) {
  result_.name = plan_.name;
  result_.index = index;
  result_.attempt = attempt;
  result_.max_attempts = 1 + plan_.retries;
}

Pod::~Pod() = default;

// A container of the pod: in the job's namespace, with the job's /etc/hosts.
Job& Pod::make(const JobPlan& plan, ConsoleMode mode, bool append_log, std::vector<std::string> env) {
  ContainerStart start;
  start.netns_fd = netns_.get();
  start.env = std::move(env);
  start.caches = plan.caches;
  start.etc_files.emplace_back("hosts", hosts());
  if (outbound_.running())
    start.etc_files.emplace_back("resolv.conf", fmt::format("nameserver {}\n", OutboundAddresses::dns));
  JobOutput out(plan.name, index_, mode, mode == ConsoleMode::none ? nullptr : runner_.events());
  if (auto log = runner_.log_path(plan.file_name); !log.empty()) out.set_log(log, append_log);
  out.set_log_max(plan.log_max);
  return *jobs_.emplace_back(std::make_unique<Job>(runner_, plan, std::move(out), attempt_, std::move(start)));
}

// Every service by name, and the job's own host name, on the namespace's loopback.
std::string Pod::hosts() const {
  std::string names;
  for (const auto& s : plan_.services) names += " " + s.plan.spec().hostname;
  return fmt::format("127.0.0.1\tlocalhost {}{}\n::1\tlocalhost ip6-localhost ip6-loopback\n", plan_.spec().hostname,
                     names);
}

void Pod::start() {
  // Making a network namespace can wait for the kernel's namespace locks (others are being torn
  // down): on the threadpool, like every blocking step.
  auto ns = std::make_shared<std::optional<Result<UniqueFd>>>();
  creating_netns_ = true;
  blocking_ = run_blocking(
      runner_.engine().loop(), [ns](const std::atomic<bool>&) { ns->emplace(sandbox::create_netns()); },
      [this, ns] {
        creating_netns_ = false;
        if (stopping_) {  // cancelled meanwhile
          maybe_done();
          return;
        }
        if (!**ns) {
          fail((*ns)->error().wrap("set up the job's network").render(), {});
          return;
        }
        netns_ = std::move(***ns);
        namespace_ready();
      });
}

void Pod::namespace_ready() {
  if (auto r = open_ports(plan_.ports, ""); !r) {
    fail(r.error().render(), {});
    return;
  }
  if (plan_.network == config::Network::private_) {
    start_outbound();
    return;
  }
  start_services();
}

// network = "private": outbound access through pasta or slirp4netns, started on the
// threadpool (it waits for the namespace's route); without either the network stays isolated.
void Pod::start_outbound() {
  auto stack = find_outbound_stack();
  if (!stack) {
    note("network = \"private\": neither pasta (Debian package passt) nor slirp4netns is installed, so this job "
         "has no outbound access");
    start_services();
    return;
  }
  // pasta outlives a SIGKILLed sandrun: the next run's sweep finds it by this file
  // (sweep_outbound_stacks), named after this run (pid-starttime) so it knows when we are gone.
  const std::string dir = runner_.engine().state_root() + "/outbound";
  if (auto r = fs::mkdirs(dir); !r) log::warn("{}", r.error().message());
  OutboundOptions o;
  o.stack = stack;
  o.pid_file = fmt::format("{}/{}.{}.{}.pid", dir, sandbox::cgroup::run_id(), index_, attempt_);
  auto result = std::make_shared<std::optional<Result<Outbound>>>();
  starting_outbound_ = true;
  blocking_ = run_blocking(
      runner_.engine().loop(),
      [netns = netns_.get(), o, result](const std::atomic<bool>&) { result->emplace(Outbound::start(netns, o)); },
      [this, result] {
        starting_outbound_ = false;
        if (!**result) {
          fail((*result)->error().wrap("network = \"private\": start its outbound access").render(), {});
          return;
        }
        outbound_ = std::move(***result);
        if (stopping_) {
          maybe_done();
          return;
        }
        start_services();
      });
}

void Pod::start_services() {
  for (size_t i = 0; i < plan_.services.size(); ++i) {
    auto svc = std::make_unique<Service>();
    svc->pod = this;
    svc->index = i;
    svc->plan = &plan_.services[i];
    services_.push_back(std::move(svc));
  }
  for (size_t i = 0; i < services_.size() && !failed_; ++i) start_service(i);
  maybe_start_job();
}

void Pod::start_service(size_t i) {
  Service& s = *services_[i];
  if (auto r = open_ports(s.plan->plan.ports, s.plan->plan.name); !r) {
    fail(r.error().render(), {});
    return;
  }
  if (auto* ev = runner_.events()) ev->service_state(index_, s.plan->plan.name, "starting");
  s.started = std::chrono::steady_clock::now();
  Job& c = make(s.plan->plan, ConsoleMode::none, attempt_ > 1, {});
  s.container = &c;
  c.on_done([this, i](Job& j) { service_ended(i, j); });
  c.start();
  if (!s.plan->ready) {
    s.ready = true;  // no check: ready once started
    if (auto* ev = runner_.events()) ev->service_state(index_, s.plan->plan.name, "ready");
    return;
  }
  check_ready(i);
}

// The check is an exec into the service's container (its namespaces, cgroup, user and
// hardening), as a health check of the daemon's is: no container of its own.
void Pod::check_ready(size_t i) {
  Service& s = *services_[i];
  if (stopping_ || s.ended || s.check) return;
  s.spent.reset();
  const auto waited = std::chrono::steady_clock::now() - s.started;
  Container& c = s.container->container();
  if (c.state() != Container::State::running) {
    // Not running yet: look again soon (an exec needs its PID 1), within the ready timeout.
    if (c.state() == Container::State::created || c.state() == Container::State::starting)
      retry_check(i, std::min<std::chrono::milliseconds>(s.plan->ready_interval, std::chrono::milliseconds(50)));
    return;
  }
  ExecRequest req;
  req.argv = s.plan->ready->spec().argv;
  ExecProcess::Hooks hooks;
  hooks.exited = [this, i] { check_ended(i); };
  s.check = std::make_unique<ExecProcess>(runner_.engine(), c, std::move(req), std::move(hooks));
  if (!s.deadline.live()) {
    uv_timer_init(runner_.engine().loop().get(), s.deadline.get());
    s.deadline.mark_live();
    s.deadline.get()->data = &s;
  }
  // A check that hangs is killed once the ready timeout has passed by an interval (at least
  // 1 s): one that ends on its own is judged by its status, as before.
  const auto grace = std::max<std::chrono::milliseconds>(s.plan->ready_interval, std::chrono::seconds(1));
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(s.plan->ready_timeout - waited) + grace;
  uv_timer_start(
      s.deadline.get(),
      [](uv_timer_t* t) {
        auto* svc = static_cast<Service*>(t->data);
        if (svc->check) svc->check->signal(SIGKILL);
      },
      static_cast<uint64_t>(std::max<int64_t>(left.count(), 1)), 0);
  s.check->start();
}

namespace {

// A ready check's end in the words of a job's status ("failed: exit 1", "failed: command not
// found", "setup failed").
std::string check_status(const ExecProcess& check) {
  JobResult r;
  const sandbox::Outcome o = check.outcome();
  using S = JobResult::Status;
  switch (o.kind) {
    case sandbox::Outcome::Kind::exited: r.status = o.code == 0 ? S::passed : S::failed; break;
    case sandbox::Outcome::Kind::signaled: r.status = S::signaled; break;
    case sandbox::Outcome::Kind::exec_failed: r.status = S::exec_failed; break;
    case sandbox::Outcome::Kind::setup_failed: r.status = S::setup_failed; break;
  }
  r.exit_code = check.exit_code();
  r.signal = o.signal;
  std::string text = status_text(r);
  if (check.start_error()) text += ": " + check.start_error()->message();
  return text;
}

}  // namespace

void Pod::check_ended(size_t i) {
  Service& s = *services_[i];
  if (s.deadline.live()) uv_timer_stop(s.deadline.get());
  s.spent = std::move(s.check);  // freed at the next check or with the pod, not in its hook
  const ExecProcess& check = *s.spent;
  if (stopping_ || s.ended) {
    maybe_done();
    return;
  }
  if (check.exit_code() == 0 && !check.start_error()) {
    s.ready = true;
    if (auto* ev = runner_.events()) ev->service_state(index_, s.plan->plan.name, "ready");
    maybe_start_job();
    return;
  }
  const auto waited = std::chrono::steady_clock::now() - s.started;
  if (waited >= s.plan->ready_timeout) {
    std::vector<std::string> tail = s.container ? s.container->output_tail() : std::vector<std::string>{};
    fail(fmt::format("service {:?} was not ready after {} (its ready check: {})", s.plan->plan.name,
                     config::format_duration(s.plan->ready_timeout), check_status(check)),
         tail);
    return;
  }
  retry_check(i, s.plan->ready_interval);
}

// One timer per service, armed again after each failed check.
void Pod::retry_check(size_t i, std::chrono::milliseconds after) {
  Service& s = *services_[i];
  if (!s.retry.live()) {
    uv_timer_init(runner_.engine().loop().get(), s.retry.get());
    s.retry.mark_live();
    s.retry.get()->data = &s;
  }
  uv_timer_start(
      s.retry.get(),
      [](uv_timer_t* t) {
        auto* svc = static_cast<Service*>(t->data);
        svc->pod->check_ready(svc->index);
      },
      static_cast<uint64_t>(after.count()), 0);
}

void Pod::service_ended(size_t i, Job& container) {
  Service& s = *services_[i];
  s.ended = true;
  if (auto* ev = runner_.events())
    ev->service_state(index_, s.plan->plan.name, stopping_ ? "stopped" : "exited: " + status_text(container.result()));
  if (!stopping_ && !s.ready) {
    fail(fmt::format("service {:?} ended before it was ready: {}", s.plan->plan.name, status_text(container.result())),
         container.output_tail());
    return;
  }
  maybe_done();
}

void Pod::maybe_start_job() {
  if (failed_ || stopping_ || job_) return;
  for (const auto& s : services_) {
    if (!s->ready) return;
  }
  // Where the services' ports went: known only now, so part of this start, not of the plan.
  std::vector<std::string> env;
  for (const auto& port : result_.ports) {
    if (!port.service.empty()) env.push_back(fmt::format("{}={}:{}", port_variable(port), port.host_ip, port.host_port));
  }
  Job& job = make(plan_, runner_.options().console, attempt_ > 1, std::move(env));
  job_ = &job;
  job.on_done([this](Job& j) { job_ended(j); });
  job.start();
  if (stop_signal_) job.stop(stop_signal_);
}

void Pod::job_ended(Job& job) {
  auto ports = std::move(result_.ports);
  result_ = job.result();
  result_.ports = std::move(ports);
  wind_down();
}

// A line from sandrun about the job, on the console (the job's own log starts with its
// container).
void Pod::note(const std::string& text) {
  if (auto* ev = runner_.events()) ev->job_note(index_, text);
}

// A service failed before the job could start: the job fails with the reason and the
// service's last lines, in its log and on the console.
void Pod::fail(const std::string& message, const std::vector<std::string>& tail) {
  if (failed_ || done_) return;
  failed_ = true;
  result_.status = JobResult::Status::setup_failed;
  result_.message = message;
  JobOutput out(plan_.name, index_, runner_.options().console, runner_.events());
  if (auto log = runner_.log_path(plan_.file_name); !log.empty()) out.set_log(log, attempt_ > 1);
  out.set_log_max(plan_.log_max);
  if (auto r = out.open_log(); !r) log::warn("{}", r.error().message());
  out.note(message);
  if (!tail.empty()) {
    out.note(fmt::format("its last {} lines:", tail.size()));
    for (const auto& line : tail) out.note("  " + line);
  }
  out.close_log();
  result_.output_tail = out.tail();
  wind_down();
}

// The job has ended (or will never start): stop every service and check, close the ports.
void Pod::wind_down() {
  stopping_ = true;
  for (auto& s : services_) {
    s->retry.close();
    if (s->container && !s->ended) s->container->kill();
    if (s->check) s->check->signal(SIGKILL);
  }
  maybe_done();
}

void Pod::maybe_done() {
  if (done_ || !stopping_) return;
  if (job_ && !job_->finished()) return;
  for (const auto& s : services_) {
    if ((s->container && !s->ended) || s->check) return;
  }
  if (starting_outbound_ || creating_netns_) return;  // they come back to maybe_done
  done_ = true;
  // The listeners close with the job: a client connecting now is refused.
  proxies_.clear();
  if (outbound_.running()) {
    // Killing the stack and waiting for its route to go blocks: on the threadpool.
    auto outbound = std::make_shared<Outbound>(std::move(outbound_));
    blocking_ = run_blocking(
        runner_.engine().loop(),
        [outbound](const std::atomic<bool>&) {
          if (auto r = outbound->stop(); !r) log::warn("{}", r.error().message());
        },
        [this] { finish(); });
    return;
  }
  finish();
}

void Pod::finish() {
  netns_.reset();
  finished_ = true;
  runner_.job_done(index_, result_);
}

void Pod::stop(int sig) {
  if (done_) return;
  if (!result_.message.empty() || failed_) return;
  stop_signal_ = sig;
  if (job_) {
    job_->stop(sig);
  } else {
    result_.status = JobResult::Status::cancelled;
    result_.message = "cancelled while its services started";
    wind_down();
  }
}

void Pod::kill() {
  if (done_) return;
  if (job_) job_->kill();
  for (auto& s : services_) {
    if (s->container && !s->ended) s->container->kill();
    if (s->check) s->check->signal(SIGKILL);
  }
}

// Listens on the host for `service`'s published ports ("" = the job's) before its container
// starts, so that the host ports are known for the events and the job's environment.
Result<void> Pod::open_ports(const std::vector<config::PortSpec>& ports, const std::string& service) {
  if (ports.empty()) return {};
  auto proxy = PortProxy::open(runner_.engine().loop().get(), netns_.get(), ports, service);
  if (!proxy) return std::move(proxy.error().wrap(fmt::format("job {:?}", plan_.name)));
  for (const PublishedPort& p : (*proxy)->published()) {
    if (auto* ev = runner_.events()) ev->port_published(index_, p);
    result_.ports.push_back(p);
  }
  proxies_.push_back(std::move(*proxy));
  return {};
}

}  // namespace sandrun::runner
