// Child: owning, signalling and reaping one child process through its pidfd.
#include "sandbox/sys/process.h"

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "sandbox/sys/syscalls.h"

namespace sandrun::sys {

Child Child::adopt(pid_t pid, UniqueFd pidfd, std::string what) {
  Child c;
  c.pid_ = pid;
  c.pidfd_ = std::move(pidfd);
  c.running_ = pid > 0;
  c.what_ = std::move(what);
  return c;
}

Child Child::adopt_forked(pid_t pid, std::string what) {
  return adopt(pid, UniqueFd(pid > 0 ? pidfd_open(pid) : -1), std::move(what));
}

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      running_(std::exchange(other.running_, false)),
      kill_group_(std::exchange(other.kill_group_, false)),
      what_(std::move(other.what_)) {}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    kill_and_reap();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    running_ = std::exchange(other.running_, false);
    kill_group_ = std::exchange(other.kill_group_, false);
    what_ = std::move(other.what_);
  }
  return *this;
}

std::string Child::name() const {
  return what_.empty() ? fmt::format("pid {}", pid_) : fmt::format("{} (pid {})", what_, pid_);
}

Result<void> Child::signal(int sig) {
  if (!running_) return {};
  // Without a pidfd the child is still unreaped (running_), so its pid names it alone.
  const int rc = pidfd_ ? pidfd_send_signal(pidfd_.get(), sig) : ::kill(pid_, sig);
  if (rc < 0 && errno != ESRCH) return Error::sys("send {} to {}", signal_text(sig), name());
  return {};
}

namespace {

int wait_for(pid_t pid, int pidfd, siginfo_t& info, int flags) {
  info = {};
  if (pidfd >= 0) return ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, flags | WEXITED | __WALL);
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, flags | WEXITED | __WALL);
}

}  // namespace

Result<std::optional<int>> Child::try_reap() {
  if (!running_) return Error::msg("{} already reaped", name());
  siginfo_t info;
  if (wait_for(pid_, pidfd_.get(), info, WNOHANG) < 0) {
    if (errno == EINTR || errno == EAGAIN) return std::optional<int>();
    return Error::sys("wait for {}", name());
  }
  if (info.si_pid == 0) return std::optional<int>();
  running_ = false;
  return std::optional<int>(wait_status_from(info));
}

Result<int> Child::wait() {
  if (!running_) return Error::msg("{} already reaped", name());
  siginfo_t info;
  while (wait_for(pid_, pidfd_.get(), info, 0) < 0) {
    if (errno == EAGAIN) {  // a non-blocking pidfd (an event loop set O_NONBLOCK): wait for it
      struct pollfd p = {pidfd_.get(), POLLIN, 0};
      ::poll(&p, 1, -1);
      continue;
    }
    if (errno != EINTR) return Error::sys("wait for {}", name());
  }
  running_ = false;
  return wait_status_from(info);
}

void Child::kill_and_reap() {
  if (!running_) return;
  // Before the reap: until then the leader's pid, which is the group's id, stays taken.
  if (kill_group_ && pid_ > 0) ::kill(-pid_, SIGKILL);
  (void)signal(SIGKILL);
  auto r = wait();
  if (!r) running_ = false;  // ECHILD: someone else reaped it; nothing is left to do
}

UniqueFd Child::release() {
  running_ = false;
  pid_ = -1;
  return std::move(pidfd_);
}

int wait_status_from(const siginfo_t& info) {
  switch (info.si_code) {
    case CLD_EXITED: return (info.si_status & 0xff) << 8;
    case CLD_KILLED: return info.si_status & 0x7f;
    case CLD_DUMPED: return (info.si_status & 0x7f) | 0x80;
    default: return 0;
  }
}

std::string signal_text(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  if (abbrev) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(sig);
}

}  // namespace sandrun::sys
