// Docker's JSON of containers: inspect and list, from the registry's records.
#include "runner/api/container_json.h"

#include <time.h>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "runner/api/health_json.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

json client_of(const ContainerRecord& r) {
  json j = json::parse(r.client, nullptr, false);
  return j.is_object() ? j : json::object();
}

std::string docker_status(const ContainerRecord& r) { return std::string(status_name(r.status)); }

// {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}]}: what it publishes while it runs,
// and the ports it exposes without publishing (null).
json ports_map(const ContainerRecord& r, const json& client) {
  json ports = json::object();
  const json cfg = client.value("Config", json::object());
  if (auto it = cfg.find("ExposedPorts"); it != cfg.end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) ports[k.find('/') == std::string::npos ? k + "/tcp" : k] = nullptr;
  }
  for (const auto& p : r.ports) {
    json& list = ports[fmt::format("{}/tcp", p.container_port)];
    if (list.is_null()) list = json::array();
    list.push_back({{"HostIp", p.host_ip}, {"HostPort", std::to_string(p.host_port)}});
  }
  return ports;
}

json empty_endpoint() {
  return {{"IPAMConfig", nullptr}, {"Links", nullptr}, {"Aliases", nullptr}, {"NetworkID", ""},
          {"EndpointID", ""}, {"Gateway", ""}, {"IPAddress", ""}, {"IPPrefixLen", 0},
          {"IPv6Gateway", ""}, {"GlobalIPv6Address", ""}, {"GlobalIPv6PrefixLen", 0}, {"MacAddress", ""},
          {"DriverOpts", nullptr}, {"DNSNames", nullptr}};
}

// Networks: the user networks it is on (addresses while it runs), else Docker's "none" (the
// default network of sandrun: its own namespace, loopback only) or "host".
json networks_of(const ContainerRecord& r, json& primary) {
  json nets = json::object();
  for (const NetworkJoin& n : r.wiring.networks) {
    json e = empty_endpoint();
    e["NetworkID"] = n.network_id;
    e["Aliases"] = n.aliases.empty() ? json(nullptr) : json(n.aliases);
    if (n.ipv4) e["IPAMConfig"] = {{"IPv4Address", *n.ipv4}};
    for (const LiveEndpoint& l : r.endpoints) {
      if (l.network_id != n.network_id) continue;
      e["EndpointID"] = l.endpoint.endpoint_id;
      e["Gateway"] = l.gateway.str();
      e["IPAddress"] = l.endpoint.address.str();
      e["IPPrefixLen"] = l.prefix;
      e["MacAddress"] = l.endpoint.mac;
      json names = {r.name, r.id.substr(0, 12)};
      for (const auto& a : n.aliases) names.push_back(a);
      e["DNSNames"] = names;
      if (primary.is_null()) primary = e;
    }
    nets[n.network_name] = e;
  }
  if (nets.empty()) nets[r.spec.network == config::Network::host ? "host" : "none"] = empty_endpoint();
  return nets;
}

json network_settings(const ContainerRecord& r) {
  json primary;
  json nets = networks_of(r, primary);
  if (primary.is_null()) primary = empty_endpoint();
  return {{"Bridge", ""}, {"SandboxID", ""}, {"HairpinMode", false}, {"LinkLocalIPv6Address", ""},
          {"LinkLocalIPv6PrefixLen", 0}, {"Ports", ports_map(r, client_of(r))}, {"SandboxKey", ""},
          {"SecondaryIPAddresses", nullptr}, {"SecondaryIPv6Addresses", nullptr}, {"EndpointID", primary["EndpointID"]},
          {"Gateway", primary["Gateway"]}, {"GlobalIPv6Address", ""}, {"GlobalIPv6PrefixLen", 0},
          {"IPAddress", primary["IPAddress"]}, {"IPPrefixLen", primary["IPPrefixLen"]}, {"IPv6Gateway", ""},
          {"MacAddress", primary["MacAddress"]}, {"Networks", nets}};
}

// Mounts: the client's binds (and tmpfs Mounts), then its volumes with their directories.
json mounts_of(const ContainerRecord& r, const json& client) {
  json mounts = client.value("Mounts", json::array());
  for (const VolumeMount& v : r.wiring.volumes) {
    std::string source;
    for (const auto& b : r.spec.volumes)
      if (b.target == v.target) source = b.source;
    mounts.push_back({{"Type", "volume"}, {"Name", v.name}, {"Source", source}, {"Destination", v.target},
                      {"Driver", "local"}, {"Mode", v.mode.empty() ? "z" : v.mode}, {"RW", !v.readonly},
                      {"Propagation", ""}});
  }
  return mounts;
}

}  // namespace

std::string rfc3339_nano(int64_t ns) {
  if (ns <= 0) return "0001-01-01T00:00:00Z";
  const time_t secs = static_cast<time_t>(ns / 1'000'000'000);
  tm t{};
  ::gmtime_r(&secs, &t);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour,
                     t.tm_min, t.tm_sec, ns % 1'000'000'000);
}

std::string human_duration(int64_t ns) {
  const int64_t seconds = ns / 1'000'000'000;
  if (seconds < 1) return "Less than a second";
  if (seconds == 1) return "1 second";
  if (seconds < 60) return fmt::format("{} seconds", seconds);
  const int64_t minutes = seconds / 60;
  if (minutes == 1) return "About a minute";
  if (minutes < 60) return fmt::format("{} minutes", minutes);
  const int64_t hours = static_cast<int64_t>(static_cast<double>(seconds) / 3600.0 + 0.5);
  if (hours == 1) return "About an hour";
  if (hours < 48) return fmt::format("{} hours", hours);
  if (hours < 24 * 7 * 2) return fmt::format("{} days", hours / 24);
  if (hours < 24 * 30 * 2) return fmt::format("{} weeks", hours / 24 / 7);
  if (hours < 24 * 365 * 2) return fmt::format("{} months", hours / 24 / 30);
  return fmt::format("{} years", seconds / 3600 / 24 / 365);
}

std::string status_text(const ContainerRecord& r, int64_t now, const HealthState* health) {
  switch (r.status) {
    case ContainerStatus::created: return "Created";
    case ContainerStatus::running: {
      std::string up = "Up " + human_duration(now - r.started_ns);
      if (!health) return up;
      // Docker's: "Up 5 seconds (healthy)", "(unhealthy)", "(health: starting)".
      if (health->status == HealthStatus::starting) return up + " (health: starting)";
      return fmt::format("{} ({})", up, health_status_name(health->status));
    }
    case ContainerStatus::exited:
      return fmt::format("Exited ({}) {} ago", r.exit_code, human_duration(now - r.finished_ns));
    case ContainerStatus::removing: return "Removal In Progress";
  }
  return "";
}

std::string inspect_json(const ContainerRecord& r, const HealthState* health, const std::vector<std::string>& exec_ids) {
  const json client = client_of(r);
  json j;
  j["Id"] = r.id;
  j["Created"] = rfc3339_nano(r.created_ns);
  j["Path"] = client.value("Path", "");
  j["Args"] = client.value("Args", json::array());
  const bool running = r.status == ContainerStatus::running;
  j["State"] = {{"Status", docker_status(r)}, {"Running", running}, {"Paused", false}, {"Restarting", false},
                {"OOMKilled", r.oom_killed}, {"Dead", false}, {"Pid", running ? r.pid : 0},
                {"ExitCode", r.exit_code}, {"Error", r.error}, {"StartedAt", rfc3339_nano(r.started_ns)},
                {"FinishedAt", rfc3339_nano(r.finished_ns)}};
  if (health) j["State"]["Health"] = health_state_json(*health);
  j["Image"] = r.image_id;
  j["ResolvConfPath"] = "";
  j["HostnamePath"] = "";
  j["HostsPath"] = "";
  j["LogPath"] = "";
  j["Name"] = "/" + r.name;
  j["RestartCount"] = r.restarts;
  j["Driver"] = "overlay";
  j["Platform"] = "linux";
  j["MountLabel"] = "";
  j["ProcessLabel"] = "";
  j["AppArmorProfile"] = "";
  j["ExecIDs"] = exec_ids.empty() ? json(nullptr) : json(exec_ids);
  json hc = client.value("HostConfig", json::object());
  hc["AutoRemove"] = r.auto_remove;
  if (!hc.contains("RestartPolicy")) hc["RestartPolicy"] = {{"Name", "no"}, {"MaximumRetryCount", 0}};
  hc["Memory"] = r.spec.limits.memory.value_or(0);
  hc["PidsLimit"] = r.spec.limits.pids ? json(*r.spec.limits.pids) : json(nullptr);
  hc["Privileged"] = false;
  hc["ReadonlyRootfs"] = r.spec.read_only_rootfs;
  // The daemon's own log, shown as Docker's default driver: clients (docker-py's run) read
  // the logs of a json-file container, and sandrun's are read the same way.
  if (!hc.contains("LogConfig") || !hc["LogConfig"].is_object() || hc["LogConfig"].value("Type", "").empty())
    hc["LogConfig"] = {{"Type", "json-file"}, {"Config", json::object()}};
  j["HostConfig"] = hc;
  j["GraphDriver"] = {{"Name", "overlay"}, {"Data", nullptr}};
  j["Mounts"] = mounts_of(r, client);
  json cfg = client.value("Config", json::object());
  cfg["Labels"] = r.labels;
  j["Config"] = cfg;
  j["NetworkSettings"] = network_settings(r);
  return j.dump();
}

std::string list_entry_json(const ContainerRecord& r, int64_t now, const HealthState* health) {
  const json client = client_of(r);
  json j;
  j["Id"] = r.id;
  j["Names"] = {"/" + r.name};
  j["Image"] = r.spec.image;
  j["ImageID"] = r.image_id;
  std::string command = client.value("Path", "");
  for (const auto& a : client.value("Args", json::array())) command += " " + a.get<std::string>();
  j["Command"] = command;
  j["Created"] = r.created_ns / 1'000'000'000;
  j["Ports"] = json::array();
  for (const auto& p : r.ports)
    j["Ports"].push_back({{"IP", p.host_ip}, {"PrivatePort", p.container_port}, {"PublicPort", p.host_port}, {"Type", "tcp"}});
  j["Labels"] = r.labels;
  j["State"] = docker_status(r);
  j["Status"] = status_text(r, now, health);
  j["HostConfig"] = {{"NetworkMode", client.value("HostConfig", json::object()).value("NetworkMode", "default")}};
  j["NetworkSettings"] = {{"Networks", network_settings(r)["Networks"]}};
  j["Mounts"] = mounts_of(r, client);
  return j.dump();
}

std::string frame_bytes(int stream, std::string_view data) {
  std::string out;
  out.reserve(8 + data.size());
  const uint32_t n = static_cast<uint32_t>(data.size());
  out += static_cast<char>(stream);
  out.append(3, '\0');
  out += static_cast<char>((n >> 24) & 0xff);
  out += static_cast<char>((n >> 16) & 0xff);
  out += static_cast<char>((n >> 8) & 0xff);
  out += static_cast<char>(n & 0xff);
  out.append(data);
  return out;
}

std::string frame_record(const LogRecord& r, bool timestamps, bool raw) {
  std::string data = timestamps ? rfc3339_nano(r.time_ns) + " " + r.data : r.data;
  return raw ? data : frame_bytes(r.stream, data);
}

Result<std::string> framed_log(const std::string& dir, const LogQuery& q, bool timestamps, bool raw) {
  auto records = SANDRUN_TRY(read_log(dir, q));
  std::string out;
  for (const auto& r : records) out += frame_record(r, timestamps, raw);
  return out;
}

}  // namespace sandrun::runner::api
