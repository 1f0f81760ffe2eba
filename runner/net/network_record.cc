// Network records as JSON, and the ids and times in them.
#include "runner/net/network_record.h"

#include <signal.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace sandrun::runner {

using nlohmann::json;

std::string record_to_json(const NetworkRecord& r) {
  json j = {{"Id", r.id},
            {"Name", r.name},
            {"Created", r.created},
            {"Driver", "bridge"},
            {"Subnet", r.subnet.str()},
            {"Gateway", r.gateway.str()},
            {"Internal", r.internal},
            {"Labels", r.labels},
            {"Options", r.options}};
  return j.dump(2) + "\n";
}

Result<NetworkRecord> record_from_json(std::string_view text, const std::string& path) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Error::msg("{}: not a JSON object", path);
  NetworkRecord r;
  try {
    r.id = j.at("Id").get<std::string>();
    r.name = j.at("Name").get<std::string>();
    r.created = j.value("Created", std::string());
    r.internal = j.value("Internal", false);
    if (j.contains("Labels")) r.labels = j.at("Labels").get<std::map<std::string, std::string>>();
    if (j.contains("Options")) r.options = j.at("Options").get<std::map<std::string, std::string>>();
    r.subnet = SANDRUN_TRY(std::move(Subnet::parse(j.at("Subnet").get<std::string>())).wrap(path));
    auto gateway = Ipv4::parse(j.at("Gateway").get<std::string>());
    if (!gateway || !r.subnet.contains(*gateway)) return Error::msg("{}: bad Gateway", path);
    r.gateway = *gateway;
  } catch (const json::exception& e) {
    return Error::msg("{}: {}", path, e.what());
  }
  if (r.id.size() != 64 || r.id.find_first_not_of("0123456789abcdef") != std::string::npos)
    return Error::msg("{}: bad Id", path);
  if (!valid_network_name(r.name)) return Error::msg("{}: bad Name", path);
  return r;
}

std::string random_hex_id() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  std::string out;
  for (unsigned char b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

std::string rfc3339_now() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

size_t sweep_record_temp_files(const std::string& dir) {
  size_t removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const size_t at = name.find(".json.tmp.");
    if (at == std::string::npos) continue;
    unsigned long pid = 0;
    if (std::sscanf(name.c_str() + at + 10, "%lu", &pid) != 1) continue;
    if (static_cast<pid_t>(pid) != ::getpid() && ::kill(static_cast<pid_t>(pid), 0) == 0) continue;  // being written
    if (::unlink(entry.path().c_str()) == 0) ++removed;
  }
  return removed;
}

}  // namespace sandrun::runner
