// User namespaces: the id maps of each mode, writing them for a waiting child, idmapped mounts.
#include "sandbox/userns.h"

#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <map>
#include <mutex>

#include <fmt/ranges.h>

#include "sandbox/host_features.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/lines.h"
#include "sandbox/sys/process.h"
#include "sandbox/sys/syscalls.h"

extern char** environ;
extern "C" long sandrun_clone3_vm(struct clone_args* args, size_t size, int (*fn)(void*), void* arg);

namespace sandrun::sandbox::userns {
namespace {

bool parse_u32(std::string_view s, uint32_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

std::string read_or_empty(const char* path) {
  auto text = fs::read_file(path);
  return text ? *text : "";
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Where newuidmap and newgidmap are looked for: $PATH, then the usual places.
std::string helper_dirs() {
  const char* path = std::getenv("PATH");
  std::string dirs = path && *path ? path : "/usr/bin:/bin";
  return dirs + ":/usr/bin:/usr/sbin";
}

bool executable_in_path(const char* name) {
  const std::string dirs = helper_dirs();
  size_t pos = 0;
  while (pos <= dirs.size()) {
    size_t end = dirs.find(':', pos);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(pos, end - pos);
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return true;
    pos = end + 1;
  }
  return false;
}

// The holder's whole life, in our memory on its own stack: raw system calls that never fail
// (no errno is written: it would be the cloning thread's). Signals stay blocked; SIGKILL
// (ours, or the parent-death signal) ends it.
int hold_until_killed(void*) {
  ::syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  for (;;) ::syscall(SYS_pause);
}

// A child in a fresh user namespace that only waits to be killed (the Child's destructor
// does). It shares our memory (CLONE_VM, on a stack of this thread's that the caller's kill
// and reap frees for the next one): a fork-style copy would copy sandrun's page tables and
// make every page it writes afterwards a copy-on-write fault.
Result<sys::Child> clone_waiting_child() {
  alignas(64) static thread_local char stack[16 * 1024];
  int pidfd = -1;
  struct clone_args args = {};
  args.flags = CLONE_VM | CLONE_NEWUSER | CLONE_PIDFD;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  args.stack = reinterpret_cast<uint64_t>(stack);
  args.stack_size = sizeof stack;
  uint64_t all = ~0ULL, old = 0;
  sys::sigprocmask_all(SIG_SETMASK, &all, &old);
  long pid = sandrun_clone3_vm(&args, sizeof args, hold_until_killed, nullptr);
  sys::sigprocmask_all(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return Error::sys_code(static_cast<int>(-pid), "create a user namespace").hint(enable_hint());
  return sys::Child::adopt(static_cast<pid_t>(pid), UniqueFd(pidfd), "a user namespace's holder");
}

Result<void> write_proc(pid_t pid, const char* file, const std::string& text) {
  const std::string path = fmt::format("/proc/{}/{}", pid, file);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd || ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    auto e = Error::sys("write {} of the container (pid {})", file, pid);
    if (e.code() == EPERM && ::geteuid() != 0) {
      e.hint("an unprivileged user may map only its own uid and gid; more ids need newuidmap and "
             "newgidmap (package uidmap) and entries for you in /etc/subuid and /etc/subgid");
    } else if (e.code() == EPERM || e.code() == EINVAL) {
      e.hint(fmt::format("the kernel refused the mapping {:?}: host ids must not overlap and root needs "
                         "CAP_SETUID and CAP_SETGID", trimmed(text)));
    }
    return e;
  }
  return {};
}

// Runs newuidmap or newgidmap for `pid`; its stderr goes into the error.
Result<void> run_helper(const char* helper, pid_t pid, const std::vector<IdMap>& map) {
  std::vector<std::string> args = {helper, std::to_string(pid)};
  for (const auto& m : map) {
    args.push_back(std::to_string(m.inside));
    args.push_back(std::to_string(m.outside));
    args.push_back(std::to_string(m.count));
  }
  sys::SpawnOptions o;
  o.path = helper;
  o.args = args;
  o.env.emplace();
  for (char** e = environ; e && *e; ++e) o.env->emplace_back(*e);
  const std::string dirs = helper_dirs();
  o.search = dirs.c_str();
  auto run = sys::run_captured(o, /*with_stderr=*/true);
  const std::string shown = fmt::format("{}", fmt::join(args, " "));
  if (!run) {
    return Error::sys_code(run.error().code(), "run {}", shown)
        .hint("install the setuid helpers newuidmap and newgidmap (package uidmap)");
  }
  if (WIFEXITED(run->status) && WEXITSTATUS(run->status) == 0) return {};
  std::string text = trimmed(run->output);
  return Error::msg("{} failed{}{}", shown, text.empty() ? "" : ": ", text)
      .hint("the ranges come from /etc/subuid and /etc/subgid; the helper must be setuid root "
            "(ls -l $(command -v newuidmap))");
}

}  // namespace

namespace {

// Calls f(who, range) for each well-formed "who:start:count" line of a subuid/subgid text,
// until f returns false.
template <typename F>
void each_range(std::string_view text, F&& f) {
  sys::for_each_line(text, [&](std::string_view line) {
    size_t c1 = line.find(':');
    size_t c2 = c1 == std::string_view::npos ? c1 : line.find(':', c1 + 1);
    SubidRange r;
    if (c2 == std::string_view::npos || !parse_u32(line.substr(c1 + 1, c2 - c1 - 1), r.start) ||
        !parse_u32(line.substr(c2 + 1), r.count))
      return true;
    return f(line.substr(0, c1), r);
  });
}

}  // namespace

std::optional<SubidRange> find_subid_range(std::string_view text, std::string_view name, uint32_t id) {
  const std::string id_text = std::to_string(id);
  std::optional<SubidRange> found;
  each_range(text, [&](std::string_view who, SubidRange r) {
    // A range that starts at 0 would hand out host root: never taken.
    if (r.count == 0 || r.start == 0 || uint64_t{r.start} + r.count > uint64_t{UINT32_MAX}) return true;
    if ((!name.empty() && who == name) || who == id_text) found = r;
    return !found;
  });
  return found;
}

UserNamespace remapped_root(std::string_view subuid_text, std::string_view subgid_text) {
  UserNamespace ns;
  ns.enabled = true;
  ns.idmap_layers = true;
  ns.uid_map = {{0, kDefaultRangeStart, kRangeSize}};
  ns.gid_map = ns.uid_map;
  ns.origin = fmt::format("built-in default {}", kDefaultRangeStart);
  auto u = find_subid_range(subuid_text, "sandrun", UINT32_MAX);
  auto g = find_subid_range(subgid_text, "sandrun", UINT32_MAX);
  if (u && g) {
    ns.uid_map = {{0, u->start, std::min(u->count, kRangeSize)}};
    ns.gid_map = {{0, g->start, std::min(g->count, kRangeSize)}};
    ns.origin = "/etc/subuid and /etc/subgid: sandrun";
  }
  return ns;
}

UserNamespace remapped_root() {
  std::string uids = read_or_empty("/etc/subuid"), gids = read_or_empty("/etc/subgid");
  std::string not_reserved;
  // Reserved already on every start but the first on this host: read once, no lock.
  if (!find_subid_range(uids, "sandrun", UINT32_MAX) || !find_subid_range(gids, "sandrun", UINT32_MAX)) {
    if (auto r = reserve_range("/etc/subuid", "/etc/subgid"); !r) not_reserved = r.error().message();
    uids = read_or_empty("/etc/subuid");
    gids = read_or_empty("/etc/subgid");
  }
  UserNamespace ns = remapped_root(uids, gids);
  if (!not_reserved.empty()) ns.origin += fmt::format(" (not reserved: {})", not_reserved);
  return ns;
}

std::optional<uint32_t> free_range_start(std::string_view subuid_text, std::string_view subgid_text) {
  const uint64_t want = kDefaultRangeStart;
  bool overlaps = false;
  uint64_t highest = 0;
  for (std::string_view text : {subuid_text, subgid_text}) {
    each_range(text, [&](std::string_view, SubidRange r) {
      const uint64_t lo = r.start, hi = uint64_t{r.start} + r.count;
      if (lo < want + kRangeSize && want < hi) overlaps = true;
      highest = std::max(highest, hi);
      return true;
    });
  }
  if (!overlaps) return static_cast<uint32_t>(want);
  const uint64_t start = (highest + kRangeSize - 1) / kRangeSize * kRangeSize;
  if (start + kRangeSize > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(start);
}

Result<void> reserve_range(const std::string& subuid_path, const std::string& subgid_path) {
  UniqueFd lock(::open(subuid_path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!lock) return Error::sys("open {}", subuid_path);
  if (::flock(lock.get(), LOCK_EX) < 0) return Error::sys("lock {}", subuid_path);
  auto uid_text = fs::read_file(subuid_path);
  if (!uid_text) return std::move(uid_text).error();
  std::string gid_text;
  if (auto g = fs::read_file(subgid_path)) gid_text = std::move(*g);
  auto u = find_subid_range(*uid_text, "sandrun", UINT32_MAX);
  auto g = find_subid_range(gid_text, "sandrun", UINT32_MAX);
  if (u && g) return {};
  // One start for both files where a file already has sandrun's range, else a free one.
  std::optional<uint32_t> start = u ? u->start : g ? std::optional<uint32_t>(g->start) : free_range_start(*uid_text, gid_text);
  if (!start) return Error::msg("no free range of {} ids left in {} and {}", kRangeSize, subuid_path, subgid_path);
  const std::string line = fmt::format("sandrun:{}:{}\n", *start, kRangeSize);
  auto append = [&](const std::string& path, const std::string& text, int fd) -> Result<void> {
    UniqueFd own;
    if (fd < 0) {
      own.reset(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
      if (!own) return Error::sys("open {}", path);
      fd = own.get();
    }
    const std::string out = (!text.empty() && text.back() != '\n' ? "\n" : "") + line;
    if (auto r = fs::write_all(fd, out); !r) return std::move(r.error().wrap(fmt::format("append to {}", path)));
    return {};
  };
  if (!u) SANDRUN_TRY(append(subuid_path, *uid_text, lock.get()));
  if (!g) SANDRUN_TRY(append(subgid_path, gid_text, -1));
  return {};
}

namespace {

// Whether the kernel idmaps every mount of the file system of `path`, as host root in the
// initial user namespace (whose inode number is fixed: PROC_USER_INIT_INO).
bool kernel_idmaps(const std::string& path) {
  static const bool initial_root = [] {
    struct stat ns;
    return ::geteuid() == 0 && ::stat("/proc/self/ns/user", &ns) == 0 && ns.st_ino == 0xEFFFFFFDU;
  }();
  static const host::KernelVersion kernel = host::kernel_version();
  struct statfs sf = {};
  if (!initial_root || ::statfs(path.c_str(), &sf) < 0) return false;
  switch (static_cast<uint64_t>(sf.f_type)) {
    case 0xEF53:      // ext4
    case 0x58465342:  // xfs
    case 0x9123683E:  // btrfs
      return kernel.at_least(5, 19);
    case 0x01021994:  // tmpfs
      return kernel.at_least(6, 3);
    default:
      return false;
  }
}

}  // namespace

Result<void> can_idmap(const std::string& path, bool own) {
  if (own && kernel_idmaps(path)) return {};
  struct stat st;
  if (::stat(path.c_str(), &st) < 0) return Error::sys("{}", path);
  static std::mutex mu;
  static auto* known = new std::map<dev_t, std::optional<Error>>();  // per file system, for the process
  // The probe's detached mount stays open for the process: closing it dissolves the mount,
  // which waits for an RCU grace period in the middle of a start.
  static auto* kept = new std::vector<UniqueFd>();
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = known->find(st.st_dev); it != known->end()) {
    if (!it->second) return {};
    return Error(*it->second);
  }
  auto tried = [&]() -> Result<void> {
    const int ns = SANDRUN_TRY(idmap_userns({{0, kDefaultRangeStart, kRangeSize}}, {{0, kDefaultRangeStart, kRangeSize}}));
    auto tree = idmapped_tree(path, ns, 0);
    if (!tree) {
      struct statfs sf = {};
      ::statfs(path.c_str(), &sf);
      return Error::sys_code(tree.error().code(), "the kernel cannot idmap {} ({})", path,
                             host::fs_type_name(static_cast<uint64_t>(sf.f_type)));
    }
    kept->push_back(std::move(*tree));
    return {};
  }();
  if (tried) {
    known->emplace(st.st_dev, std::nullopt);
  } else {
    known->emplace(st.st_dev, tried.error());
  }
  return tried;
}

UserNamespace rootless(uid_t uid, gid_t gid, std::string_view name, std::string_view subuid_text,
                       std::string_view subgid_text, bool helpers) {
  UserNamespace ns;
  ns.enabled = true;
  ns.uid_map = {{0, uid, 1}};
  ns.gid_map = {{0, gid, 1}};
  ns.origin = fmt::format("rootless: uid {} and gid {} only", uid, gid);
  if (!helpers) return ns;
  auto u = find_subid_range(subuid_text, name, uid);
  auto g = find_subid_range(subgid_text, name, uid);
  if (!u || !g) return ns;
  ns.uid_map.push_back({1, u->start, std::min(u->count, kRangeSize - 1)});
  ns.gid_map.push_back({1, g->start, std::min(g->count, kRangeSize - 1)});
  ns.via_helpers = true;
  ns.origin = fmt::format("rootless: uid {}, gid {} and /etc/subuid, /etc/subgid ranges of {}", uid, gid, name);
  return ns;
}

UserNamespace rootless() {
  const uid_t uid = ::geteuid();
  std::string name;
  struct passwd pw, *found = nullptr;
  char buf[4096];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found) name = found->pw_name;
  const bool helpers = executable_in_path("newuidmap") && executable_in_path("newgidmap");
  return rootless(uid, ::getegid(), name, read_or_empty("/etc/subuid"), read_or_empty("/etc/subgid"), helpers);
}

std::optional<uint32_t> to_host(const std::vector<IdMap>& map, uint32_t id) {
  for (const auto& m : map) {
    if (id >= m.inside && id - m.inside < m.count) return m.outside + (id - m.inside);
  }
  return std::nullopt;
}

std::string format_map(const std::vector<IdMap>& map) {
  std::string out;
  for (const auto& m : map) out += fmt::format("{} {} {}\n", m.inside, m.outside, m.count);
  return out;
}

bool setgroups_allowed(const UserNamespace& ns) { return ::geteuid() == 0 || ns.via_helpers; }

Result<void> write_maps(pid_t pid, const UserNamespace& ns) {
  if (::geteuid() != 0 && ns.via_helpers) {
    SANDRUN_TRY(run_helper("newgidmap", pid, ns.gid_map));
    return run_helper("newuidmap", pid, ns.uid_map);
  }
  // Without CAP_SETGID in the parent namespace the kernel takes a gid_map only once setgroups
  // is denied (else a process could drop a group that denies it access: CVE-2014-8989).
  if (!setgroups_allowed(ns)) SANDRUN_TRY(write_proc(pid, "setgroups", "deny"));
  SANDRUN_TRY(write_proc(pid, "gid_map", format_map(ns.gid_map)));
  return write_proc(pid, "uid_map", format_map(ns.uid_map));
}

Result<int> idmap_userns(const std::vector<IdMap>& uid_map, const std::vector<IdMap>& gid_map) {
  static std::mutex mu;
  static auto* cache = new std::map<std::string, UniqueFd>();  // never destroyed: fds for the process
  const std::string key = format_map(uid_map) + "/" + format_map(gid_map);
  // Holders killed by earlier calls, reaped here (or by the process's end) instead of waited for.
  static auto* dying = new std::vector<sys::Child>();
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache->find(key); it != cache->end()) return it->second.get();
  std::erase_if(*dying, [](sys::Child& c) {
    auto r = c.try_reap();
    return !r || r->has_value();
  });
  sys::Child holder = SANDRUN_TRY(clone_waiting_child());
  const pid_t pid = holder.pid();
  auto written = write_proc(pid, "gid_map", format_map(gid_map));
  if (written) written = write_proc(pid, "uid_map", format_map(uid_map));
  UniqueFd fd;
  if (written) {
    fd.reset(::open(fmt::format("/proc/{}/ns/user", pid).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) written = Error::sys("open the user namespace of pid {}", pid);
  }
  // The namespace lives on in `fd`. Its holder is killed but not waited for: its exit takes
  // as long as the rest of a container's start (a reap later costs nothing).
  if (auto killed = holder.signal(SIGKILL); killed) {
    dying->push_back(std::move(holder));
  } else {
    holder.kill_and_reap();
  }
  if (!written) return std::move(written.error().wrap("create the user namespace of an idmapped mount"));
  const int raw = fd.get();
  cache->emplace(key, std::move(fd));
  return raw;
}

Result<UniqueFd> idmapped_tree(const std::string& path, int userns_fd, uint64_t attrs, bool no_symlinks) {
  UniqueFd tree;
  if (no_symlinks) {
    UniqueFd at(sys::openat2(AT_FDCWD, path.c_str(), O_PATH | O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS));
    if (!at) {
      auto e = Error::sys("open volume source {}", path);
      if (e.code() == ELOOP) e.hint("a directory of the path became a symlink after the job was resolved");
      return e;
    }
    tree.reset(::open_tree(at.get(), "", AT_EMPTY_PATH | OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
  } else {
    tree.reset(::open_tree(AT_FDCWD, path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
  }
  if (!tree) return Error::sys("open volume source {}", path);
  struct mount_attr attr = {};
  attr.attr_set = (userns_fd >= 0 ? MOUNT_ATTR_IDMAP : 0) | attrs;
  attr.userns_fd = static_cast<uint64_t>(userns_fd >= 0 ? userns_fd : 0);
  if (attr.attr_set == 0) return tree;
  if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
    auto e = Error::sys("make an idmapped mount of {}", path);
    if (e.code() == EINVAL || e.code() == EPERM) {
      e.hint("idmapped mounts need Linux >= 5.12 and a file system that supports them (ext4, xfs, "
             "btrfs; tmpfs since 6.3), for every mount below the path too");
    }
    return e;
  }
  return tree;
}

std::vector<IdMap> owner_as(uint32_t owner, uint32_t target, uint32_t lo, uint32_t count) {
  std::vector<IdMap> map = {{owner, target, 1}};
  // [lo, lo + count) as themselves, but for `owner` (shown as target) and `target` (which
  // `owner` now is on this mount: nothing on disk may show as it twice).
  uint64_t from = lo;
  const uint64_t end = uint64_t{lo} + count;
  auto cut = [&](uint64_t at) {
    if (at < from || at >= end) return;
    if (at > from) map.push_back({static_cast<uint32_t>(from), static_cast<uint32_t>(from), static_cast<uint32_t>(at - from)});
    from = at + 1;
  };
  cut(std::min(owner, target));
  cut(std::max(owner, target));
  if (from < end) map.push_back({static_cast<uint32_t>(from), static_cast<uint32_t>(from), static_cast<uint32_t>(end - from)});
  return map;
}

std::vector<IdMap> owner_as_root(uint32_t owner, uint32_t root, uint32_t count) {
  return owner_as(owner, root, root, count);
}

std::string enable_hint() {
  if (trimmed(read_or_empty("/proc/sys/kernel/unprivileged_userns_clone")) == "0")
    return "unprivileged user namespaces are disabled: sysctl -w kernel.unprivileged_userns_clone=1";
  if (trimmed(read_or_empty("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")) == "1")
    return "AppArmor restricts unprivileged user namespaces: sysctl -w "
           "kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for sandrun "
           "that allows userns";
  if (trimmed(read_or_empty("/proc/sys/user/max_user_namespaces")) == "0")
    return "user namespaces are disabled: sysctl -w user.max_user_namespaces=15000";
  return "the kernel refused a user namespace (a seccomp filter of a container sandrun runs in, "
         "or user.max_user_namespaces reached); run sandrun as root instead";
}

Result<void> probe() {
  auto child = clone_waiting_child();
  if (!child) return std::move(child).error();
  child->kill_and_reap();
  return {};
}

}  // namespace sandrun::sandbox::userns
