// User namespaces: the id maps of each mode, writing them for a waiting child, idmapped mounts.
//
// Three modes (docs/security.md, "User namespaces and rootless mode"):
//   root, default         container 0..65535 on sandrun's own unprivileged host range
//                         (remapped_root(), reserved in /etc/subuid and /etc/subgid on first
//                         use): an escape lands as a uid no account has, and nothing a job
//                         makes is owned by host root. Layers (owned by host root) and the
//                         binds whose owner is not root are shown through idmapped mounts.
//   root, userns = false  no user namespace: the container's root is host root (capabilities,
//                         seccomp, the device policy and the namespaces confine it).
//   not root (rootless)   always on: the caller's uid/gid are the container's root, plus its
//                         subordinate ids from /etc/subuid and /etc/subgid as 1.. when the
//                         setuid helpers newuidmap/newgidmap exist (rootless()).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/container_plan.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::sandbox::userns {

// The host range of root's remapped containers when /etc/subuid names neither "sandrun" nor
// "root": 2^31 + 0..65535. No account can have it: useradd stops at 60000, systemd's dynamic
// users at 65519 and its container range (nspawn) at 1879048191; and 2^31 is above every
// range shadow-utils hands out by default (100000 + 65536 per user).
inline constexpr uint32_t kDefaultRangeStart = 0x80000000u;
// How many ids a container gets: 0..65535 (nobody is 65534 inside).
inline constexpr uint32_t kRangeSize = 65536;

struct SubidRange {
  uint32_t start = 0;
  uint32_t count = 0;
};

// The first range of user `name` (or of its numeric `id`) in the text of /etc/subuid or
// /etc/subgid ("name:start:count" lines; malformed lines are ignored).
std::optional<SubidRange> find_subid_range(std::string_view text, std::string_view name, uint32_t id);

// Root's containers: container 0..65535 on the /etc/subuid (/etc/subgid) range of user
// "sandrun", else kDefaultRangeStart; layers idmapped. One range for every container (named
// volumes and caches stay usable from one to the next); namespaces separate containers.
UserNamespace remapped_root(std::string_view subuid_text, std::string_view subgid_text);
// Reserves sandrun's range (reserve_range) and returns remapped_root of the files; when they
// cannot be written (a read-only /etc), the built-in range, with the reason in `origin`.
UserNamespace remapped_root();

// Where sandrun's range goes when /etc/subuid and /etc/subgid have none: kDefaultRangeStart
// when no range of either file overlaps it, else the first 65536-aligned start above them all.
std::optional<uint32_t> free_range_start(std::string_view subuid_text, std::string_view subgid_text);
// Appends "sandrun:START:65536" to each file (created 0644 when missing) that has no range of
// "sandrun" yet, under an flock of the subuid file (two sandruns starting at once agree), so
// that shadow-utils (useradd, usermod) never hands those ids to an account. Idempotent.
Result<void> reserve_range(const std::string& subuid_path, const std::string& subgid_path);

// An unprivileged user: `uid`/`gid` are the container's root; with `helpers` (newuidmap and
// newgidmap installed) and ranges for `name` in both files, those are container ids 1.. (at
// most 65535 of them), written by the helpers.
UserNamespace rootless(uid_t uid, gid_t gid, std::string_view name, std::string_view subuid_text,
                       std::string_view subgid_text, bool helpers);
UserNamespace rootless();  // the calling user, its /etc/sub[ug]id entries and the helpers found

// The host id of container id `id`, or nullopt when the map leaves it unmapped.
std::optional<uint32_t> to_host(const std::vector<IdMap>& map, uint32_t id);
// "0 1000 1\n1 100000 65535\n": the text of /proc/PID/uid_map.
std::string format_map(const std::vector<IdMap>& map);

// Parent side. Writes the maps of `pid`, a child waiting in its fresh user namespace: directly
// when sandrun may (as root; or an unprivileged user mapping only itself, after setgroups
// "deny" as the kernel requires), else through newgidmap and newuidmap.
Result<void> write_maps(pid_t pid, const UserNamespace& ns);
// True when the maps leave setgroups(2) allowed in the container (see write_maps).
bool setgroups_allowed(const UserNamespace& ns);

// A user namespace with these maps, for mount_setattr(MOUNT_ATTR_IDMAP) (root only). Made once
// per distinct mapping by a short-lived child and cached for the life of the process; the fd
// stays owned by the cache.
Result<int> idmap_userns(const std::vector<IdMap>& uid_map, const std::vector<IdMap>& gid_map);

// A detached copy of the mount at `path` (recursive), idmapped through `userns_fd` (none when
// -1), with `attrs` (MOUNT_ATTR_*) set. The container attaches it in its own mount namespace.
// `no_symlinks`: the path is walked with RESOLVE_NO_SYMLINKS (Bind::resolved).
Result<UniqueFd> idmapped_tree(const std::string& path, int userns_fd, uint64_t attrs, bool no_symlinks = false);

// The idmapped-mount mapping of a directory owned by `owner` on disk that the container's
// root (host id `root`) writes to: `owner` is shown as `root`, and the rest of the container's
// range [root+1, root+count) as itself, so other container users keep their own ids.
std::vector<IdMap> owner_as_root(uint32_t owner, uint32_t root, uint32_t count);
// The same for the container's id `target` (host id) of a range [lo, lo + count): `owner` is
// shown as `target`, the rest of the range as itself.
std::vector<IdMap> owner_as(uint32_t owner, uint32_t target, uint32_t lo, uint32_t count);

// Can the file system of `path` be idmapped (mount_setattr(MOUNT_ATTR_IDMAP) on a detached
// copy of its mount)? Tried once per file system (st_dev) and remembered; root only. The error
// names the path and its file system type (the cgroup v2 VM's 6.1 kernel cannot idmap tmpfs).
// `own` says the directory is sandrun's own (its image store, without mounts beneath): on a
// file system that the running kernel idmaps (ext4, xfs, btrfs since 5.19; tmpfs since 6.3)
// and in the initial user namespace, that is known without the trial, which costs a user
// namespace of its own per process.
Result<void> can_idmap(const std::string& path, bool own = false);

// Whether the idmapped mount of bind `b` shows host id `owner` (its source's uid, or its gid)
// as the job's user (Bind::owner_is_root): never host root (0), except for a copy-on-write
// bind, whose lower is only read.
inline bool shows_owner_as_user(const Bind& b, uint32_t owner) { return b.owner_is_root && (owner != 0 || b.copy_on_write); }

// Can this process create a user namespace? Clones a child with CLONE_NEWUSER that exits at
// once. The error says how to enable unprivileged user namespaces.
Result<void> probe();
// How to enable unprivileged user namespaces on this host (reads the relevant sysctls).
std::string enable_hint();

}  // namespace sandrun::sandbox::userns
