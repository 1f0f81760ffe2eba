// The operator's host file: [policy] and [defaults], each value with its position.
#include "config/host_config.h"

#include <algorithm>
#include <cmath>

#include <fmt/ranges.h>

#include "config/key_ctx.h"
#include "sandbox/sys/fs.h"

namespace sandrun::config {

using detail::Ctx;
using detail::in_file_order;
using detail::pos_of;
using detail::type_name;

namespace {

// An array of non-empty strings without NUL; `check` may refuse an element (its message).
template <typename Check>
Result<std::vector<std::string>> strings(const toml::node& n, const Ctx& c, std::string_view example, Check check) {
  const auto* arr = n.as_array();
  if (!arr) return c.type_error(fmt::format("an array of strings like {}", example), n);
  std::vector<std::string> out;
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::node& el = *arr->get(i);
    const std::string index = fmt::format("[{}]", i);
    const auto* s = el.as_string();
    if (!s) return c.fail_at(el, index, fmt::format("expected a string, got {}", type_name(el)));
    if (s->get().empty()) return c.fail_at(el, index, "is empty");
    if (detail::has_nul(s->get())) return c.fail_at(el, index, "must not contain a NUL character");
    if (std::string why = check(s->get()); !why.empty()) return c.fail_at(el, index, why);
    out.push_back(s->get());
  }
  return out;
}

Result<void> set_bind_paths(Policy& p, const toml::node& n, const Ctx& c) {
  auto paths = SANDRUN_TRY(strings(n, c, "[\"/srv/ci\"]", [](const std::string& s) {
    return s[0] == '/' ? std::string() : fmt::format("host path \"{}\" must be absolute", s);
  }));
  for (auto& path : paths) path = fs::absolute(path);
  p.bind_paths.value = std::move(paths);
  return {};
}

// `true`: any capability (as without the key); `false`: none; a list: those.
Result<void> set_cap_add(Policy& p, const toml::node& n, const Ctx& c) {
  if (const auto* b = n.as_boolean()) {
    if (b->get()) {
      p.cap_add.value = std::vector<std::string>{"ALL"};
    } else {
      p.cap_add.value = std::vector<std::string>{};
    }
    return {};
  }
  if (!n.is_array()) return c.type_error("true, false or an array of strings like [\"NET_ADMIN\"]", n);
  p.cap_add.value = SANDRUN_TRY(strings(n, c, "[\"NET_ADMIN\"]", [](const std::string&) { return std::string(); }));
  return {};
}

Result<void> set_registries(Policy& p, const toml::node& n, const Ctx& c) {
  p.registries.value = SANDRUN_TRY(strings(n, c, "[\"127.0.0.1:5000\"]", [](const std::string& s) {
    return s.find('/') == std::string::npos
               ? std::string()
               : fmt::format("\"{}\" is not a registry host: expected HOST or HOST:PORT, like \"ghcr.io\"", s);
  }));
  return {};
}

Result<void> set_bool(Rule<bool>& rule, const toml::node& n, const Ctx& c) {
  rule.value = SANDRUN_TRY(detail::get_bool(n, c));
  return {};
}

Result<void> set_max_memory(Policy& p, const toml::node& n, const Ctx& c) {
  if (const auto* i = n.as_integer()) {
    if (i->get() < 0) return c.fail(fmt::format("{} is below the minimum of {}", i->get(), format_size(kMinMemory)));
    const auto bytes = static_cast<uint64_t>(i->get());
    if (auto ok = check_memory(bytes); !ok) return c.wrap(std::move(ok).error());
    p.max_memory.value = bytes;
    return {};
  }
  if (!n.is_string()) return c.type_error("a string like \"8GiB\" or an integer number of bytes", n);
  auto bytes = parse_memory(SANDRUN_TRY(detail::get_string(n, c, "")));
  if (!bytes) return c.wrap(std::move(bytes).error());
  p.max_memory.value = *bytes;
  return {};
}

Result<void> set_max_disk(Policy& p, const toml::node& n, const Ctx& c) {
  p.max_disk.value = SANDRUN_TRY(detail::get_size(n, c, kMinDisk, "20GiB"));
  return {};
}

Result<void> set_max_log(Policy& p, const toml::node& n, const Ctx& c) {
  p.max_log.value = SANDRUN_TRY(detail::get_size(n, c, kMinLogMax, "1GiB"));
  return {};
}

Result<void> set_max_cpus(Policy& p, const toml::node& n, const Ctx& c) {
  if (n.is_string()) {
    auto cpus = parse_cpus(SANDRUN_TRY(detail::get_string(n, c, "")));
    if (!cpus) return c.wrap(std::move(cpus).error());
    p.max_cpus.value = *cpus;
    return {};
  }
  if (!n.is_number()) return c.type_error("a number like 4 or a string like \"1.5\"", n);
  const double value = n.is_integer() ? static_cast<double>(n.as_integer()->get()) : n.as_floating_point()->get();
  if (!(value > 0) || !std::isfinite(value))
    return c.fail(fmt::format("invalid cpus {}: expected a number of CPUs greater than 0, like 0.5 or 2", value));
  p.max_cpus.value = value;
  return {};
}

// An integer from 1 to `max`.
Result<uint64_t> count(const toml::node& n, const Ctx& c, uint64_t max) {
  const auto* i = n.as_integer();
  if (!i) return c.type_error("an integer like 1024", n);
  if (i->get() < 1) return c.fail(fmt::format("must be at least 1, got {}", i->get()));
  if (static_cast<uint64_t>(i->get()) > max) return c.fail(fmt::format("must be at most {}, got {}", max, i->get()));
  return static_cast<uint64_t>(i->get());
}

Result<void> set_max_pids(Policy& p, const toml::node& n, const Ctx& c) {
  p.max_pids.value = SANDRUN_TRY(count(n, c, kMaxPids));
  return {};
}

Result<void> set_max_nofile(Policy& p, const toml::node& n, const Ctx& c) {
  p.max_nofile.value = SANDRUN_TRY(count(n, c, kMaxNofile));
  return {};
}

Result<void> set_max_disk_inodes(Policy& p, const toml::node& n, const Ctx& c) {
  p.max_disk_inodes.value = SANDRUN_TRY(count(n, c, UINT32_MAX));
  return {};
}

// A size: "16MiB" or an integer number of bytes, at least 1 KiB.
Result<void> set_max_job_file(Policy& p, const toml::node& n, const Ctx& c) {
  p.max_job_file.value = SANDRUN_TRY(detail::get_size(n, c, 1024, "16MiB"));
  return {};
}

Result<void> set_max_timeout(Policy& p, const toml::node& n, const Ctx& c) {
  auto d = parse_duration(SANDRUN_TRY(detail::get_string(n, c, "a string like \"1h\"")));
  if (!d) return c.wrap(std::move(d).error());
  p.max_timeout.value = *d;
  return {};
}

// A size of at least one byte: "64GiB", or an integer number of bytes.
Result<uint64_t> byte_count(const toml::node& n, const Ctx& c) {
  if (const auto* i = n.as_integer()) {
    if (i->get() < 1) return c.fail(fmt::format("must be at least 1 byte, got {}", i->get()));
    return static_cast<uint64_t>(i->get());
  }
  if (!n.is_string()) return c.type_error("a string like \"64GiB\" or an integer number of bytes", n);
  auto bytes = parse_size(SANDRUN_TRY(detail::get_string(n, c, "")));
  if (!bytes) return c.wrap(std::move(bytes).error());
  if (*bytes < 1) return c.fail("must be at least 1 byte");
  return *bytes;
}

#define SANDRUN_POLICY_BYTES(field) \
  [](Policy& p, const toml::node& n, const Ctx& c) -> Result<void> { \
    p.field.value = SANDRUN_TRY(byte_count(n, c)); \
    return {}; \
  }
#define SANDRUN_POLICY_COUNT(field) \
  [](Policy& p, const toml::node& n, const Ctx& c) -> Result<void> { \
    p.field.value = SANDRUN_TRY(count(n, c, INT64_MAX)); \
    return {}; \
  }

using Setter = Result<void> (*)(Policy&, const toml::node&, const Ctx&);
struct PolicyKey {
  std::string_view name;
  Setter set;
  SourcePos& (*pos)(Policy&);
};
#define SANDRUN_POLICY_POS(field) [](Policy& p) -> SourcePos& { return p.field.pos; }
#define SANDRUN_POLICY_BOOL(field) \
  [](Policy& p, const toml::node& n, const Ctx& c) { return set_bool(p.field, n, c); }
// In the order the "expected one of" list shows them.
const PolicyKey kPolicyKeys[] = {
    {"bind_paths", set_bind_paths, SANDRUN_POLICY_POS(bind_paths)},
    {"cap_add", set_cap_add, SANDRUN_POLICY_POS(cap_add)},
    {"seccomp_unconfined", SANDRUN_POLICY_BOOL(seccomp_unconfined), SANDRUN_POLICY_POS(seccomp_unconfined)},
    {"seccomp_profiles", SANDRUN_POLICY_BOOL(seccomp_profiles), SANDRUN_POLICY_POS(seccomp_profiles)},
    {"network_host", SANDRUN_POLICY_BOOL(network_host), SANDRUN_POLICY_POS(network_host)},
    {"no_new_privs_off", SANDRUN_POLICY_BOOL(no_new_privs_off), SANDRUN_POLICY_POS(no_new_privs_off)},
    {"userns_off", SANDRUN_POLICY_BOOL(userns_off), SANDRUN_POLICY_POS(userns_off)},
    {"max_memory", set_max_memory, SANDRUN_POLICY_POS(max_memory)},
    {"max_cpus", set_max_cpus, SANDRUN_POLICY_POS(max_cpus)},
    {"max_pids", set_max_pids, SANDRUN_POLICY_POS(max_pids)},
    {"max_nofile", set_max_nofile, SANDRUN_POLICY_POS(max_nofile)},
    {"max_timeout", set_max_timeout, SANDRUN_POLICY_POS(max_timeout)},
    {"max_disk", set_max_disk, SANDRUN_POLICY_POS(max_disk)},
    {"max_disk_inodes", set_max_disk_inodes, SANDRUN_POLICY_POS(max_disk_inodes)},
    {"max_log", set_max_log, SANDRUN_POLICY_POS(max_log)},
    {"max_job_file", set_max_job_file, SANDRUN_POLICY_POS(max_job_file)},
    {"registries", set_registries, SANDRUN_POLICY_POS(registries)},
    {"max_image_bytes", SANDRUN_POLICY_BYTES(max_image_bytes), SANDRUN_POLICY_POS(max_image_bytes)},
    {"max_image_entries", SANDRUN_POLICY_COUNT(max_image_entries), SANDRUN_POLICY_POS(max_image_entries)},
    {"max_layer_bytes", SANDRUN_POLICY_BYTES(max_layer_bytes), SANDRUN_POLICY_POS(max_layer_bytes)},
    {"max_layer_entries", SANDRUN_POLICY_COUNT(max_layer_entries), SANDRUN_POLICY_POS(max_layer_entries)},
};
#undef SANDRUN_POLICY_POS
#undef SANDRUN_POLICY_BOOL
#undef SANDRUN_POLICY_BYTES
#undef SANDRUN_POLICY_COUNT

// "unknown key "x" (did you mean "y"?); expected one of: ..."
Error unknown(const toml::key& key, const std::string& file, std::string_view table,
              const std::vector<std::string_view>& names) {
  std::string suggestion;
  if (auto best = detail::closest(key.str(), names); !best.empty()) suggestion = fmt::format(" (did you mean \"{}\"?)", best);
  return Error::msg("{}: {}: unknown key \"{}\"{}; expected one of: {}", pos_of(key.source(), file).str(), table,
                    key.str(), suggestion, fmt::join(names, ", "));
}

Result<Policy> parse_policy(const toml::node& value, const detail::Scope& scope) {
  const toml::table* table = value.as_table();
  if (!table)
    return Error::msg("{}: policy: expected a table like [policy], got {}", pos_of(value.source(), scope.file).str(),
                      type_name(value));
  Policy policy;
  for (auto [key, node] : in_file_order(*table)) {
    const auto* k = std::find_if(std::begin(kPolicyKeys), std::end(kPolicyKeys),
                                 [&](const PolicyKey& pk) { return pk.name == key->str(); });
    if (k == std::end(kPolicyKeys)) {
      std::vector<std::string_view> names;
      for (const auto& pk : kPolicyKeys) names.push_back(pk.name);
      return unknown(*key, scope.file, "policy", names);
    }
    Ctx ctx{scope, k->name, pos_of(node->source(), scope.file)};
    SANDRUN_TRY(k->set(policy, *node, ctx));
    k->pos(policy) = ctx.pos;
  }
  return policy;
}

Result<JobSpec> parse_defaults(const toml::node& value, const detail::Scope& scope) {
  const toml::table* table = value.as_table();
  if (!table)
    return Error::msg("{}: defaults: expected a table like [defaults], got {}",
                      pos_of(value.source(), scope.file).str(), type_name(value));
  JobSpec defaults;
  const std::vector<std::string_view> names(std::begin(kHostDefaultKeys), std::end(kHostDefaultKeys));
  for (auto [key, node] : in_file_order(*table)) {
    if (std::find(names.begin(), names.end(), key->str()) == names.end()) {
      return unknown(*key, scope.file, "defaults", names);
    }
    SANDRUN_TRY(detail::apply_job_key(defaults, *key, *node, scope));
  }
  return defaults;
}

}  // namespace

Result<HostConfig> parse_host_config(std::string_view text, const std::string& path) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(path));
  } catch (const toml::parse_error& err) {
    return Error::msg("{}: invalid TOML: {}", pos_of(err.source(), path).str(), err.description());
  }
  HostConfig config;
  config.path = path;
  const std::string full = fs::absolute(path);
  const std::string dir = full.substr(0, full.rfind('/'));
  const std::string base_dir = dir.empty() ? "/" : dir;
  for (auto [key, node] : in_file_order(root)) {
    if (key->str() == "policy") {
      config.policy = SANDRUN_TRY(parse_policy(*node, detail::Scope{path, base_dir, "policy"}));
    } else if (key->str() == "defaults") {
      config.defaults = SANDRUN_TRY(parse_defaults(*node, detail::Scope{path, base_dir, "defaults", /*defaults=*/true}));
    } else {
      std::string_view best = detail::closest(key->str(), {"policy", "defaults"});
      std::string suggestion = best.empty() ? "" : fmt::format(" (did you mean \"{}\"?)", best);
      return Error::msg("{}: unknown key \"{}\"{}; expected \"policy\" or \"defaults\"",
                        pos_of(key->source(), path).str(), key->str(), suggestion);
    }
  }
  return config;
}

Result<HostConfig> load_host_config(const std::string& path) {
  auto text = fs::read_file(path);
  if (!text) {
    if (text.error().code() != 0) return Error::sys_code(text.error().code(), "cannot read host file {}", path);
    return std::move(text.error().wrap(fmt::format("cannot read host file {}", path)));
  }
  return parse_host_config(*text, path);
}

}  // namespace sandrun::config
