// The wiring part of POST /containers/create: named and anonymous volumes (Binds, Mounts of
// type volume, Config.Volumes), tmpfs mounts (Mounts of type tmpfs, HostConfig.Tmpfs), user
// networks (NetworkMode, NetworkingConfig.EndpointsConfig) and ExtraHosts, into the engine's
// WiringSpec (runner/engine/container_wiring.h). docs/api.md lists what is honoured.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "runner/engine/container_wiring.h"

namespace sandrun::runner::api {

// Reads `cfg` (the body) and `hc` (its HostConfig) into `w`; adds Docker's inspect entries of
// tmpfs Mounts to `mounts` (volumes are shown from the record, once their names are known).
// A host-path bind stays the caller's (container_create.cc). The 400's message, or nullopt.
std::optional<std::string> read_wiring(const nlohmann::json& cfg, const nlohmann::json& hc, WiringSpec& w,
                                       nlohmann::json& mounts);

}  // namespace sandrun::runner::api
