// Docker-format seccomp JSON profiles: parsed with nlohmann::json (exceptions stay in this file),
// filtered by capabilities, architecture and kernel version as Docker does, then compiled.
#include <sys/utsname.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string_view>

#include "sandbox/seccomp_filter.h"
#include "sandbox/sys/fs.h"

namespace sandrun::sandbox {
namespace {

using json = nlohmann::json;
using seccomp_profile::Action;
using seccomp_profile::ArgCmp;
using seccomp_profile::Op;
using seccomp_profile::Profile;
using seccomp_profile::Rule;

// Names of the native architecture as Docker's includes/excludes "arches" spell it (Go's
// GOARCH), plus the libseccomp spelling.
bool is_native_arch(const std::string& arch) { return arch == "amd64" || arch == "x86_64"; }

Result<Action> parse_action(const json& j, const json* errno_ret) {
  if (!j.is_string()) return Error::msg("the action must be a string");
  const std::string name = j.get<std::string>();
  static const std::pair<std::string_view, Action::Kind> kActions[] = {
      {"SCMP_ACT_ALLOW", Action::kAllow},          {"SCMP_ACT_ERRNO", Action::kErrno},
      {"SCMP_ACT_KILL", Action::kKillThread},      {"SCMP_ACT_KILL_THREAD", Action::kKillThread},
      {"SCMP_ACT_KILL_PROCESS", Action::kKillProcess}, {"SCMP_ACT_TRAP", Action::kTrap},
      {"SCMP_ACT_TRACE", Action::kTrace},          {"SCMP_ACT_LOG", Action::kLog},
  };
  Action action;
  bool found = false;
  for (auto [text, kind] : kActions) {
    if (name == text) action.kind = kind, found = true;
  }
  if (name == "SCMP_ACT_NOTIFY") return Error::msg("action \"SCMP_ACT_NOTIFY\" is not supported (it needs a seccomp agent)");
  if (!found) return Error::msg("unknown action \"{}\"", name);
  const bool takes_errno = action.kind == Action::kErrno || action.kind == Action::kTrace;
  if (errno_ret && !errno_ret->is_null()) {
    if (!takes_errno) return Error::msg("errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE, not {}", name);
    if (!errno_ret->is_number_unsigned() || errno_ret->get<uint64_t>() > 4095) {
      return Error::msg("errnoRet must be a number from 0 to 4095, not {}", errno_ret->dump());
    }
    action.errno_ret = static_cast<uint16_t>(errno_ret->get<uint64_t>());
  } else if (takes_errno) {
    action.errno_ret = EPERM;  // what Docker and runc use when errnoRet is absent
  }
  return action;
}

Result<ArgCmp> parse_arg(const json& j) {
  if (!j.is_object()) return Error::msg("an argument must be an object");
  ArgCmp a;
  const json& index = j.value("index", json());
  if (!index.is_number_unsigned() || index.get<uint64_t>() > 5) return Error::msg("index must be 0 to 5, not {}", index.dump());
  a.index = index.get<unsigned>();
  for (auto [key, out] : {std::pair{"value", &a.value}, std::pair{"valueTwo", &a.value_two}}) {
    const json& v = j.value(key, json(0));
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
      return Error::msg("{} must be an unsigned number, not {}", key, v.dump());
    }
    *out = v.get<uint64_t>();
  }
  static const std::pair<std::string_view, Op> kOps[] = {
      {"SCMP_CMP_NE", Op::kNe}, {"SCMP_CMP_LT", Op::kLt}, {"SCMP_CMP_LE", Op::kLe},       {"SCMP_CMP_EQ", Op::kEq},
      {"SCMP_CMP_GE", Op::kGe}, {"SCMP_CMP_GT", Op::kGt}, {"SCMP_CMP_MASKED_EQ", Op::kMaskedEq},
  };
  const json& op = j.value("op", json());
  for (auto [text, value] : kOps) {
    if (op.is_string() && op.get<std::string>() == text) {
      a.op = value;
      return a;
    }
  }
  return Error::msg("unknown op {}", op.dump());
}

// "4.8" <= the running kernel's release ("6.18.44-fc")?
bool kernel_at_least(const std::string& min) {
  struct utsname u;
  if (::uname(&u) != 0) return true;
  int have[2] = {0, 0}, want[2] = {0, 0};
  std::sscanf(u.release, "%d.%d", &have[0], &have[1]);
  std::sscanf(min.c_str(), "%d.%d", &want[0], &want[1]);
  return have[0] != want[0] ? have[0] > want[0] : have[1] >= want[1];
}

bool holds_all(const json& caps, CapSet held) {
  for (const json& c : caps) {
    auto cap = c.is_string() ? parse_capability(c.get<std::string>()) : Result<int>(Error::msg("not a name"));
    if (!cap || !(held & (CapSet{1} << *cap))) return false;  // a capability we cannot name is not held
  }
  return true;
}

bool holds_any(const json& caps, CapSet held) {
  for (const json& c : caps) {
    if (holds_all(json::array({c}), held)) return true;
  }
  return false;
}

bool names_native(const json& arches) {
  for (const json& a : arches) {
    if (a.is_string() && is_native_arch(a.get<std::string>())) return true;
  }
  return false;
}

// Docker's rules: every `includes` condition must hold and no `excludes` condition may.
bool applies(const json& entry, CapSet caps) {
  const json inc = entry.value("includes", json::object());
  const json exc = entry.value("excludes", json::object());
  if (inc.contains("caps") && !holds_all(inc["caps"], caps)) return false;
  if (inc.contains("arches") && !names_native(inc["arches"])) return false;
  if (inc.contains("minKernel") && inc["minKernel"].is_string() && !kernel_at_least(inc["minKernel"])) return false;
  if (exc.contains("caps") && holds_any(exc["caps"], caps)) return false;
  if (exc.contains("arches") && names_native(exc["arches"])) return false;
  if (exc.contains("minKernel") && exc["minKernel"].is_string() && kernel_at_least(exc["minKernel"])) return false;
  return true;
}

// One entry of "syscalls": a rule per name; when one argument is compared more than once, each
// comparison becomes a rule of its own (OR), as runc does, because libseccomp ANDs within a rule
// and refuses two comparisons of one argument.
Result<void> add_entry(Profile& p, const json& entry, CapSet caps) {
  if (!entry.is_object()) return Error::msg("an entry must be an object");
  if (!applies(entry, caps)) return {};
  const json* errno_ret = entry.contains("errnoRet") ? &entry["errnoRet"] : nullptr;
  const Action action = SANDRUN_TRY(parse_action(entry.value("action", json()), errno_ret));
  std::vector<ArgCmp> args;
  const json list = entry.value("args", json::array());
  for (size_t i = 0; i < (list.is_array() ? list.size() : 0); ++i) {
    args.push_back(SANDRUN_TRY(parse_arg(list[i]).wrap(fmt::format("args[{}]", i))));
  }
  bool repeated = false;
  for (size_t i = 0; i < args.size(); ++i) {
    for (size_t k = i + 1; k < args.size(); ++k) repeated |= args[i].index == args[k].index;
  }
  json names = entry.value("names", json::array());
  if (entry.contains("name")) names.push_back(entry["name"]);  // the pre-1.12 single-name form
  if (!names.is_array() || names.empty()) return Error::msg("no syscall names");
  for (const json& name : names) {
    if (!name.is_string()) return Error::msg("a syscall name must be a string, not {}", name.dump());
    if (!repeated) {
      p.rules.push_back({name.get<std::string>(), action, args});
      continue;
    }
    for (const ArgCmp& a : args) p.rules.push_back({name.get<std::string>(), action, {a}});
  }
  return {};
}

Result<Profile> parse_profile(const json& root, const std::string& path, CapSet caps) {
  if (!root.is_object()) return Error::msg("the profile must be a JSON object");
  Profile p;
  p.description = path;
  if (!root.contains("defaultAction")) return Error::msg("defaultAction is missing");
  const json* default_errno = root.contains("defaultErrnoRet") ? &root["defaultErrnoRet"] : nullptr;
  p.default_action = SANDRUN_TRY(parse_action(root["defaultAction"], default_errno).wrap("defaultAction"));
  // architectures and archMap only widen a filter to other ABIs; ours is for x86_64 only.
  const json syscalls = root.value("syscalls", json::array());
  if (!syscalls.is_array()) return Error::msg("syscalls must be an array");
  for (size_t i = 0; i < syscalls.size(); ++i) {
    SANDRUN_TRY(add_entry(p, syscalls[i], caps).wrap(fmt::format("syscalls[{}]", i)));
  }
  return p;
}

// "[json.exception.parse_error.101] parse error at line 3, column 1: ..." without the tag.
std::string without_tag(const char* what) {
  std::string_view text(what);
  if (text.size() > 0 && text[0] == '[') {
    if (size_t end = text.find("] "); end != std::string_view::npos) text.remove_prefix(end + 2);
  }
  return std::string(text);
}

Result<Profile> load_profile(const std::string& path, CapSet caps) {
  const std::string text = SANDRUN_TRY(fs::read_file(path));
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    return Error::msg("invalid JSON: {}", without_tag(e.what()));
  }
  try {
    return parse_profile(root, path, caps);
  } catch (const json::exception& e) {  // a value of an unexpected type deep inside
    return Error::msg("{}", without_tag(e.what()));
  }
}

}  // namespace

Result<std::shared_ptr<const SeccompFilter>> compile_seccomp_json(const std::string& path, CapSet caps) {
  const Profile profile = SANDRUN_TRY(load_profile(path, caps).wrap(fmt::format("seccomp profile {}", path)));
  return seccomp_profile::compile(profile).wrap(fmt::format("seccomp profile {}", path));
}

}  // namespace sandrun::sandbox
