// What the cgroup backends share: detection, control-file I/O, limit checks, killing and removal.
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <thread>

#include "sandbox/cgroup_internal.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/lines.h"
#include "sandbox/sys/log.h"
#include "sandbox/sys/syscalls.h"

namespace sandrun::sandbox::cgroup {
namespace detail {

std::string_view trim(std::string_view text) {
  const char* ws = " \t\n\r";
  size_t b = text.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  size_t e = text.find_last_not_of(ws);
  return text.substr(b, e - b + 1);
}

std::optional<uint64_t> parse_u64(std::string_view text) {
  text = trim(text);
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

std::optional<uint64_t> keyed_value(std::string_view text, std::string_view key) {
  std::optional<uint64_t> value;
  sys::for_each_line(text, [&](std::string_view line) {
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ' ') return true;
    value = parse_u64(line.substr(key.size() + 1));
    return false;  // the first line with the key decides, as before
  });
  return value;
}

namespace {

// mountinfo escapes blanks, tabs, newlines and backslashes as \ooo.
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>(((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    size_t p = s.find(sep);
    if (!s.substr(0, p).empty()) out.push_back(s.substr(0, p));
    if (p == std::string_view::npos) break;
    s = s.substr(p + 1);
  }
  return out;
}

}  // namespace

std::vector<Mount> parse_mountinfo(std::string_view text) {
  std::vector<Mount> mounts;
  for (std::string_view line : split(text, '\n')) {
    auto f = split(line, ' ');
    // id parent dev root point options [optional...] - fstype source super_options
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 6 || dash == f.end() || f.end() - dash < 4) continue;
    Mount m;
    m.point = unescape(f[4]);
    m.fstype = std::string(dash[1]);
    for (auto o : split(dash[3], ',')) m.super_options.emplace_back(o);
    mounts.push_back(std::move(m));
  }
  return mounts;
}

std::optional<std::vector<unsigned>> parse_cpu_list(std::string_view text) {
  text = trim(text);
  if (text.empty()) return std::nullopt;
  std::vector<unsigned> cpus;
  for (std::string_view part : split(text, ',')) {
    size_t dash = part.find('-');
    auto lo = parse_u64(part.substr(0, dash));
    auto hi = dash == std::string_view::npos ? lo : parse_u64(part.substr(dash + 1));
    if (!lo || !hi || *lo > *hi || *hi >= 65536) return std::nullopt;
    for (uint64_t c = *lo; c <= *hi; ++c) cpus.push_back(static_cast<unsigned>(c));
  }
  if (cpus.empty()) return std::nullopt;  // "," alone
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
}

std::string format_cpu_list(const std::vector<unsigned>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? fmt::format("{}", cpus[i]) : fmt::format("{}-{}", cpus[i], cpus[j]);
    i = j + 1;
  }
  return out;
}

std::string format_bytes(uint64_t bytes) {
  static const char* units[] = {"GiB", "MiB", "KiB"};
  for (int i = 0; i < 3; ++i) {
    uint64_t size = 1ull << (30 - 10 * i);
    if (bytes != 0 && bytes % size == 0) return fmt::format("{} {}", bytes / size, units[i]);
  }
  return fmt::format("{} bytes", bytes);
}

uint64_t cpu_quota_usec(double cpus) {
  return static_cast<uint64_t>(std::llround(cpus * static_cast<double>(kCpuPeriodUsec)));
}

std::vector<unsigned> allowed_cpus(const Seams& seams) {
  if (seams.cpus) return *seams.cpus;
  std::vector<unsigned> out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) < 0) return out;
  for (unsigned c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) out.push_back(c);
  return out;
}

Result<void> check_values(const Limits& limits, const Seams& seams) {
  if (limits.memory && *limits.memory < kMinMemory)
    return Error::msg("memory {} is below the minimum of {}", format_bytes(*limits.memory),
                      format_bytes(kMinMemory));
  const std::vector<unsigned> host = allowed_cpus(seams);
  if (limits.cpus) {
    double c = *limits.cpus;
    if (!std::isfinite(c) || c <= 0) return Error::msg("cpus = {} must be more than 0", c);
    if (cpu_quota_usec(c) < kMinCpuQuotaUsec)
      return Error::msg("cpus = {} is below the minimum of {}", c,
                        static_cast<double>(kMinCpuQuotaUsec) / kCpuPeriodUsec);
    if (c > static_cast<double>(host.size()))
      return Error::msg("cpus = {} is more than the {} CPU{} of this host", c, host.size(), host.size() == 1 ? "" : "s");
  }
  if (limits.pids && *limits.pids == 0) return Error::msg("pids = 0 must be at least 1");
  // pids.max takes at most PID_MAX_LIMIT (2^22): more would fail as EINVAL at setup.
  if (limits.pids && *limits.pids > (uint64_t{1} << 22))
    return Error::msg("pids = {} is above the kernel's maximum of {}", *limits.pids, uint64_t{1} << 22);
  if (limits.cpuset) {
    auto cpus = parse_cpu_list(*limits.cpuset);
    if (!cpus) return Error::msg("cpuset \"{}\" is not a CPU list like \"0-1,3\"", *limits.cpuset);
    for (unsigned c : *cpus) {
      if (!std::binary_search(host.begin(), host.end(), c))
        return Error::msg("cpuset \"{}\" names CPUs this host does not have (it has {})",
                          *limits.cpuset, format_cpu_list(host));
    }
  }
  return {};
}

Result<std::optional<std::string>> read_optional(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>();
    return Error::sys("read {}", path);
  }
  UniqueFd owner(fd);
  auto text = fs::read_fd(fd);
  if (!text) return std::move(text).error().wrap(fmt::format("read {}", path));
  return std::optional<std::string>(text.take());
}

Result<void> write_value(const std::string& path, std::string_view value, std::string_view what) {
  auto fail = [&] { return Error::sys("{}: write \"{}\" to {}", what, value, path); };
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return fail();
  UniqueFd owner(fd);
  // A control file takes one value per write(): no retry of short writes.
  ssize_t n;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) return fail();
  if (static_cast<size_t>(n) != value.size()) return Error::sys_code(EIO, "{}: short write \"{}\" to {}", what, value, path);
  return {};
}

Result<std::vector<pid_t>> read_procs(const std::string& path) {
  auto text = SANDRUN_TRY(read_optional(path));
  std::vector<pid_t> pids;
  if (!text) return pids;
  for (std::string_view line : split(*text, '\n')) {
    if (auto v = parse_u64(line); v && *v > 0) pids.push_back(static_cast<pid_t>(*v));
  }
  return pids;
}

Result<std::vector<std::string>> subdirs(const std::string& dir) {
  std::vector<std::string> out;
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return out;
    return Error::sys("list {}", dir);
  }
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return Error::sys("list {}", dir);
  }
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n == "." || n == ".." || e->d_type != DT_DIR) continue;
    out.emplace_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Result<bool> make_dir(const std::string& dir, bool must_be_new, const Seams& seams) {
  if (::mkdir(dir.c_str(), 0755) < 0) {
    if (errno == EEXIST && !must_be_new) return false;
    auto e = Error::sys("create cgroup {}", dir);
    if (errno == EACCES || errno == EPERM || errno == EROFS)
      e.hint("creating cgroups needs root with a writable cgroupfs (a container's /sys/fs/cgroup is often read-only)");
    return e;
  }
  if (seams.after_mkdir) seams.after_mkdir(dir);
  return true;
}

Result<void> remove_dir(const std::string& dir, const Seams& seams) {
  if (seams.before_rmdir && fs::is_dir(dir)) seams.before_rmdir(dir);
  // The last process may have died a moment ago and not be unlinked from the cgroup yet.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (::rmdir(dir.c_str()) < 0) {
    if (errno == ENOENT) return {};
    if (errno != EBUSY || std::chrono::steady_clock::now() > deadline)
      return Error::sys("remove cgroup {}", dir);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return {};
}

Undo::~Undo() {
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) (void)remove_dir(*it, seams_);
}

namespace {

// Whether /proc/PID/cgroup puts the process in the cgroup `rel` or below it, in any hierarchy.
// The path there may carry a cgroup-namespace prefix ("/../.."), so `rel` is matched as a suffix.
bool member_of(int pid, const std::string& rel) {
  auto text = fs::read_file(fmt::format("/proc/{}/cgroup", pid));
  if (!text) return false;
  for (std::string_view line : split(*text, '\n')) {
    size_t colon = line.find(':', line.find(':') + 1);
    if (colon == std::string_view::npos) continue;
    std::string_view path = line.substr(colon + 1);
    if (path.size() >= rel.size() && path.substr(path.size() - rel.size()) == rel) return true;
    if (path.find(rel + "/") != std::string_view::npos) return true;
  }
  return false;
}

// SIGKILLs `pid` only if, once pinned by a pidfd, it is still in `rel`.
void kill_member(pid_t pid, const std::string& rel) {
  int pidfd = sys::pidfd_open(pid);
  if (pidfd < 0) return;  // gone already
  UniqueFd owner(pidfd);
  if (member_of(pid, rel)) (void)sys::pidfd_send_signal(pidfd, SIGKILL);
}

}  // namespace

Result<size_t> kill_members(const std::vector<std::string>& dirs, const std::string& rel) {
  size_t listed = 0;
  for (const auto& dir : dirs) {
    auto pids = SANDRUN_TRY(read_procs(dir + "/cgroup.procs"));
    listed += pids.size();
    for (pid_t p : pids) kill_member(p, rel);
  }
  return listed;
}

Result<size_t> remove_dead_runs(const std::vector<std::string>& runs, Backend& backend) {
  size_t removed = 0;
  for (const auto& run : runs) {
    auto id = parse_run_name(run);
    if (!id || run_alive(*id)) continue;
    SANDRUN_TRY(std::move(backend.remove_run(run)).wrap(fmt::format("remove the cgroups of dead run {}", run)));
    ++removed;
  }
  return removed;
}

void destroy_quietly(Group& group) {
  auto k = group.kill();
  auto r = group.remove();
  if (!k) log::warn("cgroup cleanup: {}", k.error().message());
  if (!r) log::warn("cgroup cleanup: {}", r.error().message());
}

Result<void> kill_until_empty(const std::vector<std::string>& dirs, const std::string& rel, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    size_t left = SANDRUN_TRY(kill_members(dirs, rel));
    if (left == 0) return {};
    if (std::chrono::steady_clock::now() > deadline)
      return Error::sys_code(EBUSY, "kill the processes of cgroup {}: {} still there after {} ms",
                             dirs.front(), left, timeout_ms);
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

Result<void> remove_tree(const std::string& dir, const std::string& rel, const Seams& seams, bool kill) {
  for (const auto& child : SANDRUN_TRY(subdirs(dir)))
    SANDRUN_TRY(remove_tree(dir + "/" + child, rel + "/" + child, seams, kill));
  if (!fs::is_dir(dir)) return {};
  if (kill) SANDRUN_TRY(kill_until_empty({dir}, rel));
  return remove_dir(dir, seams);
}

std::optional<RunName> parse_run_name(std::string_view name) {
  size_t d1 = name.find('-');
  if (d1 == std::string_view::npos) return std::nullopt;
  size_t d2 = name.find('-', d1 + 1);
  auto pid = parse_u64(name.substr(0, d1));
  auto start = parse_u64(name.substr(d1 + 1, d2 == std::string_view::npos ? std::string_view::npos : d2 - d1 - 1));
  if (!pid || !start || *pid == 0 || *pid > INT32_MAX) return std::nullopt;
  if (d2 != std::string_view::npos && d2 + 1 == name.size()) return std::nullopt;  // "1-2-"
  return RunName{static_cast<pid_t>(*pid), *start};
}

namespace {

// State (field 3) and start time (field 22) of /proc/PID/stat. The command (field 2) may hold
// blanks and parentheses, so the fields are counted from the last ')'.
bool read_stat(const std::string& path, char* state, uint64_t* start) {
  auto text = fs::read_file(path);
  if (!text) return false;
  size_t close = text->rfind(')');
  if (close == std::string::npos) return false;
  auto f = split(std::string_view(*text).substr(close + 1), ' ');
  if (f.size() < 20) return false;
  *state = f[0].empty() ? '?' : f[0][0];
  auto v = parse_u64(f[19]);
  if (!v) return false;
  *start = *v;
  return true;
}

}  // namespace

bool run_alive(const RunName& run) {
  char state = 0;
  uint64_t start = 0;
  if (!read_stat(fmt::format("/proc/{}/stat", run.pid), &state, &start)) return false;
  return start == run.start && state != 'Z' && state != 'X';
}

bool valid_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.size() < 200;
}

}  // namespace detail

std::string run_id() {
  char state = 0;
  uint64_t start = 0;
  if (!detail::read_stat("/proc/self/stat", &state, &start)) start = 0;
  return fmt::format("{}-{}", ::getpid(), start);
}

namespace {

bool is_cgroup2(const std::string& root, const Seams& seams) {
  if (seams.root_is_cgroup2) return *seams.root_is_cgroup2;
  struct statfs st;
  return ::statfs(root.c_str(), &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
}

}  // namespace

Result<std::unique_ptr<Backend>> Backend::detect(const std::string& root, const std::string& mountinfo) {
  return detect(root, mountinfo, Seams{});
}

Result<std::unique_ptr<Backend>> Backend::detect(const std::string& root, const std::string& mountinfo,
                                                 Seams seams) {
  if (!fs::is_dir(root))
    return Error::sys_code(ENOENT, "cgroups: {} is not a directory", root)
        .hint("mount cgroupfs there (cgroup2, or a tmpfs with cgroup v1 controllers)");
  if (is_cgroup2(root, seams)) return detail::make_v2(root, std::move(seams));
  auto text = fs::read_file(mountinfo);
  if (!text) return std::move(text).error().wrap("cgroups: find the cgroup v1 controllers");
  auto mounts = detail::parse_mountinfo(*text);
  bool any_v1 = std::any_of(mounts.begin(), mounts.end(), [](const auto& m) { return m.fstype == "cgroup"; });
  if (!any_v1)
    return Error::msg("cgroups: {} is not a cgroup2 mount and no cgroup v1 controller is mounted", root)
        .hint("mount cgroup2 at /sys/fs/cgroup (or boot with systemd.unified_cgroup_hierarchy=1)");
  return detail::make_v1(root, mounts, std::move(seams));
}

}  // namespace sandrun::sandbox::cgroup
