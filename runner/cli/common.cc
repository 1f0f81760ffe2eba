// What the commands share before anything runs.
#include "runner/cli/common.h"

#include <unistd.h>

#include "runner/cli/commands.h"
#include "runner/engine/policy.h"
#include "sandbox/sys/fs.h"
#include "sandbox/userns.h"

namespace sandrun::runner {

Result<void> check_privileges() {
  if (::geteuid() == 0) return {};
  // Rootless: every container gets a user namespace in which the caller is root.
  if (auto r = sandbox::userns::probe(); !r) {
    return std::move(r.error().wrap("sandrun runs rootless when not started as root, which needs "
                                    "unprivileged user namespaces"));
  }
  return {};
}

std::string resolve_root(const std::string& flag) {
  return flag.empty() ? cache::default_root() : fs::absolute(flag);
}

Result<config::HostConfig> host_config(const std::string& flag) {
  const std::string path = flag.empty() ? std::string(config::kDefaultHostConfig) : flag;
  if (flag.empty() && !fs::exists(path)) return config::HostConfig{};
  auto loaded = config::load_host_config(path);
  if (!loaded) return std::move(loaded.error().wrap(flag.empty() ? "host file" : "--config"));
  SANDRUN_TRY(check_host_config(*loaded));
  return loaded;
}

Result<cache::Store> open_store(const std::string& root, const config::HostConfig& host, bool tidy) {
  cache::Store store = SANDRUN_TRY(cache::Store::open(root, tidy));
  store.set_limits(image_limits(host));
  return store;
}

Result<cache::Store> open_image_store(const GlobalOptions& g) {
  config::HostConfig host = SANDRUN_TRY(host_config(g.config));
  return open_store(resolve_root(g.root), host);
}

cache::PullOptions pull_options(const std::vector<std::string>& insecure, const std::string& auth_file,
                                const std::string& ca_file, const std::string& platform) {
  cache::PullOptions o;
  o.insecure_hosts = insecure;
  o.auth_file = auth_file;
  o.ca_file = ca_file;
  o.platform = platform;
  return o;
}

}  // namespace sandrun::runner
