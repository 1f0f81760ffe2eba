// `sandrun serve`: the daemon that owns one --root and answers Docker's Engine API on a Unix
// socket until SIGTERM or SIGINT.
#pragma once

#include <string>

#include "cache/store.h"
#include "runner/api/pull_defaults.h"
#include "config/host_config.h"
#include "sandbox/sys/result.h"

namespace sandrun::runner::api {

struct ServeOptions {
  std::string socket;  // "" = default_socket_path()
  std::string group;   // "" = root only (0600)
  std::string root;    // the state dir, absolute
  PullDefaults pull;   // --insecure-registry, --auth-file, --registry-ca, --platform
  std::string network_pool;  // where networks take their subnets ("" = Networks::kDefaultPool)
  int network_size = 24;     // the prefix length of each
  config::HostConfig host;  // the operator's host file: its policy governs every request
  size_t max_running = 0;   // -j N: containers running at once (0: no limit); more wait their turn
  bool live_restore = false;  // --live-restore (ContainerRegistry::Options::live_restore)
};

// Runs the daemon; returns after a clean stop (socket removed, connections closed). Errors
// before it listens: the root held by another daemon, the socket taken, a missing group.
Result<void> serve(const ServeOptions& options, cache::Store store);

}  // namespace sandrun::runner::api
