// `sandrun doctor`: what this kernel and host offer, what it means for sandrun, and the fixes.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "runner/cli/commands.h"
#include "runner/engine/policy.h"
#include "runner/net/outbound.h"
#include "runner/report/output.h"
#include "runner/cli/common.h"
#include "runner/engine/session.h"
#include "runner/engine/sweep.h"
#include "sandbox/disk_image.h"
#include "sandbox/cgroup.h"
#include "sandbox/host_features.h"
#include "sandbox/sys/error.h"
#include "sandbox/sys/hints.h"
#include "sandbox/userns.h"

namespace sandrun::runner {
namespace {

namespace host = sandbox::host;
namespace cgroup = sandbox::cgroup;

enum class Status { ok, limited, missing };

const char* status_name(Status s) {
  switch (s) {
    case Status::ok: return "ok";
    case Status::limited: return "limited";
    case Status::missing: return "missing";
  }
  return "?";
}

struct Item {
  std::string name;
  Status status = Status::ok;
  std::string detail;
  std::string fix;      // what to do about it; "" when ok
  bool needed = false;  // sandrun's defaults, as this user, cannot do without it
};

std::string tried(const host::Try& t) {
  return t.err ? fmt::format("{}: {}", t.step, errno_text(t.err)) : t.step;
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

Item kernel_item(const host::KernelVersion& k) {
  Item i{"kernel", Status::ok, "", "", true};
  if (k.at_least(host::kMinKernelMajor, host::kMinKernelMinor)) {
    i.detail = fmt::format("{} ({}.{} or later needed)", k.release, host::kMinKernelMajor, host::kMinKernelMinor);
  } else {
    i.status = Status::missing;
    i.detail = fmt::format("{} is older than {}.{}, which brought mount_setattr", k.release, host::kMinKernelMajor,
                           host::kMinKernelMinor);
    i.fix = "upgrade the kernel (Debian 12 ships 6.1)";
  }
  return i;
}

// As root, containers need no user namespace; any other user runs rootless: every container
// gets a user namespace in which that user is root (see the userns items).
Item user_item(const host::Identity& id, const host::UserNamespaces& u, const host::SubIds& subids) {
  if (id.root()) return {"root", Status::ok, "running as root", "", true};
  const std::string who = fmt::format("running as {} (uid {})", id.user, id.uid);
  if (!u.current_user.works) {
    return {"root", Status::missing,
            who + ": rootless mode needs user namespaces, and this user may not create them (see userns)",
            "run sandrun as root, or allow unprivileged user namespaces (see userns)", true};
  }
  if (subids.uids.empty() || subids.gids.empty() || subids.newuidmap.empty() || subids.newgidmap.empty()) {
    return {"root", Status::limited,
            who + ": rootless mode; without subordinate ids (see subids) a container has one user, you as its root",
            "see subids, or run sandrun as root", true};
  }
  return {"root", Status::ok, who + ": rootless mode, with this user's subordinate ids", "", true};
}

const char* controller_use(std::string_view c) {
  if (c == "memory") return "the memory limit (memory, -m) and peak memory";
  if (c == "cpu") return "the CPU limit (cpus, --cpus)";
  if (c == "cpuacct") return "CPU time in the summary";
  if (c == "pids") return "the pids limit (pids, --pids-limit; 1024 by default)";
  return "CPU pinning (cpuset, --cpuset-cpus)";
}

// Limits that need controller `c` and nothing else, with values any host accepts.
cgroup::Limits limits_using(std::string_view c) {
  cgroup::Limits l;
  if (c == "memory") l.memory = 64ull << 20;
  if (c == "cpu") l.cpus = 0.5;
  if (c == "pids") l.pids = 1024;
  if (c == "cpuset") {
    cpu_set_t set;
    unsigned first = 0;
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
      while (first < CPU_SETSIZE && !CPU_ISSET(first, &set)) ++first;
    }
    l.cpuset = std::to_string(first);
  }
  return l;
}

// Whether the kernel enforces the container's device policy; without it the container still
// sees only sandrun's own nodes, on nodev mounts everywhere else.
Item devices_item(const cgroup::HostInfo& info) {
  const bool v2 = info.version == cgroup::Version::v2;
  if (info.device_policy) {
    return {"cgroup.devices", Status::ok,
            v2 ? "usable: a BPF device program allows each container only the standard nodes and its pts"
               : "usable: the devices controller allows each container only the standard nodes and its pts",
            "", false};
  }
  return {"cgroup.devices", Status::limited,
          v2 ? "no device policy: the BPF device program does not load (see the cgroup item); containers still "
               "see only sandrun's own nodes, and every writable mount is nodev"
             : "no device policy: no devices controller mounted; containers still see only sandrun's own nodes, "
               "and every writable mount is nodev",
          v2 ? "run sandrun as root on a kernel with CONFIG_CGROUP_BPF"
             : "mount it (mkdir /sys/fs/cgroup/devices; mount -t cgroup -o devices cgroup /sys/fs/cgroup/devices)",
          false};
}

void cgroup_items(const Result<std::unique_ptr<cgroup::Backend>>& backend, std::vector<Item>& out) {
  if (!backend) {
    out.push_back({"cgroup", Status::limited,
                   fmt::format("no usable cgroups ({}): jobs run without the default pids limit, and jobs that "
                               "set memory, cpus, pids or cpuset are refused",
                               backend.error().message()),
                   "mount cgroup2 at /sys/fs/cgroup (boot with systemd.unified_cgroup_hierarchy=1), or the v1 "
                   "controllers under /sys/fs/cgroup/<controller>",
                   false});
    out.push_back({"cgroup.devices", Status::limited,
                   "no device policy without cgroups; containers still see only sandrun's own nodes, and every "
                   "writable mount is nodev",
                   "see the cgroup item", false});
    return;
  }
  const cgroup::HostInfo& info = (*backend)->info();
  const bool v2 = info.version == cgroup::Version::v2;
  std::string detail = fmt::format("{} at {}, sandrun's cgroups under {}", v2 ? "v2" : "v1", info.root, info.base);
  if (!info.notes.empty()) detail += "; " + join(info.notes, "; ");
  out.push_back({"cgroup", Status::ok, detail, "", false});
  for (const char* c : {"memory", "cpu", "cpuacct", "pids", "cpuset"}) {
    Item i{fmt::format("cgroup.{}", c), Status::ok, "", "", false};
    const bool listed = contains(info.controllers, c);
    // The backend's own check says best why a limit would be refused (and how to fix it).
    auto refused = (*backend)->check(limits_using(c));
    if (listed && refused) {
      i.detail = fmt::format("usable: {}", controller_use(c));
    } else if (v2 && std::string_view(c) == "cpuacct") {
      i.detail = "none in cgroup v2: CPU time comes from cpu.stat";
    } else {
      // With cgroups present, every job asks for the default pids limit: it cannot go without.
      const bool pids = std::string_view(c) == "pids";
      i.status = pids ? Status::missing : Status::limited;
      i.needed = pids;
      i.detail = fmt::format("not usable ({}): no {}", refused ? "not mounted" : refused.error().message(),
                             controller_use(c));
      if (!refused && !refused.error().hint_text().empty()) {
        i.fix = refused.error().hint_text();
      } else if (v2) {
        i.fix = fmt::format("enable it: echo +{} > {}/cgroup.subtree_control", c, info.root);
      } else {
        i.fix = fmt::format("mount it (mkdir /sys/fs/cgroup/{0}; mount -t cgroup -o {0} cgroup /sys/fs/cgroup/{0}); "
                            "if /proc/cgroups shows it disabled, boot with cgroup_enable={0}",
                            c);
      }
    }
    out.push_back(std::move(i));
  }
  out.push_back(devices_item(info));
}

Item namespaces_item() {
  auto t = host::try_container_namespaces();
  if (t.works) return {"namespaces", Status::ok, "mount, pid, ipc, uts, net and cgroup namespaces can be created", "", true};
  std::string fix = t.err == EINVAL ? "the kernel lacks that namespace (CONFIG_*_NS): use a distribution kernel"
                                    : "run sandrun on the host or in a container allowed to create namespaces (docker "
                                      "--privileged, or a seccomp profile that allows unshare and clone)";
  return {"namespaces", Status::missing, tried(t), fix, true};
}

Item userns_item(const host::UserNamespaces& u, const host::Identity& id) {
  std::string facts;
  if (u.max_user_namespaces) facts += fmt::format("user.max_user_namespaces={}", *u.max_user_namespaces);
  if (u.unprivileged_userns_clone) facts += fmt::format(", kernel.unprivileged_userns_clone={}", *u.unprivileged_userns_clone);
  if (u.apparmor_restrict) facts += fmt::format(", kernel.apparmor_restrict_unprivileged_userns={}", *u.apparmor_restrict);
  // Rootless mode cannot do without them; as root only `userns = true` (--userns) uses them.
  Item i{"userns", Status::ok, "", "", !id.root()};
  if (u.current_user.works && u.unprivileged.works) {
    i.detail = fmt::format("unprivileged users may create user namespaces ({})", facts);
    return i;
  }
  const host::Try& failed = u.current_user.works ? u.unprivileged : u.current_user;
  i.status = id.root() ? Status::limited : Status::missing;
  i.detail = fmt::format("{} ({}): {}", u.current_user.works ? "root may, unprivileged users may not" : "not allowed",
                         facts, tried(failed));
  i.fix = sandbox::userns::enable_hint();  // the same advice as sandrun's own error
  return i;
}

Item overlay_userns_item(const host::Identity& id) {
  const char* tmp = std::getenv("TMPDIR");
  auto t = host::try_overlay_in_userns(tmp && tmp[0] == '/' ? tmp : "/tmp");
  const char* who = id.root() ? "as uid 65534" : "as this user";
  // A rootless container's root is an overlay mounted inside its user namespace.
  const bool needed = !id.root();
  if (t.works) {
    return {"userns.overlay", Status::ok, fmt::format("overlay mounts inside a user namespace work ({})", who), "", needed};
  }
  return {"userns.overlay", needed ? Status::missing : Status::limited,
          fmt::format("{} ({}): rootless containers could not have overlay roots", tried(t), who),
          t.step == "mount overlay" ? "a 5.11 or later kernel (overlayfs in user namespaces)"
                                    : "allow unprivileged user namespaces (see userns)",
          needed};
}

Item idmap_item(const host::IdmappedMounts& m, const std::string& fs_type) {
  Item i{"idmapped_mounts", Status::ok, "", "", false};
  if (!m.syscall) {
    i.status = Status::limited;
    i.detail = "no mount_setattr (kernel before 5.12)";
    i.fix = "a 5.12 or later kernel";
  } else if (!m.tried) {
    i.detail = "mount_setattr exists; trying MOUNT_ATTR_IDMAP needs root";
  } else if (m.on_dir.works) {
    i.detail = fmt::format("MOUNT_ATTR_IDMAP works on {} ({}): root's containers get their user namespace "
                           "by default, the image layers and the user's checkout shown to their ids without copying",
                           m.dir, fs_type);
  } else {
    i.status = Status::limited;
    i.detail = fmt::format("not on {} ({}): {}; root's containers run without a user namespace there (their "
                           "root is host root; devices, nodev, masked paths, seccomp and the policy still apply)",
                           m.dir, fs_type, tried(m.on_dir));
    i.fix = "put the state dir (--root) on ext4, xfs or btrfs (5.12+) or tmpfs (6.3+)";
  }
  return i;
}

std::string ranges(const std::vector<host::SubIdRange>& rs) {
  std::vector<std::string> parts;
  for (const auto& r : rs) parts.push_back(fmt::format("{}+{}", r.start, r.count));
  return parts.empty() ? "none" : join(parts);
}

Item subids_item(const host::SubIds& s, const host::Identity& id) {
  auto enough = [](const std::vector<host::SubIdRange>& rs) {
    for (const auto& r : rs) if (r.count >= 65536) return true;
    return false;
  };
  const bool tools = !s.newuidmap.empty() && !s.newgidmap.empty() && s.newuidmap_privileged && s.newgidmap_privileged;
  std::string detail = fmt::format("newuidmap: {}, newgidmap: {}; /etc/subuid for {}: {}, /etc/subgid: {}",
                                   s.newuidmap.empty() ? "missing" : s.newuidmap, s.newgidmap.empty() ? "missing" : s.newgidmap,
                                   id.user, s.subuid_file ? ranges(s.uids) : "no file", s.subgid_file ? ranges(s.gids) : "no file");
  if (tools && enough(s.uids) && enough(s.gids)) return {"subids", Status::ok, detail, "", false};
  std::string fix;
  if (!tools) fix = "apt-get install uidmap (newuidmap and newgidmap, setuid root)";
  if (!enough(s.uids) || !enough(s.gids)) {
    fix += fix.empty() ? "" : "; ";
    fix += fmt::format("usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {}", id.user);
  }
  detail += id.root() ? " (only rootless mode uses them)"
                      : ": rootless containers have one user, you as their root";
  return {"subids", Status::limited, detail, fix, false};
}

Item seccomp_item(const host::Seccomp& s) {
  Item i{"seccomp", Status::ok, "", "", true};
  if (!s.available || !s.errno_action || !s.kill_process_action) {
    i.status = Status::missing;
    i.detail = !s.available ? "prctl(PR_GET_SECCOMP) fails: no seccomp in this kernel"
                            : "the kernel lacks the errno or kill_process action";
    i.fix = "a kernel with CONFIG_SECCOMP_FILTER (every distribution kernel), or `seccomp = \"unconfined\"` per job";
    return i;
  }
  i.detail = fmt::format("filters work; actions: {}; filter flags: {}", join(s.actions, " "), join(s.flags, " "));
  if (!s.missing_flags.empty()) i.detail += fmt::format(" (not: {})", join(s.missing_flags, " "));
  if (s.mode == 2) i.detail += "; sandrun itself already runs under a seccomp filter";
  return i;
}

Item syscall_item(const char* name, const host::Try& t, const char* what, const char* since, bool needed) {
  if (t.works) return {name, Status::ok, what, "", needed};
  return {name, needed ? Status::missing : Status::limited, tried(t), fmt::format("a {} or later kernel", since), needed};
}

Item clone_into_cgroup_item(const host::Try& t, const Result<std::unique_ptr<cgroup::Backend>>& cg) {
  const bool v2 = cg && (*cg)->info().version == cgroup::Version::v2;
  if (!t.works) {
    return {"clone_into_cgroup", Status::limited, tried(t) + ": the child joins its cgroups itself before exec",
            "a 5.7 or later kernel with cgroup v2", false};
  }
  if (!v2) {
    return {"clone_into_cgroup", Status::limited,
            "the kernel has it, but it needs cgroup v2: the child joins its v1 cgroups itself before exec",
            "boot with systemd.unified_cgroup_hierarchy=1 for cgroup v2", false};
  }
  return {"clone_into_cgroup", Status::ok, "containers start inside their cgroup", "", false};
}

Item overlayfs_item() {
  if (host::kernel_has_filesystem("overlay")) {
    return {"overlayfs", Status::ok, "listed in /proc/filesystems: container roots are overlays", "", true};
  }
  return {"overlayfs", Status::missing, "not in /proc/filesystems: container roots are overlays",
          "modprobe overlay (and add it to /etc/modules), or a kernel with CONFIG_OVERLAY_FS", true};
}

std::string limit_text(uint64_t v) { return v == UINT64_MAX ? "unlimited" : std::to_string(v); }

Item nofile_item(const host::FileLimit& f) {
  Item i{"rlimit_nofile", Status::ok, "", "", false};
  i.detail = fmt::format("soft {}, hard {}; {}", limit_text(f.soft), limit_text(f.hard),
                         f.can_raise_hard ? "CAP_SYS_RESOURCE: jobs may raise nofile above the hard limit"
                                          : "no CAP_SYS_RESOURCE: a job's nofile is capped at the hard limit");
  if (f.soft < 1024) {
    i.status = Status::limited;
    i.detail += "; a low soft limit runs out with many parallel jobs";
    i.fix = fmt::format("ulimit -n {} before sandrun (or LimitNOFILE= in its service)", limit_text(f.hard));
  }
  return i;
}

Item state_dir_item(const host::StateDir& s) {
  Item i{"state_dir", Status::ok, "", "", true};
  std::string where = s.exists ? s.path : fmt::format("{} (to be created in {})", s.path, s.checked);
  if (!s.writable.works) {
    i.status = Status::missing;
    i.detail = fmt::format("{} is not writable: {}", where, tried(s.writable));
    std::string hint = hint_for_errno(s.writable.err);
    i.fix = hint.empty() ? "choose a writable directory with --root, or fix its permissions" : hint;
    return i;
  }
  i.detail = fmt::format("{} is writable, on {}", where, s.fs_type);
  if (s.ext4_without_journal) {
    // Works, and is slower: see host::on_ext4_without_journal and docs/benchmarks.md.
    i.detail += " without a journal (writable layers are written back at each container's end, "
                "and new inodes are slower to find while many were freed recently)";
  }
  static const char* const kBadUpper[] = {"overlay", "nfs", "cifs", "smb2", "fuse", "ecryptfs", "squashfs", "9p"};
  for (const char* bad : kBadUpper) {
    if (s.fs_type == bad) {
      i.status = Status::missing;
      i.detail += ": overlayfs cannot keep containers' writable layers there";
      i.fix = "put it (--root) on a local ext4, xfs, btrfs or tmpfs";
      return i;
    }
  }
  return i;
}

// The disk limit's mechanism on this host (docs/security.md, Disk).
Item disk_limit_item(const host::Identity& id) {
  Item i{"disk_limit", Status::ok, "", "", false};
  std::string why;
  if (!id.root()) {
    i.status = Status::limited;
    i.detail = "rootless: no loop devices, so a job's writable layer is not limited (it grows on the state "
               "dir's file system); jobs that set disk or disk_inodes are refused";
    i.fix = "run sandrun as root for a kernel-enforced disk limit";
  } else if (!sandbox::loop_disks_available(&why)) {
    i.status = Status::limited;
    i.detail = fmt::format("{}: a job's writable layer is not limited; jobs that set disk or disk_inodes are "
                           "refused", why);
    i.fix = "modprobe loop and apt-get install e2fsprogs";
  } else {
    i.detail = "an ext4 image (sparse, no journal) on a loop device per container slot: disk and disk_inodes are "
               "enforced by the kernel (ENOSPC), 8 GiB and 1000000 files by default";
  }
  return i;
}

// network = "private" works without a stack (an isolated network shared with the job's
// services); the stack adds outbound access. pasta is preferred, as Outbound::start does.
Item private_network_item() {
  Item i{"private_network", Status::ok, "", "", false};
  auto stack = find_outbound_stack();
  if (!stack) {
    i.status = Status::limited;
    i.detail = "neither pasta nor slirp4netns found: network = \"private\" has no outbound access (it still "
               "works as an isolated network shared with the job's services)";
    i.fix = "apt-get install passt (pasta), or slirp4netns";
    return i;
  }
  fill_outbound_version(*stack);
  i.detail = fmt::format("{} {} at {}: network = \"private\" has outbound access (not to the host's loopback)",
                         outbound_kind_name(stack->kind), stack->version, stack->path);
  return i;
}

// The operator's host file in effect (--config, else /etc/sandrun/sandrun.toml when present).
Item policy_item(const std::string& flag) {
  Item i{"policy", Status::ok, "", "", true};
  auto host = host_config(flag);
  if (!host) {
    i.status = Status::missing;
    i.detail = host.error().render();
    i.fix = "fix the host file (docs/security.md, \"Operator policy\"), or name another with --config";
    return i;
  }
  if (host->path.empty()) {
    i.detail = fmt::format("no host file ({} does not exist): no policy, every documented job key is allowed",
                           config::kDefaultHostConfig);
    return i;
  }
  i.detail = fmt::format("{} ({})", host->path, policy_summary(*host));
  return i;
}

std::vector<Item> collect(const GlobalOptions& g) {
  const auto id = host::identity();
  const auto kernel = host::kernel_version();
  const auto state = host::probe_state_dir(resolve_root(g.root));
  const auto users = host::probe_user_namespaces();
  const auto subids = host::probe_subids(id.user, id.uid);
  auto cg = cgroup::Backend::detect();
  std::vector<Item> items;
  items.push_back(kernel_item(kernel));
  items.push_back(user_item(id, users, subids));
  cgroup_items(cg, items);
  items.push_back(namespaces_item());
  items.push_back(userns_item(users, id));
  items.push_back(overlay_userns_item(id));
  items.push_back(idmap_item(host::probe_idmapped_mounts(state.path), state.fs_type));
  items.push_back(subids_item(subids, id));
  items.push_back(seccomp_item(host::probe_seccomp()));
  items.push_back(syscall_item("pidfd", host::try_pidfd_open(), "pidfd_open works: every child is held by a pidfd", "5.3", true));
  items.push_back(syscall_item("clone3", host::try_clone3(), "clone3 exists", "5.3", true));
  items.push_back(clone_into_cgroup_item(host::try_clone_into_cgroup(), cg));
  items.push_back(syscall_item("openat2", host::try_openat2(), "openat2 works: image paths resolve beneath their root", "5.6", true));
  items.push_back(syscall_item("mount_api", host::try_mount_api(), "fsopen and mount_setattr exist", "5.12", true));
  items.push_back(overlayfs_item());
  items.push_back(nofile_item(host::probe_nofile()));
  items.push_back(state_dir_item(state));
  items.push_back(disk_limit_item(id));
  items.push_back(private_network_item());
  items.push_back(policy_item(g.config));
  return items;
}

std::vector<std::string> missing_needed(const std::vector<Item>& items) {
  std::vector<std::string> out;
  for (const auto& i : items) if (i.needed && i.status == Status::missing) out.push_back(i.name);
  return out;
}

std::string render_text(const std::vector<Item>& items) {
  size_t w = 0;
  for (const auto& i : items) w = std::max(w, i.name.size());
  std::string out;
  std::vector<std::string> limited;
  for (const auto& i : items) {
    out += fmt::format("{:<8} {:<{}}  {}\n", status_name(i.status), i.name, w, i.detail);
    if (!i.fix.empty()) out += fmt::format("{:<8} {:<{}}  fix: {}\n", "", "", w, i.fix);
    if (i.status == Status::limited) limited.push_back(i.name);
  }
  auto missing = missing_needed(items);
  if (!missing.empty()) {
    out += fmt::format("\nsandrun cannot run here as this user: missing {}\n", join(missing));
  } else if (!limited.empty()) {
    out += fmt::format("\nsandrun can run here; limited: {}\n", join(limited));
  } else {
    out += "\nsandrun can run here with everything it can use\n";
  }
  return out;
}

std::string render_json(const std::vector<Item>& items) {
  nlohmann::ordered_json j;
  j["items"] = nlohmann::ordered_json::array();
  for (const auto& i : items) {
    j["items"].push_back({{"name", i.name}, {"status", status_name(i.status)}, {"detail", i.detail},
                          {"fix", i.fix}, {"needed", i.needed}});
  }
  auto missing = missing_needed(items);
  j["ok"] = missing.empty();
  j["missing"] = missing;
  return j.dump(2) + "\n";
}

}  // namespace

int cmd_doctor(const GlobalOptions& g, const std::string& format) {
  auto items = collect(g);
  console_write(STDOUT_FILENO, format == "json" ? render_json(items) : render_text(items));
  return missing_needed(items).empty() ? kExitOk : kExitFailed;
}

}  // namespace sandrun::runner
