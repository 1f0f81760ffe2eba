// Container: start, stream output, reap, remove; every change of state in transition().
#include "runner/engine/container.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>


#include "runner/engine/slots.h"
#include "runner/net/port_proxy.h"
#include "runner/net/socket_factory.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"
#include "sandbox/sys/syscalls.h"
#include "sandbox/userns.h"

namespace sandrun::runner {
namespace {

// /etc/NAME as a file of the container's writable layer (the slot's upper dir, emptied with
// it): it hides the image's, and goes with the container. A read-only root has no writable
// layer: it keeps the image's file.
Result<void> write_etc_file(const sandbox::Placement& place, const sandbox::ContainerPlan& plan,
                            const std::string& name, const std::string& text) {
  if (plan.hardening.read_only_rootfs) return {};
  auto upper = SANDRUN_TRY(fs::open_path(place.upper_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  if (::mkdirat(upper.get(), "etc", 0755) < 0 && errno != EEXIST) return Error::sys("create {}/etc", place.upper_dir);
  auto etc = SANDRUN_TRY(fs::open_beneath(upper.get(), "etc", O_RDONLY | O_DIRECTORY | O_NOFOLLOW, RESOLVE_BENEATH));
  int fd = ::openat(etc.get(), name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return Error::sys("create {}/etc/{}", place.upper_dir, name);
  UniqueFd file(fd);
  SANDRUN_TRY(fs::write_all(fd, text).wrap(fmt::format("write the container's /etc/{}", name)));
  // In a user namespace both belong to the container's root, as the rest of its writable
  // layer does (an unmapped owner would keep the container out of its own /etc).
  if (plan.userns.enabled && ::geteuid() == 0) {
    const uid_t uid = sandbox::userns::to_host(plan.userns.uid_map, 0).value_or(0);
    const gid_t gid = sandbox::userns::to_host(plan.userns.gid_map, 0).value_or(0);
    if (::fchown(etc.get(), uid, gid) < 0) return Error::sys("chown {}/etc", place.upper_dir);
    if (::fchown(fd, uid, gid) < 0) return Error::sys("chown {}/etc/{}", place.upper_dir, name);
  }
  return {};
}

Error uv_error(int code, std::string_view what) { return Error::sys_code(-code, "{}", what); }

}  // namespace

Container::Container(Engine& engine, std::shared_ptr<const sandbox::ContainerPlan> plan, ContainerStart start,
                     JobOutput output, Hooks hooks)
    : engine_(engine), plan_(std::move(plan)), start_(std::move(start)), output_(std::move(output)),
      hooks_(std::move(hooks)) {}

Container::~Container() = default;

void Container::start() { transition(Event::start); }

void Container::stop(int sig) {
  if (state_ == State::created || state_ == State::starting) {
    if (pending_signal_ != SIGKILL) pending_signal_ = sig;  // sent once it runs
    return;
  }
  if (state_ != State::running && state_ != State::stopping) return;
  pending_signal_ = sig;
  transition(Event::stop);
}

void Container::remove() { transition(Event::remove); }

bool Container::ended() const { return wait_status_ && open_pipes_ == 0; }

void Container::transition(Event event) {
  switch (event) {
    case Event::start: {
      if (state_ != State::created) return;
      state_ = State::starting;
      started_at_ = std::chrono::steady_clock::now();
      slot_ = engine_.slots().acquire(/*grow=*/true);
      if (!slot_) {
        fail(Error::msg("no container slot available under {}/slots", engine_.state_root()));
        return;
      }
      placement_ = placement_for(*slot_, engine_.slots().mount_point(), *plan_);
      placement_.netns_fd = start_.netns_fd;
      placement_.env = start_.env;
      placement_.stdin_pipe = start_.stdin_pipe;
      placement_.tty = start_.tty;
      placement_.survive_parent = start_.survive_daemon && !start_.tty;
      // Starting blocks (the log file is created, the cloning thread sleeps while the child
      // sets up its mounts): on the threadpool, so the loop goes on streaming the others and
      // several containers are set up at once. The pool's threads live as long as the process,
      // which is what the children's parent-death signal follows.
      blocking_ = run_blocking(
          engine_.loop(), [this](const std::atomic<bool>&) { clone_blocking(); },
          [this] { transition(start_error_ ? Event::failed_to_start : Event::cloned); });
      return;
    }
    case Event::cloned: {
      for (const auto& note : caches_.notes) output_.note(note);
      if (auto r = watch(); !r) return fail(r.error());
      if (auto r = publish_ports(); !r) return fail(r.error());
      state_ = State::running;
      if (hooks_.running) hooks_.running();
      // A stop that arrived while the container was starting.
      if (pending_signal_) transition(Event::stop);
      return;
    }
    case Event::failed_to_start: {
      for (const auto& note : caches_.notes) output_.note(note);
      fail(*start_error_);
      return;
    }
    case Event::stop: {
      state_ = State::stopping;
      if (pending_signal_ == SIGKILL) sent_sigkill_ = true;
      if (sandbox_) (void)sandbox_->signal(pending_signal_);
      else if (adopted_pidfd_) (void)sys::pidfd_send_signal(adopted_pidfd_.get(), pending_signal_);
      return;
    }
    case Event::command_exited: {
      command_ended_ = true;
      ended_at_ = std::chrono::steady_clock::now();
      if (hooks_.command_exited) hooks_.command_exited();
      return;
    }
    case Event::pid1_reaped:
    case Event::stream_closed: {
      if (!ended() || (state_ != State::running && state_ != State::stopping)) return;
      if (!command_ended_) ended_at_ = std::chrono::steady_clock::now();
      output_.finish();
      input_.close();
      record_usage();
      sandbox_.reset();
      resume_.close();
      proxy_.reset();  // published ports close with the container
      factory_.reset();
      state_ = State::exited;
      if (hooks_.exited) hooks_.exited();
      return;
    }
    case Event::remove: {
      if (state_ != State::exited || blocking_.pending()) return;
      output_.close_log();
      caches_ = CacheLease();  // the container is gone: another one may write its caches
      auto cgroup = std::shared_ptr<sandbox::cgroup::Group>(std::move(cgroup_));
      blocking_ = run_blocking(
          engine_.loop(),
          [this, cgroup](const std::atomic<bool>&) {
            // Empties and removes the container's cgroup, then its writable layer.
            if (cgroup) {
              if (auto r = cgroup->kill(); !r) log::warn("container {:?}: {}", plan_->name, r.error().message());
              if (auto r = cgroup->remove(); !r) log::warn("container {:?}: {}", plan_->name, r.error().message());
            }
            // A cgroup run of its own (live restore) goes with it; an adopted container's
            // cgroup is known by that name alone.
            if (!own_cgroup_run_.empty() && engine_.cgroups()) {
              if (auto r = engine_.cgroups()->remove_run(own_cgroup_run_); !r)
                log::warn("container {:?}: {}", plan_->name, r.error().message());
            }
            teardown_result_ = slot_ ? SlotPool::clear(*slot_) : Result<void>();
          },
          [this] { transition(Event::torn_down); });
      return;
    }
    case Event::torn_down: {
      if (slot_) {
        if (teardown_result_) {
          engine_.slots().release(slot_);
        } else {
          log::warn("container {:?}: cannot empty its container slot {}, leaving it for `sandrun cleanup`: {}",
                    plan_->name, slot_->dir, teardown_result_.error().message());
          engine_.slots().discard(slot_);
        }
        slot_ = nullptr;
      }
      state_ = State::removed;
      if (hooks_.removed) hooks_.removed();
      return;
    }
  }
}

void Container::clone_blocking() {
  if (auto r = output_.open_log(); !r) log::warn("{}", r.error().message());
  auto started = [&]() -> Result<sandbox::Sandbox> {
    SANDRUN_TRY(SlotPool::prepare_disk(*slot_, plan_->disk));
    SANDRUN_TRY(SlotPool::mark_claimed(*slot_));
    auto lease = SANDRUN_TRY(acquire_caches(engine_.state_root(), start_.caches, *slot_, *plan_));
    placement_.binds = lease.binds;
    placement_.binds.insert(placement_.binds.end(), start_.binds.begin(), start_.binds.end());
    caches_ = std::move(lease);
    for (const auto& [name, text] : start_.etc_files) SANDRUN_TRY(write_etc_file(placement_, *plan_, name, text));
    if (start_.prepare_layer) SANDRUN_TRY(start_.prepare_layer(*plan_, placement_));
    if (plan_->use_cgroup && engine_.cgroups()) {
      const Engine::CgroupName where = engine_.next_cgroup();
      if (where.own_run) own_cgroup_run_ = where.run;
      auto group = engine_.cgroups()->create(where.run, where.name, plan_->limits);
      if (!group) return std::move(group.error().wrap("create the container's cgroup"));
      cgroup_ = std::move(*group);
    }
    return sandbox::Sandbox::start(*plan_, placement_, cgroup_.get());
  }();
  if (!started) {
    start_error_ = std::move(started).error();
    return;
  }
  sandbox_ = std::move(*started);
  if (auto r = SlotPool::record_pid(*slot_, sandbox_->pid()); !r) {
    log::warn("container {:?}: cannot record its pid for crash recovery: {}", plan_->name, r.error().message());
  }
}

Result<void> Container::watch() {
  UniqueFd fds[3] = {start_.tty ? sandbox_->take_terminal() : sandbox_->take_stdout(), sandbox_->take_stderr(),
                     sandbox_->take_status()};
  if (start_.tty) terminal_fd_ = fds[0].get();
  return watch_fds(fds, start_.tty ? UniqueFd() : sandbox_->take_stdin(), sandbox_->pidfd());
}

Result<void> Container::watch_fds(UniqueFd (&fds)[3], UniqueFd in, int pidfd) {
  uv_loop_t* loop = engine_.loop().get();
  constexpr const char* kPipeNames[3] = {"stdout", "stderr", "status"};
  for (int i = 0; i < 3; ++i) {
    if (!fds[i]) continue;  // a terminal: no stderr pipe
    auto& p = pipes_[i];
    const std::string pipe = fmt::format("the container's {} pipe {}", kPipeNames[i], fs::fd_path(fds[i].get()));
    if (int rc = uv_pipe_init(loop, p.get(), 0); rc < 0) return uv_error(rc, "watch " + pipe);
    p.mark_live();
    p.get()->data = this;
    if (int rc = uv_pipe_open(p.get(), fds[i].get()); rc < 0) return uv_error(rc, "watch " + pipe);
    fds[i].release();  // owned by the handle now
    if (int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(p.get()), on_alloc, on_read); rc < 0)
      return uv_error(rc, "read " + pipe);
    ++open_pipes_;
  }
  if (start_.tty) {
    input_.use_terminal(reinterpret_cast<uv_stream_t*>(pipes_[0].get()));
  } else if (in) {
    SANDRUN_TRY(input_.open_pipe(loop, std::move(in)));
  }
  input_.on_drained([this] {
    if (hooks_.stdin_drained) hooks_.stdin_drained();
  });
  if (int rc = uv_poll_init(loop, pidfd_poll_.get(), pidfd); rc < 0)
    return uv_error(rc, fmt::format("watch the pidfd of the container's init (pid {})", pid()));
  pidfd_poll_.mark_live();
  pidfd_poll_.get()->data = this;
  if (int rc = uv_poll_start(pidfd_poll_.get(), UV_READABLE, on_pidfd); rc < 0)
    return uv_error(rc, fmt::format("watch the pidfd of the container's init (pid {})", pid()));
  return {};
}

Result<void> Container::resize(sandbox::TtySize size) {
  if (!start_.tty) return Error::msg("container {:?} has no terminal to resize", plan_->name);
  if (terminal_fd_ < 0) return Error::msg("the terminal of container {:?} is closed", plan_->name);
  return sandbox::resize_terminal(terminal_fd_, size);
}

Result<void> Container::publish_ports() {
  if (!plan_->socket_factory || start_.ports.empty()) return {};
  // Rootless: the proxy's inner sockets come from the container's socket factory (its init's
  // helper), asked and answered on the loop without waiting (socket_factory.h).
  factory_ = SANDRUN_TRY(SocketFactoryClient::open(engine_.loop().get(), sandbox_->take_socket_factory()));
  SocketFactoryClient* client = factory_.get();
  auto proxy = PortProxy::open(
      engine_.loop().get(), [client](auto done) { client->request(std::move(done)); }, start_.ports, "");
  if (!proxy) return std::move(proxy.error().wrap(fmt::format("job {:?}", plan_->name)));
  proxy_ = std::move(*proxy);
  for (const PublishedPort& p : proxy_->published()) {
    if (hooks_.port_published) hooks_.port_published(p);
  }
  return {};
}

// Every container's pipes are read into the engine's one buffer (the loop reads one at a time).
void Container::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  *buf = static_cast<Container*>(h->data)->engine_.read_buffer();
}

void Container::on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* c = static_cast<Container*>(s->data);
  if (n > 0) {
    std::string_view data(buf->base, static_cast<size_t>(n));
    if (s == reinterpret_cast<uv_stream_t*>(c->pipes_[2].get())) {
      c->status_.feed(data.data(), data.size());
      if (c->plan_->hold_after_exit && !c->command_ended_ && c->status_.exited()) c->transition(Event::command_exited);
    } else {
      const int stream = s == reinterpret_cast<uv_stream_t*>(c->pipes_[0].get()) ? 1 : 2;
      c->output_.write(stream, data);
      if (c->hooks_.output) c->hooks_.output(stream, data);
      // `exec` passes its command's bytes through: a slow reader slows the command, as a pipe
      // would. `run` shows a bounded view instead (OutputGate): its containers are always read.
      if (c->output_.mode() == ConsoleMode::passthrough && console_backlog() > kConsoleBacklogHigh &&
          !c->wait_status_)
        c->pause_output();
    }
    return;
  }
  if (n == 0) return;  // EAGAIN
  // EOF (or an error, which ends the stream just the same: a terminal's master reads EIO once
  // the last holder of its slave is gone).
  if (c->terminal_fd_ >= 0 && s == reinterpret_cast<uv_stream_t*>(c->pipes_[0].get())) {
    c->input_.close();  // it wrote through this handle
    c->terminal_fd_ = -1;
  }
  for (auto& p : c->pipes_) {
    if (reinterpret_cast<uv_stream_t*>(p.get()) == s) p.close();
  }
  --c->open_pipes_;
  c->transition(Event::stream_closed);
}

void Container::pause_output() {
  if (paused_) return;
  paused_ = true;
  for (int i = 0; i < 2; ++i) {
    if (pipes_[i].live()) uv_read_stop(reinterpret_cast<uv_stream_t*>(pipes_[i].get()));
  }
  if (!resume_.live()) {
    uv_timer_init(engine_.loop().get(), resume_.get());
    resume_.mark_live();
    resume_.get()->data = this;
  }
  uv_timer_start(resume_.get(), on_resume, 5, 5);
}

void Container::on_resume(uv_timer_t* t) {
  auto* c = static_cast<Container*>(t->data);
  // Once PID 1 is gone nothing more can be written: what the pipes hold (a pipe's buffer each)
  // is read whatever the backlog, so that the container can end.
  if (console_backlog() > kConsoleBacklogLow && !c->wait_status_) return;
  uv_timer_stop(t);
  c->paused_ = false;
  for (int i = 0; i < 2; ++i) {
    if (c->pipes_[i].live()) uv_read_start(reinterpret_cast<uv_stream_t*>(c->pipes_[i].get()), on_alloc, on_read);
  }
}

void Container::on_pidfd(uv_poll_t* h, int, int) {
  auto* c = static_cast<Container*>(h->data);
  if (c->adopted_) {
    // Not our child: readable means it has exited (someone else reaps it). Its status comes
    // with the status pipe, read to its end before the container is reported exited.
    c->pidfd_poll_.close();
    c->wait_status_ = 0;  // adopted_wait_status() once the pipes are at their end
    if (c->paused_) on_resume(c->resume_.get());
    c->transition(Event::pid1_reaped);
    return;
  }
  auto r = c->sandbox_->try_reap();
  if (!r) {
    log::warn("container {:?}: {}", c->plan_->name, r.error().message());
    return;
  }
  if (!r->has_value()) return;
  c->wait_status_ = **r;
  // Close the poll handle (which removes the pidfd from epoll) before the pidfd itself.
  c->pidfd_poll_.close();
  if (c->paused_) on_resume(c->resume_.get());
  c->transition(Event::pid1_reaped);
}

// Peak memory, CPU time and what the kernel's limits did, read before the cgroup and the
// writable layer go.
void Container::record_usage() {
  // A statvfs of the slot's own file system: quick, and the reason many commands fail.
  if (slot_) usage_.disk_full = SlotPool::disk_full(*slot_);
  if (!cgroup_) return;
  auto stats = cgroup_->stats();
  if (!stats) {
    log::warn("container {:?}: {}", plan_->name, stats.error().message());
    return;
  }
  usage_.memory_peak = stats->memory_peak;
  usage_.cpu_usec = stats->cpu_usec;
  usage_.oom_killed = stats->oom_kills > 0;
  usage_.pids_limit_hit = stats->pids_limit_hits > 0;
}

// It could not start (or be watched): it has exited with `error`; remove() cleans up.
void Container::fail(const Error& error) {
  start_error_ = error;
  output_.note(error.render());
  input_.close();
  terminal_fd_ = -1;
  for (auto& p : pipes_) p.close();
  pidfd_poll_.close();
  resume_.close();
  open_pipes_ = 0;
  sandbox_.reset();  // kills and reaps a container that did start
  proxy_.reset();
  factory_.reset();
  ended_at_ = started_at_;  // it never ran: no time to report
  state_ = State::exited;
  if (hooks_.exited) hooks_.exited();
}

sandbox::Outcome Container::outcome() const {
  if (adopted_) {
    const int st = adopted_wait_status();
    sandbox::Outcome o;
    if ((st & 0x7f) == 0) {
      o.code = (st >> 8) & 0xff;
    } else {
      o.kind = sandbox::Outcome::Kind::signaled;
      o.signal = st & 0x7f;
    }
    return o;
  }
  return sandbox::interpret(*plan_, placement_, status_.records(), wait_status_.value_or(0));
}

std::chrono::milliseconds Container::duration() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(ended_at_ - started_at_);
}

}  // namespace sandrun::runner
