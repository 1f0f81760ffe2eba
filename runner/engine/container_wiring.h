// ContainerWiring: what a daemon container is wired to beyond its own sandbox: named and
// anonymous volumes (volumes.h), tmpfs mounts, and the user networks it joins (networks.h),
// with the extra lines of its /etc/hosts. Docker-agnostic: the Engine API translates Docker's
// Binds, Mounts, Tmpfs, NetworkMode, EndpointsConfig and ExtraHosts into a WiringSpec; the
// container registry (container_registry.h) calls the hooks below at create, start, exit and
// removal. See docs/architecture.md ("Volumes and networks of daemon containers").
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "config/job_file.h"
#include "runner/net/networks.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

class VolumeStore;
struct ContainerRecord;

// A volume mounted into the container: a named one (made when missing, as Docker does) or an
// anonymous one (name "" until create gives it a random 64-hex name; removed with the
// container when its removal asks for its volumes, or when it removes itself).
struct VolumeMount {
  std::string name;
  std::string target;
  bool readonly = false;
  bool anonymous = false;
  std::map<std::string, std::string> labels;  // for a volume this mount creates
  std::string mode;                           // as the client wrote it ("ro", "rw", ""), shown back
};

// A tmpfs mounted at `target` (bytes: 0 = the kernel's default, half the RAM; mode 01777 by default).
struct TmpfsMount {
  std::string target;
  uint64_t size = 0;
  uint32_t mode = 01777;
  std::string options;  // as the client wrote them, shown back
};

// A user network the container joins when it starts (by the network's id; its name for display).
struct NetworkJoin {
  std::string network_id;
  std::string network_name;
  std::vector<std::string> aliases;
  std::optional<std::string> ipv4;
};

// What a container is wired to: kept in its record.
struct WiringSpec {
  std::vector<VolumeMount> volumes;
  std::vector<TmpfsMount> tmpfs;
  std::vector<NetworkJoin> networks;
  // Extra /etc/hosts lines: {name, address}.
  std::vector<std::pair<std::string, std::string>> extra_hosts;
  bool empty() const { return volumes.empty() && tmpfs.empty() && networks.empty() && extra_hosts.empty(); }
};
nlohmann::json wiring_to_json(const WiringSpec& w);
WiringSpec wiring_from_json(const nlohmann::json& j);

// Where a running container is on one network (for inspect).
struct LiveEndpoint {
  std::string network_id;
  std::string network_name;
  EndpointInfo endpoint;
  Ipv4 gateway;
  int prefix = 0;
};

// What a start gets from its networks: the namespace it joins, its /etc/hosts, and where its
// published ports reach it.
struct WiredStart {
  UniqueFd netns;                          // the container's own network namespace (kept while it runs)
  std::string hosts;                       // its /etc/hosts ("" = the image's)
  std::optional<PublishTarget> publish;    // set when it is on a network
  std::vector<LiveEndpoint> endpoints;
};

// Why a wiring step refused (a front door's 404, 409 or 400); unset when sandrun failed.
struct WiringRefusal {
  enum class Kind { not_found, conflict, invalid };
  Kind kind = Kind::invalid;
};

class ContainerWiring {
 public:
  // `volumes` and `networks` outlive this object.
  ContainerWiring(std::shared_ptr<VolumeStore> volumes, Networks& networks);

  Networks& networks() { return networks_; }
  VolumeStore& volumes() { return *volumes_; }

  // At create, on the threadpool: makes the volumes (anonymous ones get their names), checks
  // the networks exist (recording their ids), and adds the volumes' directories to the spec's
  // binds. `uid`/`gid`: the host ids of the container's root (volumes_owner()).
  Result<void> prepare(ContainerRecord& rec, std::optional<WiringRefusal>& refusal);
  // The host ids of the container root of `spec` (a volume made by its first mount belongs to
  // them): the daemon's mapped range as root with a user namespace, else the daemon's own ids.
  static std::pair<uid_t, gid_t> volumes_owner(const config::JobSpec& spec);

  // At start, on the threadpool: a fresh network namespace attached to each of its networks
  // (detached first from any it was left on). Nothing when it joins none.
  Result<WiredStart> attach(const ContainerRecord& rec, const std::string& hostname);
  // Once it runs: its pid, through which its /etc/hosts is rewritten as others come and go
  // (on any thread); and a rewrite of its own file now (blocking).
  void running(const std::string& id, pid_t pid);
  // Once it has exited, on the threadpool: off every network.
  void stopped(const std::string& id);
  // The anonymous volumes to remove with it (blocking).
  void remove_anonymous(const WiringSpec& w);

  // Live restore: a container an earlier daemon left running, adopted now, joins its networks
  // again from the namespace it runs in (`netns_fd`, its own; its links went with that daemon's
  // network namespaces), each at the next free address unless it asked for one; its extra
  // hosts are kept and its /etc/hosts rewritten through `pid`. Blocking. The returned start's
  // netns is unset (the caller holds the container's).
  Result<WiredStart> rejoin(const ContainerRecord& rec, const std::string& hostname, int netns_fd, pid_t pid);

  // Connects a container to one more network. `netns_fd` >= 0: it runs there now (attached
  // at once), else it joins at its next start. Blocking.
  Result<LiveEndpoint> attach_one(const std::string& id, const std::string& name, const std::string& hostname,
                                  const NetworkJoin& join, int netns_fd, Refusal* why);

  // The /etc/hosts text of a container: its networks' lines, then its extra hosts.
  std::string hosts_file(const std::string& id, const WiringSpec& w) const;

 private:
  EtcWriter writer_for(const std::string& id);

  std::shared_ptr<VolumeStore> volumes_;
  Networks& networks_;
  std::mutex mu_;
  std::map<std::string, pid_t> pids_;  // running containers on a network: where to write /etc/hosts
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> extra_;  // their extra hosts
};

// "host-gateway" in ExtraHosts: the address it maps to (the network's gateway is not the host
// with sandrun: the host is not reachable, so it maps to the container's own loopback).
inline constexpr const char* kHostGatewayAddress = "127.0.0.1";

}  // namespace sandrun::runner
