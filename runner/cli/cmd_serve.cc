// `sandrun serve`: the Engine API daemon (runner/api/daemon.h) from the command line.
#include "runner/api/daemon.h"
#include "runner/cli/commands.h"
#include "runner/cli/common.h"
#include "runner/report/output.h"

namespace sandrun::runner {

int cmd_serve(const GlobalOptions& g, const ServeArgs& a) {
  auto run = [&]() -> Result<void> {
    SANDRUN_TRY(check_privileges());
    config::HostConfig host = SANDRUN_TRY(host_config(g.config));
    const std::string root = resolve_root(g.root);
    cache::Store store = SANDRUN_TRY(open_store(root, host));
    api::PullDefaults pull{g.insecure_registries, g.auth_file, g.registry_ca, g.platform};
    api::ServeOptions options{a.socket, a.group, root};
    options.host = host;
    options.pull = std::move(pull);
    options.network_pool = a.network_pool;
    options.network_size = a.network_prefix;
    options.max_running = a.jobs;
    options.live_restore = a.live_restore;
    return api::serve(options, std::move(store));
  };
  if (auto r = run(); !r) {
    print_error(r.error());
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace sandrun::runner
