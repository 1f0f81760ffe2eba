// Docker's JSON views of a container record: inspect, the list's entries, and the words they
// use (times in RFC 3339, "Up 3 seconds", "Exited (0) 2 seconds ago"), plus the logs' framing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "runner/engine/container_log.h"
#include "runner/engine/container_record.h"

namespace sandrun::runner::api {

// "2026-12-05T13:10:00.123456789Z"; "0001-01-01T00:00:00Z" for 0 (Go's zero time).
std::string rfc3339_nano(int64_t ns);
// Docker's units.HumanDuration: "Less than a second", "3 seconds", "About a minute", ...
std::string human_duration(int64_t ns);
// The list's Status: "Created", "Up 3 seconds", "Exited (0) 2 seconds ago".
std::string status_text(const ContainerRecord& r, int64_t now, const HealthState* health = nullptr);

// GET /containers/{id}/json.
std::string inspect_json(const ContainerRecord& r, const HealthState* health = nullptr,
                         const std::vector<std::string>& exec_ids = {});
// One entry of GET /containers/json.
std::string list_entry_json(const ContainerRecord& r, int64_t now, const HealthState* health = nullptr);

// A record of the logs as Docker sends it without a TTY: an 8-byte header (stream, 0, 0, 0,
// size big-endian) and the bytes, with the time first when `timestamps`.
std::string frame_record(const LogRecord& r, bool timestamps, bool raw = false);
std::string frame_bytes(int stream, std::string_view data);
// The records of the log in `dir` that `q` takes, framed (blocking: read on the threadpool).
Result<std::string> framed_log(const std::string& dir, const LogQuery& q, bool timestamps, bool raw = false);

}  // namespace sandrun::runner::api
