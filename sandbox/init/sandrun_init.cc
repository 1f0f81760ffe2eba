// sandrun-init: PID 1 of every container. Runs the command, reaps every zombie, forwards
// termination signals to the command, reports on the status pipe, exits with its status (or,
// in "hold" mode, kills the rest of the container and waits for SIGKILL so that sandrun can
// collect the job's artifacts from its still-mounted file systems).
//
// Freestanding: no libc, only system calls. glibc's static start-up (TLS, ifunc relocations,
// tunables) cost more CPU than the init's whole job, once per container; this binary is a few
// KB and starts at once. It is executed from a sealed memfd, so /proc/1/exe is never a
// writable host file (the runc CVE-2019-5736 class).
#include <asm/signal.h>
#include <asm/unistd.h>
#include <linux/fcntl.h>
#include <linux/prctl.h>
#include <linux/wait.h>

#include <cstddef>
#include <cstdint>

#include "sandbox/path_search.h"
#include "sandbox/status.h"

using sandrun::sandbox::kInitNameHold;
using sandrun::sandbox::kStatusFd;
using sandrun::sandbox::kStopAndHoldSignal;
using sandrun::sandbox::RecordKind;
using sandrun::sandbox::Stage;
using sandrun::sandbox::StatusRecord;

// The compiler may emit calls to these for struct copies and zeroing.
extern "C" void* memcpy(void* dst, const void* src, size_t n) {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* s = static_cast<const unsigned char*>(src);
  while (n--) *d++ = *s++;
  return dst;
}
extern "C" void* memset(void* dst, int c, size_t n) {
  auto* d = static_cast<unsigned char*>(dst);
  while (n--) *d++ = static_cast<unsigned char>(c);
  return dst;
}

namespace {

long sys(long n, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0) {
  long ret;
  register long r10 asm("r10") = d;
  register long r8 asm("r8") = e;
  asm volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8) : "rcx", "r11", "memory");
  return ret;  // -errno on failure
}

[[noreturn]] void exit_now(int code) {
  for (;;) sys(__NR_exit_group, code);
}

// The kernel's sigaction layout; SA_RESTORER is mandatory on x86-64.
struct KernelSigaction {
  void (*handler)(int);
  unsigned long flags;
  void (*restorer)();
  uint64_t mask;
};
constexpr unsigned long kSaRestorer = 0x04000000;
constexpr int kSigChld = 17;
constexpr long kTcgets = 0x5401;     // TCGETS: is fd 0 a terminal?
constexpr long kTiocspgrp = 0x5410;  // TIOCSPGRP: tcsetpgrp

extern "C" void sandrun_init_restorer();
asm(".text\n.global sandrun_init_restorer\nsandrun_init_restorer:\n  mov $15, %eax\n  syscall\n");

void noop_handler(int) {}

// Signals passed on to the command; everything else sent to PID 1 is ignored.
constexpr int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH, SIGCONT};

void set_handler(int sig, void (*handler)(int)) {
  KernelSigaction sa = {handler, kSaRestorer, sandrun_init_restorer, 0};
  sys(__NR_rt_sigaction, sig, reinterpret_cast<long>(&sa), 0, 8);
}

void report(RecordKind kind, int32_t value) {
  StatusRecord rec{static_cast<uint32_t>(kind), static_cast<uint32_t>(Stage::exec_command), 0, value};
  sys(__NR_write, kStatusFd, reinterpret_cast<long>(&rec), sizeof rec);
}

const char* getenv_path(char** envp) {
  for (char** e = envp; *e; ++e) {
    const char* v = *e;
    if (v[0] == 'P' && v[1] == 'A' && v[2] == 'T' && v[3] == 'H' && v[4] == '=') return v + 5;
  }
  return "/usr/local/bin:/usr/bin:/bin";
}

bool same(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}

// Kills every other process of this PID namespace and reaps them all, the command included
// when it still runs (its wait status then lands in *command_status). Nothing is left that
// could change the container's files while they are collected. Repeating the kill after each
// reap catches a process forked while the previous kill was on its way.
void kill_all_and_reap(long command, int* command_status) {
  for (;;) {
    sys(__NR_kill, -1, 9);  // SIGKILL; PID 1 itself is spared by kill(-1)
    int status = 0;
    long pid = sys(__NR_wait4, -1, reinterpret_cast<long>(&status), 0x40000000 /* __WALL */, 0);
    if (pid == -10) return;  // ECHILD: nobody left
    if (pid == command) *command_status = status;
  }
}

// Keeps the mount namespace alive until sandrun has read what it needs and sends SIGKILL
// (which no handler can catch). Any other signal is taken and dropped.
[[noreturn]] void hold(uint64_t* all) {
  for (;;) {
    unsigned char info[128];
    long sig = sys(__NR_rt_sigtimedwait, reinterpret_cast<long>(all), reinterpret_cast<long>(info), 0, 8);
    if (sig == kSigChld) {
      int status;
      while (sys(__NR_wait4, -1, reinterpret_cast<long>(&status), WNOHANG | 0x40000000, 0) > 0) {
      }
    }
  }
}

int exit_code_of(int status) {
  if ((status & 0x7f) == 0) return (status >> 8) & 0xff;  // exited
  return 128 + (status & 0x7f);                          // killed by a signal
}

// The socket factory (ContainerPlan::socket_factory): a helper process that answers each byte
// sandrun writes on kSocketFactoryFd with an unconnected TCP socket of this network namespace,
// passed with SCM_RIGHTS, for the port proxy where sandrun cannot enter the namespace. The
// kernel's msghdr and cmsghdr layouts on x86-64 (no libc here).
struct IoVec {
  void* base;
  unsigned long len;
};
struct MsgHdr {
  void* name;
  int namelen;
  IoVec* iov;
  unsigned long iovlen;
  void* control;
  unsigned long controllen;
  int flags;
};
struct CmsgFd {
  unsigned long len;  // CMSG_LEN(sizeof(int)) = 20
  int level;          // SOL_SOCKET
  int type;           // SCM_RIGHTS
  int fd;
  int pad;            // CMSG_SPACE(sizeof(int)) = 24
};

[[noreturn]] void serve_sockets() {
  for (int fd = 0; fd <= 4; ++fd) sys(__NR_close, fd);  // nothing of the command's stdio or status
  for (int i = 0; i < sandrun::sandbox::kKeptFdCount; ++i) sys(__NR_close, sandrun::sandbox::kKeptFdBase + i);
  for (;;) {
    char request = 0;
    long n = sys(__NR_read, sandrun::sandbox::kSocketFactoryFd, reinterpret_cast<long>(&request), 1);
    if (n == -4) continue;  // EINTR
    if (n <= 0) exit_now(0);  // sandrun closed its end
    constexpr long kAfInet = 2, kSockStream = 1, kNonblock = 04000, kCloexec = 02000000;
    long sock = sys(__NR_socket, kAfInet, kSockStream | kNonblock | kCloexec, 0);
    int32_t err = sock < 0 ? static_cast<int32_t>(-sock) : 0;
    IoVec iov = {&err, sizeof err};
    CmsgFd cmsg = {20, 1, 1, static_cast<int>(sock), 0};
    MsgHdr msg = {nullptr, 0, &iov, 1, sock >= 0 ? &cmsg : nullptr, sock >= 0 ? sizeof cmsg : 0, 0};
    constexpr long kMsgNoSignal = 0x4000;
    sys(__NR_sendmsg, sandrun::sandbox::kSocketFactoryFd, reinterpret_cast<long>(&msg), kMsgNoSignal);
    if (sock >= 0) sys(__NR_close, sock);
  }
}

// The read ends of the output and status pipes, when sandrun left them to us (kKeptFdBase:
// the container outlives the daemon): held by init alone, never by the command.
void keep_pipes() {
  for (int i = 0; i < sandrun::sandbox::kKeptFdCount; ++i)
    sys(__NR_fcntl, sandrun::sandbox::kKeptFdBase + i, F_SETFD, FD_CLOEXEC);  // EBADF: none kept
}

void start_socket_factory() {
  if (sys(__NR_fcntl, sandrun::sandbox::kSocketFactoryFd, F_GETFD) < 0) return;  // not asked for
  long pid = sys(__NR_clone, kSigChld, 0, 0, 0, 0);  // fork
  if (pid == 0) serve_sockets();
  // Init and the command keep nothing of it (a failed fork: sandrun sees the factory closed).
  sys(__NR_close, sandrun::sandbox::kSocketFactoryFd);
}

[[noreturn]] void run(int argc, char** argv, char** envp) {
  // Not dumpable: processes of the container cannot ptrace us or open /proc/1/fd.
  sys(__NR_prctl, PR_SET_DUMPABLE, 0);
  sys(__NR_fcntl, kStatusFd, F_SETFD, FD_CLOEXEC);
  keep_pipes();
  start_socket_factory();
  if (argc < 2) {
    report(RecordKind::exec_failed, 22);
    exit_now(127);
  }
  const bool holding = same(argv[0], kInitNameHold);  // argv: sandrun-init[-hold] COMMAND...
  // A handler makes the signals deliverable to PID 1 at all; blocking them makes them wait
  // for rt_sigtimedwait below, so nothing runs in signal context.
  uint64_t all = ~0ULL, old = 0;
  sys(__NR_rt_sigprocmask, SIG_BLOCK, reinterpret_cast<long>(&all), reinterpret_cast<long>(&old), 8);
  for (int sig : kForwarded) set_handler(sig, noop_handler);
  set_handler(kSigChld, noop_handler);
  // Without a handler, PID 1 of a PID namespace never sees a signal whose default action
  // would kill it, even from sandrun.
  if (holding) set_handler(kStopAndHoldSignal, noop_handler);

  int exec_pipe[2];
  if (long rc = sys(__NR_pipe2, reinterpret_cast<long>(exec_pipe), O_CLOEXEC); rc < 0) {
    report(RecordKind::exec_failed, static_cast<int32_t>(-rc));
    exit_now(127);
  }
  long child = sys(__NR_clone, kSigChld, 0, 0, 0, 0);  // fork
  if (child < 0) {
    report(RecordKind::exec_failed, static_cast<int32_t>(-child));
    exit_now(127);
  }
  if (child == 0) {
    // With a terminal (ContainerStart::tty: ours, controlling, as 0, 1 and 2): the command
    // leads its own process group and is the terminal's foreground, as tini does, so ^C and
    // SIGWINCH from the terminal reach it (once: not also through init's forwarding) and it
    // may read the terminal. Signals are still blocked here, so tcsetpgrp's SIGTTOU is not sent.
    unsigned char termios[64];
    if (sys(__NR_ioctl, 0, kTcgets, reinterpret_cast<long>(termios)) == 0 && sys(__NR_setpgid, 0, 0) == 0) {
      int pgrp = static_cast<int>(sys(__NR_getpid));
      sys(__NR_ioctl, 0, kTiocspgrp, reinterpret_cast<long>(&pgrp));
    }
    for (int sig : kForwarded) set_handler(sig, SIG_DFL);
    set_handler(kSigChld, SIG_DFL);
    if (holding) set_handler(kStopAndHoldSignal, SIG_DFL);
    sys(__NR_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&old), 0, 8);
    char** args = argv + 1;
    int err = sandrun::sandbox::search_path(args[0], getenv_path(envp), [&](const char* file) {
      return static_cast<int>(-sys(__NR_execve, reinterpret_cast<long>(file), reinterpret_cast<long>(args),
                                   reinterpret_cast<long>(envp)));
    });
    sys(__NR_write, exec_pipe[1], reinterpret_cast<long>(&err), sizeof err);
    exit_now(err == 2 ? 127 : 126);
  }
  sys(__NR_close, exec_pipe[1]);
  int exec_errno = 0;
  long n;
  do {
    n = sys(__NR_read, exec_pipe[0], reinterpret_cast<long>(&exec_errno), sizeof exec_errno);
  } while (n == -4);  // EINTR
  sys(__NR_close, exec_pipe[0]);
  if (n == static_cast<long>(sizeof exec_errno)) {
    report(RecordKind::exec_failed, exec_errno);
  } else {
    exec_errno = 0;
    report(RecordKind::started, 0);
  }

  for (;;) {
    unsigned char info[128];  // siginfo_t
    long sig = sys(__NR_rt_sigtimedwait, reinterpret_cast<long>(&all), reinterpret_cast<long>(info), 0, 8);
    if (sig < 0) continue;
    if (sig == kStopAndHoldSignal && holding && exec_errno == 0) {
      // The job ran out of time: end the command and the rest, keep the files readable.
      int status = 9;  // killed by SIGKILL, unless it had exited just before
      kill_all_and_reap(child, &status);
      report(RecordKind::exited, status);
      hold(&all);
    }
    if (sig != kSigChld) {
      for (int f : kForwarded) {
        if (f == sig) sys(__NR_kill, child, sig);
      }
      continue;
    }
    int status = 0;
    long pid;
    while ((pid = sys(__NR_wait4, -1, reinterpret_cast<long>(&status), WNOHANG, 0)) > 0) {
      if (pid != child) continue;
      if (holding && exec_errno == 0) {
        kill_all_and_reap(child, &status);
        report(RecordKind::exited, status);
        hold(&all);
      }
      // The command is done: report and exit; the kernel then kills whatever is left in
      // this PID namespace.
      if (exec_errno == 0) report(RecordKind::exited, status);
      exit_now(exit_code_of(status));
    }
  }
}

}  // namespace

extern "C" [[noreturn]] void sandrun_init_main(long* sp) {
  const int argc = static_cast<int>(sp[0]);
  char** argv = reinterpret_cast<char**>(sp + 1);
  char** envp = argv + argc + 1;
  run(argc, argv, envp);
}

// The entry point: the kernel leaves argc, argv and envp on the stack.
asm(".text\n.global _start\n_start:\n  xor %ebp, %ebp\n  mov %rsp, %rdi\n  and $-16, %rsp\n  call sandrun_init_main\n  hlt\n");
