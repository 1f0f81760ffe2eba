// Docker's network JSON <-> the engine's values (runner/net/networks.h).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner/net/networks.h"
#include "sandbox/sys/result.h"

namespace sandrun::runner::api {

// A network create request (POST /networks/create) as the engine takes it; `warnings` gets
// what was accepted but is not applied (driver options). An error names the field, Docker's way
// ("IPAM.Config[0].IPRange: ...").
Result<NetworkSpec> parse_network_create(std::string_view body, std::vector<std::string>& warnings);

// Docker's predefined networks: "bridge", "host", "none" (listed, inspected, never removed).
struct PredefinedNetwork {
  std::string name;
  std::string driver;  // "bridge", "host", "null"
  std::string id;      // stable for an engine: the sha256 of its engine id and the name
};
std::vector<PredefinedNetwork> predefined_networks(const std::string& engine_id);
bool is_predefined_name(std::string_view name);

// A network as GET /networks and GET /networks/{id} show it; `containers` fills Containers.
nlohmann::json network_json(const NetworkInfo& network, bool containers);
nlohmann::json predefined_json(const PredefinedNetwork& network);

}  // namespace sandrun::runner::api
