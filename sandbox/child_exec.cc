// An exec's child, between fork and exec: joins the running container and executes an
// ExecChildPlan with system calls only (async-signal-safe: it was forked from a process with
// threads). Every failure is one StatusRecord on the status pipe, then exit. Built without
// sanitizers, as child.cc.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/child_internal.h"
#include "sandbox/exec_plan.h"
#include "sandbox/harden_child.h"
#include "sandbox/path_search.h"
#include "sandbox/status.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::sandbox {
namespace {

struct ExecChild : SetupReporter {
  const ExecChildPlan& plan;
};

// The container's namespaces, then its root: PID 1's own root (after a pivot_root the mount
// namespace's root is not necessarily the container's). As the namespace's root from then on
// (a host uid 0 is unmapped there and owns nothing).
void enter_container(const ExecChild& c) {
  const ExecChildPlan& p = c.plan;
  // v1: the container's cgroups, while we are still host root (`tasks` checks the writer).
  for (size_t i = 0; i < p.ncgroup_procs; ++i) {
    if (::write(p.cgroup_procs[i], "0", 1) != 1) c.fail(Stage::cgroup_join, static_cast<int>(i));
  }
  // One call: the kernel joins the user namespace first and checks the others with its
  // credentials.
  c.check(::setns(p.pidfd, p.ns_flags), Stage::exec_join);
  if (p.userns) {
    if (p.userns_setgroups) c.check(::syscall(SYS_setgroups, 0, nullptr), Stage::userns_root);
    c.check(::syscall(SYS_setresgid, 0, 0, 0), Stage::userns_root);
    c.check(::syscall(SYS_setresuid, 0, 0, 0), Stage::userns_root);
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);  // the change of credentials may have reset it
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  }
  c.check(::fchdir(p.root_fd), Stage::exec_root);
  c.check(::chroot("."), Stage::exec_root);
  c.check(::chdir("/"), Stage::exec_root);
}

// The working directory, resolved beneath the container's root ("/.." is "/", a symlink to
// "/etc" is the container's /etc); never created.
void enter_workdir(const ExecChild& c) {
  int wd = sys::openat2(AT_FDCWD, c.plan.workdir, O_PATH | O_DIRECTORY | O_CLOEXEC, 0, kInRoot);
  if (wd < 0) c.fail(Stage::workdir);
  c.check(::fchdir(wd), Stage::workdir);
  ::close(wd);
}

// 0, 1, 2 (the terminal, the pipes, or the container's /dev/null for stdin), the status pipe on
// 3 (closed at exec: end-of-file means it exec'd); nothing else.
void place_fds(ExecChild& c, int tty) {
  const ExecChildPlan& p = c.plan;
  int in = tty >= 0 ? tty : p.stdin_fd;
  if (in < 0) {
    in = ::open("/dev/null", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0) c.fail(Stage::exec_stdin);
  }
  const int src[4] = {in, tty >= 0 ? tty : p.stdout_fd, tty >= 0 ? tty : p.stderr_fd, p.status_fd};
  int high[4];
  for (int i = 0; i < 4; ++i) {
    high[i] = ::fcntl(src[i], F_DUPFD_CLOEXEC, 4);
    if (high[i] < 0) c.fail(Stage::fds);
  }
  c.status_fd = high[3];
  for (int i = 0; i < 3; ++i) c.check(::dup3(high[i], i, 0), Stage::fds);
  c.check(::dup3(high[3], kStatusFd, O_CLOEXEC), Stage::fds);
  c.status_fd = kStatusFd;
  c.check(::close_range(4, ~0U, 0), Stage::fds);
}

void apply_hardening(const ExecChild& c) {
  const ExecChildPlan& p = c.plan;
  c.check_err(harden::set_rlimit(RLIMIT_CORE, p.core_limit, p.core_limit), Stage::rlimit, RLIMIT_CORE);
  if (p.set_nofile) c.check_err(harden::set_rlimit(RLIMIT_NOFILE, p.nofile_soft, p.nofile_hard), Stage::rlimit, RLIMIT_NOFILE);
  // As run_child does: without no_new_privs the filter goes in while we hold CAP_SYS_ADMIN.
  if (!p.no_new_privs) c.check_err(harden::load_seccomp(p.seccomp), Stage::seccomp);
  c.check_err(harden::drop_bounding_set(p.capabilities, p.last_cap), Stage::capabilities);
  if (p.uid != 0 || p.gid != 0 || p.ngroups != 0) {
    c.check(::syscall(SYS_setgroups, p.ngroups, p.groups), Stage::set_groups);
    c.check(::syscall(SYS_setresgid, p.gid, p.gid, p.gid), Stage::set_gid);
    c.check(::syscall(SYS_setresuid, p.uid, p.uid, p.uid), Stage::set_uid);
  }
  c.check_err(harden::set_capabilities(p.uid == 0 ? p.capabilities : 0), Stage::capabilities, -1);
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);  // the switch of user may have reset it; exec sets it
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (p.no_new_privs) c.check_err(harden::set_no_new_privs(), Stage::no_new_privs);
}

}  // namespace

void run_exec_child(const ExecChildPlan& plan) {
  ExecChild c{{plan.status_fd}, plan};
  // First: the container's processes (the same uid, once we switch) must not ptrace or read the
  // memory of this copy of sandrun until it execs; exec makes it dumpable again.
  ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  // A killed sandrun leaves no exec behind (the thread that forked us lives as long as it).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  // A session of our own without a terminal: none of sandrun's reaches the container.
  ::syscall(SYS_setsid);
  enter_container(c);
  int tty = -1;
  if (plan.tty_socket >= 0) {
    tty = open_terminal(plan.tty_socket, plan.tty_rows, plan.tty_cols);
    if (tty < 0) c.fail(Stage::tty);
  }
  enter_workdir(c);
  ::umask(022);
  apply_hardening(c);
  place_fds(c, tty);
  reset_signals();
  // Last: from here on only execve and, on failure, write and exit are needed.
  if (plan.no_new_privs) c.check_err(harden::load_seccomp(plan.seccomp), Stage::seccomp);
  const int err = search_path(plan.argv[0], plan.path && *plan.path ? plan.path : "/usr/local/bin:/usr/bin:/bin",
                              [&plan](const char* file) {
                                ::execve(file, plan.argv, plan.envp);
                                return errno;
                              });
  StatusRecord rec{static_cast<uint32_t>(RecordKind::exec_failed), static_cast<uint32_t>(Stage::exec_command), 0, err};
  ssize_t ignored = ::write(kStatusFd, &rec, sizeof rec);
  (void)ignored;
  sys::exit_now(err == ENOENT ? 127 : 126);
}

}  // namespace sandrun::sandbox
