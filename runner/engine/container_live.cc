// Container's live restore: leaving a running container to the next daemon (detach) and taking
// one back from the previous (adopt). The design is in docs/architecture.md ("Live restore").
#include <signal.h>

#include "runner/engine/container.h"
#include "runner/engine/container_adopt.h"
#include "runner/engine/slots.h"
#include "runner/net/port_proxy.h"
#include "runner/net/socket_factory.h"
#include "sandbox/status.h"
#include "sandbox/sys/log.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::runner {

std::unique_ptr<Container> Container::adopt(Engine& engine, std::shared_ptr<const sandbox::ContainerPlan> plan,
                                            AdoptedParts parts, JobOutput output, Hooks hooks) {
  std::unique_ptr<Container> c(new Container(engine, std::move(plan), ContainerStart{}, std::move(output), std::move(hooks)));
  c->adopted_ = true;
  c->adopted_pid_ = parts.pid;
  c->adopted_pidfd_ = std::move(parts.pidfd);
  c->slot_ = parts.slot;
  c->own_cgroup_run_ = parts.cgroup;
  // Its cgroup again: execs join it, its OOM kill is read from it at the exit, and its removal
  // empties and removes it as a started container's.
  c->cgroup_ = std::move(parts.group);
  c->started_at_ = std::chrono::steady_clock::now();
  c->state_ = State::running;
  const int pidfd = c->adopted_pidfd_.get();
  if (auto r = c->watch_fds(parts.pipes, UniqueFd(), pidfd); !r) {
    // Not watched, it cannot be followed: it ends now (remove() tears it down as usual).
    log::warn("container {:?}: {}", c->plan_->name, r.error().message());
    (void)sys::pidfd_send_signal(pidfd, SIGKILL);
    c->sent_sigkill_ = true;
  }
  return c;
}

bool Container::detach() {
  if (state_ != State::running && state_ != State::stopping) return false;
  if (!adopted_ && !(sandbox_ && placement_.survive_parent)) return false;
  for (auto& p : pipes_) p.close();
  open_pipes_ = 0;
  pidfd_poll_.close();
  resume_.close();
  input_.close();
  proxy_.reset();
  factory_.reset();
  if (sandbox_) {
    sandbox_->release();  // neither killed nor reaped: it goes on
    sandbox_.reset();
  }
  adopted_pidfd_.reset();
  if (cgroup_) cgroup_->keep();
  cgroup_.reset();
  if (slot_) engine_.slots().forget(slot_);  // locked no more; its pid record says who runs there
  slot_ = nullptr;
  caches_ = CacheLease();
  state_ = State::removed;
  return true;
}

std::string Container::slot_dir() const { return slot_ ? slot_->dir : std::string(); }

std::string Container::cgroup_path() const { return own_cgroup_run_; }

int Container::adopted_wait_status() const {
  for (const auto& r : status_.records()) {
    if (r.kind == static_cast<uint32_t>(sandbox::RecordKind::exited)) return r.value;
  }
  if (sent_sigkill_) return SIGKILL;  // killed by SIGKILL: no record comes then
  return 255 << 8;                    // unknown: exit code 255, as Docker shows after a crash
}

}  // namespace sandrun::runner
