// How a container ended: status records and wait statuses turned into messages users read.
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "sandbox/sandbox.h"

namespace sandrun::sandbox {
namespace {

const char* const kDeviceNames[] = {"null", "zero", "full", "random", "urandom", "tty"};
const char* const kDevLinks[] = {"ptmx", "fd", "stdin", "stdout", "stderr"};

template <size_t N>
const char* pick(const char* const (&names)[N], int32_t index) {
  return index >= 0 && static_cast<size_t>(index) < N ? names[index] : "?";
}

const Bind* bind_at(const SandboxSpec& spec, int32_t index) {
  if (index < 0 || static_cast<size_t>(index) >= spec.binds.size()) return nullptr;
  return &spec.binds[static_cast<size_t>(index)];
}

std::string what_failed(const SandboxSpec& spec, Stage stage, int32_t index) {
  const Bind* b = bind_at(spec, index);
  const std::string src = b ? b->source : "?";
  const std::string dst = b ? b->target : "?";
  switch (stage) {
    case Stage::mount_private: return "make the mount tree private";
    case Stage::mount_overlay: return fmt::format("mount overlay on {}", spec.root_dir);
    case Stage::open_root: return fmt::format("open root {}", spec.root_dir);
    case Stage::mount_proc: return "mount /proc";
    case Stage::mount_dev: return "mount /dev";
    case Stage::dev_node: return fmt::format("create /dev/{}", pick(kDeviceNames, index));
    case Stage::mount_devpts: return "mount /dev/pts";
    case Stage::dev_symlink: return fmt::format("create /dev/{}", pick(kDevLinks, index));
    case Stage::mount_shm: return "mount /dev/shm";
    case Stage::mount_sys: return "mount /sys";
    case Stage::mount_tmp: return "mount /tmp";
    case Stage::bind_source: return fmt::format("open volume source {}", src);
    case Stage::bind_target: return fmt::format("create mount point {} in the container", dst);
    case Stage::bind_mount: return fmt::format("mount volume {} on {}", src, dst);
    case Stage::bind_readonly: return fmt::format("set mount flags of volume {}", dst);
    case Stage::hostname: return fmt::format("set hostname {:?}", spec.hostname);
    case Stage::loopback: return "bring up the loopback interface";
    case Stage::pivot_root: return fmt::format("pivot_root into {}", spec.root_dir);
    case Stage::workdir: return fmt::format("enter working directory {}", spec.workdir);
    case Stage::set_groups: return "set supplementary groups";
    case Stage::set_gid: return fmt::format("switch to group {}", spec.gid);
    case Stage::set_uid: return fmt::format("switch to user {}", spec.uid);
    case Stage::fds: return "arrange file descriptors";
    case Stage::exec_init: return "execute sandrun-init";
    case Stage::exec_command: return fmt::format("execute {:?}", spec.argv.empty() ? "" : spec.argv[0]);
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
  if (stage == Stage::mount_overlay && err == ENODEV) return "the kernel has no overlayfs (modprobe overlay)";
  return "";
}

}  // namespace

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  if (abbrev) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(sig);
}

Error describe_failure(const SandboxSpec& spec, const StatusRecord& record) {
  const auto stage = static_cast<Stage>(record.stage);
  if (record.kind == static_cast<uint32_t>(RecordKind::exec_failed)) {
    const std::string cmd = spec.argv.empty() ? "" : spec.argv[0];
    if (record.value == ENOENT) {
      return Error::msg("command not found: {:?}", cmd)
          .hint("check the command's spelling and that the image contains it (the container's PATH is searched)");
    }
    return Error::sys_code(record.value, "cannot execute {:?}", cmd);
  }
  auto e = Error::sys_code(record.value, "{}", what_failed(spec, stage, record.index));
  e.wrap("sandbox setup failed");
  std::string hint = hint_for(stage, record.value);
  if (!hint.empty()) e.hint(hint);
  return e;
}

Outcome interpret(const SandboxSpec& spec, const std::vector<StatusRecord>& records, int wait_status) {
  Outcome out;
  const StatusRecord* exited = nullptr;
  for (const auto& r : records) {
    auto kind = static_cast<RecordKind>(r.kind);
    if (kind == RecordKind::setup_failed || kind == RecordKind::exec_failed) {
      out.kind = kind == RecordKind::setup_failed ? Outcome::Kind::setup_failed : Outcome::Kind::exec_failed;
      out.error = describe_failure(spec, r);
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
