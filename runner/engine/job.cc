// Job: a container plus its timeout, its artifacts and its result.
#include "runner/engine/job.h"

#include <fcntl.h>
#include <signal.h>

#include "config/job_file.h"
#include "runner/engine/runner.h"
#include "sandbox/proc.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {
namespace {

// How long a holding sandrun-init may take to answer kStopAndHoldSignal before it is killed.
constexpr uint64_t kStopAndHoldGraceMs = 5000;

}  // namespace

Job::Job(Runner& runner, const JobPlan& plan, JobOutput output, unsigned attempt, ContainerStart start)
    : runner_(runner),
      plan_(plan),
      container_(runner.engine(), plan.container, std::move(start), std::move(output),
                 Container::Hooks{
                     .command_exited = [this] { command_exited(); },
                     .port_published =
                         [this](const PublishedPort& p) {
                           if (auto* ev = runner_.events()) ev->port_published(result_.index, p);
                           result_.ports.push_back(p);
                         },
                     .exited = [this] { exited(); },
                     .removed = [this] { removed(); },
                 }) {
  result_.name = plan_.name;
  result_.index = container_.output().index();
  result_.attempt = attempt;
  result_.max_attempts = 1 + plan_.retries;
  if (plan_.timeout) result_.timeout = *plan_.timeout;
}

Job::~Job() = default;

void Job::start() {
  container_.start();
  if (plan_.timeout && container_.state() == Container::State::starting) {
    uv_timer_init(runner_.engine().loop().get(), timer_.get());
    timer_.mark_live();
    timer_.get()->data = this;
    uv_timer_start(timer_.get(), on_timeout, static_cast<uint64_t>(plan_.timeout->count()), 0);
  }
}

void Job::on_timeout(uv_timer_t* t) {
  Job* job = static_cast<Job*>(t->data);
  const auto state = job->container_.state();
  if (state == Container::State::exited || state == Container::State::removed) return;
  if (job->container_.plan().hold_after_exit && !job->timed_out_) {
    // Keep the files for collection: init ends the command and holds (then `exited` arrives).
    job->timed_out_ = true;
    job->container_.stop(sandbox::kStopAndHoldSignal);
    uv_timer_start(t, on_timeout, kStopAndHoldGraceMs, 0);
    return;
  }
  job->timed_out_ = true;
  job->container_.kill();
}

void Job::stop(int sig) {
  const auto state = container_.state();
  if (state == Container::State::exited || state == Container::State::removed) return;
  cancelled_ = true;
  if (command_done_) {
    // Held for artifacts: cancellation does not wait for them.
    collect_.interrupt();
    container_.kill();
    return;
  }
  container_.stop(sig);
}

void Job::kill() { stop(SIGKILL); }

void Job::command_exited() {
  command_done_ = true;
  // The job's time is its command's: the collection that follows is not part of it.
  result_.duration = container_.duration();
  timer_.close();  // the command is over; its timeout does not cover the collection
  const bool ok = container_.outcome().ok() && !timed_out_;
  using W = config::ArtifactsWhen;
  const W when = plan_.artifacts.when;
  const bool wanted = !runner_.artifacts_dir().empty() && (when == W::always || (when == W::on_success) == ok);
  int pidfd = ::fcntl(container_.pidfd(), F_DUPFD_CLOEXEC, 3);
  if (cancelled_ || !wanted || pidfd < 0) {
    if (pidfd >= 0) ::close(pidfd);
    container_.kill();
    return;
  }
  // Copying out of the held container reads and writes files: on the threadpool, through
  // /proc/PID/root of its init, the container's mounts included (workspace, volumes, /tmp).
  // The pidfd is a dup: the container's own may close while this runs (cancellation).
  struct Collect {
    pid_t pid;
    UniqueFd pidfd;
    std::string workdir;
    config::Artifacts spec;
    std::string dest;
  };
  auto work = std::make_shared<Collect>(Collect{container_.pid(), UniqueFd(pidfd), container_.plan().workdir,
                                                plan_.artifacts, runner_.artifacts_dir() + "/" + plan_.file_name});
  collect_ = run_blocking(
      runner_.engine().loop(),
      [this, work](const std::atomic<bool>& cancelled) {
        auto root = sandbox::open_container_root(work->pid, work->pidfd.get());
        if (!root) {
          collected_.emplace(std::move(root).error().wrap("collect artifacts"));
          return;
        }
        collected_.emplace(collect_artifacts(root->get(), work->workdir, work->spec, work->dest, &cancelled));
      },
      [this] {
        auto report = collected_ ? std::move(*collected_) : Result<ArtifactReport>(Error::msg("collect artifacts: cancelled"));
        collected_.reset();
        artifacts_collected(std::move(report));
      });
}

void Job::artifacts_collected(Result<ArtifactReport> report) {
  if (report) {
    if (!report->archive.empty()) {
      result_.artifacts = {report->archive.substr(report->archive.rfind('/') + 1)};
    } else {
      result_.artifacts = std::move(report->files);
    }
    result_.artifacts_bytes = report->bytes;
    result_.artifact_warnings = std::move(report->warnings);
    result_.artifacts_truncated = std::move(report->truncated);
  } else {
    result_.artifact_warnings.push_back(report.error().message());
  }
  for (const auto& w : result_.artifact_warnings) container_.output().note("artifacts: " + w);
  // The files are copied: now the container goes the usual way (reap, removal).
  if (container_.state() == Container::State::exited) {
    container_.remove();  // cancelled meanwhile: it exited while the collection stopped
  } else {
    container_.kill();
  }
}

void Job::exited() {
  timer_.close();
  record_outcome();
  // A collection still running (cancelled: it stops early) is waited for: the slot is not
  // emptied under it.
  if (collect_.pending()) return;
  container_.remove();
}

void Job::record_outcome() {
  using S = JobResult::Status;
  const Container::Usage& usage = container_.usage();
  result_.memory_limit = container_.plan().limits.memory;
  result_.pids_limit = container_.plan().limits.pids;
  result_.memory_peak = usage.memory_peak;
  result_.cpu_usec = usage.cpu_usec;
  result_.oom_killed = usage.oom_killed;
  result_.pids_limit_hit = usage.pids_limit_hit;
  result_.disk_full = usage.disk_full;
  if (const auto& error = container_.start_error()) {
    result_.status = S::setup_failed;
    result_.message = error->message();
    return;
  }
  if (result_.duration.count() == 0) result_.duration = container_.duration();
  JobOutput& out = container_.output();
  auto outcome = container_.outcome();
  result_.exit_code = outcome.code;
  result_.signal = outcome.signal;
  if (outcome.kind == sandbox::Outcome::Kind::setup_failed || outcome.kind == sandbox::Outcome::Kind::exec_failed) {
    result_.status = outcome.kind == sandbox::Outcome::Kind::setup_failed ? S::setup_failed : S::exec_failed;
    result_.message = outcome.error->message();
    out.note(outcome.error->render());
  } else if (timed_out_) {
    result_.status = S::timed_out;
    out.note(fmt::format("timed out after {}; killed the container", config::format_duration(result_.timeout)));
  } else if (cancelled_) {
    result_.status = S::cancelled;
  } else if (result_.oom_killed && !outcome.ok()) {
    result_.status = S::oom_killed;
    out.note(fmt::format("out of memory: the kernel killed a process at the memory limit of {}",
                         config::format_size(result_.memory_limit.value_or(0))));
  } else if (outcome.kind == sandbox::Outcome::Kind::signaled) {
    result_.status = S::signaled;
  } else {
    result_.status = outcome.code == 0 ? S::passed : S::failed;
  }
  // As for OOM kills: a full writable layer is often why the command failed (ENOSPC inside).
  if (!result_.ok() && !result_.disk_full.empty())
    out.note(fmt::format("{}: the container's writable layer is full (write fails with ENOSPC); "
                         "raise the job's disk or disk_inodes", result_.disk_full));
}

void Job::removed() {
  result_.output_tail = container_.output().tail();
  if (on_done_) {
    on_done_(*this);
    return;
  }
  runner_.job_done(result_.index, result_);
}

}  // namespace sandrun::runner
