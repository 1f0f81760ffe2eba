// ContainerPlan: what one container resolved to (layers, argv, env, user, volumes, limits,
// hardening): a value, complete when resolve returns it and never written after. Placement:
// where one start of it goes (its slot's dirs, a network namespace to join, the volumes and
// the variables known only then). Sandbox::start(plan, placement, group) takes both.
#pragma once

#include <linux/capability.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sandbox/cgroup.h"
#include "sandbox/terminal.h"

namespace sandrun::sandbox {

struct Bind {
  std::string source;  // absolute host path (a directory or a file)
  std::string target;  // absolute container path
  bool readonly = false;
  // With a user namespace that maps container root to a host range (root + userns): the
  // source's owner on the host appears as the container's root through an idmapped mount, so
  // files the container's root creates there belong to that owner on disk (the workspace,
  // volumes). Never host root: a source owned by uid 0 (gid 0) is not mapped, and shows as
  // the overflow id, where the container writes as its own unprivileged ids or not at all.
  // Copy-on-write binds are the exception: their lower is never written, so its root-owned
  // files may show as the container's root (the writes land in the slot's upper dir).
  bool owner_is_root = false;
  // Copy-on-write: the target is an overlay with `source` as its only lower layer (never
  // modified) and an upper and a work dir (empty, on one file system, usually the container's
  // slot) that the placement gives (Placement::cow_layers, in the order of the plan's
  // copy-on-write binds) or, for a placement's own bind, overlay_upper and overlay_work; the
  // container's writes land there and go with them. `readonly` and `owner_is_root` apply to
  // the overlay as to a bind.
  bool copy_on_write = false;
  // `source` is a real path (resolve made it so) and is opened without following any symlink
  // when the container starts: a job that swaps a directory of the path for a symlink between
  // resolve and start (another job of the run writing to a shared checkout) gets an error,
  // never a bind of what the symlink names (a plain bind; opened by sandrun, as root).
  bool resolved = false;
  std::string overlay_upper;
  std::string overlay_work;
  // A tmpfs instead of a bind (no source): fsconfig key/value pairs, e.g. {"size", "1048576",
  // "mode", "1777"}, mounted nosuid,nodev (and read-only with `readonly`) at the target,
  // which is made when missing. It goes with the container's mount namespace.
  std::vector<std::string> tmpfs_options;
  bool tmpfs = false;
  bool overlay() const { return copy_on_write; }
};

// One line of /proc/PID/uid_map (or gid_map): container ids inside..inside+count-1 are host
// ids outside..outside+count-1.
struct IdMap {
  uint32_t inside = 0;
  uint32_t outside = 0;
  uint32_t count = 1;
  bool operator==(const IdMap&) const = default;
};

// The container's user namespace (sandbox/userns.h builds one for each mode).
struct UserNamespace {
  bool enabled = false;
  std::vector<IdMap> uid_map;  // must map container uid 0 (and gid 0 below)
  std::vector<IdMap> gid_map;
  // The maps are written by the setuid helpers newuidmap/newgidmap (an unprivileged user
  // mapping subordinate ids from /etc/subuid and /etc/subgid) instead of by sandrun itself.
  bool via_helpers = false;
  // The image layers belong to host root (root runs with a remapped range): they are shown to
  // the container through idmapped mounts on which host root is the container's root.
  bool idmap_layers = false;
  std::string origin;  // where the host range came from, for --print-spec ("/etc/subuid: sandrun")
  // Disabled as root: why ("userns = false", or the file system the kernel cannot idmap).
  std::string off_reason;
};

class SeccompFilter;  // sandbox/seccomp_filter.h

// Docker's default capability set for root in a container (moby, containerd and podman agree).
inline constexpr uint64_t kDefaultCapabilities =
    (1ULL << CAP_CHOWN) | (1ULL << CAP_DAC_OVERRIDE) | (1ULL << CAP_FSETID) | (1ULL << CAP_FOWNER) |
    (1ULL << CAP_MKNOD) | (1ULL << CAP_NET_RAW) | (1ULL << CAP_SETGID) | (1ULL << CAP_SETUID) |
    (1ULL << CAP_SETFCAP) | (1ULL << CAP_SETPCAP) | (1ULL << CAP_NET_BIND_SERVICE) |
    (1ULL << CAP_SYS_CHROOT) | (1ULL << CAP_KILL) | (1ULL << CAP_AUDIT_WRITE);

// What the container's processes may do beyond what the namespaces already take away.
// Each field defaults to the hardened choice; a job relaxes one explicitly.
struct Hardening {
  uint64_t capabilities = kDefaultCapabilities;  // bounding/permitted/effective set of a root command (bit N = cap N)
  bool no_new_privs = true;    // setuid binaries and file capabilities raise nothing
  std::shared_ptr<const SeccompFilter> seccomp;  // compiled once per profile; null = unconfined
  bool read_only_rootfs = false;                 // the overlay root is mounted read-only
  bool mask_paths = true;      // /proc/kcore & co. masked, /proc/sys & co. read-only
  uint64_t core_limit = 0;     // RLIMIT_CORE (soft = hard)
  std::optional<std::pair<uint64_t, uint64_t>> nofile;  // RLIMIT_NOFILE {soft, hard}; unset = inherited
};

// The limit of a container's writable file systems (its root's writable layer, an overlay
// workspace's upper dir): bytes and files. The runner enforces it by placing them on a file
// system of that size (runner/engine/slot_disk.h) when `enforced`; otherwise (rootless, no loop
// devices) it is shown but not enforced.
struct DiskLimit {
  uint64_t bytes = 0;
  uint64_t inodes = 0;
  bool enforced = false;
};

struct ContainerPlan {
  std::string name;                     // for messages: the job's name
  std::string hostname;                 // set in the container's UTS namespace
  std::vector<std::string> lower_dirs;  // image layers, top-most first (overlay lowerdir order)
  // Mount the writable layer `volatile` (plan.cc). A volatile overlay leaves
  // work_dir/work/incompat/volatile behind, and a later mount on the same work_dir fails
  // (EINVAL) until the caller has emptied work_dir. Off on an ext4 without a journal
  // (host::on_ext4_without_journal).
  bool volatile_upper = true;
  // With a read-only root: the layer with the image's missing mount
  // points (mount_points.h). The overlay is then made of lower layers only and upper_dir and
  // work_dir are not used. Empty: the root has a writable layer.
  std::string mount_point_layer;
  std::vector<Bind> binds;
  std::vector<std::string> argv;        // the command; argv[0] is looked up in the container's PATH
  std::vector<std::string> env;         // "NAME=value", complete (PATH included)
  std::string workdir = "/";            // absolute container path, created when missing
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;            // supplementary groups
  // Own network namespace with only `lo` (up), or one the placement gives
  // (Placement::netns_fd); false: the host's.
  bool new_net = true;
  bool init = true;                     // sandrun-init runs as PID 1 and starts argv
  // When the command exits (or on kStopAndHoldSignal), sandrun-init kills everything else in
  // the container, reports `exited` and then waits for SIGKILL instead of exiting: the mount
  // namespace stays alive so its files (artifacts) can be read through /proc/PID/root.
  // Implies init (sandrun-init runs even when `init` is false).
  bool hold_after_exit = false;
  // Sockets in the container's network namespace on request, for the port proxy where sandrun
  // cannot enter the namespace itself (rootless): sandrun-init serves them (kSocketFactoryFd).
  // Implies init. Sandbox::take_socket_factory() is sandrun's end.
  bool socket_factory = false;
  Hardening hardening;
  UserNamespace userns;                 // disabled: the container's root is host root
  // The container's cgroup: its limits (pids carries the default when the job sets none),
  // and whether it gets one at all (the host has usable cgroups).
  cgroup::Limits limits;
  bool use_cgroup = false;
  DiskLimit disk;
};

// Where one start of a plan goes. Built by the caller for each start (a slot of the state
// dir, the job's network namespace), never written back into the plan.
struct Placement {
  std::string root_dir;   // an empty host directory the root is mounted on
  std::string upper_dir;  // the private writable layer (on the host)
  std::string work_dir;   // overlay's work dir, same filesystem as upper_dir
  // The slot's own device directory (host path; created when missing): sandrun keeps the
  // container's device nodes there (sandbox/dev_nodes.h) and binds them into its /dev, never
  // the host's. Required as root; unused rootless (which binds the host's nodes: it cannot mknod).
  std::string dev_dir;
  // {upper, work} for each copy-on-write bind of the plan, in order.
  std::vector<std::pair<std::string, std::string>> cow_layers;
  // Volumes of this start only, mounted after the plan's (named caches: read-write, or
  // copy-on-write with their own overlay_upper/overlay_work when another container has them).
  std::vector<Bind> binds;
  // "NAME=value" added after the plan's environment (values known only now: the host ports
  // of a job's services).
  std::vector<std::string> env;
  // >= 0: the container joins this network namespace (a job's, shared with its services)
  // instead of creating one (plan.new_net must be true). Needs root (setns in the cloning thread).
  int netns_fd = -1;
  // The container's stdin: a pipe sandrun writes (Sandbox::take_stdin) instead of the slot's
  // /dev/null.
  bool stdin_pipe = false;
  // A terminal of this size as the first process's stdin, stdout and stderr and controlling
  // terminal: a pty of the container's own /dev/pts, whose master sandrun gets
  // (Sandbox::take_terminal); there are no stdout and stderr pipes then.
  std::optional<TtySize> tty;
  // The container outlives the sandrun that started it (the daemon's --live-restore): no
  // parent-death signal once it is set up, stdout and stderr pipes as large as the host lets
  // (up to 1 MiB) and sandrun-init holding their read ends (kKeptFdBase). Needs an init and
  // pipes (no terminal).
  bool survive_parent = false;
};

// The plan's binds (copy-on-write ones with the placement's layers), then the placement's:
// the volumes in mount order. Fails when the placement lacks a copy-on-write layer.
Result<std::vector<Bind>> placed_binds(const ContainerPlan& plan, const Placement& placement);
// The volume mounted `index`-th (placed_binds' order), or null.
const Bind* bind_at(const ContainerPlan& plan, const Placement& placement, size_t index);

}  // namespace sandrun::sandbox
