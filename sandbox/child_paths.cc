// Masked and read-only paths under the container's /proc and /sys, set up by the child
// between clone and exec (see child.cc): system calls only, no allocation.
// Built without sanitizers, as child.cc.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <cstring>

#include "sandbox/child_internal.h"
#include "sandbox/dev_nodes.h"

namespace sandrun::sandbox {
namespace {

// Writes the decimal `n` between `prefix` and `suffix` into `buf`.
void format_cpu_path(char* buf, size_t size, const char* prefix, int n, const char* suffix) {
  size_t len = 0;
  for (const char* p = prefix; *p && len + 1 < size; ++p) buf[len++] = *p;
  char digits[12];
  format_decimal(digits, n);
  for (const char* p = digits; *p && len + 1 < size; ++p) buf[len++] = *p;
  for (const char* p = suffix; *p && len + 1 < size; ++p) buf[len++] = *p;
  buf[len] = 0;
}

// True when the directory `dirfd` (O_PATH) has no entry but "." and "..": masking it would
// hide nothing (e.g. /sys/kernel/security in a fresh sysfs, /proc/acpi without ACPI).
bool dir_is_empty(int dirfd) {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  alignas(8) char buf[512];
  bool empty = true;
  long n;
  while (empty && (n = ::syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
    for (long off = 0; off < n;) {
      const char* name = buf + off + 19;  // struct linux_dirent64: d_ino, d_off, d_reclen, d_type, d_name
      unsigned short reclen;
      ::memcpy(&reclen, buf + off + 16, sizeof reclen);
      if (!(name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0)))) empty = false;
      off += reclen;
    }
  }
  ::close(fd);
  return empty;
}

// Hides one path: a file gets sandrun's own empty file bound over it (never a host inode: a
// chmod, chown or touch of the masked path must not reach anything outside the container),
// read-only as the mount it comes from, so each bind is one mount(2) call; a directory gets an
// empty read-only tmpfs. Missing paths and empty directories are skipped; a symlink is never
// followed (RESOLVE_NO_SYMLINKS): these are sandrun's own proc and sysfs.
void mask_one(const Child& c, int rootfd, const char* path, int index) {
  int target = sys::openat2(rootfd, path, O_PATH | O_CLOEXEC, 0, kBeneathNoLinks);
  if (target < 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == EACCES) return;
    c.fail(Stage::mask_path, index);
  }
  struct stat st;
  c.check(::fstat(target, &st), Stage::mask_path, index);
  const FdPath at(target);
  if (!S_ISDIR(st.st_mode)) {
    // sandrun's own empty file in the attached device source.
    c.check(::mount(FdPath(c.dev_source, kEmptyFileName).text, at.text, nullptr, MS_BIND, nullptr), Stage::mask_path, index);
  } else if (!dir_is_empty(target)) {
    c.check(::mount("tmpfs", at.text, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    "size=0,nr_inodes=1,mode=0555"),
            Stage::mask_path, index);
  }
  ::close(target);
}

}  // namespace

void mask_paths(const Child& c, int rootfd) {
  constexpr int kCount = static_cast<int>(sizeof kMaskedPaths / sizeof kMaskedPaths[0]);
  for (int i = 0; i < kCount; ++i) mask_one(c, rootfd, kMaskedPaths[i], i);
  // Thermal throttling counters are a side channel on other tenants' load (GHSA-6fw5-f8r9-fgfm).
  for (int cpu = 0; cpu < c.plan.ncpus; ++cpu) {
    char path[96];
    format_cpu_path(path, sizeof path, "sys/devices/system/cpu/cpu", cpu, "/thermal_throttle");
    mask_one(c, rootfd, path, kCount + cpu);
  }
}

// Binds each path onto itself, then makes the bind read-only (with nosuid, nodev, noexec), as
// runc does.
void readonly_paths(const Child& c, int rootfd) {
  constexpr int kCount = static_cast<int>(sizeof kReadOnlyPaths / sizeof kReadOnlyPaths[0]);
  for (int i = 0; i < kCount; ++i) {
    int target = sys::openat2(rootfd, kReadOnlyPaths[i], O_PATH | O_CLOEXEC, 0, kBeneathNoLinks);
    if (target < 0) {
      if (errno == ENOENT) continue;
      c.fail(Stage::readonly_path, i);
    }
    const FdPath at(target);
    c.check(::mount(at.text, at.text, nullptr, MS_BIND | MS_REC, nullptr), Stage::readonly_path, i);
    // The bind now covers the fd's path: remount what the path leads to (the new mount).
    int bound = sys::openat2(rootfd, kReadOnlyPaths[i], O_PATH | O_CLOEXEC, 0, kBeneathNoLinks);
    if (bound < 0) c.fail(Stage::readonly_path, i);
    const FdPath now(bound);
    c.check(::mount(nullptr, now.text, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                    nullptr),
            Stage::readonly_path, i);
    ::close(bound);
    ::close(target);
  }
}

}  // namespace sandrun::sandbox
