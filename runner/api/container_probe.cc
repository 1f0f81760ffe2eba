// top and stats of a running container: its cgroup's processes and counters, and /proc.
#include "runner/api/container_probe.h"

#include <pwd.h>
#include <time.h>
#include <unistd.h>

#include <map>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "sandbox/sys/fs.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

// The container's cgroup directories by controller ("memory", "cpuacct", "pids"; "" on v2),
// from its PID 1's /proc/PID/cgroup.
Result<std::map<std::string, std::string>> cgroup_dirs(pid_t pid1) {
  const std::string text = SANDRUN_TRY(fs::read_file(fmt::format("/proc/{}/cgroup", pid1)));
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    if (controllers.empty()) {
      out[""] = "/sys/fs/cgroup" + path;
      continue;
    }
    std::istringstream cs(controllers);
    for (std::string c; std::getline(cs, c, ',');) out[c] = "/sys/fs/cgroup/" + controllers + path;
  }
  return out;
}

std::string dir_for(const std::map<std::string, std::string>& dirs, const char* controller) {
  if (auto it = dirs.find(controller); it != dirs.end()) return it->second;
  if (auto it = dirs.find(""); it != dirs.end()) return it->second;
  return "";
}

uint64_t read_number(const std::string& path) {
  auto text = fs::read_file(path);
  if (!text) return 0;
  return std::strtoull(text->c_str(), nullptr, 10);
}

std::map<std::string, uint64_t> read_keyed(const std::string& path) {
  std::map<std::string, uint64_t> out;
  auto text = fs::read_file(path);
  if (!text) return out;
  std::istringstream in(*text);
  std::string k;
  uint64_t v = 0;
  while (in >> k >> v) out[k] = v;
  return out;
}

std::vector<pid_t> procs_of(const std::map<std::string, std::string>& dirs) {
  std::vector<pid_t> out;
  for (const char* c : {"pids", "memory", "cpuacct"}) {
    const std::string dir = dir_for(dirs, c);
    if (dir.empty()) continue;
    auto text = fs::read_file(dir + "/cgroup.procs");
    if (!text) continue;
    std::istringstream in(*text);
    for (pid_t p; in >> p;) out.push_back(p);
    break;
  }
  return out;
}

std::string user_name(uid_t uid) {
  passwd pw{}, *res = nullptr;
  char buf[1024];
  if (::getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res) return res->pw_name;
  return std::to_string(uid);
}

// One row of `ps -ef` for `pid`; empty when it is gone.
std::vector<std::string> ps_row(pid_t pid, long tck, time_t boot) {
  auto stat = fs::read_file(fmt::format("/proc/{}/stat", pid));
  auto status = fs::read_file(fmt::format("/proc/{}/status", pid));
  if (!stat || !status) return {};
  const size_t close = stat->rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream in(stat->substr(close + 2));
  std::vector<std::string> f;
  for (std::string x; in >> x;) f.push_back(x);
  if (f.size() < 20) return {};
  const std::string ppid = f[1];
  const uint64_t cpu_ticks = std::strtoull(f[11].c_str(), nullptr, 10) + std::strtoull(f[12].c_str(), nullptr, 10);
  const time_t start = boot + static_cast<time_t>(std::strtoull(f[19].c_str(), nullptr, 10) / static_cast<uint64_t>(tck));
  uid_t uid = 0;
  if (size_t u = status->find("\nUid:"); u != std::string::npos) uid = static_cast<uid_t>(std::strtoul(status->c_str() + u + 5, nullptr, 10));
  std::string cmd;
  if (auto cl = fs::read_file(fmt::format("/proc/{}/cmdline", pid)); cl) {
    cmd = *cl;
    while (!cmd.empty() && cmd.back() == '\0') cmd.pop_back();
    for (char& c : cmd) c = c == '\0' ? ' ' : c;
  }
  if (cmd.empty()) cmd = "[" + stat->substr(stat->find('(') + 1, close - stat->find('(') - 1) + "]";
  tm t{};
  ::localtime_r(&start, &t);
  const uint64_t secs = cpu_ticks / static_cast<uint64_t>(tck);
  return {user_name(uid), std::to_string(pid), ppid, "0", fmt::format("{:02}:{:02}", t.tm_hour, t.tm_min), "?",
          fmt::format("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60), cmd};
}

time_t boot_time() {
  auto text = fs::read_file("/proc/stat");
  if (!text) return 0;
  if (size_t b = text->find("\nbtime "); b != std::string::npos) return static_cast<time_t>(std::strtoll(text->c_str() + b + 7, nullptr, 10));
  return 0;
}

// The host's CPU time in ns (/proc/stat's first line), as Docker's system_cpu_usage.
uint64_t system_cpu_ns() {
  auto text = fs::read_file("/proc/stat");
  if (!text) return 0;
  std::istringstream in(text->substr(0, text->find('\n')));
  std::string cpu;
  in >> cpu;
  uint64_t total = 0;
  for (uint64_t v; in >> v;) total += v;
  return total * (1'000'000'000 / static_cast<uint64_t>(::sysconf(_SC_CLK_TCK)));
}

json cpu_sample(const std::map<std::string, std::string>& dirs, bool v2) {
  uint64_t usage_ns = 0, user_ns = 0, kernel_ns = 0;
  json throttling = {{"periods", 0}, {"throttled_periods", 0}, {"throttled_time", 0}};
  if (v2) {
    auto st = read_keyed(dir_for(dirs, "cpu") + "/cpu.stat");
    usage_ns = st["usage_usec"] * 1000;
    user_ns = st["user_usec"] * 1000;
    kernel_ns = st["system_usec"] * 1000;
    throttling = {{"periods", st["nr_periods"]}, {"throttled_periods", st["nr_throttled"]}, {"throttled_time", st["throttled_usec"] * 1000}};
  } else {
    const std::string dir = dir_for(dirs, "cpuacct");
    usage_ns = read_number(dir + "/cpuacct.usage");
    auto st = read_keyed(dir + "/cpuacct.stat");
    const uint64_t tick_ns = 1'000'000'000 / static_cast<uint64_t>(::sysconf(_SC_CLK_TCK));
    user_ns = st["user"] * tick_ns;
    kernel_ns = st["system"] * tick_ns;
  }
  return {{"cpu_usage", {{"total_usage", usage_ns}, {"usage_in_kernelmode", kernel_ns}, {"usage_in_usermode", user_ns}}},
          {"system_cpu_usage", system_cpu_ns()},
          {"online_cpus", std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN))},
          {"throttling_data", throttling}};
}

uint64_t mem_total() {
  auto text = fs::read_file("/proc/meminfo");
  if (!text) return 0;
  if (size_t p = text->find("MemTotal:"); p != std::string::npos) return std::strtoull(text->c_str() + p + 9, nullptr, 10) * 1024;
  return 0;
}

json memory_stats(const std::map<std::string, std::string>& dirs, bool v2) {
  const std::string dir = dir_for(dirs, "memory");
  uint64_t usage = 0, limit = 0, max_usage = 0;
  std::map<std::string, uint64_t> stats;
  if (v2) {
    usage = read_number(dir + "/memory.current");
    auto max = fs::read_file(dir + "/memory.max");
    limit = max && max->rfind("max", 0) != 0 ? std::strtoull(max->c_str(), nullptr, 10) : 0;
    stats = read_keyed(dir + "/memory.stat");
  } else {
    usage = read_number(dir + "/memory.usage_in_bytes");
    max_usage = read_number(dir + "/memory.max_usage_in_bytes");
    limit = read_number(dir + "/memory.limit_in_bytes");
    stats = read_keyed(dir + "/memory.stat");
  }
  const uint64_t total = mem_total();
  if (limit == 0 || (total && limit > total)) limit = total;
  json j = {{"usage", usage}, {"limit", limit}, {"stats", stats}};
  if (!v2) j["max_usage"] = max_usage;
  return j;
}

// Docker's pids_stats: the processes now and, when the cgroup has one, the limit (pids.max).
json pids_stats(const std::map<std::string, std::string>& dirs, uint64_t current) {
  json j = {{"current", current}};
  auto max = fs::read_file(dir_for(dirs, "pids") + "/pids.max");
  if (max && !max->empty() && max->rfind("max", 0) != 0) j["limit"] = std::strtoull(max->c_str(), nullptr, 10);
  return j;
}

}  // namespace

Result<std::string> top_json(pid_t pid1) {
  const auto dirs = SANDRUN_TRY(cgroup_dirs(pid1));
  const long tck = ::sysconf(_SC_CLK_TCK);
  const time_t boot = boot_time();
  json procs = json::array();
  for (pid_t p : procs_of(dirs)) {
    auto row = ps_row(p, tck, boot);
    if (!row.empty()) procs.push_back(row);
  }
  json out = {{"Titles", {"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}}, {"Processes", procs}};
  return out.dump();
}

Result<std::string> stats_json(pid_t pid1, const std::string& id, const std::string& name, int interval_ms) {
  const auto dirs = SANDRUN_TRY(cgroup_dirs(pid1));
  const bool v2 = dirs.count("") && !dirs.count("memory");
  json pre = cpu_sample(dirs, v2);
  timespec read0{};
  ::clock_gettime(CLOCK_REALTIME, &read0);
  std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  json cpu = cpu_sample(dirs, v2);
  timespec read1{};
  ::clock_gettime(CLOCK_REALTIME, &read1);
  auto stamp = [](const timespec& ts) {
    tm t{};
    ::gmtime_r(&ts.tv_sec, &t);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour,
                       t.tm_min, t.tm_sec, ts.tv_nsec);
  };
  const uint64_t pids_current = procs_of(dirs).size();
  json out = {{"read", stamp(read1)}, {"preread", stamp(read0)}, {"id", id}, {"name", "/" + name},
              {"pids_stats", pids_stats(dirs, pids_current)}, {"cpu_stats", cpu}, {"precpu_stats", pre},
              {"memory_stats", memory_stats(dirs, v2)}, {"blkio_stats", json::object()},
              {"num_procs", 0}, {"storage_stats", json::object()}};
  return out.dump();
}

}  // namespace sandrun::runner::api
