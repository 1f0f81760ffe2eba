// The system routes and the host facts behind them.
#include "runner/api/system_routes.h"

#include <sched.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runner/api/routes.h"
#include "sandbox/cgroup.h"
#include "sandbox/host_features.h"
#include "sandbox/sys/fs.h"

#ifndef SANDRUN_VERSION
#define SANDRUN_VERSION "0.0.0"
#endif

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

std::string os_release_value(const std::string& text, std::string_view key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    if (line.starts_with(key) && line.size() > key.size() && line[key.size()] == '=') {
      std::string_view v = line.substr(key.size() + 1);
      if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front())
        v = v.substr(1, v.size() - 2);
      return std::string(v);
    }
    pos = end + 1;
  }
  return "";
}

uint64_t mem_total() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  while (in >> key >> kib) {
    if (key == "MemTotal:") return kib << 10;
    in.ignore(256, '\n');
  }
  return 0;
}

std::string go_arch(std::string_view machine) {
  if (machine == "x86_64") return "amd64";
  if (machine == "aarch64") return "arm64";
  if (machine == "i686" || machine == "i386") return "386";
  if (machine.starts_with("arm")) return "arm";
  return std::string(machine);
}

// Docker keeps a random engine ID under its root; sandrun does the same, made once.
Result<std::string> engine_id(const std::string& root) {
  const std::string path = fs::join(root, "engine-id");
  if (auto existing = fs::read_file(path); existing && existing->size() >= 36) return existing->substr(0, 36);
  std::random_device rd;
  std::mt19937_64 gen((uint64_t(rd()) << 32) ^ rd());
  const uint64_t a = gen(), b = gen();
  std::string id = fmt::format("{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}", uint32_t(a >> 32), uint16_t(a >> 16),
                               uint16_t(a) & 0xfff, (uint16_t(b >> 48) & 0x3fff) | 0x8000, b & 0xffffffffffffull);
  SANDRUN_TRY(fs::write_file_atomic(path, id + "\n", 0644));
  return id;
}

std::string build_time() {
  // __DATE__ "Dec  5 2026", __TIME__ "10:53:39": the compiler's clock, given as UTC.
  struct tm tm {};
  const std::string text = fmt::format("{} {}", __DATE__, __TIME__);
  if (!::strptime(text.c_str(), "%b %d %Y %H:%M:%S", &tm)) return "";
  char buf[64];
  ::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S.000000000+00:00", &tm);
  return buf;
}

bool has(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

Result<HostFacts> probe_host_facts(const std::string& root) {
  HostFacts f;
  f.root = root;
  f.id = SANDRUN_TRY(engine_id(root));
  f.version = SANDRUN_VERSION;
  char exe[4096];
  if (ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1); n > 0) f.binary.assign(exe, size_t(n));
  struct utsname u {};
  ::uname(&u);
  f.name = u.nodename;
  f.kernel = sandbox::host::kernel_version().release;
  f.arch = u.machine;
  f.go_arch = go_arch(u.machine);
  auto os = fs::read_file("/etc/os-release");
  if (!os) os = fs::read_file("/usr/lib/os-release");
  if (os) {
    f.os_name = os_release_value(*os, "PRETTY_NAME");
    f.os_version = os_release_value(*os, "VERSION_ID");
  }
  f.build_time = build_time();
  cpu_set_t set;
  f.ncpu = ::sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : ::sysconf(_SC_NPROCESSORS_ONLN);
  f.mem_total = mem_total();
  if (auto backend = sandbox::cgroup::Backend::detect(); backend) {
    const auto& info = (*backend)->info();
    f.cgroup_version = info.version == sandbox::cgroup::Version::v2 ? 2 : 1;
    f.controllers = info.controllers;
    for (const auto& note : info.notes) f.warnings.push_back("WARNING: " + note);
    f.swap_limit = has(f.controllers, "memory");
  } else {
    f.warnings.push_back("WARNING: no usable cgroups: " + backend.error().message());
  }
  f.seccomp = sandbox::host::probe_seccomp().available;
  f.rootless = !sandbox::host::identity().root();
  return f;
}

void add_common_headers(Response& r) {
  r.headers.emplace_back("Api-Version", std::string(kMaxApiVersion));
  r.headers.emplace_back("Docker-Experimental", "false");
  r.headers.emplace_back("Ostype", "linux");
}

Response build_prune_response() {
  return Response::json(nlohmann::ordered_json{{"CachesDeleted", json::array()}, {"SpaceReclaimed", 0}}.dump() + "\n");
}

Response ping_response() {
  Response r;
  r.body = "OK";
  r.content_type = "text/plain; charset=utf-8";
  r.headers.emplace_back("Cache-Control", "no-cache, no-store, must-revalidate");
  r.headers.emplace_back("Pragma", "no-cache");
  r.headers.emplace_back("Swarm", "inactive");
  return r;
}

Response version_response(const HostFacts& f) {
  json details{{"ApiVersion", kMaxApiVersion}, {"MinAPIVersion", kMinApiVersion}, {"GitCommit", ""},
               {"Os", "linux"},                {"Arch", f.go_arch},              {"KernelVersion", f.kernel},
               {"BuildTime", f.build_time},    {"Experimental", "false"}};
  json j{{"Platform", {{"Name", "sandrun " + f.version}}},
         {"Components", json::array({{{"Name", "Engine"}, {"Version", f.version}, {"Details", details}}})},
         {"Version", f.version},
         {"ApiVersion", kMaxApiVersion},
         {"MinAPIVersion", kMinApiVersion},
         {"GitCommit", ""},
         {"Os", "linux"},
         {"Arch", f.go_arch},
         {"KernelVersion", f.kernel},
         {"BuildTime", f.build_time}};
  return Response::json(j.dump() + "\n");
}

namespace {

std::string now_rfc3339() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  char buf[40];
  ::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09}Z", buf, ts.tv_nsec);
}

// What every container gets by default (docs/security.md); the operator's policy may let a
// job turn some off.
json security_options(const HostFacts& f) {
  json opts = json::array();
  if (f.seccomp) opts.push_back("name=seccomp,profile=builtin");
  opts.push_back("name=userns");
  if (f.rootless) opts.push_back("name=rootless");
  if (f.cgroup_version == 2) opts.push_back("name=cgroupns");
  opts.push_back("name=no-new-privileges");
  return opts;
}

}  // namespace

Response info_response(const HostFacts& f, size_t images, const ContainerCounts& containers) {
  const auto& c = f.controllers;
  json j{{"ID", f.id},
         {"Containers", containers.total},
         {"ContainersRunning", containers.running},
         {"ContainersPaused", 0},
         {"ContainersStopped", containers.stopped},
         {"Images", images},
         {"Driver", "overlay"},
         {"DriverStatus", json::array()},
         {"MemoryLimit", has(c, "memory")},
         {"SwapLimit", f.swap_limit},
         {"CpuCfsPeriod", has(c, "cpu")},
         {"CpuCfsQuota", has(c, "cpu")},
         {"CPUShares", false},
         {"CPUSet", has(c, "cpuset")},
         {"PidsLimit", has(c, "pids")},
         {"KernelMemory", false},
         {"OomKillDisable", false},
         {"Debug", false},
         {"SystemTime", now_rfc3339()},
         {"CgroupDriver", f.cgroup_version == 0 ? "none" : "cgroupfs"},
         {"CgroupVersion", f.cgroup_version == 0 ? "" : std::to_string(f.cgroup_version)},
         {"KernelVersion", f.kernel},
         {"OperatingSystem", f.os_name},
         {"OSVersion", f.os_version},
         {"OSType", "linux"},
         {"Architecture", f.arch},
         {"NCPU", f.ncpu},
         {"MemTotal", f.mem_total},
         {"DockerRootDir", f.root},
         {"Name", f.name},
         {"Labels", json::array()},
         {"ExperimentalBuild", false},
         {"ServerVersion", f.version},
         {"Runtimes", {{"sandrun", {{"path", f.binary}}}}},
         {"DefaultRuntime", "sandrun"},
         {"Swarm", {{"NodeID", ""}, {"NodeAddr", ""}, {"LocalNodeState", "inactive"}, {"ControlAvailable", false},
                    {"Error", ""}, {"RemoteManagers", nullptr}}},
         {"LiveRestoreEnabled", f.live_restore},
         {"Isolation", ""},
         {"SecurityOptions", security_options(f)},
         {"CDISpecDirs", json::array()},
         {"Warnings", f.warnings}};
  return Response::json(j.dump() + "\n");
}

}  // namespace sandrun::runner::api
