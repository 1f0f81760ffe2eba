// The record of a network on disk (ROOT/networks/<id>.json) and the values it is made of.
#pragma once

#include <string>
#include <string_view>

#include "runner/net/networks.h"
#include "sandbox/sys/result.h"

namespace sandrun::runner {

// {"Id":..,"Name":..,"Created":..,"Driver":"bridge","Subnet":..,"Gateway":..,"Internal":..,
//  "Labels":{..},"Options":{..}}
std::string record_to_json(const NetworkRecord& record);
// The record of `path` (for messages); an error names what is wrong with it.
Result<NetworkRecord> record_from_json(std::string_view text, const std::string& path);

// 64 random hex digits (a network's or an endpoint's id).
std::string random_hex_id();
// Now, as Docker writes times: "2026-12-05T13:20:01.123456789Z".
std::string rfc3339_now();

// Removes what a write of a record that never finished left in `dir` ("<id>.json.tmp.<pid>"
// whose process is gone). Returns how many.
size_t sweep_record_temp_files(const std::string& dir);

}  // namespace sandrun::runner
