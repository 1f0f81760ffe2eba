// Capability names, Docker's default set and the resolution of cap_add/cap_drop lists.
#include "sandbox/capabilities.h"

#include <linux/capability.h>
#include <sys/prctl.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>

namespace sandrun::sandbox {
namespace {

// Indexed by capability number (linux/capability.h, up to CAP_CHECKPOINT_RESTORE = 40).
constexpr std::array<std::string_view, 41> kNames = {
    "CHOWN",           "DAC_OVERRIDE",  "DAC_READ_SEARCH",   "FOWNER",       "FSETID",
    "KILL",            "SETGID",        "SETUID",            "SETPCAP",      "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN",        "NET_RAW",      "IPC_LOCK",
    "IPC_OWNER",       "SYS_MODULE",    "SYS_RAWIO",         "SYS_CHROOT",   "SYS_PTRACE",
    "SYS_PACCT",       "SYS_ADMIN",     "SYS_BOOT",          "SYS_NICE",     "SYS_RESOURCE",
    "SYS_TIME",        "SYS_TTY_CONFIG", "MKNOD",            "LEASE",        "AUDIT_WRITE",
    "AUDIT_CONTROL",   "SETFCAP",       "MAC_OVERRIDE",      "MAC_ADMIN",    "SYSLOG",
    "WAKE_ALARM",      "BLOCK_SUSPEND", "AUDIT_READ",        "PERFMON",      "BPF",
    "CHECKPOINT_RESTORE",
};
static_assert(CAP_CHECKPOINT_RESTORE == 40 && CAP_SYS_ADMIN == 21 && CAP_BPF == 39);

constexpr CapSet bit(int cap) { return CapSet{1} << cap; }

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The closest known name when it is close enough to be a typo (two edits, one for short names).
std::string_view suggestion(std::string_view bare) {
  const size_t limit = bare.size() < 5 ? 1 : 2;
  std::string_view best;
  size_t best_distance = limit + 1;
  for (std::string_view name : kNames) {
    const size_t d = edit_distance(bare, name);
    if (d < best_distance) {
      best = name;
      best_distance = d;
    }
  }
  return best;
}

CapSet all_capabilities() {
  const int last = last_capability();
  return (last >= 63 ? ~CapSet{0} : bit(last + 1) - 1) & bounding_set();
}

// Adds the capabilities a list names to `set`; "ALL" is handled by the caller.
Result<CapSet> parse_list(const std::vector<std::string>& names, std::string_view list) {
  CapSet set = 0;
  for (const std::string& name : names) {
    if (upper(name) == "ALL") continue;
    auto cap = parse_capability(name);
    if (!cap) return std::move(cap).error().wrap(std::string(list));
    set |= bit(*cap);
  }
  return set;
}

bool has_all(const std::vector<std::string>& names) {
  return std::any_of(names.begin(), names.end(), [](const std::string& n) { return upper(n) == "ALL"; });
}

}  // namespace

CapSet default_capabilities() {
  return bit(CAP_CHOWN) | bit(CAP_DAC_OVERRIDE) | bit(CAP_FSETID) | bit(CAP_FOWNER) | bit(CAP_MKNOD) |
         bit(CAP_NET_RAW) | bit(CAP_SETGID) | bit(CAP_SETUID) | bit(CAP_SETFCAP) | bit(CAP_SETPCAP) |
         bit(CAP_NET_BIND_SERVICE) | bit(CAP_SYS_CHROOT) | bit(CAP_KILL) | bit(CAP_AUDIT_WRITE);
}

Result<int> parse_capability(std::string_view name) {
  std::string bare = upper(name);
  if (bare.rfind("CAP_", 0) == 0) bare.erase(0, 4);
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == bare) return static_cast<int>(i);
  }
  const std::string_view close = bare.empty() ? std::string_view() : suggestion(bare);
  if (!close.empty()) {
    return Error::msg("unknown capability \"{}\" (did you mean CAP_{}?)", name, close);
  }
  return Error::msg("unknown capability \"{}\"", name);
}

Result<CapSet> resolve_capabilities(const std::vector<std::string>& add,
                                    const std::vector<std::string>& drop) {
  // Parse both lists first so that a typo is reported even where ALL makes it irrelevant.
  const CapSet added = SANDRUN_TRY(parse_list(add, "cap_add"));
  const CapSet dropped = SANDRUN_TRY(parse_list(drop, "cap_drop"));
  if (has_all(add)) return all_capabilities() & ~dropped;
  if (has_all(drop)) return added & all_capabilities();
  return ((default_capabilities() & ~dropped) | added) & all_capabilities();
}

std::vector<std::string> capability_names(CapSet set) {
  std::vector<std::string> out;
  for (int cap = 0; cap < 64; ++cap) {
    if (!(set & bit(cap))) continue;
    if (static_cast<size_t>(cap) < kNames.size()) {
      out.push_back("CAP_" + std::string(kNames[cap]));
    } else {
      out.push_back("CAP_" + std::to_string(cap));
    }
  }
  return out;
}

CapSet bounding_set() {
  static const CapSet set = [] {
    CapSet s = 0;
    for (int cap = 0; cap <= last_capability() && cap < 64; ++cap) {
      if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1) s |= bit(cap);
    }
    return s;
  }();
  return set;
}

int last_capability() {
  static const int last = [] {
    std::ifstream in("/proc/sys/kernel/cap_last_cap");
    int value = -1;
    if (in >> value && value >= 0 && value < 64) return value;
    return static_cast<int>(CAP_LAST_CAP);
  }();
  return last;
}

}  // namespace sandrun::sandbox
