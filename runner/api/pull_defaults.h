// How the daemon pulls: `sandrun serve`'s registry flags, for POST /images/create.
#pragma once

#include <string>
#include <vector>

namespace sandrun::runner::api {

struct PullDefaults {
  std::vector<std::string> insecure_hosts;  // --insecure-registry, besides 127.0.0.0/8
  std::string auth_file;                    // --auth-file
  std::string ca_file;                      // --registry-ca
  std::string platform;                     // --platform
};

}  // namespace sandrun::runner::api
