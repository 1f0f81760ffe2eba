// The system routes: _ping, version and info, answered from the engine's own host probes
// (sandbox/host_features, the cgroup backend, the image cache), taken once at start.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runner/api/http_message.h"
#include "sandbox/sys/result.h"

namespace sandrun::runner::api {

// What the daemon knows about its host and itself: probed once (blocking) before it listens.
struct HostFacts {
  std::string id;           // the engine's ID, made once and kept in ROOT/engine-id
  std::string name;         // the host name
  std::string root;         // --root: DockerRootDir
  std::string version;      // sandrun's version: Version, ServerVersion
  std::string binary;       // this executable: Runtimes
  std::string kernel;       // uname -r
  std::string arch;         // uname -m: Architecture ("x86_64")
  std::string go_arch;      // /version's Arch, in Go's words ("amd64")
  std::string os_name;      // /etc/os-release PRETTY_NAME: OperatingSystem
  std::string os_version;   // VERSION_ID: OSVersion
  std::string build_time;   // when this binary was compiled (RFC 3339)
  long ncpu = 0;            // CPUs this process may run on
  uint64_t mem_total = 0;   // bytes (/proc/meminfo MemTotal)
  int cgroup_version = 0;   // 1 or 2; 0 without usable cgroups
  std::vector<std::string> controllers;  // usable ones among memory, cpu, cpuacct, pids, cpuset
  bool swap_limit = false;  // swap is kept inside the memory limit
  bool seccomp = false;     // the kernel filters system calls (every container gets the default profile)
  bool rootless = false;    // the daemon is not root: every container in a user namespace
  std::vector<std::string> warnings;
  bool live_restore = false;  // --live-restore: info's LiveRestoreEnabled
};

// Probes the host for the daemon of `root` (creates ROOT/engine-id on first use). Blocking.
Result<HostFacts> probe_host_facts(const std::string& root);

// GET and HEAD /_ping: "OK", with Docker's headers.
Response ping_response();
// POST /build/prune (`docker system prune`, `docker builder prune`): sandrun keeps no build
// cache, so nothing is deleted and no space reclaimed.
Response build_prune_response();
// GET /version.
Response version_response(const HostFacts& facts);
// The daemon's containers, for /info.
struct ContainerCounts {
  size_t total = 0, running = 0, stopped = 0;
};
// GET /info; `images` is the number of images in the cache.
Response info_response(const HostFacts& facts, size_t images, const ContainerCounts& containers = {});

// Headers of every response, as Docker's (API-Version, Docker-Experimental, OSType).
void add_common_headers(Response& r);

}  // namespace sandrun::runner::api
