// What the commands share before anything runs: the state dir, the privilege check, the
// pull options of the command line.
#pragma once

#include <string>
#include <vector>

#include "cache/store.h"
#include "config/host_config.h"
#include "sandbox/sys/result.h"

namespace sandrun::runner {

// Fails unless this process may create containers (root, for now).
Result<void> check_privileges();

// The state dir: --root, or the default one.
std::string resolve_root(const std::string& flag);

// The operator's host file: --config FILE (which must exist), else /etc/sandrun/sandrun.toml
// when it exists, else none (no policy, no host defaults). Errors name file:line.
Result<config::HostConfig> host_config(const std::string& flag);

// The image store under `root`, with the caps of the host file's [policy] (image_limits).
Result<cache::Store> open_store(const std::string& root, const config::HostConfig& host, bool tidy = true);
// The same for the image commands: --root and the host file of the global options.
struct GlobalOptions;
Result<cache::Store> open_image_store(const GlobalOptions& g);

// The pull options of the command line.
cache::PullOptions pull_options(const std::vector<std::string>& insecure, const std::string& auth_file,
                                const std::string& ca_file, const std::string& platform);

}  // namespace sandrun::runner
