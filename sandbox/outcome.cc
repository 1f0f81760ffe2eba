// How a container ended: status records and wait statuses turned into messages users read.
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/ranges.h>

#include "sandbox/dev_nodes.h"
#include "sandbox/plan.h"
#include "sandbox/sandbox.h"

namespace sandrun::sandbox {
namespace {

const char* const kDevLinks[] = {"ptmx", "fd", "stdin", "stdout", "stderr"};

template <size_t N>
const char* pick(const char* const (&names)[N], int32_t index) {
  return index >= 0 && static_cast<size_t>(index) < N ? names[index] : "?";
}

std::vector<std::string> map_text(const std::vector<IdMap>& map) {
  std::vector<std::string> out;
  for (const auto& m : map) out.push_back(fmt::format("{}..{} -> host {}", m.inside, m.inside + m.count - 1, m.outside));
  return out;
}

std::string masked_path(int32_t index) {
  constexpr int32_t kCount = static_cast<int32_t>(sizeof kMaskedPaths / sizeof kMaskedPaths[0]);
  if (index >= 0 && index < kCount) return kMaskedPaths[index];
  return fmt::format("sys/devices/system/cpu/cpu{}/thermal_throttle", index - kCount);
}

std::string what_failed(const ContainerPlan& spec, const Placement& place, Stage stage, int32_t index) {
  const Bind* b = index < 0 ? nullptr : bind_at(spec, place, static_cast<size_t>(index));
  const std::string src = b ? b->source : "?";
  const std::string dst = b ? b->target : "?";
  switch (stage) {
    case Stage::mount_private: return "make the mount tree private";
    case Stage::mount_overlay: return fmt::format("mount overlay on {}", place.root_dir);
    case Stage::open_root: return fmt::format("open root {}", place.root_dir);
    case Stage::mount_proc: return "mount /proc";
    case Stage::mount_dev: return "mount /dev";
    case Stage::dev_node:
      return fmt::format("bind /dev/{}", index >= 0 && index < kDevNodeCount ? kDevNodes[index].name : "?");
    case Stage::dev_source:
      return place.dev_dir.empty() || ::geteuid() != 0 ? std::string("set up the source of the device nodes in /dev")
                                                       : fmt::format("attach the device directory {} in /dev", place.dev_dir);
    case Stage::mount_devpts: return "mount /dev/pts";
    case Stage::dev_symlink: return fmt::format("create /dev/{}", pick(kDevLinks, index));
    case Stage::mount_shm: return "mount /dev/shm";
    case Stage::mount_sys: return "mount /sys";
    case Stage::mount_tmp: return "mount /tmp";
    case Stage::bind_source: return fmt::format("open volume source {}", src);
    case Stage::bind_target: return fmt::format("create mount point {} in the container", dst);
    case Stage::bind_mount: return fmt::format("mount volume {} on {}", src, dst);
    case Stage::bind_readonly: return fmt::format("set mount flags of volume {}", dst);
    case Stage::bind_overlay: return fmt::format("mount copy-on-write overlay of {} on {}", src, dst);
    case Stage::hostname: return fmt::format("set hostname {:?}", spec.hostname);
    case Stage::loopback: return "bring up the loopback interface";
    case Stage::pivot_root: return fmt::format("pivot_root into {}", place.root_dir);
    case Stage::workdir: return fmt::format("enter working directory {}", spec.workdir);
    case Stage::set_groups: return "set supplementary groups";
    case Stage::set_gid: return fmt::format("switch to group {}", spec.gid);
    case Stage::set_uid: return fmt::format("switch to user {}", spec.uid);
    case Stage::fds: return "arrange file descriptors";
    case Stage::exec_init: return "execute sandrun-init";
    case Stage::exec_command: return fmt::format("execute {:?}", spec.argv.empty() ? "" : spec.argv[0]);
    case Stage::cgroup_join: return "join the container's cgroup";
    case Stage::cgroup_ns: return "create the cgroup namespace";
    case Stage::mask_path: return fmt::format("mask /{}", masked_path(index));
    case Stage::readonly_path: return fmt::format("make /{} read-only", pick(kReadOnlyPaths, index));
    case Stage::readonly_root: return "make the root file system read-only";
    case Stage::rlimit: return fmt::format("set {}", index == RLIMIT_NOFILE ? "RLIMIT_NOFILE (nofile)" : index == RLIMIT_CORE ? "RLIMIT_CORE" : "a resource limit");
    case Stage::capabilities: return "drop capabilities";
    case Stage::no_new_privs: return "set no_new_privs";
    case Stage::seccomp: return "load the seccomp filter";
    case Stage::userns_root: return "become root of the container's user namespace";
    case Stage::userns_reopen: return "open the overlay's directories in the container's mount namespace";
    case Stage::layer_idmap:
      return fmt::format("attach the idmapped mount of layer {}",
                         index >= 0 && static_cast<size_t>(index) < spec.lower_dirs.size()
                             ? spec.lower_dirs[static_cast<size_t>(index)] : "?");
    case Stage::tty: return "open a terminal in the container's /dev/pts";
    case Stage::exec_join: return "join the container's namespaces";
    case Stage::exec_root: return "enter the container's root";
    case Stage::exec_stdin: return "open the container's /dev/null";
    case Stage::none: break;
  }
  return "set up the container";
}

// A hint for the errno of a given stage, where the cause is well known.
std::string hint_for(Stage stage, int err) {
  if (err == ELOOP && (stage == Stage::mount_proc || stage == Stage::mount_dev ||
                       stage == Stage::mount_sys || stage == Stage::mount_tmp)) {
    return "the image has a symlink where sandrun mounts a file system; sandrun refuses to follow it";
  }
  if (stage == Stage::mount_overlay && err == EINVAL) {
    return "overlayfs refused the layers: the state directory (--root) must be on a local file "
           "system such as ext4 or xfs, not on overlayfs or NFS";
  }
  if (stage == Stage::bind_overlay && (err == EINVAL || err == ELOOP)) {
    return "overlayfs refused the volume as a lower layer: it must not contain the state directory "
           "(--root) nor lie inside it, and both must be on local file systems (not NFS)";
  }
  if (stage == Stage::rlimit && err == EPERM) {
    return "a hard limit cannot be raised above sandrun's own without CAP_SYS_RESOURCE; "
           "see `ulimit -Hn` and `sandrun doctor`";
  }
  if (stage == Stage::seccomp && err == EINVAL) return "the kernel refused the seccomp filter (sandrun doctor)";
  if (stage == Stage::mount_overlay && err == ENODEV) return "the kernel has no overlayfs (modprobe overlay)";
  return "";
}

// Failures that a user namespace explains: ids it does not map, limits only init's root may raise.
std::string userns_hint(const ContainerPlan& spec, Stage stage, int err) {
  if (err == EINVAL && (stage == Stage::set_uid || stage == Stage::set_gid || stage == Stage::set_groups)) {
    return fmt::format("the container's user namespace does not map this id (uids: {}); rootless, "
                       "only root is mapped unless /etc/subuid and /etc/subgid give you subordinate ids",
                       fmt::join(map_text(spec.userns.uid_map), ", "));
  }
  if (err == EPERM && stage == Stage::set_groups)
    return "setgroups is denied in a rootless user namespace without subordinate ids (/etc/subgid)";
  if (err == EPERM && stage == Stage::rlimit)
    return "in a user namespace no hard limit can be raised above sandrun's own";
  if (stage == Stage::mount_overlay && (err == EINVAL || err == EPERM || err == EACCES)) {
    return "overlayfs in a user namespace needs Linux >= 5.11 and a state directory (--root) on a file "
           "system with user xattrs (ext4, xfs, btrfs) that the container's root owns";
  }
  return "";
}

}  // namespace

std::string signal_name(int sig) { return sys::signal_text(sig); }

Error describe_failure(const ContainerPlan& spec, const Placement& place, const StatusRecord& record) {
  const auto stage = static_cast<Stage>(record.stage);
  if (record.kind == static_cast<uint32_t>(RecordKind::exec_failed)) {
    const std::string cmd = spec.argv.empty() ? "" : spec.argv[0];
    if (record.value == ENOENT) {
      return Error::msg("command not found: {:?}", cmd)
          .hint("check the command's spelling and that the image contains it (the container's PATH is searched)");
    }
    return Error::sys_code(record.value, "cannot execute {:?}", cmd);
  }
  auto e = Error::sys_code(record.value, "{}", what_failed(spec, place, stage, record.index));
  e.wrap("sandbox setup failed");
  std::string hint = spec.userns.enabled ? userns_hint(spec, stage, record.value) : "";
  if (hint.empty()) hint = hint_for(stage, record.value);
  if (!hint.empty()) e.hint(hint);
  return e;
}

Outcome interpret(const ContainerPlan& spec, const Placement& place, const std::vector<StatusRecord>& records,
                  int wait_status) {
  Outcome out;
  const StatusRecord* exited = nullptr;
  for (const auto& r : records) {
    auto kind = static_cast<RecordKind>(r.kind);
    if (kind == RecordKind::setup_failed || kind == RecordKind::exec_failed) {
      out.kind = kind == RecordKind::setup_failed ? Outcome::Kind::setup_failed : Outcome::Kind::exec_failed;
      out.error = describe_failure(spec, place, r);
      out.code = kind == RecordKind::setup_failed ? 1 : (r.value == ENOENT ? 127 : 126);
      return out;
    }
    if (kind == RecordKind::exited) exited = &r;
  }
  // The command's own status, as reported by sandrun-init, is the precise one; without it
  // (no init, or init was killed) PID 1's status is the command's.
  const int status = exited ? exited->value : wait_status;
  if (WIFSIGNALED(status)) {
    out.kind = Outcome::Kind::signaled;
    out.signal = WTERMSIG(status);
  } else {
    out.kind = Outcome::Kind::exited;
    out.code = WEXITSTATUS(status);
  }
  return out;
}

}  // namespace sandrun::sandbox
