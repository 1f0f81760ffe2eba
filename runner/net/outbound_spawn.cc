// spawn_helper: sys::spawn with the options every network-stack helper gets.
#include "runner/net/outbound_spawn.h"

namespace sandrun::runner {

Result<sys::Child> spawn_helper(const std::string& path, const std::vector<std::string>& args, int out_fd,
                                const std::vector<std::pair<int, int>>& keep) {
  sys::SpawnOptions o;
  o.path = path;
  o.args = args;  // the environment: only a PATH (no token or proxy of ours)
  o.stdout_fd = out_fd;
  o.stderr_fd = out_fd;
  o.keep = keep;
  o.own_process_group = true;
  return sys::spawn(o);
}

}  // namespace sandrun::runner
