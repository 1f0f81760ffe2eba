// A long-lived container's record: ids, names, JSON text, its file.
#include "runner/engine/container_record.h"

#include <sys/random.h>
#include <time.h>

#include <nlohmann/json.hpp>

#include "sandbox/sys/fs.h"

namespace sandrun::runner {
namespace {

using nlohmann::json;

const char* network_name(config::Network n) {
  switch (n) {
    case config::Network::none: return "none";
    case config::Network::private_: return "private";
    case config::Network::host: return "host";
  }
  return "none";
}

config::Network network_of(const std::string& s) {
  if (s == "private") return config::Network::private_;
  if (s == "host") return config::Network::host;
  return config::Network::none;
}

ContainerStatus status_of(const std::string& s) {
  if (s == "running") return ContainerStatus::running;
  if (s == "exited") return ContainerStatus::exited;
  if (s == "removing") return ContainerStatus::removing;
  return ContainerStatus::created;
}

template <typename T>
void put_opt(json& j, const char* key, const std::optional<T>& v) {
  if (v) j[key] = *v;
}
template <typename T>
void get_opt(const json& j, const char* key, std::optional<T>& v) {
  if (auto it = j.find(key); it != j.end() && !it->is_null()) v = it->get<T>();
}

json spec_to_json(const config::JobSpec& s) {
  json j;
  j["image"] = s.image;
  j["command"] = s.command;
  json env = json::array();
  for (const auto& [k, v] : s.env) env.push_back({k, v});
  j["env"] = env;
  put_opt(j, "workdir", s.workdir);
  put_opt(j, "user", s.user);
  json vols = json::array();
  for (const auto& v : s.volumes) vols.push_back({{"source", v.source}, {"target", v.target}, {"ro", v.readonly}});
  j["volumes"] = vols;
  put_opt(j, "memory", s.limits.memory);
  put_opt(j, "cpus", s.limits.cpus);
  put_opt(j, "pids", s.limits.pids);
  put_opt(j, "log_max", s.log_max);
  j["network"] = network_name(s.network);
  j["init"] = s.init;
  j["seccomp"] = s.seccomp;
  j["cap_add"] = config::names_of(s.cap_add);
  j["cap_drop"] = config::names_of(s.cap_drop);
  j["no_new_privs"] = s.no_new_privs;
  j["read_only_rootfs"] = s.read_only_rootfs;
  put_opt(j, "userns", s.userns);
  json ports = json::array();
  for (const auto& p : s.ports) ports.push_back({{"ip", p.host_ip}, {"host", p.host_port}, {"port", p.container_port}});
  j["ports"] = ports;
  return j;
}

std::vector<config::Named> named(const json& j) {
  std::vector<config::Named> out;
  for (const auto& n : j) out.push_back(config::Named{n.get<std::string>(), {}});
  return out;
}

config::JobSpec spec_from_json(const json& j, const std::string& name) {
  config::JobSpec s;
  s.name = s.base_name = name;
  s.image = j.at("image").get<std::string>();
  s.command = j.at("command").get<std::vector<std::string>>();
  for (const auto& e : j.at("env")) s.env.emplace_back(e.at(0).get<std::string>(), e.at(1).get<std::string>());
  get_opt(j, "workdir", s.workdir);
  get_opt(j, "user", s.user);
  for (const auto& v : j.at("volumes"))
    s.volumes.push_back({v.at("source").get<std::string>(), v.at("target").get<std::string>(), v.at("ro").get<bool>()});
  get_opt(j, "memory", s.limits.memory);
  get_opt(j, "cpus", s.limits.cpus);
  get_opt(j, "pids", s.limits.pids);
  get_opt(j, "log_max", s.log_max);
  s.network = network_of(j.value("network", "none"));
  s.init = j.value("init", true);
  s.seccomp = j.value("seccomp", "default");
  s.cap_add = named(j.value("cap_add", json::array()));
  s.cap_drop = named(j.value("cap_drop", json::array()));
  s.no_new_privs = j.value("no_new_privs", true);
  s.read_only_rootfs = j.value("read_only_rootfs", false);
  get_opt(j, "userns", s.userns);
  for (const auto& p : j.value("ports", json::array())) {
    config::PortSpec ps;
    ps.host_ip = p.at("ip").get<std::string>();
    ps.host_port = p.at("host").get<uint16_t>();
    ps.container_port = p.at("port").get<uint16_t>();
    s.ports.push_back(std::move(ps));
  }
  return s;
}

}  // namespace

std::string_view status_name(ContainerStatus s) {
  switch (s) {
    case ContainerStatus::created: return "created";
    case ContainerStatus::running: return "running";
    case ContainerStatus::exited: return "exited";
    case ContainerStatus::removing: return "removing";
  }
  return "created";
}

std::string new_container_id() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  std::string out;
  for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

bool valid_container_name(std::string_view name) {
  if (name.size() < 2) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(name[0])) return false;
  for (char c : name.substr(1)) {
    if (!alnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

std::string default_container_name(std::string_view id) { return "sandrun_" + std::string(id.substr(0, 12)); }

int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::string record_to_json(const ContainerRecord& r) {
  json j;
  j["id"] = r.id;
  j["name"] = r.name;
  j["labels"] = r.labels;
  j["spec"] = spec_to_json(r.spec);
  j["image_id"] = r.image_id;
  j["client"] = r.client;
  j["auto_remove"] = r.auto_remove;
  j["open_stdin"] = r.open_stdin;
  j["stdin_once"] = r.stdin_once;
  j["tty"] = r.tty;
  j["created_ns"] = r.created_ns;
  j["started_ns"] = r.started_ns;
  j["finished_ns"] = r.finished_ns;
  j["status"] = status_name(r.status);
  j["exit_code"] = r.exit_code;
  j["oom_killed"] = r.oom_killed;
  j["error"] = r.error;
  j["pid"] = r.pid;
  j["restarts"] = r.restarts;
  if (r.health) {
    const HealthCheck& h = *r.health;
    j["health"] = {{"argv", h.argv}, {"interval_ms", h.interval.count()}, {"timeout_ms", h.timeout.count()},
                   {"start_period_ms", h.start_period.count()}, {"start_interval_ms", h.start_interval.count()},
                   {"retries", h.retries}};
  }
  if (!r.wiring.empty()) j["wiring"] = wiring_to_json(r.wiring);
  if (r.live.pid_start) {
    json ports = json::array();
    for (const auto& p : r.ports)
      ports.push_back({{"service", p.service}, {"ip", p.host_ip}, {"host", p.host_port}, {"port", p.container_port}});
    j["live"] = {{"pid_start", r.live.pid_start}, {"slot", r.live.slot}, {"cgroup", r.live.cgroup}, {"ports", ports}};
  }
  return j.dump() + "\n";
}

Result<ContainerRecord> container_record_from_json(std::string_view text, const std::string& what) {
  try {
    const json j = json::parse(text);
    ContainerRecord r;
    r.id = j.at("id").get<std::string>();
    r.name = j.at("name").get<std::string>();
    r.labels = j.value("labels", std::map<std::string, std::string>{});
    r.spec = spec_from_json(j.at("spec"), r.name);
    r.image_id = j.value("image_id", "");
    r.client = j.value("client", "");
    r.auto_remove = j.value("auto_remove", false);
    r.open_stdin = j.value("open_stdin", false);
    r.stdin_once = j.value("stdin_once", false);
    r.tty = j.value("tty", false);
    r.created_ns = j.value("created_ns", int64_t{0});
    r.started_ns = j.value("started_ns", int64_t{0});
    r.finished_ns = j.value("finished_ns", int64_t{0});
    r.status = status_of(j.value("status", "created"));
    r.exit_code = j.value("exit_code", 0);
    r.oom_killed = j.value("oom_killed", false);
    r.error = j.value("error", "");
    r.pid = j.value("pid", 0);
    r.restarts = j.value("restarts", 0u);
    if (auto h = j.find("health"); h != j.end() && h->is_object()) {
      HealthCheck c;
      c.argv = h->at("argv").get<std::vector<std::string>>();
      c.interval = std::chrono::milliseconds(h->value("interval_ms", c.interval.count()));
      c.timeout = std::chrono::milliseconds(h->value("timeout_ms", c.timeout.count()));
      c.start_period = std::chrono::milliseconds(h->value("start_period_ms", c.start_period.count()));
      c.start_interval = std::chrono::milliseconds(h->value("start_interval_ms", c.start_interval.count()));
      c.retries = h->value("retries", c.retries);
      r.health = std::move(c);
    }
    if (auto it = j.find("wiring"); it != j.end()) r.wiring = wiring_from_json(*it);
    if (auto l = j.find("live"); l != j.end() && l->is_object()) {
      r.live.pid_start = l->value("pid_start", uint64_t{0});
      r.live.slot = l->value("slot", "");
      r.live.cgroup = l->value("cgroup", "");
      for (const auto& p : l->value("ports", json::array())) {
        r.ports.push_back(PublishedPort{p.value("service", ""), p.value("port", uint16_t{0}), p.value("ip", ""),
                                        p.value("host", uint16_t{0})});
      }
    }
    if (r.id.size() != 64 || r.id.find_first_not_of("0123456789abcdef") != std::string::npos)
      return Error::msg("{}: bad container id {:?}", what, r.id);
    return r;
  } catch (const std::exception& e) {
    return Error::msg("{}: {}", what, e.what());
  }
}

Result<void> save_record(const std::string& dir, const ContainerRecord& r) {
  return fs::write_file_atomic(fs::join(dir, "record.json"), record_to_json(r), 0600);
}

Result<ContainerRecord> load_record(const std::string& dir) {
  const std::string path = fs::join(dir, "record.json");
  const std::string text = SANDRUN_TRY(fs::read_file(path));
  return container_record_from_json(text, path);
}

}  // namespace sandrun::runner
