// Probes of what this kernel and host offer sandrun (syscalls, namespaces, mounts, limits),
// each returning a plain struct; `sandrun doctor` turns them into advice.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sandrun::sandbox::host {

// The oldest kernel sandrun's defaults work on: mount_setattr (5.12) sets the mount flags of
// every container mount; clone3, pidfd_open (5.3), openat2 (5.6) and close_range (5.9) are
// older.
inline constexpr int kMinKernelMajor = 5;
inline constexpr int kMinKernelMinor = 12;

struct KernelVersion {
  int major = 0;
  int minor = 0;
  int patch = 0;
  std::string release;  // uname -r, as the kernel reports it
  bool at_least(int maj, int min) const { return major > maj || (major == maj && minor >= min); }
};

// Parses a kernel release such as "6.1.0-18-amd64" or "5.15"; nullopt unless it starts with
// MAJOR.MINOR.
std::optional<KernelVersion> parse_kernel_release(std::string_view release);
// The running kernel (uname); {0, 0, 0} with the raw release if it cannot be parsed.
KernelVersion kernel_version();

// The outcome of trying something for real.
struct Try {
  bool works = false;
  int err = 0;       // errno of the step that failed (0 when it worked)
  std::string step;  // the step that failed, e.g. "unshare(CLONE_NEWUSER)"; "" when it worked
};

struct Identity {
  uid_t uid = 0;
  uid_t euid = 0;
  gid_t gid = 0;
  std::string user;  // the name of the real uid, or its number when it has no passwd entry
  bool root() const { return euid == 0; }
};
Identity identity();

// Tries, in a forked child, to unshare every namespace a container gets (mount, PID, IPC,
// UTS, network, cgroup); when not root, inside a new user namespace first.
Try try_container_namespaces();

struct UserNamespaces {
  std::optional<long> unprivileged_userns_clone;  // Debian/Ubuntu sysctl, when the kernel has it
  std::optional<long> max_user_namespaces;        // /proc/sys/user/max_user_namespaces
  std::optional<long> apparmor_restrict;          // Ubuntu's apparmor_restrict_unprivileged_userns
  Try current_user;   // unshare(CLONE_NEWUSER) in a child, as the calling user
  Try unprivileged;   // the same as an unprivileged uid (root drops to 65534 in the child first)
};
UserNamespaces probe_user_namespaces();

// Tries, in a forked child running as an unprivileged uid (65534 when called as root), to
// create a user and a mount namespace, map itself to root there and mount an overlay (on a
// tmpfs mounted over a fresh directory under `tmp_base`). Nothing remains afterwards.
Try try_overlay_in_userns(const std::string& tmp_base = "/tmp");

struct IdmappedMounts {
  bool syscall = false;  // mount_setattr exists (5.12)
  bool tried = false;    // only root can clone a mount tree to try it
  Try on_dir;            // MOUNT_ATTR_IDMAP on a detached clone of the directory's mount
  std::string dir;
};
// Probes idmapped mounts for the file system holding `dir` (the nearest existing ancestor).
IdmappedMounts probe_idmapped_mounts(const std::string& dir);

// One line of /etc/subuid or /etc/subgid that belongs to the user.
struct SubIdRange {
  uint64_t start = 0;
  uint64_t count = 0;
};
// The ranges of `content` (subuid(5) format: "name-or-id:start:count" per line, '#' comments)
// whose owner is `user` or the number `id`.
std::vector<SubIdRange> parse_subid(std::string_view content, std::string_view user, uint64_t id);

struct SubIds {
  std::string newuidmap;  // the path found, or "" when missing
  std::string newgidmap;
  bool newuidmap_privileged = false;  // setuid root or file capabilities
  bool newgidmap_privileged = false;
  bool subuid_file = false;
  bool subgid_file = false;
  std::vector<SubIdRange> uids;
  std::vector<SubIdRange> gids;
};
// Looks for newuidmap/newgidmap in `path_dirs` (":"-separated, like $PATH) and the user's
// ranges in `etc`/subuid and `etc`/subgid.
SubIds probe_subids(const std::string& user, uid_t uid, const std::string& etc = "/etc",
                    const std::string& path_dirs = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");

struct Seccomp {
  bool available = false;            // prctl(PR_GET_SECCOMP) works: CONFIG_SECCOMP
  int mode = -1;                     // 0 none, 2 already under a filter
  std::vector<std::string> actions;  // /proc/sys/kernel/seccomp/actions_avail
  bool errno_action = false;         // SECCOMP_RET_ERRNO and KILL_PROCESS available
  bool kill_process_action = false;
  std::vector<std::string> flags;          // SECCOMP_FILTER_FLAG_* the kernel knows ("tsync", ...)
  std::vector<std::string> missing_flags;  // ... and the ones it does not
};
Seccomp probe_seccomp();

Try try_pidfd_open();          // pidfd_open on ourselves (5.3)
Try try_clone3();              // clone3 with a bad size: EINVAL means it exists, ENOSYS not
Try try_clone_into_cgroup();   // CLONE_INTO_CGROUP known to clone3 (5.7; needs cgroup v2 to use)
Try try_openat2();             // openat2 on "/" (5.6)
Try try_mount_api();           // fsopen("tmpfs") and mount_setattr present (5.2, 5.12)

// Whether a /proc/filesystems text lists `fs`.
bool filesystems_list_has(std::string_view proc_filesystems, std::string_view fs);
bool kernel_has_filesystem(std::string_view fs);

struct FileLimit {
  uint64_t soft = 0;
  uint64_t hard = 0;  // RLIM_INFINITY as UINT64_MAX
  bool can_raise_hard = false;  // CAP_SYS_RESOURCE in the effective set
};
FileLimit probe_nofile();

struct StateDir {
  std::string path;
  bool exists = false;
  std::string checked;  // path, or its nearest existing ancestor where it would be created
  Try writable;         // creating (and removing) an entry in `checked`
  std::string fs_type;  // of `checked`: "ext4", "xfs", "tmpfs", "overlay", ... or "0x..."
  bool ext4_without_journal = false;  // of `checked` (see on_ext4_without_journal)
};
StateDir probe_state_dir(const std::string& path);
// Whether `path` is on an ext2/3/4 file system without a journal (its device's
// /sys/fs/ext4/DEV/journal_task says "<none>"). There ext4 does not reuse an inode freed in the
// last minute, or in the last six while its inode table block is not yet written back, and each
// new inode scans past all of those: a writable layer's churn costs less when every container's
// end writes the file system back (ContainerPlan::volatile_upper off). False when unsure.
bool on_ext4_without_journal(const std::string& path);
// The name of a statfs f_type, or its hex value when unknown.
std::string fs_type_name(uint64_t magic);

}  // namespace sandrun::sandbox::host
