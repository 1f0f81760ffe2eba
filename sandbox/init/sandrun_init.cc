// sandrun-init: PID 1 of every container. Runs the command, reaps every zombie, forwards
// termination signals to the command, reports on the status pipe, exits with its status.
//
// It is linked statically and executed from a sealed memfd, so /proc/1/exe is never a
// writable host file (the runc CVE-2019-5736 class). It uses only system calls and a few
// libc functions that do not allocate.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox/status.h"

using sandrun::sandbox::kStatusFd;
using sandrun::sandbox::RecordKind;
using sandrun::sandbox::Stage;
using sandrun::sandbox::StatusRecord;

namespace {

// Signals passed on to the command; everything else sent to PID 1 is ignored.
constexpr int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};

void report(RecordKind kind, int32_t value) {
  StatusRecord rec{static_cast<uint32_t>(kind), static_cast<uint32_t>(Stage::exec_command), 0, value};
  ssize_t ignored = write(kStatusFd, &rec, sizeof rec);
  (void)ignored;
}

void noop_handler(int) {}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}

}  // namespace

int main(int argc, char** argv) {
  // Not dumpable: processes of the container cannot ptrace us or open /proc/1/fd.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  fcntl(kStatusFd, F_SETFD, FD_CLOEXEC);
  if (argc < 2) {
    report(RecordKind::exec_failed, EINVAL);
    return 127;
  }

  // A handler makes the signals deliverable to PID 1 at all; blocking them makes them wait
  // for sigwaitinfo below, so nothing runs in signal context.
  sigset_t all, old;
  sigfillset(&all);
  sigprocmask(SIG_BLOCK, &all, &old);
  struct sigaction sa = {};
  sa.sa_handler = noop_handler;
  for (int sig : kForwarded) sigaction(sig, &sa, nullptr);
  sigaction(SIGCHLD, &sa, nullptr);

  int exec_pipe[2];
  if (pipe2(exec_pipe, O_CLOEXEC) < 0) {
    report(RecordKind::exec_failed, errno);
    return 127;
  }
  pid_t child = fork();
  if (child < 0) {
    report(RecordKind::exec_failed, errno);
    return 127;
  }
  if (child == 0) {
    struct sigaction dfl = {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : kForwarded) sigaction(sig, &dfl, nullptr);
    sigaction(SIGCHLD, &dfl, nullptr);
    sigprocmask(SIG_SETMASK, &old, nullptr);
    execvp(argv[1], argv + 1);
    int err = errno;
    ssize_t ignored = write(exec_pipe[1], &err, sizeof err);
    (void)ignored;
    _exit(err == ENOENT ? 127 : 126);
  }
  close(exec_pipe[1]);
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(exec_pipe[0], &exec_errno, sizeof exec_errno);
  } while (n < 0 && errno == EINTR);
  close(exec_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    report(RecordKind::exec_failed, exec_errno);
  } else {
    report(RecordKind::started, 0);
  }

  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      for (int f : kForwarded) {
        if (f == sig) kill(child, sig);
      }
      continue;
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid != child) continue;
      // The command is done: report and exit; the kernel then kills whatever is left in
      // this PID namespace.
      if (exec_errno == 0) report(RecordKind::exited, status);
      _exit(exit_code_of(status));
    }
  }
}
