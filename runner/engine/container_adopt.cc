// Live restore: verifying and taking back a container an earlier daemon left running.
#include "runner/engine/container_adopt.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/proc.h"
#include "sandbox/status.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::runner {
namespace {

// PID 1 of the record, pinned: a pidfd opened first, then the start time checked, so that the
// pidfd names the process the record means (a pid reused since would show another start time).
Result<UniqueFd> pin_pid1(const ContainerRecord& rec) {
  if (rec.pid <= 0 || rec.live.pid_start == 0) return Error::msg("its record names no process to adopt");
  const int fd = sys::pidfd_open(rec.pid);
  if (fd < 0) return Error::sys("its init (pid {}) is gone", rec.pid);
  UniqueFd pidfd(fd);
  auto st = sandbox::read_proc_stat(rec.pid);
  if (!st || st->start_time != rec.live.pid_start || st->state == 'Z' || st->state == 'X')
    return Error::msg("its init (pid {}) is gone (the pid now names another process)", rec.pid);
  return pidfd;
}

// A copy of fd `target` of the process behind `pidfd` (pidfd_getfd: ptrace access, which the
// daemon's root has; sandrun-init is not dumpable, so nothing else in the container has).
Result<UniqueFd> take_fd(int pidfd, pid_t pid, int target) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, target, 0));
  if (fd < 0) return Error::sys("take fd {} of its init (pid {})", target, pid);
  UniqueFd owned(fd);  // pidfd_getfd sets close-on-exec
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return Error::sys("make fd {} of pid {} non-blocking", target, pid);
  return owned;
}

}  // namespace

Result<AdoptedParts> adopt_container(const ContainerRecord& rec, SlotPool& slots, sandbox::cgroup::Backend* cgroups) {
  AdoptedParts parts;
  parts.pid = rec.pid;
  parts.pidfd = SANDRUN_TRY(pin_pid1(rec));
  for (int i = 0; i < sandbox::kKeptFdCount; ++i)
    parts.pipes[i] = SANDRUN_TRY(take_fd(parts.pidfd.get(), rec.pid, sandbox::kKeptFdBase + i));
  if (cgroups && !rec.live.cgroup.empty()) {
    auto group = cgroups->open(rec.live.cgroup, "c");
    if (!group) return std::move(group.error().wrap("open its cgroup again"));
    parts.group = std::move(*group);
    parts.group->keep();  // until it is adopted: a failure below must not empty it
  }
  if (rec.live.slot.empty()) return Error::msg("its record names no container slot");
  parts.slot = SANDRUN_TRY(slots.adopt(rec.live.slot));
  parts.cgroup = rec.live.cgroup;
  return parts;
}

void end_unadopted(const ContainerRecord& rec) {
  auto pidfd = pin_pid1(rec);
  if (pidfd) (void)sys::pidfd_send_signal(pidfd->get(), SIGKILL);
}

}  // namespace sandrun::runner
