// The keys of a job table: one parser per key, each checking the TOML type and the value.
#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <fmt/ranges.h>

#include "config/key_ctx.h"

namespace sandrun::config::detail {

// A string value: argv, environment and paths become C strings, so NUL is refused here.
Result<std::string> get_string(const toml::node& n, const Ctx& c, std::string_view expected) {
  const auto* s = n.as_string();
  if (!s) return c.type_error(expected, n);
  if (has_nul(s->get())) return c.fail("must not contain a NUL character");
  return s->get();
}

Result<bool> get_bool(const toml::node& n, const Ctx& c) {
  const auto* b = n.as_boolean();
  if (!b) return c.type_error("true or false", n);
  return b->get();
}

Result<uint64_t> get_size(const toml::node& n, const Ctx& c, uint64_t min, std::string_view example) {
  uint64_t bytes = 0;
  if (const auto* i = n.as_integer()) {
    if (i->get() < 0) return c.fail(fmt::format("{} is below the minimum of {}", i->get(), format_size(min)));
    bytes = static_cast<uint64_t>(i->get());
  } else if (n.is_string()) {
    auto parsed = parse_size(SANDRUN_TRY(get_string(n, c, "")));
    if (!parsed) return c.wrap(std::move(parsed).error());
    bytes = *parsed;
  } else {
    return c.type_error(fmt::format("a string like \"{}\" or an integer number of bytes", example), n);
  }
  if (bytes < min) return c.fail(fmt::format("{} is below the minimum of {}", format_size(bytes), format_size(min)));
  return bytes;
}

Result<std::string> scalar_text(const toml::node& n) {
  if (const auto* s = n.as_string()) return s->get();
  if (const auto* i = n.as_integer()) return std::to_string(i->get());
  if (const auto* f = n.as_floating_point()) return fmt::format("{}", f->get());
  if (const auto* b = n.as_boolean()) return std::string(b->get() ? "true" : "false");
  return Error::msg("expected a string, number or boolean, got {}", type_name(n));
}

namespace {

Result<void> set_image(JobSpec& spec, const toml::node& n, const Ctx& c) {
  auto image = SANDRUN_TRY(get_string(n, c, "a string like \"busybox\" or \"alpine:3.19\""));
  if (is_blank(image)) return c.fail("is empty");
  spec.image = std::move(image);
  spec.image_pos = c.pos;
  return {};
}

}  // namespace

Result<void> set_run(JobSpec& spec, const toml::node& n, const Ctx& c) {
  auto run = SANDRUN_TRY(get_string(
      n, c, "a string (a shell command; use command = [...] for an argv array)"));
  if (is_blank(run)) return c.fail("is empty");
  spec.command = {"/bin/sh", "-c", std::move(run)};
  return {};
}

Result<void> set_command(JobSpec& spec, const toml::node& n, const Ctx& c) {
  const auto* arr = n.as_array();
  if (!arr) return c.type_error("an array of strings like [\"make\", \"test\"]", n);
  if (arr->empty()) return c.fail("is empty");
  std::vector<std::string> argv;
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& el = *arr->get(i);
    std::string index = fmt::format("[{}]", i);
    const auto* s = el.as_string();
    if (!s) return c.fail_at(el, index, fmt::format("expected a string, got {}", type_name(el)));
    if (has_nul(s->get())) return c.fail_at(el, index, "must not contain a NUL character");
    if (i == 0 && s->get().empty()) return c.fail_at(el, index, "is empty");
    argv.push_back(s->get());
  }
  spec.command = std::move(argv);
  return {};
}

namespace {

// Job variables override [defaults]' in place, so the defaults' order is kept; new ones follow.
Result<void> set_env(JobSpec& spec, const toml::node& n, const Ctx& c) {
  const auto* table = n.as_table();
  if (!table) return c.type_error("a table like { NAME = \"value\" }", n);
  // Where each name already is (the defaults' entries): one lookup per entry, not a scan of
  // the list, which made 80,000 entries take 14 s.
  // The list is reserved first: the views below stay valid as it grows.
  spec.env.reserve(spec.env.size() + table->size());
  std::unordered_map<std::string_view, size_t> at;
  at.reserve(spec.env.capacity());
  for (size_t i = 0; i < spec.env.size(); ++i) at.emplace(spec.env[i].first, i);
  for (auto [key, value] : in_file_order(*table)) {
    if (auto ok = check_env_name(key->str()); !ok) {
      return Error::msg("{}: {}: {}", pos_of(key->source(), c.scope.file).str(), c.path(),
                        ok.error().message());
    }
    auto text = scalar_text(*value);
    std::string entry = "." + key_text(key->str());
    if (!text) return c.fail_at(*value, entry, text.error().message());
    if (has_nul(*text)) return c.fail_at(*value, entry, "must not contain a NUL character");
    if (auto it = at.find(key->str()); it != at.end()) {
      spec.env[it->second].second = text.take();
    } else {
      at.emplace(key->str(), spec.env.size());
      spec.env.emplace_back(key->str(), text.take());
    }
  }
  return {};
}

Result<void> set_workdir(JobSpec& spec, const toml::node& n, const Ctx& c) {
  auto dir = SANDRUN_TRY(get_string(n, c, "a string (an absolute container path) like \"/src\""));
  if (dir.empty()) return c.fail("is empty");
  if (dir[0] != '/') return c.fail(fmt::format("container path \"{}\" must be absolute", dir));
  spec.workdir = std::move(dir);
  return {};
}

Result<void> set_volumes(JobSpec& spec, const toml::node& n, const Ctx& c) {
  const auto* arr = n.as_array();
  if (!arr) return c.type_error("an array of strings like [\"./cache:/cache:ro\"]", n);
  std::vector<VolumeSpec> volumes;
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& el = *arr->get(i);
    std::string index = fmt::format("[{}]", i);
    const auto* s = el.as_string();
    if (!s) {
      return c.fail_at(el, index,
                       fmt::format("expected a string like \"./cache:/cache:ro\", got {}", type_name(el)));
    }
    if (has_nul(s->get())) return c.fail_at(el, index, "must not contain a NUL character");
    auto v = parse_volume(s->get(), c.scope.base_dir);
    if (!v) return c.fail_at(el, index, v.error().message());
    for (size_t j = 0; j < volumes.size(); ++j) {
      if (volumes[j].target == v->target) {
        return c.fail_at(el, index, fmt::format("container path \"{}\" is already used by volumes[{}]",
                                                v->target, j));
      }
    }
    volumes.push_back(v.take());
  }
  spec.volumes = std::move(volumes);
  return {};
}

Result<void> set_timeout(JobSpec& spec, const toml::node& n, const Ctx& c) {
  auto text = SANDRUN_TRY(get_string(n, c, "a string like \"90s\""));
  auto d = parse_duration(text);
  if (!d) return c.wrap(std::move(d).error());
  spec.timeout = *d;
  return {};
}

Result<void> set_memory(JobSpec& spec, const toml::node& n, const Ctx& c) {
  uint64_t bytes = 0;
  if (const auto* i = n.as_integer()) {
    if (i->get() < 0) {
      return c.fail(fmt::format("{} is below the minimum of {}", i->get(), format_size(kMinMemory)));
    }
    bytes = static_cast<uint64_t>(i->get());
    if (auto ok = check_memory(bytes); !ok) return c.wrap(std::move(ok).error());
  } else if (n.is_string()) {
    auto parsed = parse_memory(SANDRUN_TRY(get_string(n, c, "")));
    if (!parsed) return c.wrap(std::move(parsed).error());
    bytes = *parsed;
  } else {
    return c.type_error("a string like \"512MiB\" or an integer number of bytes", n);
  }
  spec.limits.memory = bytes;
  return {};
}

Result<void> set_disk(JobSpec& spec, const toml::node& n, const Ctx& c) {
  spec.limits.disk = SANDRUN_TRY(get_size(n, c, kMinDisk, "10GiB"));
  return {};
}

Result<void> set_disk_inodes(JobSpec& spec, const toml::node& n, const Ctx& c) {
  const auto* i = n.as_integer();
  if (!i) return c.type_error("an integer number of files like 100000", n);
  if (i->get() < 1) return c.fail(fmt::format("must be at least 1, got {}", i->get()));
  if (i->get() > UINT32_MAX) return c.fail(fmt::format("must be at most {} (ext4's limit), got {}", UINT32_MAX, i->get()));
  spec.limits.disk_inodes = static_cast<uint64_t>(i->get());
  return {};
}

Result<void> set_log_max(JobSpec& spec, const toml::node& n, const Ctx& c) {
  spec.log_max = SANDRUN_TRY(get_size(n, c, kMinLogMax, "100MiB"));
  return {};
}

Result<void> set_cpus(JobSpec& spec, const toml::node& n, const Ctx& c) {
  if (n.is_string()) {
    auto cpus = parse_cpus(SANDRUN_TRY(get_string(n, c, "")));
    if (!cpus) return c.wrap(std::move(cpus).error());
    spec.limits.cpus = *cpus;
    return {};
  }
  if (!n.is_number()) return c.type_error("a number like 1.5 or a string like \"1.5\"", n);
  double value = n.is_integer() ? static_cast<double>(n.as_integer()->get())
                                : n.as_floating_point()->get();
  std::string shown = n.is_integer() ? std::to_string(n.as_integer()->get()) : fmt::format("{}", value);
  if (auto ok = check_cpus(value, shown); !ok) return c.fail(ok.error().message());
  spec.limits.cpus = value;
  return {};
}

Result<void> set_pids(JobSpec& spec, const toml::node& n, const Ctx& c) {
  const auto* i = n.as_integer();
  if (!i) return c.type_error("an integer like 1024", n);
  if (i->get() < 1) return c.fail(fmt::format("must be at least 1, got {}", i->get()));
  if (auto ok = check_pids(static_cast<uint64_t>(i->get()), std::to_string(i->get())); !ok)
    return c.fail(ok.error().message());
  spec.limits.pids = static_cast<uint64_t>(i->get());
  return {};
}

Result<void> set_cpuset(JobSpec& spec, const toml::node& n, const Ctx& c) {
  auto text = SANDRUN_TRY(get_string(n, c, "a string like \"0-3\" or \"0,2\""));
  if (auto cpus = parse_cpuset(text); !cpus) return c.wrap(std::move(cpus).error());
  spec.limits.cpuset = std::move(text);
  return {};
}

// An integer sets both limits; a string is "SOFT[:HARD]".
Result<void> set_nofile(JobSpec& spec, const toml::node& n, const Ctx& c) {
  if (const auto* i = n.as_integer()) {
    int64_t v = i->get();
    if (v < 1) return c.fail(fmt::format("invalid nofile {}: must be at least 1", v));
    auto value = static_cast<uint64_t>(v);
    if (auto ok = check_nofile(value, value, std::to_string(v)); !ok) return c.wrap(std::move(ok).error());
    spec.nofile = std::pair(value, value);
    return {};
  }
  if (!n.is_string()) return c.type_error("an integer like 4096 or a string like \"1024:4096\"", n);
  auto nofile = parse_nofile(SANDRUN_TRY(get_string(n, c, "")));
  if (!nofile) return c.wrap(std::move(nofile).error());
  spec.nofile = *nofile;
  return {};
}

Result<void> set_seccomp(JobSpec& spec, const toml::node& n, const Ctx& c) {
  auto text = SANDRUN_TRY(get_string(n, c, "a string, \"default\", \"unconfined\" or a profile path"));
  auto profile = parse_seccomp(text, c.scope.base_dir);
  if (!profile) return c.wrap(std::move(profile).error());
  spec.seccomp = profile.take();
  return {};
}

// cap_add and cap_drop: the names and where each was written, replacing the defaults' list.
Result<void> set_caps(std::vector<Named>& names, const toml::node& n, const Ctx& c) {
  const auto* arr = n.as_array();
  if (!arr) return c.type_error("an array of strings like [\"NET_ADMIN\"]", n);
  std::vector<Named> out;
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& el = *arr->get(i);
    std::string index = fmt::format("[{}]", i);
    const auto* s = el.as_string();
    if (!s) return c.fail_at(el, index, fmt::format("expected a string like \"NET_ADMIN\", got {}", type_name(el)));
    if (has_nul(s->get())) return c.fail_at(el, index, "must not contain a NUL character");
    if (auto ok = check_capability(s->get()); !ok) return c.fail_at(el, index, ok.error().message());
    out.push_back(Named{s->get(), pos_of(el.source(), c.scope.file)});
  }
  names = std::move(out);
  return {};
}

Result<void> set_cap_add(JobSpec& spec, const toml::node& n, const Ctx& c) {
  return set_caps(spec.cap_add, n, c);
}

Result<void> set_cap_drop(JobSpec& spec, const toml::node& n, const Ctx& c) {
  return set_caps(spec.cap_drop, n, c);
}

Result<void> set_no_new_privs(JobSpec& spec, const toml::node& n, const Ctx& c) {
  spec.no_new_privs = SANDRUN_TRY(get_bool(n, c));
  return {};
}

Result<void> set_read_only_rootfs(JobSpec& spec, const toml::node& n, const Ctx& c) {
  spec.read_only_rootfs = SANDRUN_TRY(get_bool(n, c));
  return {};
}

Result<void> set_userns(JobSpec& spec, const toml::node& n, const Ctx& c) {
  spec.userns = SANDRUN_TRY(get_bool(n, c));
  return {};
}

Result<void> set_user(JobSpec& spec, const toml::node& n, const Ctx& c) {
  auto user = SANDRUN_TRY(get_string(n, c, "a string like \"1000:1000\" or \"nobody\""));
  if (user.empty()) return c.fail("is empty");
  if (auto r = check_user(user); !r) return c.wrap(std::move(r).error());
  spec.user = std::move(user);
  return {};
}

Result<void> set_network(JobSpec& spec, const toml::node& n, const Ctx& c) {
  auto text = SANDRUN_TRY(get_string(n, c, "a string, \"none\", \"private\" or \"host\""));
  auto network = parse_network(text);
  if (!network) return c.wrap(std::move(network).error());
  spec.network = *network;
  return {};
}

// Each element parsed with parse_port, at its own position. Clashes between the job's and its
// services' host ports are checked once all are read (check_network).
Result<void> set_ports(JobSpec& spec, const toml::node& n, const Ctx& c) {
  const auto* arr = n.as_array();
  if (!arr) return c.type_error("an array of strings like [\"8080:80\", \"127.0.0.1:0:5432\"]", n);
  std::vector<PortSpec> ports;
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& el = *arr->get(i);
    std::string index = fmt::format("[{}]", i);
    const auto* s = el.as_string();
    if (!s) {
      return c.fail_at(el, index, fmt::format("expected a string like \"8080:80\", got {}", type_name(el)));
    }
    auto port = parse_port(s->get());
    if (!port) return c.fail_at(el, index, port.error().message());
    port->pos = pos_of(el.source(), c.scope.file);
    ports.push_back(port.take());
  }
  spec.ports = std::move(ports);
  return {};
}

Result<void> set_pull(JobSpec& spec, const toml::node& n, const Ctx& c) {
  auto text = SANDRUN_TRY(get_string(n, c, "a string, \"never\", \"missing\" or \"always\""));
  auto policy = parse_pull_policy(text);
  if (!policy) return c.wrap(std::move(policy).error());
  spec.pull = *policy;
  return {};
}

Result<void> set_init(JobSpec& spec, const toml::node& n, const Ctx& c) {
  spec.init = SANDRUN_TRY(get_bool(n, c));
  return {};
}

using Setter = Result<void> (*)(JobSpec&, const toml::node&, const Ctx&);
struct KeyDef {
  std::string_view name;
  Setter set;
  bool in_defaults;
  bool in_service;  // a service's table takes the keys of one container, not the job graph's
};
// In the order the "expected one of" lists show them.
constexpr KeyDef kKeys[] = {
    {"image", set_image, true, true},         {"run", set_run, false, true},
    {"command", set_command, false, true},    {"env", set_env, true, true},
    {"workdir", set_workdir, true, true},     {"workspace", set_workspace, true, false},
    {"volumes", set_volumes, true, true},     {"timeout", set_timeout, true, false},
    {"memory", set_memory, true, true},       {"cpus", set_cpus, true, true},
    {"cpuset", set_cpuset, true, true},       {"pids", set_pids, true, true},
    {"nofile", set_nofile, true, true},       {"disk", set_disk, true, true},
    {"disk_inodes", set_disk_inodes, true, true}, {"log_max", set_log_max, true, true},
    {"user", set_user, true, true},
    {"network", set_network, true, false},    {"ports", set_ports, false, true},
    {"services", nullptr, false, false},      // parsed by parse_services
    {"ready", nullptr, false, true},          // parsed by parse_services
    {"init", set_init, true, true},
    {"pull", set_pull, true, true},
    {"seccomp", set_seccomp, true, true},     {"cap_add", set_cap_add, true, true},
    {"cap_drop", set_cap_drop, true, true},   {"no_new_privs", set_no_new_privs, true, true},
    {"read_only_rootfs", set_read_only_rootfs, true, true},
    {"userns", set_userns, true, false},
    {"needs", set_needs, false, false},       {"matrix", nullptr, false, false},  // parsed by parse_matrix
    {"retries", set_retries, true, false},    {"allow_failure", set_allow_failure, true, false},
    {"caches", set_caches, true, false},      {"artifacts", set_artifacts, true, false},
    {"artifacts_archive", set_artifacts_archive, true, false},
    {"artifacts_when", set_artifacts_when, true, false},
    {"artifacts_max_size", set_artifacts_max_size, true, false},
    {"artifacts_max_files", set_artifacts_max_files, true, false},
    {"junit", set_junit, true, false},
};

bool takes(const KeyDef& k, const Scope& scope) {
  if (scope.service) return k.in_service;
  if (k.name == "ready") return false;
  return k.in_defaults || !scope.defaults;
}

// Names other tools use for a key (docker-compose's, Docker's flags), matched after '-' -> '_'
// and lowercasing; checked before typos, since "read_only" is a typo of no key.
constexpr std::pair<std::string_view, std::string_view> kAliases[] = {
    {"cpuset_cpus", "cpuset"},        {"pids_limit", "pids"},
    {"mem_limit", "memory"},          {"ulimits", "nofile"},
    {"ulimit", "nofile"},             {"security_opt", "seccomp"},
    {"read_only", "read_only_rootfs"}, {"readonly", "read_only_rootfs"},
    {"no_new_privileges", "no_new_privs"}, {"userns_mode", "userns"},
    {"working_dir", "workdir"},       {"environment", "env"},
    {"network_mode", "network"},      {"entrypoint", "command"},
    {"pull_policy", "pull"},          {"depends_on", "needs"},
    {"dependencies", "needs"},        {"retry", "retries"},
    {"continue_on_error", "allow_failure"}, {"cache", "caches"},
};

// Another tool's name for a key ("read-only", "cpuset_cpus"), else a key within a typo.
std::string_view suggest(std::string_view word, const std::vector<std::string_view>& names) {
  std::string normal;
  for (char c : word) normal += c == '-' ? '_' : (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
  for (auto [alias, name] : kAliases) {
    if (alias == normal && std::find(names.begin(), names.end(), name) != names.end()) return name;
  }
  return closest(word, names);
}

Error unknown_key(const toml::key& key, const Scope& scope) {
  std::string where = pos_of(key.source(), scope.file).str();
  if (scope.defaults && (key.str() == "run" || key.str() == "command")) {
    return Error::msg("{}: {}.{}: not allowed in [defaults]; set run or command in each "
                      "[jobs.NAME]", where, scope.path, key.str());
  }
  if (scope.defaults && (key.str() == "needs" || key.str() == "matrix" || key.str() == "services" ||
                         key.str() == "ports")) {
    return Error::msg("{}: {}.{}: not allowed in [defaults]; set {} in each [jobs.NAME] that "
                      "uses it", where, scope.path, key.str(), key.str());
  }
  if (scope.defaults && key.str() == "fail_fast") {
    return Error::msg("{}: {}.fail_fast: not allowed in [defaults]; fail_fast is a top-level key "
                      "(write it before the first [table])", where, scope.path);
  }
  if (scope.service && key.str() == "timeout") {
    return Error::msg("{}: {}.timeout: not allowed in a service: services run until the job ends; "
                      "ready.timeout bounds how long one may take to get ready", where, scope.path);
  }
  if (scope.service && key.str() == "network") {
    return Error::msg("{}: {}.network: not allowed in a service: services share the job's network "
                      "namespace; set network on the job", where, scope.path);
  }
  std::vector<std::string_view> names;
  for (const auto& k : kKeys) {
    if (takes(k, scope)) names.push_back(k.name);
  }
  std::string suggestion;
  if (auto best = suggest(key.str(), names); !best.empty()) {
    suggestion = fmt::format(" (did you mean \"{}\"?)", best);
  }
  return Error::msg("{}: {}: unknown key \"{}\"{}; expected one of: {}", where, scope.path,
                    key.str(), suggestion, fmt::join(names, ", "));
}

}  // namespace

Result<void> apply_job_key(JobSpec& spec, const toml::key& key, const toml::node& value,
                           const Scope& scope) {
  for (const auto& k : kKeys) {
    if (k.name != key.str() || !takes(k, scope) || !k.set) continue;
    Ctx ctx{scope, k.name, pos_of(value.source(), scope.file)};
    SANDRUN_TRY(k.set(spec, value, ctx));
    spec.key_pos[std::string(k.name)] = ctx.pos;
    return {};
  }
  return unknown_key(key, scope);
}

}  // namespace sandrun::config::detail
