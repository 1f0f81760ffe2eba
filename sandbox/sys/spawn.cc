// spawn(): clone3 with a pidfd, a flat plan prepared before the clone, and in the child only
// system calls (our threads may hold any lock at the moment of the clone).
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <string_view>

#include "sandbox/sys/fs.h"
#include "sandbox/sys/process.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::sys {
namespace {

constexpr const char* kSystemDirs = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Everything the child needs, as arrays it only reads.
struct SpawnPlan {
  std::vector<const char*> candidates;  // the paths execve tries, in order
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  std::vector<std::pair<int, int>> dups;  // {source (above `highest`), target}
  int highest = 2;                        // the highest target
  int status_fd = -1;                     // CLOEXEC write end: an int errno when exec fails
  bool own_group = false;
};

// The kernel's struct sigaction (x86_64 and arm64 layout): handler, flags, restorer, mask.
struct KernelSigaction {
  __sighandler_t handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};

// The child between clone and exec: raw system calls only (no allocation, no lock, no libc
// function that a sanitizer intercepts).
[[noreturn]] __attribute__((no_sanitize("address", "undefined"))) void run_child(const SpawnPlan& p) {
  auto fail = [&](int err) {
    (void)::syscall(SYS_write, p.status_fd, &err, sizeof err);
    exit_now(127);
  };
  if (p.own_group && ::syscall(SYS_setpgid, 0, 0) < 0) fail(errno);
  // Sources sit above every target, so no dup3 overwrites a source still needed, and dup3
  // clears CLOEXEC on the copy.
  for (const auto& [src, dst] : p.dups) {
    if (::syscall(SYS_dup3, src, dst, 0) < 0) fail(errno);
  }
  for (int fd = 3; fd <= p.highest; ++fd) {
    bool target = false;
    for (const auto& d : p.dups) target = target || d.second == fd;
    if (!target) (void)::syscall(SYS_close, fd);
  }
  // Everything above the targets goes, but the status pipe (CLOEXEC: exec closes it).
  const unsigned first = static_cast<unsigned>(p.highest) + 1, status = static_cast<unsigned>(p.status_fd);
  if (status > first && ::syscall(SYS_close_range, first, status - 1, 0) < 0) fail(errno);
  if (::syscall(SYS_close_range, status + 1, ~0U, 0) < 0) fail(errno);
  // Our threads (libuv's) may block, catch or ignore signals: the program starts with the
  // defaults and nothing blocked (the mask is cleared last, once no handler of ours is left).
  KernelSigaction dfl = {SIG_DFL, 0, nullptr, 0};
  for (int sig = 1; sig <= 64; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) (void)::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, 8);
  }
  uint64_t none = 0;
  sigprocmask_all(SIG_SETMASK, &none, nullptr);
  // As execvp: a missing candidate passes to the next, a refused one is remembered.
  int err = ENOENT;
  for (const char* path : p.candidates) {
    ::syscall(SYS_execve, path, p.argv, p.envp);
    if (errno == EACCES) {
      err = EACCES;
    } else if (errno != ENOENT && errno != ENOTDIR) {
      fail(errno);
    }
  }
  fail(err);
  __builtin_unreachable();
}

std::vector<std::string> candidates_for(const SpawnOptions& o) {
  if (o.path.find('/') != std::string::npos) return {o.path};
  std::vector<std::string> out;
  std::string_view dirs = o.search ? o.search : kSystemDirs;
  while (!dirs.empty()) {
    const size_t colon = dirs.find(':');
    const std::string_view dir = dirs.substr(0, colon);
    dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    // A relative entry would depend on our working directory: never used.
    if (!dir.empty() && dir[0] == '/') out.push_back(std::string(dir) + "/" + o.path);
  }
  return out;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

Result<Child> spawn(const SpawnOptions& o) {
  if (o.args.empty()) return Error::sys_code(EINVAL, "run {}: no argv[0]", o.path);
  SpawnPlan plan;
  plan.own_group = o.own_process_group;
  std::vector<std::string> candidates = candidates_for(o);
  for (const auto& c : candidates) plan.candidates.push_back(c.c_str());
  std::vector<std::string> args = o.args;
  std::vector<std::string> env = o.env ? *o.env : std::vector<std::string>{std::string("PATH=") + kSystemDirs};
  std::vector<char*> argv = pointers(args), envp = pointers(env);
  plan.argv = argv.data();
  plan.envp = envp.data();

  for (const auto& k : o.keep) {
    if (k.second < 3) return Error::sys_code(EINVAL, "run {}: keep fd {} as {} (below 3)", o.path, k.first, k.second);
    plan.highest = std::max(plan.highest, k.second);
  }
  // Every source is copied above the highest target (see run_child).
  std::vector<UniqueFd> copies;
  auto above = [&](int fd) -> Result<int> {
    int c = ::fcntl(fd, F_DUPFD_CLOEXEC, plan.highest + 1);
    if (c < 0) return Error::sys("duplicate fd {} for {}", fd, o.path);
    copies.emplace_back(c);
    return c;
  };
  int null_copy = -1;
  auto source = [&](int fd) -> Result<int> {
    if (fd >= 0) return above(fd);
    if (null_copy < 0) {
      UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
      if (!null) return Error::sys("open /dev/null for {}", o.path);
      null_copy = SANDRUN_TRY(above(null.get()));
    }
    return null_copy;
  };
  plan.dups.emplace_back(SANDRUN_TRY(source(o.stdin_fd)), 0);
  plan.dups.emplace_back(SANDRUN_TRY(source(o.stdout_fd)), 1);
  plan.dups.emplace_back(SANDRUN_TRY(source(o.stderr_fd)), 2);
  for (const auto& [ours, theirs] : o.keep) plan.dups.emplace_back(SANDRUN_TRY(above(ours)), theirs);
  int status_pipe[2];
  if (::pipe2(status_pipe, O_CLOEXEC) < 0) return Error::sys("create the exec status pipe for {}", o.path);
  UniqueFd status_read(status_pipe[0]);
  {
    UniqueFd status_write(status_pipe[1]);
    plan.status_fd = SANDRUN_TRY(above(status_write.get()));
  }

  int pidfd = -1;
  struct clone_args ca = {};
  ca.flags = CLONE_PIDFD;
  ca.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  ca.exit_signal = SIGCHLD;
  // No signal handler of ours may run in the child: everything is blocked across the clone.
  uint64_t all = ~0ULL, old = 0;
  sigprocmask_all(SIG_SETMASK, &all, &old);
  long pid = clone3(&ca);
  // A seccomp filter of a container we run in (Docker's default) may refuse clone3 with
  // ENOSYS: fork, and open the pidfd after it (race-free: the pid stays ours until reaped).
  const bool forked = pid < 0 && errno == ENOSYS;
  if (forked) pid = ::fork();
  if (pid == 0) run_child(plan);
  const int clone_errno = errno;
  sigprocmask_all(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return Error::sys_code(clone_errno, "clone a process to run {}", o.path);
  Child child = forked ? Child::adopt_forked(static_cast<pid_t>(pid), o.path)
                       : Child::adopt(static_cast<pid_t>(pid), UniqueFd(pidfd), o.path);
  child.set_kill_group(o.own_process_group);
  copies.clear();  // our copy of the status pipe's write end too: end-of-file means exec'd
  int exec_errno = 0;
  ssize_t n;
  while ((n = ::read(status_read.get(), &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    (void)child.wait();
    return Error::sys_code(exec_errno, "run {}", o.path);
  }
  return child;
}

Result<Captured> run_captured(SpawnOptions options, bool with_stderr) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) < 0) return Error::sys("create a pipe for {}", options.path);
  UniqueFd rd(fds[0]), wr(fds[1]);
  options.stdout_fd = wr.get();
  if (with_stderr) options.stderr_fd = wr.get();
  Child child = SANDRUN_TRY(spawn(options));
  wr.reset();  // the child's copy is the only writer left: end-of-file when it is done
  auto output = fs::read_fd(rd.get());
  Captured c;
  c.status = SANDRUN_TRY(child.wait());
  if (!output) return std::move(output).error();
  c.output = std::move(*output);
  return c;
}

}  // namespace sandrun::sys
