// Docker's network JSON: create requests in, networks out.
#include "runner/api/network_json.h"

#include <fmt/format.h>

#include "cache/digest.h"

namespace sandrun::runner::api {
namespace {

using nlohmann::json;

// The string map at j[key] ({} when absent or null); an error names `key`.
Result<std::map<std::string, std::string>> string_map(const json& j, const char* key) {
  std::map<std::string, std::string> out;
  if (!j.contains(key) || j[key].is_null()) return out;
  if (!j[key].is_object()) return Error::msg("{}: expected an object of strings", key);
  for (const auto& [k, v] : j[key].items()) {
    if (!v.is_string()) return Error::msg("{}.{}: expected a string", key, k);
    out[k] = v.get<std::string>();
  }
  return out;
}

Result<bool> boolean(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return false;
  if (!j[key].is_boolean()) return Error::msg("{}: expected a boolean", key);
  return j[key].get<bool>();
}

Result<std::string> string_field(const json& j, const char* key, std::string_view where = "") {
  if (!j.contains(key) || j[key].is_null()) return std::string();
  if (!j[key].is_string()) return Error::msg("{}{}: expected a string", where, key);
  return j[key].get<std::string>();
}

// IPAM: the default driver, at most one IPv4 config with Subnet and Gateway.
Result<void> parse_ipam(const json& j, NetworkSpec& spec) {
  if (!j.contains("IPAM") || j["IPAM"].is_null()) return {};
  const json& ipam = j["IPAM"];
  if (!ipam.is_object()) return Error::msg("IPAM: expected an object");
  const std::string driver = SANDRUN_TRY(string_field(ipam, "Driver", "IPAM."));
  if (!driver.empty() && driver != "default")
    return Error::msg("IPAM.Driver: sandrun has only the default IPAM driver, not \"{}\"", driver);
  if (ipam.contains("Options") && ipam["Options"].is_object() && !ipam["Options"].empty())
    return Error::msg("IPAM.Options: sandrun's IPAM driver takes no options");
  if (!ipam.contains("Config") || ipam["Config"].is_null()) return {};
  const json& config = ipam["Config"];
  if (!config.is_array()) return Error::msg("IPAM.Config: expected an array");
  if (config.size() > 1) return Error::msg("IPAM.Config: sandrun's networks have one IPv4 subnet, not {}", config.size());
  for (const json& c : config) {
    if (!c.is_object()) return Error::msg("IPAM.Config[0]: expected an object");
    const std::string subnet = SANDRUN_TRY(string_field(c, "Subnet", "IPAM.Config[0]."));
    const std::string gateway = SANDRUN_TRY(string_field(c, "Gateway", "IPAM.Config[0]."));
    const std::string range = SANDRUN_TRY(string_field(c, "IPRange", "IPAM.Config[0]."));
    if (!range.empty()) return Error::msg("IPAM.Config[0].IPRange: not supported by sandrun (addresses come from the whole subnet)");
    if (c.contains("AuxiliaryAddresses") && c["AuxiliaryAddresses"].is_object() && !c["AuxiliaryAddresses"].empty())
      return Error::msg("IPAM.Config[0].AuxiliaryAddresses: not supported by sandrun");
    if (subnet.empty() && !gateway.empty()) return Error::msg("IPAM.Config[0].Gateway: a gateway needs a Subnet");
    if (!subnet.empty()) spec.subnet = subnet;
    if (!gateway.empty()) spec.gateway = gateway;
  }
  return {};
}

Result<void> refuse_unsupported(const json& j) {
  const std::string driver = SANDRUN_TRY(string_field(j, "Driver"));
  if (!driver.empty() && driver != "bridge")
    return Error::msg("Driver: sandrun's networks use the bridge driver only, not \"{}\"", driver);
  const std::string scope = SANDRUN_TRY(string_field(j, "Scope"));
  if (!scope.empty() && scope != "local") return Error::msg("Scope: sandrun's networks are local, not \"{}\"", scope);
  if (SANDRUN_TRY(boolean(j, "EnableIPv6"))) return Error::msg("EnableIPv6: sandrun's networks are IPv4 only");
  if (SANDRUN_TRY(boolean(j, "Ingress"))) return Error::msg("Ingress: swarm's ingress network is not supported by sandrun");
  if (SANDRUN_TRY(boolean(j, "ConfigOnly"))) return Error::msg("ConfigOnly: configuration-only networks are not supported by sandrun");
  if (j.contains("ConfigFrom") && j["ConfigFrom"].is_object() && !j["ConfigFrom"].value("Network", "").empty())
    return Error::msg("ConfigFrom: configuration-only networks are not supported by sandrun");
  return {};
}

std::string predefined_id(const std::string& engine_id, const std::string& name) {
  return std::string(cache::digest_hex(cache::sha256_of("sandrun predefined network " + engine_id + " " + name)));
}

}  // namespace

Result<NetworkSpec> parse_network_create(std::string_view body, std::vector<std::string>& warnings) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Error::msg("invalid JSON: expected a network create request object");
  NetworkSpec spec;
  spec.name = SANDRUN_TRY(string_field(j, "Name"));
  if (spec.name.empty()) return Error::msg("Name: a network needs a name");
  SANDRUN_TRY(refuse_unsupported(j));
  spec.internal = SANDRUN_TRY(boolean(j, "Internal"));
  (void)SANDRUN_TRY(boolean(j, "Attachable"));     // any container may attach: nothing to do
  (void)SANDRUN_TRY(boolean(j, "CheckDuplicate"));  // sandrun always refuses a duplicate name
  spec.labels = SANDRUN_TRY(string_map(j, "Labels"));
  spec.options = SANDRUN_TRY(string_map(j, "Options"));
  if (!spec.options.empty()) {
    std::string keys;
    for (const auto& [k, v] : spec.options) keys += (keys.empty() ? "" : ", ") + k;
    warnings.push_back("sandrun keeps but does not apply the driver options " + keys);
  }
  SANDRUN_TRY(parse_ipam(j, spec));
  return spec;
}

std::vector<PredefinedNetwork> predefined_networks(const std::string& engine_id) {
  std::vector<PredefinedNetwork> out;
  for (auto [name, driver] : {std::pair{"bridge", "bridge"}, std::pair{"host", "host"}, std::pair{"none", "null"}})
    out.push_back(PredefinedNetwork{name, driver, predefined_id(engine_id, name)});
  return out;
}

bool is_predefined_name(std::string_view name) { return name == "bridge" || name == "host" || name == "none"; }

json network_json(const NetworkInfo& n, bool containers) {
  const NetworkRecord& r = n.record;
  json out = {{"Name", r.name},
              {"Id", r.id},
              {"Created", r.created},
              {"Scope", "local"},
              {"Driver", "bridge"},
              {"EnableIPv6", false},
              {"IPAM",
               {{"Driver", "default"},
                {"Options", json::object()},
                {"Config", json::array({{{"Subnet", r.subnet.str()}, {"Gateway", r.gateway.str()}}})}}},
              {"Internal", r.internal},
              {"Attachable", false},
              {"Ingress", false},
              {"ConfigFrom", {{"Network", ""}}},
              {"ConfigOnly", false},
              {"Containers", json::object()},
              {"Options", r.options},
              {"Labels", r.labels}};
  if (containers)
    for (const EndpointInfo& e : n.endpoints)
      out["Containers"][e.container_id] = {{"Name", e.name},
                                           {"EndpointID", e.endpoint_id},
                                           {"MacAddress", e.mac},
                                           {"IPv4Address", fmt::format("{}/{}", e.address.str(), r.subnet.prefix)},
                                           {"IPv6Address", ""}};
  return out;
}

json predefined_json(const PredefinedNetwork& n) {
  return {{"Name", n.name},
          {"Id", n.id},
          {"Created", "0001-01-01T00:00:00Z"},
          {"Scope", "local"},
          {"Driver", n.driver},
          {"EnableIPv6", false},
          {"IPAM", {{"Driver", "default"}, {"Options", nullptr}, {"Config", json::array()}}},
          {"Internal", false},
          {"Attachable", false},
          {"Ingress", false},
          {"ConfigFrom", {{"Network", ""}}},
          {"ConfigOnly", false},
          {"Containers", json::object()},
          {"Options", json::object()},
          {"Labels", json::object()}};
}

}  // namespace sandrun::runner::api
