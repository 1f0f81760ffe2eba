// SandboxSpec: what one container resolved to (absolute paths, layers, argv), ready to start.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace sandrun::sandbox {

struct Bind {
  std::string source;  // absolute host path (a directory or a file)
  std::string target;  // absolute container path
  bool readonly = false;
};

struct SandboxSpec {
  std::string name;                     // for messages: the job's name
  std::string hostname;                 // set in the container's UTS namespace
  std::vector<std::string> lower_dirs;  // image layers, top-most first (overlay lowerdir order)
  std::string upper_dir;                // private writable layer (on the host)
  std::string work_dir;                 // overlay's work dir, same filesystem as upper_dir
  std::string root_dir;                 // an empty host directory the root is mounted on
  std::vector<Bind> binds;
  std::vector<std::string> argv;        // the command; argv[0] is looked up in the container's PATH
  std::vector<std::string> env;         // "NAME=value", complete (PATH included)
  std::string workdir = "/";            // absolute container path, created when missing
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;            // supplementary groups
  bool new_net = true;                  // own network namespace with only `lo` (up)
  bool init = true;                     // sandrun-init runs as PID 1 and starts argv
};

}  // namespace sandrun::sandbox
