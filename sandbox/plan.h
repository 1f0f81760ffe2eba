// ChildPlan: the flat, fully prepared plan the child executes between clone and exec.
// The parent builds it (allocating freely); the child only reads it and makes system calls.
#pragma once

#include <linux/filter.h>
#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "sandbox/container_plan.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::sandbox {

struct BindPlan {
  const char* source;
  const char* target;
  bool readonly;
  bool is_dir;
  int tree = -1;  // a detached mount the parent prepared (idmapped, flags set), or -1
  // A copy-on-write volume (Bind::overlay_upper): the overlay's mount(2) options, with host
  // paths, or (in a user namespace) fd numbers relative to /proc/self/fd, where the child
  // goes to mount it. Null: a bind.
  const char* overlay_options = nullptr;
  bool overlay_by_fd = false;
  // A tmpfs (Bind::tmpfs): its fsconfig key/value pairs, null-terminated; null: not a tmpfs.
  const char* const* tmpfs_options = nullptr;
};

struct ChildPlan {
  // Descriptors as numbered in the parent (all O_CLOEXEC); the child places them at 0..4.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
  int status_fd = -1;
  int init_fd = -1;  // the sealed sandrun-init memfd, or -1 to exec the command directly
  int factory_fd = -1;  // the container's end of the socket factory (kSocketFactoryFd), or -1
  // Placement::survive_parent: no parent-death signal after setup, and the read ends of the
  // stdout, stderr and status pipes placed at kKeptFdBase.. for sandrun-init to hold.
  bool survive_parent = false;
  int keep_fds[3] = {-1, -1, -1};
  // A terminal instead of stdin_fd, stdout_fd and stderr_fd: the child opens a pty in the
  // container's /dev/pts, sends its master on this socket and takes the slave as 0, 1 and 2,
  // its controlling terminal, of this size. -1: no terminal.
  int tty_socket = -1;
  uint16_t tty_rows = 24;
  uint16_t tty_cols = 80;

  const char* root_dir = nullptr;
  // A detached, read-only mount of the slot's device directory (dev_nodes.h) that the child
  // attaches inside its /dev to bind each node and the masks' empty file from, or -1
  // (rootless: the host's nodes are bound, and the empty file is made in the container's /dev).
  int dev_tree = -1;
  const char* overlay_options = nullptr;
  // An image with more layers than fit in one mount option string (4 KiB of 64-digit paths):
  // overlay_options is null, and the child opens each layer dir in its own mount namespace and
  // names it by fd number, relative to /proc/self/fd (child_overlay.cc).
  const char* const* ovl_layer_paths = nullptr;  // top-most first, as lowerdir
  size_t novl_layer_paths = 0;
  const char* ovl_tail = nullptr;  // the options after lowerdir: ",upperdir=...,workdir=..."
  char* ovl_buffer = nullptr;      // room for "lowerdir=N:N:..." and the tail
  size_t ovl_buffer_size = 0;
  const BindPlan* binds = nullptr;
  size_t nbinds = 0;
  const char* hostname = nullptr;
  size_t hostname_len = 0;
  bool new_net = true;
  const char* workdir = "/";
  uid_t uid = 0;
  gid_t gid = 0;
  const gid_t* groups = nullptr;
  size_t ngroups = 0;
  char* const* argv = nullptr;  // sandrun-init's argv (init, command...) or the command's
  char* const* envp = nullptr;
  const char* path = nullptr;   // the container's PATH, to find the command without an init

  // cgroup v1: the `tasks` file of each hierarchy, written "0" first thing (on v2 the clone
  // itself puts the child into its cgroup). Then a cgroup namespace rooted there.
  const int* cgroup_procs = nullptr;
  size_t ncgroup_procs = 0;

  // Hardening, applied after the mounts; the seccomp filter is loaded last.
  uint64_t capabilities = 0;
  int last_cap = 40;
  bool no_new_privs = true;
  const struct sock_fprog* seccomp = nullptr;
  bool read_only_rootfs = false;
  bool mask_paths = true;
  int ncpus = 1;                 // CPUs configured: /sys/devices/system/cpu/cpuN/* to mask
  uint64_t core_limit = 0;
  bool set_nofile = false;
  uint64_t nofile_soft = 0;
  uint64_t nofile_hard = 0;

  // User namespace: the child was cloned with CLONE_NEWUSER (sharing our memory, see
  // sandbox.cc) and first waits for its release on `userns_sync`, a socket (the parent wrote
  // its maps and sends the idmapped mounts of own_ns_fds; end-of-file: the parent failed and
  // says why), then becomes root of the namespace.
  bool userns = false;
  int userns_sync = -1;        // read end
  int userns_sync_parent = -1; // the parent's write end, closed at once by the child
  bool userns_setgroups = true;  // setgroups(2) is allowed (false: "deny" was written)
  // The container's root may be unable to walk the host paths to the state directory (host
  // root's, mode 0700), so with a user namespace the child takes everything from fds the
  // parent opened: the overlay's dirs as fd numbers relative to /proc/self/fd (the child
  // chdir()s there), its mount point by fd. fsconfig() takes at most 255 bytes per value:
  // longer, the layers go one by one with "lowerdir+" (Linux 6.8).
  const char* ovl_lower = nullptr;  // "5:6"
  const char* const* ovl_lower_parts = nullptr;  // {"5", "6"}
  size_t novl_lower_parts = 0;
  const char* ovl_upper = nullptr;  // "7"
  const char* ovl_work = nullptr;
  bool ovl_volatile = true;         // ContainerPlan::volatile_upper
  int root_fd = -1;                 // O_PATH of root_dir
  // Those fds were opened in sandrun's mount namespace; the child opens each path again in its
  // own (as host uid 0, which still owns root's 0700 state dir) onto the same number, before it
  // becomes the namespace's root.
  const char* const* reopen_paths = nullptr;
  const int* reopen_fds = nullptr;
  size_t nreopen = 0;
  // Idmapped copies of the layers (root's remapped range): layer_fds[i] is attached over
  // layer_targets[i] (O_PATH of the layer dir) in the container's mount namespace, where
  // overlayfs accepts it as a lower layer (it clones only mounts of the mounter's namespace).
  const int* layer_fds = nullptr;
  const int* layer_targets = nullptr;
  size_t nlayer_fds = 0;
  // Of those, the ones idmapped with the container's own user namespace: sandrun makes them
  // once it has written the maps and sends them with the release (SCM_RIGHTS on userns_sync);
  // the child puts the i-th it receives on own_ns_fds[i] (until then a placeholder).
  const int* own_ns_fds = nullptr;
  size_t nown_ns_fds = 0;
};

// At most this many fds go in one release message (the kernel's SCM_MAX_FD is 253).
inline constexpr size_t kFdsPerMessage = 250;

// Owns every string and array a ChildPlan points into.
class PreparedPlan {
 public:
  // Validates `spec` and its placement (absolute paths, non-empty argv, sane hostname) and
  // flattens them.
  // Heap-allocated and pinned: the plan points into the strings it owns.
  static Result<std::unique_ptr<PreparedPlan>> make(const ContainerPlan& spec, const Placement& place, bool with_init);
  PreparedPlan(const PreparedPlan&) = delete;
  PreparedPlan& operator=(const PreparedPlan&) = delete;

  // The plan, with the descriptors still to be filled in by the caller.
  ChildPlan& plan() { return plan_; }
  // The directories to idmap with the container's own user namespace once it exists, in the
  // order of ChildPlan::own_ns_fds.
  const std::vector<std::string>& own_ns_trees() const { return own_ns_paths_; }

 private:
  PreparedPlan() = default;
  // Userns fields of the plan; as root, the idmapped mounts of layers and owner-mapped binds.
  Result<void> prepare_userns(const ContainerPlan& spec, const Placement& place);
  // As root, the plain binds as detached mounts with their flags set, for the child to attach:
  // in a user namespace all of them (the container's root may not reach them; idmapped where
  // the owner is shown as the job's user), else those of resolved paths (Bind::resolved: the
  // child would walk the path again), opened without following symlinks.
  Result<void> prepare_bind_trees(const ContainerPlan& spec);
  // An O_PATH fd of `path` that the child opens again in its own mount namespace.
  Result<int> open_reopened(const std::string& path);
  // The options of the copy-on-write volumes (BindPlan::overlay_options).
  Result<void> prepare_bind_overlays(const ContainerPlan& spec);
  // In a user namespace: the copy-on-write volume `i` named by fds (its lower idmapped as root).
  Result<void> prepare_bind_overlay_fds(size_t i, int layer_ns_for_owner);

  std::string overlay_options_;
  std::string root_dir_;
  std::string hostname_;
  std::string workdir_;
  std::string path_;
  std::vector<Bind> binds_;
  std::vector<BindPlan> bind_plans_;
  std::vector<std::string> bind_overlay_options_;  // one per bind; empty for a plain bind
  std::vector<std::vector<const char*>> tmpfs_option_ptrs_;  // one per bind (into binds_)
  std::vector<gid_t> groups_;
  std::vector<std::string> argv_;
  std::vector<std::string> env_;
  std::vector<char*> argv_ptrs_;
  std::vector<char*> env_ptrs_;
  std::shared_ptr<const SeccompFilter> seccomp_;  // keeps the BPF program alive
  std::vector<UniqueFd> trees_;        // idmapped detached mounts (layers, owner-mapped binds)
  std::vector<int> layer_fds_;
  std::vector<int> layer_targets_;
  std::vector<std::string> own_ns_paths_;
  std::vector<int> own_ns_fds_;
  std::string ovl_lower_, ovl_upper_, ovl_work_;
  std::vector<std::string> ovl_lower_parts_;
  std::vector<const char*> ovl_lower_part_ptrs_;
  std::vector<std::string> ovl_layer_paths_;  // many layers (ChildPlan::ovl_layer_paths)
  std::vector<const char*> ovl_layer_path_ptrs_;
  std::string ovl_tail_;
  std::vector<char> ovl_buffer_;
  std::vector<std::string> reopen_paths_;
  std::vector<const char*> reopen_path_ptrs_;
  std::vector<int> reopen_fds_;
  ChildPlan plan_;
};

// The paths hidden from every container (a file gets sandrun's own empty file, read-only; a
// directory an empty read-only tmpfs) and those made read-only, as Docker/runc do; relative to the root.
inline constexpr const char* kMaskedPaths[] = {
    "proc/acpi",       "proc/asound",         "proc/interrupts", "proc/kcore",
    "proc/keys",       "proc/latency_stats",  "proc/sched_debug", "proc/scsi",
    "proc/timer_list", "proc/timer_stats",    "sys/firmware",     "sys/devices/virtual/powercap",
    "sys/kernel/security", "sys/kernel/debug",
};
inline constexpr const char* kReadOnlyPaths[] = {
    "proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger",
};

// Escapes a path for overlayfs's option string (',' ':' and '\' are special there).
std::string overlay_escape(const std::string& path);

// Executes the plan in the freshly cloned child; never returns. Async-signal-safe.
[[noreturn]] void run_child(const ChildPlan& plan);
// clone()'s entry point: `plan` is a const ChildPlan*.
int child_entry(void* plan);

}  // namespace sandrun::sandbox
