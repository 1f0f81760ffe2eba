// The fixed-size records a sandbox's child and its init send to sandrun on the status pipe.
// Shared with sandbox/init/ (a static program), so this header includes nothing but <cstdint>.
#pragma once

#include <cstdint>

namespace sandrun::sandbox {

// The descriptor on which sandrun-init finds the status pipe.
inline constexpr int kStatusFd = 3;
// With ContainerPlan::socket_factory, sandrun-init finds its end of the socket factory here
// (a SOCK_SEQPACKET socket): it forks a helper that answers each byte it reads with an
// unconnected TCP socket made in the container's network namespace (SCM_RIGHTS), or with
// the errno of socket() and no fd. Neither init nor the command keeps it.
inline constexpr int kSocketFactoryFd = 5;
// With Placement::survive_parent, sandrun-init holds the read ends of the container's stdout,
// stderr and status pipes here (kKeptFdBase + 0, 1, 2; close-on-exec: the command never has
// them), so that the pipes outlive the daemon that reads them: a write never gets EPIPE, and
// the next daemon takes them back with pidfd_getfd (runner/engine/container_adopt.h).
inline constexpr int kKeptFdBase = 6;
inline constexpr int kKeptFdCount = 3;

// The signal sandrun sends to a holding sandrun-init (ContainerPlan::hold_after_exit) when the
// job must end early (its timeout): init kills the command and everything else in the
// container, reports the command's death as `exited`, and holds like after a normal exit, so
// the job's artifacts can still be collected. SIGRTMIN+2 (glibc's SIGRTMIN is 34).
inline constexpr int kStopAndHoldSignal = 36;

// sandrun-init's argv[0] says what it does once the command has exited: "sandrun-init" exits
// with the command's status (the kernel kills the rest); kInitNameHold kills the rest,
// reports, then waits for SIGKILL. argv[0] rather than an extra argument: a container without
// artifacts sees exactly the same /proc/1/cmdline as before, and no command name is ambiguous.
inline constexpr char kInitName[] = "sandrun-init";
inline constexpr char kInitNameHold[] = "sandrun-init-hold";

// Each step of the child between clone and exec; a failure record names one of them.
enum class Stage : uint32_t {
  none = 0,
  mount_private,    // make the copied mount tree a slave of the host's
  mount_overlay,    // the overlay root on the job's mount point
  open_root,
  mount_proc,
  mount_dev,
  dev_node,         // index: which device
  mount_devpts,
  dev_symlink,
  mount_shm,
  mount_sys,
  mount_tmp,
  bind_source,      // index: which bind
  bind_target,
  bind_mount,
  bind_readonly,
  hostname,
  loopback,
  pivot_root,
  workdir,
  set_groups,
  set_gid,
  set_uid,
  fds,
  exec_init,
  exec_command,     // sent by sandrun-init (or the child itself without an init)
  cgroup_join,      // index: which hierarchy (v1)
  cgroup_ns,
  mask_path,        // index: into kMaskedPaths (or kMaskedPaths' size + CPU for thermal_throttle)
  readonly_path,    // index: into kReadOnlyPaths
  readonly_root,
  rlimit,           // index: the resource
  capabilities,
  no_new_privs,
  seccomp,
  userns_root,      // become root of the user namespace (setgroups/setresgid/setresuid 0)
  layer_idmap,      // index: which layer's idmapped mount could not be attached
  userns_reopen,    // index: which of the overlay's dirs (ChildPlan::reopen_paths)
  bind_overlay,     // index: which bind (a copy-on-write one: Bind::overlay_upper)
  dev_source,       // attach (or detach) the device nodes' source in /dev (child.cc)
  tty,              // open a pty in the container's /dev/pts, make it the controlling terminal
  exec_join,        // an exec: join the running container's namespaces (setns)
  exec_root,        // an exec: take the container's root (chroot to PID 1's)
  exec_stdin,       // an exec: open the container's /dev/null as stdin
};

enum class RecordKind : uint32_t {
  setup_failed = 1,  // {stage, index, errno}: the child gave up before exec
  exec_failed = 2,   // {exec_command, 0, errno}: the command could not be executed
  started = 3,       // the command was executed (sent by sandrun-init)
  exited = 4,        // {value = wait status of the command} (sent by sandrun-init)
};

struct StatusRecord {
  uint32_t kind;
  uint32_t stage;
  int32_t index;
  int32_t value;  // errno for failures, the wait status for `exited`
};
static_assert(sizeof(StatusRecord) == 16, "records are written atomically (< PIPE_BUF)");

}  // namespace sandrun::sandbox
