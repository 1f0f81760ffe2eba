// Docker's create body into a JobSpec: each field honoured, refused (400) or ignored (logged).
#include "runner/api/container_create.h"

#include <optional>
#include <set>
#include <span>

#include <nlohmann/json.hpp>

#include "runner/api/create_fields.h"
#include "runner/api/health_json.h"
#include "runner/api/container_create_wiring.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

using create_fields::Bad;
using create_fields::bad;
using create_fields::str;

bool empty_value(const json& v) {
  if (v.is_null()) return true;
  if (v.is_boolean()) return !v.get<bool>();
  if (v.is_number()) return v.get<double>() == 0;
  if (v.is_string() || v.is_array() || v.is_object()) return v.empty();
  return false;
}

// Fields honoured (or refused when set) by the translation; any other field that is set is
// logged as ignored.
const std::set<std::string, std::less<>> kConfigFields = {
    "Image", "Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Labels", "Tty", "OpenStdin", "AttachStdin",
    "AttachStdout", "AttachStderr", "StdinOnce", "HostConfig", "NetworkingConfig", "Hostname", "Volumes", "ExposedPorts", "Healthcheck"};
const std::set<std::string, std::less<>> kHostFields = {
    "Binds", "Mounts", "Memory", "NanoCpus", "CpuQuota", "CpuPeriod", "PidsLimit", "AutoRemove", "CapAdd", "CapDrop",
    "ReadonlyRootfs", "Tmpfs", "Init", "SecurityOpt", "Privileged", "Devices", "PidMode", "IpcMode", "UTSMode",
    "UsernsMode", "NetworkMode", "PortBindings", "PublishAllPorts", "RestartPolicy", "MemorySwap", "LogConfig",
    "MemorySwappiness", "DeviceRequests", "CgroupnsMode", "ConsoleSize", "ExtraHosts"};

void log_ignored(const json& obj, const std::set<std::string, std::less<>>& known, std::string_view where) {
  for (const auto& [k, v] : obj.items()) {
    if (!known.count(k) && !empty_value(v)) log::info("api: create: {}{} is not honoured by sandrun (ignored)", where, k);
  }
}

bool boolean(const json& obj, const char* key, std::string_view where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return false;
  if (!it->is_boolean()) bad(fmt::format("{}{}: expected a boolean", where, key));
  return it->get<bool>();
}

int64_t integer(const json& obj, const char* key, std::string_view where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return 0;
  if (!it->is_number_integer()) bad(fmt::format("{}{}: expected an integer", where, key));
  return it->get<int64_t>();
}

// A string or an array of strings (Docker's strslice); nullopt when absent or null.
std::optional<std::vector<std::string>> strings(const json& obj, const char* key, std::string_view where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return std::vector<std::string>{it->get<std::string>()};
  if (!it->is_array()) bad(fmt::format("{}{}: expected an array of strings", where, key));
  std::vector<std::string> out;
  for (const auto& s : *it) {
    if (!s.is_string()) bad(fmt::format("{}{}: expected an array of strings", where, key));
    out.push_back(s.get<std::string>());
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> merged_env(const std::vector<std::string>& image_env,
                                                            const std::vector<std::string>& env) {
  std::vector<std::pair<std::string, std::string>> out;
  auto set = [&out](const std::string& k, const std::string& v) {
    for (auto& [key, val] : out) {
      if (key == k) {
        val = v;
        return;
      }
    }
    out.emplace_back(k, v);
  };
  for (const auto& e : image_env) {
    const size_t eq = e.find('=');
    if (eq != std::string::npos && eq > 0) set(e.substr(0, eq), e.substr(eq + 1));
  }
  for (const auto& e : env) {
    const size_t eq = e.find('=');
    if (eq == 0) bad(fmt::format("Env: invalid environment variable: {}", e));
    if (eq == std::string::npos) {  // "NAME" alone: unset
      std::erase_if(out, [&e](const auto& kv) { return kv.first == e; });
      continue;
    }
    if (e.find('\0') != std::string::npos) bad(fmt::format("Env: invalid environment variable: {}", e));
    set(e.substr(0, eq), e.substr(eq + 1));
  }
  return out;
}

void check_target(const std::string& target, std::string_view field) {
  if (target.empty() || target.front() != '/')
    bad(fmt::format("{}: invalid mount config: the mount destination {:?} must be an absolute path", field, target));
}

// HostConfig.Binds ("src:dst[:opts]") and Mounts of type bind into volumes; `make` gets the
// sources created when missing (Binds only, as Docker).
void read_mounts(const json& hc, config::JobSpec& spec, std::vector<std::string>& make, json& mounts) {
  for (const auto& b : strings(hc, "Binds", "HostConfig.").value_or(std::vector<std::string>{})) {
    std::vector<std::string> parts;
    size_t pos = 0;
    for (size_t c; (c = b.find(':', pos)) != std::string::npos; pos = c + 1) parts.push_back(b.substr(pos, c - pos));
    parts.push_back(b.substr(pos));
    if (parts.size() < 2 || parts.size() > 3) bad(fmt::format("HostConfig.Binds: invalid volume specification: '{}'", b));
    if (parts[0].empty()) bad(fmt::format("HostConfig.Binds: invalid volume specification: '{}'", b));
    if (parts[0].front() != '/') continue;  // a named volume (container_create_wiring.cc)
    check_target(parts[1], "HostConfig.Binds");
    bool ro = false;
    if (parts.size() == 3) {
      for (size_t p = 0, c; p <= parts[2].size(); p = c + 1) {
        c = parts[2].find(',', p);
        if (c == std::string::npos) c = parts[2].size();
        const std::string opt = parts[2].substr(p, c - p);
        if (opt == "ro") ro = true;
        else if (opt != "rw" && opt != "z" && opt != "Z" && opt != "rprivate" && opt != "private" && !opt.empty())
          bad(fmt::format("HostConfig.Binds: {:?}: mount option {:?} is not supported by sandrun", b, opt));
      }
    }
    spec.volumes.push_back({parts[0], parts[1], ro});
    make.push_back(parts[0]);
    mounts.push_back({{"Type", "bind"}, {"Source", parts[0]}, {"Destination", parts[1]}, {"Mode", parts.size() == 3 ? parts[2] : ""},
                      {"RW", !ro}, {"Propagation", "rprivate"}});
  }
  auto it = hc.find("Mounts");
  if (it == hc.end() || it->is_null()) return;
  if (!it->is_array()) bad("HostConfig.Mounts: expected an array");
  for (const auto& m : *it) {
    if (!m.is_object()) bad("HostConfig.Mounts: expected an array of objects");
    const std::string type = str(m, "Type", "HostConfig.Mounts[].");
    const std::string source = str(m, "Source", "HostConfig.Mounts[].");
    const std::string target = str(m, "Target", "HostConfig.Mounts[].");
    check_target(target, "HostConfig.Mounts");
    if (type == "volume" || type == "tmpfs") continue;  // container_create_wiring.cc
    if (type != "bind") bad(fmt::format("HostConfig.Mounts: mount type {:?} is not supported by sandrun", type));
    if (source.empty() || source.front() != '/')
      bad(fmt::format("HostConfig.Mounts: invalid mount config for type \"bind\": invalid mount path: '{}' mount path "
                      "must be absolute", source));
    const bool ro = boolean(m, "ReadOnly", "HostConfig.Mounts[].");
    spec.volumes.push_back({source, target, ro});
    mounts.push_back({{"Type", "bind"}, {"Source", source}, {"Destination", target}, {"Mode", ""}, {"RW", !ro},
                      {"Propagation", "rprivate"}});
  }
}

// Limits: Memory, NanoCpus or CpuQuota/CpuPeriod, PidsLimit.
void read_limits(const json& hc, config::JobSpec& spec) {
  const int64_t memory = integer(hc, "Memory", "HostConfig.");
  if (memory < 0) bad("HostConfig.Memory: must be 0 (no limit) or a number of bytes");
  if (memory > 0 && memory < (int64_t{6} << 20)) bad("Minimum memory limit allowed is 6MB");
  if (memory > 0) spec.limits.memory = static_cast<uint64_t>(memory);
  const int64_t nano = integer(hc, "NanoCpus", "HostConfig.");
  const int64_t quota = integer(hc, "CpuQuota", "HostConfig.");
  int64_t period = integer(hc, "CpuPeriod", "HostConfig.");
  if (nano && quota) bad("Conflicting options: Nano CPUs and CPU Period cannot both be set");
  if (nano < 0) bad("HostConfig.NanoCpus: must not be negative");
  if (nano > 0) spec.limits.cpus = static_cast<double>(nano) / 1e9;
  if (quota > 0) {
    if (period <= 0) period = 100000;
    spec.limits.cpus = static_cast<double>(quota) / static_cast<double>(period);
  }
  if (spec.limits.cpus) {
    if (auto r = config::check_cpus(*spec.limits.cpus, fmt::format("{}", *spec.limits.cpus)); !r)
      bad("HostConfig.NanoCpus: " + r.error().message());
  }
  const int64_t pids = integer(hc, "PidsLimit", "HostConfig.");
  if (pids > 0) {
    if (auto r = config::check_pids(static_cast<uint64_t>(pids), std::to_string(pids)); !r)
      bad("HostConfig.PidsLimit: " + r.error().message());
    spec.limits.pids = static_cast<uint64_t>(pids);
  }
}

// Hardening and namespaces: CapAdd/CapDrop, ReadonlyRootfs, Init, SecurityOpt; Privileged,
// Devices and the host's namespaces are refused (the operator's policy has no key that
// allows them).
void read_hardening(const json& hc, config::JobSpec& spec) {
  for (const auto& c : strings(hc, "CapAdd", "HostConfig.").value_or(std::vector<std::string>{}))
    spec.cap_add.push_back(config::Named{c, {}});
  for (const auto& c : strings(hc, "CapDrop", "HostConfig.").value_or(std::vector<std::string>{}))
    spec.cap_drop.push_back(config::Named{c, {}});
  spec.read_only_rootfs = boolean(hc, "ReadonlyRootfs", "HostConfig.");
  if (boolean(hc, "Privileged", "HostConfig."))
    bad("HostConfig.Privileged: privileged containers are refused by sandrun (no policy allows them)");
  if (auto it = hc.find("Devices"); it != hc.end() && !empty_value(*it))
    bad("HostConfig.Devices: host devices are refused by sandrun (no policy allows them)");
  if (auto it = hc.find("DeviceRequests"); it != hc.end() && !empty_value(*it))
    bad("HostConfig.DeviceRequests: device requests (GPUs) are not supported by sandrun");
  for (const char* ns : {"PidMode", "IpcMode", "UTSMode", "CgroupnsMode"}) {
    const std::string mode = str(hc, ns, "HostConfig.");
    if (mode == "host") bad(fmt::format("HostConfig.{}: the host's namespaces are refused by sandrun", ns));
    if (!mode.empty() && mode != "private" && mode != "shareable")
      bad(fmt::format("HostConfig.{}: {:?} is not supported by sandrun", ns, mode));
  }
  const std::string userns = str(hc, "UsernsMode", "HostConfig.");
  if (userns == "host") spec.userns = false;  // the policy's userns_off decides
  else if (!userns.empty()) bad(fmt::format("HostConfig.UsernsMode: {:?} is not supported by sandrun", userns));
  for (const auto& opt : strings(hc, "SecurityOpt", "HostConfig.").value_or(std::vector<std::string>{})) {
    if (opt == "no-new-privileges" || opt == "no-new-privileges:true" || opt == "no-new-privileges=true") {
      spec.no_new_privs = true;
    } else if (opt == "no-new-privileges:false" || opt == "no-new-privileges=false") {
      spec.no_new_privs = false;  // the policy's no_new_privs_off decides
    } else if (opt == "seccomp=unconfined" || opt == "seccomp:unconfined") {
      spec.seccomp = "unconfined";  // the policy's seccomp_unconfined decides
    } else if (opt.starts_with("label=") || opt.starts_with("label:") || opt.starts_with("apparmor=")) {
      log::info("api: create: HostConfig.SecurityOpt {:?} is not honoured by sandrun (ignored)", opt);
    } else {
      bad(fmt::format("HostConfig.SecurityOpt: {:?} is not supported by sandrun", opt));
    }
  }
}

// "80/tcp" (or "80") -> 80; another protocol is refused (only TCP is published).
uint16_t container_port(const std::string& key, std::string_view field) {
  const size_t slash = key.find('/');
  const std::string proto = slash == std::string::npos ? "tcp" : key.substr(slash + 1);
  if (proto != "tcp") bad(fmt::format("{}: {:?}: only tcp ports are published by sandrun", field, key));
  char* end = nullptr;
  const std::string num = key.substr(0, slash);
  const unsigned long n = std::strtoul(num.c_str(), &end, 10);
  if (num.empty() || *end != '\0' || n < 1 || n > 65535) bad(fmt::format("{}: invalid port {:?}", field, key));
  return static_cast<uint16_t>(n);
}

// HostConfig.PortBindings ({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}) and
// PublishAllPorts (every exposed port on a free host port) into the job's published ports.
void read_ports(const json& hc, const json& exposed, config::JobSpec& spec) {
  std::set<uint16_t> bound;
  if (auto it = hc.find("PortBindings"); it != hc.end() && it->is_object()) {
    for (const auto& [key, list] : it->items()) {
      const uint16_t port = container_port(key, "HostConfig.PortBindings");
      bound.insert(port);
      if (list.is_null()) continue;
      if (!list.is_array()) bad("HostConfig.PortBindings: expected arrays of bindings");
      for (const auto& b : list) {
        config::PortSpec p;
        p.container_port = port;
        const std::string ip = b.is_object() ? str(b, "HostIp", "HostConfig.PortBindings[].") : "";
        const std::string hp = b.is_object() ? str(b, "HostPort", "HostConfig.PortBindings[].") : "";
        if (!ip.empty()) p.host_ip = ip;
        if (!hp.empty()) {
          char* end = nullptr;
          const unsigned long n = std::strtoul(hp.c_str(), &end, 10);
          if (*end != '\0' || n > 65535) bad(fmt::format("HostConfig.PortBindings: invalid host port {:?}", hp));
          p.host_port = static_cast<uint16_t>(n);
        }
        p.text = fmt::format("{}:{}:{}", p.host_ip, p.host_port, port);
        spec.ports.push_back(std::move(p));
      }
    }
  }
  if (boolean(hc, "PublishAllPorts", "HostConfig.") && exposed.is_object()) {
    for (const auto& [key, v] : exposed.items()) {
      const uint16_t port = container_port(key, "ExposedPorts");
      if (bound.count(port)) continue;
      config::PortSpec p;
      p.container_port = port;
      p.text = fmt::format("0.0.0.0:0:{}", port);
      spec.ports.push_back(std::move(p));
    }
  }
  if (!spec.ports.empty() && spec.network == config::Network::host)
    bad("HostConfig.PortBindings: published ports are meaningless with the host's network (NetworkMode host)");
}

void read_network(const json& hc, const json& exposed, config::JobSpec& spec) {
  const std::string mode = str(hc, "NetworkMode", "HostConfig.");
  // Docker's default network is a bridge with outbound access; sandrun's is the container's
  // own network namespace with loopback only (docs/api.md).
  // A user network's name: the container's own namespace, attached to that network when it
  // starts (container_create_wiring.cc).
  if (mode == "host") spec.network = config::Network::host;  // the policy's network_host decides
  else spec.network = config::Network::none;
  read_ports(hc, exposed, spec);
  if (auto it = hc.find("RestartPolicy"); it != hc.end() && it->is_object()) {
    const std::string name = str(*it, "Name", "HostConfig.RestartPolicy.");
    if (!name.empty() && name != "no")
      bad(fmt::format("HostConfig.RestartPolicy: restart policy {:?} is not supported by sandrun yet", name));
  }
}

// Its stdin and terminal: OpenStdin (a stdin pipe), StdinOnce (closed when the first attached
// client goes), Tty, and HostConfig.ConsoleSize [rows, cols] (the terminal's first size, sent
// by the docker CLI since API 1.42).
void read_stdio(const json& cfg, const json& hc, CreateRequest& req) {
  req.tty = boolean(cfg, "Tty", "");
  req.open_stdin = boolean(cfg, "OpenStdin", "");
  req.stdin_once = req.open_stdin && boolean(cfg, "StdinOnce", "");
  auto it = hc.find("ConsoleSize");
  if (it == hc.end() || it->is_null()) return;
  if (!it->is_array() || it->size() != 2 || !(*it)[0].is_number_unsigned() || !(*it)[1].is_number_unsigned())
    bad("HostConfig.ConsoleSize: expected [height, width]");
  const uint64_t rows = (*it)[0].get<uint64_t>(), cols = (*it)[1].get<uint64_t>();
  if (rows > 65535 || cols > 65535) bad("HostConfig.ConsoleSize: height and width are at most 65535");
  if (rows && cols) {
    req.tty_rows = static_cast<uint16_t>(rows);
    req.tty_cols = static_cast<uint16_t>(cols);
  }
}

// Docker decodes the body into typed structs: a field of the wrong JSON type is its 400, never
// taken for something else or ignored. null is "not set" everywhere.
enum class FieldKind { string, boolean, integer, object, array, strslice };
struct TypedField {
  const char* name;
  FieldKind kind;
};
constexpr TypedField kConfigTypes[] = {
    {"Image", FieldKind::string}, {"Cmd", FieldKind::strslice}, {"Entrypoint", FieldKind::strslice}, {"Env", FieldKind::array},
    {"WorkingDir", FieldKind::string}, {"User", FieldKind::string}, {"Labels", FieldKind::object}, {"Tty", FieldKind::boolean},
    {"OpenStdin", FieldKind::boolean}, {"AttachStdin", FieldKind::boolean}, {"AttachStdout", FieldKind::boolean},
    {"AttachStderr", FieldKind::boolean}, {"StdinOnce", FieldKind::boolean}, {"HostConfig", FieldKind::object},
    {"NetworkingConfig", FieldKind::object}, {"Hostname", FieldKind::string}, {"Volumes", FieldKind::object},
    {"ExposedPorts", FieldKind::object}};
constexpr TypedField kHostTypes[] = {
    {"Binds", FieldKind::array}, {"Mounts", FieldKind::array}, {"Memory", FieldKind::integer}, {"NanoCpus", FieldKind::integer},
    {"CpuQuota", FieldKind::integer}, {"CpuPeriod", FieldKind::integer}, {"PidsLimit", FieldKind::integer},
    {"AutoRemove", FieldKind::boolean}, {"CapAdd", FieldKind::strslice}, {"CapDrop", FieldKind::strslice},
    {"ReadonlyRootfs", FieldKind::boolean}, {"Tmpfs", FieldKind::object}, {"Init", FieldKind::boolean}, {"SecurityOpt", FieldKind::array},
    {"Privileged", FieldKind::boolean}, {"Devices", FieldKind::array}, {"PidMode", FieldKind::string}, {"IpcMode", FieldKind::string},
    {"UTSMode", FieldKind::string}, {"UsernsMode", FieldKind::string}, {"NetworkMode", FieldKind::string},
    {"PortBindings", FieldKind::object}, {"PublishAllPorts", FieldKind::boolean}, {"RestartPolicy", FieldKind::object},
    {"MemorySwap", FieldKind::integer}, {"LogConfig", FieldKind::object}, {"MemorySwappiness", FieldKind::integer},
    {"DeviceRequests", FieldKind::array}, {"CgroupnsMode", FieldKind::string}};

std::optional<std::string> wrong_type(const json& obj, std::span<const TypedField> fields, std::string_view where) {
  for (const TypedField& f : fields) {
    auto it = obj.find(f.name);
    if (it == obj.end() || it->is_null()) continue;
    const json& v = *it;
    switch (f.kind) {
      case FieldKind::string:
        if (!v.is_string()) return fmt::format("{}{}: expected a string", where, f.name);
        break;
      case FieldKind::boolean:
        if (!v.is_boolean()) return fmt::format("{}{}: expected a boolean", where, f.name);
        break;
      case FieldKind::integer:
        if (!v.is_number_integer()) return fmt::format("{}{}: expected an integer", where, f.name);
        break;
      case FieldKind::object:
        if (!v.is_object()) return fmt::format("{}{}: expected an object", where, f.name);
        break;
      case FieldKind::array:
        if (!v.is_array()) return fmt::format("{}{}: expected an array", where, f.name);
        break;
      case FieldKind::strslice:
        if (!v.is_string() && !v.is_array()) return fmt::format("{}{}: expected a string or an array of strings", where, f.name);
        break;
    }
  }
  return std::nullopt;
}

// The image config's own HEALTHCHECK (config.Healthcheck), if it has a readable one.
HealthcheckSpec image_healthcheck(std::string_view image_config) {
  if (image_config.empty()) return {};
  const json doc = json::parse(image_config, nullptr, false);
  if (!doc.is_object() || !doc.contains("config") || !doc["config"].is_object()) return {};
  const json& c = doc["config"];
  if (!c.contains("Healthcheck")) return {};
  auto spec = parse_healthcheck(c["Healthcheck"]);
  if (auto* err = std::get_if<std::string>(&spec)) {
    log::warn("api: create: the image's Healthcheck is not used: {}", *err);
    return {};
  }
  return std::get<HealthcheckSpec>(spec);
}

CreateRequest translate(const json& cfg, const std::string& name, const cache::ImageRecord& image,
                        std::string_view image_config) {
  static const json kNone = json::object();
  const json& hc = cfg.contains("HostConfig") && cfg["HostConfig"].is_object() ? cfg["HostConfig"] : kNone;
  log_ignored(cfg, kConfigFields, "Config.");
  log_ignored(hc, kHostFields, "HostConfig.");
  CreateRequest req;
  req.name = name;
  config::JobSpec& spec = req.spec;
  spec.image = cfg["Image"].get<std::string>();
  // Entrypoint and Cmd as Docker: a given Entrypoint drops the image's Cmd.
  const auto entry = strings(cfg, "Entrypoint", "");
  const auto cmd = strings(cfg, "Cmd", "");
  std::vector<std::string> entrypoint = entry ? *entry : image.config.entrypoint;
  if (entrypoint.size() == 1 && entrypoint[0].empty()) entrypoint.clear();
  std::vector<std::string> args = cmd ? *cmd : (entry ? std::vector<std::string>{} : image.config.cmd);
  spec.command = entrypoint;
  spec.command.insert(spec.command.end(), args.begin(), args.end());
  if (spec.command.empty()) bad("No command specified");
  const auto env = strings(cfg, "Env", "").value_or(std::vector<std::string>{});
  spec.env = merged_env(image.config.env, env);
  const std::string workdir = str(cfg, "WorkingDir", "");
  if (!workdir.empty() && workdir.front() != '/')
    bad(fmt::format("the working directory '{}' is invalid, it needs to be an absolute path", workdir));
  if (!workdir.empty()) spec.workdir = workdir;
  const std::string user = str(cfg, "User", "");
  if (!user.empty()) {
    if (auto r = config::check_user(user); !r) bad("User: " + r.error().message());
    spec.user = user;
  }
  if (auto it = cfg.find("Labels"); it != cfg.end() && !it->is_null()) {
    if (!it->is_object()) bad("Labels: expected an object of strings");
    for (const auto& [k, v] : it->items()) {
      if (!v.is_string()) bad("Labels: expected an object of strings");
      req.labels[k] = v.get<std::string>();
    }
  }
  json mounts = json::array();
  read_mounts(hc, spec, req.make_dirs, mounts);
  if (auto refused = read_wiring(cfg, hc, req.wiring, mounts)) bad(std::move(*refused));
  read_limits(hc, spec);
  read_hardening(hc, spec);
  read_network(hc, cfg.contains("ExposedPorts") ? cfg["ExposedPorts"] : json(nullptr), spec);
  req.auto_remove = boolean(hc, "AutoRemove", "HostConfig.");
  // The create's check, else the image's (docker-save tars and pulled images carry it).
  auto health = parse_healthcheck(cfg.contains("Healthcheck") ? cfg["Healthcheck"] : json(nullptr));
  if (auto* err = std::get_if<std::string>(&health)) bad(*err);
  req.health = effective_healthcheck(std::get<HealthcheckSpec>(health), image_healthcheck(image_config));
  read_stdio(cfg, hc, req);
  if (auto it = hc.find("Init"); it != hc.end() && it->is_boolean() && !it->get<bool>())
    log::debug("api: create: Init false: sandrun's init stays PID 1");
  // Docker's view of what was created, for inspect and list.
  json config = cfg;
  config.erase("HostConfig");
  config.erase("NetworkingConfig");
  config["Image"] = spec.image;
  config["Env"] = json::array();
  for (const auto& [k, v] : spec.env) config["Env"].push_back(k + "=" + v);
  config["Cmd"] = args.empty() ? json(nullptr) : json(args);
  config["Entrypoint"] = entrypoint.empty() ? json(nullptr) : json(entrypoint);
  config["WorkingDir"] = workdir.empty() ? image.config.working_dir : workdir;
  config["User"] = user.empty() ? image.config.user : user;
  config["Labels"] = req.labels;
  config["Tty"] = req.tty;
  config["OpenStdin"] = req.open_stdin;
  config["StdinOnce"] = req.stdin_once;
  config["AttachStdin"] = boolean(cfg, "AttachStdin", "");
  config["Hostname"] = name;
  json client;
  client["Config"] = config;
  client["HostConfig"] = hc;
  const std::string mode = str(hc, "NetworkMode", "");
  client["HostConfig"]["NetworkMode"] = mode.empty() ? std::string("default") : mode;
  client["Path"] = spec.command.front();
  client["Args"] = std::vector<std::string>(spec.command.begin() + 1, spec.command.end());
  client["ImageID"] = image.id;
  client["Mounts"] = mounts;
  req.client = client.dump();
  return req;
}

}  // namespace

std::variant<CreateBody, Response> read_create_body(const std::string& body) {
  json cfg = json::parse(body, nullptr, false);
  if (cfg.is_discarded()) return Response::error(400, "invalid JSON in the request body");
  if (!cfg.is_object()) return Response::error(400, "the request body must be a JSON object");
  auto it = cfg.find("Image");
  if (it == cfg.end() || !it->is_string() || it->get<std::string>().empty())
    return Response::error(400, "Image: a container needs an image");
  if (auto m = wrong_type(cfg, kConfigTypes, "")) return Response::error(400, *m);
  if (auto hc = cfg.find("HostConfig"); hc != cfg.end() && hc->is_object()) {
    if (auto m = wrong_type(*hc, kHostTypes, "HostConfig.")) return Response::error(400, *m);
  }
  return CreateBody{it->get<std::string>(), body};
}

std::variant<CreateRequest, Response> translate_create(const CreateBody& body, const std::string& name,
                                                       const cache::ImageRecord& image, std::string_view image_config) {
  try {
    return translate(json::parse(body.json), name, image, image_config);
  } catch (const Bad& b) {
    return Response::error(400, b.message);
  } catch (const std::exception& e) {
    return Response::error(400, fmt::format("invalid container config: {}", e.what()));
  }
}

}  // namespace sandrun::runner::api
