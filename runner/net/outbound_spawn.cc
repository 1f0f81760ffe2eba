// spawn_helper: posix_spawn with an explicit fd list, a pidfd, and nothing inherited by accident.
#include "runner/net/outbound_spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>

#include "sandbox/sys/syscalls.h"

namespace sandrun::runner {
namespace {

// The helpers get no variable of ours (tokens, proxies): only a PATH.
char kPathEnv[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Owns posix_spawn's two attribute objects.
struct SpawnAttrs {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  SpawnAttrs() {
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
  }
  ~SpawnAttrs() {
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
  }
};

}  // namespace

Result<SpawnedHelper> spawn_helper(const std::string& path, const std::vector<std::string>& args, int out_fd,
                                   const std::vector<std::pair<int, int>>& keep) {
  // Copies above every target number first, so that no dup2 overwrites a source still needed
  // (and dup2(fd, fd), which would keep CLOEXEC set, never happens).
  int highest = 2;
  for (const auto& k : keep) highest = std::max(highest, k.second);
  std::vector<UniqueFd> copies;
  auto copy = [&](int fd) -> Result<int> {
    int c = ::fcntl(fd, F_DUPFD_CLOEXEC, highest + 1);
    if (c < 0) return Error::sys("duplicate fd {} for {}", fd, path);
    copies.emplace_back(c);
    return c;
  };
  const int out = SANDRUN_TRY(copy(out_fd));
  SpawnAttrs s;
  posix_spawn_file_actions_addopen(&s.fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&s.fa, out, 1);
  posix_spawn_file_actions_adddup2(&s.fa, out, 2);
  for (const auto& [ours, theirs] : keep) {
    posix_spawn_file_actions_adddup2(&s.fa, SANDRUN_TRY(copy(ours)), theirs);
  }
  // Another thread may have opened an fd without CLOEXEC: close everything above ours.
  posix_spawn_file_actions_addclosefrom_np(&s.fa, highest + 1);
  // Our threads (libuv's) may block or catch signals: the helper starts with the defaults.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&s.attr, &none);
  posix_spawnattr_setsigdefault(&s.attr, &all);
  posix_spawnattr_setpgroup(&s.attr, 0);
  posix_spawnattr_setflags(&s.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<std::string> owned(args);
  std::vector<char*> argv;
  for (auto& a : owned) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {kPathEnv, nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, path.c_str(), &s.fa, &s.attr, argv.data(), envp);
  if (rc != 0) return Error::sys_code(rc, "run {}", path);
  // Not reaped until we say so, so the pid cannot name another process yet.
  int pidfd = sys::pidfd_open(pid);
  if (pidfd < 0) {
    auto e = Error::sys("pidfd_open for {} (pid {})", path, pid);
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, __WALL) < 0 && errno == EINTR) {
    }
    return e;
  }
  return SpawnedHelper{pid, UniqueFd(pidfd)};
}

void kill_and_reap_helper(int pidfd, pid_t pid) {
  // Before the reap: until then the leader's pid, which is the group's id, stays taken.
  if (pid > 0) ::kill(-pid, SIGKILL);
  sys::pidfd_send_signal(pidfd, SIGKILL);
  siginfo_t info = {};
  while (::waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | __WALL) < 0) {
    if (errno == EAGAIN) {  // a non-blocking pidfd: wait for the exit, then reap
      struct pollfd p = {pidfd, POLLIN, 0};
      ::poll(&p, 1, -1);
      continue;
    }
    if (errno != EINTR) break;
  }
}

}  // namespace sandrun::runner
