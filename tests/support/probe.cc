// sandrun-probe: a static program run inside sandboxes by the tests. It reports what the
// container sees (ids, fds, namespaces) and tries what must be refused.
//   probe pid | ppid | ids | fds | ns NAME | hostname | write-stdout BYTES | exit N | kill-self SIG
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: probe pid|ppid|ids|fds|ns NAME|hostname|write-stdout BYTES|exit N|kill-self SIG|segv\n");
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
  if (!strcmp(cmd, "kill-self") && argc > 2) {
    signal(atoi(argv[2]), SIG_DFL);
    kill(getpid(), atoi(argv[2]));
    pause();
  }
  fprintf(stderr, "probe: unknown command %s\n", cmd);
  return 2;
}
