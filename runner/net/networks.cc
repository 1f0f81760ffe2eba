// The registry of a daemon's networks: records, namespaces, endpoints and hosts files.
#include "runner/net/networks.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "runner/net/network_record.h"
#include "sandbox/sys/fs.h"
#include "sandbox/sys/log.h"

namespace sandrun::runner {

struct Networks::Net {
  struct Endpoint {
    EndpointInfo info;
    std::string hostname;
    std::string link;  // its end in the network's namespace
    EtcWriter write_etc;
  };
  NetworkRecord record;
  NetworkNamespace ns;
  std::vector<Endpoint> endpoints;
  unsigned next_link = 0;

  NetworkInfo info() const {
    NetworkInfo out{record, {}};
    for (const auto& e : endpoints) out.endpoints.push_back(e.info);
    return out;
  }
  Endpoint* endpoint(const std::string& container_id) {
    for (auto& e : endpoints)
      if (e.info.container_id == container_id) return &e;
    return nullptr;
  }
};

namespace {

template <typename T>
Result<T> refuse(Refusal* why, Refusal kind, Error error) {
  if (why) *why = kind;
  return error;
}

std::string records_dir(const std::string& root) { return fs::join(root, "networks"); }
std::string record_path(const std::string& root, const std::string& id) {
  return fs::join(records_dir(root), id + ".json");
}

// The subnet and gateway of a new network, from its spec or the pool.
Result<std::pair<Subnet, Ipv4>> choose_addresses(const NetworkSpec& spec, const Networks::Options& o,
                                                 const std::vector<Subnet>& used, Refusal* why) {
  Subnet subnet;
  if (spec.subnet) {
    auto parsed = Subnet::parse(*spec.subnet);
    if (!parsed) return refuse<std::pair<Subnet, Ipv4>>(why, Refusal::invalid, std::move(parsed).error());
    subnet = *parsed;
    if (subnet.prefix < kMinNetworkPrefix || subnet.prefix > kMaxNetworkPrefix)
      return refuse<std::pair<Subnet, Ipv4>>(
          why, Refusal::invalid,
          Error::msg("invalid subnet {}: sandrun's networks take a prefix length of {} to {}", subnet.str(),
                     kMinNetworkPrefix, kMaxNetworkPrefix));
    for (const Subnet& u : used)
      if (u.overlaps(subnet))
        return refuse<std::pair<Subnet, Ipv4>>(
            why, Refusal::invalid,
            Error::msg("subnet {} overlaps the subnet {} of another network", subnet.str(), u.str()));
  } else {
    auto taken = allocate_subnet(o.pool, o.size, used);
    if (!taken)
      return refuse<std::pair<Subnet, Ipv4>>(
          why, Refusal::invalid,
          Error::msg("no free /{} subnet left in the pool {} for a new network", o.size, o.pool.str())
              .hint("remove unused networks (docker network prune), or start sandrun serve with a larger "
                    "--network-pool"));
    subnet = *taken;
  }
  Ipv4 gateway = subnet.first_host();
  if (spec.gateway) {
    auto g = Ipv4::parse(*spec.gateway);
    if (!g || !subnet.contains(*g) || *g == subnet.base || *g == subnet.broadcast())
      return refuse<std::pair<Subnet, Ipv4>>(
          why, Refusal::invalid,
          Error::msg("invalid gateway {}: not a host address of the subnet {}", *spec.gateway, subnet.str()));
    gateway = *g;
  }
  return std::pair{subnet, gateway};
}

const char* const kHostsHead =
    "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

}  // namespace

bool valid_network_name(const std::string& name) {
  if (name.empty() || name.size() > 253 || !std::isalnum(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

Result<std::unique_ptr<Networks>> Networks::open(Options options) {
  std::unique_ptr<Networks> self(new Networks(std::move(options)));
  const std::string dir = records_dir(self->options_.root);
  SANDRUN_TRY(fs::mkdirs(dir, 0700));
  sweep_record_temp_files(dir);
  std::vector<NetworkRecord> records;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string path = entry.path().string();
    if (!path.ends_with(".json")) continue;
    auto text = fs::read_file(path);
    auto record = text ? record_from_json(*text, path) : Result<NetworkRecord>(std::move(text).error());
    if (!record) {
      log::warn("networks: {} (left as it is)", record.error().message());
      continue;
    }
    if (entry.path().stem() != record->id) {
      log::warn("networks: {}: its Id is {} (left as it is)", path, record->id);
      continue;
    }
    records.push_back(std::move(*record));
  }
  if (ec) return Error::sys_code(ec.value(), "read {}", dir);
  std::sort(records.begin(), records.end(), [](const auto& a, const auto& b) { return a.created < b.created; });
  for (auto& r : records) {
    auto ns = SANDRUN_TRY(NetworkNamespace::create(r.subnet, r.gateway, "network " + r.name));
    self->nets_.push_back(std::make_unique<Net>(Net{std::move(r), std::move(ns), {}, 0}));
  }
  return self;
}

Networks::Networks(Options options) : options_(std::move(options)) {}
Networks::~Networks() = default;

Networks::Net* Networks::find(const std::string& ref, Refusal* why, Error* error) const {
  for (const auto& n : nets_)
    if (n->record.id == ref || n->record.name == ref) return n.get();
  Net* found = nullptr;
  size_t matches = 0;
  if (!ref.empty())
    for (const auto& n : nets_)
      if (n->record.id.starts_with(ref)) {
        found = n.get();
        ++matches;
      }
  if (matches == 1) return found;
  if (why) *why = matches ? Refusal::invalid : Refusal::not_found;
  *error = matches ? Error::msg("network {} is ambiguous ({} matches found based on ID)", ref, matches)
                   : Error::msg("network {} not found", ref);
  return nullptr;
}

Result<NetworkInfo> Networks::create(const NetworkSpec& spec, Refusal* why) {
  if (!valid_network_name(spec.name))
    return refuse<NetworkInfo>(why, Refusal::invalid,
                               Error::msg("invalid network name \"{}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                                          spec.name));
  std::lock_guard lock(mu_);
  std::vector<Subnet> used;
  for (const auto& n : nets_) {
    if (n->record.name == spec.name)
      return refuse<NetworkInfo>(why, Refusal::conflict, Error::msg("network with name {} already exists", spec.name));
    used.push_back(n->record.subnet);
  }
  auto [subnet, gateway] = SANDRUN_TRY(choose_addresses(spec, options_, used, why));
  NetworkRecord r{random_hex_id(), spec.name, rfc3339_now(), subnet, gateway, spec.internal, spec.labels, spec.options};
  auto ns = SANDRUN_TRY(NetworkNamespace::create(subnet, gateway, "network " + spec.name));
  SANDRUN_TRY(std::move(fs::write_file_atomic(record_path(options_.root, r.id), record_to_json(r), 0600))
                  .wrap("create network " + spec.name));
  nets_.push_back(std::make_unique<Net>(Net{std::move(r), std::move(ns), {}, 0}));
  return nets_.back()->info();
}

Result<NetworkInfo> Networks::inspect(const std::string& ref, Refusal* why) const {
  std::lock_guard lock(mu_);
  Error error;
  const Net* n = find(ref, why, &error);
  if (!n) return error;
  return n->info();
}

std::vector<NetworkInfo> Networks::list() const {
  std::lock_guard lock(mu_);
  std::vector<NetworkInfo> out;
  for (const auto& n : nets_) out.push_back(n->info());
  return out;
}

Result<NetworkRecord> Networks::remove(const std::string& ref, Refusal* why) {
  std::lock_guard lock(mu_);
  Error error;
  Net* n = find(ref, why, &error);
  if (!n) return error;
  if (!n->endpoints.empty())
    return refuse<NetworkRecord>(why, Refusal::in_use,
                                 Error::msg("error while removing network: network {} id {} has active endpoints",
                                            n->record.name, n->record.id));
  const std::string path = record_path(options_.root, n->record.id);
  if (::unlink(path.c_str()) < 0 && errno != ENOENT) return Error::sys("remove network {}: unlink {}", n->record.name, path);
  NetworkRecord record = n->record;
  std::erase_if(nets_, [&](const auto& p) { return p.get() == n; });  // closes its namespace
  return record;
}

std::vector<NetworkRecord> Networks::prune(const std::function<bool(const NetworkRecord&)>& select) {
  std::lock_guard lock(mu_);
  std::vector<NetworkRecord> removed;
  std::erase_if(nets_, [&](const std::unique_ptr<Net>& n) {
    if (!n->endpoints.empty() || !select(n->record)) return false;
    const std::string path = record_path(options_.root, n->record.id);
    if (::unlink(path.c_str()) < 0 && errno != ENOENT) {
      log::warn("prune network {}: unlink {}: {}", n->record.name, path, errno_text(errno));
      return false;
    }
    removed.push_back(n->record);
    return true;
  });
  return removed;
}

Result<EndpointInfo> Networks::attach(const std::string& network, const Attachment& a, Refusal* why) {
  for (const std::string* name : {&a.name, &a.hostname})
    if (!name->empty() && !valid_network_name(*name))
      return refuse<EndpointInfo>(why, Refusal::invalid, Error::msg("invalid container name \"{}\"", *name));
  for (const std::string& alias : a.aliases)
    if (!valid_network_name(alias))
      return refuse<EndpointInfo>(why, Refusal::invalid,
                                  Error::msg("invalid alias \"{}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", alias));
  if (a.container_id.empty() || a.netns_fd < 0)
    return refuse<EndpointInfo>(why, Refusal::invalid, Error::msg("attach to network {}: no container", network));
  std::lock_guard lock(mu_);
  Error error;
  Net* n = find(network, why, &error);
  if (!n) return error;
  if (n->endpoint(a.container_id))
    return refuse<EndpointInfo>(why, Refusal::conflict,
                                Error::msg("container {} is already attached to network {}", a.container_id, n->record.name));
  std::vector<Ipv4> taken{n->record.gateway};
  for (const auto& e : n->endpoints) {
    taken.push_back(e.info.address);
    if (!a.name.empty() && e.info.name == a.name)
      return refuse<EndpointInfo>(why, Refusal::conflict,
                                  Error::msg("endpoint with name {} already exists in network {}", a.name, n->record.name));
  }
  const Subnet& subnet = n->record.subnet;
  std::optional<Ipv4> address;
  if (a.address) {
    address = Ipv4::parse(*a.address);
    if (!address || !subnet.contains(*address) || *address == subnet.base || *address == subnet.broadcast())
      return refuse<EndpointInfo>(why, Refusal::invalid,
                                  Error::msg("invalid address {}: not a host address of the subnet {} of network {}",
                                             *a.address, subnet.str(), n->record.name));
    if (std::find(taken.begin(), taken.end(), *address) != taken.end())
      return refuse<EndpointInfo>(why, Refusal::conflict,
                                  Error::msg("address {} is already in use on network {}", *a.address, n->record.name));
  } else {
    address = allocate_address(subnet, taken);
    if (!address)
      return refuse<EndpointInfo>(why, Refusal::invalid,
                                  Error::msg("no free address left in the subnet {} of network {}", subnet.str(),
                                             n->record.name));
  }
  Net::Endpoint e;
  e.info = EndpointInfo{random_hex_id(), a.container_id, a.name, a.aliases, *address, mac_for(*address), ""};
  e.hostname = a.hostname;
  e.link = fmt::format("veth{}", n->next_link++);
  e.write_etc = a.write_etc;
  e.info.ifname = SANDRUN_TRY(n->ns.attach(a.netns_fd, e.link, *address, e.info.mac));
  n->endpoints.push_back(std::move(e));
  rewrite_hosts(*n);
  return n->endpoints.back().info;
}

Result<void> Networks::detach(const std::string& network, const std::string& container_id, Refusal* why) {
  std::lock_guard lock(mu_);
  Error error;
  Net* n = find(network, why, &error);
  if (!n) return error;
  if (!n->endpoint(container_id))
    return refuse<void>(why, Refusal::not_found,
                        Error::msg("container {} is not connected to network {}", container_id, n->record.name));
  return detach_locked(*n, container_id);
}

void Networks::detach_all(const std::string& container_id) {
  std::lock_guard lock(mu_);
  for (auto& n : nets_)
    if (n->endpoint(container_id))
      if (auto r = detach_locked(*n, container_id); !r) log::warn("{}", r.error().message());
}

Result<void> Networks::detach_locked(Net& n, const std::string& container_id) {
  auto it = std::find_if(n.endpoints.begin(), n.endpoints.end(),
                         [&](const Net::Endpoint& e) { return e.info.container_id == container_id; });
  SANDRUN_TRY(std::move(n.ns.detach(it->link)).wrap("disconnect container " + container_id));
  Net::Endpoint gone = std::move(*it);
  n.endpoints.erase(it);
  rewrite_hosts(n, gone.info.container_id, gone.write_etc);
  return {};
}

void Networks::rewrite_hosts(const Net& n, const std::string& gone_id, const EtcWriter& gone_writer) {
  for (const auto& e : n.endpoints)
    if (e.write_etc) e.write_etc("hosts", hosts_locked(e.info.container_id));
  if (gone_writer) gone_writer("hosts", hosts_locked(gone_id));
}

std::string Networks::hosts_file(const std::string& container_id) const {
  std::lock_guard lock(mu_);
  return hosts_locked(container_id);
}

std::string Networks::hosts_locked(const std::string& container_id) const {
  std::string out = kHostsHead;
  bool own_line = false;
  for (const auto& n : nets_) {
    const auto* self = const_cast<Net&>(*n).endpoint(container_id);
    if (!self) continue;
    out += fmt::format("# network {} ({})\n", n->record.name, n->record.subnet.str());
    for (const auto& e : n->endpoints) {
      std::vector<std::string> names;
      auto add = [&](const std::string& s) {
        if (!s.empty() && std::find(names.begin(), names.end(), s) == names.end()) names.push_back(s);
      };
      if (&e == self && !own_line) add(e.hostname);
      add(e.info.name);
      for (const auto& alias : e.info.aliases) add(alias);
      if (e.info.container_id.size() == 64) add(e.info.container_id.substr(0, 12));
      if (!names.empty()) out += fmt::format("{}\t{}\n", e.info.address.str(), fmt::join(names, " "));
    }
    own_line = true;
  }
  return out;
}

Result<PublishTarget> Networks::publish_target(const std::string& container_id, Refusal* why) const {
  std::lock_guard lock(mu_);
  for (const auto& n : nets_)
    if (const auto* e = const_cast<Net&>(*n).endpoint(container_id)) {
      int fd = ::fcntl(n->ns.fd(), F_DUPFD_CLOEXEC, 3);
      if (fd < 0) return Error::sys("duplicate the namespace of network {}", n->record.name);
      return PublishTarget{UniqueFd(fd), e->info.address};
    }
  return refuse<PublishTarget>(why, Refusal::not_found, Error::msg("container {} is on no network", container_id));
}

}  // namespace sandrun::runner
