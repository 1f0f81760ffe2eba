// Value syntaxes shared by the job file and the command line: durations, sizes, cpus, volumes.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>

#include "config/job_file.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/text.h"

namespace sandrun::config {

namespace {

using u128 = unsigned __int128;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// A decimal number "12" or "1.25" read from the front of `text`: the integer part (saturated
// above 2^64 so overflow is still detected) and up to 18 fraction digits. Further fraction
// digits are checked but dropped: they cannot move a result by a whole millisecond or byte.
struct Decimal {
  u128 whole = 0;
  uint64_t frac = 0;       // the fraction digits read, as an integer
  uint64_t frac_scale = 1;  // 10^(number of fraction digits read)
  bool zero = true;        // every digit is 0
};

bool read_decimal(std::string_view& text, Decimal& out) {
  constexpr u128 kSaturate = static_cast<u128>(1) << 100;
  size_t i = 0;
  for (; i < text.size() && is_digit(text[i]); ++i) {
    if (out.whole < kSaturate) out.whole = out.whole * 10 + static_cast<unsigned>(text[i] - '0');
    if (text[i] != '0') out.zero = false;
  }
  if (i == 0) return false;
  if (i < text.size() && text[i] == '.') {
    size_t start = ++i;
    for (; i < text.size() && is_digit(text[i]); ++i) {
      if (i - start < 18) {
        out.frac = out.frac * 10 + static_cast<unsigned>(text[i] - '0');
        out.frac_scale *= 10;
      }
      if (text[i] != '0') out.zero = false;
    }
    if (i == start) return false;  // "5." is not a number
  }
  text.remove_prefix(i);
  return true;
}

// value * unit, the fraction part rounded down (round_half adds half a unit first).
u128 scale(const Decimal& d, uint64_t unit, bool round_half) {
  u128 whole = d.whole * unit;
  u128 part = static_cast<u128>(d.frac) * unit;
  if (round_half) part += d.frac_scale / 2;
  return whole + part / d.frac_scale;
}

std::string_view take_letters(std::string_view& text) {
  size_t i = 0;
  while (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= 'A' && text[i] <= 'Z'))) ++i;
  std::string_view unit = text.substr(0, i);
  text.remove_prefix(i);
  return unit;
}

uint64_t duration_unit(std::string_view unit) {
  if (unit == "ms") return 1;
  if (unit == "s") return 1000;
  if (unit == "m") return 60 * 1000;
  if (unit == "h") return 60 * 60 * 1000;
  if (unit == "d") return 24 * 60 * 60 * 1000;
  return 0;
}

uint64_t size_unit(std::string_view unit) {
  std::string u;
  for (char c : unit) u += lower(c);
  if (u.empty() || u == "b") return 1;
  if (u == "k" || u == "kb" || u == "kib") return uint64_t{1} << 10;
  if (u == "m" || u == "mb" || u == "mib") return uint64_t{1} << 20;
  if (u == "g" || u == "gb" || u == "gib") return uint64_t{1} << 30;
  if (u == "t" || u == "tb" || u == "tib") return uint64_t{1} << 40;
  return 0;
}

// Timeouts end up added to clock readings in nanoseconds; a year keeps far from int64 overflow.
constexpr uint64_t kMaxDurationMs = uint64_t{365} * 24 * 60 * 60 * 1000;

// "1.5" for 1500 over 1000: the quotient with the remainder as trailing decimals.
std::string decimal_text(uint64_t value, uint64_t unit) {
  std::string out = std::to_string(value / unit);
  uint64_t rest = value % unit;
  if (rest == 0) return out;
  out += '.';
  while (rest != 0) {
    rest *= 10;
    out += static_cast<char>('0' + rest / unit);
    rest %= unit;
  }
  return out;
}

bool has_dotdot(std::string_view path) {
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(pos, end - pos) == "..") return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

std::string SourcePos::str() const {
  if (line <= 0) return file;
  std::string where = fmt::format("{}:{}", line, column);
  return file.empty() ? where : file + ":" + where;
}

std::vector<std::string> names_of(const std::vector<Named>& named) {
  std::vector<std::string> out;
  out.reserve(named.size());
  for (const Named& n : named) out.push_back(n.name);
  return out;
}

SourcePos JobSpec::where(const std::string& key) const {
  auto it = key_pos.find(key);
  return it == key_pos.end() ? pos : it->second;
}

Result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto invalid = [&] {
    return Error::msg("invalid duration \"{}\": expected a number and a unit (ms, s, m, h) like "
                      "\"90s\" or \"10m\"", text);
  };
  if (!text.empty() && text[0] == '-') {
    return Error::msg("invalid duration \"{}\": must be greater than 0", text);
  }
  std::string_view rest = text;
  u128 total = 0;
  bool zero = true;
  if (rest.empty()) return invalid();
  while (!rest.empty()) {
    Decimal d;
    if (!read_decimal(rest, d)) return invalid();
    uint64_t unit = duration_unit(take_letters(rest));
    if (unit == 0) return invalid();
    total += scale(d, unit, /*round_half=*/true);
    zero = zero && d.zero;
    if (total > kMaxDurationMs) {
      return Error::msg("invalid duration \"{}\": too large (the maximum is {})", text,
                        format_duration(std::chrono::milliseconds(kMaxDurationMs)));
    }
  }
  if (zero) return Error::msg("invalid duration \"{}\": must be greater than 0", text);
  if (total == 0) return Error::msg("invalid duration \"{}\": must be at least 1ms", text);
  return std::chrono::milliseconds(static_cast<int64_t>(total));
}

Result<uint64_t> parse_size(std::string_view text) {
  auto invalid = [&] {
    return Error::msg("invalid size \"{}\": expected a number and a unit (B, KiB, MiB, GiB, TiB) "
                      "like \"512MiB\"", text);
  };
  std::string_view rest = text;
  Decimal d;
  if (!read_decimal(rest, d)) return invalid();
  while (!rest.empty() && rest[0] == ' ') rest.remove_prefix(1);  // "512 MiB", as we print it
  uint64_t unit = size_unit(take_letters(rest));
  if (unit == 0 || !rest.empty()) return invalid();
  if (unit == 1 && d.frac_scale != 1) return invalid();  // no fractions of a byte
  u128 bytes = scale(d, unit, /*round_half=*/false);
  if (bytes > std::numeric_limits<uint64_t>::max()) {
    return Error::msg("invalid size \"{}\": too large (the maximum is 16 EiB)", text);
  }
  return static_cast<uint64_t>(bytes);
}

Result<void> check_memory(uint64_t bytes) {
  if (bytes < kMinMemory) {
    return Error::msg("{} is below the minimum of {}", format_size(bytes), format_size(kMinMemory));
  }
  return {};
}

Result<uint64_t> parse_memory(std::string_view text) {
  uint64_t bytes = SANDRUN_TRY(parse_size(text));
  SANDRUN_TRY(check_memory(bytes));
  return bytes;
}

Result<void> check_disk(uint64_t bytes) {
  if (bytes < kMinDisk) return Error::msg("{} is below the minimum of {}", format_size(bytes), format_size(kMinDisk));
  return {};
}

Result<uint64_t> parse_disk(std::string_view text) {
  uint64_t bytes = SANDRUN_TRY(parse_size(text));
  SANDRUN_TRY(check_disk(bytes));
  return bytes;
}

Result<void> check_cpus(double cpus, std::string_view shown) {
  if (!(cpus > 0) || !std::isfinite(cpus))
    return Error::msg("invalid cpus {}: expected a number of CPUs greater than 0, like 0.5 or 2", shown);
  if (cpus < kMinCpus)
    return Error::msg("invalid cpus {}: below the minimum of {} (the kernel's smallest CPU quota, 1ms per 100ms)",
                      shown, kMinCpus);
  if (cpus > kMaxCpus) return Error::msg("invalid cpus {}: above the maximum of {}", shown, kMaxCpus);
  return {};
}

Result<void> check_pids(uint64_t pids, std::string_view shown) {
  if (pids < 1) return Error::msg("invalid pids {}: must be at least 1", shown);
  if (pids > kMaxPids)
    return Error::msg("invalid pids {}: above the kernel's maximum of {} (PID_MAX_LIMIT)", shown, kMaxPids);
  return {};
}

Result<double> parse_cpus(std::string_view text) {
  // Plain decimals only: from_chars alone would also take "inf", "nan" and "1e3".
  std::string_view rest = text;
  Decimal d;
  double value = 0;
  if (read_decimal(rest, d) && rest.empty()) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) value = 0;
  }
  SANDRUN_TRY(check_cpus(value, fmt::format("\"{}\"", text)));
  return value;
}

Result<VolumeSpec> parse_volume(std::string_view text, const std::string& base_dir) {
  std::vector<std::string_view> parts;
  for (size_t pos = 0;;) {
    size_t end = text.find(':', pos);
    parts.push_back(text.substr(pos, end == std::string_view::npos ? end : end - pos));
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty()) {
    return Error::msg("invalid volume \"{}\": expected HOST:CONTAINER[:ro|:rw]", text);
  }
  VolumeSpec v;
  if (parts.size() == 3) {
    if (parts[2] != "ro" && parts[2] != "rw") {
      return Error::msg("volume \"{}\": mode \"{}\" must be \"ro\" or \"rw\"", text, parts[2]);
    }
    v.readonly = parts[2] == "ro";
  }
  std::string_view target = parts[1];
  if (target[0] != '/') {
    return Error::msg("volume \"{}\": container path \"{}\" must be absolute", text, target);
  }
  if (has_dotdot(target)) {
    return Error::msg("volume \"{}\": container path \"{}\" must not contain \"..\"", text, target);
  }
  v.target = fs::absolute(std::string(target));
  if (v.target == "/") {
    return Error::msg("volume \"{}\": container path must not be \"/\"", text);
  }
  v.source = fs::absolute(std::string(parts[0]), base_dir);
  return v;
}

Result<void> check_env_name(std::string_view name) {
  if (name.empty()) return Error::msg("invalid variable name \"\": must not be empty");
  if (name.find('=') != std::string_view::npos) {
    return Error::msg("invalid variable name \"{}\": must not contain '='", name);
  }
  if (name.find('\0') != std::string_view::npos) {
    return Error::msg("invalid variable name \"{}\": must not contain a NUL character", terminal_safe(name));
  }
  // A newline or an escape in a name would forge lines or drive the terminal wherever it is shown.
  if (const size_t at = find_control(name); at != std::string_view::npos) {
    return Error::msg("invalid variable name \"{}\": must not contain control characters (\"{}\" at byte {})",
                      terminal_safe(name), terminal_safe(name.substr(at, 1)), at);
  }
  return {};
}

Result<std::pair<std::string, std::string>> parse_env(std::string_view text) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return Error::msg("invalid environment variable \"{}\": expected NAME=value", text);
  }
  std::string_view name = text.substr(0, eq);
  std::string_view value = text.substr(eq + 1);
  SANDRUN_TRY(check_env_name(name));
  if (value.find('\0') != std::string_view::npos) {
    return Error::msg("invalid environment variable \"{}\": must not contain a NUL character", name);
  }
  return std::pair<std::string, std::string>(name, value);
}

Result<Network> parse_network(std::string_view text) {
  if (text == "none") return Network::none;
  if (text == "host") return Network::host;
  if (text == "private") return Network::private_;
  return Error::msg("invalid network \"{}\": expected \"none\", \"private\" or \"host\"", text);
}

Result<PullPolicy> parse_pull_policy(std::string_view text) {
  if (text == "never") return PullPolicy::never;
  if (text == "missing") return PullPolicy::missing;
  if (text == "always") return PullPolicy::always;
  return Error::msg("invalid pull policy \"{}\": expected \"never\", \"missing\" or \"always\"", text);
}

Result<void> check_job_name(std::string_view name) {
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
  };
  bool ok = !name.empty() && name.size() <= 63 && word(name[0]);
  for (size_t i = 1; ok && i < name.size(); ++i) {
    ok = word(name[i]) || name[i] == '.' || name[i] == '-';
  }
  if (!ok) {
    return Error::msg("invalid job name \"{}\": use letters, digits, '_', '-' and '.' (starting "
                      "with a letter, digit or '_'), at most 63 characters", name);
  }
  return {};
}

std::string format_duration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  // The magnitude as unsigned: -INT64_MIN does not fit an int64_t.
  uint64_t total = ms < 0 ? uint64_t{0} - static_cast<uint64_t>(ms) : static_cast<uint64_t>(ms);
  std::string sign = ms < 0 ? "-" : "";
  if (total == 0) return "0s";
  if (total < 1000) return fmt::format("{}{}ms", sign, total);
  uint64_t hours = total / 3'600'000;
  uint64_t minutes = total / 60'000 % 60;
  uint64_t seconds_ms = total % 60'000;  // seconds with their milliseconds
  std::string out = sign;
  if (hours) out += fmt::format("{}h", hours);
  if (minutes) out += fmt::format("{}m", minutes);
  if (seconds_ms) out += decimal_text(seconds_ms, 1000) + "s";
  return out;
}

std::string format_size(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  size_t i = 0;
  while (i + 1 < std::size(kUnits) && bytes >= (uint64_t{1} << (10 * (i + 1)))) ++i;
  uint64_t unit = uint64_t{1} << (10 * i);
  if (bytes % unit == 0) return fmt::format("{} {}", bytes / unit, kUnits[i]);
  double value = static_cast<double>(bytes) / static_cast<double>(unit);
  // 1023.96 KiB would print as "1024.0 KiB": show it in the next unit instead.
  if (value >= 1023.95 && i + 1 < std::size(kUnits)) return fmt::format("1.0 {}", kUnits[i + 1]);
  return fmt::format("{:.1f} {}", value, kUnits[i]);
}

Result<void> check_user(std::string_view user) {
  size_t colon = user.find(':');
  bool ok = !user.empty() && user.find_first_of(" \t\r\n") == std::string_view::npos && colon != 0 &&
            colon != user.size() - 1 &&
            (colon == std::string_view::npos || user.find(':', colon + 1) == std::string_view::npos);
  if (!ok) return Error::msg("invalid user {:?}: expected USER[:GROUP] like \"1000:1000\" or \"nobody\"", user);
  return {};
}

namespace {

// A run of decimal digits at the front of `text`, saturated at 2^64-1: false if there is none.
bool read_count(std::string_view& text, uint64_t& out) {
  size_t i = 0;
  out = 0;
  for (; i < text.size() && is_digit(text[i]); ++i) {
    unsigned digit = static_cast<unsigned>(text[i] - '0');
    out = out > (std::numeric_limits<uint64_t>::max() - digit) / 10 ? std::numeric_limits<uint64_t>::max()
                                                                       : out * 10 + digit;
  }
  text.remove_prefix(i);
  return i > 0;
}

}  // namespace

Result<std::vector<unsigned>> parse_cpuset(std::string_view text) {
  auto invalid = [&] {
    return Error::msg("invalid cpuset \"{}\": expected CPU numbers and ranges like \"0-3\" or "
                      "\"0,2,4-7\"", text);
  };
  std::vector<bool> cpus(kMaxCpus);
  std::string_view rest = text;
  // Reads one CPU number; a too large one is reported as written (it may not fit 64 bits).
  auto cpu = [&](uint64_t& out) -> Result<bool> {
    std::string_view digits = rest;
    if (!read_count(rest, out)) return false;
    digits = digits.substr(0, digits.size() - rest.size());
    if (out >= kMaxCpus) {
      return Error::msg("invalid cpuset \"{}\": CPU {} is above the maximum of {}", text, digits,
                        kMaxCpus - 1);
    }
    return true;
  };
  while (true) {
    uint64_t first = 0, last = 0;
    if (!SANDRUN_TRY(cpu(first))) return invalid();
    last = first;
    if (!rest.empty() && rest[0] == '-') {
      rest.remove_prefix(1);
      if (!SANDRUN_TRY(cpu(last))) return invalid();
      if (last < first) {
        return Error::msg("invalid cpuset \"{}\": range {}-{} ends before it starts", text, first, last);
      }
    }
    for (uint64_t c = first; c <= last; ++c) cpus[c] = true;
    if (rest.empty()) break;
    if (rest[0] != ',') return invalid();
    rest.remove_prefix(1);
  }
  std::vector<unsigned> out;
  for (unsigned c = 0; c < kMaxCpus; ++c) {
    if (cpus[c]) out.push_back(c);
  }
  return out;
}

Result<void> check_nofile(uint64_t soft, uint64_t hard, std::string_view shown) {
  if (soft < 1 || hard < 1) return Error::msg("invalid nofile {}: must be at least 1", shown);
  if (soft > kMaxNofile || hard > kMaxNofile) {
    return Error::msg("invalid nofile {}: too large (the maximum is {})", shown, kMaxNofile);
  }
  if (soft > hard) {
    return Error::msg("invalid nofile {}: the soft limit {} is above the hard limit {}", shown, soft, hard);
  }
  return {};
}

Result<std::pair<uint64_t, uint64_t>> parse_nofile(std::string_view text) {
  std::string_view rest = text;
  uint64_t soft = 0, hard = 0;
  bool ok = read_count(rest, soft);
  hard = soft;
  if (ok && !rest.empty() && rest[0] == ':') {
    rest.remove_prefix(1);
    ok = read_count(rest, hard);
  }
  if (!ok || !rest.empty()) {
    return Error::msg("invalid nofile \"{}\": expected SOFT[:HARD] numbers of open files, like "
                      "\"4096\" or \"1024:4096\"", text);
  }
  SANDRUN_TRY(check_nofile(soft, hard, fmt::format("\"{}\"", text)));
  return std::pair(soft, hard);
}

Result<std::string> parse_seccomp(std::string_view text, const std::string& base_dir) {
  if (text == "default" || text == "unconfined") return std::string(text);
  if (text.empty()) {
    return Error::msg("invalid seccomp profile \"\": expected \"default\", \"unconfined\" or the "
                      "path of a profile file");
  }
  return fs::absolute(std::string(text), base_dir);
}

Result<void> check_capability(std::string_view name) {
  if (name.empty()) {
    return Error::msg("invalid capability \"\": expected a name like \"NET_ADMIN\" or \"ALL\"");
  }
  return {};
}

Result<bool> parse_bool(std::string_view text) {
  if (text == "true") return true;
  if (text == "false") return false;
  return Error::msg("invalid boolean \"{}\": expected true or false", text);
}

}  // namespace sandrun::config
