// sandrun-probe: a static program run inside sandboxes by the tests. It reports what the
// container sees (ids, fds, namespaces, capabilities) and tries what must be refused.
//   probe pid | ppid | ids | fds | ns NAME | hostname | write-stdout BYTES | exit N | kill-self SIG
//   probe caps            the Cap*, NoNewPrivs and Seccomp lines of /proc/self/status
//   probe try NAME...     one line per NAME, "NAME refused EPERM" or "NAME ALLOWED", each tried
//                         in a child of its own; exit 0 when every one was refused (kAttempts
//                         lists the names)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

int list_fds() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) {
    perror("opendir /proc/self/fd");
    return 1;
  }
  int self = dirfd(d);
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    if (fd == self) continue;
    char link[256], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    printf("%d %s\n", fd, target);
  }
  closedir(d);
  return 0;
}

int write_stdout(long long bytes) {
  static char buf[65536];
  for (size_t i = 0; i < sizeof buf; ++i) buf[i] = static_cast<char>('a' + i % 26);
  while (bytes > 0) {
    size_t chunk = bytes < static_cast<long long>(sizeof buf) ? static_cast<size_t>(bytes) : sizeof buf;
    ssize_t n = write(1, buf, chunk);
    if (n <= 0) return 1;
    bytes -= n;
  }
  return 0;
}


// ---- probe caps ----

int print_security_status() {
  FILE* f = fopen("/proc/self/status", "re");
  if (!f) {
    perror("/proc/self/status");
    return 1;
  }
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, "Cap", 3) || !strncmp(line, "NoNewPrivs:", 11) || !strncmp(line, "Seccomp", 7)) {
      fputs(line, stdout);
    }
  }
  fclose(f);
  return 0;
}

// ---- probe try NAME... ----
// Each attempt returns 0 when the operation was permitted and the errno that refused it
// otherwise. The arguments are chosen so that a permitted call changes nothing that matters
// (an invalid magic, a not-mounted directory, the probe's own namespaces): a harmless failure
// that can only come after the permission check (EINVAL and the like) counts as permitted.

int result(long r) { return r < 0 ? errno : 0; }

// Permitted if the call failed with `harmless` (reached past the permission checks).
int permitted_unless(long r, int harmless) {
  if (r >= 0) return 0;
  return errno == harmless ? 0 : errno;
}

// mount(2) with no filesystem type: EINVAL once the CAP_SYS_ADMIN check has passed.
int try_mount() { return permitted_unless(mount(nullptr, "/", nullptr, 0, nullptr), EINVAL); }

// umount2 of a directory that is not a mount point: EPERM without the privilege, EINVAL with.
int try_umount() { return permitted_unless(umount2("/proc/self/fdinfo", 0), EINVAL); }

int try_unshare() { return result(unshare(CLONE_NEWNS)); }
int try_unshare_user() { return result(unshare(CLONE_NEWUSER)); }

// Joins the namespace it is already in: still needs CAP_SYS_ADMIN.
int try_setns() {
  int fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return permitted_unless(setns(-1, 0), EBADF);  // no /proc: the filter still decides
  return result(setns(fd, 0));
}

int try_keyctl() {
  return permitted_unless(syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0), ENOKEY);
}

int try_bpf() {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  return result(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
}

int try_perf_event_open() {
  struct perf_event_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.type = PERF_TYPE_SOFTWARE;
  attr.size = sizeof attr;
  attr.config = PERF_COUNT_SW_CPU_CLOCK;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  return result(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
}

// PTRACE_SEIZE makes the same permission check as PTRACE_ATTACH without stopping the target;
// the probe exits right after, which detaches it.
int try_ptrace(pid_t pid) { return result(syscall(SYS_ptrace, PTRACE_SEIZE, pid, 0, 0)); }
int try_ptrace_init() { return try_ptrace(1); }
int try_ptrace_parent() { return try_ptrace(getppid()); }

// The capability check comes before the magic check: a bad magic2 gives EINVAL, never a reboot.
int try_reboot() { return permitted_unless(syscall(SYS_reboot, 0xfee1deadL, 0L, 0L, 0L), EINVAL); }

// 17 segments (KEXEC_SEGMENT_MAX + 1) and undefined flags: EINVAL after the permission check.
// Never 0 segments with valid flags: that would unload a loaded crash kernel.
int try_kexec() { return permitted_unless(syscall(SYS_kexec_load, 0L, 17L, 0L, 0xdead0000L), EINVAL); }

// An empty image fails to parse (ENOEXEC, EINVAL or EFAULT) after the CAP_SYS_MODULE check.
int try_init_module() {
  long r = syscall(SYS_init_module, nullptr, 0L, "");
  if (r < 0 && (errno == ENOEXEC || errno == EINVAL || errno == EFAULT)) return 0;
  return result(r);
}

// The x32 ABI: getpid with bit 30 set.
int try_x32() { return result(syscall(0x40000000L | SYS_getpid)); }

// The i386 ABI through int 0x80: getpid is 20 there.
int try_i386() {
  long ret;
  __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "r8", "r9", "r10", "r11", "memory");
  int r = static_cast<int>(ret);
  return r < 0 && r > -4096 ? -r : 0;
}

int try_io_uring() {
  struct io_uring_params params;
  memset(&params, 0, sizeof params);
  return result(syscall(SYS_io_uring_setup, 1, &params));
}

int try_userfaultfd() { return result(syscall(SYS_userfaultfd, O_CLOEXEC)); }

// A made-up handle: ESTALE or EINVAL means the privilege check passed.
int try_open_by_handle_at() {
  struct {
    unsigned int handle_bytes;
    int handle_type;
    unsigned char f_handle[8];
  } handle = {8, 1, {}};
  long r = syscall(SYS_open_by_handle_at, AT_FDCWD, &handle, O_RDONLY);
  if (r < 0 && (errno == ESTALE || errno == EINVAL || errno == EBADF)) return 0;
  return result(r);
}

// glibc's personality() reports errors as a value without errno: call the kernel directly.
int try_personality() {
  long old = syscall(SYS_personality, 0xffffffffL);
  long r = syscall(SYS_personality, static_cast<long>(READ_IMPLIES_EXEC));
  if (r >= 0 && old >= 0) syscall(SYS_personality, old);
  return result(r);
}

// A masked /proc/kcore reads as empty (/dev/null over it): refused with ENODATA.
int try_read_kcore() {
  int fd = open("/proc/kcore", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  char byte;
  ssize_t n = read(fd, &byte, 1);
  int err = n < 0 ? errno : n == 0 ? ENODATA : 0;
  close(fd);
  return err;
}

// Writes `data` to a file that must be read-only or masked in a container.
int try_write(const char* path, const char* data, size_t len) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  ssize_t n = write(fd, data, len);
  int err = n < 0 ? errno : 0;
  close(fd);
  return err;
}

// Writes the current hostname back: no change even where permitted.
int try_write_proc_sys() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return errno;
  return try_write("/proc/sys/kernel/hostname", name, strlen(name));
}

// 'h' only prints the sysrq help to the kernel log.
int try_sysrq() { return try_write("/proc/sysrq-trigger", "h", 1); }

struct Attempt {
  const char* name;
  int (*run)();
};

const Attempt kAttempts[] = {
    {"mount", try_mount},
    {"umount", try_umount},
    {"unshare", try_unshare},
    {"unshare-user", try_unshare_user},
    {"setns", try_setns},
    {"keyctl", try_keyctl},
    {"bpf", try_bpf},
    {"perf_event_open", try_perf_event_open},
    {"ptrace-init", try_ptrace_init},
    {"ptrace-parent", try_ptrace_parent},
    {"reboot", try_reboot},
    {"kexec", try_kexec},
    {"init_module", try_init_module},
    {"x32", try_x32},
    {"i386", try_i386},
    {"io_uring", try_io_uring},
    {"userfaultfd", try_userfaultfd},
    {"open_by_handle_at", try_open_by_handle_at},
    {"personality", try_personality},
    {"read-kcore", try_read_kcore},
    {"write-proc-sys", try_write_proc_sys},
    {"sysrq", try_sysrq},
};

const Attempt* find_attempt(const char* name) {
  for (const Attempt& a : kAttempts) {
    if (!strcmp(a.name, name)) return &a;
  }
  return nullptr;
}

// Runs one attempt in a child of its own, so that one that succeeds (unshare-user moves into a
// new user namespace, ptrace seizes a process) cannot change what the next one sees. Prints
// the verdict; returns whether the attempt was refused.
bool run_attempt(const Attempt& a) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) {
    printf("%s refused-fork %s\n", a.name, strerrorname_np(errno));
    return false;  // nothing was tried: not a pass
  }
  if (pid == 0) {
    errno = 0;
    _exit(a.run() & 0xff);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {  // a filter's KILL action, or no int 0x80 entry at all (SIGSEGV)
    const char* sig = sigabbrev_np(WTERMSIG(status));
    printf("%s refused SIG%s\n", a.name, sig ? sig : "?");
    return true;
  }
  const int err = WEXITSTATUS(status);
  if (err == 0) {
    printf("%s ALLOWED\n", a.name);
    return false;
  }
  const char* name = strerrorname_np(err);
  printf("%s refused %s\n", a.name, name ? name : "E?");
  return true;
}

int try_all(int n, char** names) {
  for (int i = 0; i < n; ++i) {
    if (!find_attempt(names[i])) {
      fprintf(stderr, "probe: unknown attempt %s; known:", names[i]);
      for (const Attempt& a : kAttempts) fprintf(stderr, " %s", a.name);
      fprintf(stderr, "\n");
      return 2;
    }
  }
  bool all_refused = true;
  for (int i = 0; i < n; ++i) all_refused &= run_attempt(*find_attempt(names[i]));
  fflush(stdout);
  return all_refused ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: probe pid|ppid|ids|fds|ns NAME|hostname|write-stdout BYTES|exit N|kill-self SIG|segv|caps|try NAME...\n");
    return 2;
  }
  const char* cmd = argv[1];
  if (!strcmp(cmd, "pid")) return printf("%d\n", getpid()) < 0;
  if (!strcmp(cmd, "ppid")) return printf("%d\n", getppid()) < 0;
  if (!strcmp(cmd, "ids")) return printf("uid=%d gid=%d euid=%d egid=%d\n", getuid(), getgid(), geteuid(), getegid()) < 0;
  if (!strcmp(cmd, "fds")) return list_fds();
  if (!strcmp(cmd, "ns") && argc > 2) {
    char path[256], target[256];
    snprintf(path, sizeof path, "/proc/self/ns/%s", argv[2]);
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n < 0) {
      perror(path);
      return 1;
    }
    target[n] = 0;
    printf("%s\n", target);
    return 0;
  }
  if (!strcmp(cmd, "hostname")) {
    char h[256] = {};
    gethostname(h, sizeof h - 1);
    printf("%s\n", h);
    return 0;
  }
  if (!strcmp(cmd, "write-stdout") && argc > 2) return write_stdout(atoll(argv[2]));
  if (!strcmp(cmd, "exit") && argc > 2) return atoi(argv[2]);
  if (!strcmp(cmd, "segv")) {
    // A real fault: the kernel forces SIGSEGV even on a PID 1 that has no handler.
    volatile int* volatile nowhere = nullptr;
    return *nowhere;
  }
  if (!strcmp(cmd, "caps")) return print_security_status();
  if (!strcmp(cmd, "try") && argc > 2) return try_all(argc - 2, argv + 2);
  if (!strcmp(cmd, "kill-self") && argc > 2) {
    signal(atoi(argv[2]), SIG_DFL);
    kill(getpid(), atoi(argv[2]));
    pause();
  }
  fprintf(stderr, "probe: unknown command %s\n", cmd);
  return 2;
}
