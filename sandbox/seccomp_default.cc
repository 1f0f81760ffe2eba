// The default seccomp profile: Docker's (moby/profiles seccomp/default.json) as a table, with
// the conditional groups following the container's capabilities as Docker does.
//
// Deliberate tightenings over Docker, for a runner of untrusted CI jobs:
//  * keyctl, add_key and request_key are never allowed (Docker's first group has them): the
//    kernel keyring is not namespaced by the container and a CI job has no use for it.
//  * ptrace, process_vm_readv and process_vm_writev need CAP_SYS_PTRACE, like kcmp, pidfd_getfd
//    and process_madvise. Docker allows them for everyone on kernels >= 4.8. A job step rarely
//    debugs (a job that runs gdb or strace adds SYS_PTRACE), while ptrace would let one hostile
//    step read the memory of the job's other processes (secrets, tokens) and brings a long
//    record of kernel bugs (CVE-2019-13272).
//  * socket refuses AF_ALG (38) as well as AF_VSOCK (40), and the family is matched on all 64
//    bits of the argument: the kernel reads it as an int, so Docker's `arg0 != 40` lets
//    socket(1 << 32 | 40) through. Families above 63 (none exist; AF_MAX is 46) get EPERM
//    rather than EAFNOSUPPORT.
//  * Groups for other architectures (ppc64le, arm, s390, riscv64) are left out: the filter is
//    for x86_64 only, and seccomp.cc refuses the x32 and i386 ABIs with ENOSYS.
#include <linux/capability.h>
#include <sched.h>

#include "sandbox/seccomp_filter.h"

namespace sandrun::sandbox {
namespace {

using seccomp_profile::Action;
using seccomp_profile::ArgCmp;
using seccomp_profile::Op;
using seccomp_profile::Profile;

// Docker's first group: allowed for everyone whatever the arguments. Kept as Docker spells it,
// so names of other ABIs (chown32, *_time64, socketcall, ...) are in it and skipped on x86_64.
constexpr const char* kAllowed[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget",
    "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
    "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
    "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr",
    "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
    "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid",
    "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
    "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
    "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
    "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
    "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "getxattrat", "inotify_add_watch",
    "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy",
    "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set",
    "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen",
    "listmount", "listxattr", "listxattrat", "llistxattr", "_llseek", "lremovexattr", "lseek",
    "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create",
    "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2",
    "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open",
    "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
    "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv",
    "preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64",
    "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv",
    "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr",
    "removexattrat", "rename", "renameat", "renameat2", "restart_syscall", "riscv_hwprobe",
    "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget",
    "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
    "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
    "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
    "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
    "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
    "setuid32", "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown",
    "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
    "splice", "stat", "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat",
    "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
    "timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
    "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
    "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime", "utimensat",
    "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
    "writev",
};

// Docker's groups for amd64/x32/x86 (includes.arches).
constexpr const char* kX86Allowed[] = {"arch_prctl", "modify_ldt"};

// Docker's includes.caps groups: allowed when the container holds the capability. A name may be
// in several groups (bpf: SYS_ADMIN or BPF).
struct CapGroup {
  int cap;
  std::vector<const char*> names;
};

const std::vector<CapGroup>& cap_groups() {
  static const std::vector<CapGroup> groups = {
      {CAP_DAC_READ_SEARCH, {"open_by_handle_at"}},  // the "shocker" breakout otherwise
      {CAP_SYS_ADMIN,
       {"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
        "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
        "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
        "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare"}},
      {CAP_SYS_BOOT, {"reboot"}},
      {CAP_SYS_CHROOT, {"chroot"}},
      {CAP_SYS_MODULE, {"delete_module", "init_module", "finit_module"}},
      {CAP_SYS_PACCT, {"acct"}},
      // Docker also allows ptrace and process_vm_* for everyone on kernels >= 4.8; not here.
      {CAP_SYS_PTRACE,
       {"kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"}},
      {CAP_SYS_RAWIO, {"iopl", "ioperm"}},
      {CAP_SYS_TIME, {"settimeofday", "stime", "clock_settime", "clock_settime64"}},
      {CAP_SYS_TTY_CONFIG, {"vhangup"}},
      {CAP_SYS_NICE, {"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
      {CAP_SYSLOG, {"syslog"}},
      {CAP_BPF, {"bpf"}},
      {CAP_PERFMON, {"perf_event_open"}},
  };
  return groups;
}

// personality: only PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32 and the query form;
// READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE and the rest are refused.
constexpr uint64_t kPersonalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

// socket families allowed, as exact 64-bit matches: 0..37, 39, 41..63 (38 = AF_ALG and
// 40 = AF_VSOCK are refused). Blocks of 2^k are masked matches, so the upper 32 bits must be 0.
const std::vector<ArgCmp>& socket_families() {
  static const std::vector<ArgCmp> families = {
      {0, Op::kLe, 37, 0},          {0, Op::kEq, 39, 0},          {0, Op::kEq, 41, 0},
      {0, Op::kMaskedEq, ~1ull, 42}, {0, Op::kMaskedEq, ~3ull, 44}, {0, Op::kMaskedEq, ~15ull, 48},
  };
  return families;
}

// clone without a new namespace: CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP.
constexpr uint64_t kCloneNamespaceFlags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                          CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP;
static_assert(kCloneNamespaceFlags == 0x7E020000);

bool holds(CapSet caps, int cap) { return caps & (CapSet{1} << cap); }

Profile default_profile(CapSet caps) {
  Profile p;
  p.description = "default";
  p.note = "Docker-equivalent";
  p.default_action = {Action::kErrno, EPERM};
  const Action allow{Action::kAllow, 0};
  for (const char* name : kAllowed) p.rules.push_back({name, allow, {}});
  for (const char* name : kX86Allowed) p.rules.push_back({name, allow, {}});
  for (uint64_t persona : kPersonalities) p.rules.push_back({"personality", allow, {{0, Op::kEq, persona, 0}}});
  for (const ArgCmp& family : socket_families()) p.rules.push_back({"socket", allow, {family}});
  for (const CapGroup& group : cap_groups()) {
    if (!holds(caps, group.cap)) continue;
    for (const char* name : group.names) p.rules.push_back({name, allow, {}});
  }
  if (!holds(caps, CAP_SYS_ADMIN)) {
    p.rules.push_back({"clone", allow, {{0, Op::kMaskedEq, kCloneNamespaceFlags, 0}}});
    // seccomp cannot read clone3's flags (they sit behind a pointer); ENOSYS makes libc fall
    // back to clone, whose flags the rule above checks.
    p.rules.push_back({"clone3", {Action::kErrno, ENOSYS}, {}});
  }
  return p;
}

}  // namespace

Result<std::shared_ptr<const SeccompFilter>> compile_default_seccomp(CapSet caps) {
  return seccomp_profile::compile(default_profile(caps)).wrap("compile the default seccomp profile");
}

}  // namespace sandrun::sandbox
