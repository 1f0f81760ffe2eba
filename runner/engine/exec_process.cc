// ExecProcess: fork into a running container, stream its output, reap; every change of state
// in transition().
#include "runner/engine/exec_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner/engine/container.h"
#include "runner/engine/resolve.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {
namespace {

Error uv_error(int code, std::string_view what) { return Error::sys_code(-code, "{}", what); }

UniqueFd dup_fd(int fd) { return UniqueFd(fd < 0 ? -1 : ::fcntl(fd, F_DUPFD_CLOEXEC, 0)); }

}  // namespace

ExecProcess::ExecProcess(Engine& engine, Container& container, ExecRequest request, Hooks hooks)
    : engine_(engine), plan_(container.shared_plan()), request_(std::move(request)), hooks_(std::move(hooks)) {
  // What the exec needs of the container, its own: the container may be removed meanwhile.
  pidfd_ = dup_fd(container.pidfd());
  target_.pid = container.pid();
  target_.pidfd = pidfd_.get();
  target_.start_env = container.start_env();
  if (const sandbox::cgroup::Group* group = container.cgroup()) {
    if (group->clone_into_fd() >= 0) {
      cgroup_fds_.push_back(dup_fd(group->clone_into_fd()));
      target_.cgroup_dir_fd = cgroup_fds_.back().get();
    } else {
      for (int fd : group->procs_fds()) {
        cgroup_fds_.push_back(dup_fd(fd));
        target_.cgroup_procs.push_back(cgroup_fds_.back().get());
      }
    }
  }
  spec_.argv = request_.argv;
  spec_.env = request_.env;
  spec_.workdir = request_.workdir;
  spec_.stdin_pipe = request_.stdin_pipe;
  spec_.tty = request_.tty;
}

ExecProcess::~ExecProcess() = default;

void ExecProcess::start() { transition(Event::start); }

void ExecProcess::signal(int sig) {
  if (state_ == State::created || state_ == State::starting) {
    if (pending_signal_ != SIGKILL) pending_signal_ = sig;
    return;
  }
  if (state_ == State::running && exec_ && !wait_status_) (void)exec_->signal(sig);
}

bool ExecProcess::write_stdin(std::string_view data) { return input_.write(data); }
void ExecProcess::close_stdin() { input_.end(); }

Result<void> ExecProcess::resize(sandbox::TtySize size) {
  if (!request_.tty) return Error::msg("the exec has no terminal to resize");
  if (terminal_fd_ < 0) return Error::msg("the exec's terminal is closed");
  return sandbox::resize_terminal(terminal_fd_, size);
}

void ExecProcess::pause_output() {
  if (paused_) return;
  paused_ = true;
  for (int i = 0; i < 2; ++i) {
    if (pipes_[i].live()) uv_read_stop(reinterpret_cast<uv_stream_t*>(pipes_[i].get()));
  }
}

void ExecProcess::resume_output() {
  if (!paused_) return;
  paused_ = false;
  for (int i = 0; i < 2; ++i) {
    if (pipes_[i].live()) uv_read_start(reinterpret_cast<uv_stream_t*>(pipes_[i].get()), on_alloc, on_read);
  }
}

void ExecProcess::transition(Event event) {
  switch (event) {
    case Event::start: {
      if (state_ != State::created) return;
      state_ = State::starting;
      if (target_.pidfd < 0) return fail(Error::msg("container {:?} is not running", plan_->name));
      blocking_ = run_blocking(
          engine_.loop(), [this](const std::atomic<bool>&) { fork_blocking(); },
          [this] { transition(start_error_ ? Event::failed_to_start : Event::forked); });
      return;
    }
    case Event::forked: {
      if (auto r = watch(); !r) return fail(r.error());
      state_ = State::running;
      input_.on_drained([this] {
        if (hooks_.stdin_drained) hooks_.stdin_drained();
      });
      if (hooks_.started) hooks_.started();
      if (pending_signal_) (void)exec_->signal(pending_signal_);
      return;
    }
    case Event::failed_to_start:
      fail(*start_error_);
      return;
    case Event::reaped:
    case Event::stream_closed: {
      if (state_ != State::running || !wait_status_ || open_pipes_ > 0) return;
      input_.close();
      state_ = State::exited;
      if (hooks_.exited) hooks_.exited();
      return;
    }
  }
}

void ExecProcess::fork_blocking() {
  auto started = [&]() -> Result<sandbox::Exec> {
    if (!request_.user.empty()) {
      // Resolved in the image's /etc/passwd and /etc/group, as a job's `user` is.
      auto ids = resolve_user(request_.user, plan_->lower_dirs);
      if (!ids) return std::move(ids.error().wrap(fmt::format("exec in container {:?}: user {:?}", plan_->name, request_.user)));
      spec_.user = sandbox::ExecSpec::Ids{ids->uid, ids->gid, ids->groups};
    }
    return sandbox::Exec::start(*plan_, target_, spec_);
  }();
  if (!started) {
    start_error_ = std::move(started).error();
    return;
  }
  exec_ = std::move(*started);
}

Result<void> ExecProcess::watch() {
  uv_loop_t* loop = engine_.loop().get();
  UniqueFd fds[3] = {request_.tty ? exec_->take_terminal() : exec_->take_stdout(), exec_->take_stderr(),
                     exec_->take_status()};
  if (request_.tty) terminal_fd_ = fds[0].get();
  constexpr const char* kNames[3] = {"stdout", "stderr", "status"};
  for (int i = 0; i < 3; ++i) {
    if (!fds[i]) continue;
    auto& p = pipes_[i];
    const std::string what = fmt::format("the exec's {} {}", kNames[i], fs::fd_path(fds[i].get()));
    if (int rc = uv_pipe_init(loop, p.get(), 0); rc < 0) return uv_error(rc, "watch " + what);
    p.mark_live();
    p.get()->data = this;
    if (int rc = uv_pipe_open(p.get(), fds[i].get()); rc < 0) return uv_error(rc, "watch " + what);
    fds[i].release();
    if (int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(p.get()), on_alloc, on_read); rc < 0)
      return uv_error(rc, "read " + what);
    ++open_pipes_;
  }
  if (request_.tty) {
    input_.use_terminal(reinterpret_cast<uv_stream_t*>(pipes_[0].get()));
  } else if (UniqueFd in = exec_->take_stdin()) {
    SANDRUN_TRY(input_.open_pipe(loop, std::move(in)));
  }
  if (int rc = uv_poll_init(loop, pidfd_poll_.get(), exec_->pidfd()); rc < 0)
    return uv_error(rc, fmt::format("watch the pidfd of the exec (pid {})", exec_->pid()));
  pidfd_poll_.mark_live();
  pidfd_poll_.get()->data = this;
  if (int rc = uv_poll_start(pidfd_poll_.get(), UV_READABLE, on_pidfd); rc < 0)
    return uv_error(rc, fmt::format("watch the pidfd of the exec (pid {})", exec_->pid()));
  return {};
}

void ExecProcess::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  *buf = static_cast<ExecProcess*>(h->data)->engine_.read_buffer();
}

void ExecProcess::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* e = static_cast<ExecProcess*>(s->data);
  const bool status = s == reinterpret_cast<uv_stream_t*>(e->pipes_[2].get());
  if (n > 0) {
    if (status) {
      e->status_.feed(buf->base, static_cast<size_t>(n));
    } else if (e->hooks_.output) {
      const int stream = s == reinterpret_cast<uv_stream_t*>(e->pipes_[0].get()) ? 1 : 2;
      e->hooks_.output(stream, std::string_view(buf->base, static_cast<size_t>(n)));
    }
    return;
  }
  if (n == 0) return;
  // End-of-file (a terminal's master: EIO once the last holder of its slave is gone).
  if (s == reinterpret_cast<uv_stream_t*>(e->pipes_[0].get()) && e->request_.tty) {
    e->input_.close();  // it wrote through this handle
    e->terminal_fd_ = -1;
  }
  for (auto& p : e->pipes_) {
    if (reinterpret_cast<uv_stream_t*>(p.get()) == s) p.close();
  }
  --e->open_pipes_;
  e->transition(Event::stream_closed);
}

void ExecProcess::on_pidfd(uv_poll_t* h, int, int) {
  auto* e = static_cast<ExecProcess*>(h->data);
  auto r = e->exec_->try_reap();
  if (!r) {
    log::warn("exec in container {:?}: {}", e->plan_->name, r.error().message());
    return;
  }
  if (!r->has_value()) return;
  e->wait_status_ = **r;
  e->pidfd_poll_.close();
  // Nothing more can be written once it is gone (unless it left children holding its pipes);
  // a paused reader still gets the rest.
  e->resume_output();
  e->transition(Event::reaped);
}

void ExecProcess::fail(const Error& error) {
  start_error_ = error;
  for (auto& p : pipes_) p.close();
  pidfd_poll_.close();
  input_.close();
  open_pipes_ = 0;
  terminal_fd_ = -1;
  exec_.reset();  // kills and reaps a process that did start
  state_ = State::exited;
  if (hooks_.exited) hooks_.exited();
}

sandbox::Outcome ExecProcess::outcome() const {
  if (start_error_) {
    sandbox::Outcome o;
    o.kind = sandbox::Outcome::Kind::setup_failed;
    o.code = -1;
    o.error = *start_error_;
    return o;
  }
  return sandbox::interpret_exec(*plan_, spec_, status_.records(), wait_status_.value_or(0));
}

int ExecProcess::exit_code() const {
  if (state_ != State::exited) return -1;
  const sandbox::Outcome o = outcome();
  if (o.kind == sandbox::Outcome::Kind::signaled) return 128 + o.signal;
  return o.code;
}

}  // namespace sandrun::runner
