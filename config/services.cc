// A job's services ([jobs.NAME.services.SVC]) and their ready checks, and the checks of
// published ports and networks across a job and its services.
#include <arpa/inet.h>

#include <algorithm>
#include <array>

#include "config/key_ctx.h"

namespace sandrun::config::detail {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool same_host_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

// A service's name is its host name in the job's /etc/hosts: one DNS label.
Result<void> check_service_name(std::string_view name) {
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  bool ok = !name.empty() && name.size() <= 63 && alnum(name[0]);
  for (size_t i = 1; ok && i < name.size(); ++i) ok = alnum(name[i]) || name[i] == '-';
  if (!ok) {
    return Error::msg("invalid service name \"{}\": it becomes a host name: use letters, digits and "
                      "'-' (starting with a letter or digit), at most 63 characters", name);
  }
  if (same_host_name(name, "localhost")) {
    return Error::msg("invalid service name \"{}\": localhost is the job's own loopback", name);
  }
  return {};
}

// Like a job's: its [header], or its key when written inline.
SourcePos table_pos(const toml::key& key, const toml::node& value, const std::string& file) {
  const auto* table = value.as_table();
  if (table && !table->is_inline()) return pos_of(table->source(), file);
  return pos_of(key.source(), file);
}

Result<std::chrono::milliseconds> get_duration(const toml::node& n, const Ctx& c) {
  auto text = SANDRUN_TRY(get_string(n, c, "a string like \"200ms\" or \"20s\""));
  auto d = parse_duration(text);
  if (!d) return c.wrap(std::move(d).error());
  return *d;
}

Error unknown_ready_key(const toml::key& key, const Scope& scope) {
  static const std::vector<std::string_view> kNames = {"run", "command", "interval", "timeout"};
  std::string_view best = closest(key.str(), kNames);
  std::string hint = best.empty() ? "" : fmt::format(" (did you mean \"{}\"?)", best);
  return Error::msg("{}: {}: unknown key \"{}\"{}; expected one of: run, command, interval, timeout",
                    pos_of(key.source(), scope.file).str(), scope.path, key.str(), hint);
}

// ready = { run = "..." | command = [...], interval = "1s", timeout = "60s" }
Result<ReadyCheck> parse_ready(const toml::node& value, const Scope& service) {
  Scope scope{service.file, service.base_dir, service.path + ".ready", false, true};
  SourcePos pos = pos_of(value.source(), scope.file);
  const auto* table = value.as_table();
  if (!table) {
    return Error::msg("{}: {}: expected a table like {{ run = \"redis-cli ping\", interval = \"1s\" }}, "
                      "got {}", pos.str(), scope.path, type_name(value));
  }
  ReadyCheck ready;
  ready.pos = pos;
  JobSpec argv;  // run or command, parsed as a job's
  SourcePos run_at, command_at, interval_at, timeout_at;
  for (auto [key, node] : in_file_order(*table)) {
    std::string_view name = key->str();
    Ctx c{scope, name, pos_of(node->source(), scope.file)};
    if (name == "run") {
      SANDRUN_TRY(set_run(argv, *node, c));
      run_at = pos_of(key->source(), scope.file);
    } else if (name == "command") {
      SANDRUN_TRY(set_command(argv, *node, c));
      command_at = pos_of(key->source(), scope.file);
    } else if (name == "interval") {
      ready.interval = SANDRUN_TRY(get_duration(*node, c));
      interval_at = c.pos;
    } else if (name == "timeout") {
      ready.timeout = SANDRUN_TRY(get_duration(*node, c));
      timeout_at = c.pos;
    } else {
      return unknown_ready_key(*key, scope);
    }
  }
  if (run_at.line > 0 && command_at.line > 0) {
    bool run_later = std::pair(run_at.line, run_at.column) > std::pair(command_at.line, command_at.column);
    return Error::msg("{}: {}: set either run or command, not both", (run_later ? run_at : command_at).str(),
                      scope.path);
  }
  if (argv.command.empty()) {
    return Error::msg("{}: {}: no check; set run = \"...\" (a shell command) or command = [...] (an argv "
                      "array) that exits 0 once the service is ready", pos.str(), scope.path);
  }
  if (ready.interval > ready.timeout) {
    bool at_interval = interval_at.line > 0;
    return Error::msg("{}: {}.{}: the interval ({}) is longer than the timeout ({})",
                      (at_interval ? interval_at : timeout_at).str(), scope.path,
                      at_interval ? "interval" : "timeout", format_duration(ready.interval),
                      format_duration(ready.timeout));
  }
  ready.command = std::move(argv.command);
  return ready;
}

Result<ServiceSpec> parse_service(const toml::key& key, const toml::node& value, const Scope& job_scope,
                                  const std::string& services_path) {
  std::string name(key.str());
  std::string path = services_path + "." + key_text(name);
  SourcePos pos = table_pos(key, value, job_scope.file);
  if (auto ok = check_service_name(name); !ok) {
    return Error::msg("{}: {}: {}", pos_of(key.source(), job_scope.file).str(), services_path,
                      ok.error().message());
  }
  const auto* table = value.as_table();
  if (!table) {
    return Error::msg("{}: {}: expected a table like [{}] with image = \"...\", got {}", pos.str(), path, path,
                      type_name(value));
  }
  ServiceSpec service;
  JobSpec& spec = service.spec;
  spec.name = name;
  spec.pos = pos;
  spec.image_pos = pos;
  Scope scope{job_scope.file, job_scope.base_dir, path, false, true};
  SourcePos run_at, command_at;
  for (auto [k, node] : in_file_order(*table)) {
    if (k->str() == "ready") {
      service.ready = SANDRUN_TRY(parse_ready(*node, scope));
      spec.key_pos["ready"] = service.ready->pos;
      continue;
    }
    SANDRUN_TRY(apply_job_key(spec, *k, *node, scope));
    if (k->str() == "run") run_at = pos_of(k->source(), scope.file);
    if (k->str() == "command") command_at = pos_of(k->source(), scope.file);
  }
  if (run_at.line > 0 && command_at.line > 0) {
    bool run_later = std::pair(run_at.line, run_at.column) > std::pair(command_at.line, command_at.column);
    return Error::msg("{}: {}: set either run or command, not both", (run_later ? run_at : command_at).str(),
                      path);
  }
  if (!spec.key_pos.contains("image")) {
    return Error::msg("{}: {}: no image; set image = \"...\" (the service's image, like \"redis:7\")",
                      pos.str(), path);
  }
  return service;
}

}  // namespace

Result<std::vector<ServiceSpec>> parse_services(const toml::node& value, const Scope& job_scope) {
  const std::string path = job_scope.path + ".services";
  const auto* table = value.as_table();
  if (!table) {
    return Error::msg("{}: {}: expected a table of services like [{}.redis], got {}",
                      pos_of(value.source(), job_scope.file).str(), path, path, type_name(value));
  }
  std::vector<ServiceSpec> services;
  for (auto [key, node] : in_file_order(*table)) {
    ServiceSpec service = SANDRUN_TRY(parse_service(*key, *node, job_scope, path));
    for (const ServiceSpec& earlier : services) {
      if (same_host_name(earlier.spec.name, service.spec.name)) {
        return Error::msg("{}: {}.{}: \"{}\" and \"{}\" are the same host name", service.spec.pos.str(), path,
                          key_text(service.spec.name), earlier.spec.name, service.spec.name);
      }
    }
    services.push_back(std::move(service));
  }
  return services;
}

namespace {

// A host address in binary, to compare "::1" with "0:0::1"; family 0 when it does not parse.
struct Address {
  int family = 0;
  std::array<unsigned char, 16> bytes{};
};

Address address_of(const std::string& ip) {
  Address a;
  if (inet_pton(AF_INET, ip.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
  } else if (inet_pton(AF_INET6, ip.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
  }
  return a;
}

bool is_any(const Address& a) {
  size_t n = a.family == AF_INET ? 4 : 16;
  return std::all_of(a.bytes.begin(), a.bytes.begin() + n, [](unsigned char b) { return b == 0; });
}

// Whether listening on both would fail: the same address, or a wildcard covering the other
// ("::" also takes IPv4 on Linux' default dual-stack sockets).
bool overlaps(const Address& a, const Address& b) {
  if (a.family == b.family && a.bytes == b.bytes) return true;
  if ((a.family == AF_INET6 && is_any(a)) || (b.family == AF_INET6 && is_any(b))) return true;
  return a.family == b.family && (is_any(a) || is_any(b));
}

std::string shown(const PortSpec& p) {
  bool v6 = p.host_ip.find(':') != std::string::npos;
  return v6 ? fmt::format("[{}]:{}", p.host_ip, p.host_port) : fmt::format("{}:{}", p.host_ip, p.host_port);
}

struct Published {
  const PortSpec* port;
  Address address;
  std::string path;  // "jobs.web.ports[1]"
};

}  // namespace

Result<void> check_network(const JobSpec& job, const std::string& job_path) {
  if (job.network == Network::host && !job.services.empty()) {
    return Error::msg("{}: {}.services: not allowed with network = \"host\": services share the job's own "
                      "network namespace; use network = \"private\" or \"none\"",
                      job.where("services").str(), job_path);
  }
  if (job.network == Network::host && !job.ports.empty()) {
    return Error::msg("{}: {}.ports: cannot publish ports with network = \"host\": nothing to forward, the "
                      "container is on the host's network", job.where("ports").str(), job_path);
  }
  std::vector<Published> all;
  auto add = [&](const JobSpec& spec, const std::string& path) -> Result<void> {
    for (size_t i = 0; i < spec.ports.size(); ++i) {
      const PortSpec& p = spec.ports[i];
      Published here{&p, address_of(p.host_ip), fmt::format("{}.ports[{}]", path, i)};
      for (const Published& earlier : all) {
        if (p.host_port == 0 || earlier.port->host_port != p.host_port) continue;
        if (!overlaps(earlier.address, here.address)) continue;
        return Error::msg("{}: {}: host port {} is already published by {} (\"{}\")", p.pos.str(), here.path,
                          shown(p), earlier.path, earlier.port->text);
      }
      all.push_back(std::move(here));
    }
    return {};
  };
  SANDRUN_TRY(add(job, job_path));
  for (const ServiceSpec& s : job.services) {
    SANDRUN_TRY(add(s.spec, job_path + ".services." + key_text(s.spec.name)));
  }
  return {};
}

}  // namespace sandrun::config::detail
