// Flattening a ContainerPlan into the ChildPlan the child executes.
#include "sandbox/plan.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <algorithm>

#include "sandbox/capabilities.h"
#include "sandbox/mount_points.h"
#include "sandbox/seccomp_filter.h"
#include "sandbox/status.h"
#include "sandbox/sys/error.h"
#include "sandbox/userns.h"

namespace sandrun::sandbox {
namespace {

// The kernel parses mount options from one page.
constexpr size_t kMaxMountOptions = 4095;
// OVL_MAX_STACK in fs/overlayfs.
constexpr size_t kMaxLayers = 500;

Result<void> check_absolute(const std::string& path, const char* what) {
  if (path.empty() || path[0] != '/') return Error::msg("{} {:?} is not an absolute path", what, path);
  return {};
}

Result<void> check_userns(const UserNamespace& ns) {
  if (!ns.enabled) return {};
  if (!userns::to_host(ns.uid_map, 0) || !userns::to_host(ns.gid_map, 0))
    return Error::msg("the user namespace maps no container root (uid and gid 0)");
  return {};
}

// The host ids of the container's root and how many container ids the map covers from 0.
struct RootIds {
  uint32_t uid, gid, count;
};
RootIds root_ids(const UserNamespace& ns) {
  uint32_t count = 1;
  for (const auto& m : ns.uid_map) {
    if (m.inside == 0) count = m.count;
  }
  return {*userns::to_host(ns.uid_map, 0), *userns::to_host(ns.gid_map, 0), count};
}

// The user namespace of a bind's idmapped mount (Bind::owner_is_root), or -1 when it needs
// none: the source's owner is shown as the container's user (root, or the job's `user`), so
// what the job writes there belongs to that owner on disk. Never host root (uid or gid 0):
// only a copy-on-write bind (whose lower is never written) shows a root-owned source so.
// Unmapped, the container's own ids land on disk as themselves (its unprivileged range).
Result<int> owner_map_ns(const ContainerPlan& spec, const Bind& b, const RootIds& ids) {
  struct stat st;
  if (!b.owner_is_root || ::stat(b.source.c_str(), &st) < 0) return -1;
  const uint32_t uid = userns::to_host(spec.userns.uid_map, spec.uid).value_or(ids.uid);
  const uint32_t gid = userns::to_host(spec.userns.gid_map, spec.gid).value_or(ids.gid);
  const bool map_uid = st.st_uid != uid && userns::shows_owner_as_user(b, st.st_uid);
  const bool map_gid = st.st_gid != gid && userns::shows_owner_as_user(b, st.st_gid);
  if (!map_uid && !map_gid) return -1;
  auto uids = map_uid ? userns::owner_as(st.st_uid, uid, ids.uid, ids.count) : std::vector<IdMap>{{ids.uid, ids.uid, ids.count}};
  auto gids = map_gid ? userns::owner_as(st.st_gid, gid, ids.gid, ids.count) : std::vector<IdMap>{{ids.gid, ids.gid, ids.count}};
  return userns::idmap_userns(uids, gids);
}

// overlayfs accepts a lower dir that contains the upper dir (the state dir inside the
// checkout) on some kernels, and the container then sees its own writes appear beneath
// itself: refused here, by the resolved paths.
Result<void> check_not_nested(const Bind& b) {
  char lower[PATH_MAX], upper[PATH_MAX];
  if (!::realpath(b.source.c_str(), lower)) return Error::sys("volume source {}", b.source);
  if (!::realpath(b.overlay_upper.c_str(), upper)) return Error::sys("volume upper directory {}", b.overlay_upper);
  auto inside = [](std::string_view dir, std::string_view path) {
    return path == dir || (path.size() > dir.size() && path.starts_with(dir) && (dir == "/" || path[dir.size()] == '/'));
  };
  if (inside(lower, upper) || inside(upper, lower)) {
    return Error::msg("copy-on-write volume {} on {}: it and the container's state ({}) must not contain each other",
                      b.source, b.target, b.overlay_upper)
        .hint("use a state directory (--root) outside the checkout");
  }
  return {};
}

}  // namespace

std::string overlay_escape(const std::string& path) {
  std::string out;
  out.reserve(path.size());
  for (char ch : path) {
    if (ch == ',' || ch == ':' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

Result<std::vector<Bind>> placed_binds(const ContainerPlan& plan, const Placement& placement) {
  std::vector<Bind> out = plan.binds;
  size_t cow = 0;
  for (Bind& b : out) {
    if (!b.copy_on_write) continue;
    if (cow >= placement.cow_layers.size())
      return Error::msg("copy-on-write volume {}: the container's placement has no layer for it", b.target);
    b.overlay_upper = placement.cow_layers[cow].first;
    b.overlay_work = placement.cow_layers[cow].second;
    ++cow;
  }
  for (const Bind& b : placement.binds) {
    out.push_back(b);
    if (b.copy_on_write && (b.overlay_upper.empty() || b.overlay_work.empty()))
      return Error::msg("copy-on-write volume {}: no upper and work directory", b.target);
  }
  return out;
}

const Bind* bind_at(const ContainerPlan& plan, const Placement& placement, size_t index) {
  if (index < plan.binds.size()) return &plan.binds[index];
  index -= plan.binds.size();
  return index < placement.binds.size() ? &placement.binds[index] : nullptr;
}

Result<std::unique_ptr<PreparedPlan>> PreparedPlan::make(const ContainerPlan& spec, const Placement& place, bool with_init) {
  std::unique_ptr<PreparedPlan> p(new PreparedPlan());
  if (spec.argv.empty() || spec.argv[0].empty()) return Error::msg("no command to run");
  if (spec.lower_dirs.empty()) return Error::msg("the image has no layers");
  SANDRUN_TRY(check_absolute(place.root_dir, "root directory"));
  SANDRUN_TRY(check_absolute(place.upper_dir, "upper directory"));
  SANDRUN_TRY(check_absolute(place.work_dir, "work directory"));
  SANDRUN_TRY(check_absolute(spec.workdir, "working directory"));
  if (spec.hostname.size() > 64) return Error::msg("hostname {:?} is longer than 64 bytes", spec.hostname);

  std::string lower;
  for (const auto& dir : spec.lower_dirs) {
    SANDRUN_TRY(check_absolute(dir, "layer directory"));
    if (!lower.empty()) lower += ':';
    lower += overlay_escape(dir);
  }
  if (spec.lower_dirs.size() > kMaxLayers)
    return Error::msg("the image has {} layers; overlayfs stacks at most {}", spec.lower_dirs.size(), kMaxLayers);
  SANDRUN_TRY(check_userns(spec.userns));
  std::string tail;  // the options after lowerdir
  if (uses_mount_point_layer(spec)) {
    // Read-only: lower layers only, nothing on disk to write or to empty afterwards.
    SANDRUN_TRY(check_absolute(spec.mount_point_layer, "mount-point layer"));
    p->overlay_options_ = "lowerdir=" + overlay_escape(spec.mount_point_layer) + ":" + lower;
  } else {
    // volatile: the writable layer is thrown away with the container, so overlayfs need not
    // sync the upper file system when it is unmounted. Without it, every container's end is a
    // syncfs() of the whole host file system holding the state dir (a journal commit on a
    // journaled ext4): 10% more CPU per container there (docs/benchmarks.md). On an ext4
    // without a journal that write-back is what lets ext4 reuse freed inodes after one minute
    // instead of six, and the churn of the writable layers makes syncing cheaper there.
    tail = ",upperdir=" + overlay_escape(place.upper_dir) + ",workdir=" + overlay_escape(place.work_dir) +
           (spec.volatile_upper ? ",volatile" : "");
    p->overlay_options_ = "lowerdir=" + lower + tail;
  }
  // In a user namespace the child mounts the overlay from fds with `userxattr` instead
  // (ChildPlan::ovl_lower): overlayfs cannot set trusted.overlay.* xattrs there and keeps them
  // as user.overlay.* (Linux >= 5.11); layer extraction strips those from images.
  if (p->overlay_options_.size() > kMaxMountOptions) {
    // Too long for mount(2): the child names the layers by fd number instead (ChildPlan).
    p->overlay_options_.clear();
    if (uses_mount_point_layer(spec)) p->ovl_layer_paths_.push_back(spec.mount_point_layer);
    p->ovl_layer_paths_.insert(p->ovl_layer_paths_.end(), spec.lower_dirs.begin(), spec.lower_dirs.end());
    p->ovl_tail_ = tail;
    // "lowerdir=", up to 10 digits and a ':' per layer, the tail, the NUL. What the child
    // writes there is shorter: fd numbers have 4 digits or less, so 500 layers take 2.5 KiB.
    p->ovl_buffer_.resize(16 + 11 * p->ovl_layer_paths_.size() + tail.size());
  }

  p->binds_ = SANDRUN_TRY(placed_binds(spec, place));
  p->tmpfs_option_ptrs_.resize(p->binds_.size());  // sized once: the plans point into them
  for (size_t i = 0; i < p->binds_.size(); ++i) {
    const Bind& b = p->binds_[i];
    SANDRUN_TRY(check_absolute(b.target, "volume target"));
    if (b.tmpfs) {
      auto& opts = p->tmpfs_option_ptrs_[i];
      for (const auto& o : b.tmpfs_options) opts.push_back(o.c_str());
      opts.push_back(nullptr);
      opts.push_back(nullptr);
      p->bind_plans_.push_back({"tmpfs", b.target.c_str(), b.readonly, true});
      p->bind_plans_.back().tmpfs_options = opts.data();
      continue;
    }
    SANDRUN_TRY(check_absolute(b.source, "volume source"));
    struct stat st;
    if (::stat(b.source.c_str(), &st) < 0) return Error::sys("volume source {}", b.source);
    p->bind_plans_.push_back({b.source.c_str(), b.target.c_str(), b.readonly, S_ISDIR(st.st_mode)});
  }
  SANDRUN_TRY(p->prepare_bind_overlays(spec));

  p->root_dir_ = place.root_dir;
  p->hostname_ = spec.hostname;
  p->workdir_ = spec.workdir;
  p->groups_ = spec.groups;
  if (with_init) p->argv_.push_back(spec.hold_after_exit ? kInitNameHold : kInitName);
  p->argv_.insert(p->argv_.end(), spec.argv.begin(), spec.argv.end());
  p->env_ = spec.env;
  p->env_.insert(p->env_.end(), place.env.begin(), place.env.end());
  for (const auto& e : p->env_) {
    if (e.rfind("PATH=", 0) == 0) p->path_ = e.substr(5);
  }
  for (auto& a : p->argv_) p->argv_ptrs_.push_back(a.data());
  p->argv_ptrs_.push_back(nullptr);
  for (auto& e : p->env_) p->env_ptrs_.push_back(e.data());
  p->env_ptrs_.push_back(nullptr);

  ChildPlan& c = p->plan_;
  c.root_dir = p->root_dir_.c_str();
  c.overlay_options = p->overlay_options_.empty() ? nullptr : p->overlay_options_.c_str();
  if (!c.overlay_options) {
    for (const auto& path : p->ovl_layer_paths_) p->ovl_layer_path_ptrs_.push_back(path.c_str());
    c.ovl_layer_paths = p->ovl_layer_path_ptrs_.data();
    c.novl_layer_paths = p->ovl_layer_path_ptrs_.size();
    c.ovl_tail = p->ovl_tail_.c_str();
    c.ovl_buffer = p->ovl_buffer_.data();
    c.ovl_buffer_size = p->ovl_buffer_.size();
  }
  c.binds = p->bind_plans_.data();
  c.nbinds = p->bind_plans_.size();
  c.hostname = p->hostname_.c_str();
  c.hostname_len = p->hostname_.size();
  c.new_net = spec.new_net && place.netns_fd < 0;  // a joined namespace is set up already
  c.workdir = p->workdir_.c_str();
  c.uid = spec.uid;
  c.gid = spec.gid;
  c.groups = p->groups_.data();
  c.ngroups = p->groups_.size();
  c.argv = p->argv_ptrs_.data();
  c.envp = p->env_ptrs_.data();
  c.path = p->path_.c_str();

  const Hardening& h = spec.hardening;
  p->seccomp_ = h.seccomp;
  c.seccomp = h.seccomp ? h.seccomp->prog() : nullptr;
  c.capabilities = h.capabilities;
  c.last_cap = last_capability();
  c.no_new_privs = h.no_new_privs;
  c.read_only_rootfs = h.read_only_rootfs;
  c.mask_paths = h.mask_paths;
  c.ncpus = static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_CONF)));
  c.core_limit = h.core_limit;
  if (h.nofile) {
    c.set_nofile = true;
    c.nofile_soft = h.nofile->first;
    c.nofile_hard = h.nofile->second;
  }
  SANDRUN_TRY(p->prepare_userns(spec, place));
  if (::geteuid() == 0) SANDRUN_TRY(p->prepare_bind_trees(spec));
  return p;
}

Result<void> PreparedPlan::prepare_bind_overlays(const ContainerPlan& spec) {
  bind_overlay_options_.resize(binds_.size());  // sized once: the plans point into them
  for (size_t i = 0; i < binds_.size(); ++i) {
    const Bind& b = binds_[i];
    if (!b.overlay()) continue;
    if (!bind_plans_[i].is_dir) return Error::msg("copy-on-write volume {}: not a directory", b.source);
    SANDRUN_TRY(check_absolute(b.overlay_upper, "volume upper directory"));
    SANDRUN_TRY(check_absolute(b.overlay_work, "volume work directory"));
    SANDRUN_TRY(check_not_nested(b));
    // The host dir is the only lower layer, so the mount costs the same for any tree size:
    // nothing is copied until the container writes a file (then that one file). volatile as
    // for the root: the upper dir is thrown away with the container.
    std::string& o = bind_overlay_options_[i];
    o = "lowerdir=" + overlay_escape(b.source) + ",upperdir=" + overlay_escape(b.overlay_upper) +
        ",workdir=" + overlay_escape(b.overlay_work) + (spec.volatile_upper ? ",volatile" : "");
    if (o.size() > kMaxMountOptions) return Error::msg("copy-on-write volume {}: paths too long", b.source);
    bind_plans_[i].overlay_options = o.c_str();
  }
  return {};
}

Result<int> PreparedPlan::open_reopened(const std::string& path) {
  int fd = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error::sys("open {}", path);
  trees_.emplace_back(fd);
  reopen_paths_.push_back(path);
  reopen_fds_.push_back(fd);
  return fd;
}

// In a user namespace the container's root may not walk the host paths (state dir of host
// root, mode 0700): the overlay's dirs are named by fd as for the root (ChildPlan::ovl_lower).
// As root with a remapped range, the lower dir goes through an idmapped mount on which its
// owner is the container's root (Bind::owner_is_root), attached by the child over the dir as
// the image layers are: overlayfs refuses to copy up a file whose owner the namespace does not
// map (EOVERFLOW).
Result<void> PreparedPlan::prepare_bind_overlay_fds(size_t i, int map_ns) {
  const Bind& b = binds_[i];
  int lower = SANDRUN_TRY(open_reopened(b.source));
  if (map_ns >= 0) {
    layer_targets_.push_back(lower);
    trees_.push_back(SANDRUN_TRY(userns::idmapped_tree(b.source, map_ns, 0)));
    lower = trees_.back().get();
    layer_fds_.push_back(lower);
  }
  const int upper = SANDRUN_TRY(open_reopened(b.overlay_upper));
  const int work = SANDRUN_TRY(open_reopened(b.overlay_work));
  bind_overlay_options_[i] = fmt::format("lowerdir={},upperdir={},workdir={},userxattr{}", lower, upper, work,
                                         plan_.ovl_volatile ? ",volatile" : "");
  bind_plans_[i].overlay_options = bind_overlay_options_[i].c_str();
  bind_plans_[i].overlay_by_fd = true;
  return {};
}

Result<void> PreparedPlan::prepare_userns(const ContainerPlan& spec, const Placement& place) {
  const UserNamespace& ns = spec.userns;
  ChildPlan& c = plan_;
  c.userns = ns.enabled;
  c.userns_setgroups = userns::setgroups_allowed(ns);
  if (!ns.enabled) return {};
  auto open_dir = [this](const std::string& path) { return open_reopened(path); };
  // Relative to /proc/self/fd, where the child goes to mount the overlay: short names, so that
  // more layers fit in fsconfig()'s 255 bytes.
  auto fd_path = [](int fd) { return std::to_string(fd); };
  // Idmapped mounts, and detached mounts at all, are for root's remapped range; rootless, the
  // caller is the container's root already and owns the layers.
  const bool root = ::geteuid() == 0;
  // The layers are shown through the container's own maps: their trees are made with its own
  // user namespace after the clone (Sandbox::start), here they get a placeholder number.
  const bool idmap_layers = root && ns.idmap_layers;
  // A read-only root without a writable layer: the mount-point layer on top, no upper dir.
  const bool read_only_layers = uses_mount_point_layer(spec);
  std::vector<std::string> lowers;
  if (read_only_layers) lowers.push_back(spec.mount_point_layer);
  lowers.insert(lowers.end(), spec.lower_dirs.begin(), spec.lower_dirs.end());
  for (const auto& dir : lowers) {
    int fd = SANDRUN_TRY(open_dir(dir));
    if (idmap_layers) {
      layer_targets_.push_back(fd);
      trees_.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
      if (!trees_.back()) return Error::sys("reserve a descriptor for the idmapped mount of {}", dir);
      fd = trees_.back().get();
      layer_fds_.push_back(fd);
      own_ns_paths_.push_back(dir);
      own_ns_fds_.push_back(fd);
    }
    if (!ovl_lower_.empty()) ovl_lower_ += ':';
    ovl_lower_ += fd_path(fd);
    ovl_lower_parts_.push_back(fd_path(fd));
  }
  if (!read_only_layers) {
    ovl_upper_ = fd_path(SANDRUN_TRY(open_dir(place.upper_dir)));
    ovl_work_ = fd_path(SANDRUN_TRY(open_dir(place.work_dir)));
  }
  c.root_fd = SANDRUN_TRY(open_dir(place.root_dir));
  c.ovl_volatile = spec.volatile_upper;
  const RootIds ids = root_ids(ns);
  for (size_t i = 0; i < binds_.size(); ++i) {
    const Bind& b = binds_[i];
    if (!b.overlay()) continue;
    const int map_ns = root ? SANDRUN_TRY(owner_map_ns(spec, b, ids)) : -1;
    SANDRUN_TRY(prepare_bind_overlay_fds(i, map_ns));
  }
  for (const auto& path : reopen_paths_) reopen_path_ptrs_.push_back(path.c_str());
  c.reopen_paths = reopen_path_ptrs_.data();
  c.reopen_fds = reopen_fds_.data();
  c.nreopen = reopen_fds_.size();
  c.ovl_lower = ovl_lower_.c_str();
  for (const auto& part : ovl_lower_parts_) ovl_lower_part_ptrs_.push_back(part.c_str());
  c.ovl_lower_parts = ovl_lower_part_ptrs_.data();
  c.novl_lower_parts = ovl_lower_part_ptrs_.size();
  c.ovl_upper = read_only_layers ? nullptr : ovl_upper_.c_str();
  c.ovl_work = read_only_layers ? nullptr : ovl_work_.c_str();
  c.ovl_volatile = spec.volatile_upper;
  c.layer_fds = layer_fds_.data();
  c.layer_targets = layer_targets_.data();
  c.nlayer_fds = layer_fds_.size();
  c.own_ns_fds = own_ns_fds_.data();
  c.nown_ns_fds = own_ns_fds_.size();
  return {};
}

Result<void> PreparedPlan::prepare_bind_trees(const ContainerPlan& spec) {
  const bool userns = spec.userns.enabled;
  for (size_t i = 0; i < binds_.size(); ++i) {
    const Bind& b = binds_[i];
    if (b.tmpfs || b.overlay() || (!userns && !b.resolved)) continue;
    const uint64_t attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (b.readonly ? MOUNT_ATTR_RDONLY : 0);
    const int map_ns = userns ? SANDRUN_TRY(owner_map_ns(spec, b, root_ids(spec.userns))) : -1;
    trees_.push_back(SANDRUN_TRY(userns::idmapped_tree(b.source, map_ns, attrs, b.resolved)));
    bind_plans_[i].tree = trees_.back().get();
  }
  return {};
}

}  // namespace sandrun::sandbox
