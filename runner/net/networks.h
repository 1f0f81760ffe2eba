// Networks: the user networks of one daemon (`docker network create`), Docker-agnostic. Each
// is a NetworkNamespace (network_ns.h: a namespace sandrun holds, a bridge, a veth pair per
// container) plus its record, kept in ROOT/networks/<id>.json so that the daemon makes its
// namespace again when it starts. Containers on one network reach each other by address and,
// through the /etc/hosts the registry writes for each of them, by name and alias; nothing else
// (no route out of a network, nothing on the host changes). See docs/architecture.md.
//
// Every method blocks (netlink, files) and is meant for a threadpool thread; they may be called
// from several at once (one mutex). Refusals (unknown network, duplicate name, ...) set `why`.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runner/net/ipv4.h"
#include "runner/net/network_ns.h"
#include "sandbox/sys/result.h"
#include "sandbox/sys/unique_fd.h"

namespace sandrun::runner {

// Why a request was refused; `none` when it failed for another reason (sandrun's own failure).
enum class Refusal { none, not_found, conflict, in_use, invalid };

// What a network is: its persisted record.
struct NetworkRecord {
  std::string id;       // 64 hex digits
  std::string name;
  std::string created;  // RFC 3339 with nanoseconds, UTC
  Subnet subnet;
  Ipv4 gateway;
  bool internal = false;  // as asked; no sandrun network has a way out (docs/security.md)
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> options;  // driver options: kept and shown, not applied
};

struct NetworkSpec {
  std::string name;
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> options;
  std::optional<std::string> subnet;   // "10.89.3.0/24"; unset: the next free one of the pool
  std::optional<std::string> gateway;  // inside the subnet; unset: its first address
  bool internal = false;
};

// Writes one file of a container's /etc, `name` ("hosts"), whole: called on attach and detach of
// the container and of every container sharing a network with it, on the thread that made the
// change, with the registry's lock held (it must not call back into Networks). A file that is
// bind-mounted or already open in the container must be rewritten in place (truncate + write),
// not replaced by a rename.
using EtcWriter = std::function<void(const std::string& name, const std::string& content)>;

// A container asking to join a network.
struct Attachment {
  std::string container_id;  // the key of its endpoints (any unique string; 64 hex for Docker's)
  std::string name;          // resolvable by the others (Docker's container name, without '/')
  std::string hostname;      // its own name for itself (its own line of /etc/hosts); "" = none
  std::vector<std::string> aliases;  // more names the others resolve to it on this network
  int netns_fd = -1;         // the container's network namespace (only used during attach)
  std::optional<std::string> address;  // a fixed IPv4 address in the subnet; unset: the next free
  EtcWriter write_etc;       // may be empty
};

struct EndpointInfo {
  std::string endpoint_id;  // 64 hex digits
  std::string container_id;
  std::string name;
  std::vector<std::string> aliases;
  Ipv4 address;
  std::string mac;
  std::string ifname;  // its interface in the container's namespace: eth0, eth1, ...
};

struct NetworkInfo {
  NetworkRecord record;
  std::vector<EndpointInfo> endpoints;
};

// Where a published port of a container reaches it: the network namespace holding its endpoint
// (a dup, the caller's to close) and its address there (runner/net/port_proxy.h, inner_host).
struct PublishTarget {
  UniqueFd netns;
  Ipv4 address;
};

class Networks {
 public:
  struct Options {
    std::string root;  // the daemon's --root: records in ROOT/networks
    Subnet pool{Ipv4{0x0a590000}, 16};  // 10.89.0.0/16: where subnets are taken from
    int size = 24;                      // the prefix length of each subnet taken from the pool
  };
  static constexpr const char* kDefaultPool = "10.89.0.0/16";

  // Reads every record of ROOT/networks and makes each network's namespace again. A record
  // that does not parse is reported (log) and left alone; leftover temp files of interrupted
  // writes are removed.
  static Result<std::unique_ptr<Networks>> open(Options options);
  // Destroying the registry closes every namespace: the kernel deletes their links and every
  // container's end of them. The records stay.
  ~Networks();
  Networks(const Networks&) = delete;
  Networks& operator=(const Networks&) = delete;

  const Options& options() const { return options_; }

  // Creates a network: refused (conflict) when the name is taken, (invalid) for a bad name,
  // subnet or gateway, a subnet overlapping another network's, or a full pool.
  Result<NetworkInfo> create(const NetworkSpec& spec, Refusal* why = nullptr);
  // By full id, name, or unique id prefix (not_found; invalid when the prefix is ambiguous).
  Result<NetworkInfo> inspect(const std::string& ref, Refusal* why = nullptr) const;
  std::vector<NetworkInfo> list() const;
  // Deletes a network with no container attached (in_use otherwise): its record, its namespace.
  Result<NetworkRecord> remove(const std::string& ref, Refusal* why = nullptr);
  // Deletes every network without containers that `select` takes; returns their records.
  std::vector<NetworkRecord> prune(const std::function<bool(const NetworkRecord&)>& select);

  // Connects a container's network namespace to a network (see Attachment): a veth pair, its
  // address, its default route when it has none, and the /etc/hosts of it and of every
  // container sharing a network with it rewritten. Refused: unknown network, the container
  // already on it (conflict), a bad alias or address, an address taken, a full subnet.
  Result<EndpointInfo> attach(const std::string& network, const Attachment& a, Refusal* why = nullptr);
  // Disconnects it (its veth pair deleted; hosts files rewritten). not_found when it is not on
  // that network.
  Result<void> detach(const std::string& network, const std::string& container_id, Refusal* why = nullptr);
  // Disconnects it from every network (a container that stops); nothing when it is on none.
  void detach_all(const std::string& container_id);

  // The /etc/hosts of a container: localhost, its own names, and every container sharing a
  // network with it by name, aliases and short id (what its EtcWriter last got or gets next).
  std::string hosts_file(const std::string& container_id) const;
  // Where its published ports reach it (its first network's endpoint); not_found when it is on
  // no network.
  Result<PublishTarget> publish_target(const std::string& container_id, Refusal* why = nullptr) const;

  struct Net;

 private:
  explicit Networks(Options options);
  Net* find(const std::string& ref, Refusal* why, Error* error) const;
  Result<void> detach_locked(Net& n, const std::string& container_id);
  // Writes the hosts file of every container on `n`, and of `gone_id` (which just left it).
  void rewrite_hosts(const Net& n, const std::string& gone_id = {}, const EtcWriter& gone_writer = {});
  std::string hosts_locked(const std::string& container_id) const;

  Options options_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Net>> nets_;  // in creation order
};

// A name Docker would accept for a container, alias or network: [A-Za-z0-9][A-Za-z0-9_.-]*,
// at most 253 characters (it goes into /etc/hosts as it is).
bool valid_network_name(const std::string& name);

}  // namespace sandrun::runner
