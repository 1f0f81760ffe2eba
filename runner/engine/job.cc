// Job: one container's life on the loop: start, stream output, time out, reap, tear down.
#include "runner/engine/job.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <linux/openat2.h>
#include <unistd.h>

#include "config/job_file.h"
#include "runner/net/port_proxy.h"
#include "runner/net/socket_factory.h"
#include "runner/engine/runner.h"
#include "runner/engine/session.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {
namespace {

// Starting a container blocks (the log file is created on disk, and the cloning thread sleeps
// while the child sets up its mounts): it runs on the threadpool, so the loop goes on
// streaming the other containers, and several containers are set up at once. The pool's
// threads live as long as the process, which is what the children's parent-death signal
// follows.
struct StartWork {
  uv_work_t req;
  Job* job;
};

// Emptying a container's writable layer can take long: it runs on the threadpool.
struct TeardownWork {
  uv_work_t req;
  Job* job;
  Slot* slot;
  std::unique_ptr<sandbox::cgroup::Group> cgroup;
  Result<void> result;
};

// Empties and removes the container's cgroup, then its writable layer.
Result<void> tear_down(const std::string& job, Slot* slot, std::unique_ptr<sandbox::cgroup::Group> cgroup) {
  if (cgroup) {
    if (auto r = cgroup->kill(); !r) log::warn("job {:?}: {}", job, r.error().message());
    if (auto r = cgroup->remove(); !r) log::warn("job {:?}: {}", job, r.error().message());
  }
  if (!slot) return {};
  return SlotPool::clear(*slot);
}

// Copying artifacts out of a held container reads and writes files: on the threadpool.
struct CollectWork {
  uv_work_t req;
  Job* job;
  pid_t pid;
  UniqueFd pidfd;  // a dup: the Sandbox's own may close while this runs (cancellation)
  std::string workdir;
  config::Artifacts spec;
  std::string dest;
  std::shared_ptr<std::atomic<bool>> cancel;
  std::optional<Result<ArtifactReport>> report;
};

// Through /proc/PID/root of the held init, the container's mounts included (workspace,
// volumes, its /tmp).
void collect(CollectWork* w) {
  auto root = open_container_root(w->pid, w->pidfd.get());
  if (!root) {
    w->report.emplace(std::move(root).error().wrap("collect artifacts"));
    return;
  }
  w->report.emplace(collect_artifacts(root->get(), w->workdir, w->spec, w->dest, w->cancel.get()));
}

// How long a holding sandrun-init may take to answer kStopAndHoldSignal before it is killed.
constexpr uint64_t kStopAndHoldGraceMs = 5000;

// /etc/NAME as a file of the container's writable layer (the slot's upper dir, emptied with
// it): it hides the image's, and goes with the container. A read-only root has no writable
// layer: it keeps the image's file.
Result<void> write_etc_file(const Slot& slot, const sandbox::SandboxSpec& spec, const std::string& name,
                            const std::string& text) {
  if (spec.hardening.read_only_rootfs) return {};
  auto upper = SANDRUN_TRY(fs::open_path(slot.upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  if (::mkdirat(upper.get(), "etc", 0755) < 0 && errno != EEXIST) return Error::sys("create {}/etc", slot.upper);
  auto etc = SANDRUN_TRY(fs::open_beneath(upper.get(), "etc", O_RDONLY | O_DIRECTORY | O_NOFOLLOW, RESOLVE_BENEATH));
  int fd = ::openat(etc.get(), name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return Error::sys("create {}/etc/{}", slot.upper, name);
  UniqueFd file(fd);
  SANDRUN_TRY(fs::write_all(fd, text).wrap(fmt::format("write the container's /etc/{}", name)));
  return {};
}

Error uv_error(int code, std::string_view what) {
  return Error::sys_code(-code, "{}", what);
}

}  // namespace

Job::Job(Runner& runner, JobPlan plan, JobOutput output, unsigned attempt)
    : runner_(runner), plan_(std::move(plan)), output_(std::move(output)) {
  result_.name = plan_.name;
  result_.index = output_.index();
  result_.attempt = attempt;
  result_.max_attempts = 1 + plan_.retries;
  if (plan_.timeout) result_.timeout = *plan_.timeout;
}

Job::~Job() = default;

void Job::start() {
  state_ = State::running;
  started_at_ = std::chrono::steady_clock::now();
  slot_ = runner_.slots().acquire(/*grow=*/true);
  if (!slot_) {
    fail_to_start(Error::msg("no container slot available under {}/slots", runner_.state_root()));
    return;
  }
  use_slot(*slot_, plan_.spec);
  plan_.spec.root_dir = runner_.slots().mount_point();
  spawning_ = true;
  auto* work = new StartWork{{}, this};
  work->req.data = work;
  int rc = uv_queue_work(
      runner_.loop(), &work->req, [](uv_work_t* req) { static_cast<StartWork*>(req->data)->job->spawn(); },
      [](uv_work_t* req, int) {
        std::unique_ptr<StartWork> w(static_cast<StartWork*>(req->data));
        w->job->spawned();
      });
  if (rc < 0) {
    delete work;
    spawn();
    spawned();
  }
}

void Job::spawn() {
  if (auto r = output_.open_log(); !r) log::warn("{}", r.error().message());
  auto started = [&]() -> Result<sandbox::Sandbox> {
    SANDRUN_TRY(SlotPool::mark_claimed(*slot_));
    caches_ = SANDRUN_TRY(acquire_caches(runner_.state_root(), plan_.caches, *slot_, plan_.spec));
    for (const auto& [name, text] : plan_.etc_files) SANDRUN_TRY(write_etc_file(*slot_, plan_.spec, name, text));
    if (plan_.use_cgroup) {
      auto group = runner_.cgroups()->create(runner_.run_id(), fmt::format("c{}", runner_.next_container_id()), plan_.limits);
      if (!group) return std::move(group.error().wrap("create the container's cgroup"));
      cgroup_ = std::move(*group);
    }
    return sandbox::Sandbox::start(plan_.spec, cgroup_.get());
  }();
  if (!started) {
    spawn_error_ = std::move(started).error();
    return;
  }
  sandbox_ = std::move(*started);
  if (auto r = SlotPool::record_pid(*slot_, sandbox_->pid()); !r) {
    log::warn("job {:?}: cannot record its pid for crash recovery: {}", plan_.name, r.error().message());
  }
}

void Job::spawned() {
  spawning_ = false;
  for (const auto& note : caches_.notes) output_.note(note);
  if (spawn_error_) {
    fail_to_start(*spawn_error_);
    return;
  }
  if (auto r = watch(); !r) {
    fail_to_start(r.error());
    return;
  }
  if (auto r = publish_ports(); !r) {
    fail_to_start(r.error());
    return;
  }
  // A cancellation that arrived while the container was starting.
  if (stop_signal_) (void)sandbox_->signal(stop_signal_);
}

Result<void> Job::publish_ports() {
  if (!plan_.spec.socket_factory || plan_.ports.empty()) return {};
  // Rootless: the proxy's inner sockets come from the container's socket factory (its init's
  // helper), asked without blocking the loop.
  auto factory = SocketFactoryClient::open(runner_.loop(), sandbox_->take_socket_factory());
  if (!factory) return std::move(factory.error().wrap(fmt::format("job {:?}", plan_.name)));
  factory_ = factory.take();
  SocketFactoryClient* client = factory_.get();
  auto proxy = PortProxy::open(runner_.loop(), [client](auto done) { client->request(std::move(done)); }, plan_.ports, "");
  if (!proxy) return std::move(proxy.error().wrap(fmt::format("job {:?}", plan_.name)));
  proxy_ = std::move(*proxy);
  for (const PublishedPort& p : proxy_->published()) {
    if (auto* ev = runner_.events()) ev->port_published(result_.index, p);
    result_.ports.push_back(p);
  }
  return {};
}

Result<void> Job::watch() {
  uv_loop_t* loop = runner_.loop();
  UniqueFd fds[3] = {sandbox_->take_stdout(), sandbox_->take_stderr(), sandbox_->take_status()};
  for (int i = 0; i < 3; ++i) {
    auto& p = pipes_[i];
    if (int rc = uv_pipe_init(loop, p.get(), 0); rc < 0) return uv_error(rc, "watch the container's pipes");
    p.mark_live();
    p.get()->data = this;
    if (int rc = uv_pipe_open(p.get(), fds[i].get()); rc < 0) return uv_error(rc, "watch the container's pipes");
    fds[i].release();  // owned by the handle now
    auto alloc = [](uv_handle_t* h, size_t, uv_buf_t* buf) {
      *buf = static_cast<Job*>(h->data)->runner_.read_buffer();
    };
    if (int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(p.get()), alloc, on_read); rc < 0)
      return uv_error(rc, "read the container's output");
    ++open_pipes_;
  }
  if (int rc = uv_poll_init(loop, pidfd_poll_.get(), sandbox_->pidfd()); rc < 0)
    return uv_error(rc, "watch the container's pidfd");
  pidfd_poll_.mark_live();
  pidfd_poll_.get()->data = this;
  if (int rc = uv_poll_start(pidfd_poll_.get(), UV_READABLE, on_pidfd); rc < 0)
    return uv_error(rc, "watch the container's pidfd");
  if (plan_.timeout) {
    uv_timer_init(loop, timer_.get());
    timer_.mark_live();
    timer_.get()->data = this;
    uv_timer_start(timer_.get(), on_timeout, static_cast<uint64_t>(plan_.timeout->count()), 0);
  }
  return {};
}

void Job::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  Job* job = static_cast<Job*>(s->data);
  if (n > 0) {
    std::string_view data(buf->base, static_cast<size_t>(n));
    if (s == reinterpret_cast<uv_stream_t*>(job->pipes_[2].get())) {
      job->status_.feed(data.data(), data.size());
      if (job->plan_.spec.hold_after_exit && !job->exit_seen_ && job->status_.exited()) job->command_exited();
    } else {
      job->output_.write(s == reinterpret_cast<uv_stream_t*>(job->pipes_[0].get()) ? 1 : 2, data);
    }
    return;
  }
  if (n == 0) return;  // EAGAIN
  // EOF (or an error, which ends the stream just the same).
  job->stream_closed(s);
}

void Job::stream_closed(uv_stream_t* s) {
  for (auto& p : pipes_) {
    if (reinterpret_cast<uv_stream_t*>(p.get()) == s) p.close();
  }
  --open_pipes_;
  maybe_exited();
}

void Job::on_pidfd(uv_poll_t* h, int, int) { static_cast<Job*>(h->data)->reap(); }

void Job::reap() {
  auto r = sandbox_->try_reap();
  if (!r) {
    log::warn("job {:?}: {}", plan_.name, r.error().message());
    return;
  }
  if (!r->has_value()) return;
  wait_status_ = **r;
  result_.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      (exit_seen_ ? command_ended_at_ : std::chrono::steady_clock::now()) - started_at_);
  // Close the poll handle (which removes the pidfd from epoll) before the pidfd itself.
  pidfd_poll_.close();
  timer_.close();
  maybe_exited();
}

void Job::on_timeout(uv_timer_t* t) {
  Job* job = static_cast<Job*>(t->data);
  if (job->wait_status_ || !job->sandbox_) return;
  if (job->plan_.spec.hold_after_exit && !job->timed_out_ && !job->exit_seen_) {
    // Keep the files for collection: init ends the command and holds (then `exited` arrives).
    job->timed_out_ = true;
    (void)job->sandbox_->signal(sandbox::kStopAndHoldSignal);
    uv_timer_start(t, on_timeout, kStopAndHoldGraceMs, 0);
    return;
  }
  job->timed_out_ = true;
  (void)job->sandbox_->signal(SIGKILL);
}

void Job::stop(int sig) {
  if (state_ != State::running || wait_status_) return;
  cancelled_ = true;
  if (exit_seen_) {
    // Held for artifacts: cancellation does not wait for them.
    if (collect_cancel_) collect_cancel_->store(true);
    (void)sandbox_->signal(SIGKILL);
    return;
  }
  if (spawning_ || !sandbox_) {
    if (stop_signal_ != SIGKILL) stop_signal_ = sig;  // sent once it runs
    return;
  }
  (void)sandbox_->signal(sig);
}

void Job::kill() { stop(SIGKILL); }

void Job::maybe_exited() {
  if (!wait_status_ || open_pipes_ > 0 || collecting_ || state_ != State::running) return;
  record_outcome();
  sandbox_.reset();
  teardown();
}

// Peak memory, CPU time and what the kernel's limits did, read before the cgroup goes.
void Job::record_usage() {
  result_.memory_limit = plan_.limits.memory;
  result_.pids_limit = plan_.limits.pids;
  if (!cgroup_) return;
  auto stats = cgroup_->stats();
  if (!stats) {
    log::warn("job {:?}: {}", plan_.name, stats.error().message());
    return;
  }
  result_.memory_peak = stats->memory_peak;
  result_.cpu_usec = stats->cpu_usec;
  result_.oom_killed = stats->oom_kills > 0;
  result_.pids_limit_hit = stats->pids_limit_hits > 0;
}

void Job::record_outcome() {
  output_.finish();
  record_usage();
  auto outcome = sandbox::interpret(plan_.spec, status_.records(), *wait_status_);
  using S = JobResult::Status;
  result_.exit_code = outcome.code;
  result_.signal = outcome.signal;
  if (outcome.kind == sandbox::Outcome::Kind::setup_failed || outcome.kind == sandbox::Outcome::Kind::exec_failed) {
    result_.status = outcome.kind == sandbox::Outcome::Kind::setup_failed ? S::setup_failed : S::exec_failed;
    result_.message = outcome.error->message();
    output_.note(outcome.error->render());
  } else if (timed_out_) {
    result_.status = S::timed_out;
    output_.note(fmt::format("timed out after {}; killed the container", config::format_duration(result_.timeout)));
  } else if (cancelled_) {
    result_.status = S::cancelled;
  } else if (result_.oom_killed && !outcome.ok()) {
    result_.status = S::oom_killed;
    output_.note(fmt::format("out of memory: the kernel killed a process at the memory limit of {}",
                             config::format_size(result_.memory_limit.value_or(0))));
  } else if (outcome.kind == sandbox::Outcome::Kind::signaled) {
    result_.status = S::signaled;
  } else {
    result_.status = outcome.code == 0 ? S::passed : S::failed;
  }
}

void Job::command_exited() {
  exit_seen_ = true;
  // The job's time is its command's: the collection that follows is not part of it.
  command_ended_at_ = std::chrono::steady_clock::now();
  timer_.close();  // the command is over; its timeout does not cover the collection
  const bool ok = sandbox::interpret(plan_.spec, status_.records(), 0).ok() && !timed_out_;
  using W = config::ArtifactsWhen;
  const W when = plan_.artifacts.when;
  const bool wanted = when == W::always || (when == W::on_success) == ok;
  int pidfd = ::fcntl(sandbox_->pidfd(), F_DUPFD_CLOEXEC, 3);
  if (cancelled_ || !wanted || pidfd < 0) {
    (void)sandbox_->signal(SIGKILL);
    return;
  }
  const std::string name = plan_.file_name.empty() ? file_name_for(plan_.name) : plan_.file_name;
  collect_cancel_ = std::make_shared<std::atomic<bool>>(false);
  auto* work = new CollectWork{{}, this, sandbox_->pid(), UniqueFd(pidfd), plan_.spec.workdir, plan_.artifacts,
                               runner_.artifacts_dir() + "/" + name, collect_cancel_, std::nullopt};
  work->req.data = work;
  collecting_ = true;
  int rc = uv_queue_work(
      runner_.loop(), &work->req, [](uv_work_t* req) { collect(static_cast<CollectWork*>(req->data)); },
      [](uv_work_t* req, int) {
        std::unique_ptr<CollectWork> w(static_cast<CollectWork*>(req->data));
        w->job->artifacts_collected(std::move(*w->report));
      });
  if (rc < 0) {
    std::unique_ptr<CollectWork> w(work);
    collect(w.get());
    artifacts_collected(std::move(*w->report));
  }
}

void Job::artifacts_collected(Result<ArtifactReport> report) {
  collecting_ = false;
  if (report) {
    if (!report->archive.empty()) {
      result_.artifacts = {report->archive.substr(report->archive.rfind('/') + 1)};
    } else {
      result_.artifacts = std::move(report->files);
    }
    result_.artifacts_bytes = report->bytes;
    result_.artifact_warnings = std::move(report->warnings);
  } else {
    result_.artifact_warnings.push_back(report.error().message());
  }
  for (const auto& w : result_.artifact_warnings) output_.note("artifacts: " + w);
  // The files are copied: now the container goes the usual way (reap, teardown).
  if (sandbox_ && !wait_status_) (void)sandbox_->signal(SIGKILL);
  maybe_exited();
}

void Job::fail_to_start(const Error& error) {
  result_.status = JobResult::Status::setup_failed;
  result_.message = error.message();
  output_.note(error.render());
  for (auto& p : pipes_) p.close();
  pidfd_poll_.close();
  timer_.close();
  open_pipes_ = 0;
  sandbox_.reset();  // kills and reaps a container that did start
  teardown();
}

void Job::teardown() {
  state_ = State::tearing_down;
  proxy_.reset();  // published ports close with the container
  factory_.reset();
  output_.close_log();
  caches_.release(plan_.spec);  // the container is gone: another one may write its caches
  if (!slot_ && !cgroup_) {
    teardown_done({});
    return;
  }
  auto* work = new TeardownWork{{}, this, slot_, std::move(cgroup_), {}};
  work->req.data = work;
  int rc = uv_queue_work(
      runner_.loop(), &work->req,
      [](uv_work_t* req) {
        auto* w = static_cast<TeardownWork*>(req->data);
        w->result = tear_down(w->job->plan_.name, w->slot, std::move(w->cgroup));
      },
      [](uv_work_t* req, int) {
        std::unique_ptr<TeardownWork> w(static_cast<TeardownWork*>(req->data));
        w->job->teardown_done(w->result);
      });
  if (rc < 0) {
    std::unique_ptr<TeardownWork> w(work);
    teardown_done(tear_down(plan_.name, slot_, std::move(w->cgroup)));
  }
}

void Job::teardown_done(const Result<void>& r) {
  if (slot_) {
    if (r) {
      runner_.slots().release(slot_);
    } else {
      log::warn("job {:?}: cannot empty its container slot {}, leaving it for `sandrun cleanup`: {}", plan_.name,
                slot_->dir, r.error().message());
      runner_.slots().discard(slot_);
    }
    slot_ = nullptr;
  }
  state_ = State::done;
  result_.output_tail = output_.tail();
  if (on_done_) {
    on_done_(*this);
    return;
  }
  runner_.job_done(result_.index, result_);
}

}  // namespace sandrun::runner
